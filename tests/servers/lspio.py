"""Blocking LSP framing on stdin/stdout for the scripted fault servers in this directory
(stdlib only, deliberately independent of lspguard's own framing)."""

from __future__ import annotations

import json
import sys
from typing import Any

stdin = sys.stdin.buffer
stdout = sys.stdout.buffer


def read_message() -> dict[str, Any] | None:
    """The next message, or None at end of input (or on a truncated one)."""
    length = None
    while True:
        line = stdin.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        return None
    body = stdin.read(length)
    return json.loads(body) if len(body) == length else None


def write_message(message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    stdout.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    stdout.flush()

"""The helper side of bounded.py: the process that makes the calls that may never return.

Kept to the standard library's lightest modules (no dataclasses, no typing at run time): a doctor
run starts a dozen of these helpers, and their start-up time is most of the doctor's.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys

__all__ = ["note", "serve"]


def _write(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def note(op: str, path: str, *, long: bool = False) -> None:
    """In a helper: announce a call that may block, before making it (see bounded.py)."""
    _write(b"@" + json.dumps([op, path, long]).encode() + b"\n")


def serve() -> None:
    """The helper's main: run `module:function` on the JSON argument, print the result."""
    os.chdir("/")  # hold no reference to the directory the doctor was started in
    func, raw = sys.argv[2], sys.argv[3]
    try:
        module, _, name = func.partition(":")
        function = getattr(importlib.import_module(module), name)
        note("start", "")
        value = function(json.loads(raw))
        _write(b"=" + json.dumps(value).encode() + b"\n")
    except BaseException as exc:  # the parent reports it; nothing else may reach stdout
        with contextlib.suppress(OSError):
            _write(b"!" + json.dumps(f"{type(exc).__name__}: {exc}").encode() + b"\n")
        os._exit(1)
    os._exit(0)

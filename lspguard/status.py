"""The per-session status file: one JSON document per live proxy, private to the user.

`lspguard status` and the VS Code extension read these files; the proxy rewrites its own file
atomically (temp + rename, mode 0600) when its state changes and at most once per interval
otherwise, so readers never see a torn document.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import msgspec
import psutil

from . import paths

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["StatusFile", "read_statuses"]

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


class StatusFile:
    """Writes `snapshot()` to `<runtime dir>/sessions/<pid>.json`."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], path: Path | None = None) -> None:
        self.path = path or paths.sessions_dir() / f"{os.getpid()}.json"
        self._snapshot = snapshot
        self.writes = 0

    def write(self) -> None:
        try:
            document = msgspec.json.format(_encoder.encode(self._snapshot()))
            paths.write_private_file(self.path, document)
            self.writes += 1
        except OSError as exc:  # a status file is a convenience: never fail the session for it
            log.warning("cannot write status file %s: %s", self.path, exc)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def read_statuses(directory: Path | None = None, *, live_only: bool = True) -> list[dict[str, Any]]:
    """Status documents of the sessions in `directory`; stale files of dead proxies are skipped."""
    directory = directory or paths.sessions_dir()
    out: list[dict[str, Any]] = []
    for file in sorted(directory.glob("*.json")):
        try:
            doc = msgspec.json.decode(file.read_bytes())
        except (OSError, msgspec.DecodeError):
            continue
        if not isinstance(doc, dict):
            continue
        pid = doc.get("pid")
        if live_only and not (isinstance(pid, int) and psutil.pid_exists(pid)):
            continue
        doc["status_file"] = str(file)
        out.append(doc)
    return out

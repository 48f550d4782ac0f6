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

from lspguard import paths

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from lspguard.status.schema import SessionStatus

__all__ = ["StatusFile", "read_statuses"]

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()


class StatusFile:
    """Writes `snapshot()` to `<runtime dir>/sessions/<pid>.json`."""

    def __init__(self, snapshot: Callable[[], SessionStatus | dict[str, Any]],
                 path: Path | None = None) -> None:
        self.path = path or paths.sessions_dir() / f"{os.getpid()}.json"
        self._snapshot = snapshot

    def write(self) -> None:
        try:
            document = msgspec.json.format(_encoder.encode(self._snapshot()))
            paths.write_private_file(self.path, document)
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
        if live_only and not _proxy_alive(doc):
            continue
        doc["status_file"] = str(file)
        out.append(doc)
    return out


def _proxy_alive(doc: dict[str, Any]) -> bool:
    """The proxy that wrote `doc` still runs: its pid exists and is not a later process that
    got the pid of a proxy which died without removing its file."""
    pid, started = doc.get("pid"), doc.get("started_at")
    if not isinstance(pid, int):
        return False
    import psutil  # readers only: the proxy itself never needs it to write its file

    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    return not isinstance(started, int | float) or created <= started + 1.0

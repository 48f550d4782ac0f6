"""The per-session status file: one JSON document per live proxy, private to the user.

`lspguard status` and the VS Code extension read these files; the proxy rewrites its own file
atomically (temp + rename, mode 0600) when its state changes and at most once per interval
otherwise, so readers never see a torn document.
"""

from __future__ import annotations

import logging
import os
import threading
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
    """Writes `snapshot()` to `<runtime dir>/sessions/<pid>.json`.

    A state change is written at once (`write`): a reader that saw it happen must find it. The
    periodic refresh (uptime, counters, latency) is rendered on the loop and written from a
    worker thread (`refresh`): the temp file, write and rename are ~0.4 ms of syscalls here,
    which would delay a message every second. A document older than one already written is
    never stored, and nothing is stored once the file is removed.
    """

    def __init__(self, snapshot: Callable[[], SessionStatus | dict[str, Any]],
                 path: Path | None = None) -> None:
        self.path = path or paths.sessions_dir() / f"{os.getpid()}.json"
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._rendered = 0  # documents rendered so far; each one's number orders the writes
        self._stored = 0
        self._removed = False

    def write(self) -> None:
        """Write the current state now, on the caller's thread."""
        self._store(*self._render())

    async def refresh(self) -> None:
        """Write the current state from a worker thread."""
        import anyio.to_thread

        number, document = self._render()
        await anyio.to_thread.run_sync(self._store, number, document)

    def remove(self) -> None:
        with self._lock:
            self._removed = True
            self.path.unlink(missing_ok=True)

    def _render(self) -> tuple[int, bytes]:
        self._rendered += 1
        return self._rendered, msgspec.json.format(_encoder.encode(self._snapshot()))

    def _store(self, number: int, document: bytes) -> None:
        with self._lock:
            if self._removed or number < self._stored:
                return
            try:
                paths.write_private_file(self.path, document)
            except OSError as exc:  # a convenience: never fail the session for it
                log.warning("cannot write status file %s: %s", self.path, exc)
                return
            self._stored = number


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

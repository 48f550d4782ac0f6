"""The per-session status file: one JSON document per live proxy, private to the user.

`lspguard status` and the VS Code extension read these files; the proxy rewrites its own file
atomically (temp + rename, mode 0600) when its state changes and at most once per interval
otherwise, so readers never see a torn document.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import msgspec
import psutil

from lspguard import paths
from lspguard.status.schema import SCHEMA_VERSION, SessionStatus

if TYPE_CHECKING:
    from lspguard.proxy.session import Session

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["StatusFile", "read_statuses", "session_status"]

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
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    return not isinstance(started, int | float) or created <= started + 1.0


def session_status(session: Session) -> SessionStatus:
    """The status document of a live session, checked against its contract (status_schema.py;
    readers must tolerate new keys)."""
    from lspguard import __version__

    now = time.monotonic()
    backend = session.backend
    recovery = session.recovery
    oldest = sorted(session.pending, key=lambda r: r.started)[:20]
    params = session.mirror.initialize_params or {}
    folders = [f.get("uri") for f in params.get("workspaceFolders") or [] if isinstance(f, dict)]
    if not folders and params.get("rootUri"):
        folders = [params["rootUri"]]
    last = session.verdicts[-1].as_dict() if session.verdicts else None
    if last is not None:  # its own bundle: not a later `lspguard snapshot`'s
        last["bundle"] = session.verdict_bundles.get(id(session.verdicts[-1]))
    return msgspec.convert({
        "schema": SCHEMA_VERSION,
        "pid": os.getpid(),
        "lspguard_version": __version__,
        "state": session.state,
        "started_at": session.started_wall,
        "uptime_s": round(now - session.started, 1),
        "workspace_folders": [str(f) for f in folders if f],
        "cwd": os.getcwd(),
        "config": session.config.source,
        "log_file": session.log_file,
        "backend": {
            "argv": backend.argv if backend else session.command,
            "label": session.backend_label,
            "pid": backend.pid if backend else None,
            "generation": session.generation,
            "env_overlay": dict(backend.env_overlay) if backend else {},
        },
        "restarts": recovery.restarts if recovery else 0,
        "last_recovery_s": recovery.last_duration_s if recovery else None,
        "degraded": session.degraded,
        # What the server waits on while state is "waiting" (causes/model.py, plus "since").
        "cause": session.waiting.as_status() if session.waiting else None,
        "last_verdict": last,
        "verdicts": len(session.verdicts),
        "bundles": session.bundles[-5:],
        "handshake": session.handshake.as_dict(),
        "watchdog_cpu_percent": round(session.watchdog.cpu_percent, 1),
        "pending": [{"direction": r.direction.value, "id": r.id, "method": r.method,
                     "age_ms": round(r.age(now) * 1000, 1), "generation": r.generation}
                    for r in oldest],
        "held_during_restart": len(session.held),
        "latency": session.latency.summary(),
        "counters": {
            "frames_from_client": session.client_reader.frames_in,
            "bytes_from_client": session.client_reader.bytes_in,
            "frames_from_server": backend.reader.frames_in if backend else 0,
            "protocol_errors": dict(session.protocol_errors),
        },
        "end_reason": session.end_reason,
    }, SessionStatus)

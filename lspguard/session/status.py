"""The status document of a live session (`<pid>.json`, `lspguard status`, the extension).

Built from the session's books and checked against its contract (status/schema.py; readers
must tolerate new keys)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Protocol

import msgspec

from lspguard.status.schema import SCHEMA_VERSION, SessionStatus

if TYPE_CHECKING:
    from lspguard.causes.verdict import Verdict
    from lspguard.config.model import Config
    from lspguard.proxy.relay import Relay
    from lspguard.supervise.recovery import Recovery
    from lspguard.supervise.waiting import CauseWait
    from lspguard.supervise.watchdog import Watchdog

__all__ = ["StatusSource", "session_status"]


class StatusSource(Protocol):
    """What the status document is made of (the Session has it all)."""

    relay: Relay
    recovery: Recovery
    watchdog: Watchdog
    config: Config
    command: list[str]
    log_file: str | None
    backend_label: str
    end_reason: str | None
    verdicts: list[Verdict]
    verdict_bundles: dict[int, str]
    bundles: list[str]

    @property
    def state(self) -> str: ...
    @property
    def generation(self) -> int: ...
    @property
    def waiting(self) -> CauseWait | None: ...
    def slow_status(self) -> dict[str, object] | None: ...
    def memory_status(self) -> dict[str, object] | None: ...


def session_status(session: StatusSource) -> SessionStatus:
    """The status document of `session`, now."""
    from lspguard import __version__

    now = time.monotonic()
    relay = session.relay
    backend = relay.backend
    recovery = session.recovery
    oldest = sorted(relay.pending, key=lambda r: r.started)[:20]
    folders = relay.mirror.workspace_folder_uris()
    last = session.verdicts[-1].as_dict() if session.verdicts else None
    if last is not None:  # its own bundle: not a later `lspguard snapshot`'s
        last["bundle"] = session.verdict_bundles.get(id(session.verdicts[-1]))
    return msgspec.convert({
        "schema": SCHEMA_VERSION,
        "pid": os.getpid(),
        "lspguard_version": __version__,
        "state": session.state,
        "started_at": relay.started_wall,
        "uptime_s": round(now - relay.started, 1),
        "workspace_folders": folders,
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
        "restarts": recovery.restarts,
        "last_recovery_s": recovery.last_duration_s,
        "degraded": relay.degraded,
        # What the server waits on while state is "waiting" (causes/model.py, plus "since").
        "cause": session.waiting.as_status() if session.waiting else None,
        "slow": session.slow_status(),
        "memory": session.memory_status(),
        "last_verdict": last,
        "verdicts": len(session.verdicts),
        "bundles": session.bundles[-5:],
        "handshake": relay.handshake.as_dict(),
        "watchdog_cpu_percent": round(session.watchdog.cpu_percent, 1),
        "pending": [{"direction": r.direction.value, "id": r.id, "method": r.method,
                     "age_ms": round(r.age(now) * 1000, 1), "generation": r.generation}
                    for r in oldest],
        "held_during_restart": len(relay.held),
        "latency": relay.latency.summary(),
        "counters": {
            "frames_from_client": relay.client_reader.frames_in,
            "bytes_from_client": relay.client_reader.bytes_in,
            "frames_from_server": backend.reader.frames_in if backend else 0,
            "protocol_errors": dict(relay.protocol_errors),
        },
        "end_reason": session.end_reason,
    }, SessionStatus)

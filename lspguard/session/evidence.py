"""Glue between a live session and its evidence: bundles, gopls's debug server, control socket.

The session stays ignorant of how evidence is collected: it calls `snapshot` (recovery, before
anything is killed, and `lspguard snapshot`) and serves `control_handlers`. Evidence sees the
session through `EvidenceHost`, and the connection's books through its relay.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:

    import anyio

    from lspguard.causes.verdict import Verdict
    from lspguard.config.model import Config
    from lspguard.incident.context import IncidentContext, RecentMessage
    from lspguard.protocol.framing import Frame
    from lspguard.protocol.peek import Message
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.relay import Relay
    from lspguard.status.schema import SessionStatus

__all__ = ["Evidence", "EvidenceHost"]

log = logging.getLogger(__name__)

class EvidenceHost(Protocol):
    """What evidence needs of the session."""

    config: Config
    command: list[str]
    relay: Relay
    log_file: str | None
    bundles: list[str]
    verdict_bundles: dict[int, str]  # id() of a verdict -> its bundle
    ending: anyio.Event  # set when the session ends: a bundle being written is cut short

    def changed(self) -> None: ...

    def status_snapshot(self) -> SessionStatus: ...

    def report(self, verdict: Verdict) -> None: ...


class Evidence:
    """Per-session evidence state: where gopls's debug server is, bundles written so far."""

    def __init__(self, host: EvidenceHost) -> None:
        self.host = host
        self.debug_address: str | None = None

    def on_stderr(self, line: str) -> None:
        if "debug server listening" not in line:
            return
        from lspguard.incident.goroutines import parse_debug_address

        self.debug_address = parse_debug_address(line) or self.debug_address
        log.info("gopls debug server: %s", self.debug_address)

    async def snapshot(self, verdict: Verdict | None, reason: str = "",
                       backend: Backend | None = None) -> str | None:
        """Write a bundle now (bounded by the snapshot budget); its path, or None.

        `backend` is the process the evidence is about (default: the current one). Recovery
        passes the hung generation explicitly: by then the relay's backend may be its successor.
        """
        s = self.host
        cfg = s.config.snapshot
        if not cfg.enabled:
            return None
        from lspguard.incident.bundle import snapshot_now

        target = backend if backend is not None else s.relay.backend
        path = await snapshot_now(self.context(verdict, reason, target), budget=cfg.budget,
                                  strace_seconds=cfg.strace_seconds, keep=cfg.keep,
                                  max_bytes=cfg.max_mb * 1024 * 1024, hurry=s.ending)
        if path is None:
            return None
        s.bundles.append(str(path))
        if verdict is not None:
            s.verdict_bundles[id(verdict)] = str(path)
        s.changed()
        return str(path)

    def context(self, verdict: Verdict | None, reason: str,
                backend: Backend | None) -> IncidentContext:
        import msgspec

        from lspguard import __version__
        from lspguard.incident.context import IncidentContext

        s, r = self.host, self.host.relay
        status = msgspec.to_builtins(s.status_snapshot())
        return IncidentContext(
            verdict=verdict.as_dict() if verdict else None,
            reason=reason or (verdict.summary if verdict else "requested"),
            generation=backend.generation if backend else r.generation,
            backend_pid=backend.pid if backend else None,
            backend_argv=list(backend.argv) if backend else list(s.command),
            backend_env_overlay=dict(backend.env_overlay) if backend else {},
            debug_address=self.debug_address,
            handshake=r.handshake.as_dict(),
            pending=status["pending"],
            latency=status["latency"],
            recent_messages=[_recent_row(r, *entry) for entry in r.recent],
            request_timeline=[{"method": method, "start": _wall(r, started),
                               "duration_ms": round(took * 1000, 2), "generation": gen,
                               "ok": ok} for method, started, took, gen, ok in r.timeline],
            stderr_tail=list(backend.stderr_tail) if backend else [],
            session_log=s.log_file,
            workspace_folders=status["workspace_folders"],
            include_text=s.config.snapshot.include_text,
            started_at=r.started_wall,
            lspguard_version=__version__,
        )


def _wall(relay: Relay, monotonic: float) -> float:
    return relay.started_wall + (monotonic - relay.started)


def _recent_row(relay: Relay, t: float, direction: str, generation: int, msg: Message,
                frame: Frame | int) -> RecentMessage:
    """A report row; large messages (kept only as their size) appear without a body."""
    from lspguard.incident.context import RecentMessage

    size = frame if isinstance(frame, int) else len(frame.body)
    body = None if isinstance(frame, int) else bytes(frame.body)
    return RecentMessage(t, _wall(relay, t), direction, generation, msg.kind.value, msg.id,
                         msg.method, size, body)

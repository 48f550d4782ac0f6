"""The session as the watchdog, recovery and the cause waits see it (supervise/host.py's
`Supervised`): read-only views of the relay, the backend and the watchdog's own watches, and
the one own request (the ping). A mixin of Session, kept apart so session.py holds the
lifecycle and the verdicts."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lspguard.proxy.lifecycle import Lifecycle, Phase
from lspguard.proxy.pending import Direction
from lspguard.supervise.watchdog import PING_METHOD, server_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lspguard.config.model import Config
    from lspguard.proxy.pending import PendingRequest
    from lspguard.proxy.relay import Relay
    from lspguard.supervise.waiting import CauseWait
    from lspguard.supervise.watchdog import Watchdog

__all__ = ["WatchedSession"]

C2S = Direction.CLIENT_TO_SERVER


class WatchedSession:
    """What the watchdog sees of a Session (which sets the attributes below)."""

    relay: Relay
    watchdog: Watchdog
    config: Config
    lifecycle: Lifecycle
    command: list[str]
    end_reason: str | None
    cause_wait: CauseWait | None
    cause_restarts: dict[tuple[object, ...], int]
    _roots: tuple[int, list[tuple[str, str]]] | None

    @property
    def generation(self) -> int:
        return self.relay.generation

    @property
    def state(self) -> str:
        """The lifecycle phase; "slow" while running with a slow filesystem under it (a state of
        the session, not a phase: requests go on as in "running")."""
        phase = self.lifecycle.phase
        if phase is Phase.RUNNING and self.watchdog.slow is not None:
            return "slow"
        return phase.value

    def slow_status(self) -> dict[str, object] | None:
        slow = self.watchdog.slow
        return slow.as_status() if slow is not None and self.state == "slow" else None

    def memory_status(self) -> dict[str, object] | None:
        return self.watchdog.memory.as_status()

    def memory_limit_for_restart(self) -> str | None:
        return self.watchdog.memory.limit_for_restart(self.config.backend.env)

    @property
    def waiting(self) -> CauseWait | None:
        """The outside cause the server waits on, while the session waits on it."""
        return self.cause_wait if self.lifecycle.phase is Phase.WAITING else None

    @property
    def watching(self) -> bool:
        r = self.relay
        return not (r.recovering or self.waiting or self.end_reason or r.degraded
                    or r.exit_forwarded)

    def backend_name(self) -> str:
        backend = self.relay.backend
        return server_name(backend.argv if backend else self.command)

    def known_cause(self, signature: tuple[object, ...]) -> bool:
        return signature in self.cause_restarts

    def server_messages(self) -> int:
        return self.relay.server_messages

    def own_bytes(self) -> int:
        backend = self.relay.backend
        return 0 if backend is None else backend.writer.bytes_out + backend.reader.bytes_in

    def probe_roots(self) -> list[tuple[str, str]]:
        """Worked out once per generation (the go env file is read for it)."""
        cached = self._roots
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        from urllib.parse import unquote, urlparse

        from lspguard.supervise.slow import go_roots

        mirror = self.relay.mirror
        folders = [unquote(urlparse(u).path) for u in mirror.workspace_folder_uris()
                   if u.startswith("file:")]
        backend = self.relay.backend
        env = {**os.environ, **(backend.env_overlay if backend else {})}
        roots = go_roots(folders, env)
        if mirror.initialize_params is not None:  # before initialize, no workspace is known
            self._roots = (self.generation, roots)
        return roots

    def backend_pid(self) -> int | None:
        backend = self.relay.backend
        return backend.pid if backend else None

    def handshake_pending_since(self) -> float | None:
        handshake = self.relay.handshake
        return handshake.initialize_sent if handshake.awaiting_initialize else None

    def client_requests(self) -> Iterable[PendingRequest]:
        gen = self.relay.generation
        return (r for r in self.relay.pending.in_direction(C2S) if r.generation == gen)

    def send_ping(self, on_answer: Callable[[], None]) -> None:
        if self.relay.backend is not None:
            self.relay.outbox.send_own_request(True, PING_METHOD, None, lambda _: on_answer())

    def loading(self) -> bool:
        gen = self.relay.generation
        return any(g == gen for _, g in self.relay.effects.open_progress.values())

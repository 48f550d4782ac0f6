"""What recovery and a cause wait need of the session: narrow Protocols, not the Session.

Both act on the session only through `Supervised`, and on the connection only through
`RelayControl`: the few operations of the relay (proxy/relay.py) they call, which the session
wires in. The relay answers for itself: it fails the requests in flight, answers the editor's
initialize, releases or expires the messages it held, and enters degraded mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Coroutine, Mapping, Sequence

    from lspguard.causes.verdict import Verdict
    from lspguard.config.model import Config
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.lifecycle import Lifecycle
    from lspguard.proxy.mirror import ClientMirror
    from lspguard.proxy.outbox import Outbox
    from lspguard.proxy.pending import RequestId

__all__ = ["RelayControl", "Supervised"]


class RelayControl(Protocol):
    """The relay as supervision acts on it (proxy/relay.py's Relay; downtime.py has most)."""

    @property
    def backend(self) -> Backend | None:
        """The current generation (None while degraded)."""

    @property
    def generation(self) -> int: ...

    @property
    def mirror(self) -> ClientMirror:
        """The editor's state, replayed into a new generation."""

    @property
    def outbox(self) -> Outbox:
        """lspguard's own messages to either side."""

    def editor_ready(self) -> bool:
        """The editor has its initialize answer."""

    def fail_pending(self, code: int, why: str | Callable[[str], str], *,
                     up_to_generation: int | None = None, spare_initialize: bool = False,
                     empty_for: Container[str] = ()) -> int:
        """Answer the editor's requests in flight here, instead of the server; how many."""

    def fail_request(self, req_id: RequestId, method: str, code: int,
                     why: str | Callable[[str], str], *, empty_for: Container[str] = ()) -> None:
        """Answer one editor request here, instead of the server."""

    def answer_initialize(self, result: Any) -> None:
        """Answer the editor's initialize, if in flight, with a new generation's result."""

    def release_held(self) -> None:
        """Route what the editor sent while restarting, in order."""

    def expire_held(self, now: float) -> None:
        """Answer the held requests past their deadline."""

    def degrade(self, reason: str) -> None:
        """No server until a revival: requests fail naming `reason`."""

    def end_progress(self, generation: int) -> None:
        """End the work-done progress a dead generation left open."""

    async def until_loaded(self) -> None:
        """Until the current generation has loaded (its progress has all ended)."""

    def clear_diagnostics(self, up_to_generation: int) -> None:
        """Empty the diagnostics only dead generations published."""


class Supervised(Protocol):
    config: Config
    command: list[str]
    lifecycle: Lifecycle
    verdicts: list[Verdict]
    # Restarts tried per outside cause while it persists, and the causes the user was told of.
    cause_restarts: dict[tuple[object, ...], int]
    told_causes: set[tuple[object, ...]]

    @property
    def relay(self) -> RelayControl:
        """The connection (the session's Relay), as far as supervision acts on it."""

    @property
    def end_reason(self) -> str | None: ...

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: object) -> None:
        """Run `func(*args)` in the session's task group (cancelled when the session ends)."""

    def spawn_evidence(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: object) -> None:
        """Run `func(*args)` where evidence runs: it may finish, briefly, after the session."""

    async def take_evidence(self, verdict: Verdict | None,
                            backend: Backend | None) -> str | None:
        """Write the incident bundle about `backend`; its path, or None."""

    async def start_backend(self, argv: Sequence[str], env: Mapping[str, str],
                            label: str) -> Backend:
        """Spawn the next generation and make it current."""

    def restart(self, verdict: Verdict, *, fresh: bool = False) -> None: ...

    def wait_on(self, verdict: Verdict, *, keep_backend: bool = True) -> None: ...

    def report_exit(self, backend: Backend) -> None:
        """The verdict `crashed` for the current backend, if it exited unasked."""

    def backend_name(self) -> str: ...

    def memory_limit_for_restart(self) -> str | None:
        """GOMEMLIMIT for a restart after an OOM kill ("2400MiB": ~80% of the memory limit),
        or None when the user set one or no limit is known."""

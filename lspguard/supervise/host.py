"""What recovery and a cause wait need of the session: a narrow Protocol, not the Session.

Both act on the connection through its relay (the books, the held messages, lspguard's own
messages) and on the session only through these few members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping, Sequence

    from lspguard.config.model import Config
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.lifecycle import Lifecycle
    from lspguard.proxy.relay import Relay
    from lspguard.supervise.verdict import Verdict

__all__ = ["Supervised"]


class Supervised(Protocol):
    config: Config
    command: list[str]
    lifecycle: Lifecycle
    relay: Relay
    verdicts: list[Verdict]
    # Restarts tried per outside cause while it persists, and the causes the user was told of.
    cause_restarts: dict[tuple[object, ...], int]
    told_causes: set[tuple[object, ...]]

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

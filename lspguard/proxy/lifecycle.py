"""A session's lifecycle, as one table: every phase and the phases it may move to.

Everything that decides what the session is doing lives here (h11's `_state.py` is the model).
The status file's `state` is the phase's value; `recovering`, `degraded` and `waiting` are read
from the phase, never kept beside it. An illegal transition raises `IllegalTransition`: it is a
bug in lspguard, and a test finds it as one.

    starting ──▶ initializing ──▶ running ◀──▶ restarting ──▶ degraded
        │              │             ▲  │          │  ▲           │
        │              └─────────────┼──┴─▶ waiting ◀─┘           │
        └──────────────┴─── any ─────┴──▶ stopping ──▶ exited ◀───┘
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Final

from lspguard.errors import IllegalTransition

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TRANSITIONS", "Lifecycle", "Phase"]

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    STARTING = "starting"  # the server is spawned; the editor is not connected yet
    INITIALIZING = "initializing"  # the editor is connected; its initialize is unanswered
    RUNNING = "running"
    RESTARTING = "restarting"  # a new generation is being started and given the editor's state
    WAITING = "waiting"  # the server waits on a cause outside it: answer at once, watch it
    DEGRADED = "degraded"  # the restart budget is spent: answer with errors, retry on a backoff
    STOPPING = "stopping"
    EXITED = "exited"

    # Members are singletons: hash by identity, in C (Enum's own __hash__ is Python code, and
    # the relay looks a phase up in a set for every editor message).
    __hash__ = object.__hash__


TRANSITIONS: Final[dict[Phase, frozenset[Phase]]] = {
    Phase.STARTING: frozenset({Phase.INITIALIZING, Phase.RESTARTING, Phase.STOPPING}),
    Phase.INITIALIZING: frozenset({Phase.RUNNING, Phase.RESTARTING, Phase.WAITING,
                                   Phase.STOPPING}),
    Phase.RUNNING: frozenset({Phase.RESTARTING, Phase.WAITING, Phase.STOPPING}),
    # back to initializing when the editor's initialize is still unanswered
    Phase.RESTARTING: frozenset({Phase.INITIALIZING, Phase.RUNNING, Phase.WAITING,
                                 Phase.DEGRADED, Phase.STOPPING}),
    Phase.WAITING: frozenset({Phase.INITIALIZING, Phase.RUNNING, Phase.RESTARTING,
                              Phase.STOPPING}),
    Phase.DEGRADED: frozenset({Phase.RESTARTING, Phase.STOPPING}),
    Phase.STOPPING: frozenset({Phase.EXITED}),
    Phase.EXITED: frozenset(),
}
# A session can always end: every phase but the last may go to stopping, and run()'s own end
# goes to exited from wherever an unexpected error left it.
_ALWAYS: Final = {Phase.EXITED}


class Lifecycle:
    def __init__(self, on_change: Callable[[Phase, Phase], None] | None = None) -> None:
        self.phase = Phase.STARTING
        self._on_change = on_change

    def to(self, phase: Phase) -> bool:
        """Move to `phase` (staying is a no-op); False if already there."""
        old = self.phase
        if phase is old:
            return False
        if phase not in TRANSITIONS[old] and phase not in _ALWAYS:
            raise IllegalTransition(f"the session cannot go from {old.value} to {phase.value}")
        self.phase = phase
        log.info("state: %s -> %s", old.value, phase.value)
        if self._on_change is not None:
            self._on_change(old, phase)
        return True

    def resume(self, editor_ready: bool) -> bool:
        """Back to work after a restart or a wait: running, or initializing while the editor's
        initialize is still unanswered."""
        return self.to(Phase.RUNNING if editor_ready else Phase.INITIALIZING)

    def advance(self, expected: Phase, phase: Phase) -> bool:
        """Move to `phase` only from `expected` (e.g. initializing -> running when the editor's
        initialize is answered: in any other phase that answer changes nothing)."""
        return self.phase is expected and self.to(phase)

"""What lspguard does about each verdict: the recovery policy, as one table.

A restart helps only for causes inside the server. For a cause outside it, a restart runs into
the same wait: lspguard restarts at most `confirm_restarts` times while that cause persists
(once for a network peer or a child, in case the connection went stale or the child's hang was
a fluke; never for a filesystem, FIFO or kernel wait, whose stuck process may not even die until
the filesystem answers). Past that, the session waits on the cause: the editor is answered at
once, the user is told what to fix, and the cause is watched until it clears.

What a restart runs depends on the cause too (`ESCALATION`): a crash gets the same server again,
a hang gets the hang overlay (GODEBUG=asyncpreemptoff=1), an OOM kill gets GOMEMLIMIT below
the memory limit (measured: a gopls OOM-killed under a 3 GiB limit loaded the same workspace
with GOMEMLIMIT=2400MiB). The second restart for the same kind of cause walks the fallback
chain, except after a second OOM kill: a smaller heap is the only thing a restart could change,
so lspguard stops and says how to give gopls more memory or less to load.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["ESCALATION", "POLICY", "SAVE_PATH_METHODS", "Action", "Escalation", "Policy",
           "Step", "policy_for"]


class Action(enum.Enum):
    RESTART = "restart"  # within the restart budget, escalating
    WAIT_ON_CAUSE = "wait_on_cause"  # answer the editor at once, watch the cause, revive


class Escalation(enum.Enum):
    """Which row of `ESCALATION` a verdict's restarts follow."""

    PLAIN = "plain"  # a crash, a stop, an outside cause: the same server again
    HANG = "hang"  # a server that hangs by itself: the hang overlay
    MEMORY = "memory"  # the OOM killer: a heap limit below the memory limit


class Step(enum.Enum):
    """What one restart runs."""

    PRIMARY = "primary"  # the configured server, as it was
    HANG_OVERLAY = "primary + hang overlay"  # with restart.hang_env
    MEMORY_LIMIT = "primary + GOMEMLIMIT"  # GOMEMLIMIT at ~80% of the limit (unless set)
    FALLBACK = "fallback"  # the next backend of restart.fallback (with the hang overlay)
    STOP = "stop"  # no restart: degrade with the fix


# (first restart for this kind of cause, every later one)
ESCALATION: Final[dict[Escalation, tuple[Step, Step]]] = {
    Escalation.PLAIN: (Step.PRIMARY, Step.FALLBACK),
    Escalation.HANG: (Step.HANG_OVERLAY, Step.FALLBACK),
    Escalation.MEMORY: (Step.MEMORY_LIMIT, Step.STOP),
}


@dataclass(frozen=True)
class Policy:
    action: Action
    confirm_restarts: int = 0  # for WAIT_ON_CAUSE: restarts tried first while it persists
    early: bool = False  # the verdict may come before the request's deadline
    escalation: Escalation = Escalation.PLAIN


POLICY: Final[dict[str, Policy]] = {
    # causes inside the server: a restart is the fix
    "crashed": Policy(Action.RESTART),
    "out_of_memory": Policy(Action.RESTART, escalation=Escalation.MEMORY),
    "stopped": Policy(Action.RESTART),
    "busy_spin": Policy(Action.RESTART, escalation=Escalation.HANG),
    "deadlocked": Policy(Action.RESTART, escalation=Escalation.HANG),
    "protocol_error": Policy(Action.RESTART),
    "handshake_timeout": Policy(Action.RESTART, escalation=Escalation.HANG),
    "manual": Policy(Action.RESTART),
    # causes outside it
    "filesystem_not_answering": Policy(Action.WAIT_ON_CAUSE, 0, early=True),
    "special_file_no_partner": Policy(Action.WAIT_ON_CAUSE, 0, early=True),
    "blocked_in_kernel": Policy(Action.WAIT_ON_CAUSE, 0, early=True),
    "network_peer_not_answering": Policy(Action.WAIT_ON_CAUSE, 1),
    "child_never_returns": Policy(Action.WAIT_ON_CAUSE, 1),
}

# Requests an editor sends on the way to saving a file: while a cause outside the server holds,
# they get an empty result at once, so saving never waits on a hung server.
SAVE_PATH_METHODS: Final = frozenset({
    "textDocument/willSaveWaitUntil", "textDocument/formatting",
    "textDocument/rangeFormatting", "textDocument/codeAction",
})


def policy_for(kind: str) -> Policy:
    return POLICY.get(kind, POLICY["crashed"])

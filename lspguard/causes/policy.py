"""What lspguard does about each verdict: the recovery policy, as one table.

A restart helps only for causes inside the server. For a cause outside it, a restart runs into
the same wait: lspguard restarts at most `confirm_restarts` times while that cause persists
(once for a network peer or a child, in case the connection went stale or the child's hang was
a fluke; never for a filesystem, FIFO or kernel wait, whose stuck process may not even die until
the filesystem answers). Past that, the session waits on the cause: the editor is answered at
once, the user is told what to fix, and the cause is watched until it clears.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["POLICY", "SAVE_PATH_METHODS", "Action", "Policy", "policy_for"]


class Action(enum.Enum):
    RESTART = "restart"  # within the restart budget, escalating
    WAIT_ON_CAUSE = "wait_on_cause"  # answer the editor at once, watch the cause, revive


@dataclass(frozen=True)
class Policy:
    action: Action
    confirm_restarts: int = 0  # for WAIT_ON_CAUSE: restarts tried first while it persists
    early: bool = False  # the verdict may come before the request's deadline


POLICY: Final[dict[str, Policy]] = {
    # causes inside the server: a restart is the fix
    "crashed": Policy(Action.RESTART),
    "stopped": Policy(Action.RESTART),
    "busy_spin": Policy(Action.RESTART),
    "deadlocked": Policy(Action.RESTART),
    "protocol_error": Policy(Action.RESTART),
    "handshake_timeout": Policy(Action.RESTART),
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

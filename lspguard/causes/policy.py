"""What lspguard does about each verdict: the recovery policy, from the table of the verdict
kinds (kinds.py `KINDS`: each kind's action, confirming restarts, escalation).

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
from typing import Final

from lspguard.causes.kinds import KINDS, Action, Escalation, KindRow

__all__ = ["ESCALATION", "POLICY", "SAVE_PATH_METHODS", "Action", "Escalation", "Policy",
           "Step", "policy_for"]


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

# A verdict kind's policy is its row: `action`, `confirm_restarts` (for WAIT_ON_CAUSE: restarts
# tried first while the cause persists), `early` (the verdict may come before the request's
# deadline) and `escalation`.
Policy = KindRow
POLICY: Final[dict[str, Policy]] = {r.kind.value: r for r in KINDS}

# Requests an editor sends on the way to saving a file: while a cause outside the server holds,
# they get an empty result at once, so saving never waits on a hung server.
SAVE_PATH_METHODS: Final = frozenset({
    "textDocument/willSaveWaitUntil", "textDocument/formatting",
    "textDocument/rangeFormatting", "textDocument/codeAction",
})


def policy_for(kind: str) -> Policy:
    return POLICY.get(kind, POLICY["crashed"])

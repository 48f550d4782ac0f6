"""The verdict kinds, as one table: one row per kind says whether its cause lies outside the
server, whether it is judged before the request's deadline, what lspguard does about it, how
its restarts escalate, and the words the user is told it in.

What used to restate the kinds is derived from `KINDS`: the recovery policy (policy.py
`POLICY`), which cause classes lie outside the server (model.py `CauseClass.external`), which
are judged early and which one wins (classify.py `EARLY_CLASSES`, the rank), how a cause's
sentence closes (sentences.py), and the VS Code extension's phrases and outside classes
(`python -m lspguard.causes.kinds` writes vscode-extension/src/generated/verdictKinds.ts; a
test fails when it is stale). The status file's contract (status/schema.py) names the kinds
too, but it lies below causes/ and cannot import this module: a test keeps its Literals equal
to the table.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["KINDS", "TS_FILE", "Action", "Escalation", "KindRow", "VerdictKind", "row",
           "typescript"]


class VerdictKind(enum.Enum):
    """The cause classes (model.py `CauseClass`, same values) and the verdicts that need no
    probe. Each has one row in `KINDS`."""

    CRASHED = "crashed"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    FILESYSTEM_NOT_ANSWERING = "filesystem_not_answering"
    SPECIAL_FILE_NO_PARTNER = "special_file_no_partner"
    CHILD_NEVER_RETURNS = "child_never_returns"
    NETWORK_PEER_NOT_ANSWERING = "network_peer_not_answering"
    BLOCKED_IN_KERNEL = "blocked_in_kernel"
    DEADLOCKED = "deadlocked"
    BUSY_SPIN = "busy_spin"
    STOPPED = "stopped"
    OUT_OF_MEMORY = "out_of_memory"  # the kernel's OOM killer ended the server
    PROTOCOL_ERROR = "protocol_error"
    MANUAL = "manual"  # the user asked for a restart (`lspguard restart`)


class Action(enum.Enum):
    RESTART = "restart"  # within the restart budget, escalating
    WAIT_ON_CAUSE = "wait_on_cause"  # answer the editor at once, watch the cause, revive


class Escalation(enum.Enum):
    """Which row of policy.py's `ESCALATION` a verdict's restarts follow."""

    PLAIN = "plain"  # a crash, a stop, an outside cause: the same server again
    HANG = "hang"  # a server that hangs by itself: the hang overlay
    MEMORY = "memory"  # the OOM killer: a heap limit below the memory limit


@dataclass(frozen=True)
class KindRow:
    """One verdict kind: what it means for recovery, and how it is said."""

    kind: VerdictKind
    phrase: str  # what the verdict says happened, after "gopls": "ran out of memory"
    outside: bool = False  # the cause lies outside the server: a restart repeats the same wait
    early: bool = False  # evidence enough after a few seconds, before the request's deadline
    confirm_restarts: int = 0  # outside: restarts tried first while the cause persists
    escalation: Escalation = Escalation.PLAIN
    rank: int | None = None  # a cause class (model.py): which the classifier prefers, lower first
    bar: str | None = None  # the status bar's words for it when its object names nothing more
    restart_clause: str | None = None  # a cause class: how its sentence ends (the notification,
    # the report's headline, the status tooltip): what a restart does

    @property
    def action(self) -> Action:
        """A restart helps only for causes inside the server; for one outside, the session
        waits on the cause (after `confirm_restarts`)."""
        return Action.WAIT_ON_CAUSE if self.outside else Action.RESTART


_CANNOT_FIX = "Restarting {server} cannot fix this."
_HANG = Escalation.HANG

KINDS: Final[tuple[KindRow, ...]] = (  # in the order of the enum (and of the status contract)
    # inside the server: a restart is the fix
    KindRow(VerdictKind.CRASHED, "crashed"),
    KindRow(VerdictKind.HANDSHAKE_TIMEOUT, "never answered initialize", escalation=_HANG),
    # outside the server: the session waits on the cause (policy.py says why a network peer
    # or a child gets one restart first)
    KindRow(VerdictKind.FILESYSTEM_NOT_ANSWERING, "waits on a filesystem", outside=True,
            early=True, rank=1, bar="a filesystem", restart_clause=_CANNOT_FIX),
    KindRow(VerdictKind.SPECIAL_FILE_NO_PARTNER, "waits on a special file", outside=True,
            early=True, rank=1, bar="a special file", restart_clause=_CANNOT_FIX),
    KindRow(VerdictKind.CHILD_NEVER_RETURNS, "waits on a child process", outside=True,
            confirm_restarts=1, rank=4, bar="a child process",
            restart_clause="A restart runs it again: lspguard tries once."),
    KindRow(VerdictKind.NETWORK_PEER_NOT_ANSWERING, "waits on the network", outside=True,
            confirm_restarts=1, rank=2, bar="the network",
            restart_clause="A restart tries once, in case the connection went stale."),
    KindRow(VerdictKind.BLOCKED_IN_KERNEL, "is blocked in the kernel", outside=True,
            early=True, rank=1, bar="the kernel", restart_clause=_CANNOT_FIX),
    # inside the server again
    KindRow(VerdictKind.DEADLOCKED, "is deadlocked", escalation=_HANG, rank=5,
            bar="a deadlock", restart_clause="A restart replaces it."),
    KindRow(VerdictKind.BUSY_SPIN, "is busy and does not answer", escalation=_HANG, rank=3,
            bar="a busy loop", restart_clause="A restart may help."),
    KindRow(VerdictKind.STOPPED, "was stopped", rank=0, bar="a stopped process",
            restart_clause="A restart replaces it."),
    KindRow(VerdictKind.OUT_OF_MEMORY, "ran out of memory", escalation=Escalation.MEMORY,
            bar="out of memory"),
    KindRow(VerdictKind.PROTOCOL_ERROR, "broke the protocol"),
    KindRow(VerdictKind.MANUAL, "was restarted on request"),
)

_BY_VALUE: Final = {r.kind.value: r for r in KINDS}


def row(kind: str) -> KindRow:
    """The row of a verdict kind or cause class, by value ("busy_spin"); KeyError if none."""
    return _BY_VALUE[kind]


# ------------------------------------------------------------------------- the extension's copy

TS_FILE = (Path(__file__).resolve().parents[2] / "vscode-extension" / "src" / "generated"
           / "verdictKinds.ts")


def typescript() -> str:
    """The extension's view of the table, typed by the status contract (statusContract.ts):
    a kind the contract names and the table does not (or the other way round) fails to
    compile there."""
    import json

    def record(name: str, doc: str, key: str, values: dict[str, str]) -> list[str]:
        return [f"/** {doc} */", f"export const {name} = {{",
                *(f"  {k}: {json.dumps(v)}," for k, v in values.items()),
                f"}} as const satisfies {key};", ""]

    classes = [r for r in KINDS if r.rank is not None]
    external = json.dumps([r.kind.value for r in classes if r.outside])
    return "\n".join([
        "// Generated by `python -m lspguard.causes.kinds` from lspguard/causes/kinds.py.",
        "// Do not edit: a test fails when this file and the Python table differ.", "",
        'import type { CauseClass, VerdictKind } from "../statusContract";', "",
        "/** Cause classes outside gopls: restarting it repeats the same wait. */",
        f"export const EXTERNAL_CLASSES: ReadonlySet<CauseClass> = new Set<CauseClass>("
        f"{external});", "",
        *record("VERDICT_PHRASE", 'What each verdict says happened, in words that follow '
                '"gopls" ("gopls ran out of memory").', "Record<VerdictKind, string>",
                {r.kind.value: r.phrase for r in KINDS}),
        *record("BAR_PHRASE", "What the status bar calls a cause class when its object names "
                "nothing more specific, and a verdict it names without a cause.",
                "Partial<Record<VerdictKind, string>>",
                {r.kind.value: r.bar for r in KINDS if r.bar is not None}),
    ])


def main() -> int:
    TS_FILE.parent.mkdir(exist_ok=True)
    TS_FILE.write_text(typescript())
    print(f"wrote {TS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

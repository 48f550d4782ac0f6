"""What the watchdog concluded about a backend: a typed value that explains itself.

Every verdict carries one sentence a user can read in a notification, and the facts behind it
(for the status file, the log and the incident bundle).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lspguard.causes.model import Cause

__all__ = ["Verdict", "VerdictKind"]


class VerdictKind(enum.Enum):
    """The cause classes (causes/model.py, same values) and the verdicts that need no probe."""

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


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    summary: str  # one sentence, shown to the user as is
    generation: int
    facts: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # wall clock, for humans
    cause: Cause | None = None  # what a hang waits on, when the watchdog found it

    @property
    def external(self) -> bool:
        """The cause lies outside the server: a restart repeats the same wait."""
        return self.cause is not None and self.cause.cls.external

    def as_dict(self) -> dict[str, Any]:
        facts = dict(self.facts)
        if self.cause is not None:
            facts["cause"] = self.cause.as_dict()
        return {"kind": self.kind.value, "summary": self.summary, "generation": self.generation,
                "at": self.at, "facts": facts}

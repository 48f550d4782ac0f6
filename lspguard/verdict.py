"""What the watchdog concluded about a backend: a typed value that explains itself.

Every verdict carries one sentence a user can read in a notification, and the facts behind it
(for the status file, the log and the incident bundle).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Verdict", "VerdictKind"]


class VerdictKind(enum.Enum):
    CRASHED = "crashed"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    BLOCKED_IN_KERNEL = "blocked_in_kernel"
    DEADLOCKED = "deadlocked"
    BUSY_SPIN = "busy_spin"
    STOPPED = "stopped"
    PROTOCOL_ERROR = "protocol_error"
    MANUAL = "manual"  # the user asked for a restart (`lspguard restart`)


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    summary: str  # one sentence, shown to the user as is
    generation: int
    facts: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # wall clock, for humans

    @property
    def hang(self) -> bool:
        """True for verdicts where the process is alive but not answering."""
        return self.kind in (VerdictKind.HANDSHAKE_TIMEOUT, VerdictKind.BLOCKED_IN_KERNEL,
                             VerdictKind.DEADLOCKED, VerdictKind.BUSY_SPIN, VerdictKind.STOPPED)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "summary": self.summary, "generation": self.generation,
                "at": self.at, "facts": self.facts}

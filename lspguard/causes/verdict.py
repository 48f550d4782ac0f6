"""What the watchdog concluded about a backend: a typed value that explains itself.

Every verdict carries one sentence a user can read in a notification, and the facts behind it
(for the status file, the log and the incident bundle).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lspguard.causes.kinds import VerdictKind

if TYPE_CHECKING:
    from lspguard.causes.model import Cause

__all__ = ["Verdict", "VerdictKind"]  # VerdictKind: kinds.py, with the table of the kinds


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

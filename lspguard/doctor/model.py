"""What `lspguard doctor` reports: findings, their severity, and the whole report.

Every finding answers three questions for a user whose editor says "Loading packages..." forever:
what was found, why it matters for gopls, and what to do about it. The JSON form (`as_dict`) is
parsed by the VS Code extension; its keys are documented in `lspguard.doctor.render`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "Report", "Severity"]


class Severity(enum.Enum):
    """How bad a finding is; ordered, so the worst one decides the exit code."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """0 for ok/info, 1 for warning, 2 for error (the `lspguard doctor` exit code)."""
        return {Severity.OK: 0, Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}[self]


_RANK = {Severity.OK: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the doctor saw. `id` is `<check>.<kind>`, stable across releases."""

    id: str
    severity: Severity
    title: str
    found: str
    why: str = ""
    fix: str = ""
    path: str | None = None
    line: int | None = None  # 1-based, for Problems-style items in the editor

    @property
    def check(self) -> str:
        return self.id.split(".", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "found": self.found,
            "why": self.why,
            "fix": self.fix,
            "path": self.path,
            "line": self.line,
        }


@dataclass(slots=True)
class Report:
    """All findings for one workspace, in check order."""

    workspace: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=Severity.OK)

    @property
    def exit_code(self) -> int:
        return self.worst.exit_code

    def by_id(self, finding_id: str) -> list[Finding]:
        """Findings with this exact id (tests and the extension look them up this way)."""
        return [f for f in self.findings if f.id == finding_id]

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "workspace": self.workspace,
            "worst": self.worst.value,
            "findings": [f.as_dict() for f in self.findings],
        }

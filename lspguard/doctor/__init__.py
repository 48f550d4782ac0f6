"""`lspguard doctor`: find what makes gopls hang on this machine and in this workspace.

Each check module looks at one cause reported from the field (Dev Containers, SSH, macOS Docker
Desktop bind mounts) and returns findings that say what was found, why it matters for gopls and
the fix. `run_doctor` runs them with deadlines; `render` prints text or the JSON the VS Code
extension reads (schema in `lspguard.doctor.render`).
"""

from __future__ import annotations

from .context import DoctorContext, Limits
from .model import Finding, Report, Severity
from .runner import CHECKS, run_doctor

__all__ = ["CHECKS", "DoctorContext", "Finding", "Limits", "Report", "Severity", "run_doctor"]

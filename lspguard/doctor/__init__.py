"""`lspguard doctor`: find what makes gopls hang on this machine and in this workspace.

Each check module looks at one cause reported from the field (Dev Containers, SSH, macOS Docker
Desktop bind mounts) and returns findings that say what was found, why it matters for gopls and
the fix. `run_doctor` runs them with deadlines; `render` prints text or the JSON the VS Code
extension reads (schema in `lspguard.doctor.render`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Loaded on first use: `lspguard run` builds the CLI parser (which imports doctor.cli), and must
# not pay for the checks on every start of a language server.
_EXPORTS = {"CHECKS": "runner", "run_doctor": "runner", "DoctorContext": "context",
            "Limits": "context", "Finding": "model", "Report": "model", "Severity": "model"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CHECKS", "DoctorContext", "Finding", "Limits", "Report", "Severity", "run_doctor"]

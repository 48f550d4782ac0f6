"""`lspguard doctor` output: readable text for people, stable JSON for the VS Code extension.

JSON schema (`lspguard doctor --json`), version 1. Keys are stable; new keys may be added,
existing ones are never renamed or removed without bumping "version":

    {
      "version": 1,
      "workspace": "/abs/path/of/workspace",
      "worst": "ok" | "info" | "warning" | "error",
      "findings": [
        {
          "id": "<check>.<kind>",        e.g. "mounts.gomodcache", "devcontainer.no-consistency"
          "severity": "ok" | "info" | "warning" | "error",
          "title": "one line",
          "found": "what was seen, with the concrete values",
          "why": "why it matters for gopls ('' for ok findings)",
          "fix": "what to do ('' for ok findings)",
          "path": "/abs/file/or/dir" | null,
          "line": 12 | null               1-based; set for devcontainer.json findings
        }
      ]
    }

Checks (the part of "id" before the dot): toolchain, goenv, mounts, writable, symlinks,
special, devcontainer, latency; `<check>.timeout` / `<check>.crashed` when a check itself
failed, `<check>.skipped` when it could not look at something. `filesystem.not-answering`
(first in the list, one per mount) is a mount where a probe did not return: the error that
explains hangs best.

Exit code of `lspguard doctor`: 0 if the worst finding is ok or info, 1 if it is a warning,
2 if it is an error (2 is also argparse's code for a bad command line).
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

from lspguard.doctor.model import Severity

if TYPE_CHECKING:
    from lspguard.doctor.model import Finding, Report

__all__ = ["render_json", "render_text"]

_TAG = {Severity.OK: "ok", Severity.INFO: "info", Severity.WARNING: "WARNING",
        Severity.ERROR: "ERROR"}
_WIDTH = 100


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2)


def _block(label: str, text: str) -> list[str]:
    return _wrap(text, f"    {label:<6} ") or [f"    {label}"]


def _wrap(text: str, first: str) -> list[str]:
    # Never split paths at their hyphens or slashes: people copy them out of the terminal.
    return textwrap.wrap(text, _WIDTH, initial_indent=first, subsequent_indent=" " * 11,
                         break_on_hyphens=False, break_long_words=False)


def _finding(f: Finding) -> list[str]:
    lines = [f"  {_TAG[f.severity]:<8} {f.title}  [{f.id}]"]
    if f.severity in (Severity.OK, Severity.INFO) and not f.fix:
        lines += _wrap(f.found, " " * 11)
        return lines
    lines += _block("found:", f.found)
    if f.why:
        lines += _block("why:", f.why)
    if f.fix:
        lines += _block("fix:", f.fix)
    if f.path and f.line is not None:
        lines.append(f"    at:    {f.path}:{f.line}")
    return lines


def render_text(report: Report) -> str:
    """Findings grouped by check, each warning or error with found / why / fix."""
    out = [f"lspguard doctor: {report.workspace}"]
    check = None
    for f in report.findings:
        if f.check != check:
            check = f.check
            out += ["", check]
        out += _finding(f)
    counts = {s: sum(1 for f in report.findings if f.severity is s) for s in Severity}
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    worst = report.worst
    out += ["", f"{summary or 'no findings'}; worst: {worst.value} (exit {worst.exit_code})"]
    return "\n".join(out) + "\n"

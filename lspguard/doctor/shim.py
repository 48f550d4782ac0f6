"""Will VS Code Go accept the gopls shim it is given? (`lspguard doctor`, toolchain check)

VS Code Go runs `go version -m` on go.alternateTools.gopls at every start and warns "Tools
(gopls) need recompiling" when that fails (a script shim) or names a Go older than the `go`
command. A native shim also carries the lspguard and the Python it was built for: after an
upgrade of either it must be built again (`lspguard install-shim DIR` does, from its cache).
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

from lspguard import __version__
from lspguard.doctor.bounded import CommandResult
from lspguard.doctor.model import Finding, Severity
from lspguard.gopls.identity import SCRIPT_WARNING

if TYPE_CHECKING:
    from lspguard.doctor.context import DoctorContext

__all__ = ["shim_findings"]

_GO_MINOR = re.compile(r"go1\.(\d+)")


def _reinstall(path: str) -> str:
    return f"lspguard install-shim {os.path.dirname(path)}"


def shim_findings(ctx: DoctorContext, path: str, kind: str, go_minor: int | None
                  ) -> list[Finding]:
    """Findings on the shim at `path` ("native" or "script"); `go_minor` is the go command's
    Go 1.N (None if unknown)."""
    if kind == "script":
        return [Finding(
            "toolchain.shim-build", Severity.WARNING, "The gopls shim is a Python script",
            found=f"{path} is lspguard's script shim (written with --script, or where no Go "
                  "toolchain was found).",
            why=SCRIPT_WARNING + ".",
            fix=f"With Go on PATH, run `{_reinstall(path)}`: it builds the native shim.",
            path=path)]
    result = ctx.command("toolchain", "the gopls shim's build info", [path],
                         cwd=ctx.command_cwd(), timeout=ctx.limits.subprocess_seconds,
                         env={"LSPGUARD_LAUNCHER_SELFTEST": "info"})
    try:
        info = json.loads(result.stdout if isinstance(result, CommandResult) and result.ok
                          else "")
        built_go, built_by, python = str(info["go"]), str(info["version"]), str(info["python"])
    except (ValueError, KeyError, TypeError):
        return [Finding("toolchain.shim-build", Severity.WARNING, "The gopls shim does not run",
                        found=f"{path} did not say what it was built from.",
                        why="It may be damaged or built for another machine.",
                        fix=f"Run `{_reinstall(path)}`.", path=path)]
    problems: list[str] = []
    match = _GO_MINOR.search(built_go)
    if match and go_minor is not None and int(match[1]) < go_minor:
        problems.append(f"it was built with {built_go} and the go command is Go 1.{go_minor}: "
                        "VS Code Go will warn \"Tools (gopls) need recompiling\"")
    if built_by != __version__:
        problems.append(f"it was built by lspguard {built_by}, and this is lspguard "
                        f"{__version__}")
    if not os.access(python, os.X_OK):
        return [Finding("toolchain.shim-build", Severity.ERROR, "The gopls shim's Python is gone",
                        found=f"{path} runs lspguard with {python}, which is not there any more.",
                        why="`gopls version` still works through it, but every LSP session "
                            "fails: the editor gets no gopls.",
                        fix=f"Run `{_reinstall(path)}` with the lspguard you use now.",
                        path=path)]
    if problems:
        return [Finding("toolchain.shim-build", Severity.WARNING, "The gopls shim is out of date",
                        found=f"{path}: " + "; ".join(problems) + ".",
                        why="A shim is built for one Go, one lspguard and one Python.",
                        fix=f"Run `{_reinstall(path)}`: it builds it again.", path=path)]
    return [Finding("toolchain.shim-build", Severity.OK,
                    f"native gopls shim ({built_go}, lspguard {built_by})",
                    found=f"{path}: built with {built_go} by lspguard {built_by}.", path=path)]

"""Doctor check `toolchain`: the go command and gopls, their versions, and `go env` itself.

gopls runs `go env` and `go list` for everything, so a missing go, a `go env` that hangs (a
GOTOOLCHAIN download with no network, a GOENV file on a dead mount) or a gopls built with an
older Go than the go command explains many "Initializing..." hangs. Every command here runs in
a bounded helper (bounded.run_command: the PATH lookup, the chdir and the exec may each hang on
a dead mount), and a timeout is itself a finding.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from lspguard.doctor.bounded import CommandResult, TimedOut
from lspguard.doctor.hung import NotChecked
from lspguard.doctor.model import Finding, Severity
from lspguard.doctor.shim import shim_findings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lspguard.doctor.context import DoctorContext

__all__ = ["check_toolchain", "describe", "go_minor", "load_go_env"]


def describe(result: CommandResult | TimedOut, argv: Sequence[str]) -> str:
    """One line for a command that failed or was killed."""
    if isinstance(result, TimedOut):
        return f"`{' '.join(argv)}` did not finish in time and was killed"
    return result.describe()


def _ok(result: CommandResult | TimedOut) -> bool:
    return isinstance(result, CommandResult) and result.ok


def _missing(result: CommandResult | TimedOut) -> bool:
    return isinstance(result, CommandResult) and not result.path


_GO_MISSING_WHY = ("gopls runs the go command for every package load (`go env`, `go list`); "
                   "without it gopls cannot load anything.")
_GO_MISSING_FIX = ("Install Go (https://go.dev/dl) and make sure the PATH gopls starts with "
                   "contains it: VS Code's \"go.goroot\" setting, or \"remoteEnv\": {\"PATH\": "
                   "...} in devcontainer.json.")


def _go_missing(ctx: DoctorContext, finding_id: str) -> Finding:
    return Finding(finding_id, Severity.ERROR, "The go command is not on PATH",
                   found=f"No `go` on PATH={ctx.environ.get('PATH', '')!r}.",
                   why=_GO_MISSING_WHY, fix=_GO_MISSING_FIX)


def load_go_env(ctx: DoctorContext) -> tuple[dict[str, str] | None, list[Finding]]:
    """`go env -json` run in the workspace, as gopls runs it; findings if it fails or hangs."""
    timeout = ctx.limits.subprocess_seconds
    argv = ["go", "env", "-json"]
    try:
        result = ctx.command("goenv", "`go env`", argv, cwd=str(ctx.workspace), timeout=timeout)
    except NotChecked as exc:
        return None, [exc.finding]
    if _missing(result):
        return None, [_go_missing(ctx, "goenv.go-missing")]
    if isinstance(result, TimedOut):
        return None, [Finding(
            "goenv.timeout", Severity.ERROR, "`go env` hangs",
            found=f"`go env -json` in {ctx.workspace} did not finish within {result.limit:g} s.",
            why="gopls runs `go env` before anything else when it opens a folder, so gopls "
                "hangs in \"Initializing...\" too. Usual causes: GOTOOLCHAIN trying to download "
                "the toolchain that go.mod's go/toolchain line asks for without network, or a "
                "GOENV file or GOROOT on a hung network mount.",
            fix="Run `go env` in a terminal in this folder to see where it stops; install the Go "
                "version go.mod asks for or set GOTOOLCHAIN=local; check that GOPROXY is "
                "reachable from here.")]
    env: dict[str, str] | None = None
    if result.ok:
        with suppress(ValueError):
            parsed = json.loads(result.stdout)
            if isinstance(parsed, dict):
                env = {str(k): str(v) for k, v in parsed.items()}
    if env is None:
        return None, [Finding(
            "goenv.failed", Severity.ERROR, "`go env` fails",
            found=result.describe() if not result.ok else "`go env -json` printed no JSON.",
            why="gopls starts by running `go env` in the folder; when it fails, gopls cannot "
                "create a view and reports this error (or nothing) instead of loading packages.",
            fix="Fix what the error says (often a go.mod/go.work asking for a newer Go with "
                "GOTOOLCHAIN=local, or a bad GOFLAGS/GOENV setting), then reload the window.")]
    return env, []


_GO_VERSION = re.compile(r"\bgo(\d+)\.(\d+)")


def go_minor(text: str) -> int | None:
    """The X of Go 1.X in a version string like `go1.26.8` or `go version go1.22 linux/amd64`."""
    match = _GO_VERSION.search(text)
    return int(match.group(2)) if match and match.group(1) == "1" else None


def _gopls_version(gopls: str, ctx: DoctorContext
                   ) -> tuple[CommandResult | TimedOut, list[str], dict[str, Any]]:
    timeout = ctx.limits.subprocess_seconds
    argv = [gopls, "version", "-json"]
    result = ctx.command("toolchain", "`gopls version`", argv, cwd=ctx.command_cwd(),
                         timeout=timeout)
    info: dict[str, Any] = {}
    if isinstance(result, CommandResult) and result.ok:
        with suppress(ValueError):
            info = json.loads(result.stdout)
    if not info and isinstance(result, CommandResult):  # very old gopls: no -json
        argv = [gopls, "version"]
        result = ctx.command("toolchain", "`gopls version`", argv, cwd=ctx.command_cwd(),
                             timeout=timeout)
        match = re.search(r"\s(v\d+\.\d+\.\d+\S*|\(devel\))",
                          result.stdout if isinstance(result, CommandResult) else "")
        if _ok(result) and match:
            info = {"Version": match.group(1)}
    return result, argv, info


def _gopls_findings(ctx: DoctorContext, go_text: str) -> list[Finding]:
    found = ctx.probe("toolchain", "finding gopls", "lspguard.doctor.probes:find_gopls",
                      {"configured": ctx.gopls, "workspace": str(ctx.workspace)},
                      paths=[ctx.workspace], env=ctx.environ,
                      timeout=2 * ctx.limits.probe_seconds)
    gopls = found["gopls"]
    if not gopls:
        return [Finding("toolchain.gopls", Severity.ERROR, "gopls not found",
                        found=found["error"],
                        why="There is no language server for lspguard to guard.",
                        fix="go install golang.org/x/tools/gopls@latest")]
    findings = []
    if found["on_path_is_shim"]:
        findings.append(Finding(
            "toolchain.shim", Severity.INFO, "The lspguard shim is first on PATH",
            found=f"`gopls` on PATH is the lspguard shim {found['on_path']}; the real gopls is "
                  f"{gopls}.", path=found["on_path"]))
    for path, kind in found["shims"].items():
        findings.extend(shim_findings(ctx, path, kind, go_minor(go_text)))
    result, argv, info = _gopls_version(gopls, ctx)
    if not info:
        findings.append(Finding(
            "toolchain.gopls", Severity.ERROR, "`gopls version` fails",
            found=describe(result, argv),
            why="vscode-go runs `gopls version` before starting it; a gopls that cannot "
                "answer that will not serve the editor either.",
            fix="Reinstall it: go install golang.org/x/tools/gopls@latest", path=gopls))
        return findings
    version = str(info.get("Version") or info.get("Main", {}).get("Version") or "?")
    built = str(info.get("GoVersion", ""))
    findings.append(Finding(
        "toolchain.gopls", Severity.OK, f"gopls {version}",
        found=f"{gopls}: gopls {version}" + (f", built with {built}" if built else "") + ".",
        path=gopls))
    built_minor, go_minor_ = go_minor(built), go_minor(go_text)
    if built_minor is not None and go_minor_ is not None and built_minor < go_minor_:
        findings.append(Finding(
            "toolchain.gopls-build", Severity.WARNING, "gopls was built with an older Go",
            found=f"gopls was built with {built} but the go command is Go 1.{go_minor_}.",
            why="gopls type-checks with the go/types it was compiled with; code or dependencies "
                f"that need Go 1.{go_minor_} features fail with \"requires newer Go version\" "
                "errors, and gopls cannot understand the newer standard library.",
            fix="Rebuild gopls with the current go: go install golang.org/x/tools/gopls@latest",
            path=gopls))
    return findings


def check_toolchain(ctx: DoctorContext) -> list[Finding]:
    """`go version` and `gopls version`, each bounded."""
    findings: list[Finding] = []
    argv = ["go", "version"]
    go_text = ""
    try:
        result = ctx.command("toolchain", "`go version`", argv, cwd=ctx.command_cwd(),
                             timeout=ctx.limits.subprocess_seconds)
    except NotChecked as exc:
        findings.append(exc.finding)
    else:
        if _missing(result):
            findings.append(_go_missing(ctx, "toolchain.go"))
        elif isinstance(result, CommandResult) and result.ok and result.stdout.strip():
            go_text = result.stdout.strip()
            findings.append(Finding("toolchain.go", Severity.OK, go_text.removeprefix(
                "go version ").split(" ")[0], found=f"{result.path}: {go_text}.",
                path=result.path))
        else:
            findings.append(Finding(
                "toolchain.go", Severity.ERROR, "`go version` fails",
                found=describe(result, argv),
                why="gopls runs the go command for every package load; if `go version` hangs "
                    "or fails here (often a GOTOOLCHAIN download), gopls does the same.",
                fix="Run `go version` in a terminal in this folder; install the Go version "
                    "go.mod asks for, or set GOTOOLCHAIN=local.",
                path=result.path if isinstance(result, CommandResult) else None))
    try:
        findings.extend(_gopls_findings(ctx, go_text))
    except NotChecked as exc:
        findings.append(exc.finding)
    return findings

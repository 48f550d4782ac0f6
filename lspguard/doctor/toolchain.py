"""Doctor check `toolchain`: the go command and gopls, their versions, and `go env` itself.

gopls runs `go env` and `go list` for everything, so a missing go, a `go env` that hangs (a
GOTOOLCHAIN download with no network, a GOENV file on a dead mount) or a gopls built with an
older Go than the go command explains many "Initializing..." hangs. Every subprocess here runs
in its own process group with a timeout, and a timeout is itself a finding.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import Finding, Severity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .context import DoctorContext

__all__ = ["RunResult", "check_toolchain", "go_minor", "load_go_env", "run_bounded"]


@dataclass(frozen=True, slots=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str = ""  # could not start it at all

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.error

    def describe(self) -> str:
        cmd = " ".join(self.argv)
        if self.error:
            return f"`{cmd}` could not start: {self.error}"
        if self.timed_out:
            return f"`{cmd}` did not finish in time and was killed"
        tail = (self.stderr.strip() or self.stdout.strip())[-500:]
        return f"`{cmd}` exited with status {self.returncode}" + (f": {tail}" if tail else "")


def run_bounded(argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str],
                timeout: float) -> RunResult:
    """Run a command with no stdin and a timeout; on timeout kill its whole process group."""
    args = tuple(argv)
    try:
        proc = subprocess.Popen(args, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
    except OSError as exc:
        return RunResult(args, error=str(exc))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()  # at least the child itself
        with suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)  # reap it; pipes held open by escapees are abandoned
        return RunResult(args, timed_out=True)
    return RunResult(args, proc.returncode, out, err)


def _which(name: str, environ: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=environ.get("PATH", os.defpath))


_GO_MISSING_WHY = ("gopls runs the go command for every package load (`go env`, `go list`); "
                   "without it gopls cannot load anything.")
_GO_MISSING_FIX = ("Install Go (https://go.dev/dl) and make sure the PATH gopls starts with "
                   "contains it: VS Code's \"go.goroot\" setting, or \"remoteEnv\": {\"PATH\": "
                   "...} in devcontainer.json.")


def load_go_env(workspace: Path, environ: Mapping[str, str],
                timeout: float) -> tuple[dict[str, str] | None, list[Finding]]:
    """`go env -json` run in the workspace, as gopls runs it; findings if it fails or hangs."""
    go = _which("go", environ)
    if go is None:
        return None, [Finding("goenv.go-missing", Severity.ERROR, "The go command is not on PATH",
                              found=f"No `go` on PATH={environ.get('PATH', '')!r}.",
                              why=_GO_MISSING_WHY, fix=_GO_MISSING_FIX)]
    result = run_bounded([go, "env", "-json"], cwd=workspace, env=environ, timeout=timeout)
    if result.timed_out:
        return None, [Finding(
            "goenv.timeout", Severity.ERROR, "`go env` hangs",
            found=f"`go env -json` in {workspace} did not finish within {timeout:g} s.",
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


def _gopls_version(gopls: str, ctx: DoctorContext) -> tuple[RunResult, dict[str, Any]]:
    timeout = ctx.limits.subprocess_seconds
    result = run_bounded([gopls, "version", "-json"], cwd=ctx.workspace, env=ctx.environ,
                         timeout=timeout)
    info: dict[str, Any] = {}
    if result.ok:
        with suppress(ValueError):
            info = json.loads(result.stdout)
    if not info and not result.timed_out:  # very old gopls: no -json
        result = run_bounded([gopls, "version"], cwd=ctx.workspace, env=ctx.environ,
                             timeout=timeout)
        match = re.search(r"\s(v\d+\.\d+\.\d+\S*|\(devel\))", result.stdout)
        if result.ok and match:
            info = {"Version": match.group(1)}
    return result, info


def _gopls_findings(ctx: DoctorContext, go_text: str) -> list[Finding]:
    from lspguard.errors import BackendError
    from lspguard.shim import find_real_gopls, is_shim

    try:
        gopls = find_real_gopls(ctx.gopls, environ=ctx.environ)
    except BackendError as exc:
        return [Finding("toolchain.gopls", Severity.ERROR, "gopls not found", found=str(exc),
                        why="There is no language server for lspguard to guard.",
                        fix="go install golang.org/x/tools/gopls@latest")]
    findings = []
    on_path = _which("gopls", ctx.environ)
    if on_path and os.path.realpath(on_path) != os.path.realpath(gopls):
        with suppress(OSError):
            if is_shim(Path(on_path)):
                findings.append(Finding(
                    "toolchain.shim", Severity.INFO, "The lspguard shim is first on PATH",
                    found=f"`gopls` on PATH is the lspguard shim {on_path}; the real gopls is "
                          f"{gopls}.", path=on_path))
    result, info = _gopls_version(str(gopls), ctx)
    if not info:
        findings.append(Finding(
            "toolchain.gopls", Severity.ERROR, "`gopls version` fails", found=result.describe(),
            why="vscode-go runs `gopls version` before starting it; a gopls that cannot "
                "answer that will not serve the editor either.",
            fix="Reinstall it: go install golang.org/x/tools/gopls@latest", path=str(gopls)))
        return findings
    version = str(info.get("Version") or info.get("Main", {}).get("Version") or "?")
    built = str(info.get("GoVersion", ""))
    findings.append(Finding(
        "toolchain.gopls", Severity.OK, f"gopls {version}",
        found=f"{gopls}: gopls {version}" + (f", built with {built}" if built else "") + ".",
        path=str(gopls)))
    built_minor, go_minor_ = go_minor(built), go_minor(go_text)
    if built_minor is not None and go_minor_ is not None and built_minor < go_minor_:
        findings.append(Finding(
            "toolchain.gopls-build", Severity.WARNING, "gopls was built with an older Go",
            found=f"gopls was built with {built} but the go command is Go 1.{go_minor_}.",
            why="gopls type-checks with the go/types it was compiled with; code or dependencies "
                f"that need Go 1.{go_minor_} features fail with \"requires newer Go version\" "
                "errors, and gopls cannot understand the newer standard library.",
            fix="Rebuild gopls with the current go: go install golang.org/x/tools/gopls@latest",
            path=str(gopls)))
    return findings


def check_toolchain(ctx: DoctorContext) -> list[Finding]:
    """`go version` and `gopls version`, each bounded."""
    findings: list[Finding] = []
    go = _which("go", ctx.environ)
    go_text = ""
    if go is None:
        findings.append(Finding("toolchain.go", Severity.ERROR, "The go command is not on PATH",
                                found=f"No `go` on PATH={ctx.environ.get('PATH', '')!r}.",
                                why=_GO_MISSING_WHY, fix=_GO_MISSING_FIX))
    else:
        result = run_bounded([go, "version"], cwd=ctx.workspace, env=ctx.environ,
                             timeout=ctx.limits.subprocess_seconds)
        go_text = result.stdout.strip()
        if result.ok and go_text:
            findings.append(Finding("toolchain.go", Severity.OK, go_text.removeprefix(
                "go version ").split(" ")[0], found=f"{go}: {go_text}.", path=go))
        else:
            findings.append(Finding(
                "toolchain.go", Severity.ERROR, "`go version` fails", found=result.describe(),
                why="gopls runs the go command for every package load; if `go version` hangs "
                    "or fails here (often a GOTOOLCHAIN download), gopls does the same.",
                fix="Run `go version` in a terminal in this folder; install the Go version "
                    "go.mod asks for, or set GOTOOLCHAIN=local.", path=go))
    findings.extend(_gopls_findings(ctx, go_text))
    return findings

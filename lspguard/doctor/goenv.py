"""Doctor check `goenv`: settings in `go env` that make gopls fail to load, or load the wrong
thing, or load forever.

Each rule is a setting that looks harmless in a shell but changes what every `go list` gopls
runs does: `-mod=vendor` with no vendor directory, GOPROXY=off, GOPATH mode, a module cache
inside the workspace, a go/packages driver that replaces `go list`, a go.work from elsewhere.
The few files the rules look at are stat'ed by bounded probes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lspguard.doctor.context import is_within
from lspguard.doctor.hung import NotChecked
from lspguard.doctor.model import Finding, Severity

if TYPE_CHECKING:
    from lspguard.doctor.context import DoctorContext

__all__ = ["check_goenv"]


def _module_root(ctx: DoctorContext) -> Path:
    for key in ("GOWORK", "GOMOD"):
        value = ctx.go_env.get(key, "")
        if value and value not in ("off", os.devnull) and os.path.isabs(value):
            return Path(value).parent
    return ctx.workspace


def _vendor(ctx: DoctorContext) -> list[Finding]:
    flags = ctx.go_env.get("GOFLAGS", "").split()
    if not any(f.lstrip("-") == "mod=vendor" for f in flags):
        return []
    root = _module_root(ctx)
    if ctx.path_info("goenv", root / "vendor" / "modules.txt", "vendor/modules.txt").is_file:
        return []
    return [Finding(
        "goenv.mod-vendor", Severity.ERROR, "GOFLAGS has -mod=vendor but there is no vendor/",
        found=f"GOFLAGS={ctx.go_env.get('GOFLAGS', '')!r}, and {root / 'vendor' / 'modules.txt'} "
              "does not exist.",
        why="With -mod=vendor the go command resolves every import from vendor/; without it "
            "every `go list` gopls runs fails (\"inconsistent vendoring\", \"cannot find module "
            "providing package\"), so gopls shows errors everywhere or no packages at all.",
        fix="Run `go mod vendor`, or drop -mod=vendor from GOFLAGS (`go env -w GOFLAGS=` / unset "
            "it in the editor's environment); the go command uses vendor/ by itself when it "
            "exists.", path=str(root))]


def _goproxy(ctx: DoctorContext) -> list[Finding]:
    if ctx.go_env.get("GOPROXY", "") != "off":
        return []
    return [Finding(
        "goenv.goproxy-off", Severity.WARNING, "GOPROXY=off",
        found="GOPROXY=off: modules not already in GOMODCACHE cannot be downloaded.",
        why="`go list` then fails for every package with a missing dependency (\"module lookup "
            "disabled by GOPROXY=off\"); gopls reports the imports as broken and reloads after "
            "each go.mod change.",
        fix="Unset it (`go env -u GOPROXY`) or point it at a reachable proxy; to work offline, "
            "fill the cache first with `go mod download`, or vendor with `go mod vendor`.")]


def _modcache_in_workspace(ctx: DoctorContext) -> list[Finding]:
    modcache = ctx.gomodcache
    if modcache is None:
        return []
    ws = ctx.path_info("goenv", ctx.workspace, "the workspace").real
    real = ctx.path_info("goenv", modcache, "GOMODCACHE").real
    if not is_within(real, ws):
        return []
    return [Finding(
        "goenv.modcache-in-workspace", Severity.WARNING, "GOMODCACHE is inside the workspace",
        found=f"GOMODCACHE={modcache} is inside the workspace {ctx.workspace}.",
        why="gopls filters it out of its own view, but the editor's file watcher and search walk "
            "its hundreds of thousands of files and send gopls change events for them; in a "
            "bind-mounted workspace it also sits on slow host file sharing.",
        fix="Move it out: `go env -w GOMODCACHE=$HOME/go/pkg/mod` (in a container, a named "
            "volume); if it must stay, add it to \"files.watcherExclude\" and \"search.exclude\".",
        path=str(modcache))]


def _gopath_mode(ctx: DoctorContext) -> list[Finding]:
    if ctx.go_env.get("GO111MODULE", "") != "off":
        return []
    return [Finding(
        "goenv.gopath-mode", Severity.WARNING, "GO111MODULE=off (GOPATH mode)",
        found="GO111MODULE=off: the go command ignores go.mod and looks for code in GOPATH/src.",
        why="gopls's GOPATH-mode support is minimal: packages outside GOPATH/src are not found, "
            "imports of modules are broken, and loading a large GOPATH walks all of it.",
        fix="`go env -u GO111MODULE` (modules are the default since Go 1.16); for old GOPATH "
            "code, add a go.mod with `go mod init`.")]


def _packagesdriver(ctx: DoctorContext) -> list[Finding]:
    driver = ctx.environ.get("GOPACKAGESDRIVER", "") or ctx.go_env.get("GOPACKAGESDRIVER", "")
    if not driver or driver == "off":
        return []
    resolved = ctx.probe("goenv", f"GOPACKAGESDRIVER={driver}", "lspguard.doctor.probes:which",
                         {"name": driver}, paths=[driver] if os.path.isabs(driver) else [],
                         env=ctx.environ, timeout=2 * ctx.limits.probe_seconds)
    why = ("gopls loads packages through golang.org/x/tools/go/packages, which runs this program "
           "instead of `go list` when GOPACKAGESDRIVER is set (Bazel's and Buck's rules_go "
           "drivers do this); every load, and so every \"Loading packages...\", waits for it.")
    if resolved is None:
        return [Finding(
            "goenv.packagesdriver", Severity.ERROR, "GOPACKAGESDRIVER names a missing program",
            found=f"GOPACKAGESDRIVER={driver!r} is not an executable file or on PATH.",
            why=why + " With the program missing, every load fails.",
            fix="Unset GOPACKAGESDRIVER (or set it to off) in the environment the editor starts "
                "gopls with, or fix the path.")]
    return [Finding(
        "goenv.packagesdriver", Severity.INFO, "A go/packages driver replaces `go list`",
        found=f"GOPACKAGESDRIVER={driver!r} ({resolved}).", why=why + " If it is slow or "
        "hangs, gopls does too, with no go command in sight.",
        fix="If you did not mean to use a driver, unset it (or set GOPACKAGESDRIVER=off). "
            "Otherwise time it by hand (`echo '{}' | GOPACKAGESDRIVER ./...` as its docs say) "
            "and scope the workspace.", path=resolved)]


def _gowork(ctx: DoctorContext) -> list[Finding]:
    gowork = ctx.go_env.get("GOWORK", "")
    if not gowork or gowork == "off":
        return []
    path = Path(gowork)
    if not ctx.path_info("goenv", path, "GOWORK").is_file:
        return [Finding(
            "goenv.gowork-missing", Severity.ERROR, "GOWORK names a missing file",
            found=f"GOWORK={gowork} does not exist.",
            why="The go command fails every command with \"GOWORK file not found\", so gopls "
                "cannot load anything.",
            fix="Unset GOWORK (`go env -u GOWORK`, or unset it in the editor's environment), or "
                "point it at an existing go.work.")]
    ws = ctx.path_info("goenv", ctx.workspace, "the workspace").real
    work_dir = ctx.path_info("goenv", path.parent, "GOWORK").real
    if is_within(work_dir, ws):
        return []
    if is_within(ws, work_dir):
        return [Finding(
            "goenv.gowork-parent", Severity.INFO, "A go.work above the workspace applies",
            found=f"GOWORK={gowork}, in a parent of the workspace.",
            why="gopls loads every module that go.work lists, including ones outside this folder, "
                "so a large go.work makes gopls slower than this folder suggests.",
            fix="Nothing if intended; otherwise open the go.work folder, or set GOWORK=off for "
                "this folder.", path=gowork)]
    return [Finding(
        "goenv.gowork-outside", Severity.WARNING, "GOWORK points outside the workspace",
        found=f"GOWORK={gowork} is neither in the workspace nor in a parent of it.",
        why="gopls loads every module that file lists, none of which may be this folder; code "
            "here then resolves against other checkouts, or is \"not in the workspace\".",
        fix="Unset GOWORK (it is usually left in the environment or in `go env -w` by another "
            "project), or add this module to it with `go work use`.", path=gowork)]


def _goroot(ctx: DoctorContext) -> list[Finding]:
    goroot = ctx.go_env.get("GOROOT", "")
    if not goroot or not os.path.isabs(goroot) or \
            ctx.path_info("goenv", os.path.join(goroot, "src"), "GOROOT").is_dir:
        return []
    return [Finding(
        "goenv.goroot", Severity.ERROR, "GOROOT has no standard library",
        found=f"GOROOT={goroot} has no src/ directory.",
        why="gopls cannot type-check anything without the standard library sources: every "
            "import of fmt or os is broken.",
        fix="Unset GOROOT (the go command finds its own), or reinstall Go.", path=goroot)]


def _paths(ctx: DoctorContext) -> list[str | Path]:
    """What the rules will stat: fetched together, one helper per mount."""
    paths: list[str | Path] = [ctx.workspace, _module_root(ctx) / "vendor" / "modules.txt"]
    if ctx.gomodcache is not None:
        paths.append(ctx.gomodcache)
    gowork = ctx.go_env.get("GOWORK", "")
    if gowork and gowork != "off":
        paths += [gowork, Path(gowork).parent]
    goroot = ctx.go_env.get("GOROOT", "")
    if goroot and os.path.isabs(goroot):
        paths.append(os.path.join(goroot, "src"))
    return paths


_RULES = (_vendor, _goproxy, _modcache_in_workspace, _gopath_mode, _packagesdriver, _gowork,
          _goroot)


def check_goenv(ctx: DoctorContext) -> list[Finding]:
    """Apply every rule to the effective go env."""
    if not ctx.go_env_loaded:
        return []  # the runner already reported why `go env` failed; defaults prove nothing
    ctx.prefetch("goenv", _paths(ctx))
    findings = []
    for rule in _RULES:
        try:
            findings.extend(rule(ctx))
        except NotChecked as exc:
            findings.append(exc.finding)
    if not findings:
        shown = ", ".join(f"{k}={ctx.go_env.get(k, '')!r}"
                          for k in ("GOFLAGS", "GOPROXY", "GOWORK", "GOMODCACHE", "GOCACHE"))
        findings.append(Finding("goenv.ok", Severity.OK, "go env looks sane", found=shown + "."))
    return findings

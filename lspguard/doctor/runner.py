"""Run the doctor's checks against one workspace and collect a Report.

The checks poke at exactly the things that hang gopls (network mounts, symlink loops, a `go`
that downloads toolchains). Every filesystem call and command runs in a bounded helper process
(bounded.py), so no check can block the doctor in the kernel; a mount that stopped answering is
reported once, first, as `filesystem.not-answering`. Each check also runs in a daemon thread with
a deadline: a check that does not finish, or raises, becomes a finding instead of hanging or
crashing the doctor.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lspguard.doctor.context import DoctorContext, Limits, ProbeError, default_go_env
from lspguard.doctor.devcontainer import check_devcontainer
from lspguard.doctor.goenv import check_goenv
from lspguard.doctor.hung import NotChecked
from lspguard.doctor.latency import check_latency
from lspguard.doctor.model import Finding, Report, Severity
from lspguard.doctor.mounts import check_mounts
from lspguard.doctor.special import check_special
from lspguard.doctor.symlinks import check_symlinks
from lspguard.doctor.toolchain import check_toolchain, load_go_env
from lspguard.doctor.writable import check_writable

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

__all__ = ["CHECKS", "run_check", "run_doctor"]

#: Every check, in report order. Keys are the first part of each finding id.
CHECKS: dict[str, Callable[[DoctorContext], list[Finding]]] = {
    "toolchain": check_toolchain,
    "goenv": check_goenv,
    "mounts": check_mounts,
    "writable": check_writable,
    "symlinks": check_symlinks,
    "special": check_special,
    "devcontainer": check_devcontainer,
    "latency": check_latency,
}


def run_check(name: str, check: Callable[[DoctorContext], list[Finding]], ctx: DoctorContext,
              timeout: float) -> list[Finding]:
    """Run one check with a deadline; a hang or an exception is reported, never raised."""
    result: list[Finding] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.extend(check(ctx))
        except NotChecked as exc:
            result.append(exc.finding)
        except Exception as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        # The thread is left behind (daemon: it cannot keep the process alive).
        return [Finding(
            f"{name}.timeout", Severity.ERROR, f"The {name} check did not finish",
            found=f"Still running after {timeout:g} s.",
            why="The check touches the same files and commands gopls does; something there "
                "(a hung mount, a `go` command waiting on the network) blocks, and would block "
                "gopls in the same way.",
            fix=f"Rerun `lspguard doctor --check {name}` and look at what it touches (see "
                "`lspguard doctor --help`); a hung network mount shows up in `ls` or `stat` of "
                "the cache directories too.")]
    if failure:
        return [_crashed(name, failure[0])]
    return result


def _crashed(name: str, exc: BaseException) -> Finding:
    return Finding(
        f"{name}.crashed", Severity.WARNING, f"The {name} check failed",
        found=f"{type(exc).__name__}: {exc}",
        why="This is a bug in lspguard doctor, not a finding about your setup; the other "
            "checks still ran.",
        fix="Please report it with this output (lspguard issue tracker).")


def run_doctor(
    workspace: Path,
    *,
    go_env: Mapping[str, str] | None = None,
    mounts_text: str | None = None,
    environ: Mapping[str, str] | None = None,
    checks: Collection[str] | None = None,
    limits: Limits | None = None,
    gopls: str = "",
) -> Report:
    """Check `workspace`. `go_env`/`mounts_text`/`environ` replace `go env -json`,
    /proc/mounts and os.environ (for tests and for diagnosing a copied environment)."""
    limits = limits or Limits()
    env = dict(os.environ) if environ is None else dict(environ)
    ws = Path(os.path.abspath(workspace))
    report = Report(str(ws))
    unknown = set(checks or ()) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown doctor checks: {', '.join(sorted(unknown))}")
    selected = list(CHECKS) if checks is None else [c for c in CHECKS if c in checks]
    ctx = DoctorContext(workspace=ws, go_env=dict(go_env or {}), environ=env,
                        mounts_text=mounts_text, limits=limits, gopls=gopls)
    info = None
    try:
        info = ctx.path_info("workspace", ws, "the workspace")
    except NotChecked as exc:  # a hung mount is reported below, anything else here
        if not ctx.hung:
            report.findings.append(exc.finding)
    except ProbeError as exc:
        report.findings.append(_crashed("workspace", exc))
    if info is not None and not info.is_dir:
        report.findings.append(Finding(
            "workspace.missing", Severity.ERROR, "The workspace is not a directory",
            found=f"{ws} does not exist or is not a directory.",
            fix="Pass the folder you open in the editor: lspguard doctor PATH"))
        return report
    if go_env is None:
        try:
            loaded_env, load_findings = load_go_env(ctx)
        except ProbeError as exc:
            loaded_env, load_findings = None, [_crashed("goenv", exc)]
        ctx.go_env = loaded_env if loaded_env is not None else default_go_env(env)
        ctx.go_env_loaded = loaded_env is not None
        report.findings.extend(load_findings)
    # toolchain runs last: its commands may legitimately take long (a toolchain download), and
    # must not spend the budget that the quick filesystem checks need. Reported in CHECKS order.
    results: dict[str, list[Finding]] = {}
    for name in sorted(selected, key=lambda n: n == "toolchain"):
        # The probes are bounded by the budget; this only catches a check that loops.
        timeout = max(ctx.remaining(), 0) + 2 * limits.probe_seconds
        results[name] = run_check(name, CHECKS[name], ctx, timeout)
    report.findings.extend(f for name in selected for f in results[name])
    report.findings[:0] = ctx.hung_findings()
    return report

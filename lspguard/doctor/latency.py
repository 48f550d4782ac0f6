"""Doctor check `latency`: how long one stat takes in the module cache and in the workspace.

gopls's start is dominated by metadata calls (`go list` stats every file of every package it
loads), so the per-stat cost, not bandwidth, decides whether "Loading packages..." takes two
seconds or ten minutes. A local disk answers a stat in microseconds; host file sharing and
network filesystems take milliseconds. The sample is bounded in files and in time, and taken in
a bounded helper (the workspace's by the shared workspace walk): a mount that does not answer at
all is reported as `filesystem.not-answering`, not as a slow one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lspguard.doctor.hung import NotChecked
from lspguard.doctor.model import Finding, Severity

if TYPE_CHECKING:
    from pathlib import Path

    from lspguard.doctor.context import DoctorContext

__all__ = ["check_latency", "judge", "percentile"]

#: (p50 ms, p99 ms) at or above which a tree is flagged. Local disks: ~0.005 ms per stat.
WARN_MS = (0.5, 20.0)
ERROR_MS = (5.0, 200.0)
_MIN_SAMPLES = 5


def percentile(values: list[int], pct: float) -> int:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def judge(key: str, label: str, root: Path | str, durations: list[int]) -> Finding:
    """The finding for one tree's lstat durations (ns)."""
    if len(durations) < _MIN_SAMPLES:
        return Finding(f"latency.{key}", Severity.INFO, f"{label}: too few files to sample",
                       found=f"Only {len(durations)} entries under {root}.", path=str(root))
    p50, p99 = percentile(durations, 50) / 1e6, percentile(durations, 99) / 1e6
    numbers = f"stat latency over {len(durations)} entries of {root}: p50 {p50:.3f} ms, " \
              f"p99 {p99:.3f} ms"
    if p50 >= ERROR_MS[0] or p99 >= ERROR_MS[1]:
        severity = Severity.ERROR
    elif p50 >= WARN_MS[0] or p99 >= WARN_MS[1]:
        severity = Severity.WARNING
    else:
        return Finding(f"latency.{key}", Severity.OK, f"{label}: stat is fast",
                       found=numbers + ".", path=str(root))
    return Finding(
        f"latency.{key}", severity, f"{label}: slow stat (p50 {p50:.2f} ms)",
        found=numbers + f" (a local disk answers in about 0.01 ms; flagged at p50 >= "
                        f"{WARN_MS[0]} ms or p99 >= {WARN_MS[1]:g} ms).",
        why="gopls's package loading stats every file of every package it loads, tens of "
            "thousands of calls for a typical module and its dependencies; at this latency "
            "that alone takes minutes, which the editor shows as \"Loading packages...\".",
        fix="See the mounts.* findings for the filesystem: move caches to local disk or a named "
            "volume; for sources on macOS Docker Desktop use VirtioFS, consistency=cached or a "
            "container volume clone. On a local filesystem, look for a failing disk, a virus "
            "scanner, or an overloaded host.",
        path=str(root))


def _sample(ctx: DoctorContext, key: str, root: Path) -> list[int]:
    if key == "workspace":
        return list(ctx.workspace_tree("latency")["durations"])
    real = ctx.path_info("latency", root).real
    summary = ctx.tree("latency", "the module cache", real, links=False,
                       max_entries=ctx.limits.sample_files * 50,
                       seconds=ctx.limits.sample_seconds)
    return list(summary["durations"])


def check_latency(ctx: DoctorContext) -> list[Finding]:
    """Sample the module cache and the workspace."""
    findings = []
    trees: list[tuple[str, str, Path | None]] = [
        ("gomodcache", "Module cache", ctx.gomodcache),
        ("workspace", "Workspace", ctx.workspace),
    ]
    for key, label, root in trees:
        try:
            if root is None or not ctx.path_info("latency", root, f"the {label.lower()}").is_dir:
                findings.append(Finding(f"latency.{key}", Severity.INFO,
                                        f"{label}: nothing to sample",
                                        found=f"{root or 'unset'} does not exist (yet)."))
                continue
            findings.append(judge(key, label, root, _sample(ctx, key, root)))
        except NotChecked as exc:
            findings.append(exc.finding)
    return findings

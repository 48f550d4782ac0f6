"""Doctor check `mounts`: GOMODCACHE, GOCACHE, the gopls cache and the workspace on slow or foreign
filesystems (Docker Desktop file sharing, 9p, NFS, SMB, sshfs...).

gopls's start is a storm of stat/open/read calls over the module cache, the build cache and the
workspace. On a host share every metadata call is a round trip out of the VM, which is how
"Loading packages..." takes minutes in Dev Containers and on macOS Docker Desktop. The filesystem
of a path is the `/proc/mounts` entry with the longest mount-point prefix of its real path; how
slow each type is for gopls is the `tier` column of lspguard.procfs.fstypes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lspguard.doctor.hung import NotChecked
from lspguard.doctor.model import Finding, Severity
from lspguard.procfs.fstypes import MODERATE, SLOW, fs_type
from lspguard.procfs.mounts import mount_for

if TYPE_CHECKING:
    from pathlib import Path

    from lspguard.doctor.context import DoctorContext

__all__ = ["check_mounts", "classify"]


def classify(fstype: str) -> tuple[str, str] | None:
    """(tier, description) for a filesystem type that is slow for gopls, else None."""
    row = fs_type(fstype)
    return None if row.tier is None else (row.tier, row.label)


@dataclass(frozen=True, slots=True)
class _Target:
    key: str  # finding id suffix
    label: str
    severity: dict[str, Severity]
    why: str
    fix: str


_CACHE_SEV = {SLOW: Severity.ERROR, MODERATE: Severity.WARNING}
_OTHER_SEV = {SLOW: Severity.WARNING, MODERATE: Severity.INFO}

_TARGETS = {
    "gomodcache": _Target(
        "gomodcache", "GOMODCACHE", _CACHE_SEV,
        "gopls (through `go list` and its import scanner for unimported completions) stats and "
        "reads thousands of files in the module cache at startup; over {desc} every one of "
        "those calls leaves the VM, turning seconds into minutes of \"Loading packages...\", "
        "and the go command's file locks in cache/download are unreliable on such shares.",
        "Put the module cache on the container's own disk, e.g. a named volume: in "
        "devcontainer.json \"mounts\": [\"source=gomodcache,target=/go/pkg/mod,type=volume\"] "
        "with \"containerEnv\": {\"GOMODCACHE\": \"/go/pkg/mod\"} (or `go env -w "
        "GOMODCACHE=<local dir>` outside containers).",
    ),
    "gocache": _Target(
        "gocache", "GOCACHE", _CACHE_SEV,
        "gopls's package loading (`go list -export`) and builds read, write and lock many small "
        "files in the build cache; over {desc} that is slow and file locking can stall.",
        "Put the build cache on the container's own disk, e.g. a named volume mounted at "
        "/root/.cache/go-build with \"containerEnv\": {\"GOCACHE\": \"/root/.cache/go-build\"} "
        "(or `go env -w GOCACHE=<local dir>`).",
    ),
    "goplscache": _Target(
        "goplscache", "The gopls cache", _OTHER_SEV,
        "gopls persists type information and analysis facts there, writing thousands of small "
        "files during its first load; over {desc} that slows every start.",
        "Set GOPLSCACHE to a directory on a local filesystem (gopls uses $GOPLSCACHE/gopls).",
    ),
    "workspace": _Target(
        "workspace", "The workspace", _OTHER_SEV,
        "gopls and the editor's file watcher stat every file of the workspace; over {desc} this "
        "is many times slower than a native filesystem. It is often unavoidable for the "
        "sources, which is why the caches must not be on such a filesystem too.",
        "On macOS Docker Desktop choose VirtioFS as the file sharing implementation, add "
        "consistency=cached to the bind mount, or clone the repository into a container volume "
        "(Dev Containers: \"Clone Repository in Container Volume\"). Over SSH or NFS, open the "
        "folder on the machine that holds it (VS Code Remote-SSH) instead of through a mount.",
    ),
}


def check_mounts(ctx: DoctorContext) -> list[Finding]:
    """Report each of the four trees gopls depends on that sits on a slow or foreign fs."""
    mounts = ctx.mount_table()
    if not mounts:
        return [Finding("mounts.unavailable", Severity.INFO, "No mount table",
                        found="/proc/self/mountinfo is missing or empty (not Linux?); "
                              "filesystem types were not checked.")]
    paths: dict[str, Path | None] = {
        "gomodcache": ctx.gomodcache, "gocache": ctx.gocache,
        "goplscache": ctx.goplscache, "workspace": ctx.workspace,
    }
    ctx.prefetch("mounts", [p for p in paths.values() if p is not None])
    findings = []
    for key, path in paths.items():
        target = _TARGETS[key]
        if path is None:
            continue
        where = f"{target.label} {path}"
        try:
            info = ctx.path_info("mounts", path, f"{target.label} {path}")
        except NotChecked:  # on a mount that does not answer: judge it by the lexical path
            real = os.path.abspath(path)
        else:
            real = info.real_existing
            if not info.exists:
                where += f" (not created yet; its parent {real})"
            elif real != os.path.abspath(path):
                where += f" (really {real})"
        mount = mount_for(real, mounts)
        if mount is None:
            continue
        on = f"{mount.fs_type} (mounted at {mount.mount_point} from {mount.source})"
        kind = classify(mount.fs_type)
        if kind is None:
            findings.append(Finding(f"mounts.{key}", Severity.OK,
                                    f"{target.label} is on a local filesystem",
                                    found=f"{where} is on {on}.", path=str(path)))
            continue
        tier, desc = kind
        findings.append(Finding(
            f"mounts.{key}", target.severity[tier],
            f"{target.label} is on a {tier} filesystem: {mount.fs_type}",
            found=f"{where} is on {on}: {desc}.",
            why=target.why.format(desc=desc), fix=target.fix, path=str(path)))
    return findings

"""The memory limit the kernel enforces on a process, and whether its OOM killer has struck.

A container's memory limit is its memory cgroup's: cgroup v2 `memory.max` (OOM kills counted in
`memory.events`, `oom_kill N`), or cgroup v1 `memory.limit_in_bytes` (counted in
`memory.oom_control`, `oom_kill N`, Linux >= 4.13). The limit may sit on an ancestor (Docker sets
it on the container's cgroup, and a process may live in a child of it), so the effective limit
is the smallest one on the way up. Without a cgroup limit, the machine's own OOM killer counts
in /proc/vmstat (`oom_kill`). All of these are sysfs and procfs reads: they never block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lspguard.procfs.mounts import parse_mountinfo
from lspguard.procfs.read import read_proc_file

__all__ = ["MemoryCgroup", "format_bytes", "global_oom_kills", "memory_cgroup", "rss_bytes"]

# cgroup v1 writes "no limit" as the largest page-aligned long; anything above this is none.
_NO_LIMIT = 1 << 62
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _counter(text: str | None, name: str) -> int | None:
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return None


@dataclass(frozen=True)
class MemoryCgroup:
    """A process's memory cgroup: `name` as /proc/PID/cgroup says, `dirs` its directory in
    the mounted hierarchy followed by its ancestors' up to the mount's root (inside a container,
    the container's own cgroup: where its limit is)."""

    version: int  # 1 or 2
    name: str
    dirs: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"cgroup v{self.version} {self.name}"

    def limit_bytes(self) -> int | None:
        """The effective limit: the smallest on the way up; None if there is none."""
        limits: list[int] = []
        filename = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        for directory in self.dirs:
            text = read_proc_file(os.path.join(directory, filename)) or ""
            if text.isdigit() and int(text) < _NO_LIMIT:
                limits.append(int(text))
        return min(limits) if limits else None

    def oom_kills(self) -> int:
        """OOM kills counted in this cgroup and its ancestors (the kill is counted where the
        limit was hit, which may be an ancestor)."""
        filename = "memory.events" if self.version == 2 else "memory.oom_control"
        return sum(_counter(read_proc_file(os.path.join(d, filename)), "oom_kill") or 0
                   for d in self.dirs)

    def usage_bytes(self) -> int | None:
        filename = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        text = (read_proc_file(os.path.join(self.dirs[0], filename)) or "") if self.dirs else ""
        return int(text) if text.isdigit() else None


def memory_cgroup(pid: int, proc: str = "/proc") -> MemoryCgroup | None:
    """The memory cgroup of `pid`, found through its own mount table (so a container's view is
    used inside a container); None when no memory controller is mounted."""
    cgroups = read_proc_file(f"{proc}/{pid}/cgroup")
    mountinfo = read_proc_file(f"{proc}/{pid}/mountinfo")
    if cgroups is None or mountinfo is None:
        return None
    v1 = v2 = None
    for line in cgroups.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "memory" in parts[1].split(","):
            v1 = parts[2]
    for mount in parse_mountinfo(mountinfo):
        if not mount.super_options:
            continue
        point, root = mount.mount_point, mount.root
        if mount.fs_type == "cgroup" and "memory" in mount.super_options.split(",") \
                and v1 is not None:
            found = _under(point, root, v1, 1)
            if found is not None:
                return found
        if mount.fs_type == "cgroup2" and v2 is not None:
            found = _under(point, root, v2, 2)
            if found is not None and os.path.exists(os.path.join(found.dirs[0], "memory.max")):
                return found
    return None


def _under(mount_point: str, mount_root: str, name: str, version: int) -> MemoryCgroup | None:
    """The directories of cgroup `name` in a hierarchy mounted at `mount_point` whose root is
    `mount_root`: the cgroup, then each ancestor below the mount's root."""
    relative = name
    if mount_root != "/" and (name == mount_root or name.startswith(mount_root + "/")):
        relative = name[len(mount_root):]
    parts = [p for p in relative.split("/") if p]
    dirs = [os.path.join(mount_point, *parts[:i]) for i in range(len(parts), -1, -1)]
    if not os.path.isdir(dirs[0]):
        return None
    return MemoryCgroup(version, name, tuple(dirs))


def global_oom_kills(proc: str = "/proc") -> int | None:
    """The machine's OOM kills since boot (/proc/vmstat `oom_kill`)."""
    return _counter(read_proc_file(f"{proc}/vmstat"), "oom_kill")


def rss_bytes(pid: int, proc: str = "/proc") -> int | None:
    """Resident set of one process (/proc/PID/statm: one short read, cheap enough per tick)."""
    text = read_proc_file(f"{proc}/{pid}/statm")
    fields = (text or "").split()
    return int(fields[1]) * _PAGE if len(fields) > 1 and fields[1].isdigit() else None


def format_bytes(n: float, binary: bool = False) -> str:
    """3.0 GB, or 3.0 GiB with `binary` (a limit is usually set in GiB)."""
    step, units = (1024.0, ("B", "KiB", "MiB", "GiB", "TiB")) if binary else \
        (1000.0, ("B", "kB", "MB", "GB", "TB"))
    value = float(n)
    for unit in units:
        if abs(value) < step or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{value:.1f} {units[-1]}"

"""CPU time of the backend process tree, cheap enough for every tick.

`tree_cpu_seconds` is the watchdog's progress signal (a late server burning CPU is busy, one with
flat CPU is stuck). The deeper look at a late server's threads is causes/probe.py's TreeProber.

On Linux it reads /proc directly (each process's `stat`, its threads' `children` lists): the
same numbers psutil gives (utime + stime, descendants found through their parents), without
importing psutil into an idle proxy (about 1 MB of its memory, at its first tick) and without
psutil's scan of every process on the machine for each call. Elsewhere, or on a kernel without
`children` files (CONFIG_PROC_CHILDREN), psutil does it.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["tree_cpu_seconds"]

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")


class _NoChildrenFiles(Exception):
    """This kernel has no /proc/PID/task/TID/children."""


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its live descendants (None if `pid` is gone)."""
    if _PROC:
        with contextlib.suppress(_NoChildrenFiles):
            return _proc_tree_cpu(pid)
    return _psutil_tree_cpu(pid)


def _proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime: fields 14, 15


def _proc_children(pid: int) -> list[int]:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    kids: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(k) for k in f.read().split())
        except FileNotFoundError:
            if os.path.exists(f"/proc/{pid}/task/{tid}"):
                raise _NoChildrenFiles from None
        except OSError:  # the thread or process ended meanwhile
            continue
    return kids


def _proc_tree_cpu(pid: int) -> float | None:
    total = _proc_cpu(pid)
    if total is None:
        return None
    seen, todo = {pid}, _proc_children(pid)
    while todo:
        child = todo.pop()
        if child in seen:
            continue
        seen.add(child)
        cpu = _proc_cpu(child)
        if cpu is not None:
            total += cpu
            todo.extend(_proc_children(child))
    return total


def _psutil_tree_cpu(pid: int) -> float | None:
    import psutil

    try:
        root = psutil.Process(pid)
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = [root]
    except psutil.Error:
        return None
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total

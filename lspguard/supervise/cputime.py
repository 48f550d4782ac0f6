"""CPU time of the backend process tree, from psutil, cheap enough for every tick.

`tree_cpu_seconds` is the watchdog's progress signal (a late server burning CPU is busy, one with
flat CPU is stuck). The deeper look at a late server's threads is causes/probe.py's TreeProber.
"""

from __future__ import annotations

import contextlib

import psutil

__all__ = ["tree_cpu_seconds"]


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its live descendants (None if `pid` is gone)."""
    try:
        procs = _tree(pid)
    except psutil.Error:
        return None
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total

"""One process as /proc/PID/stat describes it: what ties it to a tree (parent, group, session)
and what tells it from a later process with the same pid (its start time).

The line is "PID (comm) S ppid pgrp session ...", and comm may hold spaces and parentheses:
`split_stat` splits it at the last ')', for this module and for threads.py alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lspguard.procfs.read import read_proc_file

__all__ = ["ProcStat", "all_processes", "read_stat", "split_stat", "start_ticks"]

_STOPPED = frozenset("Tt")  # stopped by a signal, or by a tracer
_DEAD = frozenset("ZX")


def split_stat(text: str) -> tuple[str, list[str]]:
    """A stat line's comm, and the fields after it (field 3, the state, first)."""
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat that tie a process to a tree and tell it from a reused pid."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start_ticks: int  # field 22: start time after boot, in clock ticks

    @property
    def stopped(self) -> bool:
        return self.state in _STOPPED

    @property
    def dead(self) -> bool:
        return self.state in _DEAD


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat parsed, or None if there is no such process (or it cannot be read)."""
    text = read_proc_file(f"/proc/{pid}/stat")
    if text is None:
        return None
    _, fields = split_stat(text)
    try:
        return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]),
                        int(fields[19]))
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot): with the pid, names one process for good."""
    stat = read_stat(pid)
    return None if stat is None else stat.start_ticks


def all_processes() -> dict[int, ProcStat]:
    """Every process this one can see, by pid."""
    found: dict[int, ProcStat] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if name.isdigit() and (stat := read_stat(int(name))) is not None:
            found[stat.pid] = stat
    return found

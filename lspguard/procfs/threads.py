"""One thread of a process as /proc/PID/task/TID shows it, one reader per fact.

The state letter, `wchan` (the kernel function it sleeps in), the system call it is in (decoded
by syscalls.py), its kernel stack (root can read it), and the counters that tell a thread stuck
in one call from one going from call to call: context switches and I/O. That is what tells
"blocked reading a FIFO" from "stuck in a FUSE request" from "stopped by SIGSTOP".

Each is one small procfs read that never needs the process's mmap lock, so none blocks on a
hung filesystem (a syscall's path argument, read from the process's memory, can:
syscalls.describe_syscall). Each returns None when its file cannot be read (the thread is
gone, no access).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lspguard.procfs.processes import split_stat
from lspguard.procfs.read import read_proc_file
from lspguard.procfs.syscalls import parse_syscall_line

__all__ = ["STATE_NAMES", "TaskStat", "context_switches", "io_counts", "kernel_stack",
           "task_ids", "task_stat", "task_syscall", "wchan"]

STATE_NAMES = {
    "R": "running", "S": "sleeping", "D": "uninterruptible (disk) sleep", "T": "stopped",
    "t": "tracing stop", "Z": "zombie", "X": "dead", "I": "idle", "P": "parked", "W": "waking",
    "K": "wakekill",
}


def task_ids(pid: int) -> list[int]:
    """The thread ids of process `pid`, sorted; OSError if it is gone."""
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


@dataclass(frozen=True, slots=True)
class TaskStat:
    """What /proc/PID/task/TID/stat says of the thread (None: the line was cut short)."""

    comm: str
    state: str | None  # "R", "S", "D", "T"... (STATE_NAMES)
    utime_s: float | None
    stime_s: float | None


def task_stat(pid: int, tid: int) -> TaskStat | None:
    stat = read_proc_file(f"/proc/{pid}/task/{tid}/stat")
    if stat is None:
        return None
    comm, fields = split_stat(stat)
    times: tuple[float | None, float | None] = (None, None)
    if len(fields) > 12:
        ticks = os.sysconf("SC_CLK_TCK")
        times = int(fields[11]) / ticks, int(fields[12]) / ticks
    return TaskStat(comm, fields[0] if fields else None, *times)


def wchan(pid: int, tid: int) -> str | None:
    """The kernel function the thread sleeps in, as the kernel writes it: "0" when it does not
    sleep in one (or the kernel hides it)."""
    return read_proc_file(f"/proc/{pid}/task/{tid}/wchan")


def task_syscall(pid: int, tid: int) -> dict[str, Any] | None:
    """The system call the thread is in: `syscalls.parse_syscall_line` of its syscall file."""
    line = read_proc_file(f"/proc/{pid}/task/{tid}/syscall")
    return None if line is None else parse_syscall_line(line)


def kernel_stack(pid: int, tid: int, limit: int = 64) -> list[str]:
    """The first `limit` frames of the thread's kernel stack; OSError if it cannot be read
    (only root can)."""
    with open(f"/proc/{pid}/task/{tid}/stack", encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in f.readlines()[:limit]]


def io_counts(pid: int, tid: int | None = None) -> tuple[int, int, int, int] | None:
    """rchar, wchar, syscr, syscw of a process (or one of its threads)."""
    base = f"/proc/{pid}" if tid is None else f"/proc/{pid}/task/{tid}"
    text = read_proc_file(f"{base}/io")
    if not text:
        return None
    counts = dict.fromkeys(("rchar", "wchar", "syscr", "syscw"), 0)
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in counts:
            counts[name] = int(value)
    return counts["rchar"], counts["wchar"], counts["syscr"], counts["syscw"]


def context_switches(pid: int, tid: int) -> int | None:
    """Voluntary + involuntary context switches of a thread: flat while it sleeps in one call."""
    text = read_proc_file(f"/proc/{pid}/task/{tid}/status")
    if not text:
        return None
    total = 0
    for line in text.splitlines():
        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
            total += int(line.rsplit(None, 1)[-1])
    return total

"""Facts about the backend process tree, from psutil and /proc, cheap enough for every tick.

`tree_cpu_seconds` is the watchdog's progress signal (a late server burning CPU is busy, one with
flat CPU is stuck). `probe_threads` is the deeper look taken once something is late: the state
letter of every thread (D uninterruptible, T stopped, Z zombie), its kernel wait channel, and the
system call it is in, with the path of the file it concerns when that can be read.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from .snapshot.proc import read_proc_file
from .snapshot.syscalls import describe_syscall, parse_syscall_line

__all__ = ["ThreadFacts", "TreeFacts", "probe_threads", "tree_cpu_seconds"]

@dataclass(frozen=True)
class ThreadFacts:
    pid: int
    tid: int
    name: str
    state: str  # the /proc state letter: R S D T t Z ...
    wchan: str | None
    syscall: str | None  # "read", "running", or None when unreadable
    path: str | None  # the file the syscall concerns, when known

    def describe(self) -> str:
        where = f" in {self.syscall}" if self.syscall and self.syscall != "running" else ""
        chan = f" (wchan {self.wchan})" if self.wchan and self.wchan != "0" else ""
        on = f" on {self.path}" if self.path else ""
        return f"{self.name}[{self.tid}] state {self.state}{where}{on}{chan}"


@dataclass(frozen=True)
class TreeFacts:
    alive: bool
    main_state: str | None
    threads: tuple[ThreadFacts, ...]

    @property
    def stopped(self) -> bool:
        return self.main_state == "T"

    def in_state(self, letter: str) -> list[ThreadFacts]:
        return [t for t in self.threads if t.state == letter]

    def as_dict(self) -> dict[str, Any]:
        return {"alive": self.alive, "main_state": self.main_state,
                "threads": [asdict(t) for t in self.threads]}


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


def probe_threads(pid: int, max_threads: int = 256) -> TreeFacts:
    """State, wchan and syscall of every thread of `pid` and its descendants."""
    try:
        procs = _tree(pid)
        main_state = _state_letter(pid, pid)
    except psutil.Error:
        return TreeFacts(False, None, ())
    threads: list[ThreadFacts] = []
    for proc in procs:
        try:
            name = proc.name()
            tids = sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
        except (psutil.Error, OSError):
            continue
        for tid in tids[: max_threads - len(threads)]:
            facts = _thread(proc.pid, tid, name)
            if facts is not None:
                threads.append(facts)
    return TreeFacts(main_state is not None, main_state, tuple(threads))


def _state_letter(pid: int, tid: int) -> str | None:
    stat = read_proc_file(f"/proc/{pid}/task/{tid}/stat")
    if stat is None:
        return None
    return stat[stat.rindex(")") + 2]  # the comm field may contain spaces and parentheses


def _thread(pid: int, tid: int, name: str) -> ThreadFacts | None:
    state = _state_letter(pid, tid)
    if state is None:
        return None
    base = f"/proc/{pid}/task/{tid}"
    wchan = read_proc_file(f"{base}/wchan")
    syscall, path = _syscall(pid, tid, read_proc_file(f"{base}/syscall"))
    return ThreadFacts(pid, tid, name, state, wchan or None, syscall, path)


def _syscall(pid: int, tid: int, text: str | None) -> tuple[str | None, str | None]:
    """Name of the syscall a thread is in, and the file its fd argument refers to.

    Never reads the process's memory (a path argument): that takes the process's mmap lock,
    which a process stuck on a hung filesystem holds, and this runs on the event loop. The
    incident bundle reads paths too, in a worker thread with a deadline.
    """
    if not text:
        return None, None
    parsed = describe_syscall(pid, tid, parse_syscall_line(text), read_memory=False)
    if parsed.get("running"):
        return "running", None
    name = parsed.get("name")
    if name is None:
        return ("none" if parsed.get("nr", 0) < 0 else None), None
    return str(name), parsed.get("fd_path")

"""Facts about the backend process tree, from psutil and /proc, cheap enough for every tick.

`tree_cpu_seconds` is the watchdog's progress signal (a late server burning CPU is busy, one with
flat CPU is stuck). `probe_threads` is the deeper look taken once something is late: the state
letter of every thread (D uninterruptible, T stopped, Z zombie), its kernel wait channel, and the
system call it is in, with the path of the file it concerns when that can be read.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass
from typing import Any

import psutil

__all__ = ["ThreadFacts", "TreeFacts", "probe_threads", "syscall_name", "tree_cpu_seconds"]

# x86_64 and aarch64 numbers of the system calls a hung Go program is typically found in.
_SYSCALLS_X86_64 = {
    0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat", 7: "poll",
    8: "lseek", 9: "mmap", 16: "ioctl", 17: "pread64", 18: "pwrite64", 23: "select",
    24: "sched_yield", 35: "nanosleep", 41: "socket", 42: "connect", 43: "accept", 44: "sendto",
    45: "recvfrom", 56: "clone", 59: "execve", 61: "wait4", 72: "fcntl", 78: "getdents",
    89: "readlink", 202: "futex", 217: "getdents64", 228: "clock_gettime", 230: "clock_nanosleep",
    232: "epoll_wait", 247: "waitid", 257: "openat", 262: "newfstatat", 267: "readlinkat",
    270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 332: "statx", 435: "clone3",
}
_SYSCALLS_AARCH64 = {
    17: "getcwd", 29: "ioctl", 56: "openat", 57: "close", 61: "getdents64", 63: "read",
    64: "write", 67: "pread64", 72: "pselect6", 73: "ppoll", 78: "readlinkat", 79: "newfstatat",
    80: "fstat", 98: "futex", 101: "nanosleep", 115: "clock_nanosleep", 124: "sched_yield",
    260: "wait4", 22: "epoll_pwait", 291: "statx", 95: "waitid", 221: "execve",
}
_SYSCALLS = _SYSCALLS_AARCH64 if platform.machine() in ("aarch64", "arm64") else _SYSCALLS_X86_64
# Calls whose first argument is a file descriptor, and those whose second is a path pointer.
_FD_FIRST = {"read", "write", "pread64", "pwrite64", "fstat", "ioctl", "getdents64", "getdents",
             "fcntl", "lseek"}
_PATH_SECOND = {"openat", "newfstatat", "statx", "readlinkat"}
_PATH_FIRST = {"open", "stat", "lstat", "readlink", "execve"}


def syscall_name(number: int) -> str:
    return _SYSCALLS.get(number, f"syscall#{number}")


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


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _state_letter(pid: int, tid: int) -> str | None:
    stat = _read(f"/proc/{pid}/task/{tid}/stat")
    if stat is None:
        return None
    return stat[stat.rindex(")") + 2]  # the comm field may contain spaces and parentheses


def _thread(pid: int, tid: int, name: str) -> ThreadFacts | None:
    state = _state_letter(pid, tid)
    if state is None:
        return None
    base = f"/proc/{pid}/task/{tid}"
    wchan = _read(f"{base}/wchan")
    syscall, path = _syscall(pid, _read(f"{base}/syscall"))
    return ThreadFacts(pid, tid, name, state, wchan or None, syscall, path)


def _syscall(pid: int, text: str | None) -> tuple[str | None, str | None]:
    """Decode /proc/.../syscall ("nr arg0 arg1 ..." in hex, or "running")."""
    if not text:
        return None, None
    fields = text.split()
    if fields[0] == "running" or not fields[0].lstrip("-").isdigit():
        return fields[0], None
    number = int(fields[0])
    if number < 0:
        return "none", None
    name = syscall_name(number)
    args = [int(a, 16) for a in fields[1:7]] if len(fields) >= 7 else []
    path: str | None = None
    if args and name in _FD_FIRST:
        with contextlib.suppress(OSError):
            path = os.readlink(f"/proc/{pid}/fd/{args[0]}")
    elif args and (name in _PATH_SECOND or name in _PATH_FIRST):
        path = _read_c_string(pid, args[1] if name in _PATH_SECOND else args[0])
    return name, path


def _read_c_string(pid: int, address: int, limit: int = 4096) -> str | None:
    """Read a NUL-terminated string from the process's memory (needs ptrace rights, e.g. root)."""
    if address <= 0:
        return None
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            data = mem.read(limit)
    except (OSError, ValueError, OverflowError):
        return None
    return data.split(b"\0", 1)[0].decode("utf-8", "replace") or None

"""What a blocked process is waiting on, read from /proc the way lspguard's evidence snapshot does.

Per thread: the state letter (/proc/PID/task/TID/stat field 3), the kernel wait channel
(/proc/PID/task/TID/wchan), the syscall it sleeps in (/proc/PID/task/TID/syscall: number and
argument registers) and, for the syscalls that take a path, that path read from /proc/PID/mem.
Reading wchan, syscall and mem needs ptrace access to the process (root, or the same user with
ptrace_scope 0); a value that cannot be read is None. Nothing here touches a possibly hung mount:
/proc reads are answered by the kernel alone.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..polling import wait_until

# syscall number -> index of its path argument, for the syscalls a hung file system blocks.
PATH_ARG: dict[str, dict[int, int]] = {
    "x86_64": {2: 0, 4: 0, 6: 0, 21: 0, 80: 0, 82: 0, 83: 0, 87: 0, 89: 0, 257: 1, 258: 1,
               262: 1, 263: 1, 264: 1, 267: 1, 269: 1, 316: 1, 332: 1, 437: 1, 439: 1},
    "aarch64": {34: 1, 35: 1, 38: 1, 48: 1, 49: 0, 56: 1, 78: 1, 79: 1, 276: 1, 291: 1,
                437: 1, 439: 1},
}
SYSCALL_NAMES: dict[str, dict[int, str]] = {
    "x86_64": {0: "read", 1: "write", 2: "open", 4: "stat", 6: "lstat", 7: "poll", 17: "pread64",
               21: "access", 23: "select", 35: "nanosleep", 43: "accept", 45: "recvfrom",
               61: "wait4", 78: "getdents", 80: "chdir", 82: "rename", 83: "mkdir",
               87: "unlink", 89: "readlink", 202: "futex", 217: "getdents64", 232: "epoll_wait",
               257: "openat", 258: "mkdirat", 262: "newfstatat", 263: "unlinkat",
               264: "renameat", 267: "readlinkat", 269: "faccessat", 270: "pselect6",
               271: "ppoll", 281: "epoll_pwait", 288: "accept4", 316: "renameat2", 332: "statx",
               437: "openat2", 439: "faccessat2", 441: "epoll_pwait2"},
    "aarch64": {22: "epoll_pwait", 34: "mkdirat", 35: "unlinkat", 38: "renameat", 48: "faccessat",
                49: "chdir", 56: "openat", 61: "getdents64", 63: "read", 64: "write",
                73: "ppoll", 78: "readlinkat", 79: "newfstatat", 98: "futex", 202: "accept",
                207: "recvfrom", 242: "accept4", 260: "wait4", 276: "renameat2", 291: "statx",
                437: "openat2", 439: "faccessat2", 441: "epoll_pwait2"},
}


@dataclass(frozen=True)
class ThreadWait:
    """One thread of a process, as /proc shows it."""

    pid: int
    tid: int
    comm: str
    state: str                 # R, S, D, T, t, Z, ...
    wchan: str | None          # kernel function it sleeps in ("0" / "" when running)
    syscall: int | None        # syscall number, None when not in a syscall or unreadable
    args: tuple[int, ...]      # the syscall's argument registers
    path: str | None           # the path argument, for path syscalls, when readable

    @property
    def syscall_name(self) -> str | None:
        if self.syscall is None:
            return None
        return SYSCALL_NAMES.get(platform.machine(), {}).get(self.syscall, str(self.syscall))

    def describe(self) -> str:
        call = f"{self.syscall_name}({self.syscall})" if self.syscall is not None else "-"
        where = f" path={self.path!r}" if self.path is not None else ""
        return f"{self.pid}/{self.tid} {self.comm} {self.state} wchan={self.wchan} {call}{where}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def read_c_string(pid: int, address: int, limit: int = 4096) -> str | None:
    """The NUL-terminated string at `address` in process `pid` (via /proc/PID/mem)."""
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            data = b""
            while len(data) < limit:
                chunk = mem.read(256)
                if not chunk:
                    break
                data += chunk
                if b"\0" in chunk:
                    break
    except (OSError, OverflowError, ValueError):
        return None
    return data.split(b"\0", 1)[0].decode(errors="replace")


def _parse_syscall(pid: int, text: str | None) -> tuple[int | None, tuple[int, ...], str | None]:
    if not text:
        return None, (), None
    fields = text.split()
    if not fields or fields[0] in ("running", "-1"):
        return None, (), None
    number = int(fields[0])
    args = tuple(int(f, 16) for f in fields[1:7])
    index = PATH_ARG.get(platform.machine(), {}).get(number)
    path = None
    if index is not None and index < len(args):
        path = read_c_string(pid, args[index])
        if path is not None and not path.startswith("/") and index == 1:
            dirfd = args[0]
            if dirfd != 0xFFFFFFFFFFFFFF9C:  # AT_FDCWD
                base = _readlink(f"/proc/{pid}/fd/{dirfd}")
            else:
                base = _readlink(f"/proc/{pid}/cwd")
            if base:
                path = os.path.join(base, path)
    return number, args, path


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def threads(pid: int) -> list[ThreadWait]:
    """Every thread of `pid` (an empty list once it is gone)."""
    base = Path(f"/proc/{pid}/task")
    try:
        tids = sorted(int(t) for t in os.listdir(base))
    except OSError:
        return []
    out = []
    for tid in tids:
        task = base / str(tid)
        stat = _read(task / "stat")
        if stat is None:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state = stat[stat.rindex(")") + 2:].split()[0]
        wchan = _read(task / "wchan")
        number, args, path = _parse_syscall(pid, _read(task / "syscall"))
        out.append(ThreadWait(pid, tid, comm, state, wchan, number, args, path))
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (via /proc/*/task/*/children)."""
    seen = [pid]
    for parent in seen:
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            text = _read(Path(f"/proc/{parent}/task/{tid}/children")) or ""
            seen.extend(int(c) for c in text.split() if int(c) not in seen)
    return seen


def waits_in(pids: Iterable[int], wchan: str) -> list[ThreadWait]:
    """The threads of `pids` whose wait channel is `wchan`."""
    return [t for pid in pids for t in threads(pid) if t.wchan == wchan]


def wait_for_wchan(pid: int, wchan: str, timeout: float) -> list[ThreadWait]:
    """Poll until some thread of `pid` sleeps in `wchan`; those threads ([] on timeout).

    Sleeps: state and wchan are read from two files, so a thread just going to sleep can
    show its wchan while still R. Only a thread seen not running counts."""
    found: list[ThreadWait] = []

    def check() -> bool:
        found[:] = [t for t in waits_in([pid], wchan) if t.state != "R"]
        return bool(found)

    wait_until(check, timeout)
    return found

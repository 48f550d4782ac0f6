"""Make `/proc/PID/task/TID/syscall` readable: the syscall's name and what its arguments point at.

The kernel reports a blocked thread's syscall as a bare number and six raw arguments. The name
comes from the syscall tables of the `system-calls` package (generated from the kernel sources
for every architecture, so aarch64 Dev Containers on Apple hardware decode too). Which argument is
a file descriptor or a path is a property of the syscall, listed here for the ones a language
server blocks in: with it "read(3)" becomes "read of /home/me/.cache/go-build/fifo".
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

__all__ = ["AT_FDCWD", "describe_syscall", "has_path_argument", "parse_syscall_line",
           "syscall_name"]

AT_FDCWD = -100

# Argument index of the file descriptor the call works on.
_FD_ARG: dict[str, int] = {name: 0 for name in (
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2", "fstat", "fstatfs", "fsync", "fdatasync", "ftruncate", "fallocate", "flock",
    "fcntl", "ioctl", "lseek", "getdents64", "getdents", "recvfrom", "recvmsg", "recvmmsg",
    "sendto", "sendmsg", "sendmmsg", "accept", "accept4", "connect", "epoll_wait", "epoll_pwait",
    "epoll_pwait2", "epoll_ctl", "fgetxattr", "fsetxattr", "syncfs", "close", "splice", "tee",
    "copy_file_range", "inotify_add_watch", "fchdir", "fchmod", "fchown", "sync_file_range",
)}
_FD_ARG["sendfile"] = 1  # sendfile(out_fd, in_fd, ...): the read side is the one that blocks

# Argument index of a path (a pointer into the process's memory), and of the dirfd it is
# relative to (None: relative to the cwd).
_PATH_ARG: dict[str, tuple[int, int | None]] = {
    "open": (0, None), "creat": (0, None), "stat": (0, None), "lstat": (0, None),
    "access": (0, None), "readlink": (0, None), "statfs": (0, None), "truncate": (0, None),
    "getxattr": (0, None), "lgetxattr": (0, None), "listxattr": (0, None), "chdir": (0, None),
    "mkdir": (0, None), "rmdir": (0, None), "unlink": (0, None), "rename": (0, None),
    "execve": (0, None), "inotify_add_watch": (1, None),
    "openat": (1, 0), "openat2": (1, 0), "newfstatat": (1, 0), "fstatat64": (1, 0),
    "statx": (1, 0), "faccessat": (1, 0), "faccessat2": (1, 0), "readlinkat": (1, 0),
    "mkdirat": (1, 0), "unlinkat": (1, 0), "renameat": (1, 0), "renameat2": (1, 0),
    "fchmodat": (1, 0), "fchownat": (1, 0), "utimensat": (1, 0), "name_to_handle_at": (1, 0),
    "execveat": (1, 0),
}


@functools.cache
def _table() -> Any:
    try:
        import system_calls  # type: ignore[import-untyped]
    except ImportError:  # names are a convenience: numbers are still recorded
        return None
    return system_calls.syscalls()


def syscall_name(number: int, arch: str | None = None) -> str | None:
    """The name of syscall `number` on `arch` (default: this machine), or None if unknown."""
    table = _table()
    if table is None:
        return None
    arch = arch or _arch()
    try:
        return str(table.get_name(number, arch))
    except Exception:  # NoSuchSystemCall, NoSuchArchitecture
        return None


@functools.cache
def _arch() -> str:
    machine = platform.machine()
    return {"aarch64": "arm64", "armv7l": "arm", "i686": "i386", "amd64": "x86_64"}.get(
        machine, machine)


def parse_syscall_line(line: str) -> dict[str, Any]:
    """Parse one `/proc/.../syscall` line.

    `running` -> the thread is on a CPU; `-1 SP PC` -> blocked, but not in a syscall;
    `NR A0..A5 SP PC` -> in syscall NR with those raw arguments.
    """
    fields = line.split()
    if not fields:
        return {"raw": line}
    if fields[0] == "running":
        return {"raw": line, "running": True}
    try:
        number = int(fields[0])
    except ValueError:
        return {"raw": line}
    if number < 0:
        return {"raw": line, "nr": number, "name": None}
    args = [int(a, 16) for a in fields[1:7]]
    return {"raw": line, "nr": number, "name": syscall_name(number), "args": args}


def has_path_argument(parsed: dict[str, Any]) -> bool:
    """Whether `describe_syscall(..., read_memory=True)` could add a `path`."""
    return parsed.get("name") in _PATH_ARG


def describe_syscall(pid: int, tid: int, parsed: dict[str, Any], *,
                     read_memory: bool = True) -> dict[str, Any]:
    """Add what the syscall's fd and path arguments refer to (`fd`, `fd_path`, `path`).

    Reads `/proc/PID/fd/N` for an fd and, with `read_memory`, the process's memory for a path;
    both need ptrace access (root, or the same user with a permissive ptrace scope), and either
    may fail quietly. Reading the memory takes the process's mmap lock, which a process stuck in
    a page fault on a hung filesystem holds: that read can block until the filesystem recovers.
    """
    out = dict(parsed)
    name, args = parsed.get("name"), parsed.get("args")
    if not isinstance(name, str) or not isinstance(args, list) or len(args) < 6:
        return out
    fd_index = _FD_ARG.get(name)
    if fd_index is not None:
        fd = _as_int32(args[fd_index])
        out["fd"] = fd
        out["fd_path"] = _fd_path(pid, fd)
    path_spec = _PATH_ARG.get(name)
    if path_spec is not None and read_memory:
        path_index, dirfd_index = path_spec
        path = _read_c_string(pid, args[path_index])
        if path is not None:
            if not path.startswith("/"):
                base = None
                if dirfd_index is None or _as_int32(args[dirfd_index]) == AT_FDCWD:
                    base = _readlink(f"/proc/{pid}/task/{tid}/cwd")
                else:
                    base = _fd_path(pid, _as_int32(args[dirfd_index]))
                if base is not None and base.startswith("/"):
                    path = os.path.join(base, path)
            out["path"] = path
    return out


def _as_int32(raw: int) -> int:
    value = raw & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _fd_path(pid: int, fd: int) -> str | None:
    return _readlink(f"/proc/{pid}/fd/{fd}") if fd >= 0 else None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _read_c_string(pid: int, address: int, limit: int = 4096) -> str | None:
    if address == 0:
        return None
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            data = mem.read(limit)
    except (OSError, OverflowError, ValueError):
        return None
    end = data.find(b"\0")
    if end < 0:
        return None
    return data[:end].decode("utf-8", "replace")

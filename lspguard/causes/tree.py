"""A snapshot of the backend's process tree as the kernel sees it, for the cause classifier.

Per process: argv, state, CPU time, open sockets (with their peers from /proc/PID/net/tcp*), and
per thread: state, wchan, the syscall with its fd's path and, for a path syscall that sleeps,
the path argument read from the process's memory. Plus the server's mount table (mountinfo) to
name the filesystem a path is on: pure string work, nothing here stats a path. The reading is
lspguard.procfs's; this module chooses what to read and puts it together.

`snapshot_tree` does blocking reads (a process stuck in a page fault holds its mmap lock, and
`cmdline` or `mem` then block): call it in a worker thread under a deadline (`probe.py`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass, field

import psutil

from lspguard.causes.kernel import WaitKind, classify_wait, syscall_family
from lspguard.procfs.mounts import Mount, read_mountinfo
from lspguard.procfs.read import read_proc_bytes, read_proc_file
from lspguard.procfs.syscalls import describe_syscall
from lspguard.procfs.threads import (
    context_switches,
    io_counts,
    task_ids,
    task_stat,
    task_syscall,
    wchan,
)

__all__ = ["ProcessFacts", "SocketFacts", "ThreadWait", "TreeSnapshot", "packages_driver",
           "snapshot_tree"]

# The waits a verdict can be made of: their threads' activity is read to tell slow from stuck.
_JUDGED_WAITS = frozenset({WaitKind.FILESYSTEM, WaitKind.FIFO_OPEN, WaitKind.PIPE,
                           WaitKind.UNINTERRUPTIBLE, WaitKind.SOCKET, WaitKind.CHILD})
_TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
               "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
               "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


@dataclass(frozen=True)
class ThreadWait:
    tid: int
    state: str
    wchan: str | None
    syscall: str | None  # name, "running", or None
    args: tuple[int, ...] = ()
    fd: int | None = None
    fd_path: str | None = None
    path: str | None = None  # a path argument, read from the process's memory
    kind: WaitKind = WaitKind.UNKNOWN
    fs_family: str | None = None
    # Context switches plus I/O counts of this thread (read only for the waits that can make a
    # verdict): a thread in one request that never comes back has both flat; one that goes
    # from one slow request to the next sleeps and wakes for each, so this moves.
    activity: int | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """Stays equal while the thread sits in the same call on the same object and makes no
        progress there: the same tid, syscall, arguments, path and activity counts."""
        return (self.tid, self.syscall, self.args[:2], self.wchan, self.target, self.activity)

    @property
    def target(self) -> str | None:
        return self.path or self.fd_path


@dataclass(frozen=True)
class SocketFacts:
    inode: int
    protocol: str  # "tcp" or "tcp6"
    local: str
    peer: str
    state: str
    queued: int  # bytes in the send and receive queues


@dataclass(frozen=True)
class ProcessFacts:
    pid: int
    ppid: int
    argv: tuple[str, ...]
    state: str | None
    cpu_s: float
    threads: tuple[ThreadWait, ...]
    sockets: tuple[SocketFacts, ...] = ()
    pipes: frozenset[str] = frozenset()  # "pipe:[N]" the process holds open
    started: float = 0.0  # wall-clock start time
    io: tuple[int, int, int, int] | None = None  # rchar, wchar, syscr, syscw (/proc/PID/io)
    rss: int = 0  # resident set, bytes

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")


@dataclass(frozen=True)
class TreeSnapshot:
    root: int
    processes: dict[int, ProcessFacts]
    mounts: tuple[Mount, ...] = ()
    taken_at: float = field(default_factory=time.monotonic)
    cpu_percent: dict[int, float] = field(default_factory=dict)  # filled by the classifier
    driver: str | None = None  # GOPACKAGESDRIVER in the server's environment, if set

    def children(self, pid: int) -> list[ProcessFacts]:
        return [p for p in self.processes.values() if p.ppid == pid and p.pid != pid]

    @property
    def alive(self) -> bool:
        return self.root in self.processes


def snapshot_tree(root: int, *, read_memory: bool = True, max_processes: int = 64,
                  max_threads: int = 256) -> TreeSnapshot:
    """Facts about `root` and its descendants (an empty snapshot if `root` is gone)."""
    try:
        proc = psutil.Process(root)
        procs = [proc, *proc.children(recursive=True)][:max_processes]
    except psutil.Error:
        return TreeSnapshot(root, {})
    facts: dict[int, ProcessFacts] = {}
    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            facts[p.pid] = _process(p, read_memory, max_threads)
    return TreeSnapshot(root, facts, tuple(read_mountinfo(root)), driver=packages_driver(root))


def packages_driver(pid: int) -> str | None:
    """GOPACKAGESDRIVER as the server runs with it: the driver's child keeps that name even
    after it `exec`s another program (a shell script that ends in `exec bazel ...`)."""
    environ = read_proc_bytes(f"/proc/{pid}/environ")
    if environ is None:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(b"GOPACKAGESDRIVER="):
            value = entry.split(b"=", 1)[1].decode(errors="replace")
            return value if value and value != "off" else None
    return None


def _process(p: psutil.Process, read_memory: bool, max_threads: int) -> ProcessFacts:
    pid = p.pid
    times = p.cpu_times()
    tids = task_ids(pid)[:max_threads]
    threads = tuple(t for t in (_thread(pid, tid, read_memory) for tid in tids) if t is not None)
    fds = _fd_links(pid)
    inodes = {int(link[8:-1]): fd for fd, link in fds.items() if link.startswith("socket:[")}
    sockets = _sockets(pid, inodes) if inodes else ()
    pipes = frozenset(link for link in fds.values() if link.startswith("pipe:"))
    try:
        argv = tuple(p.cmdline()) or (p.name(),)
    except psutil.Error:
        argv = (p.name(),)
    try:
        rss = p.memory_info().rss
    except psutil.Error:
        rss = 0
    return ProcessFacts(pid, p.ppid(), argv, _state(pid, pid), times.user + times.system,
                        threads, sockets, pipes, p.create_time(), io_counts(pid), rss)


def _state(pid: int, tid: int) -> str | None:
    stat = task_stat(pid, tid)
    return None if stat is None else stat.state


def _thread(pid: int, tid: int, read_memory: bool) -> ThreadWait | None:
    state = _state(pid, tid)
    if state is None:
        return None
    waits_in = wchan(pid, tid) or None
    parsed = task_syscall(pid, tid) or {}
    if parsed.get("running"):
        return ThreadWait(tid, state, waits_in, "running", kind=WaitKind.RUNNING)
    name = parsed.get("name")
    syscall = str(name) if name is not None else None
    # Only a sleeping path call needs its path argument read from memory.
    want_path = read_memory and state in ("S", "D") and syscall_family(syscall) == "path"
    described = describe_syscall(pid, tid, parsed, read_memory=want_path) if parsed else {}
    fd_path = described.get("fd_path")
    kind, fs_family = classify_wait(state, waits_in, syscall, fd_path)
    activity = None
    # An anonymous pipe is the server's own stdin, or a child's output: the proxy's writes wake
    # the first (a ping would count as progress), and the child is judged by its own threads.
    anonymous_pipe = kind is WaitKind.PIPE and (fd_path or "").startswith("pipe:")
    if kind in _JUDGED_WAITS and not anonymous_pipe:
        switches, io = context_switches(pid, tid), io_counts(pid, tid)
        activity = None if switches is None and io is None else (switches or 0) + sum(io or ())
    return ThreadWait(tid, state, waits_in, syscall, tuple(parsed.get("args") or ()),
                      described.get("fd"), fd_path, described.get("path"), kind, fs_family,
                      activity)


def _fd_links(pid: int) -> dict[int, str]:
    links: dict[int, str] = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return links
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            links[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
    return links


def _sockets(pid: int, inodes: dict[int, int]) -> tuple[SocketFacts, ...]:
    found: list[SocketFacts] = []
    for protocol in ("tcp", "tcp6"):
        table = read_proc_file(f"/proc/{pid}/net/{protocol}") or ""
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or not fields[9].isdigit() or int(fields[9]) not in inodes:
                continue
            tx, _, rx = fields[4].partition(":")
            found.append(SocketFacts(int(fields[9]), protocol, _address(fields[1]),
                                     _address(fields[2]), _TCP_STATES.get(fields[3], fields[3]),
                                     int(tx, 16) + int(rx or "0", 16)))
    return tuple(found)


def _address(hex_address: str) -> str:
    """'0100007F:1F90' -> '127.0.0.1:8080' (IPv4 and IPv6, as /proc/net/tcp* writes them)."""
    host, _, port = hex_address.partition(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
        return f"{ip}:{int(port, 16)}"
    words = struct.unpack("<4I", raw)  # four host-order 32-bit words
    ip = socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))
    if ip.startswith("::ffff:"):
        ip = ip[7:]
        return f"{ip}:{int(port, 16)}"
    return f"[{ip}]:{int(port, 16)}"

"""From a process-tree snapshot to the cause a late request waits on.

Every process of the tree offers candidates: a thread in a filesystem, FIFO or uninterruptible
wait (from the table in kernel.py), a socket to a peer that does not answer, a stopped process, a
process burning CPU, a child that never returns. The best candidate wins: stopped first, then
the waits outside the server (filesystem, special file, kernel), then network, CPU, a child
that never returns, and last, with nothing external found, a deadlock inside the server. Among
equals the deepest process wins: the `go list` stuck on a mount is the cause, not the gopls
waiting for it.

`WaitClock` remembers when each wait was first seen, so a verdict can say how long it has
lasted and fire once a filesystem wait has lasted a few seconds, before the request's deadline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lspguard.causes.kernel import WaitKind
from lspguard.causes.kinds import row
from lspguard.causes.model import Blocker, Cause, CauseClass, Culprit
from lspguard.causes.sentences import fix_for, sentence_for
from lspguard.causes.tree import ProcessFacts, ThreadWait, TreeSnapshot
from lspguard.procfs.mounts import mount_for

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["EARLY_CLASSES", "CauseFinder", "WaitClock", "command_label", "is_sidecar"]

# Classes that are evidence enough after a few seconds: nothing legitimate waits that long.
EARLY_CLASSES = frozenset(c for c in CauseClass if row(c.value).early)
# Which candidate wins (lower first), from the table's `rank`.
_RANK = {c: rank for c in CauseClass if (rank := row(c.value).rank) is not None}
_WRAPPERS = frozenset({"sh", "bash", "dash", "zsh", "env", "python", "python3", "perl"})
_SUBCOMMAND_TOOLS = frozenset({"go", "git", "hg", "svn", "bzr", "fossil"})
_NESTED = frozenset({"mod", "work", "tool"})  # `go mod download`, `go work sync`
_WAITING_SOCKET_STATES = frozenset({"ESTABLISHED", "SYN_SENT"})
_SIDECAR_START_S = 10.0


class WaitClock:
    """When each wait (a thread in a call, a socket, a child) was first seen."""

    def __init__(self) -> None:
        self._first: dict[tuple[object, ...], float] = {}

    def seen(self, key: tuple[object, ...], now: float) -> float:
        """Seconds since `key` was first seen (0 the first time)."""
        return now - self._first.setdefault(key, now)

    def keep_only(self, keys: set[tuple[object, ...]]) -> None:
        """Forget waits that are over: a wait seen again later starts afresh."""
        for key in [k for k in self._first if k not in keys]:
            del self._first[key]


@dataclass(frozen=True)
class _Candidate:
    cls: CauseClass
    process: ProcessFacts
    blocker: Blocker
    waited: float
    thread: ThreadWait | None = None
    cpu_percent: float | None = None


def is_sidecar(proc: ProcessFacts, snap: TreeSnapshot) -> bool:
    """A helper the server keeps for its whole life (gopls's telemetry child): never what a
    request waits on, and its activity is not the server's progress."""
    root = snap.processes.get(snap.root)
    if root is None or proc.pid == snap.root:
        return False
    server_exe = os.path.basename(root.argv[0]) if root.argv else None
    return _sidecar(proc, root, server_exe)


def _sidecar(proc: ProcessFacts, root: ProcessFacts, server_exe: str | None) -> bool:
    """The server run again as a helper that lives as long as it (gopls's telemetry child):
    started with the server, never what a request waits on."""
    vforked = proc.ppid == root.pid and any(t.syscall == "vfork" for t in root.threads)
    return (bool(proc.argv) and os.path.basename(proc.argv[0]) == server_exe
            and proc.started - root.started < _SIDECAR_START_S and not vforked)


def command_label(argv: tuple[str, ...]) -> str:
    """`go list`, `go mod download`, `git`, `gopackagesdriver`: how a child is named."""
    args = list(argv)
    while args and os.path.basename(args[0]).rstrip("0123456789.") in _WRAPPERS and len(args) > 1:
        args = args[1:]
        while args and args[0].startswith("-"):
            args = args[1:]
    if not args:
        return "?"
    name = os.path.basename(args[0])
    words = [name]
    if name in _SUBCOMMAND_TOOLS:
        rest: list[str] = []
        skip = False
        for arg in args[1:]:
            if skip:
                skip = False
            elif arg in ("-C", "-c"):  # `git -c key=value`, `go -C dir`: a value follows
                skip = True
            elif not arg.startswith("-"):
                rest.append(arg)
        if rest:
            words.append(rest[0])
            if rest[0] in _NESTED and len(rest) > 1:
                words.append(rest[1])
    return " ".join(words)


class CauseFinder:
    """Classifies one backend tree; keeps the wait clock and CPU samples between snapshots."""

    def __init__(self, server_name: str = "gopls", busy_cpu_percent: float = 20.0,
                 external_wait: float = 3.0) -> None:
        self.server_name = server_name
        self.busy_cpu_percent = busy_cpu_percent
        self.external_wait = external_wait
        self.clock = WaitClock()
        self._previous: TreeSnapshot | None = None

    def observe(self, snap: TreeSnapshot, now: float) -> None:
        """Record a new snapshot: wait clocks and per-process CPU rates."""
        keys: set[tuple[object, ...]] = set()
        for proc in snap.processes.values():
            keys.add(("proc", proc.pid))
            self.clock.seen(("proc", proc.pid), now)
            for t in proc.threads:
                key = ("thread", proc.pid, *t.key)
                keys.add(key)
                self.clock.seen(key, now)
            for s in proc.sockets:
                key = ("socket", s.inode, s.state)
                keys.add(key)
                self.clock.seen(key, now)
        self.clock.keep_only(keys)
        prev = self._previous
        if prev is not None and snap.taken_at > prev.taken_at:
            dt = snap.taken_at - prev.taken_at
            for pid, proc in snap.processes.items():
                before = prev.processes.get(pid)
                if before is not None:
                    snap.cpu_percent[pid] = max(0.0, (proc.cpu_s - before.cpu_s) / dt * 100)
        self._previous = snap

    def early(self, snap: TreeSnapshot, now: float, min_wait: float) -> Cause | None:
        """A filesystem, special-file or kernel wait that has lasted `min_wait` seconds."""
        best = self._best(c for c in self._candidates(snap, now)
                          if c.cls in EARLY_CLASSES and c.waited >= min_wait)
        return None if best is None else self._cause(best, snap)

    def find(self, snap: TreeSnapshot, now: float, min_wait: float = 0.0) -> Cause:
        """The best explanation of a late request; a deadlock inside the server when nothing
        else is found. Network and child waits count once they have lasted `min_wait`; a
        filesystem, FIFO or kernel wait once the same call has made no progress for
        `external_wait` (a thread seen once in a `read()` of a slow mount is working, not
        waiting: a sentence never says "has waited 0 s")."""
        best = self._best(c for c in self._candidates(snap, now)
                          if c.cls in (CauseClass.STOPPED, CauseClass.CPU)
                          or (c.waited >= self.external_wait if c.cls in EARLY_CLASSES
                              else c.waited >= min_wait))
        if best is None:
            root = snap.processes.get(snap.root) or ProcessFacts(snap.root, 0, (), None, 0.0, ())
            best = _Candidate(CauseClass.DEADLOCK, root, Blocker("none"), 0.0)
        return self._cause(best, snap)

    # ---------------------------------------------------------------- candidates

    def _candidates(self, snap: TreeSnapshot, now: float) -> Iterator[_Candidate]:
        listening = {s.local.rsplit(":", 1)[1] for p in snap.processes.values()
                     for s in p.sockets if s.state == "LISTEN"}
        root = snap.processes.get(snap.root)
        server_exe = os.path.basename(root.argv[0]) if root and root.argv else None
        for proc in snap.processes.values():
            if proc.state == "Z":
                continue
            if proc.stopped:
                yield _Candidate(CauseClass.STOPPED, proc, Blocker("none"),
                                 self.clock.seen(("proc", proc.pid), now))
                continue
            for t in proc.threads:
                found = self._thread_candidate(snap, proc, t, now)
                if found is not None:
                    yield found
            for s in proc.sockets:
                if s.state in _WAITING_SOCKET_STATES and s.local.rsplit(":", 1)[1] not in listening:
                    yield _Candidate(CauseClass.NETWORK, proc,
                                     Blocker("socket", peer=s.peer, socket_state=s.state),
                                     self.clock.seen(("socket", s.inode, s.state), now))
            cpu = snap.cpu_percent.get(proc.pid)
            if cpu is not None and cpu >= self.busy_cpu_percent:
                yield _Candidate(CauseClass.CPU, proc, Blocker("none"), 0.0, cpu_percent=cpu)
            sidecar = root is not None and _sidecar(proc, root, server_exe)
            if proc.pid != snap.root and not sidecar and not [
                    c for c in snap.children(proc.pid) if c.state != "Z"]:
                yield _Candidate(CauseClass.CHILD, proc,
                                 Blocker("child", pid=proc.pid, argv=proc.argv),
                                 self.clock.seen(("proc", proc.pid), now))

    def _thread_candidate(self, snap: TreeSnapshot, proc: ProcessFacts, t: ThreadWait,
                          now: float) -> _Candidate | None:
        waited = self.clock.seen(("thread", proc.pid, *t.key), now)
        target = t.target
        if t.kind is WaitKind.FIFO_OPEN:
            return _Candidate(CauseClass.SPECIAL_FILE, proc,
                              Blocker("special_file", path=target, file_type="FIFO"), waited, t)
        if t.kind is WaitKind.PIPE and target is not None and not target.startswith("pipe:"):
            return _Candidate(CauseClass.SPECIAL_FILE, proc,
                              Blocker("special_file", path=target, file_type="FIFO"), waited, t)
        if t.kind is WaitKind.FILESYSTEM:
            if target is not None and target.startswith("/dev/") and target != "/dev/fuse":
                return _Candidate(CauseClass.SPECIAL_FILE, proc,
                                  Blocker("special_file", path=target, file_type="device"),
                                  waited, t)
            mount = mount_for(target, snap.mounts) if target else None
            return _Candidate(CauseClass.FILESYSTEM, proc, Blocker(
                "path", path=target, mount_point=mount.mount_point if mount else None,
                fs_type=mount.fs_type if mount else t.fs_family,
                source=mount.source if mount else None), waited, t)
        if t.kind is WaitKind.UNINTERRUPTIBLE:
            return _Candidate(CauseClass.KERNEL, proc, Blocker("path", path=target), waited, t)
        if t.kind is WaitKind.SOCKET and t.fd_path and t.fd_path.startswith("socket:["):
            inode = int(t.fd_path[8:-1])
            peer = next((s for s in proc.sockets if s.inode == inode), None)
            if peer is not None and peer.state in _WAITING_SOCKET_STATES:
                return _Candidate(CauseClass.NETWORK, proc, Blocker(
                    "socket", peer=peer.peer, socket_state=peer.state), waited, t)
        return None

    @staticmethod
    def _best(candidates: Iterator[_Candidate]) -> _Candidate | None:
        best: _Candidate | None = None
        best_key: tuple[float, ...] | None = None
        for c in candidates:
            key = (_RANK[c.cls], -c.waited)
            if best_key is None or key < best_key:
                best, best_key = c, key
        return best

    # ---------------------------------------------------------------- the cause

    def _cause(self, c: _Candidate, snap: TreeSnapshot) -> Cause:
        chain = self._chain(snap, c.process.pid)
        t = c.thread
        last = chain[-1]
        culprit = Culprit(last.pid, last.argv, last.role, t.tid if t else None,
                          t.state if t else c.process.state, t.syscall if t else None,
                          t.wchan if t else None)
        chain = (*chain[:-1], culprit)
        facts: dict[str, object] = {}
        if c.cpu_percent is not None:
            facts["cpu_percent"] = round(c.cpu_percent)
        cause = Cause(c.cls, culprit, c.blocker, c.waited, "", "", chain, facts)
        return Cause(c.cls, culprit, c.blocker, c.waited, sentence_for(cause, self.server_name),
                     fix_for(cause), chain, facts)

    def _chain(self, snap: TreeSnapshot, pid: int) -> tuple[Culprit, ...]:
        """The server down to `pid`, each named by its parent: gopls, gopls's `go list`."""
        path: list[ProcessFacts] = []
        current = snap.processes.get(pid)
        while current is not None:
            path.append(current)
            if current.pid == snap.root:
                break
            current = snap.processes.get(current.ppid)
        path.reverse()
        if not path:  # the process is gone from the snapshot (it exited): name it as it was
            path = [snap.processes.get(pid) or ProcessFacts(pid, 0, (), None, 0.0, ())]
        chain: list[Culprit] = []
        role = self.server_name
        for i, proc in enumerate(path):
            if i == 1 and _is_driver(proc, snap.driver):
                role = f"{role}'s GOPACKAGESDRIVER {snap.driver}"
                label = command_label(proc.argv)
                if label != os.path.basename(snap.driver or ""):
                    role += f" (now running `{label}`)"
            elif i > 0:
                role = f"{role}'s `{command_label(proc.argv)}`"
            chain.append(Culprit(proc.pid, proc.argv, role, state=proc.state))
        return tuple(chain)


def _is_driver(proc: ProcessFacts, driver: str | None) -> bool:
    """A child of the server that runs the packages driver, or what the driver `exec`ed:
    with GOPACKAGESDRIVER set, go/packages runs it in place of `go list`, so any direct
    child that is not the go command (or the server itself) is the driver's."""
    if driver is None or not proc.argv:
        return False
    name = os.path.basename(proc.argv[0])
    return name not in ("go", "gopls") and not name.startswith("go1.")

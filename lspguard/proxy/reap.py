"""Ending every process of a server's tree, those outside its process group included.

`killpg` reaches only the server's process group. gopls's telemetry child (golang.org/x/telemetry
starts `gopls "** telemetry **"` with setsid) and a packages driver that calls setsid are outside
it, and once the server has died they are children of pid 1: nothing links them to it any more.
A stopped one then stays, stopped, forever. So the tree is read from /proc while the server
still lives: every descendant (by ppid, recursively) plus every member of its group. A pidfd is
opened on each at once (a pid may be reused once its process is reaped; a pidfd is never
redirected), and the end is SIGCONT for the stopped (a stopped process cannot act on SIGTERM or
on EOF), then SIGKILL. Processes are told apart by pid and start time, never by name.

Only /proc/PID/stat is read (unlike cmdline or environ it never blocks on a process stuck in a
page fault); nothing here waits. Standard library only, and every process may vanish at any point.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from typing import TYPE_CHECKING

from lspguard.procfs.processes import ProcStat, all_processes, read_stat

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

__all__ = ["ProcessTree", "snapshot_tree"]

class _Member:
    """One process of the tree, held by a pidfd where the kernel has them (Linux 5.3+)."""

    def __init__(self, pid: int, ticks: int, pidfd: int | None) -> None:
        self.pid = pid
        self.start_ticks = ticks
        self.pidfd = pidfd

    @classmethod
    def hold(cls, seen: ProcStat) -> _Member | None:
        """A member for the process `seen` in /proc, unless it has ended (or its pid now names
        another process) since."""
        try:
            pidfd: int | None = os.pidfd_open(seen.pid)
        except ProcessLookupError:
            return None
        except (AttributeError, OSError):  # no pidfds here (old kernel, not Linux, no fds left)
            pidfd = None
        member = cls(seen.pid, seen.start_ticks, pidfd)
        if member.stat() is None:  # ended, or the pidfd is on a newcomer with the same pid
            member.close()
            return None
        return member

    def stat(self) -> ProcStat | None:
        """Its /proc/PID/stat while it lives; None once it has ended (a zombie has ended)."""
        if self.pidfd is not None and _readable(self.pidfd):  # a pidfd polls readable on exit
            return None
        stat = read_stat(self.pid)
        if stat is None or stat.start_ticks != self.start_ticks or stat.dead:
            return None
        return stat

    def send(self, sig: signal.Signals) -> bool:
        """Signal it; False if it has ended (or is not ours to signal)."""
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, sig)
            elif self.stat() is not None:  # without a pidfd: check the pid still names it
                os.kill(self.pid, sig)
            else:
                return False
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class ProcessTree:
    """The processes of one server's tree as seen at snapshot time, held until `close`."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._members: dict[tuple[int, int], _Member] = {}

    @property
    def pids(self) -> list[int]:
        """Every member's pid, ended ones included."""
        return sorted(m.pid for m in self._members.values())

    def alive(self) -> list[int]:
        """The pids of the members that have not ended."""
        return sorted(m.pid for m in self._members.values() if m.stat() is not None)

    def add(self, other: ProcessTree) -> None:
        """Take over `other`'s members (a later snapshot: processes started since)."""
        for key, member in other._members.items():
            if key in self._members:
                member.close()
            else:
                self._members[key] = member
        other._members.clear()

    def prune(self) -> None:
        """Forget the members that have ended (and close their pidfds)."""
        for key, member in list(self._members.items()):
            if member.stat() is None:
                member.close()
                del self._members[key]

    def continue_stopped(self) -> list[int]:
        """SIGCONT to every stopped member, so it can act on SIGTERM or EOF: their pids."""
        resumed = []
        for member in self._members.values():
            stat = member.stat()
            if stat is not None and stat.stopped and member.send(signal.SIGCONT):
                resumed.append(member.pid)
        return resumed

    def kill(self) -> list[int]:
        """SIGCONT to the stopped members, then SIGKILL to every member still alive: the pids
        killed. Never waits: a process in an uninterruptible sleep dies when it wakes."""
        self.continue_stopped()
        return [m.pid for m in self._members.values()
                if m.stat() is not None and m.send(signal.SIGKILL)]

    def close(self) -> None:
        for member in self._members.values():
            member.close()
        self._members.clear()

    def __enter__(self) -> ProcessTree:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _hold(self, seen: Iterable[ProcStat]) -> None:
        for stat in seen:
            key = (stat.pid, stat.start_ticks)
            if key not in self._members and (member := _Member.hold(stat)) is not None:
                self._members[key] = member


def _is_daemon(pid: int) -> bool:
    """A gopls daemon (`-listen`), which `gopls -remote=auto` starts in a session of its own
    for every editor to share: it outlives its starter by design, and ending it would end the
    other editors' sessions too."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read(64 * 1024).split(b"\0")
    except OSError:
        return False
    return any(a.lstrip(b"-").split(b"=", 1)[0] == b"listen" for a in argv[1:]
               if a.startswith(b"-"))


def snapshot_tree(root: int, *, root_start_ticks: int | None = None,
                  with_group: bool = True, spare_daemons: bool = False) -> ProcessTree:
    """`root` and all its descendants, plus (`with_group`) the members of the process group
    `root` leads, each held by a pidfd from now on.

    `root_start_ticks` (`start_ticks` when the process was started) tells whether `root` still
    names that process: if not, its pid was reused, and neither it nor its descendants are
    taken. Its group is taken while no other process holds the pid: the kernel keeps a group's
    id from being reused while the group has members, so they are still the server's.

    `spare_daemons` (a gopls run with -remote): a descendant that leads a session of its own
    and is a gopls daemon is not taken, nor are its descendants. Only then is a command line
    read (it may wait on a process stuck in a page fault)."""
    tree = ProcessTree(root)
    processes = all_processes()
    me = os.getpid()
    top = processes.get(root)
    root_is_ours = top is not None and (root_start_ticks is None
                                        or top.start_ticks == root_start_ticks)
    chosen: dict[int, ProcStat] = {}
    if top is not None and root_is_ours:
        children: dict[int, list[ProcStat]] = {}
        for stat in processes.values():
            children.setdefault(stat.ppid, []).append(stat)
        queue = [top]
        while queue:
            stat = queue.pop()
            if stat.pid in chosen or stat.pid == me:
                continue
            if (spare_daemons and stat.pid != root and stat.session == stat.pid
                    and _is_daemon(stat.pid)):
                continue
            chosen[stat.pid] = stat
            queue.extend(children.get(stat.pid, ()))
    if with_group and (top is None or root_is_ours):
        chosen.update((s.pid, s) for s in processes.values() if s.pgrp == root and s.pid != me)
    tree._hold(s for s in chosen.values() if not s.dead)
    return tree

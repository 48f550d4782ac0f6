"""Progress, not age: when the backend tree last did something other than burn CPU.

A request's age alone never makes a verdict: a cold load of a big module takes a minute, and on
a slow bind mount longer. What tells a working server from a hung one is whether anything moves
between two snapshots of its tree (taken off the event loop, README "Detection"):

- I/O: /proc/PID/io of every process (rchar, wchar, syscr, syscw). For the server itself, the
  bytes of its stdin and stdout are the proxy's own traffic (a liveness ping would otherwise
  count as progress): only what it reads and writes beyond those counts;
- children started or reaped (`go list`, a packages driver, `go mod download`);
- the tree's RSS reaching a new peak (a load builds its heap; a spin does not);
- a message from the server (other than the answer to lspguard's own ping), `$/progress` too;
- a waiting thread leaving its call, or making progress in it (a different syscall or path, or
  its context-switch and I/O counts moving: a thread that goes from one slow `read()` to the
  next is working; one inside the same request that never comes back is not).

CPU is not on the list: it is judged apart (`busy_spin` needs CPU with none of the above).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lspguard.causes.tree import TreeSnapshot

__all__ = ["ProgressBook", "TreeActivity"]

_RSS_STEP = 4 << 20  # a new RSS peak counts once it is this much above the last one
_OWN_IO_SLACK = 64 << 10  # the server's stdio vs the proxy's byte counts may lag a little


@dataclass(frozen=True)
class TreeActivity:
    """What a snapshot says about the tree's progress, reduced to comparable values."""

    children_io: int  # rchar + wchar + syscr + syscw of every descendant
    server_io: int  # rchar + wchar of the server, minus the bytes of its stdin and stdout
    pids: frozenset[int]
    rss: int
    waits: frozenset[tuple[object, ...]]  # the keys of threads in a wait that can be judged

    @classmethod
    def of(cls, snap: TreeSnapshot, own_bytes: int) -> TreeActivity:
        from lspguard.causes.classify import is_sidecar  # with the first snapshot, not at start

        children_io = server_io = rss = 0
        pids: set[int] = set()
        waits: set[tuple[object, ...]] = set()
        for proc in snap.processes.values():
            if proc.state == "Z" or is_sidecar(proc, snap):
                continue
            pids.add(proc.pid)
            rss += proc.rss
            if proc.io is not None:
                rchar, wchar, syscr, syscw = proc.io
                if proc.pid == snap.root:
                    server_io = rchar + wchar - own_bytes
                else:
                    children_io += rchar + wchar + syscr + syscw
            waits.update((proc.pid, *t.key) for t in proc.threads if t.activity is not None)
        return cls(children_io, server_io, frozenset(pids), rss, frozenset(waits))


class ProgressBook:
    """When the tree last made progress other than CPU, from consecutive snapshots.

    `since` is that time (-inf until progress is seen: then a request's quiet time is its age,
    as before any sample)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.since = float("-inf")
        self._last: TreeActivity | None = None
        self._server_io_mark = 0
        self._rss_mark = 0
        self._messages: int | None = None

    def observe(self, activity: TreeActivity, messages: int, now: float) -> str:
        """Record one snapshot's activity and the count of server messages so far (without
        answers to lspguard's own requests); what moved ("" if nothing did)."""
        last = self._last
        # Marks move only when they count: slow, steady growth adds up to a step.
        server_io = activity.server_io > self._server_io_mark + _OWN_IO_SLACK
        rss = activity.rss > self._rss_mark + _RSS_STEP
        if last is None or server_io:
            self._server_io_mark = activity.server_io
        if last is None or rss:
            self._rss_mark = activity.rss
        moved = ""  # the first look has nothing to compare with
        if last is not None:
            if activity.children_io != last.children_io:
                moved = "the server's children did I/O"
            elif server_io:
                moved = "the server did I/O"
            elif activity.pids != last.pids:
                moved = "a child process started or ended"
            elif rss:
                moved = "the server's memory grew"
            elif activity.waits != last.waits:
                moved = "a waiting thread moved on"
            elif messages != self._messages:
                moved = "the server sent a message"
        self._messages = messages
        self._last = activity
        if moved:
            self.since = now
        return moved

    def quiet_for(self, started: float, now: float) -> float:
        """Seconds something that began at `started` has waited without progress."""
        return now - max(started, self.since)

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
    as before any sample); `what` names the last progress, for the log and the verdict."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.since = float("-inf")
        self.what = ""
        self._last: TreeActivity | None = None
        self._server_io_max = 0
        self._rss_peak = 0
        self._messages: int | None = None

    def observe(self, activity: TreeActivity, messages: int, now: float) -> str:
        """Record one snapshot's activity and the count of server messages so far (without
        answers to lspguard's own requests); what moved ("" if nothing did)."""
        last = self._last
        moved = ""
        if last is None:
            self._server_io_max = activity.server_io
            self._rss_peak = activity.rss
        else:
            if activity.children_io != last.children_io:
                moved = "the server's children did I/O"
            elif activity.server_io > self._server_io_max + _OWN_IO_SLACK:
                moved = "the server did I/O"
            elif activity.pids != last.pids:
                moved = "a child process started or ended"
            elif activity.rss > self._rss_peak + _RSS_STEP:
                moved = "the server's memory grew"
            elif activity.waits != last.waits:
                moved = "a waiting thread moved on"
        if self._messages is not None and messages != self._messages and not moved:
            moved = "the server sent a message"
        # Marks move only when they count: slow, steady growth adds up to a step.
        if activity.server_io > self._server_io_max + _OWN_IO_SLACK:
            self._server_io_max = activity.server_io
        if activity.rss > self._rss_peak + _RSS_STEP:
            self._rss_peak = activity.rss
        self._messages = messages
        self._last = activity
        if moved:
            self.since, self.what = now, moved
        return moved

    def quiet_for(self, started: float, now: float) -> float:
        """Seconds something that began at `started` has waited without progress."""
        return now - max(started, self.since)

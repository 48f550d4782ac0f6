"""Processes a test holds by pidfd: it can tell that very process ended (a pid can be reused,
and a process reparented to pid 1 is no child of the test to wait for), and it ends whatever is
left when it is done, stopped or not: no process outlives the test that made it."""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator
from dataclasses import dataclass

from lspguard.procfs.processes import read_stat

from .polling import wait_until


@dataclass
class Held:
    pid: int
    pidfd: int

    def gone(self) -> bool:
        """It has exited (a zombie has: nothing of it runs)."""
        return bool(select.select([self.pidfd], [], [], 0)[0])

    def state(self) -> str | None:
        """Its state letter in /proc (T: stopped), or None once it has gone."""
        stat = read_stat(self.pid)
        return None if stat is None or self.gone() else stat.state

    def end(self) -> None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, sig)


class Holding:
    """The processes held so far (`hold`), by pid."""

    def __init__(self) -> None:
        self.held: dict[int, Held] = {}

    def hold(self, pid: int) -> Held:
        if pid not in self.held:
            self.held[pid] = Held(pid, os.pidfd_open(pid))
        return self.held[pid]

    def alive(self) -> list[int]:
        return sorted(pid for pid, h in self.held.items() if not h.gone())


@contextlib.contextmanager
def holding() -> Iterator[Holding]:
    """Hold processes for the block; on the way out, SIGCONT + SIGKILL each still alive, and
    fail if one survives even that."""
    found = Holding()
    try:
        yield found
    finally:
        for h in found.held.values():
            if not h.gone():
                h.end()
        survivors = [] if wait_until(lambda: not found.alive(), 10) else found.alive()
        for h in found.held.values():
            os.close(h.pidfd)
        assert not survivors, f"held processes survived SIGKILL: {survivors}"

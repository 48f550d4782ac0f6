"""Probes that never hang the prober: tree snapshots off the event loop, stat in a helper.

`TreeProber.snapshot` runs `snapshot_tree` in a worker thread under a deadline. A probe that
does not come back (a read of a process's memory waits for its mmap lock, held by a page fault
on a hung mount) is abandoned; until it returns, later probes skip the reads that can block.

`PathProber.answers` asks whether a path's filesystem answers: a `stat` in a helper process
(lspguard.procfs.helper), which is killed and left behind if it does not finish in time. A thread
would not do: a thread stuck in a FUSE request keeps the whole proxy from exiting until the
filesystem answers.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time

import anyio
import anyio.to_thread

from lspguard.causes.tree import TreeSnapshot, snapshot_tree
from lspguard.procfs.helper import Helper, reap_abandoned

__all__ = ["PathProber", "TreeProber"]

log = logging.getLogger(__name__)

_POLL_S = 0.02


class TreeProber:
    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._stuck: threading.Event | None = None  # set when an abandoned probe returns

    @property
    def stuck(self) -> bool:
        return self._stuck is not None and not self._stuck.is_set()

    async def snapshot(self, pid: int) -> TreeSnapshot | None:
        """A snapshot of `pid`'s tree, or None if it did not come back within the timeout."""
        done = threading.Event()
        careful = self.stuck

        def probe() -> TreeSnapshot:
            try:
                return snapshot_tree(pid, read_memory=not careful)
            finally:
                done.set()

        with anyio.move_on_after(self.timeout):
            return await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)
        log.warning("a probe of process %d did not return within %.1f s: abandoned", pid,
                    self.timeout)
        self._stuck = done
        return None


class PathProber:
    """Bounded `stat` of a path in a helper process (or any helper, `run`); stuck helpers are
    killed and reaped later."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._stat = shutil.which("stat")

    def _argv(self, path: str) -> list[str]:
        if self._stat is not None:
            return [self._stat, "-c", "%F", "--", path]
        code = ("import os,stat,sys\ntry: m=os.stat(sys.argv[1]).st_mode\n"
                "except FileNotFoundError: sys.exit(1)\n"
                "print('fifo' if stat.S_ISFIFO(m) else 'other')")
        return [sys.executable, "-I", "-S", "-c", code, path]

    async def answers(self, path: str) -> bool:
        """True if a stat of `path` returns (with any result, ENOENT included) in time."""
        return await self._run(path) is not None

    async def file_type(self, path: str) -> str | None:
        """"fifo", "directory", "regular file"..., "missing", or None if stat did not return."""
        result = await self._run(path)
        if result is None:
            return None
        code, out = result
        return out.strip() or "other" if code == 0 else "missing"

    async def _run(self, path: str) -> tuple[int, str] | None:
        return await self.run(self._argv(path))

    async def run(self, argv: list[str]) -> tuple[int, str] | None:
        """Exit code and stdout of a helper process, or None if it did not finish within the
        timeout (then it is killed, and reaped once it dies: it may not, until a hung
        filesystem answers)."""
        reap_abandoned()
        try:
            helper = Helper(argv, cwd="/", stderr=False)
        except OSError as exc:
            log.warning("cannot start a helper (%s): %s", os.path.basename(argv[0]), exc)
            return None
        deadline = time.monotonic() + self.timeout
        try:
            while helper.poll() is None:
                if time.monotonic() >= deadline:
                    helper.kill()  # it may not die until the filesystem answers
                    return None
                await anyio.sleep(_POLL_S)
            out = helper.read_stdout().decode(errors="replace")
        finally:
            helper.close()
        assert helper.returncode is not None
        return helper.returncode, out

"""A helper process for a call that may never return, which can be killed and left behind.

Why a process and not a thread: a stat on a FUSE or network mount that stopped answering blocks
in the kernel. A thread stuck there can never be stopped and keeps the interpreter from exiting
until the filesystem answers; a process can be left behind (even SIGKILL may only take effect
once the filesystem answers). So a helper runs in a session of its own (a kill reaches what it
started and nothing else), its exit is polled, never waited for, and one killed that does not die
is *abandoned*: kept here and reaped by a later `reap_abandoned`, once it finally dies.

The caller reads the helper's pipes with its own deadline: doctor/bounded.py from a selector
(the doctor's probes), causes/probe.py on the event loop (stat and latency probes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Helper", "abandoned", "reap_abandoned"]

_POLL_S = 0.005


class Helper:
    """`argv` started with no stdin, in a session of its own, from `cwd` (default: ours); its
    stdout (and stderr, if `stderr`) are pipes to read, at `stdout` and `stderr`. OSError if it
    cannot be started."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, stderr: bool = True) -> None:
        self._process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr else subprocess.DEVNULL, bufsize=0,
            env=None if env is None else dict(env), cwd=cwd, start_new_session=True)
        self.pid = self._process.pid
        assert self._process.stdout is not None
        self.stdout: int = self._process.stdout.fileno()
        self.stderr: int | None = (self._process.stderr.fileno()
                                   if self._process.stderr is not None else None)

    @property
    def returncode(self) -> int | None:
        """Its exit status once reaped: the code, or -N if signal N ended it."""
        return self._process.returncode

    def poll(self, within: float = 0.0) -> int | None:
        """The exit status if it ends within `within` s (polled: never a blocking wait)."""
        end = time.monotonic() + within
        while True:
            status = self._process.poll()
            if status is not None or time.monotonic() >= end:
                return status
            time.sleep(_POLL_S)

    def read_stdout(self) -> bytes:
        """All it wrote to stdout, read to the end (call it once it has exited)."""
        assert self._process.stdout is not None
        return self._process.stdout.read() or b""

    def kill(self, grace: float = 0.0) -> bool:
        """SIGKILL its session; True if it was reaped within `grace` s, else it is abandoned."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.poll(grace) is not None:
            return True
        _abandoned.add(self)
        return False

    def close(self) -> None:
        """Close its pipes (it may live on: see `kill`)."""
        for pipe in (self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()


_abandoned: set[Helper] = set()  # killed, not reaped yet (stuck in the kernel)


def reap_abandoned() -> None:
    """Reap the abandoned helpers that have finally died (never waits)."""
    for helper in list(_abandoned):
        if helper.poll() is not None:
            helper.close()
            _abandoned.discard(helper)


def abandoned() -> int:
    """How many killed helpers have not died yet."""
    reap_abandoned()
    return len(_abandoned)

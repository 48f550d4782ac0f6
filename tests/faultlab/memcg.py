"""A memory cgroup (v1) with a limit, as a container has: the kernel OOM-kills inside it.

    with memory_cgroup(3 * 2**30) as cg:       # /sys/fs/cgroup/memory/lspguard-test-XXXX
        subprocess.Popen(argv, preexec_fn=cg.preexec)   # the child starts inside it
        cg.join(pid)                            # or move a running process in
        ...
        cg.oom_kills                            # memory.oom_control's oom_kill counter

Why v1: it is what this machine (and many CI hosts and older Docker hosts) mounts; the kernel
enforces the limit on everything in the group, children included, so a proxy started in it
and the gopls it runs share one limit, as in a container. Swap is not limited separately
(memory.memsw), so on a host with swap the limit would page rather than kill: `oom_kills` is
the ground truth. Teardown SIGKILLs whatever is left in the group, waits (bounded) until it is
empty, and removes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..polling import wait_until

V1_ROOT = Path("/sys/fs/cgroup/memory")
PREFIX = "lspguard-test-"


def memcg_unavailable() -> str | None:
    """Why a v1 memory cgroup cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "a memory cgroup needs root"
    if not (V1_ROOT / "memory.limit_in_bytes").is_file():
        return f"no cgroup v1 memory controller at {V1_ROOT}"
    if not os.access(V1_ROOT, os.W_OK):
        return f"{V1_ROOT} is not writable"
    return None


class MemoryCgroup:
    """One child cgroup of the v1 memory root, with `limit` bytes."""

    def __init__(self, limit: int, name: str | None = None) -> None:
        self.path = V1_ROOT / (name or f"{PREFIX}{uuid.uuid4().hex[:8]}")
        self.path.mkdir()
        self.limit = limit
        try:
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
        except BaseException:
            self.path.rmdir()
            raise
        self._procs = str(self.path / "cgroup.procs")
        self._closed = False

    def join(self, pid: int) -> None:
        """Move `pid` (all its threads) into the group; its later children are born in it."""
        with open(self._procs, "w") as fh:
            fh.write(str(pid))

    def preexec(self) -> None:
        """For Popen(preexec_fn=...): the child joins before it execs (nothing escapes)."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    @property
    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer ended in this group (memory.oom_control)."""
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    @property
    def max_usage(self) -> int:
        """The group's peak charge (RSS and page cache), memory.max_usage_in_bytes."""
        return int((self.path / "memory.max_usage_in_bytes").read_text())

    def close(self) -> None:
        """Kill everything left in the group, then remove it; idempotent, bounded."""
        if self._closed:
            return
        self._closed = True
        for _ in range(3):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if wait_until(lambda: not self.pids(), 5.0):
                break
        wait_until(self._remove, 5.0, interval=0.1)

    def _remove(self) -> bool:
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:  # EBUSY while a killed process is still being torn down
            return False
        return True

    def __enter__(self) -> MemoryCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[MemoryCgroup]:
    """A fresh memory cgroup limited to `limit` bytes (skipping the test when there is none)."""
    reason = memcg_unavailable()
    if reason:
        pytest.skip(reason)
    with MemoryCgroup(limit) as cg:
        yield cg

"""The server's memory against its limit, and the verdict `out_of_memory`.

A container's memory limit kills gopls with SIGKILL during a big load: to the proxy that is an
exit by signal 9 like any other. What tells it apart is the kernel's own count of OOM kills in
the cgroup (or, without a cgroup limit, the machine's): read when a generation starts and again
when it dies (causes/memory.py). The verdict names the last RSS seen and the limit; the restart
after it runs with GOMEMLIMIT at `HEAP_SHARE` of the limit (policy.py: `Escalation.MEMORY`).
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any, Protocol

from lspguard.causes.memory import (
    MemoryCgroup,
    format_bytes,
    global_oom_kills,
    memory_cgroup,
    rss_bytes,
)
from lspguard.causes.verdict import Verdict, VerdictKind

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["HEAP_SHARE", "NEAR_LIMIT", "MemoryWatch", "gomemlimit_for"]

HEAP_SHARE = 0.8  # GOMEMLIMIT after an OOM kill, as a share of the limit
NEAR_LIMIT = 0.9  # RSS above this share of the limit: the status warns
_RESOLVE_S = 5.0  # the cgroup is looked up again this often (a process may be moved)


def gomemlimit_for(limit: int) -> str:
    """GOMEMLIMIT at HEAP_SHARE of `limit`, in whole MiB (the Go runtime's own syntax)."""
    return f"{int(limit * HEAP_SHARE) // (1 << 20)}MiB"


class Exited(Protocol):
    """A server process that has exited (proxy/backend.py's Backend)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def generation(self) -> int: ...

    @property
    def stderr_tail(self) -> Iterable[str]: ...


class MemoryWatch:
    """One session's view of the server's memory: RSS samples per tick, the cgroup's limit
    and OOM counters per generation."""

    def __init__(self) -> None:
        self.rss: int | None = None
        self.peak_rss: int | None = None
        self.cgroup: MemoryCgroup | None = None
        self.limit: int | None = None
        self._pid: int | None = None
        self._resolved = 0.0  # monotonic time the cgroup was last looked up
        self._oom_base = 0  # the cgroup's OOM kills when the generation started
        self._global_base: int | None = None
        self.oom_kills = 0  # counted this session
        self.gomemlimit: str | None = None
        self.warned = False  # the user was told this generation nears the limit

    def start(self, pid: int, env: Mapping[str, str]) -> None:
        """A new generation: find its cgroup and limit, take the OOM counters' baseline."""
        self._pid = pid
        self.rss = None
        self.warned = False
        self.cgroup = None
        self._resolve()
        self._global_base = global_oom_kills()
        self.gomemlimit = env.get("GOMEMLIMIT") or os.environ.get("GOMEMLIMIT") or None

    def _resolve(self) -> None:
        """Find the server's cgroup (again: a supervisor may move it) and its limit; a new
        cgroup gets a new OOM baseline."""
        if self._pid is None:
            return
        self._resolved = time.monotonic()
        found = memory_cgroup(self._pid)
        if found is None or (self.cgroup is not None and found.dirs == self.cgroup.dirs):
            if self.cgroup is not None:
                self.limit = self.cgroup.limit_bytes()
            return
        self.cgroup = found
        self.limit = found.limit_bytes()
        self._oom_base = found.oom_kills()

    def sample(self, pid: int, tree_rss: int | None = None) -> None:
        """The latest RSS: the whole tree's from a snapshot when there is one, else the
        server's own (one short read of /proc/PID/statm)."""
        if pid != self._pid:
            return
        if time.monotonic() - self._resolved >= _RESOLVE_S:
            self._resolve()
        rss = tree_rss if tree_rss is not None else rss_bytes(pid)
        if rss is not None:
            self.rss = rss
            self.peak_rss = max(self.peak_rss or 0, rss)

    def _oom_killed(self) -> bool:
        if self.cgroup is not None and self.cgroup.oom_kills() > self._oom_base:
            return True
        now = global_oom_kills()
        return now is not None and self._global_base is not None and now > self._global_base

    def verdict_on_exit(self, backend: Exited, server: str) -> Verdict | None:
        """`out_of_memory` if the kernel's OOM killer ended `backend`, else None."""
        if backend.pid != self._pid or backend.returncode != -signal.SIGKILL:
            return None
        if not self._oom_killed():
            return None
        self.oom_kills += 1
        at = f" at {format_bytes(self.rss)}" if self.rss else ""
        if self.limit is not None and self.cgroup is not None:
            limit = (f"the memory limit of its cgroup ({self.cgroup.label}, a container's "
                     f"limit) is {format_bytes(self.limit, binary=True)}")
        else:
            limit = "the machine ran out of memory (no cgroup limit applies)"
        with_limit = f" (it ran with GOMEMLIMIT={self.gomemlimit})" if self.gomemlimit else ""
        summary = (f"The kernel's OOM killer ended {server} (pid {backend.pid}){at}{with_limit}"
                   f"; {limit}.")
        facts: dict[str, Any] = {
            "returncode": backend.returncode, "rss_bytes": self.rss,
            "peak_rss_bytes": self.peak_rss, "limit_bytes": self.limit,
            "limit_source": self.cgroup.label if self.cgroup else None,
            "gomemlimit": self.gomemlimit, "stderr_tail": list(backend.stderr_tail)[-20:],
            "stop_reason": self._stop_reason(server),
        }
        return Verdict(VerdictKind.OUT_OF_MEMORY, summary, backend.generation, facts)

    def _stop_reason(self, server: str) -> str:
        """The degraded message after a second OOM kill: what to change."""
        limit = (f"the {format_bytes(self.limit, binary=True)} memory limit"
                 if self.limit is not None else "the machine's memory")
        heap = f" even with GOMEMLIMIT={self.gomemlimit}" if self.gomemlimit else ""
        return (f"the kernel's OOM killer ended {server} again{heap}: {limit} is too small "
                "for this workspace. Fix: raise the container's memory limit (Docker Desktop: "
                "Settings > Resources > Memory; a dev container: \"runArgs\": "
                "[\"--memory=8g\"]), or give gopls less to load: \"build.directoryFilters\" "
                "(e.g. [\"-node_modules\", \"-third_party\"]), or open a sub-module instead of "
                "the whole repository")

    @property
    def near_limit(self) -> bool:
        return bool(self.limit and self.rss and self.rss >= NEAR_LIMIT * self.limit)

    def near_limit_warning(self, server: str) -> str | None:
        """Once per generation, as RSS nears the limit: the words of the warning."""
        if self.warned or not self.near_limit or self.rss is None or self.limit is None:
            return None
        self.warned = True
        where = f" ({self.cgroup.label})" if self.cgroup else ""
        return (f"lspguard: {server} uses {format_bytes(self.rss)} of its "
                f"{format_bytes(self.limit, binary=True)} memory limit{where}: the kernel's OOM "
                "killer may end it. Fix: raise the container's memory limit, or give gopls less "
                "to load (\"build.directoryFilters\", or open a sub-module).")

    def limit_for_restart(self, env: Mapping[str, str]) -> str | None:
        """GOMEMLIMIT for the restart after an OOM kill; None when the user set one (it is
        kept as it is) or no limit is known."""
        if env.get("GOMEMLIMIT") or os.environ.get("GOMEMLIMIT") or self.limit is None:
            return None
        return gomemlimit_for(self.limit)

    def as_status(self) -> dict[str, Any] | None:
        """The status file's `memory` (status/schema.py `Memory`); None before any sample."""
        if self.rss is None and self.limit is None:
            return None
        near = self.near_limit
        return {"rss_bytes": self.rss, "peak_rss_bytes": self.peak_rss,
                "limit_bytes": self.limit,
                "limit_source": self.cgroup.label if self.cgroup else None,
                "oom_kills": self.oom_kills, "gomemlimit": self.gomemlimit,
                "near_limit": near}

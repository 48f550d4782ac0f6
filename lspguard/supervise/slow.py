"""Slow is a state, not a verdict: a filesystem gopls needs answers, but slowly.

On a Docker Desktop bind mount (osxfs, grpcfuse, virtiofs) every `stat()` may take milliseconds:
gopls's first load of a big module then takes minutes, and it is working all along. lspguard
restarts nothing and answers nothing itself; it measures the mount and says so in the status
(state "slow"), with the fix.

The measure: a helper process (never the proxy: a hung mount would hang it) looks up names
that do not exist under a directory, each once (no cache can answer for a name never asked),
and reports the lower quartile of the times: a slow filesystem is slow at every lookup, while a
busy machine delays only some (a pass-through FUSE mount in Python answers in 0.15 ms here,
and a median of 8 still reached 1.1 ms once in five when idle). Directories measured: the
workspace folders, GOMODCACHE and GOCACHE (once per generation, then every `_REPROBE_S`), and
the directory of any path a thread of the server's tree is seen waiting on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lspguard.procfs.mounts import mount_for, read_mountinfo

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from lspguard.causes.probe import PathProber
    from lspguard.causes.tree import TreeSnapshot
    from lspguard.procfs.mounts import Mount

__all__ = ["SlowMount", "SlowWatch", "go_roots", "measure_latency"]

log = logging.getLogger(__name__)

_REPROBE_S = 30.0  # a mount is measured again after this long
_LOOKUPS = 16  # per directory, or as many as fit in 0.3 s (at least 4)

_HELPER = r"""
import json, os, sys, time
out = {}
for d in sys.argv[2:]:
    times = []
    began = time.perf_counter()
    for i in range(int(sys.argv[1])):
        name = os.path.join(d, ".lspguard-latency-%d-%d" % (os.getpid(), i))
        t = time.perf_counter()
        try:
            os.lstat(name)
        except OSError:
            pass
        times.append(time.perf_counter() - t)
        if i >= 3 and t - began > 0.3:
            break
    times.sort()
    out[d] = times[len(times) // 4] * 1000
    print(json.dumps(out), flush=True)
"""

@dataclass(frozen=True)
class SlowMount:
    mount_point: str
    fs_type: str
    source: str | None
    role: str  # "the workspace", "GOMODCACHE", "GOCACHE", "a directory gopls reads"
    latency_ms: float
    since: float  # unix time

    @property
    def sentence(self) -> str:
        where = f"{self.role} at {self.mount_point}" if self.role != "a directory gopls reads" \
            else f"the filesystem at {self.mount_point} that gopls reads"
        return (f"{where[0].upper()}{where[1:]} ({self.fs_type}) answers in "
                f"{self.latency_ms:.1f} ms per operation: gopls is working, but its loads will "
                "be slow. lspguard waits for it and restarts nothing.")

    @property
    def fix(self) -> str:
        from lspguard.procfs.fstypes import IfSlow, fs_type  # not on the start-up path

        fs = self.fs_type
        fix = fs_type(fs).if_slow  # Docker Desktop's and other VM file sharing, or the network
        caches = ("keep GOMODCACHE and GOCACHE on a container volume or local disk, not on "
                  "this mount (`go env -w GOMODCACHE=/go/pkg/mod GOCACHE=/root/.cache/go-build` "
                  "with a named volume there)")
        if fix is IfSlow.HOST_SHARING:
            return (f"This is a file share from the host (Docker Desktop: {fs}): {caches}; "
                    "clone the repository into a container volume (Dev Containers: \"Clone "
                    "Repository in Container Volume\"); or use VirtioFS file sharing in Docker "
                    "Desktop's settings.")
        if fix is IfSlow.NETWORK:
            return f"This is a network filesystem ({fs}): {caches}, and work on a local clone."
        return f"Check the disk or mount behind {self.mount_point}; {caches}."

    def as_status(self) -> dict[str, Any]:
        return {"mount_point": self.mount_point, "fs_type": self.fs_type,
                "source": self.source, "role": self.role,
                "latency_ms": round(self.latency_ms, 2), "sentence": self.sentence,
                "fix": self.fix, "since": self.since}


def go_roots(folders: Iterable[str], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(role, directory) for the workspace folders, GOMODCACHE and GOCACHE, as the go command
    would find them from `env` (and the `go env -w` file), without running it (it may hang)."""
    settings = _go_env_file(env)

    def get(key: str) -> str:
        return env.get(key) or settings.get(key) or ""

    home = env.get("HOME") or os.path.expanduser("~")
    gopath = (get("GOPATH") or os.path.join(home, "go")).split(os.pathsep)[0]
    modcache = get("GOMODCACHE") or os.path.join(gopath, "pkg", "mod")
    cache_home = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    gocache = get("GOCACHE") or os.path.join(cache_home, "go-build")
    roots = [("the workspace", f) for f in folders]
    roots += [("GOMODCACHE", modcache)]
    if gocache != "off":
        roots += [("GOCACHE", gocache)]
    return roots


def _go_env_file(env: Mapping[str, str]) -> dict[str, str]:
    path = env.get("GOENV") or os.path.join(
        env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or "~", ".config"),
        "go", "env")
    settings: dict[str, str] = {}
    with contextlib.suppress(OSError, UnicodeDecodeError), \
            open(os.path.expanduser(path), encoding="utf-8") as f:
        for line in f.read(1 << 16).splitlines():
            key, sep, value = line.partition("=")
            if sep:
                settings[key.strip()] = value.strip()
    return settings


async def measure_latency(directories: Sequence[str], helpers: PathProber) -> dict[str, float]:
    """Milliseconds per lookup (lower quartile) under each directory, measured in a helper
    process under the prober's deadline; a directory whose lookups did not all return in time
    is left out (it is not slow: it does not answer, which the watchdog judges)."""
    if not directories:
        return {}
    done = await helpers.run([sys.executable, "-I", "-S", "-c", _HELPER, str(_LOOKUPS),
                              *directories])
    lines = done[1].splitlines() if done is not None else []
    try:
        return {str(k): float(v) for k, v in json.loads(lines[-1]).items()} if lines else {}
    except (ValueError, AttributeError):
        return {}


class SlowWatch:
    """Which mounts gopls needs are slow; `slow` is the slowest one over the threshold."""

    def __init__(self, threshold_ms: float, timeout: float) -> None:
        self.threshold_ms = threshold_ms
        self.timeout = timeout
        self._helpers: PathProber | None = None  # made on the first measure (psutil with it)
        self.slow: SlowMount | None = None
        self.latency: dict[str, float] = {}  # mount point -> last ms per lookup
        self._measured: dict[str, float] = {}  # mount point -> monotonic time measured
        self._roots_due = float("-inf")  # when the roots are looked at again without a wait
        self._roots: tuple[tuple[str, str], ...] = ()
        self._busy = False

    def reset(self) -> None:
        """A new generation: measure its roots again."""
        self._measured.clear()
        self._roots_due = float("-inf")

    def due(self, roots: Sequence[tuple[str, str]], snap: TreeSnapshot | None,
            now: float) -> list[tuple[str, str, Mount]]:
        """(role, directory, mount) to measure now, to be given to `measure`: one directory per
        mount, each mount at most every `_REPROBE_S` seconds."""
        if self._busy:
            return []
        fresh = tuple(roots) != self._roots  # the workspace is known once initialize came
        if snap is None and now < self._roots_due and not fresh:
            return []  # most ticks: nothing read, nothing parsed
        self._roots = tuple(roots)
        mounts = snap.mounts if snap is not None and snap.mounts else read_mountinfo()
        wanted: list[tuple[str, str]] = list(roots)
        if snap is not None:
            for proc in snap.processes.values():
                for t in proc.threads:
                    if t.kind.value == "filesystem" and t.target and t.target.startswith("/"):
                        wanted.append(("a directory gopls reads", os.path.dirname(t.target)))
        out: list[tuple[str, str, Mount]] = []
        for role, directory in wanted:
            mount = mount_for(directory, mounts)
            if mount is None or any(m.mount_point == mount.mount_point for _, _, m in out):
                continue
            last = self._measured.get(mount.mount_point)
            if last is None or now - last >= _REPROBE_S:
                out.append((role, directory, mount))
                self._measured[mount.mount_point] = now  # claimed: measure() follows
                if (role, directory) in self._roots:
                    self._roots_due = now + _REPROBE_S
        return out

    async def measure(self, items: Sequence[tuple[str, str, Mount]]) -> None:
        """Measure `items` (from `due`) and update `slow`."""
        if not items:
            return
        self._busy = True
        try:
            if self._helpers is None:
                from lspguard.causes.probe import PathProber

                self._helpers = PathProber(self.timeout)
            found = await measure_latency([d for _, d, _ in items], self._helpers)
        finally:
            self._busy = False
        for role, directory, mount in items:
            ms = found.get(directory)
            if ms is None:
                continue
            self.latency[mount.mount_point] = ms
            current = self.slow
            if ms >= self.threshold_ms:
                if current is None or current.mount_point == mount.mount_point or \
                        ms > current.latency_ms:
                    since = current.since if current is not None else time.time()
                    if current is None:
                        log.warning("slow filesystem: %s at %s (%s) answers in %.1f ms per "
                                    "lookup", role, mount.mount_point, mount.fs_type, ms)
                    self.slow = SlowMount(mount.mount_point, mount.fs_type, mount.source, role,
                                          ms, since)
            elif current is not None and current.mount_point == mount.mount_point:
                log.info("%s answers in %.2f ms per lookup again: no longer slow",
                         mount.mount_point, ms)
                self.slow = None

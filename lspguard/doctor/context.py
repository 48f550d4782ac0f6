"""What every doctor check gets: the workspace, the Go environment, the mount table and limits,
and the only way a check touches the filesystem: bounded probes (see bounded.py).

Everything a check would otherwise read from the machine (`go env`, the mount table, the process
environment) is injectable here, so tests can simulate a macOS Docker Desktop bind mount or a
broken GOCACHE without root and without a particular Go installation. The probe methods map each
path to its mount first (string work), skip mounts already seen hanging, and turn a probe that
did not return into a hung-mount record plus a NotChecked carrying the finding to report.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lspguard.doctor.bounded import CommandResult, Done, Failed, TimedOut, run_bounded, run_command
from lspguard.doctor.hung import (
    HungMount,
    NotChecked,
    not_answering,
    out_of_time,
    skipped,
    timed_out,
)
from lspguard.procfs.mounts import is_within, mount_for, parse_mounts, read_mount_table

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from lspguard.doctor.model import Finding
    from lspguard.procfs.mounts import Mount

__all__ = ["DoctorContext", "Limits", "PathInfo", "ProbeError", "default_go_env",
           "gopls_cache_dir", "is_within"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on every walk, sample and subprocess, so the doctor never hangs like gopls did."""

    max_files: int = 20_000  # entries visited by the workspace walk
    walk_seconds: float = 5.0
    sample_files: int = 200  # files stat'ed per tree by the latency sample
    sample_seconds: float = 3.0
    probe_seconds: float = 4.0  # one stat/readlink/list/open; past it the fs is "not answering"
    subprocess_seconds: float = 15.0  # each of `go env`, `go version`, `gopls version`
    total_seconds: float = 25.0  # the whole doctor; probes not started by then are skipped


@dataclass(frozen=True, slots=True)
class PathInfo:
    """What a `paths` probe saw; `real_existing` is the realpath of the nearest existing
    ancestor (the path itself if it exists; caches may not be created yet)."""

    exists: bool
    is_dir: bool
    is_file: bool
    real: str
    real_existing: str


class ProbeError(RuntimeError):
    """A probe helper crashed: a bug in lspguard doctor, reported as `<check>.crashed`."""


@dataclass(slots=True)
class DoctorContext:
    """Inputs shared by all checks. `go_env` is the effective environment gopls would see."""

    workspace: Path
    go_env: dict[str, str]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    mounts_text: str | None = None  # /proc/mounts-format text; None: read the real table
    limits: Limits = field(default_factory=Limits)
    go_env_loaded: bool = True  # False when `go env` failed and go_env holds guessed defaults
    gopls: str = ""  # an explicit gopls path (else LSPGUARD_GOPLS / PATH)
    deadline: float = 0.0  # time.monotonic() by which all probes end; 0: total_seconds from now
    hung: dict[str, HungMount] = field(default_factory=dict)  # by mount point
    _mounts: list[Mount] | None = field(default=None, init=False)
    _paths: dict[str, PathInfo | Finding] = field(default_factory=dict, init=False)
    _trees: dict[tuple[str, bool], dict[str, Any] | Finding] = field(default_factory=dict,
                                                                     init=False)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.limits.total_seconds

    def env_path(self, key: str) -> Path | None:
        """A path-valued go env entry (GOMODCACHE, GOCACHE...), or None if unset/off."""
        value = self.go_env.get(key, "")
        if not value or value == "off" or not os.path.isabs(value):
            return None
        return Path(value)

    @property
    def gomodcache(self) -> Path | None:
        return self.env_path("GOMODCACHE")

    @property
    def gocache(self) -> Path | None:
        return self.env_path("GOCACHE")

    @property
    def goplscache(self) -> Path | None:
        return gopls_cache_dir(self.environ)

    # ------------------------------------------------------------------ mounts (no fs access)

    def mount_table(self) -> list[Mount]:
        """The injected table, else /proc/self/mountinfo (procfs: safe even with a dead mount)."""
        if self._mounts is None:
            self._mounts = (parse_mounts(self.mounts_text) if self.mounts_text is not None
                            else read_mount_table())
        return self._mounts

    def mount_of(self, path: str | Path) -> Mount | None:
        return mount_for(os.path.abspath(path), self.mount_table())

    def hung_mount(self, paths: Iterable[str | Path]) -> tuple[str, HungMount] | None:
        """The first of `paths` on a mount already seen hanging, with that mount."""
        for path in paths:
            mount = self.mount_of(path)
            key = mount.mount_point if mount else os.path.abspath(path)
            if key in self.hung:
                return str(path), self.hung[key]
        return None

    def hung_findings(self) -> list[Finding]:
        return [not_answering(h) for h in self.hung.values()]

    # ------------------------------------------------------------------------------ probes

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _budget(self, check: str, what: str, paths: Sequence[str | Path], want: float) -> float:
        hit = self.hung_mount(paths)
        if hit is not None:
            raise NotChecked(skipped(check, what, hit[0], hit[1]))
        budget = min(want, self.remaining())
        if budget < 0.5:
            raise NotChecked(out_of_time(check, what, self.limits.total_seconds))
        return budget

    def _timed_out(self, check: str, what: str, t: TimedOut) -> NotChecked:
        """Record the mount a stuck call was on; the NotChecked to raise for it."""
        if not t.long and t.op != "start" and os.path.isabs(t.path) and \
                t.waited >= 0.95 * min(t.limit, self.limits.probe_seconds):
            mount = self.mount_of(t.path)
            key = mount.mount_point if mount else t.path
            hung = self.hung.setdefault(key, HungMount(mount, t.op, t.path, t.limit,
                                                       not t.reaped))
            return NotChecked(skipped(check, what, t.path, hung))
        return NotChecked(timed_out(check, what, t))

    def probe(self, check: str, what: str, func: str, args: Any, *,
              paths: Sequence[str | Path], timeout: float,
              env: Mapping[str, str] | None = None) -> Any:
        """Run probe `func` (module:function) in a bounded helper; its JSON result. Raises
        NotChecked if `paths` are on a hung mount, the budget is spent, or it does not return."""
        outcome = run_bounded(func, args, timeout=self._budget(check, what, paths, timeout),
                              stall=self.limits.probe_seconds, env=env)
        if isinstance(outcome, Done):
            return outcome.value
        if isinstance(outcome, Failed):
            raise ProbeError(outcome.error)
        raise self._timed_out(check, what, outcome)

    def command_cwd(self) -> str:
        """Where to run go/gopls: the workspace, unless its mount is not answering."""
        return "/" if self.hung_mount([self.workspace]) else str(self.workspace)

    def command(self, check: str, what: str, argv: Sequence[str], *, cwd: str,
                timeout: float, env: Mapping[str, str] | None = None) -> CommandResult | TimedOut:
        """Run a command (bounded, see bounded.run_command), with `env` over the environment.
        A command that ran too long comes back as TimedOut; a PATH entry or cwd that hangs
        raises NotChecked."""
        outcome = run_command(argv, cwd=cwd, env={**self.environ, **(env or {})},
                              timeout=self._budget(check, what, [cwd], timeout),
                              stall=self.limits.probe_seconds)
        if isinstance(outcome, Failed):
            raise ProbeError(outcome.error)
        if isinstance(outcome, TimedOut) and not outcome.long:
            raise self._timed_out(check, what, outcome)
        return outcome

    def prefetch(self, check: str, paths: Iterable[str | Path]) -> None:
        """path_info for several paths: one helper per mount, so one dead mount costs one
        deadline and does not hide the others."""
        groups: dict[str, list[str]] = {}
        for path in paths:
            p = os.path.abspath(path)
            if p not in self._paths:
                mount = self.mount_of(p)
                groups.setdefault(mount.mount_point if mount else "", []).append(p)
        for group in groups.values():
            try:
                infos = self.probe(check, group[0], "lspguard.doctor.probes:paths",
                                   {"paths": group}, paths=group,
                                   timeout=self.limits.probe_seconds * (len(group) + 1))
            except NotChecked as exc:
                self._paths.update(dict.fromkeys(group, exc.finding))
                continue
            for p, info in infos.items():
                self._paths[p] = PathInfo(**info)

    def path_info(self, check: str, path: str | Path, what: str = "") -> PathInfo:
        """stat and realpath of `path`, bounded and cached; NotChecked if that failed."""
        p = os.path.abspath(path)
        if p not in self._paths:
            self.prefetch(check, [p])
        cached = self._paths[p]
        if isinstance(cached, PathInfo):
            return cached
        hit = self.hung_mount([p])
        raise NotChecked(skipped(check, what or p, p, hit[1]) if hit else cached)

    def tree(self, check: str, what: str, root: str, *, links: bool, max_entries: int,
             seconds: float, skip: Sequence[str] = ()) -> dict[str, Any]:
        """One bounded walk of `root` (a real path): see probes.tree. Cached per root."""
        key = (root, links)
        cached = self._trees.get(key)
        for _ in range(3 if cached is None else 0):
            known = set(self.hung)
            args = {"root": root, "max_entries": max_entries, "seconds": seconds,
                    "sample": self.limits.sample_files, "skip": list(skip), "links": links,
                    "avoid": sorted(known)}
            try:
                cached = self.probe(check, what, "lspguard.doctor.probes:tree", args,
                                    paths=[root], timeout=seconds + 2 * self.limits.probe_seconds)
                break
            except NotChecked as exc:
                cached = exc.finding  # not retried by later checks: they would wait as long
            if set(self.hung) == known or self.hung_mount([root]):
                break  # again, avoiding the mount that just hung (one nested or linked to)
        if cached is not None:
            self._trees[key] = cached
        if isinstance(cached, dict):
            return cached
        assert cached is not None
        kind = cached.id.split(".", 1)[1]
        raise NotChecked(dataclasses.replace(cached, id=f"{check}.{kind}"))

    def workspace_tree(self, check: str) -> dict[str, Any]:
        """The workspace walk shared by the symlinks, special and latency checks; the caches
        are not descended into (they are checked on their own)."""
        caches = [p for p in (self.gomodcache, self.gocache) if p is not None]
        self.prefetch(check, [self.workspace, *caches])
        root = self.path_info(check, self.workspace, "the workspace").real
        skip = []
        for cache in caches:
            try:
                skip.append(self.path_info(check, cache).real)
            except NotChecked:
                skip.append(os.path.abspath(cache))
        return self.tree(check, "the workspace", root, links=True, skip=skip,
                         max_entries=self.limits.max_files, seconds=self.limits.walk_seconds)


def _user_cache_dir(environ: Mapping[str, str]) -> str | None:
    """Go's os.UserCacheDir, which both GOCACHE's and gopls's defaults are built on."""
    home = environ.get("HOME", "")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches") if home else None
    xdg = environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return xdg
    return os.path.join(home, ".cache") if home else None


def gopls_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """Where gopls keeps its persistent cache: $GOPLSCACHE/gopls, else UserCacheDir()/gopls
    (gopls internal/filecache.getCacheDir; it falls back to $TMPDIR/gopls if that fails)."""
    base = environ.get("GOPLSCACHE", "") or _user_cache_dir(environ)
    return Path(base, "gopls") if base else None


def default_go_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What `go env` would say about the paths we need when `go env` itself failed or hung."""
    env = {k: environ[k] for k in ("GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY",
                                   "GO111MODULE", "GOPACKAGESDRIVER", "GOWORK") if k in environ}
    home = environ.get("HOME", "")
    if not env.get("GOPATH") and home:
        env["GOPATH"] = os.path.join(home, "go")
    first_gopath = env.get("GOPATH", "").split(os.pathsep)[0]
    if not env.get("GOMODCACHE") and first_gopath:
        env["GOMODCACHE"] = os.path.join(first_gopath, "pkg", "mod")
    cache = _user_cache_dir(environ)
    if not env.get("GOCACHE") and cache:
        env["GOCACHE"] = os.path.join(cache, "go-build")
    return env

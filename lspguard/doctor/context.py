"""What every doctor check gets: the workspace, the Go environment, the mount table and limits.

Everything a check would otherwise read from the machine (`go env`, `/proc/mounts`, the process
environment) is injectable here, so tests can simulate a macOS Docker Desktop bind mount or a
broken GOCACHE without root and without a particular Go installation.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DoctorContext", "Limits", "default_go_env", "gopls_cache_dir", "is_within"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on every walk, sample and subprocess, so the doctor never hangs like gopls did."""

    max_files: int = 20_000  # entries visited by the symlink walk
    walk_seconds: float = 5.0
    sample_files: int = 200  # files stat'ed per tree by the latency sample
    sample_seconds: float = 3.0
    subprocess_seconds: float = 15.0  # each of `go env`, `go version`, `gopls version`
    check_seconds: float = 30.0  # a whole check; past it the check becomes a finding


@dataclass(slots=True)
class DoctorContext:
    """Inputs shared by all checks. `go_env` is the effective environment gopls would see."""

    workspace: Path
    go_env: dict[str, str]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    mounts_text: str | None = None  # None: read /proc/mounts when needed
    limits: Limits = field(default_factory=Limits)
    go_env_loaded: bool = True  # False when `go env` failed and go_env holds guessed defaults
    gopls: str = ""  # an explicit gopls path (else LSPGUARD_GOPLS / PATH)

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

    def read_mounts(self) -> str:
        """The mount table text (injected, else /proc/mounts; empty where there is none)."""
        if self.mounts_text is None:
            try:
                self.mounts_text = Path("/proc/mounts").read_text(errors="replace")
            except OSError:
                self.mounts_text = ""
        return self.mounts_text


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


def is_within(path: str, root: str) -> bool:
    """True if `path` is `root` or below it (plain string paths, already normalised)."""
    root = root.rstrip(os.sep) or os.sep
    return path == root or path.startswith(root if root == os.sep else root + os.sep)

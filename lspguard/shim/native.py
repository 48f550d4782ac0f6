"""The native gopls shim: built from launcher/*.go with the user's own Go toolchain.

VS Code Go runs `go version -m` on the gopls it is given and warns "Tools (gopls) need
recompiling" at every start when that fails, as it does on a script. So `install-shim` builds
a small Go program (standard library only, `go build -trimpath`, offline) whose build info
names the user's toolchain, and which does without Python whatever needs none (launcher/main.go
says what). Builds are cached by everything baked into them (lspguard's version, the Go
version, the launcher's source, this Python, the pinned config), so a new Go or a new lspguard
builds anew, and `lspguard doctor` says when an installed shim is out of date.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lspguard import __version__
from lspguard.errors import LspguardError
from lspguard.gopls.identity import MODULE, is_native_shim

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SOURCES", "NativeShimError", "ShimBuild", "build", "find_go", "go_version",
           "shim_build_info"]

SOURCES = Path(__file__).resolve().parent / "launcher"
_BUILD_TIMEOUT_S = 120.0


class NativeShimError(LspguardError):
    """The native shim cannot be built here (no Go toolchain, or the build failed)."""


@dataclass(frozen=True)
class ShimBuild:
    """What a native shim was built from (`shim_build_info`, from the shim itself)."""

    version: str  # lspguard's
    go: str  # e.g. go1.26.8
    python: str
    source_root: str
    config: str


def find_go(environ: Mapping[str, str] | None = None) -> Path | None:
    """The `go` command: on PATH, else in $GOROOT/bin or /usr/local/go/bin (where the official
    installer puts it; editors are often started with a PATH lacking it)."""
    env = os.environ if environ is None else environ
    found = shutil.which("go", path=env.get("PATH", os.defpath))
    if found:
        return Path(found)
    for root in (env.get("GOROOT", ""), "/usr/local/go"):
        candidate = Path(root, "bin", "go") if root else None
        if candidate is not None and os.access(candidate, os.X_OK):
            return candidate
    return None


def _go_env() -> dict[str, str]:
    """A build that uses only the toolchain at hand and no network, whatever the user set."""
    return {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod",
            "GOWORK": "off", "GO111MODULE": "on", "GOPROXY": "off"}


def go_version(go: Path) -> str:
    """`go env GOVERSION` (e.g. go1.26.8)."""
    try:
        done = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True,
                              timeout=30, env=_go_env(), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NativeShimError(f"cannot run {go}: {exc}") from exc
    version = done.stdout.strip()
    if done.returncode != 0 or not version.startswith("go"):
        raise NativeShimError(f"{go} env GOVERSION failed: {done.stderr.strip() or version}")
    return version


def _language_version(version: str) -> str:
    """go1.26.8 -> 1.26 (the go.mod `go` line: the toolchain's own, so no newer is asked for)."""
    digits = version.removeprefix("go").split(".")
    minor = "".join(c for c in (digits[1] if len(digits) > 1 else "") if c.isdigit())
    return f"{digits[0]}.{minor or '0'}"


def _source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(SOURCES.glob("*.go")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _cache_dir() -> Path:
    env = os.environ.get("LSPGUARD_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lspguard"))


def _ldflag(name: str, value: str) -> str:
    if "'" in value or "\n" in value:
        raise NativeShimError(f"cannot pass {value!r} to the Go linker; the script shim is used")
    return f"-X 'main.{name}={value}'"


def build(config: Path | None = None, *, go: Path | None = None) -> Path:
    """Build the native shim (or reuse a cached build) and return its path in the cache.

    Raises NativeShimError when no Go toolchain is found or the build fails."""
    go = go or find_go()
    if go is None:
        raise NativeShimError("no Go toolchain found (go is not on PATH)")
    version = go_version(go)
    baked = {"version": __version__, "python": os.path.abspath(sys.executable),
             "sourceRoot": str(Path(__file__).resolve().parents[2]),
             "pinnedConfig": str(config) if config is not None else ""}
    key = hashlib.sha256(json.dumps([version, _source_digest(), baked], sort_keys=True)
                         .encode()).hexdigest()[:16]
    target = _cache_dir() / "shim" / f"{version}-{key}" / "gopls"
    if is_native_shim(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as tmp:
        work = Path(tmp)
        for source in SOURCES.glob("*.go"):
            shutil.copyfile(source, work / source.name)
        (work / "go.mod").write_text(f"module {MODULE}\n\ngo {_language_version(version)}\n")
        ldflags = " ".join(["-s", "-w", _ldflag("python", baked["python"]),
                            _ldflag("sourceRoot", baked["sourceRoot"]),
                            _ldflag("pinnedConfig", baked["pinnedConfig"]),
                            _ldflag("lspguardVersion", __version__)])
        output = work / "gopls"
        try:
            done = subprocess.run(
                [str(go), "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags,
                 "-o", str(output), "."],
                cwd=work, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S,
                env=_go_env(), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NativeShimError(f"go build failed: {exc}") from exc
        if done.returncode != 0:
            raise NativeShimError(f"go build failed ({version}): {done.stderr.strip()[-2000:]}")
        os.replace(output, target)
    return target


def shim_build_info(path: str | os.PathLike[str]) -> ShimBuild | None:
    """What the native shim at `path` was built from (it says so itself), or None."""
    if not is_native_shim(path):
        return None
    try:
        done = subprocess.run([str(path)], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "LSPGUARD_LAUNCHER_SELFTEST": "info"},
                              check=False)
        data = json.loads(done.stdout)
        return ShimBuild(str(data["version"]), str(data["go"]), str(data["python"]),
                         str(data["source_root"]), str(data["config"]))
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None

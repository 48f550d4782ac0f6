"""Finding the real gopls: the one lookup the shim, `lspguard run`, the doctor and the demo use.

The shim is itself named `gopls` and usually on PATH, so a naive lookup finds it and execs it
forever. Every candidate that is the running shim (by realpath or inode) or any lspguard shim
(identity.py) is skipped; an explicit setting that points at a shim is a ShimLoopError. The
native shim applies the same rule (shim/launcher/find.go). Standard library only: this runs on
every `gopls version` through the script shim.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lspguard.errors import BackendError, ShimLoopError
from lspguard.gopls.identity import is_shim

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["find_real_gopls"]


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _is_self(path: str, self_path: Path | None) -> bool:
    """Same file as the running shim: equal realpath, or same inode (hard link, bind mount)."""
    if self_path is None:
        return False
    if os.path.realpath(path) == os.path.realpath(self_path):
        return True
    ident = _file_id(path)
    return ident is not None and ident == _file_id(str(self_path))


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _fallback_dirs(environ: Mapping[str, str]) -> list[str]:
    """Where `go install` puts gopls ($GOBIN, each $GOPATH/bin, ~/go/bin): searched after PATH,
    as vscode-go does, because editors are often started with a PATH lacking them."""
    dirs: list[str] = []
    if environ.get("GOBIN"):
        dirs.append(environ["GOBIN"])
    gopath = environ.get("GOPATH", "")
    if gopath:
        dirs.extend(os.path.join(p, "bin") for p in gopath.split(os.pathsep) if p)
    else:
        home = environ.get("HOME", "")
        if home:
            dirs.append(os.path.join(home, "go", "bin"))
    return dirs


def _search(
    name: str, dirs: Sequence[str], self_path: Path | None, skipped: list[str]
) -> Path | None:
    seen: set[str] = set()
    for d in dirs:
        candidate = os.path.abspath(os.path.join(d or ".", name))  # "" in PATH means cwd
        real = os.path.realpath(candidate)
        if real in seen:
            continue
        seen.add(real)
        if not _is_executable_file(candidate):
            continue
        if _is_self(candidate, self_path) or is_shim(Path(candidate)):
            skipped.append(candidate if real == candidate else f"{candidate} -> {real}")
            continue
        return Path(candidate)
    return None


def _explicit(setting: str, value: str, fix: str, environ: Mapping[str, str],
              self_path: Path | None) -> Path:
    """Resolve a gopls named by config or LSPGUARD_GOPLS; loops are errors, not skipped."""
    if os.sep not in value and (os.altsep is None or os.altsep not in value):
        # A bare command name: look it up like a shell would, skipping shims.
        skipped: list[str] = []
        dirs = environ.get("PATH", os.defpath).split(os.pathsep)
        found = _search(value, dirs, self_path, skipped)
        if found is None:
            extra = f" (skipped lspguard shims: {', '.join(skipped)})" if skipped else ""
            raise BackendError(f"{setting}={value!r}: no such command on PATH{extra}; {fix}")
        return found
    path = os.path.abspath(os.path.expanduser(value))
    real = os.path.realpath(path)
    if _is_self(path, self_path) or is_shim(Path(path)):
        where = path if real == path else f"{path} -> {real}"
        raise ShimLoopError(
            f"{setting}={value!r} points at the lspguard gopls shim ({where}), which would run "
            f"itself forever; {fix}"
        )
    if not os.path.exists(path):
        raise BackendError(f"{setting}={value!r}: no such file; {fix}")
    if not _is_executable_file(path):
        raise BackendError(f"{setting}={value!r}: not an executable file; {fix}")
    return Path(path)


def find_real_gopls(
    configured: str = "",
    *,
    environ: Mapping[str, str] | None = None,
    self_path: Path | None = None,
) -> Path:
    """Return the real gopls: `configured` (config `backend.gopls`), else $LSPGUARD_GOPLS, else
    the first `gopls` on PATH (then $GOBIN, $GOPATH/bin, ~/go/bin) that is not the shim.

    Why so careful: the shim is itself named `gopls` and usually on PATH, so a naive lookup execs
    the shim again forever.  Candidates that are `self_path` (by realpath or inode) or carry the
    shim marker are skipped; an explicit setting that points at a shim raises ShimLoopError.
    """
    env = os.environ if environ is None else environ
    if configured:
        return _explicit(
            "backend.gopls", configured,
            "set backend.gopls in the lspguard config to the real gopls binary "
            "(e.g. $(go env GOPATH)/bin/gopls), or leave it empty to search PATH",
            env, self_path,
        )
    from_env = env.get("LSPGUARD_GOPLS", "")
    if from_env:
        return _explicit(
            "LSPGUARD_GOPLS", from_env,
            "set LSPGUARD_GOPLS to the real gopls binary (e.g. $(go env GOPATH)/bin/gopls), "
            "or unset it to search PATH",
            env, self_path,
        )
    path_dirs = env.get("PATH", os.defpath).split(os.pathsep)
    fallback = _fallback_dirs(env)
    skipped: list[str] = []
    found = _search("gopls", [*path_dirs, *fallback], self_path, skipped)
    if found is not None:
        return found
    searched = f"PATH={env.get('PATH', os.defpath)!r}"
    if fallback:
        searched += f" and {', '.join(fallback)}"
    extra = f"; skipped lspguard shims: {', '.join(skipped)}" if skipped else ""
    raise BackendError(
        f"cannot find the real gopls: searched {searched}{extra}; install it with "
        "'go install golang.org/x/tools/gopls@latest', or set LSPGUARD_GOPLS "
        "(or backend.gopls in the lspguard config) to its path"
    )

"""The drop-in `gopls` shim: what VS Code Go's `go.alternateTools.gopls` points at.

vscode-go keys its gopls-only UI on the basename `gopls`, so lspguard installs a small script
*named* `gopls` (`install_shim`). When run, the shim decides from its arguments (`classify`)
whether this is an LSP stdio session or any other gopls command:

* LSP stdio session (no subcommand or `serve`, not listening on a port) -> run the guarded proxy
  around the real gopls (`lspguard.proxy.run.run_proxy`, imported lazily);
* everything else (`version`, `version -json`, `bug`, `stats`, `help`, `check`, ...) -> `execv`
  the real gopls with the same arguments, so output and exit status are byte-identical.

The real gopls is found by `find_real_gopls`, which never returns the shim itself (no exec loop,
even through symlinks, copies or hard links).

In LSP mode the shim first renames its process (`lspguard.proxy.proctitle`): comm `lspguard`
at once, and the command line `lspguard: guarding gopls pid N (generation G)` once gopls is
spawned, so the guard never passes for gopls (`pgrep gopls`, `pkill -STOP gopls`). Passthrough
execs without renaming anything.

This module is imported on every `gopls version` call vscode-go makes, so it imports only the
standard library and `lspguard.errors` at module level; anything heavy is imported lazily in
LSP mode.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lspguard.errors import BackendError, ConfigError, LspguardError, ShimLoopError
from lspguard.shim.gopls_args import Classification, ShimMode, classify, explain
from lspguard.shim.identity import SHIM_MARKER, is_shim

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from lspguard.proxy.launched import Launch

__all__ = [
    "SHIM_MARKER",
    "Classification",
    "ShimMode",
    "classify",
    "explain",
    "find_real_gopls",
    "is_shim",
    "main",
]

#: Environment variable counting nested shim invocations (guards against loops that go through
#: a wrapper script the path checks cannot see, e.g. backend.gopls = a script that runs `gopls`).
_DEPTH_ENV = "LSPGUARD_SHIM_DEPTH"
_MAX_DEPTH = 8
_LAUNCHER_ENV = "LSPGUARD_LAUNCHER"  # set by the native shim (lspguard.proxy.launched)

EXIT_NOT_FOUND = 127  # the real gopls is missing, or resolves to a shim (loop)
EXIT_CANNOT_EXEC = 126  # found, but execv failed (permissions, bad format)
EXIT_CONFIG = 2  # the lspguard config is broken


# --------------------------------------------------------------------------------------------
# Finding the real gopls
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    """One line on stderr (never stdout: in LSP mode stdout belongs to the protocol)."""
    text = " ".join(message.split("\n"))
    try:
        sys.stderr.write(f"lspguard: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return code


def _self_path() -> Path | None:
    """The running shim script, from argv[0] (the kernel passes the full path for scripts)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or argv0 == "-c":
        return None
    return Path(os.path.abspath(argv0))


def _exec(real: Path, args: Sequence[str]) -> int:
    """Replace this process with the real gopls.  Python ignores SIGPIPE and SIGXFSZ and
    ignored signals survive exec, so restore the defaults gopls would have had."""
    previous = {}
    for name in ("SIGPIPE", "SIGXFSZ"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, signal.SIG_DFL)
    try:
        os.execv(real, [str(real), *args])
    except OSError as e:
        for sig, handler in previous.items():  # we live on: as we were
            signal.signal(sig, handler)
        return _fail(f"cannot execute the real gopls {real}: {e.strerror or e}", EXIT_CANNOT_EXEC)
    raise AssertionError("unreachable")  # pragma: no cover


def _launch() -> Launch | None:
    """What the native shim did before it exec'd us (None if we were not run by it)."""
    if _LAUNCHER_ENV not in os.environ:  # the script shim, `lspguard-gopls`: nothing to import
        return None
    from lspguard.proxy import launched

    return launched.from_environment()


def main(argv: Sequence[str] | None = None) -> int:
    """Run as `gopls ARGS`: proxy an LSP session, or exec the real gopls for anything else."""
    args = list(sys.argv[1:] if argv is None else argv)
    launch = _launch()
    if launch is not None and launch.spawned:
        # The native shim found an LSP session and spawned gopls (our child now): copy the
        # editor's initialize to it before anything else is imported. The comm first: this
        # process was exec'd as Python and must never pass for gopls.
        from lspguard.protocol.framing import DEFAULT_MAX_FRAME_BYTES
        from lspguard.proxy import early, proctitle

        proctitle.set_comm()
        early.adopt(launch, DEFAULT_MAX_FRAME_BYTES)
    self_path = Path(launch.shim) if launch is not None else _self_path()
    try:
        depth = int(os.environ.get(_DEPTH_ENV, "0") or "0")
    except ValueError:
        depth = 0
    if depth >= _MAX_DEPTH:
        return _fail(
            f"the gopls shim was re-entered {depth} times ({_DEPTH_ENV}); backend.gopls or "
            "LSPGUARD_GOPLS runs something that runs the shim again; point it at the real gopls",
            EXIT_NOT_FOUND,
        )
    os.environ[_DEPTH_ENV] = str(depth + 1)
    mode = ShimMode.LSP if launch is not None and launch.spawned else classify(args)
    if mode is ShimMode.LSP:
        # First thing, before the heavy imports: this process is named `gopls` (the shim's
        # file name) and must not pass for it (`pkill gopls`). Passthrough never renames: it
        # becomes the real gopls by exec. The comm now (what pkill matches); the command line
        # once gopls is spawned (setproctitle imports logging: ~5 ms before the spawn).
        from lspguard.proxy import proctitle

        proctitle.set_comm()
    try:
        from lspguard.config.model import resolve_config

        config = resolve_config()
        real = find_real_gopls(config.backend.gopls, self_path=self_path)
        if mode is ShimMode.PASSTHROUGH:
            return _exec(real, args)
        from lspguard.proxy import early

        command = [str(real), *args, *config.backend.args]
        # Before the event loop and the session are imported: gopls starts while we do (unless
        # the native shim spawned it already: the session then adopts that one).
        early.spawn_first(command, config)
        from lspguard.proxy import run as proxy

        return proxy.exit_code_or_exit_now(proxy.run_proxy(command, config))
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    except BackendError as e:  # includes ShimLoopError
        return _fail(str(e), EXIT_NOT_FOUND)
    except LspguardError as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return 130

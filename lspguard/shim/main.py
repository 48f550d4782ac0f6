"""The drop-in `gopls` shim: what VS Code Go's `go.alternateTools.gopls` points at.

vscode-go keys its gopls-only UI on the basename `gopls`, so lspguard installs a small script
*named* `gopls` (`install_shim`). When run, the shim decides from its arguments (`classify`)
whether this is an LSP stdio session or any other gopls command:

* LSP stdio session (no subcommand or `serve`, not listening on a port) -> run the guarded proxy
  around the real gopls (`lspguard.session.run.run_proxy`, imported lazily);
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

from lspguard.errors import BackendError, ConfigError, LspguardError
from lspguard.gopls.find import find_real_gopls
from lspguard.gopls.identity import SHIM_MARKER, is_shim
from lspguard.shim.gopls_args import Classification, ShimMode, classify, explain

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lspguard.proxy.launched import Launch

__all__ = ["SHIM_MARKER", "Classification", "ShimMode", "classify", "explain", "is_shim", "main"]

#: Environment variable counting nested shim invocations (guards against loops that go through
#: a wrapper script the path checks cannot see, e.g. backend.gopls = a script that runs `gopls`).
_DEPTH_ENV = "LSPGUARD_SHIM_DEPTH"
_MAX_DEPTH = 8
_LAUNCHER_ENV = "LSPGUARD_LAUNCHER"  # set by the native shim (lspguard.proxy.launched)

EXIT_NOT_FOUND = 127  # the real gopls is missing, or resolves to a shim (loop)
EXIT_CANNOT_EXEC = 126  # found, but execv failed (permissions, bad format)
EXIT_CONFIG = 2  # the lspguard config is broken


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
    adopted = launch is not None and launch.spawned
    mode = ShimMode.LSP if adopted else classify(args)
    if mode is ShimMode.LSP and not adopted:  # adopted: renamed already, above
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
        from lspguard.session import run as proxy

        return proxy.exit_code_or_exit_now(proxy.run_proxy(command, config))
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    except BackendError as e:  # includes ShimLoopError
        return _fail(str(e), EXIT_NOT_FOUND)
    except LspguardError as e:
        return _fail(str(e), 1)
    except KeyboardInterrupt:
        return 130

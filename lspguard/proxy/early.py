"""The first server process, spawned before lspguard imports its event loop and session.

An editor waits for `initialize` at every start and window reload. gopls needs ~100-200 ms of
its own to get there; lspguard's imports (asyncio, uvloop, msgspec, the session) need about as
long. Spawned first, the two overlap. So `lspguard run` and the shim call `spawn_first` as soon
as the config is known, and generation 1's `Backend.start` adopts the process (`claim`) instead
of spawning another: the same argv, environment overlay, pipes, process group and
PR_SET_PDEATHSIG as a spawn by `Backend.start` (`child_setup`). A process nobody claims (the
session failed before it started its backend, or computed another argv) is killed (`discard`),
and if the proxy dies the kernel kills it: no exit path leaves a gopls behind.

Until the session takes over, a pre-relay (prerelay.py) copies the editor's `initialize` to it
and the answer back, so the editor's first wait no longer includes lspguard's start-up.

Standard library only (os, stat, fcntl, subprocess; ctypes for the child setup; not even
logging), and nothing from lspguard that imports more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

from lspguard.errors import StdioError
from lspguard.proxy.launched import ChildProcess, InheritedChild, Launch
from lspguard.proxy.prerelay import Handover, PreRelay

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from lspguard.config.model import Config

__all__ = ["DEBUG_FLAG", "PIPE_SIZE", "EarlyProcess", "adopt", "check_stdio", "child_setup",
           "claim", "discard", "first_argv", "has_flag", "signal_while_starting", "spawn_first",
           "take_over", "widen_pipe", "with_gopls_debug"]

_PR_SET_PDEATHSIG = 1
PIPE_SIZE = 1024 * 1024
DEBUG_FLAG = "-debug=127.0.0.1:0"


def child_setup(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: own process group (a stop reaches gopls's `go list` children too), and die
    with the proxy (Linux), even if it is SIGKILLed."""
    libc = None
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        os.setpgid(0, 0)
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:  # the proxy died before prctl took effect
                os._exit(1)

    return setup


def widen_pipe(fd: int) -> None:
    """Grow a pipe's kernel buffer from 64 KiB to 1 MiB (Linux; the unprivileged maximum by
    default): a large message then crosses in a few wake-ups, not one per 64 KiB. Best effort:
    not a pipe, or not allowed, leaves it as it is."""
    import fcntl

    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None or not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, PIPE_SIZE)


def check_stdio() -> bool:
    """Raise StdioError unless stdin and stdout can carry a session; True if both are pipes or
    sockets. Those are what an editor gives; a terminal works too, but only with asyncio's own
    loop (libuv aborts the process on fds it does not expect), and epoll refuses regular files
    and /dev/null, which would leave the session waiting for input that never comes."""
    pipes = True
    for fd, name in ((0, "stdin"), (1, "stdout")):
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            raise StdioError(f"{name} is not open ({exc.strerror}): an editor starts lspguard "
                             "with pipes on stdin and stdout") from exc
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            continue
        if os.isatty(fd):
            pipes = False
            continue
        what = ("a regular file" if stat.S_ISREG(mode) else
                "a device that is not a terminal" if stat.S_ISCHR(mode) else "not a pipe")
        raise StdioError(f"{name} is {what}: lspguard speaks LSP over pipes or sockets on stdin "
                         "and stdout, as an editor starts it (to replay a recorded session, "
                         "use `lspguard replay`)")
    return pipes


def has_flag(argv: Sequence[str], name: str) -> bool:
    """Whether the command line `argv` names Go flag `name` (-name, --name, -name=value). A word
    equal to `name` counts too, as the native shim counts it (launcher/main.go withDebug)."""
    return any(a.lstrip("-").split("=", 1)[0] == name for a in argv[1:])


def with_gopls_debug(argv: Sequence[str]) -> list[str]:
    """gopls argv with a loopback debug server, unless it isn't gopls or -debug is already set
    (the one rule: the early spawn and the session's later generations both apply it)."""
    argv = list(argv)
    if not argv or "gopls" not in os.path.basename(argv[0]):
        return argv
    if has_flag(argv, "debug"):
        return argv
    return [argv[0], DEBUG_FLAG, *argv[1:]]


def first_argv(command: Sequence[str], config: Config) -> list[str]:
    """Generation 1's argv, as the session's `start_backend` computes it from `command`."""
    if config.snapshot.enabled and config.snapshot.gopls_debug:
        return with_gopls_debug(command)
    return list(command)


class EarlyProcess:
    """A server spawned by `spawn_first`, with our ends of its stdin and stdout pipes."""

    def __init__(self, argv: list[str], env_overlay: dict[str, str], popen: ChildProcess,
                 to_child: int, from_child: int, prerelay: PreRelay | None = None) -> None:
        self.argv = argv
        self.env_overlay = env_overlay
        self.popen = popen
        self.to_child = to_child
        self.from_child = from_child
        self.prerelay = prerelay  # copying the first round trip until the session takes over
        self.handed_over: Handover | None = None
        self.adopted = isinstance(popen, InheritedChild)  # spawned by the native shim

    def take_over(self) -> Handover | None:
        """Stop the pre-relay (if one runs): from now on the session reads and writes the pipes."""
        prerelay, self.prerelay = self.prerelay, None
        if prerelay is None:
            return None
        self.handed_over = prerelay.stop()
        return self.handed_over

    def kill(self) -> None:
        """SIGKILL its process group, reap it, close our pipe ends."""
        self.take_over()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        # Bounded: a process in uninterruptible sleep (a hung mount) may not die yet; the
        # Popen then reaps it later, and PDEATHSIG has nothing left to do.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5.0)
        for fd in (self.to_child, self.from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


_waiting: EarlyProcess | None = None


def spawn_first(command: Sequence[str], config: Config) -> EarlyProcess | None:
    """Spawn generation 1 now, for `Backend.start` to adopt; None where it is not done.

    Not done (the backend is then spawned at the usual time, which reports any error): where
    the loop could not watch the process (no pidfd: not Linux, or a kernel before 5.3), when
    stdin/stdout cannot carry a session (no server for a session that cannot run), when a trace
    is recorded (its file is opened first: a bad path fails before any server starts), or when
    the spawn fails."""
    global _waiting
    if _waiting is not None and _waiting.adopted:  # the native shim spawned it: claimed later
        return _waiting
    discard()
    if not hasattr(os, "pidfd_open") or config.trace.enabled:
        return None
    try:
        pipes = check_stdio()
    except StdioError:
        return None
    argv = first_argv(command, config)
    overlay = dict(config.backend.env)
    child_stdin, to_child = os.pipe()
    from_child, child_stdout = os.pipe()
    try:
        widen_pipe(to_child)
        widen_pipe(from_child)
        popen = subprocess.Popen(argv, stdin=child_stdin, stdout=child_stdout,
                                 stderr=subprocess.PIPE, env={**os.environ, **overlay},
                                 preexec_fn=child_setup(os.getpid()))
    except (OSError, ValueError, subprocess.SubprocessError):
        os.close(to_child)
        os.close(from_child)
        return None
    finally:
        os.close(child_stdin)  # the child's ends: only the child holds them now
        os.close(child_stdout)
    prerelay = None
    if pipes:  # a terminal is a person typing: nothing to win, and select on it is fussy
        prerelay = PreRelay(0, 1, to_child, from_child, config.proxy.max_frame_bytes)
        _hold_signals()  # the editor may act on the answer (and signal us) before the session
        prerelay.start()
    _waiting = EarlyProcess(argv, overlay, popen, to_child, from_child, prerelay)
    return _waiting


def adopt(launch: Launch, max_frame_bytes: int) -> EarlyProcess | None:
    """Take over the gopls the native shim spawned (launched.py) as generation 1's early
    process, and start the pre-relay at once: the editor's `initialize` then reaches gopls
    while Python is still importing. None if the shim spawned nothing."""
    global _waiting
    if launch.pid is None:
        return None
    discard()
    child = InheritedChild(launch.pid, launch.stderr)
    prerelay = PreRelay(0, 1, launch.stdin, launch.stdout, max_frame_bytes)
    _hold_signals()
    prerelay.start()
    # The shim spawned it with the environment it was given: no overlay (it leaves any config
    # that sets one to us), which `claim` checks against what the session computes.
    _waiting = EarlyProcess(list(launch.argv), {}, child, launch.stdin, launch.stdout, prerelay)
    return _waiting


def claim(argv: Sequence[str], env_overlay: Mapping[str, str], cwd: str | None
          ) -> EarlyProcess | None:
    """The early process if it was spawned exactly so (argv, overlay, cwd), else None.

    One claim only. A process spawned otherwise is killed: the caller spawns its own."""
    global _waiting
    early, _waiting = _waiting, None
    if early is None:
        return None
    if early.argv == list(argv) and early.env_overlay == dict(env_overlay) and cwd is None:
        return early
    import logging

    if early.handed_over is not None and early.handed_over.copied:
        # The editor already talks to this one (its initialize went there): replacing it would
        # lose the handshake. first_argv and the session compute the same argv; this is a bug.
        logging.getLogger(__name__).error(
            "the server spawned early (%s) is not the one asked for (%s): kept, because the "
            "editor's initialize already went to it", " ".join(early.argv), " ".join(argv))
        return early
    logging.getLogger(__name__).warning(
        "the server spawned early (%s) is not the one asked for (%s): replaced",
        " ".join(early.argv), " ".join(argv))
    early.kill()
    return None


_HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_signalled: int | None = None


def _hold_signals() -> None:
    """Until the session watches them, SIGTERM, SIGINT and SIGHUP are noted, not fatal: once
    the pre-relay has answered the editor's initialize, an editor may stop us while we still
    import, and that must end the session as a signal always does (exit code 1, gopls
    stopped), not kill the process half-started."""
    def note(signum: int, _frame: object) -> None:
        global _signalled
        if _signalled is None:
            _signalled = signum

    for sig in _HELD_SIGNALS:
        signal.signal(sig, note)


def signal_while_starting() -> int | None:
    """The first of those signals received before the session watched them, if any."""
    return _signalled


def take_over() -> Handover | None:
    """Stop the waiting process's pre-relay, for the session to go on from what it did (None
    if nothing was spawned early, or no pre-relay ran). Its `claim` comes next."""
    return _waiting.take_over() if _waiting is not None else None


def discard() -> None:
    """Kill an early process nobody claimed (no-op if there is none)."""
    global _waiting
    early, _waiting = _waiting, None
    if early is not None:
        early.kill()

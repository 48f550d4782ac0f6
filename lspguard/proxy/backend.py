"""One generation of the language-server process: spawn, pipes, stderr, bounded stop.

The child gets its own process group (so a stop reaches the `go list` children gopls spawns) and,
on Linux, PR_SET_PDEATHSIG=SIGKILL, so it dies even if the proxy is SIGKILLed (early.py's
`child_setup`). Generation 1 usually adopts the process early.py spawned before the event loop
existed, with exactly that setup; later generations are spawned here. Stop escalates
goodbye (shutdown/exit, supplied by the session) -> SIGTERM -> SIGKILL, each step bounded, and runs
shielded from cancellation: no exit path of the proxy leaves a gopls behind. Nor any process of
its tree: its children outside its group (gopls's telemetry child runs in a session of its own)
must be found in /proc while they are still its children, for once it has died they are pid 1's.
gopls may die before stop (on the editor's `exit`, or a crash), so the backend keeps its tree
(reap.py), looked at again now and then while it runs, and again when stop begins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections import deque
from typing import TYPE_CHECKING, cast

import anyio

from lspguard.errors import BackendError
from lspguard.procfs.processes import start_ticks
from lspguard.proxy import early, reap
from lspguard.proxy.pipes import FrameReader, PipeWriter, connect_pipes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from lspguard.proxy.launched import ChildProcess

__all__ = ["Backend"]

# How soon after the start the tree is first looked at again (gopls starts its telemetry child
# at once), and the longest interval between looks (each reads every /proc/PID/stat).
TREE_FIRST_LOOK_S = 0.5
TREE_LOOK_MAX_S = 5.0

log = logging.getLogger(__name__)
stderr_log = logging.getLogger("lspguard.proxy.backend.stderr")


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement, but do not subclass, asyncio's transport classes.
        process = cast("asyncio.SubprocessTransport", transport)
        # Known from here: a server that dies at once is reported before subprocess_exec returns.
        self.backend._transport, self.backend.pid = process, process.get_pid()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.backend.on_stderr(data)  # stdin and stdout are our own pipes (connect_pipes)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.backend.on_stderr(b"", eof=True)

    def process_exited(self) -> None:
        self.backend.on_exited()


class _StderrProtocol(asyncio.Protocol):
    """An adopted process's stderr, fed to the backend as _Protocol feeds a spawned one's."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def data_received(self, data: bytes) -> None:
        self.backend.on_stderr(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend.on_stderr(b"", eof=True)


class _AdoptedProcess:
    """A process spawned before the loop ran (early.py), seen through the part of asyncio's
    SubprocessTransport that Backend uses: pid, returncode, close (which kills it if still
    running, as asyncio's does). Its exit is watched through a pidfd on the loop; the Popen
    reaps it, so nothing else can take its exit status."""

    def __init__(self, backend: Backend, popen: ChildProcess) -> None:
        self.backend = backend
        self.popen = popen
        self.pidfd: int | None = None
        self.stderr: asyncio.ReadTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def attach(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self.pidfd = os.pidfd_open(self.popen.pid)
        loop.add_reader(self.pidfd, self._on_pidfd)
        if self.popen.stderr is not None:
            self.stderr, _ = await loop.connect_read_pipe(
                lambda: _StderrProtocol(self.backend), self.popen.stderr)

    def _on_pidfd(self) -> None:
        if self.popen.poll() is None:
            return
        self._unwatch()
        self.backend.on_exited()

    def _unwatch(self) -> None:
        if self.pidfd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def get_pid(self) -> int:
        return self.popen.pid

    def get_returncode(self) -> int | None:
        return self.popen.returncode

    def close(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
        if self.stderr is not None:
            self.stderr.close()
        self._unwatch()


class Backend:
    """The language server of one generation, and the pipes to it."""

    def __init__(self, argv: Sequence[str], *, env_overlay: Mapping[str, str] | None = None,
                 generation: int = 1, reader: FrameReader,
                 stderr_tail_lines: int = 200, cwd: str | None = None) -> None:
        self.argv = list(argv)
        # a -remote forwarder: the shared daemon it starts is not its to end (reap.py)
        self._remote = early.has_flag(self.argv, "remote")
        self.env_overlay = dict(env_overlay or {})
        self.generation = generation
        self.reader = reader
        self.writer = PipeWriter(f"server#{generation}")
        self.cwd = cwd
        self.stderr_tail: deque[str] = deque(maxlen=stderr_tail_lines)
        self.stderr_listeners: list[Callable[[str], None]] = []
        self.exited = anyio.Event()
        self.pid: int | None = None
        self.adopted = False  # spawned early (early.py), not by start()
        self.start_ticks: int | None = None  # with pid, names the process (procfs start_ticks)
        self._transport: asyncio.SubprocessTransport | _AdoptedProcess | None = None
        self._stderr_partial = b""
        self._tree: reap.ProcessTree | None = None  # its process tree, as last looked at
        self._tree_look: asyncio.TimerHandle | None = None

    @property
    def returncode(self) -> int | None:
        return None if self._transport is None else self._transport.get_returncode()

    def describe_exit(self) -> str:
        """'exit code 2' or 'killed by SIGKILL' (or 'running')."""
        rc = self.returncode
        if rc is None:
            return "running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exit code {rc}"

    async def start(self) -> None:
        """Spawn the process (or adopt the one early.py spawned with the same argv and env) and
        connect its pipes."""
        spawned = early.claim(self.argv, self.env_overlay, self.cwd)
        if spawned is not None:
            await self._adopt(spawned)
            return
        loop = asyncio.get_running_loop()
        env = {**os.environ, **self.env_overlay}
        # Plain pipes of 1 MiB, not the event loop's 64 KiB pipes or socket pairs: a large
        # message crosses in a few wake-ups.
        child_stdin, to_child = os.pipe()
        from_child, child_stdout = os.pipe()
        early.widen_pipe(to_child)
        early.widen_pipe(from_child)
        try:
            await loop.subprocess_exec(  # _Protocol.connection_made records transport and pid
                lambda: _Protocol(self), *self.argv,
                stdin=child_stdin, stdout=child_stdout, stderr=subprocess.PIPE,
                env=env, cwd=self.cwd, preexec_fn=early.child_setup(os.getpid()),
            )
        except OSError as exc:
            os.close(to_child)
            os.close(from_child)
            # errno alone blames argv[0]; a stat on this failure path is no blocking concern
            if self.cwd is not None and not os.path.isdir(self.cwd):  # noqa: ASYNC240
                raise BackendError(f"cannot start {self.argv[0]!r}: its working directory "
                                   f"{self.cwd} does not exist") from exc
            raise BackendError(f"cannot start {self.argv[0]!r}: {exc}") from exc
        finally:
            os.close(child_stdin)  # the child's ends: only the child holds them now
            os.close(child_stdout)
        self._note_start()
        await connect_pipes(self.reader, os.fdopen(from_child, "rb", buffering=0),
                            self.writer, os.fdopen(to_child, "wb", buffering=0))
        log.info("backend #%d started: pid %d: %s", self.generation, self.pid,
                 " ".join(self.argv))
        if self.env_overlay:
            log.info("backend #%d env overlay: %s", self.generation, self.env_overlay)

    async def _adopt(self, spawned: early.EarlyProcess) -> None:
        process = _AdoptedProcess(self, spawned.popen)
        self._transport, self.pid, self.adopted = process, spawned.popen.pid, True
        self._note_start()
        try:
            await process.attach()
            await connect_pipes(self.reader, os.fdopen(spawned.from_child, "rb", buffering=0),
                                self.writer, os.fdopen(spawned.to_child, "wb", buffering=0))
        except BaseException:
            self._stop_looking_at_tree()
            process.close()
            spawned.kill()
            if self._tree is not None:  # no stop() follows a start that failed
                self._tree.kill()
                self._tree.close()
                self._tree = None
            raise
        log.info("backend #%d started (spawned early, by %s): pid %d: %s", self.generation,
                 "the native shim" if spawned.adopted else "lspguard", self.pid,
                 " ".join(self.argv))
        if self.env_overlay:
            log.info("backend #%d env overlay: %s", self.generation, self.env_overlay)

    def _note_start(self) -> None:
        # Our child, not yet reaped (that needs the event loop): the pid is still its own.
        if self.pid is None or self.returncode is not None:
            return
        self.start_ticks = start_ticks(self.pid)
        self._tree = self.snapshot_tree()
        self._look_at_tree_after(TREE_FIRST_LOOK_S)

    def _look_at_tree_after(self, delay: float) -> None:
        self._tree_look = asyncio.get_running_loop().call_later(delay, self._look_at_tree, delay)

    @property
    def tree_pids(self) -> list[int]:
        """The pids of its process tree as last looked at (what stop will end, at least)."""
        return [] if self._tree is None else self._tree.pids

    def _look_at_tree(self, delay: float) -> None:
        """Add the processes started since the last look, forget those that have ended."""
        self._tree_look = None
        if self._tree is None or self.exited.is_set() or self.returncode is not None:
            return
        self._tree.prune()
        self._tree.add(self.snapshot_tree())
        self._look_at_tree_after(min(2 * delay, TREE_LOOK_MAX_S))

    def _stop_looking_at_tree(self) -> None:
        if self._tree_look is not None:
            self._tree_look.cancel()
            self._tree_look = None

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def on_exited(self) -> None:
        log.info("backend #%d (pid %s) exited: %s", self.generation, self.pid,
                 self.describe_exit())
        self.writer.close()  # our end of its stdin: nobody reads it any more
        self._stop_looking_at_tree()  # its tree is kept, as last seen, for stop()
        self.exited.set()

    def on_stderr(self, data: bytes, eof: bool = False) -> None:
        chunk = self._stderr_partial + data
        lines = chunk.split(b"\n")
        self._stderr_partial = b"" if eof else lines.pop()
        for raw in lines:
            if not raw and eof:
                continue
            line = raw.decode("utf-8", "replace").rstrip("\r")
            self.stderr_tail.append(line)
            stderr_log.info("[#%d] %s", self.generation, line)
            for listener in self.stderr_listeners:
                listener(line)

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send `sig` to the backend's process group; False if it is already gone."""
        if self.pid is None:
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:  # pgid reused by someone else's process: leave it alone
            return False
        return True

    def snapshot_tree(self) -> reap.ProcessTree:
        """The process and all its descendants (in any group or session), plus the members of
        its group, held by pidfd: taken while it lives, as once it has died its children are
        pid 1's."""
        if self.pid is None:
            return reap.ProcessTree(0)
        return reap.snapshot_tree(self.pid, root_start_ticks=self.start_ticks,
                                  spare_daemons=self._remote)

    async def stop(self, grace: float,
                   goodbye: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop the process and every process of its tree, escalating; bounded by about
        2 x `grace` + 1 s; never cancelled.

        `goodbye` (shutdown + exit, from the session) returns once the process has exited.
        """
        if self._transport is None:
            return
        self._stop_looking_at_tree()
        tree, self._tree = self._tree or reap.ProcessTree(self.pid or 0), None
        with anyio.CancelScope(shield=True), tree:
            if not self.exited.is_set():
                tree.add(self.snapshot_tree())
            self._resume(tree)  # a stopped process can act on neither goodbye nor SIGTERM
            if not self.exited.is_set() and goodbye is not None:
                with anyio.move_on_after(grace):
                    await goodbye()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if self.exited.is_set():
                    break
                if sig is signal.SIGKILL:  # children started during the grace
                    tree.add(self.snapshot_tree())
                    self._resume(tree)
                log.info("backend #%d (pid %s): sending %s", self.generation, self.pid, sig.name)
                self.signal_group(sig)
                if sig is signal.SIGKILL and not self.exited.is_set() and self.pid is not None:
                    _kill_quietly(self.pid)
                with anyio.move_on_after(grace if sig is signal.SIGTERM else 1.0):
                    await self.exited.wait()
            # Children (e.g. `go list`, the telemetry child) may outlive a gopls that exited.
            self.signal_group(signal.SIGKILL)
            if killed := tree.kill():
                log.info("backend #%d (pid %s): killed what was left of its tree: pids %s",
                         self.generation, self.pid, killed)
            self.writer.close()
            self._transport.close()

    def _resume(self, tree: reap.ProcessTree) -> None:
        if resumed := tree.continue_stopped():
            log.info("backend #%d (pid %s): SIGCONT to stopped pids %s", self.generation,
                     self.pid, resumed)


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

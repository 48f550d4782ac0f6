"""One generation of the language-server process: spawn, pipes, stderr, bounded stop.

The child gets its own process group (so a stop reaches the `go list` children gopls spawns) and,
on Linux, PR_SET_PDEATHSIG=SIGKILL, so it dies even if the proxy is SIGKILLed (early.py's
`child_setup`). Generation 1 usually adopts the process early.py spawned before the event loop
existed, with exactly that setup; later generations are spawned here. Stop escalates
goodbye (shutdown/exit, supplied by the session) -> SIGTERM -> SIGKILL, each step bounded, and runs
shielded from cancellation: no exit path of the proxy leaves a gopls behind.
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
from lspguard.proxy import early
from lspguard.proxy.pipes import FrameReader, PipeWriter, connect_pipes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["Backend"]

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

    def __init__(self, backend: Backend, popen: subprocess.Popen[bytes]) -> None:
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
        self._transport: asyncio.SubprocessTransport | _AdoptedProcess | None = None
        self._stderr_partial = b""

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
        await connect_pipes(self.reader, os.fdopen(from_child, "rb", buffering=0),
                            self.writer, os.fdopen(to_child, "wb", buffering=0))
        log.info("backend #%d started: pid %d: %s", self.generation, self.pid,
                 " ".join(self.argv))
        if self.env_overlay:
            log.info("backend #%d env overlay: %s", self.generation, self.env_overlay)

    async def _adopt(self, spawned: early.EarlyProcess) -> None:
        process = _AdoptedProcess(self, spawned.popen)
        self._transport, self.pid, self.adopted = process, spawned.popen.pid, True
        try:
            await process.attach()
            await connect_pipes(self.reader, os.fdopen(spawned.from_child, "rb", buffering=0),
                                self.writer, os.fdopen(spawned.to_child, "wb", buffering=0))
        except BaseException:
            process.close()
            spawned.kill()
            raise
        log.info("backend #%d started (spawned early): pid %d: %s", self.generation, self.pid,
                 " ".join(self.argv))
        if self.env_overlay:
            log.info("backend #%d env overlay: %s", self.generation, self.env_overlay)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def on_exited(self) -> None:
        log.info("backend #%d (pid %s) exited: %s", self.generation, self.pid,
                 self.describe_exit())
        self.writer.close()  # our end of its stdin: nobody reads it any more
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

    async def stop(self, grace: float,
                   goodbye: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop the process, escalating; bounded by about 2 x `grace` + 1 s; never cancelled.

        `goodbye` (shutdown + exit, from the session) returns once the process has exited.
        """
        if self._transport is None:
            return
        with anyio.CancelScope(shield=True):
            if not self.exited.is_set() and goodbye is not None:
                with anyio.move_on_after(grace):
                    await goodbye()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if self.exited.is_set():
                    break
                log.info("backend #%d (pid %s): sending %s", self.generation, self.pid, sig.name)
                self.signal_group(sig)
                if sig is signal.SIGKILL and not self.exited.is_set() and self.pid is not None:
                    _kill_quietly(self.pid)
                with anyio.move_on_after(grace if sig is signal.SIGTERM else 1.0):
                    await self.exited.wait()
            # Children (e.g. `go list`) may outlive a gopls that exited: end the whole group.
            self.signal_group(signal.SIGKILL)
            self.writer.close()
            self._transport.close()


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

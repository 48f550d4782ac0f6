"""One editor connection: the relay between the editor and the current backend generation.

Both directions are forwarded inside the read callbacks (see pipes.py): each frame is peeked for
kind/id/method, the pending table is updated, and the original bytes are written on. The session's
task group holds the watchers (editor gone, backend exited, signals, status file); when one of them
ends the session, `_finish` runs shielded: goodbye to the backend (shutdown/exit), then SIGTERM,
then SIGKILL, then the last bytes to the editor. The exit code mirrors the LSP spec: 0 after
shutdown + exit, 1 otherwise.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import anyio

from . import __version__
from .backend import Backend
from .framing import Frame, encode_frame
from .handshake import HandshakeTimer
from .peek import Kind, decode_full, encode, peek
from .pending import Direction, LatencyStats, PendingTable
from .pipes import FrameReader, PipeWriter
from .status import StatusFile

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .config import Config
    from .errors import RemoteProtocolError

__all__ = ["Session"]

log = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT
_OWN_ID_PREFIX = "lspguard-"


class Session:
    """Relay one editor connection to a supervised language server."""

    def __init__(self, command: Sequence[str], config: Config, *,
                 log_file: str | None = None, status: StatusFile | None = None) -> None:
        if not command:
            raise ValueError("empty backend command")
        self.command = list(command)
        self.config = config
        self.log_file = log_file
        self.max_frame_bytes = config.proxy.max_frame_bytes
        self.pending = PendingTable()
        self.latency = LatencyStats()
        self.handshake = HandshakeTimer()
        self.client_reader = FrameReader("client", self._from_client, self._client_error,
                                         self.max_frame_bytes)
        self.client_out = PipeWriter("client")
        self.backend: Backend | None = None
        self.generation = 0
        self.state = "starting"
        self.end_reason: str | None = None
        self.shutdown_requested = False
        self.exit_received = False
        self.initialize_params: dict[str, Any] | None = None
        self.protocol_errors = {"client": 0, "server": 0}
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.status = status or StatusFile(self.status_snapshot)
        self._ended = anyio.Event()
        self._own_ids = itertools.count(1)
        self._own_waiters: dict[str, anyio.Event] = {}
        self._debug = log.isEnabledFor(logging.DEBUG)

    # ---------------------------------------------------------------- lifecycle

    async def run(self, connect_editor: Callable[[], Awaitable[None]]) -> int:
        """Start the backend, then connect the editor (`connect_editor` wires `client_reader` and
        `client_out` to its pipes); run until either side ends the session; return the exit code.
        """
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_signals)
                await self._start_backend()
                await connect_editor()
                self._set_state("initializing")
                tg.start_soon(self._watch_editor)
                assert self.backend is not None
                tg.start_soon(self._watch_backend, self.backend)
                tg.start_soon(self._status_loop)
                await self._ended.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish()
        return self.exit_code

    @property
    def exit_code(self) -> int:
        return 0 if (self.shutdown_requested and self.exit_received) else 1

    def end(self, reason: str) -> None:
        """Ask the session to stop (idempotent); the first reason given is kept."""
        if self.end_reason is None:
            self.end_reason = reason
            log.info("session ending: %s", reason)
            self._set_state("stopping")
        self._ended.set()

    async def _start_backend(self) -> None:
        self.generation += 1
        reader = FrameReader(f"server#{self.generation}", self._from_server, self._server_error,
                             self.max_frame_bytes)
        backend = Backend(self.command, env_overlay=self.config.backend.env,
                          generation=self.generation, reader=reader,
                          stderr_tail_lines=self.config.proxy.stderr_tail_lines)
        # Back-pressure: each side's reader pauses while the writer it feeds is full.
        backend.writer.feeders.append(self.client_reader)
        self.client_out.feeders = [reader]
        await backend.start()
        self.backend = backend
        self.status.write()

    async def _watch_editor(self) -> None:
        async with anyio.create_task_group() as tg:
            async def stdin_closed() -> None:
                await self.client_reader.done.wait()
                self.end("the editor closed its end of stdin")

            async def stdout_closed() -> None:
                await self.client_out.closed.wait()
                self.end("the editor stopped reading stdout")

            tg.start_soon(stdin_closed)
            tg.start_soon(stdout_closed)

    async def _watch_backend(self, backend: Backend) -> None:
        await backend.exited.wait()
        with anyio.move_on_after(1.0):  # forward what it wrote before dying
            await backend.reader.done.wait()
        if not self.exit_received:
            self.end(f"the language server (pid {backend.pid}) {backend.describe_exit()}")

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                self.end(f"received {signal.Signals(signum).name}")
                return

    async def _status_loop(self) -> None:
        while True:
            self.status.write()
            await anyio.sleep(self.config.proxy.status_interval)

    async def _finish(self) -> None:
        backend = self.backend
        if backend is not None:
            initialized = self.handshake.initialize_ms is not None
            await backend.stop(self.config.proxy.stop_timeout,
                               self._goodbye if initialized or self.exit_received else None)
        await self.client_out.aclose(within=1.0)
        self._set_state("exited")
        log.info("session over (%s); exit code %d; %d frames from the editor, %d from the "
                 "server", self.end_reason, self.exit_code, self.client_reader.frames_in,
                 backend.reader.frames_in if backend else 0)
        self.status.remove()

    async def _goodbye(self) -> None:
        """Let the backend exit on its own terms: shutdown (unless the editor sent it), exit."""
        assert self.backend is not None
        if not self.exit_received:
            if not self.shutdown_requested:
                await self.request_server("shutdown", None)
            self.backend.send(_frame({"jsonrpc": "2.0", "method": "exit"}))
        await self.backend.exited.wait()

    async def request_server(self, method: str, params: Any) -> None:
        """Send a request of lspguard's own to the backend and wait for its answer."""
        assert self.backend is not None
        req_id = f"{_OWN_ID_PREFIX}{next(self._own_ids)}"
        done = self._own_waiters[req_id] = anyio.Event()
        self.backend.send(_frame({"jsonrpc": "2.0", "id": req_id, "method": method,
                                  "params": params}))
        try:
            await done.wait()
        finally:
            self._own_waiters.pop(req_id, None)

    # ---------------------------------------------------------------- hot path

    def _from_client(self, frame: Frame) -> None:
        if self.exit_received:
            return
        try:
            msg = peek(frame.body)
        except Exception as exc:
            self._client_error(exc)
            return
        kind = msg.kind
        if kind is Kind.REQUEST:
            assert msg.method is not None and msg.id is not None
            self.pending.add(C2S, msg.id, msg.method, self.generation)
            if msg.method == "initialize":
                self._on_initialize(frame)
            elif msg.method == "shutdown":
                self.shutdown_requested = True
        elif kind is Kind.RESPONSE:
            if msg.id is not None:
                self.pending.pop(S2C, msg.id)
        elif msg.method == "initialized":
            self.handshake.on_initialized_sent()
        elif msg.method == "exit":
            self.exit_received = True
            self.end("the editor sent exit" + (" after shutdown" if self.shutdown_requested
                                              else " without shutdown"))
        if self._debug:
            log.debug("client -> server: %s %s %s", kind.value, msg.id, msg.method)
        assert self.backend is not None
        self.backend.send(frame.raw)

    def _from_server(self, frame: Frame) -> None:
        try:
            msg = peek(frame.body)
        except Exception as exc:
            self._server_error(exc)
            return
        kind = msg.kind
        if kind is Kind.RESPONSE:
            if isinstance(msg.id, str) and msg.id.startswith(_OWN_ID_PREFIX):
                waiter = self._own_waiters.get(msg.id)
                if waiter is not None:
                    waiter.set()
                return  # an answer to lspguard itself: the editor never asked
            if msg.id is not None:
                req = self.pending.pop(C2S, msg.id)
                if req is not None:
                    self.latency.record(req.method, time.monotonic() - req.started)
                    if req.method == "initialize":
                        self.handshake.on_initialize_answered()
                        self._set_state("running")
        elif kind is Kind.REQUEST:
            assert msg.method is not None and msg.id is not None
            self.pending.add(S2C, msg.id, msg.method, self.generation)
        elif msg.method == "$/progress" and self.handshake.watching_progress:
            self._on_progress(frame)
        if self._debug:
            log.debug("server -> client: %s %s %s", kind.value, msg.id, msg.method)
        self.client_out.write(frame.raw)

    def _on_initialize(self, frame: Frame) -> None:
        self.handshake.on_initialize_sent()
        try:
            params = decode_full(frame.body).get("params")
        except Exception:
            params = None
        self.initialize_params = params if isinstance(params, dict) else None

    def _on_progress(self, frame: Frame) -> None:
        try:
            params = decode_full(frame.body).get("params")
        except Exception:
            return
        self.handshake.on_progress(params)
        if self.handshake.first_work_ms is not None:
            self.status.write()

    def _client_error(self, exc: Exception | RemoteProtocolError) -> None:
        self.protocol_errors["client"] += 1
        log.error("malformed message from the editor (dropped): %s", exc)

    def _server_error(self, exc: Exception | RemoteProtocolError) -> None:
        self.protocol_errors["server"] += 1
        log.error("malformed message from the language server (dropped): %s", exc)

    # ---------------------------------------------------------------- status

    def _set_state(self, state: str) -> None:
        if state != self.state:
            log.info("state: %s -> %s", self.state, state)
            self.state = state
            self.status.write()

    def workspace_folders(self) -> list[str]:
        params = self.initialize_params or {}
        folders = params.get("workspaceFolders") or []
        uris = [f.get("uri") for f in folders if isinstance(f, dict) and f.get("uri")]
        if not uris and params.get("rootUri"):
            uris = [params["rootUri"]]
        return [str(u) for u in uris]

    def status_snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        backend = self.backend
        oldest = sorted(self.pending, key=lambda r: r.started)[:20]
        return {
            "schema": 1,
            "pid": os.getpid(),
            "lspguard_version": __version__,
            "state": self.state,
            "started_at": self.started_wall,
            "uptime_s": round(now - self.started, 1),
            "workspace_folders": self.workspace_folders(),
            "cwd": os.getcwd(),
            "config": self.config.source,
            "log_file": self.log_file,
            "backend": {
                "argv": self.command,
                "pid": backend.pid if backend else None,
                "generation": self.generation,
                "env_overlay": dict(self.config.backend.env),
            },
            "restarts": max(0, self.generation - 1),
            "last_verdict": None,
            "handshake": self.handshake.as_dict(),
            "pending": [{"direction": r.direction.value, "id": r.id, "method": r.method,
                         "age_ms": round(r.age(now) * 1000, 1)} for r in oldest],
            "latency": self.latency.summary(),
            "counters": {
                "frames_from_client": self.client_reader.frames_in,
                "frames_from_server": backend.reader.frames_in if backend else 0,
                "bytes_from_client": self.client_reader.bytes_in,
                "bytes_from_server": backend.reader.bytes_in if backend else 0,
                "protocol_errors": dict(self.protocol_errors),
            },
            "end_reason": self.end_reason,
        }


def _frame(message: dict[str, Any]) -> bytes:
    return encode_frame(encode(message))

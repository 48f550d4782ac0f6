"""The hot path: both directions of one editor connection, frame by frame.

Each frame is peeked for kind/id/method, the pending table, the client mirror and the server
effects are updated, and the original bytes are written on. Only a few messages are rewritten:
server->client request ids of generation 2 and later (a new process counts from 1 again), and
registrations the editor already holds. While a restart is under way, editor requests and
notifications are held in order and released once the new generation has the editor's state;
when restarts have given up ("degraded"), requests are answered with a clear error.

`Relay` holds the per-connection state; `Session` (session.py) adds the lifecycle around it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from lspguard.protocol.codes import LSPErrorCodes
from lspguard.protocol.framing import Frame, encode_frame
from lspguard.protocol.peek import Kind, Message, decode_full, encode, params_of, peek
from lspguard.proxy.effects import ServerEffects
from lspguard.proxy.handshake import HandshakeTimer
from lspguard.proxy.lifecycle import Lifecycle, Phase
from lspguard.proxy.mirror import DOCUMENT_METHODS, ClientMirror
from lspguard.proxy.pending import Direction, LatencyStats, PendingTable
from lspguard.proxy.pipes import FrameReader, PipeWriter
from lspguard.supervise.verdict import Verdict, VerdictKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from lspguard.config.model import Config
    from lspguard.proxy.backend import Backend
    from lspguard.replay.trace.writer import TraceWriter
    from lspguard.status.file import StatusFile
    from lspguard.supervise.waiting import CauseWait

__all__ = ["OWN_ID_PREFIX", "Completed", "Recent", "Relay"]

log = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT
OWN_ID_PREFIX = "lspguard-"

_C2S_NAME = C2S.value
_S2C_NAME = S2C.value
# Phases in which an editor message is held or answered here instead of forwarded (one set
# lookup per message on the hot path, not three derived properties).
_HOLD_OR_ANSWER = frozenset({Phase.RESTARTING, Phase.WAITING, Phase.DEGRADED})

# Kept per message on the hot path, turned into report rows only when evidence is taken:
# (monotonic time, direction, generation, message envelope, frame, or its size when large).
Recent = tuple[float, str, int, Message, Frame | int]
_KEEP_FRAME = 64 * 1024  # the ring keeps references to frames up to this size only
# A completed request: (method, started monotonic, duration s, generation, ok).
Completed = tuple[str, float, float, int, bool]


class Relay:
    """Per-connection relay state and the frame handlers of both directions."""

    status: StatusFile

    def __init__(self, config: Config) -> None:
        self.config = config
        self.max_frame_bytes = config.proxy.max_frame_bytes
        self.pending = PendingTable()
        self.latency = LatencyStats()
        self.handshake = HandshakeTimer()
        self.mirror = ClientMirror()
        self.effects = ServerEffects()
        self.client_reader = FrameReader("client", self._from_client, self._client_error,
                                         self.max_frame_bytes)
        self.client_out = PipeWriter("client")
        self.backend: Backend | None = None
        self.generation = 0
        self.live_generation = 0  # whose output reaches the editor: 0 once a restart condemns it
        self.shutdown_requested = False
        self.exit_received = False
        self.exit_forwarded = False
        self.lifecycle = Lifecycle(self._phase_changed)
        self.degraded_reason: str | None = None  # why requests fail, while degraded
        # Editor messages held during a restart, with the monotonic time each arrived.
        self.held: deque[tuple[Frame, Message, float]] = deque()
        self.cause_wait: CauseWait | None = None  # what the server waits on, while waiting
        self.held_requests = 0
        self.recent: deque[Recent] = deque(maxlen=200)
        self.timeline: deque[Completed] = deque(maxlen=2000)
        self.protocol_errors = {"client": 0, "server": 0}
        self.started_wall = time.time()
        self.started = time.monotonic()
        self._own_ids = itertools.count(1)
        self._own_callbacks: dict[str, Callable[[Frame], None]] = {}
        self._remapped: dict[str, tuple[int, Any]] = {}  # editor-visible id -> (gen, server id)
        self._debug = log.isEnabledFor(logging.DEBUG)
        self.trace: TraceWriter | None = None  # record mode: every message, never blocking

    # Supplied by Session.
    def end(self, reason: str) -> None:
        raise NotImplementedError

    def report(self, verdict: Verdict) -> None:
        raise NotImplementedError

    def _phase_changed(self, old: Phase, new: Phase) -> None:
        """Called on every lifecycle transition (the session writes its status file)."""

    # ---------------------------------------------------------------- derived from the phase

    @property
    def state(self) -> str:
        return self.lifecycle.phase.value

    @property
    def recovering(self) -> bool:
        return self.lifecycle.phase is Phase.RESTARTING

    @property
    def degraded(self) -> str | None:
        """Why requests fail, while the restart budget is spent."""
        return self.degraded_reason if self.lifecycle.phase is Phase.DEGRADED else None

    @property
    def waiting(self) -> CauseWait | None:
        """The outside cause the server waits on, while the session waits on it."""
        return self.cause_wait if self.lifecycle.phase is Phase.WAITING else None

    # ---------------------------------------------------------------- own requests

    def send_server(self, message: dict[str, Any]) -> None:
        """Send a message lspguard composed itself to the current backend (traced as p2s)."""
        body = encode(message)
        if self.trace is not None:
            self.trace.record("p2s", self.generation, body)
        assert self.backend is not None
        self.backend.send(encode_frame(body))

    def send_client(self, message: dict[str, Any]) -> None:
        """Send a message lspguard composed itself to the editor (traced as p2c)."""
        body = encode(message)
        if self.trace is not None:
            self.trace.record("p2c", self.generation, body)
        self.client_out.write(encode_frame(body))

    def send_own_request(self, to_server: bool, method: str, params: Any,
                         on_answer: Callable[[Frame], None] | None = None) -> str:
        """Send a request of lspguard's own to either side; its answer goes to `on_answer`."""
        req_id = f"{OWN_ID_PREFIX}{next(self._own_ids)}"
        self._own_callbacks[req_id] = on_answer or (lambda _: None)
        message = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}
        (self.send_server if to_server else self.send_client)(message)
        return req_id

    async def request_server(self, method: str, params: Any) -> Any:
        """Send a request of lspguard's own to the backend; return its decoded answer."""
        return await self._request(True, method, params)

    async def request_client(self, method: str, params: Any) -> Any:
        return await self._request(False, method, params)

    async def _request(self, to_server: bool, method: str, params: Any) -> Any:
        done = anyio.Event()
        box: list[Any] = []

        def answered(frame: Frame) -> None:
            box.append(decode_full(frame.body))
            done.set()

        req_id = self.send_own_request(to_server, method, params, answered)
        try:
            await done.wait()
        finally:
            self._own_callbacks.pop(req_id, None)
        return box[0]

    def notify_client(self, method: str, params: Any) -> None:
        self.send_client({"jsonrpc": "2.0", "method": method, "params": params})

    def reply_client(self, req_id: Any, *, result: Any = None,
                     error: tuple[int, str] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id}
        if error is None:
            message["result"] = result
        else:
            message["error"] = {"code": error[0], "message": error[1]}
        self.send_client(message)

    def _own_answer(self, msg: Message, frame: Frame) -> bool:
        if isinstance(msg.id, str) and msg.id.startswith(OWN_ID_PREFIX):
            callback = self._own_callbacks.pop(msg.id, None)
            if callback is not None:
                callback(frame)
            return True
        return False

    # ---------------------------------------------------------------- editor -> server

    def _from_client(self, frame: Frame) -> None:
        if self.exit_received:
            return
        try:
            msg = peek(frame.body)
        except Exception as exc:
            self._client_error(exc)
            return
        self.recent.append((time.monotonic(), _C2S_NAME, self.generation, msg,
                            frame if len(frame.raw) <= _KEEP_FRAME else len(frame.raw)))
        if self.trace is not None:
            self.trace.record("c2s", self.generation, frame.body)
        if msg.kind is Kind.RESPONSE:
            self._client_response(frame, msg)
        elif self.lifecycle.phase in _HOLD_OR_ANSWER or self.backend is None:
            self.hold_or_answer(frame, msg)
        else:
            self.forward_client(frame, msg)

    def forward_client(self, frame: Frame, msg: Message) -> None:
        """Send an editor request or notification to the current backend, keeping the books."""
        method = msg.method
        assert method is not None and self.backend is not None
        if msg.id is not None:
            self.pending.add(C2S, msg.id, method, self.generation)
            if method == "initialize":
                self.handshake.on_initialize_sent()
                self.mirror.on_initialize(params_of(frame.body))
            elif method == "shutdown":
                self.shutdown_requested = True
        elif method in DOCUMENT_METHODS:
            self.backend.send(frame.raw)  # first: a mirror compaction must not delay a keystroke
            self.mirror.record(method, frame.body)
            return
        elif method == "initialized":
            self.handshake.on_initialized_sent()
            self.mirror.initialized = True
        elif method == "workspace/didChangeConfiguration":
            self.mirror.on_configuration(params_of(frame.body))
        elif method == "exit":
            self.exit_received = self.exit_forwarded = True
            self.end("the editor sent exit" + (" after shutdown" if self.shutdown_requested
                                              else " without shutdown"))
        if self._debug:
            log.debug("client -> server#%d: %s %s %s", self.generation, msg.kind.value, msg.id,
                      method)
        self.backend.send(frame.raw)

    def hold_or_answer(self, frame: Frame, msg: Message) -> None:
        """During a restart: hold the message; when degraded: answer requests with an error."""
        if msg.method == "shutdown" and msg.id is not None:
            self.shutdown_requested = True
            self.reply_client(msg.id, result=None)
            return
        if msg.method == "exit":
            self.exit_received = True
            self.end("the editor sent exit while the language server was "
                     + ("restarting" if self.recovering else "down"))
            return
        if self.recovering:
            if msg.id is not None and self.held_requests >= self.config.restart.queue_limit:
                self.reply_client(msg.id, error=(LSPErrorCodes.ContentModified,
                                                 "the language server is restarting"))
                return
            self.held_requests += msg.id is not None
            self.held.append((frame, msg, time.monotonic()))
            return
        if self.waiting is not None:
            self.waiting.on_editor_message(frame, msg)
            return
        if msg.id is not None:
            self.reply_client(msg.id, error=(LSPErrorCodes.RequestFailed,
                                             f"{msg.method} failed: {self.degraded}"))
        elif msg.method in DOCUMENT_METHODS:
            self.mirror.record(msg.method, frame.body)  # so a manual restart has the state
        elif msg.method == "workspace/didChangeConfiguration":
            self.mirror.on_configuration(params_of(frame.body))

    def release_held(self) -> None:
        """Forward what the editor sent during the restart, in order."""
        while self.held and self.backend is not None and not self.recovering:
            frame, msg, _ = self.held.popleft()
            if self.waiting is not None:
                self.waiting.on_editor_message(frame, msg)
            else:
                self.forward_client(frame, msg)
        self.held_requests = 0

    def expire_held(self, now: float) -> None:
        """Held requests obey the same deadlines as forwarded ones: a restart that takes
        longer than a request's deadline answers it (ContentModified: VS Code drops it
        quietly and asks again when it needs to)."""
        kept: deque[tuple[Frame, Message, float]] = deque()
        for frame, msg, since in self.held:
            if msg.id is not None and now - since > self.config.watchdog.deadline_for(
                    msg.method or ""):
                self.held_requests -= 1
                self.reply_client(msg.id, error=(
                    LSPErrorCodes.ContentModified,
                    f"the language server is restarting and {msg.method} waited "
                    f"{now - since:.0f} s, past its deadline"))
            else:
                kept.append((frame, msg, since))
        self.held = kept

    def _client_response(self, frame: Frame, msg: Message) -> None:
        """The editor answers a server request (or one of lspguard's own)."""
        if self._own_answer(msg, frame):
            return
        assert msg.id is not None
        req = self.pending.pop(S2C, msg.id)
        target_gen, server_id = self._remapped.pop(str(msg.id), (None, msg.id))
        gen = target_gen if target_gen is not None else (req.generation if req else None)
        if gen != self.generation or self.backend is None:
            log.info("dropped the editor's answer to %s %r of dead generation %s",
                     req.method if req else "request", msg.id, gen)
            return
        if target_gen is not None:  # restore the id the server used
            message = decode_full(frame.body)
            message["id"] = server_id
            self.backend.send(_frame(message))
        else:
            self.backend.send(frame.raw)

    # ---------------------------------------------------------------- server -> editor

    def _from_server(self, gen: int, frame: Frame) -> None:
        if gen != self.live_generation:
            return  # a condemned generation's last words: the editor has moved on
        try:
            msg = peek(frame.body)
        except Exception as exc:
            self._server_error(gen, exc)
            return
        self.recent.append((time.monotonic(), _S2C_NAME, gen, msg,
                            frame if len(frame.raw) <= _KEEP_FRAME else len(frame.raw)))
        if self.trace is not None:
            self.trace.record("s2c", gen, frame.body)
        kind = msg.kind
        out: bytes | None = frame.raw
        if kind is Kind.RESPONSE:
            if self._own_answer(msg, frame) or not self._server_response(frame, msg):
                return
        elif kind is Kind.REQUEST:
            out = self._server_request(frame, msg, gen)
        elif msg.method == "$/progress":
            params = params_of(frame.body)
            if params is not None:
                self.effects.on_progress(params, gen)
                if self.handshake.watching_progress:
                    self.handshake.on_progress(params)
                    if self.handshake.first_work_ms is not None:
                        self.status.write()
        elif msg.method == "textDocument/publishDiagnostics":
            self.effects.on_diagnostics(frame.body, gen)
        if out is not None:
            self.client_out.write(out)

    def _server_response(self, frame: Frame, msg: Message) -> bool:
        """Book-keep an answer to an editor request; False if the editor must not see it (an
        id it is not waiting for: answering twice would break its JSON-RPC layer)."""
        req = self.pending.pop(C2S, msg.id) if msg.id is not None else None
        if req is None:
            log.warning("dropped the language server's answer to id %r: no such request is "
                        "pending", msg.id)
            return False
        took = time.monotonic() - req.started
        self.latency.record(req.method, took)
        self.timeline.append((req.method, req.started, took, req.generation, not msg.is_error))
        if req.method == "initialize":
            self.handshake.on_initialize_answered()
            message = decode_full(frame.body)
            self.mirror.on_initialize_result(message.get("result"))
            self.lifecycle.advance(Phase.INITIALIZING, Phase.RUNNING)
        return True

    def _server_request(self, frame: Frame, msg: Message, gen: int) -> bytes | None:
        """Book-keep a server request; return the bytes to forward (None: answered here)."""
        assert msg.method is not None and msg.id is not None
        raw: bytes = frame.raw
        message: dict[str, Any] | None = None
        if msg.method == "client/registerCapability":
            message = decode_full(frame.body)
            regs = (message.get("params") or {}).get("registrations") or []
            forward, duplicate = self.effects.filter_registrations(regs)
            if duplicate:
                log.info("swallowed %d registration(s) the editor already holds: %s",
                         len(duplicate), [r.get("id") for r in duplicate])
            if not forward:
                assert self.backend is not None
                self.send_server({"jsonrpc": "2.0", "id": msg.id, "result": None})
                return None
            stale = self.effects.conflicting(forward)
            if stale:
                self.send_own_request(False, "client/unregisterCapability",
                                      {"unregisterations": stale})
            self.effects.on_registered(forward)
            message["params"]["registrations"] = forward
        elif msg.method == "client/unregisterCapability":
            params = params_of(frame.body) or {}
            self.effects.on_unregistered(params.get("unregisterations") or [])
        client_id: Any = msg.id
        if gen > 1:  # ids of a new process restart at 1: keep them apart from the old ones'
            client_id = f"g{gen}:{msg.id}"
            self._remapped[client_id] = (gen, msg.id)
            message = message or decode_full(frame.body)
            message["id"] = client_id
        self.pending.add(S2C, client_id, msg.method, gen)
        return _frame(message) if message is not None else raw

    # ---------------------------------------------------------------- errors, history

    def _client_error(self, exc: Exception) -> None:
        self.protocol_errors["client"] += 1
        log.error("malformed message from the editor (dropped): %s", exc)

    def _server_error(self, gen: int, exc: Exception) -> None:
        self.protocol_errors["server"] += 1
        log.error("malformed message from the language server #%d (dropped): %s", gen, exc)
        backend = self.backend
        if backend is not None and backend.reader.eof:
            return  # it died mid-message: the exit watcher reports the crash
        if gen == self.generation:
            self.report(Verdict(VerdictKind.PROTOCOL_ERROR,
                                f"The language server sent a malformed message: {exc}.", gen,
                                {"error": str(exc)}))


def _frame(message: dict[str, Any]) -> bytes:
    return encode_frame(encode(message))

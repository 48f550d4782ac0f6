"""The hot path: both directions of one editor connection, frame by frame.

Each frame is peeked for kind, id and method. Its original bytes are written on first; then its
row of the routing table (routes.py) books it: the pending table, the client mirror, the server
effects. routes.py lists the few messages that must be read before they go on (rewritten, held
or consumed). While no server takes editor messages (a restart, a wait on an outside cause,
degraded mode), they are held in order or answered here, by the same table.

The session (session.py) owns a Relay and supplies what it needs through `RelayHost`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from lspguard.protocol.codes import LSPErrorCodes
from lspguard.protocol.framing import Frame, encode_frame
from lspguard.protocol.peek import Message, decode_full, encode, params_of, peek
from lspguard.proxy import prerelay
from lspguard.proxy.effects import ServerEffects
from lspguard.proxy.handshake import HandshakeTimer
from lspguard.proxy.lifecycle import Phase
from lspguard.proxy.mirror import ClientMirror
from lspguard.proxy.outbox import Outbox
from lspguard.proxy.pending import Direction, LatencyStats, PendingRequest, PendingTable
from lspguard.proxy.pipes import FrameReader, PipeWriter
from lspguard.proxy.routes import EDITOR_ROUTES, PLAIN, SERVER_ROUTES, Book, Down
from lspguard.supervise.verdict import Verdict, VerdictKind

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lspguard.config.model import Config
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.lifecycle import Lifecycle
    from lspguard.replay.trace.writer import TraceWriter

__all__ = ["Completed", "Recent", "Relay", "RelayHost"]

log = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

_C2S_NAME = C2S.value
_S2C_NAME = S2C.value
# Phases in which an editor message is held or answered here instead of forwarded (one set
# lookup per message on the hot path).
_HOLD_OR_ANSWER = frozenset({Phase.RESTARTING, Phase.WAITING, Phase.DEGRADED})

# Kept per message on the hot path, turned into report rows only when evidence is taken:
# (monotonic time, direction, generation, message envelope, frame, or its size when large).
Recent = tuple[float, str, int, Message, Frame | int]
_KEEP_FRAME = 64 * 1024  # the ring keeps references to frames up to this size only
# A completed request: (method, started monotonic, duration s, generation, ok).
Completed = tuple[str, float, float, int, bool]


class RelayHost(Protocol):
    """What the relay needs from the session around it."""

    def end(self, reason: str) -> None:
        """Ask the session to stop (the editor sent exit)."""

    def report(self, verdict: Verdict) -> None:
        """A verdict on the current generation (it sent a malformed message)."""

    def answer_while_waiting(self, frame: Frame, msg: Message) -> None:
        """An editor message while the server waits on a cause outside it."""

    def changed(self) -> None:
        """Something the status file shows has changed."""


class Relay:
    """Per-connection relay state and the frame handlers of both directions."""

    def __init__(self, config: Config, lifecycle: Lifecycle, host: RelayHost) -> None:
        self.config = config
        self.lifecycle = lifecycle
        self.host = host
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
        self.degraded_reason: str | None = None  # why requests fail, while degraded
        # Editor messages held during a restart, with the monotonic time each arrived.
        self.held: deque[tuple[Frame, Message, float]] = deque()
        self.held_requests = 0
        self.recent: deque[Recent] = deque(maxlen=200)
        self.timeline: deque[Completed] = deque(maxlen=2000)
        self.protocol_errors = {"client": 0, "server": 0}
        self.server_messages = 0  # from any generation, but answers to lspguard's own requests
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.trace: TraceWriter | None = None  # record mode: every message, never blocking
        self.outbox = Outbox(self)
        self._remapped: dict[str, tuple[int, Any]] = {}  # editor-visible id -> (gen, server id)
        self._debug = log.isEnabledFor(logging.DEBUG)
        self._books: dict[Book, Callable[[Frame, Message, int], None]] = {
            Book.INITIALIZE: self._book_initialize,
            Book.INITIALIZED: self._book_initialized,
            Book.SHUTDOWN: self._book_shutdown,
            Book.EXIT: self._book_exit,
            Book.CONFIGURATION: self._book_configuration,
            Book.DOCUMENT: self._book_document,
            Book.PROGRESS: self._book_progress,
            Book.DIAGNOSTICS: self._book_diagnostics,
            Book.UNREGISTER: self._book_unregister,
        }

    # ---------------------------------------------------------------- the backend

    def attach(self, backend: Backend) -> None:
        """Make `backend` the current generation: editor messages go to it from now on, and
        its output reaches the editor."""
        self.backend = backend
        self.generation = self.live_generation = backend.generation
        self.effects.new_generation(backend.generation)
        backend.writer.feeders.append(self.client_reader)  # back-pressure onto the editor
        self.client_out.feeders = [backend.reader]

    def condemn(self) -> None:
        """A restart was decided: the current generation's late answers would reach requests
        already failed, so nothing it writes reaches the editor any more."""
        self.live_generation = 0

    def on_backend_frame(self, gen: int) -> Callable[[Frame], None]:
        return lambda frame: self._from_server(gen, frame)

    def on_backend_error(self, gen: int) -> Callable[[Exception], None]:
        return lambda exc: self._server_error(gen, exc)

    # ---------------------------------------------------------------- derived from the phase

    @property
    def recovering(self) -> bool:
        return self.lifecycle.phase is Phase.RESTARTING

    @property
    def degraded(self) -> str | None:
        """Why requests fail, while the restart budget is spent."""
        return self.degraded_reason if self.lifecycle.phase is Phase.DEGRADED else None

    def editor_ready(self) -> bool:
        """The editor has its initialize answer: before that, the spec allows the server no
        requests or notifications of its own (progress, messages, refreshes)."""
        return self.mirror.initialize_result is not None

    # ---------------------------------------------------------------- editor -> server

    def _from_client(self, frame: Frame) -> None:
        if self.exit_received:
            return
        try:
            msg = peek(frame.body)
        except Exception as exc:
            self._client_error(exc)
            return
        if msg.method is None:
            self._client_response(frame, msg)
        else:
            self.route_editor(frame, msg)
        self.recent.append((time.monotonic(), _C2S_NAME, self.generation, msg,
                            _ring_entry(frame)))
        if self.trace is not None:
            self.trace.record("c2s", self.generation, frame.body)

    def route_editor(self, frame: Frame, msg: Message) -> None:
        """An editor request or notification: to the live server, or held or answered here."""
        if self.lifecycle.phase in _HOLD_OR_ANSWER or self.backend is None:
            self.hold_or_answer(frame, msg)
        else:
            self.forward_client(frame, msg)

    def forward_client(self, frame: Frame, msg: Message) -> None:
        """Send an editor request or notification to the current backend, then book it."""
        assert self.backend is not None
        self.backend.send(frame.raw)  # first: book-keeping must not delay a keystroke
        self._book_editor(frame, msg)

    def _book_editor(self, frame: Frame, msg: Message, now: float | None = None) -> None:
        """Book an editor request or notification the server was sent (at `now`)."""
        method = msg.method
        assert method is not None
        if msg.id is not None:
            self.pending.add(C2S, msg.id, method, self.generation, now)
        book = EDITOR_ROUTES.get(method, PLAIN).book
        if book is not None:
            self._books[book](frame, msg, self.generation)
        if self._debug:
            log.debug("client -> server#%d: %s %s %s", self.generation, msg.kind.value, msg.id,
                      method)

    def hold_or_answer(self, frame: Frame, msg: Message) -> None:
        """No server takes editor messages now: hold them while restarting; answer requests at
        once while waiting on a cause or degraded. State the next server needs is booked."""
        route = EDITOR_ROUTES.get(msg.method or "", PLAIN)
        if route.when_down is Down.ANSWER_NULL and msg.id is not None:
            self.shutdown_requested = True
            self.outbox.reply_client(msg.id, result=None)
            return
        if route.when_down is Down.END:
            self.exit_received = True
            self.host.end("the editor sent exit while the language server was "
                          + ("restarting" if self.recovering else "down"))
            return
        if self.recovering:
            if msg.id is not None and self.held_requests >= self.config.restart.queue_limit:
                self.outbox.reply_client(msg.id, error=(LSPErrorCodes.ContentModified,
                                                        "the language server is restarting"))
                return
            self.held_requests += msg.id is not None
            self.held.append((frame, msg, time.monotonic()))
            return
        if route.keeps_state and route.book is not None:
            self._books[route.book](frame, msg, self.generation)
        if self.lifecycle.phase is Phase.WAITING:
            self.host.answer_while_waiting(frame, msg)
        elif msg.id is not None:
            why = self.degraded or "the language server is not running"
            self.outbox.reply_client(msg.id, error=(LSPErrorCodes.RequestFailed,
                                                    f"{msg.method} failed: {why}"))

    def release_held(self) -> None:
        """Route what the editor sent during the restart, in order: forwarded to the new
        server, or answered here (waiting on a cause, degraded)."""
        while self.held and not self.recovering:
            frame, msg, _ = self.held.popleft()
            self.route_editor(frame, msg)
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
                self.outbox.reply_client(msg.id, error=(
                    LSPErrorCodes.ContentModified,
                    f"the language server is restarting and {msg.method} waited "
                    f"{now - since:.0f} s, past its deadline"))
            else:
                kept.append((frame, msg, since))
        self.held = kept

    def _client_response(self, frame: Frame, msg: Message) -> None:
        """The editor answers a server request (or one of lspguard's own)."""
        if self.outbox.take_answer(msg, frame):
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

    # ---------------------------------------------------------------- before the relay

    def book_prerelayed(self, copied: Sequence[tuple[float, str, Frame]]) -> None:
        """Book what the pre-relay (prerelay.py) forwarded before this relay read a byte, at
        the times it went, as this relay would have booked it: the editor's `initialize` and
        the server's notifications and answer. The phase is the session's to move, once the
        editor is connected (STARTING: the status file has no backend pid yet)."""
        gen = self.generation
        for at, direction, frame in copied:
            msg = peek(frame.body)
            if direction == prerelay.EDITOR:
                self.client_reader.frames_in += 1
                self.client_reader.bytes_in += len(frame.raw)
                self._book_editor(frame, msg, at)
            elif msg.method is None:
                req = self.pending.pop(C2S, msg.id) if msg.id is not None else None
                if req is not None:
                    self._book_answer(req, frame, msg, at)
            else:
                self._book_notification(frame, msg, msg.method, gen)
            self.recent.append((at, _C2S_NAME if direction == prerelay.EDITOR else _S2C_NAME,
                                gen, msg, _ring_entry(frame)))
        if copied:
            log.info("took over from the pre-relay: %d message(s) already relayed",
                     len(copied))

    # ---------------------------------------------------------------- editor books

    def _book_initialize(self, frame: Frame, msg: Message, gen: int) -> None:
        # The handshake clock starts when the request did (the pre-relay's time, if it sent it).
        sent = self.pending.get(C2S, msg.id) if msg.id is not None else None
        self.handshake.on_initialize_sent(sent.started if sent is not None else None)
        self.mirror.on_initialize(params_of(frame.body))

    def _book_initialized(self, frame: Frame, msg: Message, gen: int) -> None:
        self.handshake.on_initialized_sent()
        self.mirror.initialized = True

    def _book_shutdown(self, frame: Frame, msg: Message, gen: int) -> None:
        self.shutdown_requested = True

    def _book_exit(self, frame: Frame, msg: Message, gen: int) -> None:
        self.exit_received = self.exit_forwarded = True
        self.host.end("the editor sent exit" + (" after shutdown" if self.shutdown_requested
                                               else " without shutdown"))

    def _book_configuration(self, frame: Frame, msg: Message, gen: int) -> None:
        self.mirror.on_configuration(params_of(frame.body))

    def _book_document(self, frame: Frame, msg: Message, gen: int) -> None:
        assert msg.method is not None
        self.mirror.record(msg.method, frame.body)

    # ---------------------------------------------------------------- server -> editor

    def _from_server(self, gen: int, frame: Frame) -> None:
        if gen != self.live_generation:
            return  # a condemned generation's last words: the editor has moved on
        try:
            msg = peek(frame.body)
        except Exception as exc:
            self._server_error(gen, exc)
            return
        method = msg.method
        if method is None:
            self._server_response(frame, msg)
        elif msg.id is not None:
            self.server_messages += 1
            self._server_request(frame, msg, gen)
        else:
            self.server_messages += 1
            self.client_out.write(frame.raw)  # first: then the books
            self._book_notification(frame, msg, method, gen)
        self.recent.append((time.monotonic(), _S2C_NAME, gen, msg, _ring_entry(frame)))
        if self.trace is not None:
            self.trace.record("s2c", gen, frame.body)

    def _book_notification(self, frame: Frame, msg: Message, method: str, gen: int) -> None:
        """Book a server notification forwarded to the editor, by its row (routes.py)."""
        route = SERVER_ROUTES.get(method)
        if route is not None and route.book is not None:
            self._books[route.book](frame, msg, gen)

    def _server_response(self, frame: Frame, msg: Message) -> None:
        """Forward an answer to an editor request, then book it. An answer to lspguard's own
        request is consumed; one to no pending request is dropped (answering twice would break
        the editor's JSON-RPC layer)."""
        if self.outbox.take_answer(msg, frame):
            return  # not progress: a ping is answered by a server whose requests are stuck
        self.server_messages += 1
        req = self.pending.pop(C2S, msg.id) if msg.id is not None else None
        if req is None:
            log.warning("dropped the language server's answer to id %r: no such request is "
                        "pending", msg.id)
            return
        self.client_out.write(frame.raw)
        self._book_answer(req, frame, msg)

    def _book_answer(self, req: PendingRequest, frame: Frame, msg: Message,
                     now: float | None = None) -> None:
        """Book the server's answer to `req`, forwarded to the editor (at `now`)."""
        took = (time.monotonic() if now is None else now) - req.started
        self.latency.record(req.method, took)
        self.timeline.append((req.method, req.started, took, req.generation, not msg.is_error))
        if req.method == "initialize":
            self.handshake.on_initialize_answered(now)
            message = decode_full(frame.body)
            self.mirror.on_initialize_result(message.get("result"))
            self.lifecycle.advance(Phase.INITIALIZING, Phase.RUNNING)

    def _server_request(self, frame: Frame, msg: Message, gen: int) -> None:
        """Forward a server request (rewritten where it must be), then book it."""
        assert msg.method is not None and msg.id is not None
        route = SERVER_ROUTES.get(msg.method)
        message: dict[str, Any] | None = None
        if route is not None and route.rewrites:
            message = self._rewrite_registrations(frame, msg)
            if message is None:
                return  # answered here: the editor holds all of them already
        client_id: Any = msg.id
        if gen > 1:  # ids of a new process restart at 1: keep them apart from the old ones'
            client_id = f"g{gen}:{msg.id}"
            self._remapped[client_id] = (gen, msg.id)
            message = message or decode_full(frame.body)
            message["id"] = client_id
        self.client_out.write(_frame(message) if message is not None else frame.raw)
        self.pending.add(S2C, client_id, msg.method, gen)
        if route is not None and route.book is not None:
            self._books[route.book](frame, msg, gen)

    def _rewrite_registrations(self, frame: Frame, msg: Message) -> dict[str, Any] | None:
        """client/registerCapability without the registrations the editor already holds (and
        with the conflicting ones it holds unregistered first); None when none are left."""
        message: dict[str, Any] = decode_full(frame.body)
        regs = (message.get("params") or {}).get("registrations") or []
        forward, duplicate = self.effects.filter_registrations(regs)
        if duplicate:
            log.info("swallowed %d registration(s) the editor already holds: %s",
                     len(duplicate), [r.get("id") for r in duplicate])
        if not forward:
            self.outbox.send_server({"jsonrpc": "2.0", "id": msg.id, "result": None})
            return None
        stale = self.effects.conflicting(forward)
        if stale:
            self.outbox.send_own_request(False, "client/unregisterCapability",
                                         {"unregisterations": stale})
        self.effects.on_registered(forward)
        message["params"]["registrations"] = forward
        return message

    # ---------------------------------------------------------------- server books

    def _book_progress(self, frame: Frame, msg: Message, gen: int) -> None:
        params = params_of(frame.body)
        if params is None:
            return
        self.effects.on_progress(params, gen)
        if self.handshake.watching_progress:
            self.handshake.on_progress(params)
            if self.handshake.first_work_ms is not None:
                self.host.changed()

    def _book_diagnostics(self, frame: Frame, msg: Message, gen: int) -> None:
        self.effects.on_diagnostics(frame.body, gen)

    def _book_unregister(self, frame: Frame, msg: Message, gen: int) -> None:
        params = params_of(frame.body) or {}
        self.effects.on_unregistered(params.get("unregisterations") or [])

    # ---------------------------------------------------------------- errors

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
            self.host.report(Verdict(VerdictKind.PROTOCOL_ERROR,
                                     f"The language server sent a malformed message: {exc}.",
                                     gen, {"error": str(exc)}))


def _ring_entry(frame: Frame) -> Frame | int:
    """What the ring of recent messages keeps of a frame: the frame, or only its size if large."""
    return frame if len(frame.raw) <= _KEEP_FRAME else len(frame.raw)


def _frame(message: dict[str, Any]) -> bytes:
    return encode_frame(encode(message))

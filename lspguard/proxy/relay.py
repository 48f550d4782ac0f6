"""The hot path: both directions of one editor connection, frame by frame.

Each frame is peeked for kind, id and method. Its original bytes are written on first; then its
row of the routing table (routes.py) books it: the pending table, the client mirror, the server
effects. routes.py lists the few messages that must be read before they go on (rewritten, held
or consumed). While no server takes editor messages (a restart, a wait on an outside cause,
degraded mode), they are held in order or answered here, by the same table (downtime.py).

One object over three modules: this routing, the books it keeps (books.py), and what it does while
no server takes editor messages (downtime.py); relaystate.py declares the state they share. The
session (session.py) owns a Relay and supplies what it needs through `RelayHost`; supervision
acts on it through the few methods of supervise/host.py's `RelayControl`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.protocol.framing import Frame, encode_frame
from lspguard.protocol.peek import Message, decode_full, encode, peek
from lspguard.proxy.books import Books
from lspguard.proxy.downtime import Downtime
from lspguard.proxy.lifecycle import Phase
from lspguard.proxy.pending import Direction
from lspguard.proxy.pipes import FrameReader
from lspguard.proxy.relaystate import Completed, Recent, RelayHost, ring_entry
from lspguard.proxy.routes import SERVER_ROUTES

if TYPE_CHECKING:
    from collections.abc import Callable

    from lspguard.config.model import Config
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.lifecycle import Lifecycle

__all__ = ["Completed", "Recent", "Relay", "RelayHost"]

log = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT

_C2S_NAME = C2S.value
_S2C_NAME = S2C.value
# Phases in which an editor message is held or answered here instead of forwarded (one set
# lookup per message on the hot path).
_HOLD_OR_ANSWER = frozenset({Phase.RESTARTING, Phase.WAITING, Phase.DEGRADED})


class Relay(Books, Downtime):
    """One editor connection: the frame handlers of both directions, over its books."""

    def __init__(self, config: Config, lifecycle: Lifecycle, host: RelayHost) -> None:
        super().__init__(config, lifecycle, host)
        self.client_reader = FrameReader("client", self._from_client, self._client_error,
                                         self.max_frame_bytes)
        self._remapped: dict[str, tuple[int, Any]] = {}  # editor-visible id -> (gen, server id)
        self._books = self.book_handlers()

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

    def end_progress(self, generation: int) -> None:
        """End the work-done progress `generation` began and will not end (it is dead: the
        editor's spinner would turn forever)."""
        for token in self.effects.take_open_progress(generation):
            self.outbox.notify_client("$/progress", {"token": token, "value": {"kind": "end"}})

    async def until_loaded(self) -> None:
        """Until the current generation's work-done progress has all ended (it has loaded)."""
        await self.effects.idle.wait()

    def clear_diagnostics(self, up_to_generation: int) -> None:
        """Empty the diagnostics only generations up to `up_to_generation` published (nobody
        alive would clear them)."""
        dead = set(range(1, up_to_generation + 1))
        for uri in self.effects.stale_diagnostics(dead):
            self.outbox.notify_client("textDocument/publishDiagnostics",
                                      {"uri": uri, "diagnostics": []})

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
                            ring_entry(frame)))
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
        self.recent.append((time.monotonic(), _S2C_NAME, gen, msg, ring_entry(frame)))
        if self.trace is not None:
            self.trace.record("s2c", gen, frame.body)

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


def _frame(message: dict[str, Any]) -> bytes:
    return encode_frame(encode(message))

"""The relay's books: what it notes of the messages it forwarded, after they went on.

Each row of the routing table (routes.py) names one book: the cached `initialize` and the
handshake clock, the editor's documents and configuration (mirror.py, replayed into a new
server), the server's open progress, diagnostics and registrations (effects.py), the flags of
shutdown and exit. Answers are booked as latency and a timeline row. What the pre-relay
(prerelay.py) forwarded before the relay existed is booked here too, as if relayed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from lspguard.protocol.peek import Message, decode_full, params_of, peek
from lspguard.proxy import prerelay
from lspguard.proxy.lifecycle import Phase
from lspguard.proxy.pending import Direction, PendingRequest
from lspguard.proxy.relaystate import RelayState, ring_entry
from lspguard.proxy.routes import EDITOR_ROUTES, PLAIN, SERVER_ROUTES, Book

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lspguard.protocol.framing import Frame

__all__ = ["Books"]

log = logging.getLogger("lspguard.proxy.relay")  # one relay over three modules: one name

C2S = Direction.CLIENT_TO_SERVER
S2C = Direction.SERVER_TO_CLIENT


class Books(RelayState):
    """The book handlers of the relay (a part of Relay)."""

    def book_handlers(self) -> dict[Book, Callable[[Frame, Message, int], None]]:
        return {
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

    def _book_notification(self, frame: Frame, msg: Message, method: str, gen: int) -> None:
        """Book a server notification forwarded to the editor, by its row (routes.py)."""
        route = SERVER_ROUTES.get(method)
        if route is not None and route.book is not None:
            self._books[route.book](frame, msg, gen)

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
            self.recent.append((at, C2S.value if direction == prerelay.EDITOR else S2C.value,
                                gen, msg, ring_entry(frame)))
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

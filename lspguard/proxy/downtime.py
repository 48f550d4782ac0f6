"""The relay while no server takes editor messages: a restart, a wait on a cause, degraded mode.

Editor messages are held in order while a restart runs (and released to the new server), or
answered at once while the server waits on a cause outside it or while degraded; the state the
next server needs is booked all the same. Requests already in flight are answered here for the
server that will not answer them: `fail_pending` is the one place that does so, and
`fail_request` the one answer a request gets from lspguard instead of a server.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from lspguard.protocol.codes import LSPErrorCodes
from lspguard.proxy.lifecycle import Phase
from lspguard.proxy.pending import Direction
from lspguard.proxy.relaystate import Held, RelayState
from lspguard.proxy.routes import EDITOR_ROUTES, PLAIN, Down

if TYPE_CHECKING:
    from collections.abc import Callable, Container

    from lspguard.protocol.framing import Frame
    from lspguard.protocol.peek import Message
    from lspguard.proxy.pending import PendingRequest, RequestId

__all__ = ["Downtime"]

C2S = Direction.CLIENT_TO_SERVER


class Downtime(RelayState):
    """Holding and answering for a server that is not there (a part of Relay)."""

    @property
    def recovering(self) -> bool:
        return self.lifecycle.phase is Phase.RESTARTING

    @property
    def degraded(self) -> str | None:
        """Why requests fail, while the restart budget is spent."""
        return self.degraded_reason if self.lifecycle.phase is Phase.DEGRADED else None

    # ---------------------------------------------------------------- editor messages

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
                self.fail_request(msg.id, msg.method or "", LSPErrorCodes.ContentModified,
                                  "the language server is restarting")
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
            self.fail_request(msg.id, msg.method or "", LSPErrorCodes.RequestFailed,
                              f"{msg.method} failed: {why}")

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
        kept: deque[Held] = deque()
        for frame, msg, since in self.held:
            if msg.id is not None and now - since > self.config.watchdog.deadline_for(
                    msg.method or ""):
                self.held_requests -= 1
                self.fail_request(msg.id, msg.method or "", LSPErrorCodes.ContentModified,
                                  f"the language server is restarting and {msg.method} waited "
                                  f"{now - since:.0f} s, past its deadline")
            else:
                kept.append((frame, msg, since))
        self.held = kept

    # ---------------------------------------------------------------- answered here

    def fail_request(self, req_id: RequestId, method: str, code: int,
                     why: str | Callable[[str], str], *, empty_for: Container[str] = ()) -> None:
        """Answer an editor request here, for a server that will not: with the error `code`
        and `why` (made from `method` if it is a function) or, for a method in `empty_for`,
        with an empty result (the save path while the server waits: saving never waits)."""
        if method in empty_for:
            self.outbox.reply_client(req_id, result=[])
            return
        self.outbox.reply_client(req_id, error=(code, why if isinstance(why, str)
                                                else why(method)))

    def fail_pending(self, code: int, why: str | Callable[[str], str], *,
                     up_to_generation: int | None = None, spare_initialize: bool = False,
                     empty_for: Container[str] = ()) -> int:
        """Answer the editor's requests in flight to the server here (`fail_request`), taken off
        the table: those sent to generations up to `up_to_generation` (default: all), but the
        editor's initialize when `spare_initialize` (the next server's answer is its answer:
        `answer_initialize`). How many were answered."""
        taken = self._take_pending(
            lambda req: (up_to_generation is None or req.generation <= up_to_generation)
            and not (spare_initialize and req.method == "initialize"))
        for req in taken:
            self.fail_request(req.id, req.method, code, why, empty_for=empty_for)
        return len(taken)

    def answer_initialize(self, result: Any) -> None:
        """The editor's own initialize was in flight when its server was replaced: answer it
        with the result of the server that replaced it (anything else would make VS Code give
        up on the server)."""
        for req in self._take_pending(lambda req: req.method == "initialize"):
            self.handshake.on_initialize_answered()
            self.mirror.on_initialize_result(result)
            self.outbox.reply_client(req.id, result=result)

    def _take_pending(self, which: Callable[[PendingRequest], bool]) -> list[PendingRequest]:
        """The editor's requests in flight that `which` picks, taken off the table."""
        taken = [req for req in self.pending.in_direction(C2S) if which(req)]
        for req in taken:
            self.pending.pop(C2S, req.id)
        return taken

    def degrade(self, reason: str) -> None:
        """No server until a revival (the restart budget is spent, or no restart can help):
        from now on editor requests fail naming `reason`, and documents are still mirrored.
        The caller fails what is in flight and releases what is held, once it told the user."""
        self.backend = None
        self.degraded_reason = reason
        self.lifecycle.to(Phase.DEGRADED)

"""Messages lspguard composes itself, to either side, and the answers to its own requests.

Forwarded traffic never passes here: only what lspguard says (errors answered at once, the
replayed state, liveness pings, refresh requests, messages to the user). Its own request ids
carry OWN_ID_PREFIX, so their answers are told apart from the editor's and the server's.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from lspguard.protocol.framing import encode_frame
from lspguard.protocol.peek import decode_full, encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from lspguard.protocol.framing import Frame
    from lspguard.protocol.peek import Message
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.pipes import PipeWriter
    from lspguard.trace.writer import TraceWriter

__all__ = ["OWN_ID_PREFIX", "Ends", "Outbox"]

OWN_ID_PREFIX = "lspguard-"


class Ends(Protocol):
    """Both ends of the connection, as they are now (the relay)."""

    backend: Backend | None
    client_out: PipeWriter
    generation: int
    trace: TraceWriter | None


class Outbox:
    def __init__(self, ends: Ends) -> None:
        self.ends = ends
        self._ids = itertools.count(1)
        self._callbacks: dict[str, Callable[[Frame], None]] = {}

    def send_server(self, message: dict[str, Any]) -> None:
        """Send a message to the current backend (traced as p2s)."""
        ends = self.ends
        body = encode(message)
        if ends.trace is not None:
            ends.trace.record("p2s", ends.generation, body)
        assert ends.backend is not None
        ends.backend.send(encode_frame(body))

    def send_client(self, message: dict[str, Any]) -> None:
        """Send a message to the editor (traced as p2c)."""
        ends = self.ends
        body = encode(message)
        if ends.trace is not None:
            ends.trace.record("p2c", ends.generation, body)
        ends.client_out.write(encode_frame(body))

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

    def send_own_request(self, to_server: bool, method: str, params: Any,
                         on_answer: Callable[[Frame], None] | None = None) -> str:
        """Send a request of lspguard's own to either side; its answer goes to `on_answer`."""
        req_id = f"{OWN_ID_PREFIX}{next(self._ids)}"
        self._callbacks[req_id] = on_answer or (lambda _: None)
        message = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}
        (self.send_server if to_server else self.send_client)(message)
        return req_id

    async def request_server(self, method: str, params: Any) -> Any:
        """Ask the backend; return its decoded answer."""
        return await self._request(True, method, params)

    async def request_client(self, method: str, params: Any) -> Any:
        """Ask the editor; return its decoded answer."""
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
            self._callbacks.pop(req_id, None)
        return box[0]

    def take_answer(self, msg: Message, frame: Frame) -> bool:
        """True if `msg` answers one of lspguard's own requests (then it is consumed here)."""
        if isinstance(msg.id, str) and msg.id.startswith(OWN_ID_PREFIX):
            callback = self._callbacks.pop(msg.id, None)
            if callback is not None:
                callback(frame)
            return True
        return False

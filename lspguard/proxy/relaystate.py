"""What the relay keeps about one editor connection, and what it needs of the session.

The relay (relay.py) is one object over three modules: the routing of both directions
(relay.py), the books it keeps of what it forwarded (books.py), and what it does while no server
takes editor messages (downtime.py). Each acts on the state declared here.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from lspguard.protocol.framing import Frame
from lspguard.protocol.peek import Message
from lspguard.proxy.effects import ServerEffects
from lspguard.proxy.handshake import HandshakeTimer
from lspguard.proxy.mirror import ClientMirror
from lspguard.proxy.outbox import Outbox
from lspguard.proxy.pending import LatencyStats, PendingTable
from lspguard.proxy.pipes import PipeWriter

if TYPE_CHECKING:
    from collections.abc import Callable

    from lspguard.causes.verdict import Verdict
    from lspguard.config.model import Config
    from lspguard.proxy.backend import Backend
    from lspguard.proxy.lifecycle import Lifecycle
    from lspguard.proxy.pipes import FrameReader
    from lspguard.proxy.routes import Book
    from lspguard.trace.writer import TraceWriter

__all__ = ["Completed", "Held", "Recent", "RelayHost", "RelayState", "ring_entry"]

# The relay is one object over three modules: its log lines keep one name.
log = logging.getLogger("lspguard.proxy.relay")

# Kept per message on the hot path, turned into report rows only when evidence is taken:
# (monotonic time, direction, generation, message envelope, frame, or its size when large).
Recent = tuple[float, str, int, Message, Frame | int]
_KEEP_FRAME = 64 * 1024  # the ring keeps references to frames up to this size only
# A completed request: (method, started monotonic, duration s, generation, ok).
Completed = tuple[str, float, float, int, bool]
# An editor message held during a restart, with the monotonic time it arrived.
Held = tuple[Frame, Message, float]


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


class RelayState:
    """Per-connection state: the books, both ends, the flags the editor's messages set."""

    client_reader: FrameReader  # set by the Relay: it reads into the Relay's routing
    _books: dict[Book, Callable[[Frame, Message, int], None]]  # likewise (books.py's handlers)

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
        self.client_out = PipeWriter("client")
        self.backend: Backend | None = None
        self.generation = 0
        self.live_generation = 0  # whose output reaches the editor: 0 once a restart condemns it
        self.shutdown_requested = False
        self.exit_received = False
        self.exit_forwarded = False
        self.degraded_reason: str | None = None  # why requests fail, while degraded
        self.held: deque[Held] = deque()  # editor messages held during a restart, in order
        self.held_requests = 0
        self.recent: deque[Recent] = deque(maxlen=200)
        self.timeline: deque[Completed] = deque(maxlen=2000)
        self.protocol_errors = {"client": 0, "server": 0}
        self.server_messages = 0  # from any generation, but answers to lspguard's own requests
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.trace: TraceWriter | None = None  # record mode: every message, never blocking
        self.outbox = Outbox(self)
        self._debug = log.isEnabledFor(logging.DEBUG)

    def route_editor(self, frame: Frame, msg: Message) -> None:
        """An editor request or notification: to the live server, or held or answered here
        (relay.py)."""
        raise NotImplementedError

    def editor_ready(self) -> bool:
        """The editor has its initialize answer: before that, the spec allows the server no
        requests or notifications of its own (progress, messages, refreshes)."""
        return self.mirror.initialize_result is not None


def ring_entry(frame: Frame) -> Frame | int:
    """What the ring of recent messages keeps of a frame: the frame, or only its size if large."""
    return frame if len(frame.raw) <= _KEEP_FRAME else len(frame.raw)

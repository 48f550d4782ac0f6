"""The editor's first round trip, copied by two plain threads while lspguard starts up.

An editor writes `initialize` as soon as it has spawned the server command, and waits for the
answer at every start and window reload. gopls, spawned first (early.py), can answer long
before lspguard's event loop and session are imported (~250 ms here). So from the spawn until
the session takes over, two threads of the standard library copy whole frames:

- editor -> server: the first frame, if it is the `initialize` request; then that thread stops;
- server -> editor: notifications, and the answer to that `initialize`. It stops after the
  answer, or at the first frame the relay must read before it goes on (a server request: see
  routes.py), which it leaves where it is.

Nothing else is copied. When the session takes over (`PreRelay.stop`), each thread stops at a
frame boundary, and the session gets a `Handover`: the frames copied, with the time each went,
for the relay to book as if it had forwarded them itself (`Relay.book_prerelayed`), and each
direction's bytes read but not copied, for its frame reader to begin with. A malformed frame
stops the copying too: the relay's reader then meets it and reports it, as it always has.

Standard library only, like early.py: this runs while the heavy imports do.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lspguard.errors import RemoteProtocolError
from lspguard.protocol.framing import Frame, FrameDecoder

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["EDITOR", "SERVER", "Handover", "PreRelay"]

EDITOR = "from the editor"  # which way a copied frame went
SERVER = "from the server"
READ_SIZE = 64 * 1024
# An initialize larger than a pipe's default buffer is left to the relay: copied here, it could
# block this thread (and so the hand-over) on a server that does not read.
_MAX_COPIED = 64 * 1024

# What a thread does with one frame.
_COPY, _COPY_AND_STOP, _STOP = "copy", "copy, then stop", "stop"


@dataclass
class Handover:
    """What the pre-relay did, for the relay to go on from."""

    # (monotonic time it was written on, EDITOR or SERVER, the frame), in the order they went
    copied: list[tuple[float, str, Frame]] = field(default_factory=list)
    editor_rest: bytes = b""  # read from the editor and not copied: the relay's first bytes
    server_rest: bytes = b""


class PreRelay:
    """Copies the first round trip between the editor (fds 0/1) and the early server."""

    def __init__(self, editor_in: int, editor_out: int, server_in: int, server_out: int,
                 max_frame_bytes: int) -> None:
        self._wake_r, self._wake_w = os.pipe()
        self._copied: list[tuple[float, str, Frame]] = []
        self._initialize_id: Any = None
        self._editor = _Pump(EDITOR, editor_in, server_in, self._wake_r, self._editor_frame,
                             self._copied, max_frame_bytes)
        self._server = _Pump(SERVER, server_out, editor_out, self._wake_r, self._server_frame,
                             self._copied, max_frame_bytes)
        self._stopped: Handover | None = None

    def start(self) -> None:
        self._editor.start()
        self._server.start()

    def stop(self) -> Handover:
        """Stop both threads at a frame boundary and say what they did (idempotent).

        Bounded by the frame a thread may be writing: a peer that reads nothing at all would
        hold it, and would hold the relay just the same."""
        if self._stopped is not None:
            return self._stopped
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        for pump in (self._editor, self._server):
            if pump.ident is not None:  # started
                pump.join()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        copied = sorted(self._copied, key=lambda item: item[0])
        self._stopped = Handover(copied, self._editor.rest, self._server.rest)
        return self._stopped

    def _editor_frame(self, message: Any, frame: Frame) -> str:
        if (isinstance(message, dict) and message.get("method") == "initialize"
                and "id" in message and len(frame.raw) <= _MAX_COPIED):
            self._initialize_id = message["id"]  # before it is written: the answer comes after
            return _COPY_AND_STOP
        return _STOP

    def _server_frame(self, message: Any, frame: Frame) -> str:
        if not isinstance(message, dict):
            return _STOP
        if "method" in message:
            return _STOP if "id" in message else _COPY  # a request: the relay must read it first
        if self._initialize_id is not None and message.get("id") == self._initialize_id:
            return _COPY_AND_STOP
        return _STOP


class _Pump(threading.Thread):
    """One direction: read, split into frames, copy what `decide` says, stop when told."""

    def __init__(self, direction: str, source: int, sink: int, wake: int,
                 decide: Callable[[Any, Frame], str], copied: list[tuple[float, str, Frame]],
                 max_frame_bytes: int) -> None:
        super().__init__(name="lspguard-prerelay-" + ("editor" if direction == EDITOR
                                                      else "server"), daemon=True)
        self.direction = direction
        self.source, self.sink, self.wake = source, sink, wake
        self.decide = decide
        self.copied = copied
        self.decoder = FrameDecoder(max_frame_bytes)
        self.rest = b""
        self._held = b""  # a frame read and not copied: it goes to the relay first

    def run(self) -> None:
        try:
            while self._read() and self._copy_frames():
                pass
        except (OSError, ValueError):  # a peer gone, a pipe closed: the relay finds out itself
            pass
        finally:
            self.rest = self._held + self.decoder.unconsumed()

    def _read(self) -> bool:
        ready, _, _ = select.select([self.source, self.wake], [], [])
        if self.wake in ready:
            return False
        try:
            chunk = os.read(self.source, READ_SIZE)
        except BlockingIOError:
            return True
        if not chunk:
            return False  # end of stream: the relay's reader reads it again
        self.decoder.receive_data(chunk)
        return True

    def _copy_frames(self) -> bool:
        while True:
            try:
                frame = self.decoder.next_frame()
            except RemoteProtocolError:
                return False  # left for the relay's reader, which reports it
            if not isinstance(frame, Frame):
                return True  # more bytes needed
            try:
                message = json.loads(frame.raw[frame.body_start:])
            except ValueError:
                message = None
            what = self.decide(message, frame)
            if what == _STOP:
                self._held = frame.raw
                return False
            self.copied.append((time.monotonic(), self.direction, frame))
            _write_all(self.sink, frame.raw)
            if what == _COPY_AND_STOP:
                return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])

"""Byte plumbing between pipes and the relay: asyncio transports, not stream coroutines.

Forwarding happens inside the read callback (parse frames, peek, write the original bytes), so a
message costs no task switch. Back-pressure is explicit: a reader pauses while the writer it feeds
is above its high-water mark. asyncio's own pipe transport reads 256 KiB at a time, which on glibc
costs an mmap/munmap per read (shared/bench/README.md); we cap reads at 64 KiB, and uvloop (used
when installed) reads into a preallocated buffer anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import anyio

from lspguard.errors import RemoteProtocolError, StdioError
from lspguard.protocol.framing import Frame, FrameDecoder
from lspguard.proxy.early import PIPE_SIZE, check_stdio, widen_pipe

if TYPE_CHECKING:
    from collections.abc import Callable

# check_stdio, widen_pipe and PIPE_SIZE live in early.py (needed before the event loop is
# imported); here too, for the callers that have always found them here.
__all__ = ["HIGH_WATER", "PIPE_SIZE", "READ_SIZE", "FrameReader", "PipeWriter", "check_stdio",
           "connect_pipes", "open_stdio", "widen_pipe"]

log = logging.getLogger(__name__)

HIGH_WATER = 1 << 20
READ_SIZE = 64 * 1024


class FrameReader:
    """Splits one direction's bytes into frames and hands each to `on_frame`, synchronously.

    A malformed frame is reported through `on_error` and skipped (the decoder resyncs to the next
    header): bad input is logged, never fatal to the session. `done` is set at end of stream.
    """

    def __init__(self, name: str, on_frame: Callable[[Frame], None],
                 on_error: Callable[[RemoteProtocolError], None],
                 max_frame_bytes: int) -> None:
        self.name = name
        self.on_frame = on_frame
        self.on_error = on_error
        self.decoder = FrameDecoder(max_frame_bytes)
        self.done = anyio.Event()
        self.bytes_in = 0
        self.frames_in = 0
        self.eof = False  # end of stream seen: a malformed tail then means "died mid-message"
        self.carry = b""  # bytes read before this reader existed (prerelay.py): fed first
        self._pause: Callable[[], None] = _noop
        self._resume: Callable[[], None] = _noop

    def attach(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """Give the reader the source transport's pause/resume for back-pressure."""
        self._pause, self._resume = pause, resume

    def pause(self) -> None:
        self._pause()

    def resume(self) -> None:
        self._resume()

    def feed(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if type(data) is bytes:  # whole frames are sliced off the chunk as they are
            pos, size, take = 0, len(data), self.decoder.take_whole
            while (frame := take(data, pos)) is not None:
                pos += len(frame.raw)
                self._deliver(frame)
                if pos == size:
                    return
            if pos:
                data = data[pos:]
        self.decoder.receive_data(data)
        self._drain()

    def feed_eof(self) -> None:
        if self.done.is_set():
            return
        self.eof = True
        self.decoder.receive_data(b"")
        self._drain()
        self.done.set()

    def _drain(self) -> None:
        next_frame = self.decoder.next_frame
        while True:
            try:
                frame = next_frame()
            except RemoteProtocolError as exc:
                dropped = self.decoder.resync()
                log.warning("%s: malformed frame, skipped %d bytes: %s", self.name, dropped, exc)
                self.on_error(exc)
                continue
            if not isinstance(frame, Frame):  # NEED_DATA or EOF
                return
            self._deliver(frame)

    def _deliver(self, frame: Frame) -> None:
        self.frames_in += 1
        try:
            self.on_frame(frame)
        except Exception:  # a bug of ours must not silently kill the transport
            log.exception("%s: error handling %r", self.name, frame)


class PipeWriter:
    """One writer per destination, so frames never interleave; pauses feeders when full.

    What is written before `bind` is kept and written first: the server's answer to an
    `initialize` the pre-relay (prerelay.py) forwarded can come before the editor's stdout is
    connected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.WriteTransport | None = None
        self.closed = anyio.Event()
        self.feeders: list[FrameReader] = []
        self._unbound: list[bytes] = []
        self.bytes_out = 0  # given to write: the watchdog tells the server's own I/O from ours

    def bind(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        early, self._unbound = self._unbound, []
        if transport.is_closing():  # the peer died before we got here: writes are dropped
            return
        try:
            transport.set_write_buffer_limits(high=HIGH_WATER)
        except RuntimeError:  # uvloop: closed between the check and now
            log.debug("%s: closed before it was bound", self.name)
            return
        if early:
            transport.writelines(early)

    def write(self, data: bytes) -> None:
        self.bytes_out += len(data)
        transport = self.transport
        if transport is None:
            self._unbound.append(data)
            return
        if transport.is_closing():
            log.debug("%s: dropped %d bytes written after close", self.name, len(data))
            return
        transport.write(data)

    async def aclose(self, within: float) -> None:
        """Close after the buffered bytes are written (transports flush on close); bounded."""
        self.close()
        if self.transport is not None:
            with anyio.move_on_after(within):
                await self.closed.wait()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # asyncio.Protocol callbacks for the write side
    def pause_writing(self) -> None:
        for feeder in self.feeders:
            feeder.pause()

    def resume_writing(self) -> None:
        for feeder in self.feeders:
            feeder.resume()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed.set()


class _ReadProtocol(asyncio.Protocol):
    def __init__(self, reader: FrameReader) -> None:
        self.reader = reader

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast("asyncio.ReadTransport", transport)  # uvloop's are not subclasses
        if hasattr(transport, "max_size"):  # asyncio's _UnixReadPipeTransport, not uvloop
            transport.max_size = READ_SIZE
        self.reader.attach(transport.pause_reading, transport.resume_reading)
        carry, self.reader.carry = self.reader.carry, b""
        if carry:  # before anything the transport reads
            self.reader.feed(carry)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.reader.feed_eof()


class _WriteProtocol(asyncio.Protocol):
    def __init__(self, writer: PipeWriter) -> None:
        self.writer = writer

    def pause_writing(self) -> None:
        self.writer.pause_writing()

    def resume_writing(self) -> None:
        self.writer.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer.connection_lost(exc)


async def open_stdio(reader: FrameReader, writer: PipeWriter) -> None:
    """Connect our stdin to `reader` and our stdout to `writer`.

    fd 1 is then pointed at stderr, so a stray print can never corrupt the LSP stream.
    """
    for fd in (0, 1):
        widen_pipe(fd)
    stdin = os.fdopen(os.dup(0), "rb", buffering=0)
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    try:
        await connect_pipes(reader, stdin, writer, stdout)
    except ValueError as exc:  # check_stdio() let through something the loop refuses
        raise StdioError(f"lspguard needs pipes or sockets on stdin/stdout: {exc}") from exc


async def connect_pipes(reader: FrameReader, source: BinaryIO, writer: PipeWriter,
                        sink: BinaryIO) -> None:
    """Bind `writer` to `sink`, then feed `reader` from `source` (both pipes, or sockets): first
    its `carry`, then what the transport reads.

    The sink first: a frame read from `source` can be answered before the next await returns
    (an early-spawned gopls answers `initialize` within milliseconds)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(lambda: _WriteProtocol(writer), sink)
    writer.bind(transport)
    await loop.connect_read_pipe(lambda: _ReadProtocol(reader), source)


def _noop(*_: Any) -> None:
    return None

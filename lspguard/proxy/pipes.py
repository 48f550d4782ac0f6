"""Byte plumbing between pipes and the relay: asyncio transports, not stream coroutines.

Forwarding happens inside the read callback (parse frames, peek, write the original bytes), so a
message costs no task switch. Back-pressure is explicit: a reader pauses while the writer it feeds
is above its high-water mark. asyncio's own pipe transport reads 256 KiB at a time, which on glibc
costs an mmap/munmap per read (shared/bench/README.md); we cap reads at 64 KiB, and uvloop (used
when installed) reads into a preallocated buffer anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import anyio

from lspguard.errors import RemoteProtocolError, StdioError
from lspguard.protocol.framing import Frame, FrameDecoder

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["HIGH_WATER", "READ_SIZE", "FrameReader", "PipeWriter", "check_stdio", "connect_pipes",
           "open_stdio", "widen_pipe"]

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
        if type(data) is bytes and (frame := self.decoder.take_whole(data)) is not None:
            self._deliver(frame)
            return
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
    """One writer per destination, so frames never interleave; pauses feeders when full."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.WriteTransport | None = None
        self.closed = anyio.Event()
        self.feeders: list[FrameReader] = []

    def bind(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        if transport.is_closing():  # the peer died before we got here: writes are dropped
            return
        try:
            transport.set_write_buffer_limits(high=HIGH_WATER)
        except RuntimeError:  # uvloop: closed between the check and now
            log.debug("%s: closed before it was bound", self.name)

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
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


def check_stdio() -> bool:
    """Raise StdioError unless stdin and stdout can carry a session; True if both are pipes or
    sockets. Those are what an editor gives; a terminal works too, but only with asyncio's own
    loop (libuv aborts the process on fds it does not expect), and epoll refuses regular files
    and /dev/null, which would leave the session waiting for input that never comes."""
    pipes = True
    for fd, name in ((0, "stdin"), (1, "stdout")):
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            raise StdioError(f"{name} is not open ({exc.strerror}): an editor starts lspguard "
                             "with pipes on stdin and stdout") from exc
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            continue
        if os.isatty(fd):
            pipes = False
            continue
        what = ("a regular file" if stat.S_ISREG(mode) else
                "a device that is not a terminal" if stat.S_ISCHR(mode) else "not a pipe")
        raise StdioError(f"{name} is {what}: lspguard speaks LSP over pipes or sockets on stdin "
                         "and stdout, as an editor starts it (to replay a recorded session, "
                         "use `lspguard replay`)")
    return pipes


PIPE_SIZE = 1024 * 1024


def widen_pipe(fd: int) -> None:
    """Grow a pipe's kernel buffer from 64 KiB to 1 MiB (Linux; the unprivileged maximum by
    default): a large message then crosses in a few wake-ups, not one per 64 KiB. Best effort:
    not a pipe, or not allowed, leaves it as it is."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None or not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, PIPE_SIZE)


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
    """Feed `reader` from `source` and bind `writer` to `sink` (both pipes, or sockets)."""
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: _ReadProtocol(reader), source)
    transport, _ = await loop.connect_write_pipe(lambda: _WriteProtocol(writer), sink)
    writer.bind(transport)


def _noop(*_: Any) -> None:
    return None

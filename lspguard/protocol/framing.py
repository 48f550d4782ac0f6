"""Sans-I/O LSP base-protocol framing (``Content-Length: N\\r\\n\\r\\n<N bytes>``).

Modelled on h11: the decoder does no I/O. Feed it bytes with ``receive_data`` (``b""`` means
end of stream) and pull frames with ``next_frame``, which returns a ``Frame`` or ``NEED_DATA``
(or ``EOF`` once the stream ended cleanly). Malformed input raises ``RemoteProtocolError`` with
what was wrong and the stream offset; ``resync`` then skips to the next plausible header so a
session can go on after logging it.

Frames keep their original bytes (``raw``) so the relay can forward exactly what it received.
"""

from __future__ import annotations

import enum
from typing import Final

from lspguard.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "EOF", "NEED_DATA", "Frame", "FrameDecoder", "encode_frame"]

DEFAULT_MAX_FRAME_BYTES: Final = 256 * 1024 * 1024
MAX_HEADER_BYTES: Final = 8 * 1024
_HEADER_END: Final = b"\r\n\r\n"
_CONTENT_LENGTH: Final = b"content-length"


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    EOF = "EOF"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = _Sentinel.NEED_DATA
EOF: Final = _Sentinel.EOF


class Frame:
    """One complete message: ``raw`` is the frame as received, ``body`` the JSON payload."""

    __slots__ = ("body_start", "offset", "raw")

    def __init__(self, raw: bytes, body_start: int, offset: int) -> None:
        self.raw = raw
        self.body_start = body_start
        self.offset = offset  # stream offset of the frame's first header byte

    @property
    def body(self) -> memoryview:
        return memoryview(self.raw)[self.body_start :]

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and (self.raw, self.body_start) == (
            other.raw,
            other.body_start,
        )

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        body = bytes(self.body[:60])
        return f"Frame(offset={self.offset}, body={body!r}{'...' if len(self.body) > 60 else ''})"


class FrameDecoder:
    """Incremental decoder for one direction of an LSP byte stream."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        # bytes while it holds one chunk as received (frames are sliced from it without a
        # bytearray round trip), a bytearray once chunks have to be joined
        self._buf: bytes | bytearray = b""
        # Once a header is parsed and its body is incomplete, the body's chunks are kept as
        # received and joined once when complete: growing a bytearray by 64 KiB reads and then
        # copying it out costs ~20x more per MiB (reallocations and fresh pages each time).
        self._parts: list[bytes] | None = None
        self._have = 0  # bytes in _parts
        self._consumed = 0  # stream offset of the current frame's (or _buf's) first byte
        self._body_start = -1  # >= 0 while the current frame's header is parsed
        self._length = 0
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return self._have if self._parts is not None else len(self._buf)

    def unconsumed(self) -> bytes:
        """Every byte received and not yet returned as a frame (a partial frame, header
        included), for another reader to go on from: lspguard's pre-relay hands it over."""
        if self._parts is not None:
            return b"".join(self._parts)
        return bytes(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes from the peer; ``b""`` marks the end of the stream."""
        if not data:
            self._eof = True
        elif self._parts is not None:
            self._parts.append(data if type(data) is bytes else bytes(data))
            self._have += len(data)
        elif not self._buf:
            self._buf = data if type(data) is bytes else bytes(data)
        elif type(self._buf) is bytes:
            self._buf = bytearray(self._buf)
            self._buf += data
        else:
            self._buf += data

    def take_whole(self, data: bytes, pos: int = 0) -> Frame | None:
        """Fast path: if nothing is buffered and `data[pos:]` begins with a whole frame with the
        lone `Content-Length` header (what one read of an interactive session holds, or each
        frame of a pipelined burst), return it without buffering: the frame's bytes are copied
        once (not at all when it is all of `data`). Else None, and the caller hands `data[pos:]`
        to `receive_data`."""
        if (self._buf or self._parts is not None or self._body_start >= 0
                or not data.startswith(b"Content-Length: ", pos)):
            return None
        end = data.find(_HEADER_END, pos + 16)
        digits = data[pos + 16:end]
        if end < 0 or not digits.isdigit():
            return None
        length = int(digits)
        stop = end + 4 + length
        if stop > len(data) or length > self.max_frame_bytes:
            return None
        raw = data if pos == 0 and stop == len(data) else data[pos:stop]
        frame = Frame(raw, end + 4 - pos, self._consumed)
        self._consumed += len(raw)
        return frame

    def next_frame(self) -> Frame | _Sentinel:
        """Return the next complete frame, NEED_DATA, or EOF; raise on malformed input."""
        if self._parts is not None:
            return self._next_from_parts()
        buf = self._buf
        if self._body_start < 0:
            end = buf.find(_HEADER_END)
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise RemoteProtocolError(
                        f"no end of header after {len(buf)} bytes: {_snippet(buf)}",
                        self._consumed,
                    )
                return self._end_or_need(buf)
            self._length = self._parse_headers(bytes(buf[:end]))
            self._body_start = end + len(_HEADER_END)
        total = self._body_start + self._length
        if len(buf) < total:
            if self._eof:
                raise self._cut_off(len(buf))
            # Collect the rest of the body as chunks (see __init__).
            self._parts, self._have = [buf if type(buf) is bytes else bytes(buf)], len(buf)
            self._buf = b""
            return NEED_DATA
        if total == len(buf):
            raw = buf if type(buf) is bytes else bytes(buf)
            self._buf = b""
        elif isinstance(buf, bytes):
            raw, self._buf = buf[:total], buf[total:]
        else:  # one copy, not two (a bytearray slice would copy first)
            with memoryview(buf) as view, view[:total] as part:
                raw = part.tobytes()
            del buf[:total]
        return self._emit(raw)

    def _next_from_parts(self) -> Frame | _Sentinel:
        parts, total = self._parts, self._body_start + self._length
        assert parts is not None
        if self._have < total:
            if self._eof:
                raise self._cut_off(self._have)
            return NEED_DATA
        extra = self._have - total
        rest = b""
        if extra:  # the last chunk also holds the start of what follows
            last = parts[-1]
            parts[-1], rest = last[: len(last) - extra], last[len(last) - extra :]
        raw = b"".join(parts)
        self._parts, self._have, self._buf = None, 0, rest
        return self._emit(raw)

    def _emit(self, raw: bytes) -> Frame:
        frame = Frame(raw, self._body_start, self._consumed)
        self._consumed += len(raw)
        self._body_start = -1
        return frame

    def _cut_off(self, have: int) -> RemoteProtocolError:
        return RemoteProtocolError(
            f"stream ended inside a frame body: have {have - self._body_start} of "
            f"{self._length} bytes",
            self._consumed,
        )

    def resync(self) -> int:
        """After an error, drop bytes up to the next ``Content-Length`` header; return how many."""
        if self._parts is not None:  # back to one buffer: resync is rare, simplicity wins
            self._buf, self._parts, self._have = b"".join(self._parts), None, 0
        buf = self._buf
        self._body_start = -1
        idx = bytes(buf[1:]).lower().find(_CONTENT_LENGTH)
        dropped = len(buf) if idx < 0 else idx + 1
        self._buf = bytes(buf[dropped:])
        self._consumed += dropped
        return dropped

    def _end_or_need(self, buf: bytes | bytearray) -> _Sentinel:
        if not self._eof:
            return NEED_DATA
        if buf.strip():
            raise RemoteProtocolError(
                f"stream ended inside a frame header: {_snippet(buf)}", self._consumed
            )
        return EOF

    def _parse_headers(self, block: bytes) -> int:
        # Fast path: the lone header vscode-jsonrpc, gopls and most servers send.
        if block.startswith(b"Content-Length: ") and block[16:].isdigit():
            fast = int(block[16:])
            if fast <= self.max_frame_bytes:
                return fast
        length: int | None = None
        for line in block.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                raise RemoteProtocolError(
                    f"header line without ':': {line[:80]!r}", self._consumed
                )
            if name.strip().lower() != _CONTENT_LENGTH:
                continue  # Content-Type and unknown headers are tolerated
            text = value.strip()
            if not text.isdigit():
                raise RemoteProtocolError(
                    f"Content-Length is not a non-negative integer: {text[:40]!r}", self._consumed
                )
            if length is not None and int(text) != length:
                raise RemoteProtocolError("conflicting Content-Length headers", self._consumed)
            length = int(text)
        if length is None:
            raise RemoteProtocolError(
                f"frame header without Content-Length: {block[:80]!r}", self._consumed
            )
        if length > self.max_frame_bytes:
            raise RemoteProtocolError(
                f"frame of {length} bytes exceeds the cap of {self.max_frame_bytes} bytes "
                "(proxy.max_frame_bytes)",
                self._consumed,
            )
        return length


def encode_frame(body: bytes) -> bytes:
    """Frame a JSON body for sending."""
    if not isinstance(body, bytes | bytearray):
        raise LocalProtocolError(f"frame body must be bytes, not {type(body).__name__}")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _snippet(buf: bytes | bytearray) -> str:
    head = bytes(buf[:60])
    return repr(head) + ("..." if len(buf) > 60 else "")

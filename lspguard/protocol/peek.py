"""Cheap look at a JSON-RPC message: its kind, id and method, nothing else.

The relay forwards original bytes; it only needs these three facts to keep the pending table.
msgspec decodes into a Struct with just those fields and skips (validates, but does not build)
the rest of the message: ~0.5 ms/MiB against ~2-4 ms/MiB for a full decode.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from lspguard.errors import RemoteProtocolError

__all__ = ["Kind", "Message", "decode_full", "encode", "params_of", "peek"]


class Kind(enum.Enum):
    REQUEST = "request"
    RESPONSE = "response"
    NOTIFICATION = "notification"


class Message(msgspec.Struct, gc=False):
    """The envelope fields of a JSON-RPC 2.0 message."""

    id: int | str | None = None
    method: str | None = None
    error: msgspec.Raw = msgspec.Raw()  # kept raw: only its presence matters here

    @property
    def kind(self) -> Kind:
        if self.method is None:
            return Kind.RESPONSE
        return Kind.NOTIFICATION if self.id is None else Kind.REQUEST

    @property
    def is_error(self) -> bool:
        return len(self.error) > 0 and bytes(self.error) != b"null"


_peek_decoder = msgspec.json.Decoder(Message)
_full_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def peek(body: bytes | memoryview) -> Message:
    """Read kind/id/method of one message body; raise RemoteProtocolError if it isn't one."""
    try:
        msg = _peek_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RemoteProtocolError(f"not a JSON-RPC message: {exc}") from None
    if msg.method is None and msg.id is None and not msg.is_error:
        raise RemoteProtocolError("JSON-RPC message with neither method nor id")
    return msg


def params_of(body: bytes | memoryview) -> dict[str, Any] | None:
    """The `params` object of a message, or None (absent, not an object, or not JSON)."""
    try:
        params = decode_full(body).get("params")
    except Exception:
        return None
    return params if isinstance(params, dict) else None


def decode_full(body: bytes | memoryview) -> Any:
    """Decode a whole message (only for the few messages lspguard must understand)."""
    try:
        return _full_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RemoteProtocolError(f"not valid JSON: {exc}") from None


def encode(message: Any) -> bytes:
    """Encode a message lspguard composes itself (not used for forwarded traffic)."""
    return _encoder.encode(message)

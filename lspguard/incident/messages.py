"""The session's ring of recent LSP messages as JSON lines, source text redacted by default.

Each line keeps the envelope (times, direction, generation, kind, id, method, size) and the
decoded message, passed through `lspguard.redact.redact_strict` (every string that is not
protocol structure) unless the user opted in to text. A body that is not JSON is recorded by
size only when redacting (it may be anything).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from lspguard.redact import redact_strict

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lspguard.incident.context import RecentMessage

__all__ = ["message_record", "messages_jsonl"]

_encoder = msgspec.json.Encoder()


def message_record(msg: RecentMessage, *, include_text: bool) -> dict[str, Any]:
    """One line of messages.jsonl."""
    record: dict[str, Any] = {
        "t_monotonic": msg.t_monotonic, "t_wall": msg.t_wall, "direction": msg.direction,
        "generation": msg.generation, "kind": msg.kind, "id": msg.id, "method": msg.method,
        "size": msg.size,
    }
    if msg.body is None:
        record["message"] = None
        record["omitted"] = "too large to keep"
        return record
    try:
        decoded = msgspec.json.decode(msg.body)
    except msgspec.DecodeError:
        record["message"] = None
        record["omitted"] = "not JSON"
        if include_text:
            record["raw"] = msg.body.decode("utf-8", "replace")
        return record
    record["message"] = decoded if include_text else redact_strict(decoded)
    return record


def messages_jsonl(messages: Iterable[RecentMessage], *, include_text: bool) -> bytes:
    """All of `messages` as JSON lines (oldest first, as the ring holds them)."""
    lines = [_encoder.encode(message_record(m, include_text=include_text)) for m in messages]
    return b"\n".join(lines) + (b"\n" if lines else b"")

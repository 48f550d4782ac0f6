"""The few LSP constants the proxy itself sends, without importing lsprotocol.

lsprotocol.types costs the proxy ~15 MB of RSS and ~1 s of start-up on a loaded machine; the relay
needs four error codes and one enum. tests/unit/protocol/test_codes.py pins them to
lsprotocol's values.
"""

from __future__ import annotations

import enum

__all__ = ["LSPErrorCodes", "MessageType"]


class LSPErrorCodes(enum.IntEnum):
    RequestFailed = -32803
    ServerCancelled = -32802
    ContentModified = -32801
    RequestCancelled = -32800


class MessageType(enum.IntEnum):
    Error = 1
    Warning = 2
    Info = 3
    Log = 4

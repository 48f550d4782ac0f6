"""lspguard's own copies of LSP constants equal lsprotocol's."""

from __future__ import annotations

from lsprotocol import types

from lspguard.protocol import codes


def test_codes_match_lsprotocol() -> None:
    for ours in codes.LSPErrorCodes:
        assert ours.value == types.LSPErrorCodes[ours.name].value
    for kind in codes.MessageType:
        assert kind.value == types.MessageType[kind.name].value

"""peek: kind/id/method of a message without decoding the rest, and clear errors."""

from __future__ import annotations

import pytest

from lspguard.errors import RemoteProtocolError
from lspguard.protocol.peek import Kind, peek


@pytest.mark.parametrize(
    ("body", "kind", "id_", "method", "is_error"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}', Kind.REQUEST, 1,
         "initialize", False),
        (b'{"jsonrpc":"2.0","id":"a","result":{"x":[1,2]}}', Kind.RESPONSE, "a", None, False),
        (b'{"jsonrpc":"2.0","id":3,"result":null}', Kind.RESPONSE, 3, None, False),
        (b'{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"no"}}', Kind.RESPONSE, 4,
         None, True),
        (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}',
         Kind.RESPONSE, None, None, True),
        (b'{"jsonrpc":"2.0","method":"initialized","params":{}}', Kind.NOTIFICATION, None,
         "initialized", False),
        (b'{"params":{"deep":{"id":99,"method":"x"}},"method":"m"}', Kind.NOTIFICATION, None,
         "m", False),
    ],
)
def test_peek(body: bytes, kind: Kind, id_: object, method: str | None, is_error: bool) -> None:
    msg = peek(body)
    assert (msg.kind, msg.id, msg.method, msg.is_error) == (kind, id_, method, is_error)


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'{"id":1.5,"result":1}', b"{}",
                                  b'{"id":1,"method":7}'])
def test_peek_rejects_non_messages_clearly(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        peek(body)

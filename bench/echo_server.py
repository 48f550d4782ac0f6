#!/usr/bin/env python3
"""Fake LSP server over stdio, for benchmarking proxies.

Speaks Content-Length framed JSON-RPC on stdin/stdout:
  * ``initialize``  -> minimal InitializeResult
  * ``shutdown``    -> null
  * ``exit``        -> process exits (code 0 after shutdown, 1 otherwise)
  * ``textDocument/completion`` -> a small fixed CompletionList (10 items, ~1 KB)
  * any other request -> ``{"payload": "xxx..."}`` with ``params.size`` bytes of payload;
    without a usable ``size`` (no params, array params, no/invalid ``size``) the payload is
    empty: ``{"payload": ""}``
  * notifications (and stray responses) are parsed and ignored.

Stdlib only, blocking I/O, one message at a time: the server is deliberately
cheap so that proxy overhead is visible.
"""
import contextlib
import json
import sys

INIT_RESULT = (
    b'{"capabilities":{"textDocumentSync":{"openClose":true,"change":2},'
    b'"completionProvider":{"triggerCharacters":["."]}},'
    b'"serverInfo":{"name":"bench-echo-server","version":"1"}}'
)

# What a server might answer while the user types: small, constant, realistic in shape.
COMPLETION_RESULT = (
    b'{"isIncomplete":false,"items":['
    + b",".join(
        b'{"label":"%s","kind":%d,"detail":"func(x int) string","sortText":"%05d",'
        b'"filterText":"%s","insertTextFormat":1}' % (name, kind, i, name)
        for i, (name, kind) in enumerate([
            (b"Println", 3), (b"Printf", 3), (b"Sprintf", 3), (b"Errorf", 3), (b"Fprintln", 3),
            (b"Stringer", 8), (b"Sprint", 3), (b"Print", 3), (b"Fprintf", 3), (b"Sscanf", 3)]))
    + b"]}"
)


def request_size(params):
    """`params.size` if it is a non-negative integer, else 0."""
    size = params.get("size", 0) if isinstance(params, dict) else 0
    try:
        return max(0, int(size))
    except (TypeError, ValueError):
        return 0


def read_message(rd):
    """Return one JSON-RPC body (bytes), or None on EOF."""
    length = None
    while True:
        line = rd.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        sys.stderr.write("echo_server: frame without Content-Length\n")
        sys.exit(2)
    body = rd.read(length)
    return body if len(body) == length else None


def main():
    rd, wr = sys.stdin.buffer, sys.stdout.buffer
    payloads = {}  # size -> encoded result, cached (sizes are few)
    shutdown = False
    while (body := read_message(rd)) is not None:
        msg = json.loads(body)
        method = msg.get("method")
        if "id" not in msg or method is None:  # notification or stray response
            if method == "exit":
                sys.exit(0 if shutdown else 1)
            continue
        if method == "initialize":
            result = INIT_RESULT
        elif method == "shutdown":
            shutdown, result = True, b"null"
        elif method == "textDocument/completion":
            result = COMPLETION_RESULT
        else:
            size = request_size(msg.get("params"))
            result = payloads.get(size)
            if result is None:
                result = payloads[size] = b'{"payload":"' + b"x" * size + b'"}'
        out = b'{"jsonrpc":"2.0","id":%s,"result":%s}' % (
            json.dumps(msg["id"]).encode(), result)
        wr.write(b"Content-Length: %d\r\n\r\n" % len(out))
        wr.write(out)
        wr.flush()


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        main()

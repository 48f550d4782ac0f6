"""The pre-relay (proxy/prerelay.py) over real pipes, in-process: what it copies, where it stops.

What must hold: it copies the editor's `initialize` and nothing else the editor sends; from the
server, notifications and that initialize's answer, and it stops before anything the relay must
read first (a server request). It stops at a frame boundary when told: the bytes it read and did
not copy, a partial frame included, are handed over exactly, and no thread outlives `stop`.
"""

from __future__ import annotations

import json
import os
import select
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lspguard.protocol.framing import encode_frame
from lspguard.proxy.prerelay import EDITOR, SERVER, Handover, PreRelay

pytestmark = pytest.mark.timeout(20)

DEADLINE = 5.0


def frame(message: dict[str, Any]) -> bytes:
    return encode_frame(json.dumps(message).encode())


INITIALIZE = frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {"processId": None, "rootUri": None, "capabilities": {}}})
ANSWER = frame({"jsonrpc": "2.0", "id": 1, "result": {"capabilities": {}}})
LOG = frame({"jsonrpc": "2.0", "method": "window/logMessage",
             "params": {"type": 3, "message": "starting"}})
SERVER_REQUEST = frame({"jsonrpc": "2.0", "id": 1, "method": "workspace/configuration",
                        "params": {"items": []}})
INITIALIZED = frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})


@dataclass
class Wires:
    """Both sides' ends of the four pipes around a pre-relay."""

    prerelay: PreRelay
    editor_writes: int  # what the editor sends (the pre-relay's stdin)
    editor_reads: int  # what reaches the editor (its stdout)
    server_reads: int  # what reaches the server (its stdin)
    server_writes: int  # what the server sends (its stdout)
    server_writes_peer: int  # the pre-relay's end of that pipe
    closed: set[int]

    def close(self, fd: int) -> None:
        os.close(fd)
        self.closed.add(fd)

    def read(self, fd: int, size: int) -> bytes:
        """Exactly `size` bytes from `fd`, within the deadline."""
        got = b""
        while len(got) < size:
            ready, _, _ = select.select([fd], [], [], DEADLINE)
            assert ready, f"only {len(got)} of {size} bytes arrived: {got!r}"
            got += os.read(fd, size - len(got))
        return got

    def nothing_more(self, fd: int) -> bool:
        ready, _, _ = select.select([fd], [], [], 0.05)
        return not ready


@pytest.fixture
def wires() -> Iterator[Wires]:
    editor_in_r, editor_in_w = os.pipe()
    editor_out_r, editor_out_w = os.pipe()
    server_in_r, server_in_w = os.pipe()
    server_out_r, server_out_w = os.pipe()
    prerelay = PreRelay(editor_in_r, editor_out_w, server_in_w, server_out_r, 1 << 20)
    prerelay.start()
    try:
        wired = Wires(prerelay, editor_in_w, editor_out_r, server_in_r, server_out_w,
                      server_out_r, set())
        yield wired
    finally:
        prerelay.stop()
        for fd in {editor_in_r, editor_in_w, editor_out_r, editor_out_w, server_in_r,
                   server_in_w, server_out_r, server_out_w} - wired.closed:
            os.close(fd)


def stop(wires: Wires) -> Handover:
    handover = wires.prerelay.stop()
    assert not [t for t in (wires.prerelay._editor, wires.prerelay._server) if t.is_alive()]
    return handover


def test_the_first_round_trip_is_copied_and_handed_over_in_order(wires: Wires) -> None:
    os.write(wires.editor_writes, INITIALIZE)
    assert wires.read(wires.server_reads, len(INITIALIZE)) == INITIALIZE
    os.write(wires.server_writes, LOG + ANSWER)
    assert wires.read(wires.editor_reads, len(LOG + ANSWER)) == LOG + ANSWER
    os.write(wires.server_writes, LOG)  # after the answer: the relay's
    handover = stop(wires)
    assert [(d, f.raw) for _, d, f in handover.copied] == [
        (EDITOR, INITIALIZE), (SERVER, LOG), (SERVER, ANSWER)]
    times = [at for at, _, _ in handover.copied]
    assert times == sorted(times)
    assert (handover.editor_rest, handover.server_rest) == (b"", b"")
    assert wires.nothing_more(wires.editor_reads)  # the late log stays in the pipe, unread


def test_the_editor_side_copies_initialize_only(wires: Wires) -> None:
    os.write(wires.editor_writes, INITIALIZE + INITIALIZED[:10])
    assert wires.read(wires.server_reads, len(INITIALIZE)) == INITIALIZE
    handover = stop(wires)
    assert wires.nothing_more(wires.server_reads)
    assert handover.editor_rest == INITIALIZED[:10]  # the partial frame, to the relay's reader


def test_an_editor_that_begins_otherwise_is_left_to_the_relay(wires: Wires) -> None:
    os.write(wires.editor_writes, INITIALIZED)
    handover = wires.prerelay._editor
    handover.join(DEADLINE)
    assert not handover.is_alive(), "the editor side should stop at a frame it does not copy"
    assert wires.nothing_more(wires.server_reads)
    assert stop(wires).editor_rest == INITIALIZED


def test_a_server_request_stops_the_copying_before_it(wires: Wires) -> None:
    os.write(wires.editor_writes, INITIALIZE)
    wires.read(wires.server_reads, len(INITIALIZE))
    os.write(wires.server_writes, LOG + SERVER_REQUEST + ANSWER)
    assert wires.read(wires.editor_reads, len(LOG)) == LOG
    wires.prerelay._server.join(DEADLINE)
    assert wires.nothing_more(wires.editor_reads)
    handover = stop(wires)
    assert [f.raw for _, _, f in handover.copied] == [INITIALIZE, LOG]
    assert handover.server_rest == SERVER_REQUEST + ANSWER  # in order, for the relay


def test_an_answer_to_another_id_is_not_copied(wires: Wires) -> None:
    os.write(wires.server_writes, ANSWER)  # no initialize was copied: nobody asked
    wires.prerelay._server.join(DEADLINE)
    assert wires.nothing_more(wires.editor_reads)
    assert stop(wires).server_rest == ANSWER


def test_a_malformed_frame_is_left_for_the_relays_reader(wires: Wires) -> None:
    garbage = b"Content-Length: nope\r\n\r\n{}"
    os.write(wires.server_writes, LOG + garbage)
    assert wires.read(wires.editor_reads, len(LOG)) == LOG
    wires.prerelay._server.join(DEADLINE)
    assert stop(wires).server_rest == garbage


def test_stop_at_any_moment_hands_over_a_partial_frame_exactly(wires: Wires) -> None:
    os.write(wires.editor_writes, INITIALIZE)
    wires.read(wires.server_reads, len(INITIALIZE))
    os.write(wires.server_writes, ANSWER[:25])  # the answer's header and a bit of its body
    handover = stop(wires)
    assert [f.raw for _, _, f in handover.copied] == [INITIALIZE]
    # Read before the stop or not: handed over, or still in the pipe for the relay to read.
    left_in_pipe = b""
    if len(handover.server_rest) < 25:
        left_in_pipe = wires.read(wires.server_writes_peer, 25 - len(handover.server_rest))
    assert handover.server_rest + left_in_pipe == ANSWER[:25]
    assert wires.nothing_more(wires.editor_reads)


def test_stop_with_nothing_sent_ends_both_threads(wires: Wires) -> None:
    handover = stop(wires)
    assert handover == Handover()
    assert stop(wires) is handover  # idempotent


def test_end_of_stream_ends_the_copying(wires: Wires) -> None:
    """The editor closes stdin, the server exits: each side's thread ends by itself."""
    os.write(wires.server_writes, LOG + ANSWER[:25])
    assert wires.read(wires.editor_reads, len(LOG)) == LOG
    wires.close(wires.editor_writes)
    wires.close(wires.server_writes)
    for pump in (wires.prerelay._editor, wires.prerelay._server):
        pump.join(DEADLINE)
        assert not pump.is_alive(), f"{pump.name} still runs after end of stream"
    handover = stop(wires)
    assert [f.raw for _, _, f in handover.copied] == [LOG]
    assert handover.server_rest == ANSWER[:25]  # the relay's reader reports the cut-off frame

"""The relay's routing in-process: frames in, bytes out, no subprocess.

A stub backend and a stub editor pipe record what the relay writes; a regression shows as a
diff of bytes, not as a timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from lspguard.config.model import Config
from lspguard.protocol.framing import Frame, FrameDecoder, encode_frame
from lspguard.proxy.lifecycle import Phase
from lspguard.proxy.relay import Relay

pytestmark = pytest.mark.timeout(10)


@dataclass
class Sink:
    """Stands in for a PipeWriter (the editor) or a Backend (the server): records bytes."""

    out: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.out.append(data)

    send = write

    def messages(self) -> list[dict[str, Any]]:
        decoder = FrameDecoder(1 << 20)
        decoder.receive_data(b"".join(self.out))
        found = []
        while isinstance(frame := decoder.next_frame(), Frame):
            found.append(json.loads(bytes(frame.body)))
        return found


class TestRelay(Relay):
    __test__ = False  # not a test class: a relay with its session's callbacks recorded

    def __init__(self) -> None:
        super().__init__(Config())
        self.ended: list[str] = []
        self.server, self.editor = Sink(), Sink()
        self.backend = self.server  # type: ignore[assignment]
        self.client_out = self.editor  # type: ignore[assignment]
        self.generation = self.live_generation = 1
        self.lifecycle.to(Phase.INITIALIZING)

    def end(self, reason: str) -> None:
        self.ended.append(reason)


def frame(message: dict[str, Any]) -> Frame:
    raw = encode_frame(json.dumps(message).encode())
    decoder = FrameDecoder(1 << 20)
    decoder.receive_data(raw)
    out = decoder.next_frame()
    assert isinstance(out, Frame)
    return out


def request(id_: Any, method: str, params: Any = None) -> Frame:
    return frame({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})


def test_editor_messages_go_on_byte_for_byte_and_are_booked() -> None:
    r = TestRelay()
    hover = request(7, "textDocument/hover", {"position": {"line": 1, "character": 2}})
    r._from_client(hover)
    assert r.server.out == [hover.raw]  # the original bytes, not a re-encoding
    assert [p.method for p in r.pending] == ["textDocument/hover"]
    answer = frame({"jsonrpc": "2.0", "id": 7, "result": {"contents": "x"}})
    r._from_server(1, answer)
    assert r.editor.out == [answer.raw] and not list(r.pending)


def test_an_answer_nobody_asked_for_is_dropped() -> None:
    r = TestRelay()
    r._from_server(1, frame({"jsonrpc": "2.0", "id": 99, "result": None}))
    assert r.editor.out == []


def test_a_new_generations_request_ids_are_remapped_and_restored() -> None:
    r = TestRelay()
    r.generation = r.live_generation = 2
    r._from_server(2, request(1, "workspace/configuration", {"items": []}))
    (sent,) = r.editor.messages()
    assert sent["id"] == "g2:1"  # a new process counts from 1 again
    r._from_client(frame({"jsonrpc": "2.0", "id": "g2:1", "result": [{}]}))
    (back,) = r.server.messages()
    assert back == {"jsonrpc": "2.0", "id": 1, "result": [{}]}


def test_a_condemned_generation_reaches_the_editor_no_more() -> None:
    r = TestRelay()
    r.live_generation = 0  # a restart was decided
    r._from_server(1, frame({"jsonrpc": "2.0", "method": "window/logMessage",
                             "params": {"type": 3, "message": "late"}}))
    assert r.editor.out == []


def test_during_a_restart_editor_messages_are_held_in_order_then_released() -> None:
    r = TestRelay()
    r.lifecycle.to(Phase.RESTARTING)
    note = frame({"jsonrpc": "2.0", "method": "textDocument/didSave",
                  "params": {"textDocument": {"uri": "file:///a.go"}}})
    hover = request(8, "textDocument/hover", {})
    r._from_client(note)
    r._from_client(hover)
    assert r.server.out == [] and len(r.held) == 2
    r.lifecycle.to(Phase.RUNNING)
    r.release_held()
    assert r.server.out == [note.raw, hover.raw]


def test_a_held_request_past_its_deadline_is_answered() -> None:
    r = TestRelay()
    r.lifecycle.to(Phase.RESTARTING)
    r._from_client(request(9, "textDocument/hover", {}))
    _, _, since = r.held[0]
    r.expire_held(since + 1.0)
    assert r.editor.out == []
    r.expire_held(since + r.config.watchdog.deadline_for("textDocument/hover") + 0.1)
    (answer,) = r.editor.messages()
    assert answer["id"] == 9 and answer["error"]["code"] == -32801
    assert not r.held


def test_shutdown_and_exit_while_restarting_are_answered_by_the_proxy() -> None:
    r = TestRelay()
    r.lifecycle.to(Phase.RESTARTING)
    r._from_client(request(10, "shutdown"))
    r._from_client(frame({"jsonrpc": "2.0", "method": "exit"}))
    (answer,) = r.editor.messages()
    assert answer == {"jsonrpc": "2.0", "id": 10, "result": None}
    assert r.shutdown_requested and r.exit_received and r.ended
    assert r.server.out == []


def test_garbage_from_the_editor_is_reported_and_dropped() -> None:
    r = TestRelay()
    r._from_client(frame({"not": "json-rpc"}))  # peek refuses it
    r._from_client(request(11, "textDocument/hover", {}))
    assert r.protocol_errors["client"] == 1
    assert len(r.server.out) == 1  # the session goes on

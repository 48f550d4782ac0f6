"""The relay's routing in-process: frames in, bytes out, no subprocess.

A stub backend and a stub editor pipe record what the relay writes; a regression shows as a
diff of bytes, not as a timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from lspguard.causes.verdict import Verdict
from lspguard.config.model import Config
from lspguard.protocol.framing import Frame, FrameDecoder, encode_frame
from lspguard.protocol.peek import Message
from lspguard.proxy.lifecycle import Lifecycle, Phase
from lspguard.proxy.mirror import DOCUMENT_METHODS
from lspguard.proxy.prerelay import EDITOR, SERVER
from lspguard.proxy.relay import Relay
from lspguard.proxy.routes import EDITOR_ROUTES, SERVER_ROUTES, Down

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
    __test__ = False  # not a test class: a relay whose host (the session) is recorded

    def __init__(self) -> None:
        self.host_calls = FakeHost()
        super().__init__(Config(), Lifecycle(), self.host_calls)
        self.server, self.editor = Sink(), Sink()
        self.backend = self.server  # type: ignore[assignment]
        self.client_out = self.editor  # type: ignore[assignment]
        self.generation = self.live_generation = 1
        self.lifecycle.to(Phase.INITIALIZING)

    @property
    def ended(self) -> list[str]:
        return self.host_calls.ended


@dataclass
class FakeHost:
    """The session's side of RelayHost, recorded."""

    ended: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    while_waiting: list[tuple[Any, str | None]] = field(default_factory=list)
    changes: int = 0

    def end(self, reason: str) -> None:
        self.ended.append(reason)

    def report(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    def answer_while_waiting(self, frame: Frame, msg: Message) -> None:
        self.while_waiting.append((msg.id, msg.method))

    def changed(self) -> None:
        self.changes += 1


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


def test_the_relays_flags_are_derived_from_the_phase() -> None:
    relay = TestRelay()
    life = relay.lifecycle
    assert (relay.recovering, relay.degraded) == (False, None)
    relay.degraded_reason = "it failed 4 times"
    life.to(Phase.RESTARTING)
    assert relay.recovering and relay.degraded is None
    life.to(Phase.DEGRADED)
    assert not relay.recovering and relay.degraded == "it failed 4 times"
    life.to(Phase.RESTARTING)
    life.resume(editor_ready=True)
    assert life.phase is Phase.RUNNING and relay.degraded is None


def did_open(uri: str, text: str = "package a\n") -> Frame:
    return frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "go", "version": 1, "text": text}}})


def test_the_bytes_go_on_before_the_books_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward first: a keystroke reaches the server even if its book-keeping fails."""
    r = TestRelay()

    def broken(*_: object) -> None:
        raise RuntimeError("book-keeping bug")

    monkeypatch.setattr(r.mirror, "on_configuration", broken)
    note = frame({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                  "params": {"settings": {}}})
    with pytest.raises(RuntimeError):
        r._from_client(note)
    assert r.server.out == [note.raw]


def test_every_document_method_keeps_its_state_for_the_next_server() -> None:
    assert {m for m, route in EDITOR_ROUTES.items() if route.keeps_state} == \
        DOCUMENT_METHODS | {"workspace/didChangeConfiguration"}
    assert EDITOR_ROUTES["shutdown"].when_down is Down.ANSWER_NULL
    assert EDITOR_ROUTES["exit"].when_down is Down.END
    assert [m for m, route in SERVER_ROUTES.items() if route.rewrites] == \
        ["client/registerCapability"]


def test_while_waiting_requests_go_to_the_wait_and_documents_to_the_mirror() -> None:
    r = TestRelay()
    r.lifecycle.to(Phase.WAITING)
    r._from_client(did_open("file:///w.go", "package w\n"))
    r._from_client(request(12, "textDocument/hover", {}))
    r._from_client(request(13, "shutdown"))
    assert r.server.out == []
    assert r.host_calls.while_waiting == [(None, "textDocument/didOpen"),
                                          (12, "textDocument/hover")]
    assert [d.text for d in r.mirror.documents()] == ["package w\n"]
    assert r.editor.messages() == [{"jsonrpc": "2.0", "id": 13, "result": None}]


def test_degraded_requests_fail_naming_why_and_documents_are_kept() -> None:
    r = TestRelay()
    r.lifecycle.to(Phase.RESTARTING)
    r._from_client(did_open("file:///d.go"))
    r._from_client(request(14, "textDocument/hover", {}))
    r.degrade("gopls is not running: it failed 4 times")
    assert r.backend is None and r.lifecycle.phase is Phase.DEGRADED
    assert len(r.held) == 2  # released by the caller, once it told the user
    r.release_held()
    (answer,) = r.editor.messages()
    assert answer["id"] == 14 and "it failed 4 times" in answer["error"]["message"]
    assert [d.uri for d in r.mirror.documents()] == ["file:///d.go"]
    assert not r.held and r.server.out == []


def test_held_messages_released_into_a_wait_are_answered_there() -> None:
    r = TestRelay()
    r.lifecycle.to(Phase.RESTARTING)
    r._from_client(request(15, "textDocument/codeAction", {}))
    r.lifecycle.to(Phase.WAITING)
    r.release_held()
    assert r.host_calls.while_waiting == [(15, "textDocument/codeAction")]
    assert r.server.out == []


def test_the_server_notification_goes_on_and_progress_is_booked() -> None:
    r = TestRelay()
    begin = frame({"jsonrpc": "2.0", "method": "$/progress",
                   "params": {"token": "t1", "value": {"kind": "begin", "title": "Loading"}}})
    r._from_server(1, begin)
    assert r.editor.out == [begin.raw]
    assert [token for token, _ in r.effects.open_progress.values()] == ["t1"]


def test_a_registration_the_editor_holds_is_answered_here() -> None:
    r = TestRelay()
    reg = {"id": "w1", "method": "workspace/didChangeWatchedFiles", "registerOptions": {}}
    r._from_server(1, request(3, "client/registerCapability", {"registrations": [reg]}))
    r._from_client(frame({"jsonrpc": "2.0", "id": 3, "result": None}))
    r.server.out.clear()
    r._from_server(1, request(4, "client/registerCapability", {"registrations": [reg]}))
    assert r.server.messages() == [{"jsonrpc": "2.0", "id": 4, "result": None}]
    assert len(r.editor.messages()) == 1  # only the first one reached the editor


def phase_of(r: Relay) -> Phase:
    return r.lifecycle.phase


def _initialize() -> Frame:
    return request(1, "initialize", {"processId": None, "rootUri": "file:///w",
                                     "capabilities": {}})


def test_what_the_pre_relay_forwarded_is_booked_as_if_relayed_here() -> None:
    """The pre-relay (prerelay.py) forwarded the handshake before the relay existed: booked at
    its times, nothing is written again, and the editor counts as answered."""
    r = TestRelay()
    r.lifecycle = Lifecycle()  # STARTING: the editor's stdin is not connected yet
    answer = frame({"jsonrpc": "2.0", "id": 1, "result": {"capabilities": {"hoverProvider": True}}})
    log_message = frame({"jsonrpc": "2.0", "method": "window/logMessage",
                         "params": {"type": 3, "message": "hi"}})
    r.book_prerelayed([(100.0, EDITOR, _initialize()), (100.1, SERVER, log_message),
                       (100.25, SERVER, answer)])
    assert (r.server.out, r.editor.out) == ([], [])  # already on the other side
    assert not list(r.pending)
    assert r.lifecycle.phase is Phase.STARTING  # the session moves it, once the editor is in
    assert r.editor_ready()
    assert r.handshake.initialize_ms == pytest.approx(250.0)
    assert r.mirror.initialize_result == {"capabilities": {"hoverProvider": True}}
    assert r.mirror.initialize_params is not None  # a restart replays it
    assert r.latency.summary()["initialize"]["count"] == 1
    assert [entry[1] for entry in r.recent] == ["client->server", *["server->client"] * 2]
    assert r.client_reader.frames_in == 1


def test_an_initialize_still_unanswered_at_the_hand_over_is_answered_through_the_relay() -> None:
    r = TestRelay()
    r.lifecycle = Lifecycle()
    r.book_prerelayed([(100.0, EDITOR, _initialize())])
    assert not r.editor_ready()
    r.lifecycle.advance(Phase.STARTING, Phase.INITIALIZING)  # as the session does
    (waiting,) = list(r.pending)
    assert (waiting.method, waiting.started) == ("initialize", 100.0)  # the watchdog's clock
    answer = frame({"jsonrpc": "2.0", "id": 1, "result": {"capabilities": {}}})
    r._from_server(1, answer)
    assert r.editor.out == [answer.raw]  # not dropped as an answer nobody asked for
    assert phase_of(r) is Phase.RUNNING


def test_fail_pending_answers_the_requests_it_is_told_to_and_no_others() -> None:
    """The one place requests in flight are answered for the server: by generation, sparing
    the editor's initialize, the save path with an empty result."""
    r = TestRelay()
    r._from_client(_initialize())
    r._from_client(request(2, "textDocument/hover", {}))
    r.generation = r.live_generation = 2  # a later generation took over
    r._from_client(request(3, "textDocument/hover", {}))
    r._from_client(request(4, "textDocument/formatting", {}))
    r._from_server(2, request(5, "workspace/configuration", {"items": []}))
    r.editor.out.clear()
    assert r.fail_pending(-32801, "restarted", up_to_generation=1, spare_initialize=True) == 1
    assert r.editor.messages() == [{"jsonrpc": "2.0", "id": 2,
                                    "error": {"code": -32801, "message": "restarted"}}]
    r.editor.out.clear()
    assert r.fail_pending(-32803, lambda method: f"{method}: down",
                          empty_for={"textDocument/formatting"}) == 3
    assert {m["id"]: m.get("error", {}).get("message", m.get("result"))
            for m in r.editor.messages()} == {1: "initialize: down", 3: "textDocument/hover: down",
                                              4: []}
    assert [p.method for p in r.pending] == ["workspace/configuration"]  # the server's own


def test_the_editors_initialize_is_answered_with_a_new_generations_result() -> None:
    r = TestRelay()
    r._from_client(_initialize())
    r._from_client(request(2, "textDocument/hover", {}))
    r.answer_initialize({"capabilities": {"hoverProvider": True}})
    (sent,) = r.editor.messages()
    assert sent == {"jsonrpc": "2.0", "id": 1,
                    "result": {"capabilities": {"hoverProvider": True}}}
    assert r.editor_ready() and r.handshake.initialize_ms is not None
    assert [p.method for p in r.pending] == ["textDocument/hover"]
    r.answer_initialize({"capabilities": {}})  # none is in flight any more: nothing is sent
    assert len(r.editor.messages()) == 1


def test_what_a_dead_generation_left_open_is_ended_and_cleared() -> None:
    r = TestRelay()
    r._from_server(1, frame({"jsonrpc": "2.0", "method": "$/progress",
                             "params": {"token": "t", "value": {"kind": "begin", "title": "L"}}}))
    r._from_server(1, frame({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
                             "params": {"uri": "file:///a.go", "diagnostics": [{"x": 1}]}}))
    r.editor.out.clear()
    r.end_progress(1)
    r.clear_diagnostics(1)
    assert r.editor.messages() == [
        {"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "t",
                                                               "value": {"kind": "end"}}},
        {"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
         "params": {"uri": "file:///a.go", "diagnostics": []}}]
    r.editor.out.clear()
    r.end_progress(1)
    r.clear_diagnostics(1)  # each only once
    assert r.editor.out == []

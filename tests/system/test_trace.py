"""Trace files: the recorder never blocks and loses nothing silently; the reader is strict;
root maps and importers turn other people's logs into replayable traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from lspguard.errors import TraceError
from lspguard.trace.format import Trace, TraceEntry, TraceHeader
from lspguard.trace.importers import detect_format, import_log, parse_lsp_devtools
from lspguard.trace.reader import read_trace
from lspguard.trace.rootmap import RootMap
from lspguard.trace.writer import TraceWriter, write_trace

from ..conftest import TESTS_DIR
from ..rawclient import RawClient, reap

FIXTURES = TESTS_DIR / "fixtures"
ROOT = "file:///home/me/proj"
SOURCE = "package main\n\nfunc main() {}\n"


def body(message: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", **message}).encode()


def session_bodies() -> list[tuple[str, int, bytes]]:
    return [
        ("c2s", 1, body({"id": 1, "method": "initialize", "params": {
            "rootUri": ROOT, "workspaceFolders": [{"uri": ROOT, "name": "proj"}]}})),
        ("s2c", 1, body({"id": 1, "result": {"capabilities": {}}})),
        ("c2s", 1, body({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": f"{ROOT}/main.go", "languageId": "go", "version": 1, "text": SOURCE}}})),
        ("p2s", 1, body({"id": "lspguard-1", "method": "lspguard/ping"})),
        ("s2c", 1, body({"id": "lspguard-1", "error": {"code": -32601, "message": "nope"}})),
        ("p2c", 2, body({"id": 7, "error": {"code": -32801, "message": "restarted"}})),
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


async def record_all(writer: TraceWriter, items: list[tuple[str, int, bytes]]) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        for direction, gen, data in items:
            writer.record(direction, gen, memoryview(data))
            await anyio.lowlevel.checkpoint()
        await writer.aclose()
        tg.cancel_scope.cancel()


# ------------------------------------------------------------------------------ writer


@pytest.mark.parametrize("include_text", [False, True])
async def test_writer_round_trip(tmp_path: Path, include_text: bool) -> None:
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path, server_command=["gopls", "serve"], include_text=include_text,
                         clock=FakeClock())
    await record_all(writer, session_bodies())
    trace = read_trace(path)
    assert trace.header.workspace_folders == (ROOT,)
    assert trace.header.redacted is not include_text
    assert trace.header.server_command == ("gopls", "serve")
    assert [(e.dir, e.gen) for e in trace.entries] == [(d, g) for d, g, _ in session_bodies()]
    assert [e.t for e in trace.entries] == [0.25 * n for n in range(1, 7)]
    assert [e.line for e in trace.entries] == list(range(2, 8))
    text = trace.entries[2].msg["params"]["textDocument"]["text"]
    assert text == (SOURCE if include_text else f"<redacted {len(SOURCE)} chars>")
    assert trace.entries[2].msg["params"]["textDocument"]["uri"] == f"{ROOT}/main.go"
    assert (writer.written, writer.dropped, writer.invalid) == (6, 0, 0)
    assert path.stat().st_mode & 0o777 == 0o600


async def test_full_queue_drops_and_counts_and_marks_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path, server_command=["x"], max_queue=3, clock=FakeClock())
    items = session_bodies()
    for direction, gen, data in items:  # the writer task is not running: nothing drains
        writer.record(direction, gen, data)
    assert writer.dropped == 3
    await writer.aclose()
    trace = read_trace(path)
    assert [e.msg.get("id") for e in trace.entries] == [1, 1, None]
    assert [(g.dropped, g.line) for g in trace.gaps] == [(3, 5)]


async def test_byte_bound_and_recovery_after_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path, server_command=["x"], max_queue_bytes=200, clock=FakeClock())
    big = body({"method": "window/logMessage", "params": {"message": "x" * 500}})
    small = body({"method": "initialized", "params": {}})
    writer.record("s2c", 1, big)  # alone it exceeds the byte bound
    writer.record("c2s", 1, small)
    await writer.aclose()
    trace = read_trace(path)
    assert [g.dropped for g in trace.gaps] == [1]
    assert [e.method for e in trace.entries] == ["initialized"]
    assert trace.gaps[0].line < trace.entries[0].line  # the gap is where the message was


async def test_writer_survives_garbage_and_rejects_unknown_directions(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", server_command=["x"])
    with pytest.raises(ValueError, match="unknown trace direction 'sideways'"):
        writer.record("sideways", 1, b"{}")
    writer.record("c2s", 1, b"{not json")
    writer.record("c2s", 1, b"[1, 2]")
    writer.record("c2s", 1, body({"method": "initialized"}))
    await writer.aclose()
    assert (writer.invalid, writer.written) == (2, 1)
    assert [e.method for e in read_trace(tmp_path / "t.jsonl").entries] == ["initialized"]


async def test_cancelling_the_session_loses_no_message_the_writer_took(tmp_path: Path) -> None:
    """Regression: run() took a batch, then the session's task group was cancelled before the
    worker thread started; the batch was lost (the editor's `exit` was missing from traces)."""
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path, server_command=["x"])
    for direction, gen, data in session_bodies():
        writer.record(direction, gen, data)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        while writer.queued:  # until run() has taken the batch off the queue
            await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    await writer.aclose()
    assert len(read_trace(path).entries) == len(session_bodies())


def test_record_after_close_is_dropped_not_raised(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", server_command=["x"])
    anyio.run(writer.aclose)
    writer.record("c2s", 1, body({"method": "exit"}))
    assert writer.dropped == 1
    assert read_trace(tmp_path / "t.jsonl").entries == []


def test_bad_out_path_fails_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TraceWriter(tmp_path / "missing" / "t.jsonl", server_command=["x"])


# ------------------------------------------------------------------------------ reader

HEADER = json.dumps({"lspguard_trace": 1, "lspguard_version": "0.1.0", "created": "x",
                     "workspace_folders": [], "redacted": False, "server_command": ["gopls"]})
GOOD_ENTRY: dict[str, Any] = {"t": 0.5, "dir": "c2s", "gen": 1,
                              "msg": {"jsonrpc": "2.0", "method": "initialized"}}
GOOD = json.dumps(GOOD_ENTRY)


def entry(**changes: Any) -> str:
    """GOOD with some keys changed (None removes a key)."""
    obj = {**GOOD_ENTRY, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not None})


def header(**changes: Any) -> str:
    return json.dumps({**json.loads(HEADER), **changes})


def msg(**fields: Any) -> str:
    return entry(msg={"jsonrpc": "2.0", **fields})


@pytest.mark.parametrize(("text", "expected"), [
    ("", "line 1: empty file"),
    (GOOD + "\n", "line 1: missing trace header"),
    (header(lspguard_trace=2) + "\n", "line 1: unsupported trace version 2"),
    (header(redacted="no") + "\n", "header 'redacted' must be a bool"),
    (header(server_command="gopls") + "\n", "header 'server_command' must be a list"),
    (f"{HEADER}\n{GOOD}\n{GOOD[:40]}", "line 3: not valid JSON"),
    (f"{HEADER}\n{entry(dir='x2y')}\n", "line 2: unknown direction 'x2y'"),
    (f"{HEADER}\n{entry(gen='1')}\n", "line 2: 'gen' must be a non-negative integer"),
    (f"{HEADER}\n{entry(t=True)}\n", "line 2: 't' must be a non-negative number"),
    (f"{HEADER}\n{entry(t='0.5')}\n", "line 2: 't' must be a non-negative number"),
    (f"{HEADER}\n{GOOD}\n{entry(t=0.1)}\n", "line 3: 't' goes backwards"),
    (f"{HEADER}\n{GOOD}\n\n{GOOD}\n", "line 3: empty line"),
    (f"{HEADER}\n{entry(extra=1)}\n", "line 2: unexpected key 'extra'"),
    (f"{HEADER}\n{entry(gen=None)}\n", "line 2: missing 'gen'"),
    (f"{HEADER}\n{entry(msg=[1])}\n", "line 2: 'msg' must be a JSON-RPC message object"),
    (f"{HEADER}\n{msg(id=1.5, method='x')}\n", "line 2: msg.id must be an integer or a string"),
    (f"{HEADER}\n{msg(id=1)}\n", "line 2: msg is neither a request"),
    (f"{HEADER}\n{msg(id=1, error=3)}\n", "line 2: msg.error must be an object"),
    (f"{HEADER}\n{msg(method='x', params=3)}\n", "line 2: msg.params must be an object or"),
    (f"{HEADER}\n{msg(method=7)}\n", "line 2: msg.method must be a non-empty string"),
    (f"{HEADER}\n{json.dumps([GOOD_ENTRY])}\n", "line 2: expected a JSON object, got list"),
])
def test_malformed_traces_name_the_line_and_the_problem(tmp_path: Path, text: str,
                                                        expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TraceError) as err:
        read_trace(path)
    assert f"{path}: " in str(err.value)
    assert expected in str(err.value)


def test_truncated_last_line_says_so(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text(f"{HEADER}\n{GOOD}\n{GOOD[:-10]}", encoding="utf-8")
    with pytest.raises(TraceError, match=r"line 3: not valid JSON.*cut short"):
        read_trace(path)


def test_last_line_without_newline_is_fine_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f"{HEADER}\n{GOOD}", encoding="utf-8")
    assert [e.method for e in read_trace(path).entries] == ["initialized"]


def test_write_trace_round_trips(tmp_path: Path) -> None:
    header = TraceHeader("1", "now", (ROOT,), False, ("gopls",), imported_from="vscode")
    entries = [TraceEntry(0.0, "c2s", 1, {"jsonrpc": "2.0", "id": "a", "method": "m"}),
               TraceEntry(0.5, "s2c", 1, {"jsonrpc": "2.0", "id": "a", "result": [1]})]
    write_trace(Trace(header, entries), tmp_path / "t.jsonl")
    back = read_trace(tmp_path / "t.jsonl")
    assert back.header == header
    assert [(e.t, e.dir, e.msg) for e in back.entries] == [(e.t, e.dir, e.msg) for e in entries]


# ------------------------------------------------------------------------------ root map


def test_root_map_rewrites_uris_paths_and_keys_at_segment_boundaries() -> None:
    rmap = RootMap.parse(["file:///WORKSPACE=/tmp/my copy"])
    message = {
        "uri": "file:///WORKSPACE/main.go", "path": "/WORKSPACE/greet/greet.go",
        "text": "see file:///WORKSPACE/x.go and /WORKSPACE", "root": "file:///WORKSPACE",
        "other": ["/WORKSPACEX/a", "/home/WORKSPACE/a", "file:///WORKSPACE2"],
        "changes": {"file:///WORKSPACE/a.go": [{"newText": "x"}]}}
    assert rmap.apply(message) == {
        "uri": "file:///tmp/my%20copy/main.go", "path": "/tmp/my copy/greet/greet.go",
        "text": "see file:///tmp/my%20copy/x.go and /tmp/my copy", "root": "file:///tmp/my%20copy",
        "other": ["/WORKSPACEX/a", "/home/WORKSPACE/a", "file:///WORKSPACE2"],
        "changes": {"file:///tmp/my%20copy/a.go": [{"newText": "x"}]}}


def test_root_map_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="expected OLD=NEW"):
        RootMap.parse(["/just/a/path"])
    assert not RootMap.parse([])


# ------------------------------------------------------------------------------ importers


def test_vscode_output_channel_import() -> None:
    result = import_log(FIXTURES / "vscode_output_channel.log")
    assert result.format == "vscode"
    assert result.skipped == 3  # two [Info] lines and the separate [Error] block
    trace = result.trace
    assert trace.header.workspace_folders == ("file:///WORKSPACE",)
    assert trace.header.imported_from == "vscode"
    by_line = {e.line: e for e in trace.entries}
    assert by_line[2].msg["params"]["clientInfo"]["name"] == "Visual Studio Code"  # multi-line
    assert (by_line[51].dir, by_line[51].msg) == (
        "c2s", {"jsonrpc": "2.0", "id": 1, "result": [{"ui.semanticTokens": True}]})
    assert by_line[70].msg == {"jsonrpc": "2.0", "id": 2, "result": None}  # No result returned.
    assert by_line[118].msg["error"] == {"code": 0, "message": "column is beyond end of line"}
    assert by_line[140].msg["error"] == {
        "code": -32603, "message": "no package metadata for file file:///WORKSPACE/main.go"}
    assert by_line[152].msg == {"jsonrpc": "2.0", "id": 15, "method": "shutdown"}
    times = [e.t for e in trace.entries]
    assert times == sorted(times) and times[-1] == pytest.approx(7.003)  # across midnight
    assert by_line[97].t == pytest.approx(3.005)  # request time + "in 5ms"


def test_gopls_rpc_trace_import() -> None:
    result = import_log(FIXTURES / "gopls_rpc_trace.log")
    assert result.format == "gopls"
    entries = result.trace.entries
    methods = [e.method for e in entries if e.dir == "c2s" and e.kind != "response"]
    assert methods[:3] == ["initialize", "initialized", "textDocument/didOpen"]
    assert methods[-2:] == ["shutdown", "exit"]
    errors = [e for e in entries if "error" in e.msg]
    assert len(errors) == 1 and errors[0].dir == "s2c"
    assert errors[0].msg["error"]["message"] == "column is beyond end of line"
    answers = [e for e in entries if e.dir == "c2s" and e.kind == "response"]
    assert {a.msg["id"] for a in answers} == {1, 2}  # gopls's own requests, answered
    assert all(e.t >= 0 for e in entries) and entries[-1].t > 0.5


def test_lsp_devtools_import_infers_directions() -> None:
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"rootUri": ROOT}},
        {"jsonrpc": "2.0", "id": 1, "result": {"capabilities": {}}},
        {"jsonrpc": "2.0", "id": 1, "method": "workspace/configuration", "params": {"items": []}},
        {"jsonrpc": "2.0", "id": 1, "result": []},
        {"source": "server", "timestamp": "2026-01-01T10:00:02",
         "message": {"jsonrpc": "2.0", "method": "window/logMessage", "params": {}}},
    ]
    entries, _ = parse_lsp_devtools("\n".join(json.dumps(x) for x in lines))
    assert [e.dir for e in entries] == ["c2s", "s2c", "s2c", "c2s", "s2c"]
    with pytest.raises(TraceError, match="line 1: response to id 9 matches no request"):
        parse_lsp_devtools(json.dumps({"jsonrpc": "2.0", "id": 9, "result": None}))


def test_format_detection_and_bad_logs(tmp_path: Path) -> None:
    assert detect_format((FIXTURES / "gopls_rpc_trace.log").read_text()) == "gopls"
    assert detect_format((FIXTURES / "vscode_output_channel.log").read_text()) == "vscode"
    assert detect_format('{"jsonrpc": "2.0", "method": "x"}\n') == "lsp-devtools"
    assert detect_format("2024-05-01 10:00:00.123 [trace] Sending notification 'x'.") == "vscode"
    with pytest.raises(TraceError, match="not a log format"):
        detect_format("hello\nworld\n")
    cut = tmp_path / "cut.log"
    cut.write_text("[Trace - 10:00:00 AM] Sending request 'x - (1)'.\nParams: {\n    \"a\": \n")
    with pytest.raises(TraceError, match=r"cut.log: line 1: Params is not valid JSON"):
        import_log(cut)


def test_import_trace_cli(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "lspguard", "import-trace", str(FIXTURES / "gopls_rpc_trace.log"),
         "--out", str(out), "--root-map", "file:///WORKSPACE=/srv/ws"],
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "from a gopls log" in done.stdout
    trace = read_trace(out)
    assert trace.header.workspace_folders == ("file:///srv/ws",)
    assert "file:///srv/ws/main.go" in json.dumps([e.msg for e in trace.entries])
    bad = subprocess.run([sys.executable, "-m", "lspguard", "import-trace", str(__file__),
                          "--out", str(tmp_path / "x.jsonl")],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 3 and "not a log format" in bad.stderr


# ------------------------------------------------------------------------------ record


def test_record_without_a_command_says_how() -> None:
    done = subprocess.run([sys.executable, "-m", "lspguard", "record", "--out", "x.jsonl"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "give the server command after --" in done.stderr


@pytest.mark.parametrize("include_text", [False, True])
def test_record_subcommand_writes_the_session(tmp_path: Path, include_text: bool) -> None:
    out = tmp_path / "session.jsonl"
    server = [sys.executable, str(TESTS_DIR / "servers" / "fault_replay_server.py")]
    argv = [sys.executable, "-m", "lspguard", "record", "--out", str(out),
            *(["--include-text"] if include_text else []), "--", *server]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=tmp_path)
    client = RawClient(proc)
    try:
        client.initialize(tmp_path, timeout=20)
        uri = (tmp_path / "a.go").as_uri()
        client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "go", "version": 1, "text": SOURCE}}})
        client.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        client.wait_response(2, 20)
        client.send({"jsonrpc": "2.0", "method": "exit"})
        assert proc.wait(20) == 0
    finally:
        reap(proc)
    trace = read_trace(out)
    assert trace.header.redacted is not include_text
    assert trace.header.workspace_folders == (tmp_path.as_uri(),)
    client_side = [e.method for e in trace.entries if e.dir == "c2s" and e.kind != "response"]
    assert client_side == ["initialize", "initialized", "textDocument/didOpen", "shutdown", "exit"]
    assert {e.dir for e in trace.entries} >= {"c2s", "s2c"}
    opened = next(e for e in trace.entries if e.method == "textDocument/didOpen")
    text = opened.msg["params"]["textDocument"]["text"]
    assert text == (SOURCE if include_text else f"<redacted {len(SOURCE)} chars>")

"""Headless replay: same answers -> 0, different -> 1 with a readable diff, hang/crash -> 2 naming
the request within its deadline, bad input -> 3 naming the line; real gopls round trips."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lspguard.replay.cli import ReplayUsageError, parse_replay_args
from lspguard.replay.plan import Plan
from lspguard.replay.run import Deadlines, ReplayOptions, run_replay
from lspguard.trace.format import Trace, TraceEntry, TraceHeader
from lspguard.trace.reader import read_trace
from lspguard.trace.writer import write_trace

from ..conftest import SAMPLE, TESTS_DIR
from ..rawclient import RawClient, find_gopls, reap
from ..traces.record_corpus import SCENARIOS, recording_command, run_scenario

# The lsp_replay fixture, for this module only (projects get it through the pytest11 entry point).
pytest_plugins = ["lspguard.replay.pytest_plugin"]

HERE = TESTS_DIR
FAULT_SERVER = HERE / "servers" / "fault_replay_server.py"
CORPUS = sorted((HERE / "traces").glob("*.jsonl"))
GOPLS = find_gopls()
needs_gopls = pytest.mark.skipif(GOPLS is None, reason="gopls not installed (.ci/run does)")


def fault(mode: str = "normal", method: str = "textDocument/hover") -> list[str]:
    return [sys.executable, str(FAULT_SERVER), "--mode", mode, "--method", method]


def replay_cli(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lspguard", "replay", *args],
                          capture_output=True, text=True, timeout=timeout)


def report_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# ------------------------------------------------------------------ a recorded fault session


@pytest.fixture(scope="module")
def fault_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session recorded through lspguard against the fault server in normal mode:
    initialize, configuration answered with {"answer": 42}, didOpen, hover, definition, hover,
    shutdown, exit."""
    tmp = tmp_path_factory.mktemp("fault-trace")
    out = tmp / "fault.jsonl"
    env = {**os.environ, "LSPGUARD_STATE_DIR": str(tmp / "state"),
           "LSPGUARD_RUNTIME_DIR": str(tmp / "run"), "LSPGUARD_CONFIG_DIR": str(tmp / "cfg")}
    env.pop("LSPGUARD_CONFIG", None)
    proc = subprocess.Popen(recording_command(out, fault()), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, cwd=tmp)
    client = RawClient(proc)
    try:
        client.initialize(tmp, timeout=20)
        while True:  # the server holds everything until it has its configuration
            msg = client.read_message(20)
            assert msg is not None
            if msg.get("method") == "workspace/configuration":
                client.send({"jsonrpc": "2.0", "id": msg["id"], "result": [{"answer": 42}]})
                break
        uri = (tmp / "main.go").as_uri()
        client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "go", "version": 1, "text": "x"}}})
        for req_id, method in ((2, "textDocument/hover"), (3, "textDocument/definition"),
                               (4, "textDocument/hover"), (5, "shutdown")):
            client.send({"jsonrpc": "2.0", "id": req_id, "method": method, "params": {
                "textDocument": {"uri": uri}, "position": {"line": 0, "character": req_id}}})
            answer = client.wait_response(req_id, 20)
            assert "result" in answer, answer
        client.send({"jsonrpc": "2.0", "method": "exit"})
        assert proc.wait(20) == 0
    finally:
        reap(proc)
    return out


def test_fault_trace_was_recorded_with_both_sides(fault_trace: Path) -> None:
    trace = read_trace(fault_trace)
    assert trace.header.redacted is False
    client = [e for e in trace.entries if e.dir == "c2s"]
    assert [e.method for e in client if e.kind != "response"] == [
        "initialize", "initialized", "textDocument/didOpen", "textDocument/hover",
        "textDocument/definition", "textDocument/hover", "shutdown", "exit"]
    answers = {e.msg["id"]: e.msg["result"] for e in client if e.kind == "response"}
    assert answers == {"cfg-1": [{"answer": 42}], "progress-1": None}
    hovers = [e for e in trace.entries if e.dir == "s2c" and e.msg.get("id") == 2]
    assert hovers[0].msg["result"]["config"] == [{"answer": 42}]


def test_same_answers_exit_0(fault_trace: Path, tmp_path: Path) -> None:
    done = replay_cli(str(fault_trace), "--asap", "--json", str(tmp_path / "r.json"),
                      "--", *fault())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("lspguard replay: SAME (exit 0)")
    report = report_of(tmp_path / "r.json")
    assert report["complete"] is True and report["outcome"] == "same"
    assert [r["status"] for r in report["requests"]] == ["same"] * 5  # `data` (a pid) ignored
    assert report["server_requests"]["workspace/configuration"] == {"from the trace": 1}
    assert report["sent"] == report["client_messages"] == 8
    assert all(r["replay_ms"] is not None and r["recorded_ms"] is not None
               for r in report["requests"])


def test_same_through_the_guard(fault_trace: Path) -> None:
    done = replay_cli(str(fault_trace), "--asap", "--guard", "--quiet", "--", *fault())
    assert done.returncode == 0, done.stdout + done.stderr


def test_hang_exits_2_within_deadline_and_names_the_request(fault_trace: Path,
                                                              tmp_path: Path) -> None:
    deadline = 2.0
    options = ReplayOptions(server=fault("hang-on-method"), asap=True,
                            deadlines=Deadlines(30.0, {"textDocument/hover": deadline}))
    began = time.monotonic()
    report = run_replay(read_trace(fault_trace), options)
    assert time.monotonic() - began <= deadline + 1.0
    assert report.exit_code == 2 and not report.complete
    [hang] = report.hangs
    assert (hang.method, hang.id, hang.deadline_s) == ("textDocument/hover", 2, deadline)
    assert hang.line == next(e.line for e in read_trace(fault_trace).entries
                             if e.method == "textDocument/hover" and e.id == 2)
    statuses = {r.id: r.status for r in report.requests}
    assert statuses == {1: "same", 2: "hang", 3: "not_sent", 4: "not_sent", 5: "not_sent"}

    done = replay_cli(str(fault_trace), "--asap", "--timeout", "1", "--json",
                      str(tmp_path / "r.json"), "--", *fault("hang-on-method"))
    assert done.returncode == 2
    assert (f"HANG    textDocument/hover #2 (trace line {hang.line}) got no answer within its "
            "1 s deadline") in done.stdout
    assert report_of(tmp_path / "r.json")["hangs"][0]["method"] == "textDocument/hover"


def test_different_results_exit_1_with_a_readable_diff(fault_trace: Path, tmp_path: Path) -> None:
    done = replay_cli(str(fault_trace), "--asap", "--json", str(tmp_path / "r.json"),
                      "--", *fault("different-results", "textDocument/definition"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("lspguard replay: DIVERGENCE (exit 1)")
    assert ('result.method: recorded "textDocument/definition", replayed '
            '"TEXTDOCUMENT/DEFINITION"') in done.stdout
    assert "result.extra: only in the replay: [1, 2]" in done.stdout
    statuses = [r["status"] for r in report_of(tmp_path / "r.json")["requests"]]
    assert statuses == ["same", "same", "different", "same", "same"]


def test_crash_exits_2_with_the_servers_last_words(fault_trace: Path) -> None:
    done = replay_cli(str(fault_trace), "--asap", "--server",
                      *fault("crash-on-method", "textDocument/definition"))
    assert done.returncode == 2
    assert "CRASH   the server exit code 3 before the exit notification; outstanding: " \
           "textDocument/definition #3" in done.stdout
    assert "fault_replay_server: crashing on textDocument/definition" in done.stdout


def test_recorded_pacing_is_kept_and_asap_skips_it(fault_trace: Path, tmp_path: Path) -> None:
    trace = read_trace(fault_trace)
    last = max(i for i, e in enumerate(trace.entries) if e.method == "shutdown")
    shifted = [replace(e, t=e.t + 4.0) if i >= last else e for i, e in enumerate(trace.entries)]
    write_trace(Trace(trace.header, shifted), tmp_path / "slow.jsonl")
    paced = run_replay(read_trace(tmp_path / "slow.jsonl"),
                       ReplayOptions(server=fault(), speed=4.0))
    fast = run_replay(read_trace(tmp_path / "slow.jsonl"), ReplayOptions(server=fault(), asap=True))
    assert paced.exit_code == fast.exit_code == 0
    paced_at = {r.method: r.sent_at_s for r in paced.requests}["shutdown"]
    fast_at = {r.method: r.sent_at_s for r in fast.requests}["shutdown"]
    assert paced_at is not None and paced_at >= 1.0  # 4 s recorded / speed 4
    # asap skips the recorded gap (relative to the paced run: the machine may be loaded)
    assert fast_at is not None and fast_at < paced_at - 0.5


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("content", "expected"), [
    ('{"t": 0, "dir": "c2s", "gen": 1, "msg": {"method": "x"}}\n', "line 1: missing trace header"),
    (None, "line 3: not valid JSON"),  # truncated: the fault trace cut mid-line
    ("WRONG_DIR", "line 2: unknown direction 's2x'"),
    ("WRONG_TYPE", "line 2: 'gen' must be a non-negative integer, got '1'"),
])
def test_malformed_traces_exit_3_and_start_nothing(fault_trace: Path, tmp_path: Path,
                                                   content: str | None, expected: str) -> None:
    lines = fault_trace.read_text(encoding="utf-8").splitlines(keepends=True)
    if content is None:
        text = "".join(lines[:2]) + lines[2][:30]
    elif content == "WRONG_DIR":
        text = lines[0] + lines[1].replace('"dir":"c2s"', '"dir":"s2x"') + "".join(lines[2:])
    elif content == "WRONG_TYPE":
        text = lines[0] + lines[1].replace('"gen":1', '"gen":"1"') + "".join(lines[2:])
    else:
        text = content
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text, encoding="utf-8")
    marker = tmp_path / "server-started"
    done = replay_cli(str(bad), "--asap", "--", sys.executable, "-c",
                      f"open({str(marker)!r}, 'w')")
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{bad}: {expected}" in done.stderr
    assert not marker.exists()
    assert "SAME" not in done.stdout


def test_bad_arguments_and_unstartable_servers_exit_3(fault_trace: Path) -> None:
    assert replay_cli(str(fault_trace)).returncode == 3  # no server
    assert replay_cli(str(fault_trace), "--speed", "0", "--", "x").returncode == 3
    assert replay_cli(str(fault_trace), "--root-map", "nope", "--", "x").returncode == 3
    done = replay_cli(str(fault_trace), "--", "/nonexistent/server")
    assert done.returncode == 3 and "cannot start '/nonexistent/server'" in done.stdout
    done = replay_cli(str(fault_trace), "--guard", "--", "/nonexistent/server")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot start '/nonexistent/server'" in done.stderr
    done = replay_cli(str(fault_trace), "--cwd", "/nonexistent/dir", "--", sys.executable)
    assert done.returncode == 3
    assert "its working directory /nonexistent/dir does not exist" in done.stdout


# ------------------------------------------------------------------------ the command line


@pytest.mark.parametrize(("argv", "server", "asap", "json_to"), [
    (["t", "--", "gopls"], ["gopls"], False, None),
    (["t", "--asap", "--json", "--", "gopls", "serve"], ["gopls", "serve"], True, "-"),
    (["--asap", "t", "--json", "-", "--", "gopls"], ["gopls"], True, "-"),
    (["t", "--json", "r.json", "--", "gopls", "--asap", "--"], ["gopls", "--asap", "--"], False,
     "r.json"),  # after --, everything is the server's
    (["t", "--json=r.json", "--asap", "--server", "gopls", "-rpc.trace"],
     ["gopls", "-rpc.trace"], True, "r.json"),  # the deprecated form, used as it must be
    (["t", "--server", "--", "gopls"], ["gopls"], False, None),
])
@pytest.mark.timeout(10)
def test_replay_command_line(argv: list[str], server: list[str], asap: bool,
                             json_to: str | None) -> None:
    args = parse_replay_args(argv)
    assert (args.trace, args.server, args.asap, args.json) == ("t", server, asap, json_to)
    assert args.deprecated_server == ("--server" in argv)


@pytest.mark.parametrize(("argv", "message"), [
    (["t", "--server", "gopls", "--asap", "--json"],
     "it would pass '--asap' to the server, but --asap is an option of lspguard replay"),
    (["t", "--server", "gopls", "--json=r.json"],
     "it would pass '--json=r.json' to the server, but --json is an option of lspguard replay"),
    (["t", "--server", "gopls", "-h"], "'-h' to the server"),
    (["t", "--server", "gopls", "--", "gopls"], "two server commands"),
    (["t", "--asap"], "give the server command after --"),
    (["t", "--server"], "give the server command after --"),
    (["--", "gopls"], "the following arguments are required: TRACE"),
    (["t", "u", "--", "gopls"], "unrecognized arguments: u"),
    (["t", "--bogus", "--", "gopls"], "unrecognized arguments: --bogus"),
])
@pytest.mark.timeout(10)
def test_replay_command_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ReplayUsageError, match=re.escape(message)):
        parse_replay_args(argv)


def test_options_after_server_are_refused_and_nothing_starts(fault_trace: Path,
                                                             tmp_path: Path) -> None:
    """`--server gopls --asap --json` once started `gopls --asap --json`."""
    marker = tmp_path / "server-started"
    server = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    done = replay_cli(str(fault_trace), "--server", *server, "--asap", "--json")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "--asap is an option of lspguard replay" in done.stderr
    assert "lspguard replay TRACE [options] -- SERVER [ARGS...]" in done.stderr
    assert done.stdout == "" and not marker.exists()


def test_deprecated_server_last_still_works(fault_trace: Path) -> None:
    done = replay_cli(str(fault_trace), "--asap", "--quiet", "--server", *fault())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("lspguard replay: SAME (exit 0)")
    assert "--server is deprecated" in done.stderr


@pytest.mark.parametrize("json_flag", [["--json"], ["--json", "-"], ["--json=-"]], ids=" ".join)
def test_json_on_stdout_and_nothing_else(fault_trace: Path, json_flag: list[str]) -> None:
    done = replay_cli(str(fault_trace), *json_flag, "--asap", "--", *fault())
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)  # all of stdout is the one JSON document
    assert report["outcome"] == "same" and report["complete"] is True


def test_json_file_is_never_the_trace(fault_trace: Path, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(fault_trace.read_bytes())
    done = replay_cli(str(trace), "--json", str(trace), "--asap", "--", *fault())
    assert done.returncode == 3 and "is the trace itself" in done.stderr
    assert trace.read_bytes() == fault_trace.read_bytes()


def test_replay_help_exits_0() -> None:
    done = replay_cli("-h")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: lspguard replay TRACE [options] -- SERVER [ARGS...]")
    assert "--json [FILE]" in done.stdout


# ------------------------------------------------------------------------------ the plan


def test_plan_keeps_causal_order_and_reads_the_editors_answers() -> None:
    def e(t: float, direction: str, **msg: Any) -> TraceEntry:
        return TraceEntry(t, direction, 1, {"jsonrpc": "2.0", **msg}, line=int(t * 10))

    trace = Trace(TraceHeader("1", "x", (), False, ()), [
        e(0.1, "c2s", id=1, method="initialize"),
        e(0.15, "p2s", id="lspguard-1", method="lspguard/ping"),
        e(0.2, "s2c", id=1, result={}),
        e(0.25, "s2c", id="lspguard-1", error={"code": -32601, "message": "no"}),
        e(0.3, "c2s", method="initialized"),
        e(0.4, "s2c", id=1, method="workspace/configuration"),
        e(0.5, "c2s", id=1, result=[{"a": 1}]),
        e(0.6, "c2s", id=2, method="textDocument/hover"),
        e(0.7, "c2s", id=3, method="textDocument/definition"),
        e(0.8, "c2s", method="$/cancelRequest", params={"id": 3}),
        e(0.9, "s2c", id=2, result=None),
        e(1.0, "p2c", id=3, error={"code": -32801, "message": "restarted"}),
        e(1.1, "c2s", id=4, method="shutdown"),
    ])
    plan = Plan(trace)
    assert [s.entry.line for s in plan.steps] == [1, 3, 6, 7, 8, 11]  # no proxy traffic
    waits = [[w.outcome.id for w in s.wait_for] for s in plan.steps]
    assert waits == [[], [1], [1], [1], [1], [2, 3, 1]]
    hover, definition = plan.requests[1], plan.requests[2]
    assert hover.recorded == {"jsonrpc": "2.0", "id": 2, "result": None}
    assert hover.outcome.recorded_ms == pytest.approx(300)
    assert definition.cancelled and definition.by_proxy
    assert plan.answer("workspace/configuration", {"items": [{}, {}]}, ()) == (
        {"result": [{"a": 1}, {"a": 1}]}, "from the trace")
    assert plan.answer("client/registerCapability", {}, ()) == ({"result": None}, "default")
    assert plan.answer("x/unknown", {}, ())[0]["error"]["code"] == -32601


# ------------------------------------------------------------------------------ pytest plugin


def test_lsp_replay_fixture_passes_on_same_answers(lsp_replay: Any, fault_trace: Path) -> None:
    report = lsp_replay(fault_trace, server=fault())
    assert report.exit_code == 0


def test_lsp_replay_fixture_fails_the_test_on_a_hang(lsp_replay: Any, fault_trace: Path) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        lsp_replay(fault_trace, server=fault("hang-on-method"), timeout=1.0)
    assert "HANG    textDocument/hover #2" in str(failed.value)


# ------------------------------------------------------------------------------ real gopls


def fresh_copy(tmp_path: Path, name: str = "ws") -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / name)).resolve()


@pytest.mark.gopls
@needs_gopls
@pytest.mark.parametrize("trace", CORPUS, ids=[t.stem for t in CORPUS])
def test_corpus_replays_against_installed_gopls(trace: Path, tmp_path: Path) -> None:
    assert GOPLS is not None
    workspace = fresh_copy(tmp_path)
    done = replay_cli(str(trace), "--asap", "--root-map", f"file:///WORKSPACE={workspace}",
                      "--json", str(tmp_path / "r.json"), "--", GOPLS)
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(tmp_path / "r.json")
    recorded = [e for e in read_trace(trace).entries if e.dir == "c2s" and e.kind == "request"]
    assert len(report["requests"]) == len(recorded) >= 3
    assert {r["status"] for r in report["requests"]} == {"same"}


@pytest.mark.gopls
@needs_gopls
def test_recorded_session_replays_with_server_after_double_dash(tmp_path: Path) -> None:
    """`lspguard replay TRACE --asap -- gopls`, as `run -- CMD` and `record -- CMD`."""
    assert GOPLS is not None
    workspace = fresh_copy(tmp_path)
    gopls_dir = str(Path(GOPLS).parent)
    env = {**os.environ, "PATH": gopls_dir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "lspguard", "replay", str(HERE / "traces" / "navigate.jsonl"),
         "--asap", "--root-map", f"file:///WORKSPACE={workspace}", "--json", "--", "gopls"],
        capture_output=True, text=True, timeout=50, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "same" and len(report["requests"]) >= 3


@pytest.mark.gopls
@needs_gopls
@pytest.mark.parametrize("scenario", ["navigate"])
async def test_round_trip_record_then_replay_into_a_fresh_copy(scenario: str,
                                                                tmp_path: Path) -> None:
    assert GOPLS is not None
    assert scenario in SCENARIOS
    recorded_in = fresh_copy(tmp_path, "recorded")
    out = tmp_path / "session.jsonl"
    assert await run_scenario(scenario, recording_command(out, [GOPLS]), recorded_in) == 0
    trace = read_trace(out)
    assert trace.header.workspace_folders == (recorded_in.as_uri(),)
    assert trace.header.redacted is False
    replay_in = fresh_copy(tmp_path, "replayed")
    done = replay_cli(str(out), "--asap", "--root-map", f"{recorded_in}={replay_in}",
                      "--json", str(tmp_path / "r.json"), "--", GOPLS)
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(tmp_path / "r.json")
    methods = [r["method"] for r in report["requests"]]
    assert methods == ["initialize", "textDocument/hover", "textDocument/definition",
                       "textDocument/references", "textDocument/documentSymbol",
                       "textDocument/hover", "shutdown"]
    assert all(r["status"] == "same" and r["replay_ms"] is not None
               for r in report["requests"])


@pytest.mark.gopls
@needs_gopls
def test_a_changed_workspace_is_a_divergence_with_a_text_diff(tmp_path: Path) -> None:
    assert GOPLS is not None
    workspace = fresh_copy(tmp_path)
    greet = workspace / "greet" / "greet.go"
    greet.write_text(greet.read_text().replace("a friendly greeting", "a terse greeting"))
    done = replay_cli(str(HERE / "traces" / "navigate.jsonl"), "--asap", "--root-map",
                      f"file:///WORKSPACE={workspace}", "--", GOPLS)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "result.contents.value: text differs (- recorded, + replayed):" in done.stdout
    assert "-Hello returns a friendly greeting for name." in done.stdout
    assert "+Hello returns a terse greeting for name." in done.stdout


@pytest.mark.gopls
@needs_gopls
def test_real_gopls_rpc_trace_log_replays_exit_0(tmp_path: Path) -> None:
    assert GOPLS is not None
    workspace = fresh_copy(tmp_path)
    log = HERE / "fixtures" / "gopls_rpc_trace.log"
    done = replay_cli(str(log), "--from", "gopls", "--asap", "--root-map",
                      f"file:///WORKSPACE={workspace}", "--json", str(tmp_path / "r.json"),
                      "--", GOPLS)
    assert done.returncode == 0, done.stdout + done.stderr
    report = report_of(tmp_path / "r.json")
    statuses = [(r["method"], r["status"]) for r in report["requests"]]
    assert ("textDocument/hover", "same") in statuses and len(statuses) == 7
    assert {s for _, s in statuses} == {"same"}  # the error answer too (compared by message)


"""Each scripted fault -> the right verdict within its deadline + 1 s -> restart -> the session
goes on. The faults come from tests/servers/fault_server.py (a scripted fake: real gopls can't
hang at initialize or write half a frame on demand)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ..conftest import TESTS_DIR
from ..faultproxy import (
    DOC_TEXT,
    DOC_URI,
    HOVER_DEADLINE,
    Proxy,
    hover,
    initialize,
    latest_bundle,
    start_proxy,
)

# What each verdict's bundle must show about the process that misbehaved.
SLEEPING = {"clock_nanosleep", "nanosleep", "select", "pselect6"}


def check_evidence(verdict: str, fault: str, bundle: dict[str, Any]) -> None:
    threads, incident = bundle["threads"], bundle["incident"]
    if verdict == "child_never_returns":  # the vfork parent (the server's pid) sleeps in D
        assert threads[0]["state"] == "D" and threads[0]["syscall"]["name"] == "vfork", threads
        cause = incident["verdict"]["facts"]["cause"]
        assert cause["object"]["kind"] == "child", cause
        assert "vfork_block" in cause["object"]["argv"][0], cause
        return
    if verdict == "crashed":
        assert incident["verdict"]["facts"]["returncode"] == 3  # --code
        return
    assert threads, bundle["process"]
    main = threads[0]
    if fault == "busy-spin":
        assert main["state"] == "R"
    elif fault in ("stop-reading", "half-frame"):
        assert main["state"] == "S" and main["syscall"]["name"] in SLEEPING, main
    elif fault in ("hang-method", "hang-initialize", "garbage"):
        # the loop waits for the next message: blocked reading its stdin
        assert main["state"] == "S" and main["syscall"]["name"] == "read", main
        assert main["syscall"]["fd"] == 0


def assert_session_goes_on(p: Proxy, restarted_within: float = 15) -> None:
    p.seen_or_wait(lambda m: m.get("method") == "window/showMessage"
                   and "restarted" in m["params"]["message"], restarted_within)
    rid = hover(p)
    answer = p.answer(rid, 10)
    assert answer["result"]["contents"]["value"] == "v1: func main() {}"
    status = p.status()
    assert status["backend"]["generation"] == 2
    assert status["state"] == "running"


@pytest.mark.parametrize(
    ("fault", "verdict", "deadline"),
    [
        ("hang-method", "deadlocked", HOVER_DEADLINE),
        ("stop-reading", "deadlocked", HOVER_DEADLINE),
        ("half-frame", "deadlocked", HOVER_DEADLINE),
        ("busy-spin", "busy_spin", HOVER_DEADLINE),
        ("crash-mid-message", "crashed", 0.0),
        ("exit", "crashed", 0.0),
        ("garbage", "protocol_error", 0.0),
    ],
)
def test_fault_on_a_request(tmp_path: Path, proxies: list[Proxy], fault: str, verdict: str,
                            deadline: float) -> None:
    p = start_proxy(tmp_path, "--fault", fault, "--on", "textDocument/hover")
    proxies.append(p)
    initialize(p)
    t0 = time.time()
    rid = hover(p)
    p.answer(rid, deadline + 10)
    last = p.status()["last_verdict"]
    assert last["kind"] == verdict, last
    assert last["at"] - t0 <= deadline + 1.0, f"verdict after {last['at'] - t0:.2f} s"
    assert last["summary"].endswith(".")
    assert_session_goes_on(p)
    check_evidence(verdict, fault, latest_bundle(tmp_path / "state", verdict))
    # Answered once, by lspguard: whatever the condemned server says later is dropped (the
    # garbage fault answers right after its garbage, which once reached the editor twice).
    [only] = p.answers_to(rid)
    assert only["error"]["code"] == -32801, only  # ContentModified


def test_editor_quitting_right_after_a_hang_still_gets_its_bundle(tmp_path: Path,
                                                                  proxies: list[Proxy]) -> None:
    """Quitting is what a user does right after a hang; the evidence must survive it."""
    p = start_proxy(tmp_path, "--fault", "hang-method", "--on", "textDocument/hover",
                    strace_seconds=60.0)  # collection would outlast the session by far
    proxies.append(p)
    initialize(p)
    rid = hover(p)
    assert p.answer(rid, HOVER_DEADLINE + 10)["error"]["code"] == -32801  # recovery has begun
    t0 = time.monotonic()
    p.answer(p.request("shutdown", None), 15)
    p.notify("exit", None)
    assert p.client.proc.wait(15) == 0
    assert time.monotonic() - t0 < 10, "the proxy waited for the whole strace sample"
    bundle = latest_bundle(tmp_path / "state", "deadlocked")
    assert bundle["threads"], bundle["process"]  # the quick facts are waited for
    collectors = bundle["incident"]["collectors"]
    if collectors["strace"]["status"] != "skipped":  # no strace, or no ptrace: nothing to cut
        assert collectors["strace"]["status"] == "ok", collectors["strace"]
        sample = (bundle["dir"] / "strace.txt").read_text()
        assert "# cut short: the session ended" in sample  # a shorter sample, kept
    assert collectors["host"]["status"] in ("ok", "timeout"), collectors["host"]
    assert not (p.runtime / "sessions" / f"{p.client.proc.pid}.json").exists()


def test_answers_the_editor_is_not_waiting_for_are_dropped(tmp_path: Path,
                                                           proxies: list[Proxy]) -> None:
    p = start_proxy(tmp_path)
    proxies.append(p)
    initialize(p)
    rid = p.request("fault/answerTwice", {"n": 1})
    assert p.answer(rid, 10)["result"] == {"n": 1}
    after = p.request("fault/echo", {"n": 2})  # answered after both stray answers were read
    assert p.answer(after, 10)["result"] == {"n": 2}
    assert len(p.answers_to(rid)) == 1
    assert p.answers_to(999999) == []
    status = p.status()
    assert status["last_verdict"] is None and status["backend"]["generation"] == 1, status


def test_hang_at_initialize(tmp_path: Path, proxies: list[Proxy]) -> None:
    timeout = 3.0
    p = start_proxy(tmp_path, "--fault", "hang-initialize", handshake_timeout=timeout)
    proxies.append(p)
    t0 = time.time()
    rid = p.request("initialize", {"processId": os.getpid(), "rootUri": "file:///ws",
                                   "capabilities": {}})
    answer = p.answer(rid, timeout + 15)
    # The editor's initialize is answered by the restarted server, not failed.
    assert answer["result"]["serverInfo"]["name"] == "fault_server"
    last = p.status()["last_verdict"]
    assert last["kind"] == "handshake_timeout"
    assert last["at"] - t0 <= timeout + 1.0
    p.notify("initialized", {})
    p.notify("textDocument/didOpen", {"textDocument": {
        "uri": DOC_URI, "languageId": "go", "version": 1, "text": DOC_TEXT}})
    answer = p.answer(hover(p), 10)
    assert answer["result"]["contents"]["value"] == "v1: func main() {}"
    assert len(p.answers_to(rid)) == 1
    p.seen_or_wait(lambda m: m.get("method") == "window/showMessage"
                   and "restarted" in m["params"]["message"], 15)  # sent once evidence is in
    check_evidence("handshake_timeout", "hang-initialize",
                   latest_bundle(tmp_path / "state", "handshake_timeout"))


@pytest.fixture(scope="module")
def vfork_helper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("needs a C compiler for the uninterruptible-sleep fault")
    out = tmp_path_factory.mktemp("vfork") / "vfork_block"
    source = TESTS_DIR / "servers" / "vfork_block.c"
    subprocess.run([gcc, "-O1", "-o", str(out), str(source)], check=True, timeout=60)
    return out


def test_child_never_returns(tmp_path: Path, proxies: list[Proxy], vfork_helper: Path) -> None:
    """A server stuck in uninterruptible sleep waiting for a vfork'd child that never execs is
    named by that child, and replaced once (a child's hang may be a fluke)."""
    p = start_proxy(tmp_path, "--fault", "blocked-in-kernel", "--on", "textDocument/hover",
                    "--vfork-helper", str(vfork_helper))
    proxies.append(p)
    initialize(p)
    t0 = time.time()
    rid = hover(p)
    assert p.answer(rid, HOVER_DEADLINE + 10)["error"]["code"] == -32801
    last = p.status()["last_verdict"]
    assert last["kind"] == "child_never_returns", last
    assert last["at"] - t0 <= HOVER_DEADLINE + 1.0
    assert "vfork_block" in last["summary"] and "never returns" in last["summary"], last
    assert_session_goes_on(p)
    check_evidence("child_never_returns", "blocked-in-kernel",
                   latest_bundle(tmp_path / "state", "child_never_returns"))


def test_status_links_the_last_verdict_to_its_own_bundle(tmp_path: Path,
                                                         proxies: list[Proxy]) -> None:
    from lspguard.control.client import call_control

    p = start_proxy(tmp_path, "--fault", "exit", "--on", "textDocument/hover")
    proxies.append(p)
    initialize(p)
    p.answer(hover(p), 10)
    assert_session_goes_on(p)  # the crash's bundle is written before the user is told
    crashed = latest_bundle(tmp_path / "state", "crashed")["dir"]
    assert p.status()["last_verdict"]["bundle"] == str(crashed)
    sock = p.runtime / "sessions" / f"{p.client.proc.pid}.sock"
    later = call_control(sock, "snapshot", timeout=20)["bundle"]  # a newer bundle, no verdict
    assert later != str(crashed)
    assert p.status()["last_verdict"]["bundle"] == str(crashed)


def test_a_request_held_during_a_restart_obeys_its_deadline(tmp_path: Path,
                                                             proxies: list[Proxy]) -> None:
    """Every generation hangs at initialize, so the restart takes handshake_timeout per try: a
    hover held meanwhile is answered once its own deadline passes, not when the restart ends."""
    p = start_proxy(tmp_path, "--fault", "hang-initialize", handshake_timeout=4.0, once=False)
    proxies.append(p)
    p.request("initialize", {"processId": os.getpid(), "rootUri": "file:///ws",
                             "capabilities": {}})
    p.wait_for_state("restarting", 15)
    sent = time.monotonic()
    rid = hover(p)
    answer = p.answer(rid, HOVER_DEADLINE + 5)
    took = time.monotonic() - sent
    assert answer["error"]["code"] == -32801 and "deadline" in answer["error"]["message"]
    assert HOVER_DEADLINE <= took <= HOVER_DEADLINE + 1.0, took
    assert p.status()["state"] == "restarting"  # the restart itself is still under way

"""CauseWait in-process: the server waits on a cause outside it, and the session waits with it.

A real Relay and a fake server (tests/supervised.py); the probes of the cause are fakes the test
turns, so "the cause clears" is a step of the test, not a filesystem that comes back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
import pytest

from lspguard.causes.model import Blocker, Cause, CauseClass, Culprit
from lspguard.causes.probe import PathProber, TreeProber
from lspguard.causes.tree import TreeSnapshot
from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.config.model import Config, WatchdogConfig
from lspguard.protocol.codes import LSPErrorCodes, MessageType
from lspguard.proxy.lifecycle import Phase
from lspguard.supervise.host import Supervised
from lspguard.supervise.waiting import CauseWait
from lspguard.supervise.watchdog import PING_METHOD

from ...supervised import FakeServer, Harness, supervised

pytestmark = pytest.mark.timeout(10)

CAUSE = Cause(CauseClass.FILESYSTEM, Culprit(7, ("gopls",), "gopls", tid=8, syscall="read"),
              Blocker("path", path="/mnt/share/go.mod", mount_point="/mnt/share"), 3.0,
              "gopls waits on /mnt/share, which does not answer.", "Remount /mnt/share.")
VERDICT = Verdict(VerdictKind.FILESYSTEM_NOT_ANSWERING, CAUSE.sentence, 1, cause=CAUSE)
WHY = f"{CAUSE.sentence} Fix: {CAUSE.fix}"
# The watch's own tick: how often it asks whether the cause cleared (the probes are fakes).
QUICK = replace(Config(), watchdog=replace(WatchdogConfig(), tick=0.01))
NO_WATCH = replace(Config(), watchdog=replace(WatchdogConfig(), tick=60.0))


class FakePaths(PathProber):
    """A bounded stat of the blocked path that answers when the test says so."""

    answer = False

    async def answers(self, path: str) -> bool:
        return self.answer


class NoTree(TreeProber):
    async def snapshot(self, pid: int) -> TreeSnapshot | None:
        return None  # the path alone says whether the cause cleared


def request(req_id: int, method: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method,
            "params": {"textDocument": {"uri": "file:///w/a.go"}}}


def did_change(version: int, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///w/a.go", "version": version},
        "contentChanges": [{"text": text}]}}


async def waiting(h: Harness, *, keep_backend: bool = True) -> tuple[CauseWait, FakeServer,
                                                                      FakePaths]:
    """Generation 1 running with a pid, then a wait on CAUSE (as Session.wait_on starts it)."""
    server = await h.running()
    server.pid = 2_000_000_000  # no such process: only the fake probes look at it
    host: Supervised = h
    wait = CauseWait(host, VERDICT, keep_backend=keep_backend)
    paths = FakePaths()
    wait.paths, wait.trees = paths, NoTree()
    h.cause_wait = wait
    return wait, server, paths


async def test_requests_are_answered_at_once_and_the_user_is_told_once() -> None:
    async with supervised(NO_WATCH) as h:
        wait, server, _ = await waiting(h)
        h.editor_says(request(2, "textDocument/hover"))
        h.editor_says(request(3, "textDocument/formatting"))
        wait.start()
        # in flight: answered at once; the save path with an empty result (saving never waits)
        assert h.editor.answer(2) == {"jsonrpc": "2.0", "id": 2, "error": {
            "code": LSPErrorCodes.RequestFailed, "message": f"textDocument/hover: {WHY}"}}
        assert h.editor.answer(3) == {"jsonrpc": "2.0", "id": 3, "result": []}
        assert h.lifecycle.phase is Phase.WAITING and not list(h.relay.pending)
        # what comes now: requests answered here, notifications kept for the waiting server
        sent = len(server.received)
        h.editor_says(request(4, "textDocument/willSaveWaitUntil"))
        h.editor_says(request(5, "textDocument/definition"))
        h.editor_says(did_change(2, "package b\n"))
        assert h.editor.answer(4) == {"jsonrpc": "2.0", "id": 4, "result": []}
        answer = h.editor.answer(5)
        assert answer is not None and answer["error"]["message"] == \
            f"textDocument/definition: {WHY}"
        assert len(server.received) == sent and wait.backlog is not None
        assert len(wait.backlog) == 1
        assert [d.text for d in h.relay.mirror.documents()] == ["package b\n"]  # mirrored
        assert wait.as_status()["answered_at_once"] == 4
        await h.until(lambda: h.editor.told())
        (told,) = [m for m in h.editor.seen if m.get("method") == "window/showMessage"]
        assert told["params"] == {"type": MessageType.Warning, "message": (
            f"lspguard: {WHY} Until then requests are answered at once, and lspguard resumes "
            "by itself. Incident report: /bundles/1")}
        assert h.evidence == [(VERDICT, server)] and CAUSE.signature in h.told_causes


async def test_when_the_cause_clears_a_server_that_answers_is_kept_and_catches_up() -> None:
    async with supervised(QUICK) as h:
        wait, server, paths = await waiting(h)
        h.cause_restarts[CAUSE.signature] = 1
        wait.start()
        h.editor_says(did_change(2, "package b\n"))
        await h.until(lambda: h.editor.told())
        paths.answer = True  # the mount answers again
        await h.until(lambda: h.lifecycle.phase is Phase.RUNNING)
        assert wait.cleared == "/mnt/share/go.mod answers again"
        # it answered the ping, then got what it missed; no restart
        assert server.methods()[-2:] == [PING_METHOD, "textDocument/didChange"]
        assert server.received[-1]["params"]["contentChanges"] == [{"text": "package b\n"}]
        assert h.restarts == [] and CAUSE.signature not in h.cause_restarts
        assert h.editor.told()[-1] == \
            "lspguard: gopls answers again (/mnt/share/go.mod answers again)."
        h.editor_says(request(6, "textDocument/hover"))  # forwarded again
        assert server.methods()[-1] == "textDocument/hover"


async def test_the_same_cause_again_is_not_told_again() -> None:
    async with supervised(NO_WATCH) as h:
        wait, server, _ = await waiting(h)
        h.told_causes.add(CAUSE.signature)  # the user heard of it in an earlier wait
        wait.start()
        await h.until(lambda: h.evidence)  # the bundle is still written
        await anyio.wait_all_tasks_blocked()  # and the wait is done with it
        assert h.editor.told() == [] and h.evidence == [(VERDICT, server)]


async def test_a_server_that_exits_while_waiting_is_restarted_afresh() -> None:
    async with supervised(QUICK) as h:
        wait, server, _ = await waiting(h)
        wait.start()
        server.exited.set()
        await h.until(lambda: h.restarts)
        assert wait.cleared == "the server exited" and h.restarts == [(VERDICT, True)]
        assert PING_METHOD not in server.methods()


async def test_a_backlog_past_its_limit_means_a_restart_not_a_catch_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lspguard.supervise.waiting._BACKLOG_LIMIT", 1)
    async with supervised(QUICK) as h:
        wait, server, paths = await waiting(h)
        wait.start()
        h.editor_says(did_change(2, "package b\n"))
        h.editor_says(did_change(3, "package c\n"))
        assert wait.backlog is None
        paths.answer = True
        await h.until(lambda: h.restarts)
        assert h.restarts == [(VERDICT, True)] and PING_METHOD not in server.methods()


async def test_a_server_started_blocked_is_not_kept() -> None:
    """Recovery's new server that waits on the cause too (keep_backend=False): restarted
    afresh once the cause clears, even if it would answer."""
    async with supervised(QUICK) as h:
        wait, server, paths = await waiting(h, keep_backend=False)
        wait.start()
        paths.answer = True
        await h.until(lambda: h.restarts)
        assert h.restarts == [(VERDICT, True)] and PING_METHOD not in server.methods()

"""Recovery.recover in-process: a real Relay, fake server generations, no process spawned.

What the subprocess tests (test_recovery_gopls.py, test_recovery_policy.py) show as a timeout,
these show as a wrong message at a given step: what the editor is answered, what the new
generation is given, in which order, and when the restarts stop.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lspguard.causes.model import Blocker, Cause, CauseClass, Culprit
from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.config.model import Config, RestartConfig, WatchdogConfig
from lspguard.protocol.codes import LSPErrorCodes, MessageType
from lspguard.proxy.lifecycle import Phase
from lspguard.supervise.escalation import RestartBudget
from lspguard.supervise.handover import RestartBlocked, take_over
from lspguard.supervise.host import Supervised
from lspguard.supervise.recovery import Recovery

from ...supervised import Harness, supervised

pytestmark = pytest.mark.timeout(10)

CRASH = Verdict(VerdictKind.CRASHED, "The language server (pid 7) exited with code 2.", 1)
HOVER = {"textDocument": {"uri": "file:///w/a.go"}, "position": {"line": 0, "character": 0}}


def hover(req_id: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": "textDocument/hover", "params": HOVER}


def restart_decided(h: Harness) -> None:
    """What Session.restart does before it spawns recovery."""
    h.relay.condemn()
    h.lifecycle.to(Phase.RESTARTING)


def recovery_of(h: Harness) -> Recovery:
    host: Supervised = h
    return Recovery(host)


def error_of(answer: dict[str, Any] | None) -> tuple[int, str]:
    assert answer is not None and "error" in answer, answer
    return answer["error"]["code"], answer["error"]["message"]


async def test_a_restart_answers_what_was_in_flight_replays_the_state_then_releases() -> None:
    async with supervised() as h:
        old = await h.running({"workspace": {"codeLens": {"refreshSupport": True}}})
        h.editor_says(hover(2))
        old.say({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {
            "uri": "file:///w/a.go", "diagnostics": [{"message": "x", "range": {}}]}})
        old.say({"jsonrpc": "2.0", "method": "$/progress",
                 "params": {"token": "load", "value": {"kind": "begin", "title": "Loading"}}})
        recovery = recovery_of(h)
        restart_decided(h)
        h.spawn(recovery.recover, CRASH)
        # the request in flight is answered (VS Code drops ContentModified quietly), and the
        # dead generation's progress is ended
        await h.until(lambda: h.editor.answer(2))
        assert error_of(h.editor.answer(2)) == (LSPErrorCodes.ContentModified,
                                                "the language server was restarted")
        assert {"jsonrpc": "2.0", "method": "$/progress",
                "params": {"token": "load", "value": {"kind": "end"}}} in h.editor.seen
        await h.until(lambda: h.lifecycle.phase is Phase.RUNNING)
        new = h.servers[-1]
        assert (new.generation, new.argv) == (2, ["gopls"])
        assert new.methods() == ["initialize", "initialized", "textDocument/didOpen"]
        assert new.received[2]["params"]["textDocument"]["text"] == "package a\n"
        # the editor has its initialize answer already: the new one is not forwarded
        assert len([m for m in h.editor.seen if m.get("id") == 1]) == 1
        # the evidence is taken from the dead generation, which is stopped only then
        await h.until(lambda: h.editor.told())
        assert h.evidence == [(CRASH, old)] and old.stopped
        assert h.editor.told() == [
            "lspguard restarted gopls (primary): The language server (pid 7) exited with "
            "code 2. Incident report: /bundles/1"]
        assert any(m.get("method") == "workspace/codeLens/refresh" for m in h.editor.seen)
        assert (recovery.restarts, h.exits) == (1, [new])
        assert recovery.last_duration_s is not None
        # diagnostics only the dead generation published are cleared once the new one loaded
        cleared = {"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
                   "params": {"uri": "file:///w/a.go", "diagnostics": []}}
        assert cleared not in h.editor.seen
        new.say({"jsonrpc": "2.0", "method": "$/progress",
                 "params": {"token": 1, "value": {"kind": "begin", "title": "Loading"}}})
        new.say({"jsonrpc": "2.0", "method": "$/progress",
                 "params": {"token": 1, "value": {"kind": "end"}}})
        await h.until(lambda: cleared in h.editor.seen)


async def test_held_messages_wait_for_the_replay_and_keep_their_order() -> None:
    async with supervised() as h:
        await h.running()
        recovery = recovery_of(h)
        restart_decided(h)

        async def slow_take_over(host: Supervised, argv: list[str], env: dict[str, str],
                                 label: str) -> None:
            h.editor_says(hover(4))  # while the new server is being started
            h.editor_says({"jsonrpc": "2.0", "method": "textDocument/didSave",
                           "params": {"textDocument": {"uri": "file:///w/a.go"}}})
            assert len(h.relay.held) == 2
            await take_over(host, argv, env, label)
            assert len(h.relay.held) == 2  # given the state first

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("lspguard.supervise.recovery.take_over", slow_take_over)
            await recovery.recover(CRASH)
        new = h.servers[-1]
        assert new.methods() == ["initialize", "initialized", "textDocument/didOpen",
                                 "textDocument/hover", "textDocument/didSave"]
        assert new.received[3]["id"] == 4 and not h.relay.held


async def test_the_editors_initialize_in_flight_is_answered_by_the_next_generation() -> None:
    async with supervised() as h:
        await h.start_backend(h.command, {}, "primary")
        h.lifecycle.to(Phase.INITIALIZING)
        h.editor_says({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"processId": None, "capabilities": {}}})  # never answered
        hung = Verdict(VerdictKind.HANDSHAKE_TIMEOUT, "No answer to initialize.", 1)
        restart_decided(h)
        await recovery_of(h).recover(hung)
        new = h.servers[-1]
        assert h.editor.answer(1) == {"jsonrpc": "2.0", "id": 1, "result": new.result}
        assert h.relay.mirror.initialize_result == new.result and h.relay.editor_ready()
        assert h.lifecycle.phase is Phase.RUNNING
        assert new.methods() == ["initialize"]  # the editor sends initialized itself


async def test_a_start_that_fails_is_tried_again_with_backoff() -> None:
    config = replace(Config(), restart=replace(RestartConfig(), backoff_initial=0.001))
    async with supervised(config) as h:
        await h.running()
        restart_decided(h)
        h.doomed = 1  # the next server dies during the replayed initialize
        await recovery_of(h).recover(CRASH)
        assert [s.generation for s in h.servers] == [1, 2, 3]
        assert h.servers[1].stopped and h.servers[2].methods()[0] == "initialize"
        assert h.lifecycle.phase is Phase.RUNNING and h.relay.generation == 3
        assert h.verdicts == [] and h.editor.told()[0].startswith("lspguard restarted gopls")


async def test_a_spent_budget_degrades_requests_fail_clearly_and_it_tries_again_later() -> None:
    config = replace(Config(), restart=replace(RestartConfig(), max_restarts=1, window=600.0,
                                               revive_backoff=(0.001,)))
    async with supervised(config) as h:
        old = await h.running()
        recovery = recovery_of(h)
        assert recovery.plan.budget.take()  # the one restart of the window, taken already
        restart_decided(h)
        h.editor_says(hover(5))  # held: no server takes it while restarting
        await recovery.recover(CRASH)
        assert len(h.servers) == 1 and old.stopped  # after its bundle was written
        assert h.lifecycle.phase is Phase.DEGRADED and h.relay.backend is None
        reason = ("gopls is not running: it failed 1 times within 600 s and lspguard stopped "
                  "restarting it (last: The language server (pid 7) exited with code 2.); "
                  "incident report: /bundles/1")
        assert h.relay.degraded == reason
        (told,) = [m for m in h.editor.seen if m.get("method") == "window/showMessage"]
        assert told["params"] == {"type": MessageType.Error, "message": (
            f"lspguard: {reason}. lspguard tries again in 0 s; `lspguard restart` or reloading "
            "the window tries now.")}
        # the held request fails after the user is told, naming why
        failed = h.editor.answer(5)
        assert failed is not None and error_of(failed) == (LSPErrorCodes.RequestFailed,
                                    f"textDocument/hover failed: {reason}")
        assert h.editor.seen.index(told) < h.editor.seen.index(failed)
        h.editor_says(hover(6))
        assert error_of(h.editor.answer(6))[1] == f"textDocument/hover failed: {reason}"
        await h.until(lambda: h.restarts)  # degraded is not forever
        assert h.restarts == [(CRASH, True)] and recovery.degraded.revivals == 1


async def test_a_new_server_that_waits_on_a_cause_outside_it_is_waited_on() -> None:
    cause = Cause(CauseClass.FILESYSTEM, Culprit(7, ("gopls",), "gopls", tid=8, syscall="read"),
                  Blocker("path", path="/mnt/share/go.mod", mount_point="/mnt/share"), 3.0,
                  "gopls waits on /mnt/share, which does not answer.", "Remount /mnt/share.")
    blocked = Verdict(VerdictKind.FILESYSTEM_NOT_ANSWERING, cause.sentence, 2, cause=cause)
    config = replace(Config(), watchdog=replace(WatchdogConfig(), tick=60.0))  # no probing

    async def stuck_take_over(host: Supervised, argv: list[str], env: dict[str, str],
                              label: str) -> None:
        await host.start_backend(argv, env, label)
        h.editor_says(hover(7))  # held while the new server starts
        raise RestartBlocked(blocked)

    async with supervised(config) as h:
        await h.running()
        restart_decided(h)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("lspguard.supervise.recovery.take_over", stuck_take_over)
            await recovery_of(h).recover(CRASH)
        assert len(h.servers) == 2 and h.verdicts == [blocked]  # no third server
        assert h.lifecycle.phase is Phase.WAITING
        assert h.cause_wait is not None and not h.cause_wait.keep_backend
        assert error_of(h.editor.answer(7)) == (
            LSPErrorCodes.RequestFailed,
            "textDocument/hover: gopls waits on /mnt/share, which does not answer. "
            "Fix: Remount /mnt/share.")


def test_a_try_from_degraded_mode_leaves_room_for_one_restart() -> None:
    budget = RestartBudget(limit=3, window=60.0)
    budget.renew(one_try=True, now=100.0)
    assert budget.spent == 2
    assert budget.take(101.0) and not budget.take(102.0)
    assert budget.take(161.0)  # the window moved on
    budget.renew()
    assert budget.spent == 0

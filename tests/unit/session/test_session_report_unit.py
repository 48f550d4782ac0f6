"""Session.report in-process: which verdicts count, and what each one starts.

A real Session that never spawns a server: its recovery is a recorder, its task groups are the
test's, and no incident bundle is written (snapshots off).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import pytest

from lspguard.causes.model import Blocker, Cause, CauseClass, Culprit
from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.config.model import Config, RestartConfig, SnapshotConfig, WatchdogConfig
from lspguard.proxy.lifecycle import Phase
from lspguard.session.session import Session

pytestmark = pytest.mark.timeout(10)

CONFIG = replace(Config(), snapshot=replace(SnapshotConfig(), enabled=False),
                 watchdog=replace(WatchdogConfig(), tick=60.0))  # a wait does not probe here
CRASH = Verdict(VerdictKind.CRASHED, "The language server (pid 7) exited with code 2.", 1)
HANG = Verdict(VerdictKind.DEADLOCKED, "No answer to hover for 30 s.", 1)


def outside(cls: CauseClass, kind: VerdictKind, generation: int) -> Verdict:
    cause = Cause(cls, Culprit(7, ("gopls",), "gopls", tid=8, syscall="connect"),
                  Blocker("socket", peer="10.0.0.1:443", socket_state="SYN_SENT"), 3.0,
                  "gopls waits on 10.0.0.1:443.", "Check the proxy settings.")
    return Verdict(kind, cause.sentence, generation, cause=cause)


def phase(s: Session) -> Phase:
    return s.lifecycle.phase


@asynccontextmanager
async def session(config: Config = CONFIG) -> AsyncIterator[tuple[Session, list[object]]]:
    """A running session of generation 1, and what its recovery was asked to do."""
    s = Session(["gopls"], config)
    recovered: list[object] = []

    async def recover(verdict: Verdict, fresh: bool = False) -> None:
        recovered.append((verdict, fresh))

    s.recovery.recover = recover  # type: ignore[method-assign]
    try:
        async with anyio.create_task_group() as tg:
            s._tg = s._evidence_tg = tg
            s.relay.generation = 1
            s.lifecycle.to(Phase.INITIALIZING)
            s.lifecycle.to(Phase.RUNNING)
            yield s, recovered
            tg.cancel_scope.cancel()
    finally:
        s.status.remove()


async def test_a_verdict_on_the_current_generation_restarts_it() -> None:
    async with session() as (s, recovered):
        s.report(CRASH)
        assert s.verdicts == [CRASH] and phase(s) is Phase.RESTARTING
        assert s.relay.live_generation == 0  # condemned: its late answers reach nobody
        await anyio.wait_all_tasks_blocked()
        assert recovered == [(CRASH, False)]
        status = json.loads(s.status.path.read_text())
        assert (status["state"], status["last_verdict"]["kind"]) == ("restarting", "crashed")


async def test_verdicts_that_come_too_late_change_nothing() -> None:
    async with session() as (s, recovered):
        s.relay.generation = 2
        s.report(CRASH)  # about generation 1, already replaced
        assert s.verdicts == [] and phase(s) is Phase.RUNNING
        s.report(replace(CRASH, generation=2))
        s.report(replace(HANG, generation=2))  # a restart is running already
        assert [v.kind for v in s.verdicts] == [VerdictKind.CRASHED]
        s.end("the editor closed its end of stdin")
        s.report(Verdict(VerdictKind.MANUAL, "Restart requested.", 2))
        await anyio.wait_all_tasks_blocked()
        assert len(s.verdicts) == 1 and len(recovered) == 1


async def test_an_outside_cause_is_waited_on_until_a_manual_restart() -> None:
    filesystem = outside(CauseClass.FILESYSTEM, VerdictKind.FILESYSTEM_NOT_ANSWERING, 1)
    async with session() as (s, recovered):
        s.report(filesystem)  # a restart cannot fix it: no restart first
        assert phase(s) is Phase.WAITING and s.waiting is not None
        assert s.waiting.verdict is filesystem
        s.report(HANG)  # the wait watches its own cause
        assert s.verdicts == [filesystem]
        manual = Verdict(VerdictKind.MANUAL, "Restart requested with `lspguard restart`.", 0)
        s.report(manual)  # of any generation
        assert phase(s) is Phase.RESTARTING and s.verdicts == [filesystem, manual]
        await anyio.wait_all_tasks_blocked()
        assert recovered == [(manual, False)]


async def test_a_cause_a_restart_may_fix_gets_one_restart_then_a_wait() -> None:
    async with session() as (s, recovered):
        network = outside(CauseClass.NETWORK, VerdictKind.NETWORK_PEER_NOT_ANSWERING, 1)
        s.report(network)  # a stale connection: one restart first
        assert phase(s) is Phase.RESTARTING
        assert network.cause is not None and s.cause_restarts == {network.cause.signature: 1}
        s.relay.generation = 2  # as the restart leaves it
        s.lifecycle.resume(editor_ready=True)
        again = replace(network, generation=2)
        s.report(again)  # the same cause in the new generation: wait on it
        assert phase(s) is Phase.WAITING and s.waiting is not None
        await anyio.wait_all_tasks_blocked()
        assert recovered == [(network, False)]


async def test_without_restarts_a_crash_ends_the_session_and_a_hang_is_recorded() -> None:
    config = replace(CONFIG, restart=replace(RestartConfig(), enabled=False))
    async with session(config) as (s, recovered):
        s.report(HANG)
        assert s.verdicts == [HANG] and phase(s) is Phase.RUNNING
        assert s.end_reason is None
        s.report(CRASH)
        assert s.end_reason == CRASH.summary and phase(s) is Phase.STOPPING
        assert recovered == []

"""The books and the recovery policy in-process, with the clock injected: no subprocess."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from lspguard.causes.policy import Step
from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.config.model import Config, FallbackBackend, RestartConfig
from lspguard.proxy.handshake import HandshakeTimer
from lspguard.proxy.pending import Direction, LatencyStats, PendingTable
from lspguard.supervise.recovery import Recovery, RestartBudget, merge_env

pytestmark = pytest.mark.timeout(10)

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT


def test_the_same_id_can_be_in_flight_both_ways() -> None:
    table = PendingTable()
    table.add(C2S, 1, "textDocument/hover", generation=1, now=10.0)
    table.add(S2C, 1, "workspace/configuration", generation=1, now=11.0)
    assert table.pop(S2C, 1) is not None and table.get(C2S, 1) is not None
    req = table.pop(C2S, 1)
    assert req is not None and req.method == "textDocument/hover" and req.age(12.5) == 2.5
    assert table.pop(C2S, 1) is None and len(table) == 0


def test_the_oldest_request_and_one_direction() -> None:
    table = PendingTable()
    table.add(C2S, "a", "x", now=5.0)
    table.add(S2C, "b", "y", now=3.0)
    table.add(C2S, "c", "z", now=4.0)
    oldest = table.oldest()
    assert oldest is not None and oldest.id == "b"
    assert [r.id for r in table.in_direction(C2S)] == ["a", "c"]


def test_latency_percentiles_over_the_window() -> None:
    stats = LatencyStats(window=100)
    for ms in range(1, 201):  # only the last 100 (101..200 ms) are kept
        stats.record("textDocument/completion", ms / 1000)
    summary = stats.summary()["textDocument/completion"]
    assert summary == {"count": 200, "p50_ms": 150.0, "p99_ms": 199.0, "max_ms": 200.0}


def test_the_handshake_clock_counts_to_the_end_of_the_first_work() -> None:
    timer = HandshakeTimer()
    timer.on_initialize_sent(now=1.0)
    assert timer.awaiting_initialize and not timer.watching_progress
    timer.on_initialize_answered(now=1.25)
    timer.on_initialized_sent(now=2.0)
    assert timer.watching_progress
    timer.on_progress({"token": "other", "value": {"kind": "report"}}, now=2.1)
    timer.on_progress({"token": 7, "value": {"kind": "begin", "title": "Loading packages"}},
                      now=2.2)
    timer.on_progress({"token": 8, "value": {"kind": "end"}}, now=2.5)  # not the first work
    assert timer.first_work_ms is None
    timer.on_progress({"token": 7, "value": {"kind": "end"}}, now=5.0)
    assert timer.as_dict() == {"initialize_ms": 250.0, "first_work_title": "Loading packages",
                               "first_work_ms": 3000.0}
    assert not timer.watching_progress  # $/progress is no longer decoded


def test_the_restart_budget_is_per_window() -> None:
    budget = RestartBudget(limit=2, window=60.0)
    assert budget.take(0.0) and budget.take(10.0)
    assert not budget.take(59.0)  # 2 within the last 60 s
    assert budget.take(60.5)  # the first one has left the window
    assert not budget.take(61.0)


def test_godebug_is_merged_not_replaced() -> None:
    env = merge_env({"GOFLAGS": "-mod=mod"}, {"GODEBUG": "asyncpreemptoff=1"},
                    {"GODEBUG": "gctrace=1"})
    assert env == {"GOFLAGS": "-mod=mod", "GODEBUG": "gctrace=1,asyncpreemptoff=1"}
    assert merge_env({}, {"GODEBUG": "asyncpreemptoff=1"}, {}) == {
        "GODEBUG": "asyncpreemptoff=1"}


@dataclass
class _Host:
    """Recovery's host as far as choosing the next backend goes."""

    config: Config
    command: list[str] = field(default_factory=lambda: ["gopls"])
    relay: Any = None
    limit: str | None = "2400MiB"

    def memory_limit_for_restart(self) -> str | None:
        return self.limit


def _verdict(kind: VerdictKind) -> Verdict:
    return Verdict(kind, "x.", 1)


def test_escalation_follows_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    """policy.py's ESCALATION: a crash gets the same server, a hang the hang overlay, then
    both walk the fallback chain (its last step stays); an OOM kill gets GOMEMLIMIT, which
    stays on later generations, and a second OOM kill stops the restarts."""
    monkeypatch.delenv("GODEBUG", raising=False)  # the overlay merges with an inherited one
    restart = replace(RestartConfig(), fallback=(
        FallbackBackend(("gopls-fork",), name="fork"), FallbackBackend(("gopls-old",))))
    recovery = Recovery(_Host(replace(Config(), restart=restart)))  # type: ignore[arg-type]
    steps = []
    for kind in (VerdictKind.CRASHED, VerdictKind.DEADLOCKED, VerdictKind.BUSY_SPIN,
                 VerdictKind.CRASHED, VerdictKind.STOPPED, VerdictKind.OUT_OF_MEMORY,
                 VerdictKind.CRASHED):
        argv, env, label = recovery.next_backend(recovery.next_step(_verdict(kind)))
        steps.append((argv, env.get("GODEBUG", ""), env.get("GOMEMLIMIT"), label))
    assert steps == [
        (["gopls"], "", None, "primary"),
        (["gopls"], "asyncpreemptoff=1", None, "primary + hang overlay"),
        (["gopls-fork"], "asyncpreemptoff=1", None, "fallback fork"),
        (["gopls-old"], "asyncpreemptoff=1", None, "fallback gopls-old"),
        (["gopls-old"], "asyncpreemptoff=1", None, "fallback gopls-old"),  # the last stays
        (["gopls"], "", "2400MiB", "primary + GOMEMLIMIT=2400MiB"),
        (["gopls-old"], "asyncpreemptoff=1", "2400MiB", "fallback gopls-old"),
    ]
    assert recovery.next_step(_verdict(VerdictKind.OUT_OF_MEMORY)) is Step.STOP


def test_a_crash_gets_no_hang_overlay_without_a_fallback_chain() -> None:
    recovery = Recovery(_Host(Config()))  # type: ignore[arg-type]
    first = recovery.next_backend(recovery.next_step(_verdict(VerdictKind.CRASHED)))
    assert first == (["gopls"], {}, "primary")


def test_an_oom_restart_keeps_a_gomemlimit_the_user_set() -> None:
    recovery = Recovery(_Host(Config(), limit=None))  # type: ignore[arg-type]
    _, env, label = recovery.next_backend(
        recovery.next_step(_verdict(VerdictKind.OUT_OF_MEMORY)))
    assert (env.get("GOMEMLIMIT"), label) == (None, "primary")

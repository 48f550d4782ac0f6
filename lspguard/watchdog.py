"""Is the backend hung, and how? The watchdog's policy, ticking about once a second.

Signals (README, "Detection"): the handshake timer; per-method request deadlines judged with the
CPU progress of the backend's process tree (advancing: busy, longer grace; flat: stuck); a
liveness ping while requests are late (a request with an unknown method, which a live JSON-RPC
loop answers with MethodNotFound); and /proc thread probes once something is late. Crashes and
protocol errors are reported by the session as they happen, not found by ticking.

What real gopls (v0.21.1) does with the ping, measured: a healthy gopls answers
`{"code": -32601, "message": "JSON RPC method not found: \"lspguard/ping\""}` within a
millisecond, also while a hover is pending. But while its initial workspace load runs, gopls
answers nothing at all: messages queue behind the load (a ping sent right after `initialized`
took 284 ms on the sample module, and none came back while `go list` hung). So an unanswered
ping during the first load is expected, and a load that is slow for a good reason (modules
downloading, flat CPU) must not be called hung at the first deadline: while the backend's
work-done progress is open, the verdict waits for deadline x stuck_grace_factor.
(tests/test_recovery_gopls.py checks both behaviours.)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

import anyio

from .probe import TreeFacts, probe_threads, tree_cpu_seconds
from .verdict import Verdict, VerdictKind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .config import WatchdogConfig
    from .pending import PendingRequest

__all__ = ["PING_METHOD", "WatchTarget", "Watchdog"]

log = logging.getLogger(__name__)

PING_METHOD = "lspguard/ping"
_CPU_WINDOW_S = 1.0


class WatchTarget(Protocol):
    """What the watchdog needs from the session."""

    @property
    def generation(self) -> int: ...

    @property
    def watching(self) -> bool:
        """False while restarting or stopping: nothing to judge then."""

    def backend_pid(self) -> int | None: ...

    def handshake_pending_since(self) -> float | None:
        """Monotonic time `initialize` went to the current generation, while unanswered."""

    def client_requests(self) -> Iterable[PendingRequest]:
        """Editor requests in flight to the current generation."""

    def send_ping(self, on_answer: Callable[[], None]) -> None: ...

    def loading(self) -> bool:
        """True while the current generation has work-done progress open (e.g. its load)."""

    def report(self, verdict: Verdict) -> None: ...


class Watchdog:
    """Judges one session's current backend generation; `run` ticks until cancelled."""

    def __init__(self, config: WatchdogConfig, target: WatchTarget) -> None:
        self.config = config
        self.target = target
        self._generation = -1
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self._cpu_samples: deque[tuple[float, float]] = deque()  # (time, tree CPU seconds)
        self.cpu_percent = 0.0
        self._ping_sent: float | None = None  # outstanding ping
        self._last_probe: TreeFacts | None = None

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.config.tick)
            verdict = self.check(time.monotonic())
            if verdict is not None:
                log.warning("verdict %s: %s", verdict.kind.value, verdict.summary)
                self.target.report(verdict)

    def check(self, now: float) -> Verdict | None:
        """One tick: a verdict, or None (healthy, or late but still within grace)."""
        target = self.target
        pid = target.backend_pid()
        if not target.watching or pid is None:
            self._generation = -1
            return None
        if target.generation != self._generation:
            self._generation = target.generation
            self._reset(now)
        self._sample_cpu(pid, now)

        handshake_since = target.handshake_pending_since()
        if handshake_since is not None and now - handshake_since > self.config.handshake_timeout:
            return self._handshake_verdict(pid, now - handshake_since)

        worst, lateness = self._most_late(now)
        if worst is None:
            self._last_probe = None
            return None
        if lateness > -(self.config.ping_timeout + self.config.tick):
            self._ensure_ping(now)  # so the ping's answer is known by the deadline
        if lateness < 0:
            return None
        return self._judge_late(pid, worst, now)

    # ------------------------------------------------------------------ signals

    def _sample_cpu(self, pid: int, now: float) -> None:
        """CPU % of one core used by the backend tree, over the last ~second of samples."""
        cpu = tree_cpu_seconds(pid)
        if cpu is None:
            return
        samples = self._cpu_samples
        samples.append((now, cpu))
        while len(samples) > 2 and now - samples[1][0] >= _CPU_WINDOW_S:
            samples.popleft()
        (t0, c0) = samples[0]
        if now > t0:
            self.cpu_percent = max(0.0, (cpu - c0) / (now - t0) * 100)

    def _most_late(self, now: float) -> tuple[PendingRequest | None, float]:
        """The request furthest past its deadline, and by how much (negative: not yet late)."""
        worst: PendingRequest | None = None
        lateness = float("-inf")
        for req in self.target.client_requests():
            late = (now - req.started) - self.config.deadline_for(req.method)
            if late > lateness:
                worst, lateness = req, late
        return worst, lateness

    def _ensure_ping(self, now: float) -> None:
        if self._ping_sent is not None:
            return
        self._ping_sent = now

        def answered() -> None:
            self._ping_sent = None

        self.target.send_ping(answered)

    def _ping_unanswered_for(self, now: float) -> float:
        return 0.0 if self._ping_sent is None else now - self._ping_sent

    # ------------------------------------------------------------------ verdicts

    def _handshake_verdict(self, pid: int, waited: float) -> Verdict:
        facts = probe_threads(pid)
        special = self._process_verdict(facts, "initialize", waited)
        if special is not None:
            return special
        return self._verdict(
            VerdictKind.HANDSHAKE_TIMEOUT,
            f"the language server did not answer initialize within {waited:.0f} s "
            f"(CPU {self.cpu_percent:.0f}%)",
            facts, method="initialize", waited_s=round(waited, 1))

    def _judge_late(self, pid: int, req: PendingRequest, now: float) -> Verdict | None:
        age = now - req.started
        deadline = self.config.deadline_for(req.method)
        facts = probe_threads(pid)
        previous, self._last_probe = self._last_probe, facts
        special = self._process_verdict(facts, req.method, age, previous)
        if special is not None:
            return special
        if self.cpu_percent >= self.config.busy_cpu_percent:
            if age < deadline * self.config.busy_grace_factor:
                return None
            return self._verdict(
                VerdictKind.BUSY_SPIN,
                f"the language server has been busy ({self.cpu_percent:.0f}% CPU) for "
                f"{age:.0f} s without answering {req.method}",
                facts, method=req.method, age_s=round(age, 1),
                cpu_percent=round(self.cpu_percent))
        unanswered = self._ping_unanswered_for(now)
        loading = self.target.loading()
        if unanswered >= self.config.ping_timeout and (
                not loading or age >= deadline * self.config.stuck_grace_factor):
            return self._verdict(
                VerdictKind.DEADLOCKED,
                f"the language server is idle and answers nothing: {req.method} waited "
                f"{age:.0f} s and a liveness ping went unanswered for {unanswered:.0f} s"
                + (" (during its workspace load)" if loading else ""),
                facts, method=req.method, age_s=round(age, 1), ping="unanswered",
                loading=loading, cpu_percent=round(self.cpu_percent))
        if age < deadline * self.config.stuck_grace_factor:
            return None
        return self._verdict(
            VerdictKind.DEADLOCKED,
            f"the request {req.method} has made no progress for {age:.0f} s while the language "
            "server sits idle (its JSON-RPC loop still answers, so the request itself is stuck)",
            facts, method=req.method, age_s=round(age, 1), ping="answered",
            cpu_percent=round(self.cpu_percent))

    def _process_verdict(self, facts: TreeFacts, method: str, age: float,
                         previous: TreeFacts | None = None) -> Verdict | None:
        """Verdicts the process state alone decides: stopped, blocked in the kernel."""
        if facts.stopped:
            return self._verdict(
                VerdictKind.STOPPED,
                f"the language server process is stopped (SIGSTOP or a debugger); {method} "
                f"has waited {age:.0f} s", facts, method=method, age_s=round(age, 1))
        blocked = facts.in_state("D")
        if blocked and (previous is None or previous.in_state("D")):
            first = blocked[0]
            where = f" in {first.syscall}" if first.syscall else ""
            on = f" on {first.path}" if first.path else ""
            return self._verdict(
                VerdictKind.BLOCKED_IN_KERNEL,
                f"the language server is blocked in the kernel{where}{on} "
                f"(uninterruptible sleep, wchan {first.wchan or '?'}); {method} has waited "
                f"{age:.0f} s", facts, method=method, age_s=round(age, 1),
                syscall=first.syscall, wchan=first.wchan, path=first.path)
        return None

    def _verdict(self, kind: VerdictKind, summary: str, facts: TreeFacts,
                 **extra: object) -> Verdict:
        return Verdict(kind, "T" + summary[1:] + "." if summary.startswith("t") else summary + ".",
                       self._generation,
                       {**extra, "process": facts.as_dict()})

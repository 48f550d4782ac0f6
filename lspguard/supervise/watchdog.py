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
(tests/system/test_recovery_gopls.py checks both behaviours.)

What a late request waits on is found by the cause classifier (causes/): a snapshot of the
whole process tree, taken off the event loop under a deadline, every tick while a request or
the handshake waits. A thread in a filesystem, FIFO or uninterruptible kernel wait for
`external_wait` seconds is the verdict at once; everything else is judged at the deadline, when
the classifier names the process and object (or, with nothing external found, a deadlock).

The classifier, the prober and psutil are imported when first needed (the first late request,
the first tick), not with the session: they are not on the way to the editor's first answer.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.proxy.proctitle import server_name
from lspguard.supervise.memory import MemoryWatch
from lspguard.supervise.progress import ProgressBook, TreeActivity
from lspguard.supervise.slow import SlowMount, SlowWatch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from lspguard.causes.classify import CauseFinder
    from lspguard.causes.model import Cause
    from lspguard.causes.probe import TreeProber
    from lspguard.causes.tree import TreeSnapshot
    from lspguard.config.model import WatchdogConfig
    from lspguard.proxy.pending import PendingRequest

# server_name lives in proxy/proctitle.py (needed before anything heavy); here too, for callers.
__all__ = ["PING_METHOD", "WatchTarget", "Watchdog", "server_name"]

log = logging.getLogger(__name__)

PING_METHOD = "lspguard/ping"
_CPU_WINDOW_S = 1.0
_PROBE_AFTER_S = 1.0  # a request or handshake waiting this long gets the tree probed


class WatchTarget(Protocol):
    """What the watchdog needs from the session."""

    @property
    def generation(self) -> int: ...

    @property
    def watching(self) -> bool:
        """False while restarting, waiting on a cause or stopping: nothing to judge then."""

    def backend_pid(self) -> int | None: ...

    def backend_name(self) -> str:
        """How the server is named in a verdict: "gopls", or its program's name."""

    def handshake_pending_since(self) -> float | None:
        """Monotonic time `initialize` went to the current generation, while unanswered."""

    def client_requests(self) -> Iterable[PendingRequest]:
        """Editor requests in flight to the current generation."""

    def send_ping(self, on_answer: Callable[[], None]) -> None: ...

    def loading(self) -> bool:
        """True while the current generation has work-done progress open (e.g. its load)."""

    def report(self, verdict: Verdict) -> None: ...

    def known_cause(self, signature: tuple[object, ...]) -> bool:
        """True for an outside cause already judged this session (a restart was tried)."""

    def server_messages(self) -> int:
        """Messages the server has sent, but answers to lspguard's own requests (a ping)."""

    def own_bytes(self) -> int:
        """Bytes the proxy wrote to the current server's stdin and read from its stdout: the
        server's own I/O is what its /proc counters show beyond these."""

    def probe_roots(self) -> list[tuple[str, str]]:
        """(role, directory) the server needs: workspace folders, GOMODCACHE, GOCACHE."""


class Watchdog:
    """Judges one session's current backend generation; `run` ticks until cancelled."""

    def __init__(self, config: WatchdogConfig, target: WatchTarget) -> None:
        self.config = config
        self.target = target
        self._prober: TreeProber | None = None
        self._generation = -1
        self.progress = ProgressBook()
        self.memory = MemoryWatch()
        self.slow_watch = SlowWatch(config.slow_fs_ms, config.probe_timeout)
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self._cpu_samples: deque[tuple[float, float]] = deque()  # (time, tree CPU seconds)
        self.cpu_percent = 0.0
        self._ping_sent: float | None = None  # outstanding ping
        self._finder: CauseFinder | None = None  # of this generation; made on first use
        self.last_snapshot: TreeSnapshot | None = None
        self.progress.reset()
        self.slow_watch.reset()

    @property
    def slow(self) -> SlowMount | None:
        """A filesystem the server needs answers slowly (a state, not a verdict)."""
        return self.slow_watch.slow

    @property
    def finder(self) -> CauseFinder:
        """The cause classifier of the current generation."""
        if self._finder is None:
            from lspguard.causes.classify import CauseFinder

            self._finder = CauseFinder(self.target.backend_name(),
                                       self.config.busy_cpu_percent, self.config.external_wait)
        return self._finder

    @property
    def prober(self) -> TreeProber:
        """Takes the tree snapshots, off the event loop and under a deadline."""
        if self._prober is None:
            from lspguard.causes.probe import TreeProber

            self._prober = TreeProber(self.config.probe_timeout)
        return self._prober

    async def run(self) -> None:
        async with anyio.create_task_group() as measurements:
            while True:
                await anyio.sleep(self.config.tick)
                await self._tick(measurements)

    async def _tick(self, measurements: anyio.abc.TaskGroup) -> None:
        now = time.monotonic()
        pid = self.target.backend_pid()
        snap = None
        if pid is not None and self.target.watching and self._wants_probe(now):
            snap = await self.prober.snapshot(pid)
            now = time.monotonic()
        try:
            if pid is not None:
                self.memory.sample(pid, sum(p.rss for p in snap.processes.values())
                                   if snap is not None and snap.alive else None)
            verdict = self.check(now, snap)
            due = self.slow_watch.due(self.target.probe_roots(), snap, now) \
                if pid is not None and self.target.watching else []
        except Exception:  # a bug in judging must never end the editor's session
            log.exception("the watchdog failed to judge this tick (skipped)")
            return
        if due:  # off the tick: a measurement takes a helper process's start
            measurements.start_soon(self.slow_watch.measure, due)
        if verdict is not None:
            log.warning("verdict %s: %s", verdict.kind.value, verdict.summary)
            self.target.report(verdict)

    def _wants_probe(self, now: float) -> bool:
        since = self.target.handshake_pending_since()
        if since is not None and now - since >= _PROBE_AFTER_S:
            return True
        return any(now - r.started >= _PROBE_AFTER_S for r in self.target.client_requests())

    def check(self, now: float, snap: TreeSnapshot | None = None) -> Verdict | None:
        """One tick, given the tree snapshot taken for it (if any): a verdict, or None
        (healthy, or late but still within grace)."""
        target = self.target
        pid = target.backend_pid()
        if not target.watching or pid is None:
            self._generation = -1
            return None
        if target.generation != self._generation:
            self._generation = target.generation
            self._reset(now)
        if snap is None:
            self._cpu_samples.clear()  # nothing waits: no CPU rate needed (see _sample_cpu)
            self.progress.reset()
        else:
            self._sample_cpu(snap, now)
            self.finder.observe(snap, now)
            moved = self.progress.observe(TreeActivity.of(snap, target.own_bytes()),
                                          target.server_messages(), now)
            if moved:
                log.debug("progress: %s", moved)
            self.last_snapshot = snap
            if len(self._cpu_samples) < 2:
                return None  # the first look at a wait: judge once the CPU rate is known

        handshake_since = target.handshake_pending_since()
        if handshake_since is not None:
            waited = now - handshake_since
            early = self._early(snap, now, waited)
            if early is not None:
                return self._cause_verdict(early, "initialize", waited)
            quiet = self.progress.quiet_for(handshake_since, now)
            busy = self.cpu_percent >= self.config.busy_cpu_percent
            limit = self.config.handshake_timeout * (self.config.busy_grace_factor if busy
                                                     else 1.0)
            if quiet > limit:
                return self._handshake_verdict(snap, now, waited)

        worst, lateness = self._most_late(now)
        if worst is None:
            return None
        early = self._early(snap, now, now - worst.started)
        if early is not None:
            return self._cause_verdict(early, worst.method, now - worst.started, worst)
        if lateness > -(self.config.ping_timeout + self.config.tick):
            self._ensure_ping(now)  # so the ping's answer is known by the deadline
        if lateness < 0:
            return None
        return self._judge_late(snap, worst, now)

    def _early(self, snap: TreeSnapshot | None, now: float, waited: float) -> Cause | None:
        """A filesystem, FIFO or kernel wait that has lasted `external_wait`, or an outside
        cause already judged once (its restart did not help): the verdict now."""
        wait = self.config.external_wait
        if snap is None or waited < wait:
            return None
        early = self.finder.early(snap, now, wait)
        if early is not None:
            return early
        again = self.finder.find(snap, now, min_wait=wait)
        return again if again.cls.external and self.target.known_cause(again.signature) else None

    # ------------------------------------------------------------------ signals

    def _sample_cpu(self, snap: TreeSnapshot, now: float) -> None:
        """CPU % of one core used by the backend tree, over the last ~second of samples.

        Read from the tree snapshot, which is taken off the event loop and only while a request
        or the handshake waits: listing a process's descendants reads every /proc/PID (5 ms
        with 130 processes here), too long to run on the loop every tick."""
        cpu = sum(proc.cpu_s for proc in snap.processes.values())
        samples = self._cpu_samples
        samples.append((now, cpu))
        while len(samples) > 2 and now - samples[1][0] >= _CPU_WINDOW_S:
            samples.popleft()
        (t0, c0) = samples[0]
        if now > t0:
            self.cpu_percent = max(0.0, (cpu - c0) / (now - t0) * 100)

    def _most_late(self, now: float) -> tuple[PendingRequest | None, float]:
        """The request furthest past its deadline, and by how much (negative: not yet late).
        A deadline is time without progress (progress.py), not age."""
        worst: PendingRequest | None = None
        lateness = float("-inf")
        for req in self.target.client_requests():
            late = self.progress.quiet_for(req.started, now) - \
                self.config.deadline_for(req.method)
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

    def _find(self, snap: TreeSnapshot | None, now: float) -> Cause | None:
        """At a deadline: the request has waited long enough that a child or a connection
        present now is what it waits on."""
        if snap is None or not snap.alive:
            return None
        return self.finder.find(snap, now)

    def _handshake_verdict(self, snap: TreeSnapshot | None, now: float,
                           waited: float) -> Verdict:
        from lspguard.causes.model import CauseClass

        cause = self._find(snap, now)
        if cause is not None and cause.cls not in (CauseClass.DEADLOCK, CauseClass.CPU):
            return self._cause_verdict(cause, "initialize", waited)
        return self._verdict(
            VerdictKind.HANDSHAKE_TIMEOUT,
            f"the language server did not answer initialize within {waited:.0f} s "
            f"(CPU {self.cpu_percent:.0f}%)", cause, method="initialize",
            waited_s=round(waited, 1))

    def _judge_late(self, snap: TreeSnapshot | None, req: PendingRequest,
                    now: float) -> Verdict | None:
        from lspguard.causes.model import CauseClass

        age = now - req.started
        quiet = self.progress.quiet_for(req.started, now)
        deadline = self.config.deadline_for(req.method)
        cause = self._find(snap, now)
        if cause is not None and cause.cls is CauseClass.STOPPED:
            return self._cause_verdict(cause, req.method, age, req)
        if self.cpu_percent >= self.config.busy_cpu_percent:
            if quiet < deadline * self.config.busy_grace_factor:
                return None
            busy = cause if cause is not None and cause.cls is CauseClass.CPU else None
            who = f"{busy.culprit.role} (pid {busy.culprit.pid})" if busy else \
                "the language server"
            return self._verdict(
                VerdictKind.BUSY_SPIN,
                f"{who} has been busy ({self.cpu_percent:.0f}% CPU) for {quiet:.0f} s with no "
                f"other progress (no I/O, no child process, no message) while {req.method} "
                f"waited {age:.0f} s", busy, req, age_s=round(age, 1),
                quiet_s=round(quiet, 1), cpu_percent=round(self.cpu_percent))
        unanswered = self._ping_unanswered_for(now)
        loading = self.target.loading()
        if unanswered >= self.config.ping_timeout and (
                not loading or quiet >= deadline * self.config.stuck_grace_factor):
            if cause is not None and cause.cls is not CauseClass.DEADLOCK:
                return self._cause_verdict(cause, req.method, age, req)
            return self._verdict(
                VerdictKind.DEADLOCKED,
                f"the language server is idle and answers nothing, and it waits on nothing "
                f"outside itself: {req.method} waited {age:.0f} s and a liveness ping went "
                f"unanswered for {unanswered:.0f} s"
                + (" (during its workspace load)" if loading else ""),
                cause, req, age_s=round(age, 1), ping="unanswered", loading=loading,
                cpu_percent=round(self.cpu_percent))
        if quiet < deadline * self.config.stuck_grace_factor:
            return None
        if cause is not None and cause.cls is not CauseClass.DEADLOCK:
            return self._cause_verdict(cause, req.method, age, req)
        return self._verdict(
            VerdictKind.DEADLOCKED,
            f"the request {req.method} has made no progress for {age:.0f} s while the language "
            "server sits idle (its JSON-RPC loop still answers, so the request itself is stuck)",
            cause, req, age_s=round(age, 1), ping="answered",
            cpu_percent=round(self.cpu_percent))

    def _cause_verdict(self, cause: Cause, method: str, age: float,
                       req: PendingRequest | None = None) -> Verdict:
        return self._verdict(VerdictKind(cause.cls.value), cause.sentence, cause, req,
                             method=method, age_s=round(age, 1))

    def _verdict(self, kind: VerdictKind, summary: str, cause: Cause | None,
                 req: PendingRequest | None = None, **extra: object) -> Verdict:
        facts: dict[str, object] = dict(extra)
        if req is not None:
            facts["method"] = req.method
            facts["request"] = {"id": req.id, "method": req.method,
                                "age_s": facts.get("age_s")}
        if cause is not None:  # the old flat keys, for readers of earlier bundles
            facts.update(syscall=cause.culprit.syscall, wchan=cause.culprit.wchan,
                         path=cause.blocker.path)
        if summary.startswith("the "):  # never a name: "gopls's `go list` (pid 812) ..."
            summary = summary[0].upper() + summary[1:]
        return Verdict(kind, summary if summary.endswith(".") else summary + ".",
                       self._generation, facts, cause=cause)

"""The watchdog's policy in-process: a fake target, hand-made tree snapshots, an injected clock.

What the subprocess tests show as a timeout, these show as a wrong verdict at a given second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest

from lspguard.causes.kernel import WaitKind, classify_wait
from lspguard.causes.tree import ProcessFacts, ThreadWait, TreeSnapshot
from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.config.model import WatchdogConfig
from lspguard.procfs.mounts import Mount
from lspguard.proxy.pending import Direction, PendingRequest, PendingTable
from lspguard.supervise.watchdog import Watchdog

pytestmark = pytest.mark.timeout(10)

PID = 2_000_000_000  # no such process: the CPU sampler finds nothing and says 0 %
CONFIG = WatchdogConfig(tick=0.5, handshake_timeout=10.0, ping_timeout=1.0, external_wait=3.0,
                        deadlines={"textDocument/hover": 5.0}, stuck_grace_factor=2.0)


@dataclass
class FakeTarget:
    """The session as the watchdog sees it (the WatchTarget Protocol)."""

    generation: int = 1
    watching: bool = True
    handshake_since: float | None = None
    pending: PendingTable = field(default_factory=PendingTable)
    pings: list[Callable[[], None]] = field(default_factory=list)
    is_loading: bool = False
    known: set[tuple[object, ...]] = field(default_factory=set)
    reports: list[Verdict] = field(default_factory=list)
    messages: int = 0
    stdio_bytes: int = 0

    def backend_pid(self) -> int | None:
        return PID

    def backend_name(self) -> str:
        return "gopls"

    def handshake_pending_since(self) -> float | None:
        return self.handshake_since

    def client_requests(self) -> Iterable[PendingRequest]:
        return self.pending.in_direction(Direction.CLIENT_TO_SERVER)

    def send_ping(self, on_answer: Callable[[], None]) -> None:
        self.pings.append(on_answer)

    def loading(self) -> bool:
        return self.is_loading

    def report(self, verdict: Verdict) -> None:
        self.reports.append(verdict)

    def known_cause(self, signature: tuple[object, ...]) -> bool:
        return signature in self.known

    def server_messages(self) -> int:
        return self.messages

    def own_bytes(self) -> int:
        return self.stdio_bytes

    def probe_roots(self) -> list[tuple[str, str]]:
        return []


def tree(*threads: ThreadWait, at: float) -> TreeSnapshot:
    gopls = ProcessFacts(PID, 1, ("gopls",), "S", 1.0, threads)
    return TreeSnapshot(PID, {PID: gopls}, (Mount("/", "ext4", "/dev/vda"),
                                            Mount("/ws", "fuse.grpcfuse", "grpcfuse")), at)


def idle(at: float) -> TreeSnapshot:
    return tree(ThreadWait(1, "S", "futex_wait_queue", "futex", kind=WaitKind.PARKED), at=at)


def hung_stat(at: float) -> TreeSnapshot:
    kind, fs = classify_wait("S", "request_wait_answer", "newfstatat")
    return tree(ThreadWait(2, "S", "request_wait_answer", "newfstatat", (1, 2), path="/ws/go.mod",
                           kind=kind, fs_family=fs), at=at)


def run(dog: Watchdog, seconds: Iterable[float],
        snap: Callable[[float], TreeSnapshot | None]) -> Verdict | None:
    for now in seconds:
        verdict = dog.check(now, snap(now))
        if verdict is not None:
            return verdict
    return None


def ticks(start: float, stop: float) -> list[float]:
    return [start + i * 0.5 for i in range(int((stop - start) / 0.5) + 1)]


def test_a_hung_mount_is_the_verdict_after_external_wait_not_the_deadline() -> None:
    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=100.0)
    verdict = run(dog, ticks(100.0, 110.0), hung_stat)
    assert verdict is not None and verdict.kind is VerdictKind.FILESYSTEM_NOT_ANSWERING
    assert verdict.cause is not None and verdict.cause.blocker.mount_point == "/ws"
    assert verdict.facts["request"]["method"] == "textDocument/hover"
    # first seen at 100.0: 3 s of waiting is evidence enough, at 103.0, well before 105.0
    assert verdict.facts["age_s"] == 3.0


def test_an_idle_server_is_a_deadlock_only_after_deadline_and_an_unanswered_ping() -> None:
    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    assert run(dog, ticks(0.0, 4.5), idle) is None
    assert len(target.pings) == 1  # sent ahead of the deadline, so its answer is known by then
    verdict = run(dog, ticks(5.0, 7.0), idle)
    assert verdict is not None and verdict.kind is VerdictKind.DEADLOCKED
    assert verdict.cause is not None and verdict.cause.blocker.kind == "none"


def test_an_answered_ping_gives_the_stuck_grace() -> None:
    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    for now in ticks(0.0, 9.5):
        assert dog.check(now, idle(now)) is None, now
        while target.pings:
            target.pings.pop()()  # the JSON-RPC loop answers at once
    verdict = run(dog, ticks(10.0, 11.0), idle)  # deadline 5 s x stuck_grace_factor 2
    assert verdict is not None and verdict.kind is VerdictKind.DEADLOCKED
    assert verdict.facts["ping"] == "answered"


def test_a_cause_already_judged_once_is_the_verdict_early_in_the_next_generation() -> None:
    from lspguard.causes.kernel import WaitKind as K
    from lspguard.causes.tree import SocketFacts

    sock = SocketFacts(7, "tcp", "127.0.0.1:40000", "127.0.0.1:8123", "ESTABLISHED", 0)

    def downloading(at: float) -> TreeSnapshot:
        gopls = ProcessFacts(PID, 1, ("gopls",), "S", 1.0, (ThreadWait(1, "S", None, "futex",
                                                                       kind=K.PARKED),))
        go = ProcessFacts(PID + 1, PID, ("go", "list"), "S", 0.0,
                          (ThreadWait(9, "S", "ep_poll", "epoll_pwait", kind=K.PARKED),), (sock,))
        return TreeSnapshot(PID, {PID: gopls, PID + 1: go}, (), at)

    first = FakeTarget()
    dog = Watchdog(CONFIG, first)
    first.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    assert run(dog, ticks(0.0, 4.5), downloading) is None  # a download may be slow: deadline
    verdict = run(dog, ticks(5.0, 7.0), downloading)
    assert verdict is not None and verdict.kind is VerdictKind.NETWORK_PEER_NOT_ANSWERING
    assert verdict.cause is not None

    again = FakeTarget(generation=2, known={verdict.cause.signature})
    dog = Watchdog(CONFIG, again)
    again.pending.add(Direction.CLIENT_TO_SERVER, 2, "textDocument/hover", 2, now=50.0)
    repeat = run(dog, ticks(50.0, 54.0), downloading)
    assert repeat is not None and repeat.kind is VerdictKind.NETWORK_PEER_NOT_ANSWERING
    assert repeat.facts["age_s"] == 3.0  # external_wait, not the 5 s deadline


def test_the_handshake_and_nothing_while_not_watching() -> None:
    target = FakeTarget(handshake_since=0.0)
    dog = Watchdog(CONFIG, target)
    verdict = run(dog, ticks(0.0, 11.0), idle)
    assert verdict is not None and verdict.kind is VerdictKind.HANDSHAKE_TIMEOUT
    quiet = FakeTarget(handshake_since=0.0, watching=False)
    assert run(Watchdog(CONFIG, quiet), ticks(0.0, 20.0), hung_stat) is None


# ---------------------------------------------------------------- progress, not age


def slow_read(at: float) -> TreeSnapshot:
    """`go list` reading files on a slow mount: seen in a FUSE wait at every sample, but a
    different call each time (its context switches move), and its I/O counts grow."""
    n = int(at * 2)
    kind, fs = classify_wait("S", "request_wait_answer", "read")
    gopls = ProcessFacts(PID, 1, ("gopls",), "S", 1.0,
                         (ThreadWait(1, "S", "futex_wait_queue", "futex", kind=WaitKind.PARKED),))
    go = ProcessFacts(PID + 1, PID, ("go", "list", "-json"), "S", 0.1 * n,
                      (ThreadWait(9, "S", "request_wait_answer", "read", (3, 4),
                                  fd_path="/ws/big.go", kind=kind, fs_family=fs,
                                  activity=1000 + n),),
                      io=(4096 * n, 0, n, 0))
    return TreeSnapshot(PID, {PID: gopls, PID + 1: go},
                        (Mount("/", "ext4", "/dev/vda"), Mount("/ws", "fuse.grpcfuse", "x")), at)


def test_a_slow_mount_is_no_verdict_however_long_the_request_waits() -> None:
    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    # the hover's deadline is 5 s, x2 stuck grace: 6 times that without a verdict
    assert run(dog, ticks(0.0, 60.0), slow_read) is None


def test_a_thread_seen_once_in_a_slow_read_is_not_a_filesystem_that_does_not_answer() -> None:
    """At the deadline, a wait that just began is no cause: never "has waited 0 s"."""
    def read_then_idle(at: float) -> TreeSnapshot:
        return slow_read(at) if at >= 9.5 else idle(at)

    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    verdict = run(dog, ticks(0.0, 10.0), read_then_idle)
    assert verdict is not None and verdict.kind is VerdictKind.DEADLOCKED, verdict
    assert "0 s" not in verdict.summary


def busy(at: float, *, io: bool) -> TreeSnapshot:
    """gopls at 100% of a core; with `io`, writing its file cache as it type-checks."""
    n = int(at * 2)
    gopls = ProcessFacts(PID, 1, ("gopls",), "R", 0.5 * n,
                         (ThreadWait(1, "R", None, "running", kind=WaitKind.RUNNING),),
                         io=(0, (1 << 20) * n if io else 0, 0, 0))
    return TreeSnapshot(PID, {PID: gopls}, (), at)


def test_a_busy_load_that_does_io_is_no_busy_spin() -> None:
    target = FakeTarget(is_loading=True)
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    assert run(dog, ticks(0.0, 60.0), lambda at: busy(at, io=True)) is None


def test_cpu_with_no_other_progress_is_busy_spin_after_deadline_times_grace() -> None:
    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    assert run(dog, ticks(0.0, 14.5), lambda at: busy(at, io=False)) is None
    verdict = run(dog, ticks(15.0, 16.0), lambda at: busy(at, io=False))  # 5 s x busy grace 3
    assert verdict is not None and verdict.kind is VerdictKind.BUSY_SPIN
    assert "no other progress" in verdict.summary


def test_messages_from_the_server_are_progress_but_its_answer_to_the_ping_is_not() -> None:
    target = FakeTarget()
    dog = Watchdog(CONFIG, target)
    target.pending.add(Direction.CLIENT_TO_SERVER, 1, "textDocument/hover", 1, now=0.0)
    for now in ticks(0.0, 30.0):  # $/progress reports every tick: the load goes on
        target.messages += 1
        assert dog.check(now, idle(now)) is None, now
    target.stdio_bytes += 200  # the ping and its answer: the proxy's own bytes
    verdict = run(dog, ticks(30.5, 45.0), idle)
    assert verdict is not None and verdict.kind is VerdictKind.DEADLOCKED

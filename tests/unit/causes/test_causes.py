"""The cause classifier in-process: the kernel table, the tree rules, the sentences, the policy.

Snapshots are built by hand with an injected clock; the fault lab (test_faultlab_gopls.py)
checks the same rules against the real kernel and real gopls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from lspguard.causes.classify import CauseFinder, command_label
from lspguard.causes.kernel import WaitKind, classify_wait
from lspguard.causes.model import CauseClass
from lspguard.causes.policy import POLICY, Action, policy_for
from lspguard.causes.tree import ProcessFacts, SocketFacts, ThreadWait, TreeSnapshot
from lspguard.causes.verdict import VerdictKind
from lspguard.procfs.mounts import Mount

pytestmark = pytest.mark.timeout(10)

GOPLS = ("/root/go/bin/gopls", "-debug=127.0.0.1:0")
GO_LIST = ("/usr/local/go/bin/go", "list", "-e", "-json=Name", "-compiled=true", "--", "./...")
MOUNTS = (Mount("/", "overlay", "overlay"), Mount("/workspace", "fuse.grpcfuse", "grpcfuse"),
          Mount("/workspace/sub", "ext4", "/dev/vda1"))


def parked(tid: int) -> ThreadWait:
    return ThreadWait(tid, "S", "futex_wait_queue", "futex", kind=WaitKind.PARKED)


def stat_on_fuse(tid: int, path: str = "/workspace/go.work") -> ThreadWait:
    kind, fs = classify_wait("S", "request_wait_answer", "newfstatat")
    return ThreadWait(tid, "S", "request_wait_answer", "newfstatat", (0xFFFFFF9C, 0x1000),
                      path=path, kind=kind, fs_family=fs)


def snap(*procs: ProcessFacts, at: float = 0.0) -> TreeSnapshot:
    return TreeSnapshot(procs[0].pid, {p.pid: p for p in procs}, MOUNTS, taken_at=at)


def gopls(*threads: ThreadWait, sockets: tuple[SocketFacts, ...] = (),
          cpu: float = 1.0) -> ProcessFacts:
    return ProcessFacts(100, 1, GOPLS, "S", cpu, threads or (parked(100),), sockets)


def observe(finder: CauseFinder, build: Callable[[float], TreeSnapshot],
            times: list[float]) -> TreeSnapshot:
    last = None
    for t in times:
        last = build(t)
        finder.observe(last, t)
    assert last is not None
    return last


# ------------------------------------------------------------------------- the kernel table

@pytest.mark.parametrize(("state", "wchan", "syscall", "fd_path", "kind"), [
    ("S", "request_wait_answer", "newfstatat", None, WaitKind.FILESYSTEM),
    ("D", "rpc_wait_bit_killable", "openat", None, WaitKind.FILESYSTEM),
    ("S", "p9_client_rpc", "getdents64", None, WaitKind.FILESYSTEM),
    ("D", "wait_for_response", "read", "/mnt/smb/a.go", WaitKind.FILESYSTEM),
    ("D", "rwsem_down_read_slowpath", "newfstatat", None, WaitKind.FILESYSTEM),  # inode lock
    ("S", "wait_for_partner", "openat", None, WaitKind.FIFO_OPEN),
    ("S", "anon_pipe_read", "read", "pipe:[77]", WaitKind.PIPE),
    ("S", "wait_woken", "read", "pipe:[77]", WaitKind.PIPE),
    ("S", "do_wait", "wait4", None, WaitKind.CHILD),
    ("D", "kernel_clone", "vfork", None, WaitKind.CHILD),
    ("S", "wait_woken", "recvfrom", "socket:[5]", WaitKind.SOCKET),
    ("S", "sk_wait_data", "read", "socket:[5]", WaitKind.SOCKET),
    ("S", "futex_wait_queue", "futex", None, WaitKind.PARKED),
    ("S", "ep_poll", "epoll_pwait", None, WaitKind.PARKED),
    ("S", "do_nanosleep", "nanosleep", None, WaitKind.PARKED),
    ("D", "some_new_driver_wait", "ioctl", None, WaitKind.UNINTERRUPTIBLE),
    ("T", "do_signal_stop", "futex", None, WaitKind.STOPPED),
    ("R", None, "running", None, WaitKind.RUNNING),
])
def test_kernel_table(state: str, wchan: str, syscall: str, fd_path: str | None,
                      kind: WaitKind) -> None:
    assert classify_wait(state, wchan, syscall, fd_path)[0] is kind


def test_the_filesystem_family_is_named_by_the_wchan() -> None:
    assert classify_wait("S", "request_wait_answer", "newfstatat")[1] == "fuse"
    assert classify_wait("D", "nfs_wait_bit_killable", "read")[1] == "nfs"
    assert classify_wait("S", "p9_client_rpc", "openat")[1] == "9p"


@pytest.mark.parametrize(("argv", "label"), [
    (GO_LIST, "go list"),
    (("/usr/bin/go", "mod", "download", "-json"), "go mod download"),
    (("/bin/sh", "/tmp/bin/go", "list", "-e"), "go list"),
    (("/usr/bin/git", "-c", "x=y", "fetch"), "git fetch"),
    (("/opt/gopackagesdriver", "--", "./..."), "gopackagesdriver"),
])
def test_children_are_named_as_a_user_knows_them(argv: tuple[str, ...], label: str) -> None:
    assert command_label(argv) == label


# ------------------------------------------------------------------------- the classifier

def test_a_go_list_on_a_hung_mount_is_named_with_path_mount_and_type() -> None:
    finder = CauseFinder("gopls")

    def build(t: float) -> TreeSnapshot:
        child = ProcessFacts(200, 100, GO_LIST, "S", 0.1, (parked(200), stat_on_fuse(201)))
        waiting = ThreadWait(101, "S", "do_wait", "waitid", kind=WaitKind.CHILD)
        return snap(gopls(parked(100), waiting), child, at=t)

    s = observe(finder, build, [10.0, 11.0, 12.0])
    assert finder.early(s, 12.0, min_wait=3.0) is None  # 2 s: not yet evidence enough
    s = observe(finder, build, [13.0, 14.0])
    cause = finder.early(s, 14.0, min_wait=3.0)
    assert cause is not None
    assert cause.cls is CauseClass.FILESYSTEM and not cause.restart_helps
    assert cause.culprit.pid == 200 and cause.culprit.role == "gopls's `go list`"
    assert cause.culprit.syscall == "newfstatat" and cause.culprit.wchan == "request_wait_answer"
    b = cause.blocker
    assert (b.path, b.mount_point, b.fs_type) == ("/workspace/go.work", "/workspace",
                                                  "fuse.grpcfuse")
    assert cause.waited_s == 4.0
    assert cause.sentence == (
        "gopls's `go list` (pid 200) has waited 4 s in `stat()` on /workspace/go.work: the "
        "filesystem there (fuse.grpcfuse at /workspace) is not answering. Restarting gopls "
        "cannot fix this.")
    assert "/workspace" in cause.fix
    assert [c.role for c in cause.chain] == ["gopls", "gopls's `go list`"]


def test_a_wait_that_ends_starts_its_clock_afresh() -> None:
    finder = CauseFinder("gopls")
    for t in (0.0, 1.0, 2.0, 3.0):
        finder.observe(snap(gopls(stat_on_fuse(101)), at=t), t)
    finder.observe(snap(gopls(parked(101)), at=4.0), 4.0)  # the stat returned
    s = snap(gopls(stat_on_fuse(101)), at=5.0)
    finder.observe(s, 5.0)
    assert finder.early(s, 5.0, min_wait=3.0) is None


def test_a_fifo_with_no_writer() -> None:
    finder = CauseFinder("gopls")
    kind, _ = classify_wait("S", "wait_for_partner", "openat")
    fifo = ThreadWait(201, "S", "wait_for_partner", "openat", (0, 1), path="/ws/zz_fifo.go",
                      kind=kind)
    s = observe(finder, lambda t: snap(gopls(), ProcessFacts(200, 100, GO_LIST, "S", 0, (fifo,)),
                                       at=t), [0.0, 3.5])
    cause = finder.early(s, 3.5, 3.0)
    assert cause is not None and cause.cls is CauseClass.SPECIAL_FILE
    assert cause.blocker.path == "/ws/zz_fifo.go" and cause.blocker.file_type == "FIFO"
    assert "FIFO" in cause.sentence and "cannot fix" in cause.sentence


def test_the_servers_own_stdin_read_is_no_cause() -> None:
    stdin = ThreadWait(101, "S", "anon_pipe_read", "read", (0,), 0, "pipe:[9]",
                       kind=WaitKind.PIPE)
    finder = CauseFinder("gopls")
    s = observe(finder, lambda t: snap(gopls(parked(100), stdin), at=t), [0.0, 10.0])
    assert finder.early(s, 10.0, 3.0) is None
    assert finder.find(s, 10.0).cls is CauseClass.DEADLOCK


def test_a_connection_that_never_answers() -> None:
    sock = SocketFacts(555, "tcp", "127.0.0.1:40000", "127.0.0.1:8123", "ESTABLISHED", 0)
    listen = SocketFacts(556, "tcp", "127.0.0.1:6060", "0.0.0.0:0", "LISTEN", 0)
    debug_client = SocketFacts(557, "tcp", "127.0.0.1:6060", "127.0.0.1:50000", "ESTABLISHED", 0)
    finder = CauseFinder("gopls")
    go = ProcessFacts(200, 100, ("/usr/bin/go", "mod", "download"), "S", 0.0, (parked(200),),
                      (sock,))
    s = observe(finder, lambda t: snap(gopls(sockets=(listen, debug_client)), go, at=t),
                [0.0, 5.0])
    assert finder.early(s, 5.0, 3.0) is None  # a network wait waits for the deadline
    cause = finder.find(s, 5.0, min_wait=3.0)
    assert cause.cls is CauseClass.NETWORK and cause.blocker.peer == "127.0.0.1:8123"
    assert cause.culprit.role == "gopls's `go mod download`"
    assert policy_for(cause.cls.value).confirm_restarts == 1


def test_a_child_that_never_returns_and_a_busy_child() -> None:
    finder = CauseFinder("gopls")
    sleeper = ProcessFacts(300, 200, ("sleep", "1000"), "S", 0.0, (parked(300),))
    wrapper = ProcessFacts(200, 100, ("/bin/sh", "/tmp/go", "list"), "S", 0.0, (parked(200),))
    # gopls's telemetry sidecar (gopls re-executed) lives as long as gopls: never the cause
    sidecar = ProcessFacts(150, 100, ("/root/go/bin/gopls", "** telemetry **"), "S", 0.0,
                           (parked(150),), started=0.5)
    finder.observe(snap(gopls(), sidecar, at=-100.0), -100.0)
    s = observe(finder, lambda t: snap(gopls(), sidecar, wrapper, sleeper, at=t), [0.0, 6.0])
    cause = finder.find(s, 6.0, min_wait=3.0)
    assert cause.cls is CauseClass.CHILD and cause.culprit.pid == 300
    assert cause.culprit.role == "gopls's `go list`'s `sleep`"
    assert "never returns" in cause.sentence

    busy = CauseFinder("gopls")
    busy.observe(snap(gopls(), ProcessFacts(200, 100, GO_LIST, "R", 1.0, ()), at=0.0), 0.0)
    s = snap(gopls(), ProcessFacts(200, 100, GO_LIST, "R", 1.9, ()), at=1.0)
    busy.observe(s, 1.0)
    cause = busy.find(s, 1.0, min_wait=3.0)
    assert cause.cls is CauseClass.CPU and cause.culprit.role == "gopls's `go list`"
    assert cause.facts["cpu_percent"] == 90


def test_stopped_wins_and_nothing_external_is_a_deadlock() -> None:
    finder = CauseFinder("gopls")
    stopped = ProcessFacts(100, 1, GOPLS, "T", 1.0, (ThreadWait(100, "T", None, None,
                                                                kind=WaitKind.STOPPED),))
    s = snap(stopped, at=1.0)
    finder.observe(s, 1.0)
    assert finder.find(s, 1.0).cls is CauseClass.STOPPED
    s = snap(gopls(parked(100), parked(101)), at=2.0)
    finder.observe(s, 2.0)
    cause = finder.find(s, 2.0)
    assert cause.cls is CauseClass.DEADLOCK and cause.restart_helps
    assert cause.blocker.kind == "none"


def test_as_dict_is_the_status_and_bundle_shape() -> None:
    finder = CauseFinder("gopls")
    s = observe(finder, lambda t: snap(gopls(stat_on_fuse(101)), at=t), [0.0, 3.0])
    cause = finder.early(s, 3.0, 3.0)
    assert cause is not None
    doc = cause.as_dict()
    assert doc["class"] == "filesystem_not_answering" and doc["restart_helps"] is False
    assert doc["object"] == {"kind": "path", "path": "/workspace/go.work",
                             "mount_point": "/workspace", "fs_type": "fuse.grpcfuse",
                             "source": "grpcfuse"}
    assert doc["process"]["pid"] == 100 and doc["process"]["role"] == "gopls"


# ------------------------------------------------------------------------- the policy

def test_every_verdict_kind_has_a_policy_and_outside_causes_never_thrash() -> None:
    assert {k.value for k in VerdictKind} == set(POLICY)
    for cls in CauseClass:
        policy = policy_for(cls.value)
        if cls.external:
            assert policy.action is Action.WAIT_ON_CAUSE and policy.confirm_restarts <= 1
        else:
            assert policy.action is Action.RESTART
    for early in ("filesystem_not_answering", "special_file_no_partner", "blocked_in_kernel"):
        assert POLICY[early].confirm_restarts == 0 and POLICY[early].early


def test_a_snapshot_of_a_process_that_is_gone_still_names_it() -> None:
    """A server that died between two probes: the snapshot holds no process at all."""
    finder = CauseFinder("gopls")
    empty = TreeSnapshot(100, {}, MOUNTS, taken_at=1.0)
    finder.observe(empty, 1.0)
    cause = finder.find(empty, 1.0)
    assert cause.cls is CauseClass.DEADLOCK and cause.culprit.pid == 100
    assert finder.early(empty, 1.0, 3.0) is None


def test_a_packages_driver_is_named_by_gopackagesdriver_whatever_it_became() -> None:
    """A driver script that `exec`s another program runs as that program: it is still named
    as gopls's GOPACKAGESDRIVER, from gopls's environment."""
    finder = CauseFinder("gopls")
    became = ProcessFacts(200, 100, ("sleep", "3600"), "S", 0.0, (parked(200),))

    def build(t: float) -> TreeSnapshot:
        return replace(snap(gopls(), became, at=t), driver="/work/tools/driver.sh")

    s = observe(finder, build, [0.0, 6.0])
    cause = finder.find(s, 6.0, min_wait=3.0)
    assert cause.cls is CauseClass.CHILD
    assert cause.culprit.role == ("gopls's GOPACKAGESDRIVER /work/tools/driver.sh "
                                  "(now running `sleep`)")
    assert "GOPACKAGESDRIVER /work/tools/driver.sh" in cause.sentence
    # without GOPACKAGESDRIVER, the same child is what it runs
    plain = CauseFinder("gopls")
    s = observe(plain, lambda t: snap(gopls(), became, at=t), [0.0, 6.0])
    assert plain.find(s, 6.0, min_wait=3.0).culprit.role == "gopls's `sleep`"


def test_a_filesystem_wait_counts_only_while_the_same_call_makes_no_progress() -> None:
    """A thread seen in a FUSE wait at every sample but with its activity moving (a slow
    mount, one request after another) has waited 0 s each time: no cause, and never a
    sentence that says "has waited 0 s"."""
    finder = CauseFinder("gopls", external_wait=3.0)

    def working(t: float) -> TreeSnapshot:
        thread = replace(stat_on_fuse(101), activity=int(t * 10))
        return snap(gopls(thread), at=t)

    s = observe(finder, working, [0.0, 2.0, 4.0, 6.0, 8.0])
    assert finder.early(s, 8.0, 3.0) is None
    assert finder.find(s, 8.0).cls is CauseClass.DEADLOCK  # nothing outside that is stuck

    stuck = CauseFinder("gopls", external_wait=3.0)
    s = observe(stuck, lambda t: snap(gopls(replace(stat_on_fuse(101), activity=7)), at=t),
                [0.0, 2.0, 4.0])
    cause = stuck.early(s, 4.0, 3.0)
    assert cause is not None and cause.cls is CauseClass.FILESYSTEM
    assert "has waited 4 s" in cause.sentence

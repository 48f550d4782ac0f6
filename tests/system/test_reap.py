"""proxy/reap.py against real processes: a tree that leaves its parent's session and group, is
stopped, and must still end whole, by pid; members that have already gone are no error. And
Backend.stop, which uses it, on a server that has exited before it was stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import anyio
import pytest

from lspguard.procfs.processes import read_stat, start_ticks
from lspguard.proxy import reap
from lspguard.proxy.backend import Backend
from lspguard.proxy.pipes import FrameReader

from ..held import Held, Holding, holding
from ..polling import wait_until, wait_until_async
from ..rawclient import reap as reap_popen

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(sys.platform != "linux", reason="needs /proc and pidfds")]

# A parent that starts a grandchild in a session (and so a process group) of its own, as
# x/telemetry starts gopls's telemetry child, then both block until killed. The grandchild must
# not end on its parent's death by itself (no pipe to it), or the test would prove nothing.
PARENT = textwrap.dedent("""
    import signal, subprocess, sys
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    print(grandchild.pid, flush=True)
    signal.pause()
""")

# A server that starts a grandchild in a session of its own (as gopls its telemetry child), says
# its pid on stderr, and exits at the end of its stdin (as gopls on `exit`), leaving it behind.
SERVER = textwrap.dedent("""
    import subprocess, sys
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    print(grandchild.pid, file=sys.stderr, flush=True)
    sys.stdin.buffer.read()
""")

# A group leader that starts a member of its group and exits: the member is then pid 1's child,
# found by its group alone.
LEADER = textwrap.dedent("""
    import subprocess, sys
    member = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    print(member.pid, flush=True)
""")


@pytest.fixture
def held() -> Iterator[Holding]:
    """Processes held by pidfd: ended and released after the test, whatever happened."""
    with holding() as found:
        yield found


def start(script: str) -> tuple[subprocess.Popen[str], int]:
    """`script` running under this interpreter in a process group of its own (as gopls runs),
    and the pid it printed."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True, process_group=0)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


@pytest.fixture
def family(held: Holding) -> Iterator[tuple[subprocess.Popen[str], Held, Held]]:
    """A parent (own process group, like gopls) and its grandchild in a session of its own."""
    parent, grandchild_pid = start(PARENT)
    try:
        yield parent, held.hold(parent.pid), held.hold(grandchild_pid)
    finally:
        reap_popen(parent)


def stop(*procs: Held) -> None:
    for p in procs:
        os.kill(p.pid, signal.SIGSTOP)
    assert wait_until(lambda: all(p.state() == "T" for p in procs), 5), [p.state() for p in procs]


def test_the_grandchild_is_outside_the_parents_session_and_group(
        family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    """The case killpg misses: only the ppid links them."""
    _, parent, grandchild = family
    assert os.getsid(grandchild.pid) == grandchild.pid != os.getsid(parent.pid)
    assert os.getpgid(grandchild.pid) != os.getpgid(parent.pid) == parent.pid
    stat = read_stat(grandchild.pid)
    assert stat is not None and stat.ppid == parent.pid


def test_a_stopped_tree_ends_whole(family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    proc, parent, grandchild = family
    stop(parent, grandchild)
    with reap.snapshot_tree(parent.pid, root_start_ticks=start_ticks(parent.pid)) as tree:
        assert tree.pids == sorted([parent.pid, grandchild.pid])
        assert sorted(tree.kill()) == sorted([parent.pid, grandchild.pid])
        assert proc.wait(10) == -signal.SIGKILL
        assert wait_until(grandchild.gone, 10), grandchild.state()
        assert tree.alive() == []
        assert tree.kill() == []  # all gone: nothing to signal, and no error


# A forwarder (`gopls -remote=auto`) that starts the shared daemon in a session of its own.
FORWARDER = textwrap.dedent("""
    import signal, subprocess, sys
    daemon = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()", "serve", "-listen=unix;/x"],
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    print(daemon.pid, flush=True)
    signal.pause()
""")


def test_a_shared_daemon_is_spared_only_when_asked(held: Holding) -> None:
    """gopls -remote=auto's daemon serves every editor: a -remote session spares it."""
    proc, daemon_pid = start(FORWARDER)
    try:
        daemon = held.hold(daemon_pid)
        with reap.snapshot_tree(proc.pid, spare_daemons=True) as tree:
            assert tree.pids == [proc.pid]
        with reap.snapshot_tree(proc.pid) as tree:
            assert tree.pids == sorted([proc.pid, daemon.pid])
    finally:
        reap_popen(proc)


def test_stopped_members_are_continued(family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    _, parent, grandchild = family
    stop(grandchild)
    with reap.snapshot_tree(parent.pid) as tree:
        assert tree.continue_stopped() == [grandchild.pid]
        assert wait_until(lambda: grandchild.state() == "S", 5), grandchild.state()
        assert tree.continue_stopped() == []


def test_members_that_have_gone_are_no_error(
        family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    proc, parent, grandchild = family
    stop(parent, grandchild)
    with reap.snapshot_tree(parent.pid) as tree:
        grandchild.end()
        assert wait_until(grandchild.gone, 10)
        assert tree.alive() == [parent.pid]
        assert tree.kill() == [parent.pid]
        assert proc.wait(10) == -signal.SIGKILL
        assert tree.kill() == []


def test_a_snapshot_after_the_parent_has_died_misses_the_grandchild(
        family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    """Why Backend.stop takes the snapshot first: afterwards the grandchild is pid 1's."""
    proc, parent, grandchild = family
    proc.kill()
    proc.wait(10)
    with reap.snapshot_tree(parent.pid) as tree:
        assert tree.pids == []
    assert not grandchild.gone()


def test_a_reused_pid_is_not_taken_for_the_root(
        family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    """A root whose start time differs is another process: neither it nor its tree is taken."""
    _, parent, _ = family
    ticks = start_ticks(parent.pid)
    assert ticks is not None
    with reap.snapshot_tree(parent.pid, root_start_ticks=ticks + 1) as tree:
        assert tree.pids == []


def test_without_pidfds_plain_pids_do(family: tuple[subprocess.Popen[str], Held, Held],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    proc, parent, grandchild = family
    monkeypatch.delattr(os, "pidfd_open")
    stop(parent, grandchild)
    with reap.snapshot_tree(parent.pid) as tree:
        assert sorted(tree.kill()) == sorted([parent.pid, grandchild.pid])
    assert proc.wait(10) == -signal.SIGKILL
    assert wait_until(grandchild.gone, 10), grandchild.state()


def test_group_members_are_found_after_their_leader_has_gone(held: Holding) -> None:
    """A member of the server's group whose parent has died is found by its group alone."""
    leader, member_pid = start(LEADER)
    member = held.hold(member_pid)
    try:
        assert leader.wait(10) == 0
    finally:
        reap_popen(leader)
    stop(member)
    with reap.snapshot_tree(leader.pid) as tree:
        assert tree.pids == [member.pid]
        assert tree.kill() == [member.pid]
    assert wait_until(member.gone, 10), member.state()
    with reap.snapshot_tree(leader.pid, with_group=False) as tree:
        assert tree.pids == []


def test_a_process_that_is_gone_has_no_tree() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    with reap.snapshot_tree(proc.pid) as tree:
        assert tree.pids == []
        assert tree.kill() == []
    assert read_stat(proc.pid) is None


def test_a_kept_tree_forgets_the_ended_and_adds_no_duplicates(
        family: tuple[subprocess.Popen[str], Held, Held]) -> None:
    """What the backend does with the tree it keeps while the server runs."""
    _, parent, grandchild = family
    with reap.snapshot_tree(parent.pid) as tree:
        tree.add(reap.snapshot_tree(parent.pid))
        assert tree.pids == sorted([parent.pid, grandchild.pid])
        grandchild.end()
        assert wait_until(grandchild.gone, 10)
        tree.prune()
        assert tree.pids == [parent.pid]


async def test_backend_stop_ends_the_tree_of_a_server_that_has_exited(held: Holding) -> None:
    """The server exits first (gopls on the editor's `exit`): its stopped grandchild, outside its
    group and now pid 1's, is still ended by stop, from the tree the backend kept."""
    reader = FrameReader("server", lambda frame: None, lambda error: None, 1 << 20)
    backend = Backend([sys.executable, "-c", SERVER], reader=reader)
    lines: list[str] = []
    backend.stderr_listeners.append(lines.append)
    await backend.start()
    try:
        assert await wait_until_async(lambda: lines, 10), "the server said no pid"
        grandchild = held.hold(int(lines[0]))
        os.kill(grandchild.pid, signal.SIGSTOP)
        assert await wait_until_async(lambda: grandchild.state() == "T", 5)
        assert await wait_until_async(lambda: grandchild.pid in backend.tree_pids, 10), \
            backend.tree_pids
        backend.writer.close()  # EOF: the server exits by itself
        with anyio.fail_after(10):
            await backend.exited.wait()
        assert grandchild.state() == "T"  # left behind, stopped
    finally:
        with anyio.fail_after(5):
            await backend.stop(0.5)
    assert await wait_until_async(grandchild.gone, 5), grandchild.state()

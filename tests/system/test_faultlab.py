"""The fault lab itself (tests/faultlab): real mounts, pipes and sockets that block in the kernel"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from ..conftest import SAMPLE
from ..faultlab import (
    FuseMount,
    HangMode,
    find_mount,
    planted_fifo,
    silent_peer,
    socket_inodes,
    tcp_connections,
    threads,
    wait_for_wchan,
)
from ..faultlab import faultfs as faultfs  # the fixture
from ..polling import wait_until

MODES: list[HangMode] = ["handler", "stop"]
STAT = "import os, sys; os.stat(sys.argv[1])"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("hello\n")
    (src / "sub").mkdir()
    return src


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[Any]]]:
    """Subprocesses a test starts; killed and reaped (bounded) if the test left any.

    Set up before the mount (so torn down after it): a caller killed while its request is in
    the daemon can only be reaped once the mount's teardown has answered it."""
    started: list[subprocess.Popen[Any]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
    for proc in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def mount(procs: list[subprocess.Popen[Any]], faultfs: Any, source: Path) -> FuseMount:
    m: FuseMount = faultfs(source)
    return m


def python(procs: list[subprocess.Popen[Any]], code: str, *args: str) -> subprocess.Popen[Any]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd="/",
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    procs.append(proc)
    return proc


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- the FUSE mount ---------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_mount_shows_in_mountinfo_with_its_fs_type(mount: FuseMount) -> None:
    assert mount.fs_type == "fuse.faultfs"
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    mine = [line for line in lines if f" {mount.mountpoint} " in line]
    assert mine and " - fuse.faultfs faultfs " in mine[-1], mine
    entry = mount.entry
    assert entry is not None and entry.major == 0
    assert mount.connection == Path(f"/sys/fs/fuse/connections/{entry.minor}")


@pytest.mark.timeout(30)
def test_files_pass_through_both_ways(mount: FuseMount, source: Path) -> None:
    mp = mount.mountpoint
    assert (mp / "hello.txt").read_text() == "hello\n"
    (mp / "sub" / "new.go").write_text("package sub\n")
    assert (source / "sub" / "new.go").read_text() == "package sub\n"
    os.rename(mp / "sub" / "new.go", mp / "sub" / "renamed.go")
    os.symlink("renamed.go", mp / "sub" / "link.go")
    assert os.readlink(mp / "sub" / "link.go") == "renamed.go"
    assert sorted(os.listdir(mp / "sub")) == ["link.go", "renamed.go"]
    os.utime(mp / "sub" / "renamed.go", ns=(10**18, 2 * 10**18))
    assert (source / "sub" / "renamed.go").stat().st_mtime_ns == 2 * 10**18
    os.truncate(mp / "sub" / "renamed.go", 3)
    assert (mp / "sub" / "renamed.go").read_text() == "pac"
    (mp / "dir").mkdir()
    (mp / "dir").rmdir()
    os.unlink(mp / "sub" / "link.go")
    assert os.statvfs(mp).f_bsize > 0
    assert mount.status()["served"] > 0


@pytest.mark.timeout(90)
def test_the_go_command_works_on_the_mount(faultfs: Any, tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed")
    module = Path(shutil.copytree(SAMPLE, tmp_path / "hello"))
    mp = faultfs(module).mountpoint
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off", "GOTOOLCHAIN": "local"}
    listed = subprocess.run([go, "list", "./..."], cwd=mp, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["example.com/hello", "example.com/hello/greet"]
    built = subprocess.run([go, "build", "-o", str(mp / "hello.bin"), "."], cwd=mp, env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert built.returncode == 0, built.stderr
    assert (module / "hello.bin").stat().st_size > 0


def timed_stat(path: Path) -> float:
    """Seconds one os.stat of `path` took, measured around the call."""
    started = time.perf_counter()
    os.stat(path)
    return time.perf_counter() - started


@pytest.mark.timeout(30)
def test_a_delayed_mount_is_slow_not_hung(faultfs: Any, source: Path) -> None:
    """Every operation waits the delay, then is served: slow, like osxfs/grpcfuse, never hung.
    The delay can be changed, and switched off, while mounted."""
    m: FuseMount = faultfs(source, delay_ms=40)
    assert m.status()["delay_ms"] == 40
    assert timed_stat(m.mountpoint / "hello.txt") >= 0.040
    assert (m.mountpoint / "hello.txt").read_text() == "hello\n"
    m.delay(0)
    assert min(timed_stat(m.mountpoint / "hello.txt") for _ in range(5)) < 0.040
    m.delay(120)
    assert timed_stat(m.mountpoint / "sub") >= 0.120
    status = m.status()
    assert status["delay_ms"] == 120 and not status["hung"] and status["parked"] == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
def test_a_hung_mount_blocks_stat_in_request_wait_answer(
        mount: FuseMount, procs: list[subprocess.Popen[Any]], mode: HangMode) -> None:
    mount.hang(mode)
    assert mount.hung == mode
    proc = python(procs, STAT, str(mount.mountpoint / "hello.txt"))
    waiting = wait_for_wchan(proc.pid, "request_wait_answer", timeout=10)
    assert waiting, [t.describe() for t in threads(proc.pid)]
    assert waiting[0].state == "S"
    assert waiting[0].path == str(mount.mountpoint / "hello.txt")
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    if mode == "handler":
        assert mount.status()["ops"] == ["getattr:/hello.txt:python"]
    mount.release()
    assert proc.wait(timeout=10) == 0, proc.stderr
    assert mount.hung is None


@pytest.mark.timeout(30)
def test_a_killed_caller_stays_in_d_until_the_handler_answers(
        mount: FuseMount, procs: list[subprocess.Popen[Any]]) -> None:
    mount.hang("handler")
    proc = python(procs, STAT, str(mount.mountpoint / "hello.txt"))
    assert wait_for_wchan(proc.pid, "request_wait_answer", timeout=10)
    proc.send_signal(signal.SIGKILL)

    def in_d() -> bool:
        return any(t.state == "D" and t.wchan == "request_wait_answer"
                   for t in threads(proc.pid))

    assert wait_until(in_d, 5.0), [t.describe() for t in threads(proc.pid)]
    mount.release()
    assert proc.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.timeout(30)
def test_only_the_named_callers_hang(mount: FuseMount,
                                     procs: list[subprocess.Popen[Any]]) -> None:
    stat = shutil.which("stat")
    if stat is None:
        pytest.skip("coreutils stat is not installed")
    mount.hang("handler", only=("stat",))
    target = str(mount.mountpoint / "hello.txt")
    blocked = subprocess.Popen([stat, target], cwd="/", stdout=subprocess.DEVNULL)
    procs.append(blocked)
    assert wait_for_wchan(blocked.pid, "request_wait_answer", timeout=10)
    other = str(mount.mountpoint / "sub")  # not hello.txt: that lookup is in flight (below)
    assert python(procs, STAT, other).wait(timeout=10) == 0  # comm "python": answered
    assert mount.status()["ops"] == ["getattr:/hello.txt:stat"]
    mount.release()
    assert blocked.wait(timeout=10) == 0


@pytest.mark.timeout(30)
def test_a_second_lookup_of_the_same_name_waits_in_d_alloc_parallel(
        mount: FuseMount, procs: list[subprocess.Popen[Any]]) -> None:
    mount.hang("handler")
    target = str(mount.mountpoint / "hello.txt")
    first = python(procs, STAT, target)
    assert wait_for_wchan(first.pid, "request_wait_answer", timeout=10)
    second = python(procs, STAT, target)
    queued = wait_for_wchan(second.pid, "d_alloc_parallel", timeout=10)
    assert queued and queued[0].state == "D", [t.describe() for t in threads(second.pid)]
    assert mount.status()["parked"] == 1  # one request: the second caller never sent one
    mount.release()
    assert first.wait(timeout=10) == 0
    assert second.wait(timeout=10) == 0


@pytest.mark.timeout(30)
def test_serial_dirops_queue_later_lookups_on_the_directory_mutex(
        procs: list[subprocess.Popen[Any]], faultfs: Any, source: Path) -> None:
    mount = faultfs(source, serial_dirops=True)
    mount.hang("handler")
    first = python(procs, STAT, str(mount.mountpoint / "hello.txt"))
    assert wait_for_wchan(first.pid, "request_wait_answer", timeout=10)
    second = python(procs, STAT, str(mount.mountpoint / "other.txt"))
    queued = wait_for_wchan(second.pid, "fuse_lock_inode", timeout=10)
    assert queued and queued[0].state == "D", [t.describe() for t in threads(second.pid)]
    mount.release()
    assert first.wait(timeout=10) == 0
    assert second.wait(timeout=10) == 1  # other.txt does not exist


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
def test_teardown_while_hung_is_bounded_and_leaves_no_process(
        procs: list[subprocess.Popen[Any]], faultfs: Any, source: Path, mode: HangMode) -> None:
    mount = faultfs(source)
    mountpoint, daemon = mount.mountpoint, mount.pid
    mount.hang(mode)
    adopted = python(procs, STAT, str(mountpoint / "hello.txt"))
    orphan = python(procs, STAT, str(mountpoint / "sub"))  # not adopted: teardown unblocks it
    for proc in (adopted, orphan):
        assert wait_for_wchan(proc.pid, "request_wait_answer", timeout=10)
    mount.adopt(adopted)
    started = time.monotonic()
    mount.close()
    assert time.monotonic() - started < 10
    assert adopted.poll() is not None and gone(adopted.pid)
    assert orphan.wait(timeout=5) is not None
    assert gone(daemon)
    assert find_mount(mountpoint) is None
    assert not mountpoint.exists()
    mount.close()  # idempotent


# -- the FIFO ---------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_opening_a_planted_fifo_blocks_in_wait_for_partner(
        tmp_path: Path, procs: list[subprocess.Popen[Any]]) -> None:
    with planted_fifo(tmp_path) as fifo:
        assert fifo.path.name == "zz_fifo.go"
        assert not fifo.release()  # nobody waits yet
        reader = python(procs, "import sys; print(repr(open(sys.argv[1]).read()))", str(fifo.path))
        waiting = wait_for_wchan(reader.pid, "wait_for_partner", timeout=10)
        assert waiting and waiting[0].state == "S"
        assert waiting[0].path == str(fifo.path)
        with pytest.raises(subprocess.TimeoutExpired):
            reader.wait(timeout=1)
        assert fifo.release()
        out, _ = reader.communicate(timeout=10)
        assert out.strip() == b"''"  # woken, then EOF
        second = python(procs, "import sys; open(sys.argv[1]).read()", str(fifo.path))
        assert wait_for_wchan(second.pid, "wait_for_partner", timeout=10)
    assert not fifo.path.exists()
    assert second.wait(timeout=10) == 0  # removal woke it too


# -- the silent TCP peer ----------------------------------------------------------------------

CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /example.com/dep/@v/list HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
print(repr(s.recv(100)), flush=True)
"""


@pytest.mark.timeout(30)
def test_a_silent_peer_accepts_and_never_answers(procs: list[subprocess.Popen[Any]]) -> None:
    with silent_peer() as peer:
        assert peer.url == f"http://127.0.0.1:{peer.port}"
        client = python(procs, CLIENT, str(peer.port))
        assert peer.wait_for_connections(1, timeout=10)
        assert wait_until(lambda: peer.received > 0, 10)
        assert peer.heads[0].startswith(b"GET /example.com/dep/@v/list HTTP/1.1")
        waiting = wait_for_wchan(client.pid, "wait_woken", timeout=10)
        assert waiting, [t.describe() for t in threads(client.pid)]
        with pytest.raises(subprocess.TimeoutExpired):
            client.wait(timeout=1)
        inodes = socket_inodes(client.pid)
        mine = [c for c in tcp_connections(peer.port) if c["inode"] in inodes]
        assert len(mine) == 1, (inodes, tcp_connections(peer.port))
        assert mine[0]["state"] == "ESTABLISHED"
        assert mine[0]["remote"] == ("127.0.0.1", peer.port)
    _, err = client.communicate(timeout=10)  # close() reset the connection: recv ended
    assert b"ConnectionResetError" in err

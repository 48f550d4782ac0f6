"""A real FUSE mount that stops answering on demand, like a Docker Desktop bind mount (grpcfuse,
virtiofs, osxfs) whose host side wedged.

    with fuse_mount(src) as m:          # or the `faultfs` fixture: faultfs(src) -> FuseMount
        use(m.mountpoint)               # src mirrored there; /proc/self/mountinfo: fuse.faultfs
        m.hang("handler")               # or m.hang("stop")
        ...                             # callers block in the kernel: wchan request_wait_answer
        m.release()                     # they are answered; the mount works again
        m.delay(2)                      # or FuseMount(..., delay_ms=2): every operation takes
                                        # 2 ms more (slow, not hung); m.delay(0) ends it

The filesystem is `faultfs_daemon.py` in its own process (started with sys.executable), so a hung
mount can only block the processes that touch it: NEVER touch `mountpoint` from the test process
while it is hung (no stat, exists(), resolve(), listdir, rmtree); look at /proc instead.

Two hangs (README.md has every wait observed on Linux 6.18), both leaving the caller's thread in
wchan `request_wait_answer`, state S; any non-fatal signal moves it on to the killable wait (D):
  "stop"    the daemon is SIGSTOPped; requests stay queued in the kernel, unread, so SIGKILL
            ends a caller at once (an unread request is just dequeued).
  "handler" the daemon reads each request and parks its handler: the request is "in userspace",
            so a SIGKILLed caller stays in D, unkillable and unreapable, until the request is
            answered or the connection aborted. hang("handler", only=("go",)) parks only the
            requests of threads whose comm is `go`.
Lookups run in parallel (FUSE_PARALLEL_DIROPS, see kernelrelay.py) as on virtiofs, unless
serial_dirops=True (later lookups in the directory then wait in `fuse_lock_inode`, D).

Teardown (`close()`; __exit__; the fixture) is bounded and works while hung: SIGKILL what was
adopt()ed, SIGCONT and release the daemon, abort the connection if it does not answer
(/sys/fs/fuse/connections/N/abort), lazy-unmount, let the daemon exit (or SIGKILL it: closing
/dev/fuse aborts too), reap everything, remove the mount point if it was ours.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil
import pytest

from ..polling import wait_until
from .procinfo import threads, tree

FS_NAME = "faultfs"
DAEMON = Path(__file__).with_name("faultfs_daemon.py")
CONNECTIONS = Path("/sys/fs/fuse/connections")
HangMode = Literal["handler", "stop"]
START_TIMEOUT = 20.0
COMMAND_TIMEOUT = 2.0


class FaultLabError(RuntimeError):
    """The lab itself failed (the daemon did not start, or does not obey)."""


@functools.cache
def fuse_unavailable() -> str | None:
    """Why faultfs cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "faultfs needs root (FUSE mounts, /sys/fs/fuse/connections abort)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "faultfs needs /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "faultfs needs fusermount3 (Debian package fuse3)"
    probe = subprocess.run(
        [sys.executable, "-c", "import mfusepy; assert mfusepy.fuse_version_major == 3"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
        env={**os.environ, "FUSE_LIBRARY_NAME": "fuse3"})
    if probe.returncode != 0:
        tail = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return ("faultfs needs the mfusepy binding (pip install mfusepy) and libfuse3 "
                f"(Debian package libfuse3-3): {tail}")
    return None


def require_fuse() -> None:
    """Skip the calling test, with the reason, when faultfs cannot run here."""
    reason = fuse_unavailable()
    if reason:
        pytest.skip(reason)


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    major: int
    minor: int
    mountpoint: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def mounts() -> list[MountEntry]:
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            lf, rf = left.split(), right.split()
            major, minor = (int(x) for x in lf[2].split(":"))
            out.append(MountEntry(int(lf[0]), major, minor, _unescape(lf[4]), rf[0],
                                  _unescape(rf[1])))
    return out


def find_mount(mountpoint: str | Path) -> MountEntry | None:
    """The (topmost) mount at `mountpoint`, from mountinfo: never touches the mount itself."""
    found = [m for m in mounts() if m.mountpoint == str(mountpoint)]
    return found[-1] if found else None


def _run_bounded(cmd: list[str], timeout: float) -> int | None:
    """Run `cmd`; its exit code, or None if it had to be killed (never waits unboundedly)."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1.0)
        return None


class FuseMount:
    """A faultfs mount of `source` at `mountpoint` (a fresh temp dir by default)."""

    def __init__(self, source: str | Path, mountpoint: str | Path | None = None, *,
                 name: str = FS_NAME, cache_timeout: float = 0.0,
                 serial_dirops: bool = False, delay_ms: float = 0.0) -> None:
        self.source = Path(source).resolve(strict=True)
        self._own_mountpoint = mountpoint is None
        if mountpoint is None:
            mountpoint = tempfile.mkdtemp(prefix=f"{name}-")
        self.mountpoint = Path(os.path.realpath(mountpoint))
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.fs_type = f"fuse.{name}"
        self.hung: HangMode | None = None
        self._adopted: list[subprocess.Popen[Any] | int] = []
        self._closed = False
        self._final_log: str | None = None
        fd, log = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        self.log = Path(log)
        ours, theirs = socket.socketpair()
        self._control = ours
        try:
            self._proc = subprocess.Popen(
                [sys.executable, str(DAEMON), str(self.source), str(self.mountpoint),
                 "--control-fd", str(theirs.fileno()), "--parent", str(os.getpid()),
                 "--name", name, "--timeout", str(cache_timeout), "--delay-ms", str(delay_ms),
                 *(["--serial-dirops"] if serial_dirops else [])],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=fd,
                stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(fd)
        try:
            self._wait_mounted()
        except BaseException:
            self.close()
            raise

    # -- state -------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The daemon's pid."""
        return self._proc.pid

    @property
    def entry(self) -> MountEntry | None:
        m = find_mount(self.mountpoint)
        return m if m is not None and m.fstype == self.fs_type else None

    @property
    def connection(self) -> Path | None:
        """/sys/fs/fuse/connections/N of this mount (N = the mount's minor device number)."""
        m = self.entry
        return CONNECTIONS / str(m.minor) if m is not None and m.major == 0 else None

    def log_text(self) -> str:
        """The daemon's stderr (kept in memory once the mount is closed)."""
        if self._final_log is not None:
            return self._final_log
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _wait_mounted(self) -> None:
        def ready() -> bool:
            return self.entry is not None or self._proc.poll() is not None

        def initialized() -> bool:  # the kernel has the daemon's answer to FUSE_INIT
            return self._proc.poll() is None and self.status()["init"]

        if (not wait_until(ready, START_TIMEOUT) or self._proc.poll() is not None
                or not wait_until(initialized, START_TIMEOUT)):
            raise FaultLabError(f"faultfs did not mount {self.mountpoint} "
                                f"(exit {self._proc.poll()}): {self.log_text()[-2000:]}")

    # -- control -----------------------------------------------------------------------------

    def _command(self, command: str, timeout: float = COMMAND_TIMEOUT) -> str:
        self._control.settimeout(timeout)
        try:
            self._control.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = self._control.recv(4096)
                if not chunk:
                    raise FaultLabError(f"faultfs control closed during {command!r}")
                data += chunk
        except OSError as exc:
            raise FaultLabError(f"faultfs did not answer {command!r}: {exc}") from exc
        reply = data.decode().strip()
        if not reply.startswith("ok"):
            raise FaultLabError(f"faultfs refused {command!r}: {reply}")
        return reply

    def status(self) -> dict[str, Any]:
        """{"hung": bool, "parked": int, "served": int, "delay_ms": float,
        "ops": ["getattr:/path:comm", ...], "init": bool}: `ops` are the operations parked in
        the daemon now, and who asked."""
        fields = dict(f.split("=", 1) for f in self._command("status").split()[1:])
        return {"hung": fields["hung"] == "1", "parked": int(fields["parked"]),
                "served": int(fields["served"]), "delay_ms": float(fields["delay_ms"]),
                "init": fields["init"] == "1",
                "ops": [o.replace("%20", " ") for o in fields["ops"].split(",") if o]}

    def delay(self, ms: float) -> None:
        """Make every operation take `ms` milliseconds more from now on (0: none). Slow, not
        hung: what a Docker Desktop bind mount (osxfs, grpcfuse) does on an ordinary day."""
        if self._closed:
            raise FaultLabError("faultfs is closed")
        if ms < 0:
            raise ValueError(f"delay must be >= 0 ms, got {ms}")
        self._command(f"delay {ms:g}")

    def wait_parked(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Poll until at least `count` operations are parked in the daemon (mode "handler")."""
        return wait_until(lambda: bool(self.status()["parked"] >= count), timeout)

    def _daemon_stopped(self) -> bool:
        states = [t.state for t in threads(self.pid)]
        return bool(states) and all(s in ("T", "t") for s in states)

    def hang(self, mode: HangMode = "handler", *, only: tuple[str, ...] = ()) -> None:
        """Stop answering: park every request in the daemon ("handler") or SIGSTOP it ("stop").

        `only` (mode "handler"): park just the requests of threads with these command names
        (/proc/TID/comm, e.g. ("go",) for the go command gopls runs); others are answered."""
        if self._closed:
            raise FaultLabError("faultfs is closed")
        if self.hung is not None:
            self.release()
        if only and mode != "handler":
            raise ValueError("only= needs mode 'handler'")
        if mode == "handler":
            self._command(" ".join(("hang", *only)))
        elif mode == "stop":
            os.kill(self.pid, signal.SIGSTOP)
            if not wait_until(self._daemon_stopped, 5.0):
                raise FaultLabError("faultfs daemon did not stop")
        else:
            raise ValueError(f"unknown hang mode {mode!r}")
        self.hung = mode

    def release(self) -> None:
        """Answer again: SIGCONT the daemon and open the gate (parked requests go on)."""
        os.kill(self.pid, signal.SIGCONT)
        if not wait_until(lambda: not self._daemon_stopped(), 5.0):
            raise FaultLabError("faultfs daemon did not continue")
        self._command("release")
        self.hung = None

    def adopt(self, proc: subprocess.Popen[Any] | int) -> None:
        """Have teardown SIGKILL `proc` and its descendants, then reap them (bounded)."""
        self._adopted.append(proc)

    def abort(self) -> bool:
        """Abort the FUSE connection: every request, queued or in userspace, fails at once."""
        conn = self.connection
        if conn is None:
            return False
        if not any(m.fstype == "fusectl" for m in mounts()):
            _run_bounded(["mount", "-t", "fusectl", "fusectl", str(CONNECTIONS)], 5.0)
        try:
            (conn / "abort").write_text("1")
        except OSError:
            return False
        return True

    # -- teardown ----------------------------------------------------------------------------

    def close(self) -> None:
        """Unmount and end the daemon and the adopted processes, hung or not; idempotent."""
        if self._closed:
            return
        self._closed = True
        adopted = self._kill_adopted()
        answering = True
        if self._proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            try:
                self._command("release", timeout=1.0)
            except FaultLabError:
                answering = False
        if not answering:
            self.abort()
        self.hung = None
        if self.entry is not None:
            for cmd in (["fusermount3", "-u", "-z"], ["umount", "-l"]):
                if shutil.which(cmd[0]) and _run_bounded([*cmd, str(self.mountpoint)], 3.0) == 0:
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(2.0)
        if self._proc.poll() is None:
            self.abort()
            self._proc.kill()  # closing /dev/fuse aborts the connection too
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(3.0)
        self._control.close()
        self._final_log = self.log_text()
        self.log.unlink(missing_ok=True)
        _reap(adopted, 3.0)
        if self._own_mountpoint and find_mount(self.mountpoint) is None:
            with contextlib.suppress(OSError):
                self.mountpoint.rmdir()

    def _kill_adopted(self) -> tuple[list[subprocess.Popen[Any]], list[psutil.Process]]:
        children = [p for p in self._adopted if not isinstance(p, int)]
        others: list[psutil.Process] = []
        for item in self._adopted:
            root = item if isinstance(item, int) else item.pid
            for pid in tree(root):
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    proc.kill()
                    if pid not in {c.pid for c in children}:
                        others.append(proc)
        return children, others

    def __enter__(self) -> FuseMount:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reap(adopted: tuple[list[subprocess.Popen[Any]], list[psutil.Process]],
          timeout: float) -> None:
    """Wait (bounded) until the adopted children are reaped and their descendants are gone.

    A child killed while its request was in userspace stays in D until teardown answered or
    aborted that request, so this runs last."""
    children, others = adopted

    def gone(proc: psutil.Process) -> bool:
        try:
            return proc.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    wait_until(lambda: all(c.poll() is not None for c in children)
               and all(gone(p) for p in others), timeout)


@contextlib.contextmanager
def fuse_mount(source_dir: str | Path, mountpoint: str | Path | None = None, *,
               name: str = FS_NAME, cache_timeout: float = 0.0,
               serial_dirops: bool = False, delay_ms: float = 0.0) -> Iterator[FuseMount]:
    """Mount faultfs over `source_dir` (skipping the test when FUSE is unavailable)."""
    require_fuse()
    with FuseMount(source_dir, mountpoint, name=name, cache_timeout=cache_timeout,
                   serial_dirops=serial_dirops, delay_ms=delay_ms) as mount:
        yield mount


@pytest.fixture
def faultfs() -> Iterator[Callable[..., FuseMount]]:
    """A factory: faultfs(source_dir, mountpoint=None, *, name=, cache_timeout=, serial_dirops=,
    delay_ms=).

    Every mount it made is torn down (bounded, even while hung) after the test."""
    require_fuse()
    made: list[FuseMount] = []

    def make(source_dir: str | Path, mountpoint: str | Path | None = None,
             **kwargs: Any) -> FuseMount:
        mount = FuseMount(source_dir, mountpoint, **kwargs)
        made.append(mount)
        return mount

    yield make
    for mount in reversed(made):
        mount.close()

"""The faultfs daemon: a pass-through FUSE file system (mfusepy, libfuse3) that can stop answering.

    python faultfs_daemon.py SOURCE MOUNTPOINT --control-fd N [--parent PID] [--name faultfs]
                             [--timeout 0] [--serial-dirops] [--delay-ms 0]

Never imported by the test process: `fusefs.FuseMount` starts it with `sys.executable` in its own
process, so a wedged filesystem can only wedge this process and the callers blocked on the mount.

Every operation on MOUNTPOINT is the same operation on SOURCE. The kernel caches are off by default
(entry/attr/negative timeouts 0) so every stat, lookup and open really reaches this process, which
is what makes a hang bite at once. libfuse runs multithreaded (3.14: at most 10 handlers at once).
The daemon mounts /dev/fuse itself and relays it to libfuse (kernelrelay.py) so that lookups run
in parallel (FUSE_PARALLEL_DIROPS) unless --serial-dirops.

Control (one line per command on the inherited socket, one reply line each):
    hang [COMM ...]
             -> "ok": from now on every operation (only those of callers whose thread is named
                COMM, e.g. `go`, when given) parks before touching SOURCE (the kernel has
                already handed the request to userspace: the caller sleeps in request_wait_answer
                and, once SIGKILLed, stays in D state until the request is answered)
    release  -> "ok": parked operations go on, new ones are answered at once
    delay MS -> "ok": from now on every operation sleeps MS milliseconds (a float) before it is
                served: slow, not hung, like osxfs/grpcfuse on a normal day; 0 turns it off.
                Operations run in parallel (up to libfuse's 10 handlers), each delayed: this is
                latency, not a throughput cap. The same as --delay-ms at start.
    status   -> "ok hung=0|1 parked=N served=N delay_ms=F ops=op:path:comm,... init=0|1" (the parked
                operations; init=1 once the kernel has the reply to FUSE_INIT: before that,
                callers would wait in fuse_get_req, not request_wait_answer)
EOF on the control socket releases the gate (the test side is tearing down or gone).
The "stopped daemon" fault needs nothing here: the test side SIGSTOPs/SIGCONTs this process.
The daemon asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), so it never outlives pytest.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # never libfuse2, even when installed too
import mfusepy

try:
    from .kernelrelay import MAX_WRITE, Relay, kernel_mount
except ImportError:  # run as a script (the normal case): the sibling is on sys.path[0]
    from kernelrelay import (  # type: ignore[import-not-found,no-redef]
        MAX_WRITE,
        Relay,
        kernel_mount,
    )

F = TypeVar("F", bound=Callable[..., Any])
PR_SET_PDEATHSIG = 1
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
STATVFS_KEYS = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
                "f_flag", "f_frsize", "f_namemax")


class Gate:
    """Parks operations while hung, delays them while slow; counts and names them for `status`."""

    def __init__(self, delay_ms: float = 0.0) -> None:
        self._cond = threading.Condition()
        self.delay_ms = delay_ms
        self.hung = False
        self.only: frozenset[str] = frozenset()  # hang only callers with these comm names
        self.served = 0
        self.parked: dict[int, str] = {}  # thread id -> "op:path:caller"

    def enter(self, op: str, path: str | None) -> None:
        with self._cond:
            self.served += 1
            self._park(op, path)
            delay = self.delay_ms
        if delay > 0:
            time.sleep(delay / 1000.0)  # outside the lock: other handlers are delayed, not queued

    def _park(self, op: str, path: str | None) -> None:
        """While hung (and the caller is one that should hang), wait for release."""
        if self.hung:
            caller = caller_comm()
            if self.only and caller not in self.only:
                return
            self.parked[threading.get_ident()] = f"{op}:{path}:{caller}"
            try:
                while self.hung:
                    self._cond.wait()  # releases the GIL: other workers and control go on
            finally:
                self.parked.pop(threading.get_ident(), None)

    def set_delay(self, delay_ms: float) -> None:
        with self._cond:
            self.delay_ms = delay_ms

    def set_hung(self, hung: bool, only: frozenset[str] = frozenset()) -> None:
        with self._cond:
            self.hung = hung
            self.only = only
            self._cond.notify_all()

    def status(self) -> str:
        with self._cond:
            ops = ",".join(sorted(self.parked.values())).replace(" ", "%20")
            return (f"ok hung={int(self.hung)} parked={len(self.parked)} served={self.served} "
                    f"delay_ms={self.delay_ms:g} ops={ops}")


def caller_comm() -> str:
    """The command name of the thread whose request this handler serves (FUSE passes its id)."""
    _, _, pid = mfusepy.fuse_get_context()
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def gated(func: F) -> F:
    """Pass the gate first (and park while hung), then do the operation."""

    @functools.wraps(func)
    def wrapper(self: Passthrough, path: str | None, *args: Any) -> Any:
        self.gate.enter(func.__name__, path)
        return func(self, path, *args)

    return wrapper  # type: ignore[return-value]


class Passthrough(mfusepy.Operations):  # type: ignore[misc]
    """Every call on the mount is the same call on the source directory."""

    use_ns = True  # timestamps in nanoseconds (mfusepy's non-deprecated mode)

    def __init__(self, root: str, gate: Gate) -> None:
        self.root = root
        self.gate = gate

    def _p(self, path: str | None) -> str:
        if path is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return os.path.join(self.root, path.lstrip("/"))

    def init_with_config(self, conn: Any, config: Any) -> None:
        """Writes of at most MAX_WRITE, so every message fits the relay's buffers."""
        if conn is not None:
            conn.max_write = MAX_WRITE

    @staticmethod
    def _attrs(st: os.stat_result) -> dict[str, Any]:
        return {"st_mode": st.st_mode, "st_ino": st.st_ino, "st_nlink": st.st_nlink,
                "st_uid": st.st_uid, "st_gid": st.st_gid, "st_size": st.st_size,
                "st_rdev": st.st_rdev, "st_blocks": st.st_blocks, "st_blksize": st.st_blksize,
                "st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns,
                "st_ctime": st.st_ctime_ns}

    @gated
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        return self._attrs(os.fstat(fh) if fh else os.lstat(self._p(path)))

    @gated
    def access(self, path: str | None, amode: int) -> int:
        if not os.access(self._p(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    @gated
    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, int], int]]:
        """Entries with their real inode numbers (with use_ino, d_ino 0 would hide them)."""
        full = self._p(path)
        here, parent = os.lstat(full), os.lstat(os.path.dirname(full))
        entries = [(".", {"st_mode": here.st_mode, "st_ino": here.st_ino}, 0),
                   ("..", {"st_mode": parent.st_mode, "st_ino": parent.st_ino}, 0)]
        with os.scandir(full) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                entries.append((entry.name, {"st_mode": st.st_mode, "st_ino": st.st_ino}, 0))
        return entries

    @gated
    def readlink(self, path: str | None) -> str:
        return os.readlink(self._p(path))

    @gated
    def open(self, path: str | None, flags: int) -> int:
        return os.open(self._p(path), flags & ~os.O_CREAT)

    @gated
    def create(self, path: str | None, mode: int, flags: int) -> int:
        return os.open(self._p(path), flags | os.O_CREAT, mode)

    @gated
    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    @gated
    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    @gated
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        if fh:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._p(path), length)
        return 0

    @gated
    def flush(self, path: str | None, fh: int) -> int:
        return 0

    @gated
    def release(self, path: str | None, fh: int) -> int:
        os.close(fh)
        return 0

    @gated
    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        (os.fdatasync if datasync else os.fsync)(fh)
        return 0

    @gated
    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        return 0

    @gated
    def unlink(self, path: str | None) -> int:
        os.unlink(self._p(path))
        return 0

    @gated
    def mkdir(self, path: str | None, mode: int) -> int:
        os.mkdir(self._p(path), mode)
        return 0

    @gated
    def rmdir(self, path: str | None) -> int:
        os.rmdir(self._p(path))
        return 0

    @gated
    def mknod(self, path: str | None, mode: int, dev: int) -> int:
        os.mknod(self._p(path), mode, dev)
        return 0

    @gated
    def rename(self, old: str | None, new: str) -> int:
        os.rename(self._p(old), self._p(new))
        return 0

    @gated
    def symlink(self, target: str | None, source: str) -> int:
        """`ln -s source target` (mfusepy's argument order)."""
        os.symlink(source, self._p(target))
        return 0

    @gated
    def link(self, target: str | None, source: str) -> int:
        os.link(self._p(source), self._p(target))
        return 0

    @gated
    def chmod(self, path: str | None, mode: int) -> int:
        os.chmod(self._p(path), mode)
        return 0

    @gated
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        os.lchown(self._p(path), uid, gid)
        return 0

    @gated
    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        full = self._p(path)
        if times is None:
            os.utime(full, follow_symlinks=False)
            return 0
        st = os.lstat(full)
        now = time.time_ns()
        atime, mtime = (
            (now if t == UTIME_NOW else old if t == UTIME_OMIT else t)
            for t, old in zip(times, (st.st_atime_ns, st.st_mtime_ns), strict=True))
        os.utime(full, ns=(atime, mtime), follow_symlinks=False)
        return 0

    @gated
    def statfs(self, path: str | None) -> dict[str, int]:
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in STATVFS_KEYS}


def serve_control(conn: socket.socket, gate: Gate, relay: Relay) -> None:
    """Answer control commands until EOF; EOF (or any error) releases the gate."""
    try:
        with conn, conn.makefile("rwb", buffering=0) as stream:
            for raw in stream:
                command = raw.decode().strip()
                if command == "hang" or command.startswith("hang "):
                    gate.set_hung(True, frozenset(command.split()[1:]))
                    reply = "ok"
                elif command == "release":
                    gate.set_hung(False)
                    reply = "ok"
                elif command.startswith("delay "):
                    reply = _set_delay(gate, command.split(maxsplit=1)[1])
                elif command == "status":
                    reply = f"{gate.status()} init={int(relay.initialized.is_set())}"
                else:
                    reply = f"error unknown command {command!r}"
                stream.write(reply.encode() + b"\n")
    except OSError:
        pass
    finally:
        gate.set_hung(False)


def _set_delay(gate: Gate, value: str) -> str:
    try:
        delay_ms = float(value)
    except ValueError:
        return f"error delay wants milliseconds, got {value!r}"
    if not 0 <= delay_ms < 3_600_000:
        return f"error delay out of range: {value!r}"
    gate.set_delay(delay_ms)
    return "ok"


def die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--name", default="faultfs")
    parser.add_argument("--timeout", type=float, default=0.0, help="entry/attr/negative cache")
    parser.add_argument("--serial-dirops", action="store_true",
                        help="leave FUSE_PARALLEL_DIROPS off (lookups serialised per directory)")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="every operation sleeps this long before it is served (slow mount)")
    args = parser.parse_args(argv)
    if args.parent:
        die_with_parent(args.parent)
    debug = bool(os.environ.get("FAULTFS_DEBUG"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr,
                        format="faultfs %(levelname)s %(message)s")
    gate = Gate(args.delay_ms)
    control = socket.socket(fileno=args.control_fd)
    relay = Relay(kernel_mount(args.mountpoint, args.name), not args.serial_dirops)
    relay.start()
    threading.Thread(target=serve_control, args=(control, gate, relay), name="control",
                     daemon=True).start()

    def exit_when_unmounted() -> None:
        relay.ended.wait()
        os._exit(0)  # unmounted or aborted: nothing left to serve

    threading.Thread(target=exit_when_unmounted, name="reaper", daemon=True).start()
    mfusepy.FUSE(Passthrough(os.path.abspath(args.source), gate), f"/dev/fd/{relay.lib_fd}",
                 foreground=True, entry_timeout=args.timeout, attr_timeout=args.timeout,
                 negative_timeout=args.timeout, use_ino=True)
    relay.ended.wait(5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

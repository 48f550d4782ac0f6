"""Mount /dev/fuse ourselves and relay it to libfuse, so the INIT reply can ask for parallel dirops.

Used by faultfs_daemon.py (a sibling module: the daemon runs as a script). libfuse 3.14 (Debian
12) never passes FUSE_PARALLEL_DIROPS to the kernel, although it wants it by default; without it
the kernel serialises lookups per directory, and while one lookup hangs every other caller in that
directory waits on the directory's mutex (wchan `fuse_lock_inode`, state D) instead of in
`request_wait_answer`. Real hung mounts (virtiofsd, grpcfuse) have parallel dirops, so faultfs
sets the flag by default, and leaves it off on request to show the serialised behaviour.

How: the daemon opens /dev/fuse, mounts it with mount(2) (root; fstype `fuse.NAME`) and hands
libfuse one end of a SOCK_SEQPACKET socketpair as the mount point `/dev/fd/N` (libfuse >= 3.3
then reads and writes that fd instead of mounting). Two threads copy messages both ways, one
message per read/write; the reply to FUSE_INIT gets FUSE_PARALLEL_DIROPS or'ed into its flags.
The kernel sees every request as read ("in userspace") as soon as the relay has read it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import stat
import struct
import threading

FUSE_INIT = 26
FUSE_PARALLEL_DIROPS = 1 << 18
IN_HEADER = struct.Struct("<IIQ")    # fuse_in_header: len, opcode, unique (then nodeid, ...)
OUT_HEADER = struct.Struct("<IiQ")   # fuse_out_header: len, error, unique
INIT_FLAGS_OFFSET = OUT_HEADER.size + 12  # fuse_init_out: major, minor, max_readahead, flags
MAX_WRITE = 128 * 1024               # the daemon caps conn.max_write to this
BUFSIZE = MAX_WRITE + 64 * 1024      # >= the kernel's minimum read size for that max_write
SOCKBUF = 4 * 1024 * 1024
MS_NOSUID, MS_NODEV = 2, 4
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # root may exceed net.core.[rw]mem_max


def kernel_mount(mountpoint: str, name: str) -> int:
    """Open /dev/fuse and mount it at `mountpoint` as `fuse.NAME`; the /dev/fuse fd."""
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    rootmode = stat.S_IFMT(os.stat(mountpoint).st_mode)
    options = (f"fd={fd},rootmode={rootmode:o},user_id={os.getuid()},group_id={os.getgid()},"
               "allow_other")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(name.encode(), mountpoint.encode(), f"fuse.{name}".encode(),
                  ctypes.c_ulong(MS_NOSUID | MS_NODEV), options.encode()) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"mount fuse.{name} at {mountpoint}: {os.strerror(err)}")
    return fd


class Relay:
    """Copies FUSE messages between the kernel (`devfd`) and libfuse (`lib_fd`)."""

    def __init__(self, devfd: int, parallel_dirops: bool) -> None:
        self.devfd = devfd
        self.parallel_dirops = parallel_dirops
        self.lib, self._peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (self.lib, self._peer):
            for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF),
                                 (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, force, SOCKBUF)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, plain, SOCKBUF)
        self._init_unique: int | None = None
        self.ended = threading.Event()
        self.initialized = threading.Event()  # the kernel has our reply to FUSE_INIT

    @property
    def lib_fd(self) -> int:
        return self.lib.fileno()

    def start(self) -> None:
        for target, name in ((self._down, "relay-down"), (self._up, "relay-up")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def _down(self) -> None:
        """Kernel -> libfuse: each read of /dev/fuse is one request."""
        buf = bytearray(BUFSIZE)
        view = memoryview(buf)
        try:
            while True:
                try:
                    n = os.readv(self.devfd, [buf])
                except InterruptedError:
                    continue
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.EAGAIN):
                        continue  # the request was interrupted before we read it
                    break  # ENODEV: unmounted or aborted
                _, opcode, unique = IN_HEADER.unpack_from(buf)
                if opcode == FUSE_INIT:
                    self._init_unique = unique
                self._peer.send(view[:n])
        except OSError as exc:
            logging.debug("relay down ends: %s", exc)
        finally:
            self.ended.set()
            self._peer.shutdown(socket.SHUT_RDWR)  # libfuse's reads end; the daemon exits

    def _up(self) -> None:
        """libfuse -> kernel: each message is one reply (or notification)."""
        try:
            while True:
                data = bytearray(self._peer.recv(BUFSIZE))
                if not data:
                    break
                _, error, unique = OUT_HEADER.unpack_from(data)
                is_init = unique == self._init_unique and error == 0
                if is_init and self.parallel_dirops and len(data) >= INIT_FLAGS_OFFSET + 4:
                    (flags,) = struct.unpack_from("<I", data, INIT_FLAGS_OFFSET)
                    struct.pack_into("<I", data, INIT_FLAGS_OFFSET, flags | FUSE_PARALLEL_DIROPS)
                try:
                    os.write(self.devfd, data)
                except OSError as exc:
                    if exc.errno == errno.ENODEV:
                        break
                    # ENOENT: the caller was interrupted (or the connection aborted) meanwhile
                if is_init:
                    self.initialized.set()
        except OSError as exc:
            logging.debug("relay up ends: %s", exc)
        finally:
            self.ended.set()

"""The one table from kernel facts to what a thread waits on. Extend it here, nowhere else.

A thread of the backend tree is described by its state letter, its wait channel (`wchan`: the
kernel function it sleeps in) and the system call it is in. The names below are the kernel's
own, from its sources:

- FUSE (osxfs, grpcfuse, virtiofs, sshfs, ...): fs/fuse/dev.c `request_wait_answer` (a request
  sent to the daemon, no answer yet), `fuse_get_req` (waiting for a request slot),
  fs/fuse/file.c `fuse_wait_on_page_writeback` / `fuse_wait_on_folio_writeback`.
- NFS and other SUNRPC clients: net/sunrpc/sched.c `rpc_wait_bit_killable`,
  `__rpc_wait_for_completion_task`; fs/nfs `nfs_wait_bit_killable`, `nfs4_wait_clnt_recover`,
  `nfs_wait_on_request`.
- 9p (and virtio-9p shares): net/9p/client.c `p9_client_rpc`, net/9p/trans_virtio.c
  `p9_virtio_request`.
- CIFS/SMB: fs/smb/client/transport.c `wait_for_response`, `wait_for_free_credits`,
  `wait_for_compound_request`; connect.c `cifs_reconnect`, smb2pdu.c `smb2_reconnect`.
- FIFOs and pipes: fs/pipe.c `wait_for_partner` (opening a FIFO that has no other end),
  `pipe_read` / `anon_pipe_read`, `pipe_write` / `anon_pipe_write`.
- Child processes: kernel/exit.c `do_wait` (wait4, waitid); kernel/fork.c `kernel_clone` /
  `wait_for_vfork_done` (a vfork parent waits for its child to exec or exit).
- Sockets: net/core/sock.c `sk_wait_data`, `sk_stream_wait_memory`, `sk_stream_wait_connect`,
  net/ipv4 `inet_csk_accept`, `inet_wait_for_connect`, net/unix `unix_stream_data_wait`,
  `unix_wait_for_peer`, net/core/datagram.c `__skb_wait_for_more_packets`; and `wait_woken`,
  which blocking socket calls sleep in on recent kernels.
- Parked (a normal idle thread): futex waits, epoll/poll/select, sleeps, signal waits.

A path system call that sits for seconds on a regular filesystem means the filesystem is not
answering whatever the wchan says (an inode lock held by a thread stuck in FUSE shows
`rwsem_down_read_slowpath`), so the syscall family decides when the wchan is not specific.
Go programs wait for sockets and pipes in the netpoller (`ep_poll`), not in a blocking read:
for them the fd table and /proc/net/tcp (see tree.py) find the peer, not this table.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["FS_WCHANS", "WaitKind", "classify_wait", "syscall_family"]


class WaitKind(enum.Enum):
    """What one thread waits on, from its kernel facts alone."""

    FILESYSTEM = "filesystem"  # a filesystem request that does not come back
    FIFO_OPEN = "fifo_open"  # opening a FIFO with no other end
    PIPE = "pipe"  # reading or writing a pipe or FIFO
    CHILD = "child"  # waiting for a child process
    SOCKET = "socket"  # a blocking socket call
    UNINTERRUPTIBLE = "uninterruptible"  # D state the table has no better name for
    STOPPED = "stopped"
    RUNNING = "running"
    PARKED = "parked"  # idle in futex/epoll/sleep: waiting on the process itself
    UNKNOWN = "unknown"


# wchan -> (kind, the filesystem family it belongs to, for the sentence).
_WCHAN: Final[dict[str, tuple[WaitKind, str | None]]] = {
    # FUSE, including virtiofs (a FUSE transport)
    "request_wait_answer": (WaitKind.FILESYSTEM, "fuse"),
    "fuse_get_req": (WaitKind.FILESYSTEM, "fuse"),
    "fuse_wait_on_page_writeback": (WaitKind.FILESYSTEM, "fuse"),
    "fuse_wait_on_folio_writeback": (WaitKind.FILESYSTEM, "fuse"),
    "fuse_simple_request": (WaitKind.FILESYSTEM, "fuse"),
    "fuse_lock_inode": (WaitKind.FILESYSTEM, "fuse"),  # a lookup behind a hung one, same dir
    # the dentry cache: a lookup waiting for another lookup of the same name (any filesystem)
    "d_alloc_parallel": (WaitKind.FILESYSTEM, None),
    # NFS / SUNRPC
    "rpc_wait_bit_killable": (WaitKind.FILESYSTEM, "nfs"),
    "__rpc_wait_for_completion_task": (WaitKind.FILESYSTEM, "nfs"),
    "__rpc_execute": (WaitKind.FILESYSTEM, "nfs"),
    "nfs_wait_bit_killable": (WaitKind.FILESYSTEM, "nfs"),
    "nfs4_wait_clnt_recover": (WaitKind.FILESYSTEM, "nfs"),
    "nfs_wait_on_request": (WaitKind.FILESYSTEM, "nfs"),
    # 9p
    "p9_client_rpc": (WaitKind.FILESYSTEM, "9p"),
    "p9_virtio_request": (WaitKind.FILESYSTEM, "9p"),
    # CIFS / SMB
    "wait_for_response": (WaitKind.FILESYSTEM, "cifs"),
    "wait_for_free_credits": (WaitKind.FILESYSTEM, "cifs"),
    "wait_for_compound_request": (WaitKind.FILESYSTEM, "cifs"),
    "cifs_reconnect": (WaitKind.FILESYSTEM, "cifs"),
    "smb2_reconnect": (WaitKind.FILESYSTEM, "cifs"),
    # FIFOs and pipes
    "wait_for_partner": (WaitKind.FIFO_OPEN, None),
    "pipe_read": (WaitKind.PIPE, None),
    "anon_pipe_read": (WaitKind.PIPE, None),
    "pipe_write": (WaitKind.PIPE, None),
    "anon_pipe_write": (WaitKind.PIPE, None),
    "pipe_wait": (WaitKind.PIPE, None),
    "pipe_wait_readable": (WaitKind.PIPE, None),
    "pipe_wait_writable": (WaitKind.PIPE, None),
    # child processes
    "do_wait": (WaitKind.CHILD, None),
    "kernel_clone": (WaitKind.CHILD, None),
    "wait_for_vfork_done": (WaitKind.CHILD, None),
    # sockets
    "sk_wait_data": (WaitKind.SOCKET, None),
    "sk_stream_wait_memory": (WaitKind.SOCKET, None),
    "sk_stream_wait_connect": (WaitKind.SOCKET, None),
    "inet_csk_accept": (WaitKind.SOCKET, None),
    "inet_csk_wait_for_connect": (WaitKind.SOCKET, None),
    "inet_wait_for_connect": (WaitKind.SOCKET, None),
    "unix_stream_data_wait": (WaitKind.SOCKET, None),
    "unix_stream_read_generic": (WaitKind.SOCKET, None),
    "unix_wait_for_peer": (WaitKind.SOCKET, None),
    "__skb_wait_for_more_packets": (WaitKind.SOCKET, None),
    "__skb_recv_datagram": (WaitKind.SOCKET, None),
    # parked: the process waits on itself
    "futex_wait_queue": (WaitKind.PARKED, None),
    "futex_wait_queue_me": (WaitKind.PARKED, None),
    "futex_do_wait": (WaitKind.PARKED, None),
    "futex_wait": (WaitKind.PARKED, None),
    "ep_poll": (WaitKind.PARKED, None),
    "do_epoll_wait": (WaitKind.PARKED, None),
    "do_sys_poll": (WaitKind.PARKED, None),
    "do_select": (WaitKind.PARKED, None),
    "core_sys_select": (WaitKind.PARKED, None),
    "hrtimer_nanosleep": (WaitKind.PARKED, None),
    "do_nanosleep": (WaitKind.PARKED, None),
    "sigsuspend": (WaitKind.PARKED, None),
    "do_sigtimedwait": (WaitKind.PARKED, None),
    "sys_pause": (WaitKind.PARKED, None),
    "__x64_sys_pause": (WaitKind.PARKED, None),
}

# Whole wchan families by prefix, for names that vary across kernel versions.
_WCHAN_PREFIX: Final[tuple[tuple[str, WaitKind, str | None], ...]] = (
    ("fuse_", WaitKind.FILESYSTEM, "fuse"),
    ("nfs", WaitKind.FILESYSTEM, "nfs"),
    ("rpc_", WaitKind.FILESYSTEM, "nfs"),
    ("p9_", WaitKind.FILESYSTEM, "9p"),
    ("cifs_", WaitKind.FILESYSTEM, "cifs"),
    ("smb2_", WaitKind.FILESYSTEM, "cifs"),
    ("futex_", WaitKind.PARKED, None),
)

# System call families: which calls touch a path or a file, wait for a child, use a socket.
PATH_CALLS: Final = frozenset({
    "open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "fstatat64", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "statfs", "truncate",
    "getxattr", "lgetxattr", "listxattr", "llistxattr", "chdir", "mkdir", "mkdirat", "rmdir",
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "utimensat", "fchmodat",
    "fchownat", "execve", "execveat", "inotify_add_watch", "name_to_handle_at", "symlink",
    "symlinkat", "link", "linkat",
})
FILE_CALLS: Final = frozenset({
    "read", "pread64", "readv", "preadv", "preadv2", "write", "pwrite64", "writev", "pwritev",
    "pwritev2", "fstat", "fstatfs", "fsync", "fdatasync", "ftruncate", "fallocate", "flock",
    "getdents", "getdents64", "close", "lseek", "fgetxattr", "copy_file_range", "sendfile",
    "splice", "sync_file_range", "syncfs", "msync", "mmap", "fchdir",
})
CHILD_CALLS: Final = frozenset({"wait4", "waitid", "waitpid", "vfork", "clone", "clone3"})
SOCKET_CALLS: Final = frozenset({
    "connect", "accept", "accept4", "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg",
    "sendmmsg",
})
PARKED_CALLS: Final = frozenset({
    "futex", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select",
    "pselect6", "nanosleep", "clock_nanosleep", "pause", "rt_sigsuspend", "rt_sigtimedwait",
    "sched_yield",
})

FS_WCHANS: Final = frozenset(w for w, (k, _) in _WCHAN.items() if k is WaitKind.FILESYSTEM)


def syscall_family(syscall: str | None) -> str | None:
    """"path", "file", "child", "socket", "parked", or None for anything else."""
    if syscall is None:
        return None
    for family, calls in (("path", PATH_CALLS), ("file", FILE_CALLS), ("child", CHILD_CALLS),
                          ("socket", SOCKET_CALLS), ("parked", PARKED_CALLS)):
        if syscall in calls:
            return family
    return None


def _by_wchan(wchan: str | None) -> tuple[WaitKind, str | None] | None:
    if not wchan or wchan == "0":
        return None
    hit = _WCHAN.get(wchan)
    if hit is not None:
        return hit
    for prefix, kind, fs in _WCHAN_PREFIX:
        if wchan.startswith(prefix):
            return kind, fs
    return None


def classify_wait(state: str, wchan: str | None, syscall: str | None,
                  fd_path: str | None = None) -> tuple[WaitKind, str | None]:
    """What a thread waits on, and the filesystem family when the wchan names one.

    `fd_path` is where the syscall's fd points ("pipe:[123]", "socket:[456]", a path): a read
    of a pipe or socket whose wchan is generic is still a pipe or socket wait.
    """
    if state in ("T", "t"):
        return WaitKind.STOPPED, None
    if state == "R" or syscall == "running":
        return WaitKind.RUNNING, None
    hit = _by_wchan(wchan)
    family = syscall_family(syscall)
    if hit is not None and hit[0] is not WaitKind.PARKED:
        return hit
    if fd_path is not None and family in ("file", "socket"):
        if fd_path.startswith("pipe:"):
            return WaitKind.PIPE, None
        if fd_path.startswith("socket:"):
            return WaitKind.SOCKET, None
    if family == "child":
        return WaitKind.CHILD, None
    if family == "socket":
        return WaitKind.SOCKET, None
    if family in ("path", "file") and state in ("S", "D"):
        # A path or file call that sleeps: on a healthy local disk it returns in microseconds.
        return WaitKind.FILESYSTEM, None
    if hit is not None:
        return hit
    if family == "parked":
        return WaitKind.PARKED, None
    if state == "D":
        return WaitKind.UNINTERRUPTIBLE, None
    if state in ("S", "I"):
        return WaitKind.PARKED, None
    return WaitKind.UNKNOWN, None

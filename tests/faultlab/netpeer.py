"""A loopback TCP peer that accepts connections and never answers (a wedged proxy or registry).

    with silent_peer() as peer:                  # 127.0.0.1, an ephemeral port
        env["GOPROXY"] = peer.url                # http://127.0.0.1:PORT
        ...                                      # `go mod download` waits on it forever

The kernel completes the TCP handshake itself (the listening socket's backlog), and the peer's
thread accepts each connection and then, by default, reads and discards whatever the client sends
(so a client's send never blocks on a full window) without ever writing a byte. With
`read=False` it never reads either: the client's request then sits in the peer's receive queue.
A client blocked waiting for the answer sleeps in its receive path: a blocking recv() in wchan
`wait_woken` (sk_wait_data), a Go program in its netpoller (`do_epoll_wait`), its socket
ESTABLISHED to 127.0.0.1:PORT in /proc/net/tcp.

Teardown (`close()`, also on __exit__) is bounded: it stops the thread (a wakeup socketpair breaks
its select), then closes every accepted connection with SO_LINGER 0, so clients get a reset at
once instead of waiting on their own timeouts.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import threading
from collections.abc import Iterator

from ..polling import wait_until

HEAD = 4096


class SilentPeer:
    """Accepts TCP connections on 127.0.0.1 and never answers them."""

    def __init__(self, *, read: bool = True, backlog: int = 64) -> None:
        self.read = read
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(backlog)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self.received = 0  # bytes read and discarded
        self.heads: list[bytes] = []  # the first bytes each connection sent (up to HEAD bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"silent-peer-{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._conns)

    def wait_for_connections(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Poll until at least `count` connections were accepted."""
        return wait_until(lambda: self.accepted >= count, timeout)

    def client_ports(self) -> list[int]:
        """The (ephemeral) ports of the accepted clients."""
        with self._lock:
            ports = []
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    ports.append(conn.getpeername()[1])
            return ports

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ, "accept")
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "wake":
                        return
                    if key.data == "accept":
                        self._accept(sel)
                    else:
                        self._drain(sel, key.fileobj)  # type: ignore[arg-type]

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        with self._lock:
            self._conns.append(conn)
        if self.read:
            sel.register(conn, selectors.EVENT_READ, "conn")

    def _drain(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.received += len(data)
            with self._lock:
                index = self._conns.index(conn)
                while len(self.heads) <= index:
                    self.heads.append(b"")
                if len(self.heads[index]) < HEAD:
                    self.heads[index] += data[:HEAD - len(self.heads[index])]
        else:  # the client closed: forget it
            sel.unregister(conn)
            with self._lock:
                self._conns.remove(conn)
            conn.close()

    def close(self) -> None:
        """Stop accepting and reset every connection (bounded; idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(5.0)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> SilentPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def silent_peer(*, read: bool = True) -> Iterator[SilentPeer]:
    """A SilentPeer for the duration of the block."""
    with SilentPeer(read=read) as peer:
        yield peer


def tcp_connections(port: int) -> list[dict[str, object]]:
    """The IPv4 TCP sockets to or from 127.0.0.1:`port` in /proc/net/tcp (this network namespace).

    Each: {"inode": int, "state": "ESTABLISHED"|..., "local": (ip, port), "remote": (ip, port)}.
    """
    states = {"01": "ESTABLISHED", "02": "SYN_SENT", "06": "TIME_WAIT", "08": "CLOSE_WAIT",
              "0A": "LISTEN"}
    out: list[dict[str, object]] = []
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            fields = line.split()
            local, remote = (_addr(fields[1]), _addr(fields[2]))
            if port in (local[1], remote[1]):
                out.append({"inode": int(fields[9]), "state": states.get(fields[3], fields[3]),
                            "local": local, "remote": remote})
    return out


def _addr(text: str) -> tuple[str, int]:
    ip_hex, port_hex = text.split(":")
    ip = socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16)))
    return ip, int(port_hex, 16)


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` holds open (from /proc/PID/fd)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes

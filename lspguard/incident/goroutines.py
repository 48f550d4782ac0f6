"""gopls's goroutine dump, fetched from its debug server without stopping the process.

gopls started with `-debug=127.0.0.1:0` logs `debug server listening at http://localhost:PORT`
on stderr (gopls v0.21.1 prints it through the standard `log` package, so the line starts with
`serve.go:NNN: `). `/debug/pprof/goroutine?debug=2` then returns every goroutine's stack: which
mutex the handlers wait on, which `go list` is outstanding. Only loopback addresses are fetched
(this is a process of ours on this machine; an address from a config file must never make
lspguard send requests elsewhere), through http.client directly so no HTTP proxy from the
environment is involved.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time

__all__ = ["DEBUG_LINE", "fetch_goroutines", "parse_debug_address"]

DEBUG_LINE = re.compile(
    r"debug server listening (?:at|on) (?:https?://)?(\[[^\]\s]+\]|[^\s:/\[]*):(\d+)")
MAX_DUMP = 32 * 1024 * 1024
_PATH = "/debug/pprof/goroutine?debug=2"


def parse_debug_address(line: str) -> str | None:
    """`HOST:PORT` from a gopls stderr/log line announcing its debug server, else None."""
    match = DEBUG_LINE.search(line)
    if match is None:
        return None
    host = match.group(1).strip("[]") or "localhost"
    return f"[{host}]:{match.group(2)}" if ":" in host else f"{host}:{match.group(2)}"


def fetch_goroutines(address: str, timeout: float, *, max_bytes: int = MAX_DUMP) -> str:
    """GET the goroutine dump from `address` ("HOST:PORT", loopback only); blocking.

    `timeout` bounds the whole exchange, not just each socket operation, so a server that
    trickles bytes cannot hold the collector.
    """
    host, port = split_address(address)
    check_loopback(host)
    deadline = time.monotonic() + timeout
    import http.client  # not at import: the proxy parses the address on its way to initialize

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", _PATH, headers={"Accept": "text/plain"})
        if conn.sock is not None:
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {_PATH} answered {response.status} {response.reason}")
        chunks: list[bytes] = []
        size = 0
        while size < max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"goroutine dump not complete after {timeout:.1f} s "
                                   f"({size} bytes read)")
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            chunk = response.read1(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        conn.close()
    text = b"".join(chunks).decode("utf-8", "replace")
    if size >= max_bytes:
        text += f"\n... dump truncated at {max_bytes} bytes\n"
    return text


def split_address(address: str) -> tuple[str, int]:
    """("127.0.0.1", 6060) from "127.0.0.1:6060", "[::1]:6060" or "http://localhost:6060/"."""
    address = address.strip().removeprefix("http://").rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not a HOST:PORT address: {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_loopback(host: str) -> None:
    """Raise ValueError unless every address `host` names is a loopback address."""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        if host != "localhost":
            raise ValueError(f"refusing to fetch from {host!r}: only loopback addresses (and "
                             "'localhost') are allowed") from None
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    outside = sorted(str(a) for a in addresses if not a.is_loopback)
    if outside or not addresses:
        raise ValueError(f"refusing to fetch from {host!r}: not a loopback address "
                         f"({', '.join(outside) or 'no address'})")

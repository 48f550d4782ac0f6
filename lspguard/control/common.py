"""The control socket: how `lspguard restart|snapshot` and the VS Code extension talk to a proxy.

Each proxy serves a Unix socket `<runtime dir>/sessions/<proxy pid>.sock` next to its status file.
Three layers keep it private: the directory is 0700, the socket is 0600 (set between bind and
listen), and every peer's uid is read from the kernel (SO_PEERCRED on Linux, getpeereid elsewhere)
and must equal ours; any other peer gets one error line and is disconnected.

Protocol: newline-delimited JSON over a stream, one request per line, one response line per
request, in order::

    -> {"command": "status", "args": {}}
    <- {"ok": true, "result": {...}}
    <- {"ok": false, "error": "unknown command 'stats'; known commands: restart, snapshot, status"}

A request line may be at most MAX_REQUEST_BYTES (longer: error, then the connection is closed);
a malformed line gets an error response and the connection stays usable; blank lines are ignored.
A handler that raises becomes an error response; it never takes the server (or the session) down.

`serve_control` is the server (control/server.py: anyio, run inside the session's task group
with `tg.start`); `call_control` is a small blocking client (control/client.py; control/cli.py
gives it its commands). What both sides share is here: the socket's path, the size limit of a
request, the error type and the JSON encoding of results. anyio is imported lazily so the CLI
stays quick to start.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from lspguard import paths
from lspguard.errors import LspguardError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MAX_REQUEST_BYTES", "ControlError", "check_socket_path", "json_default",
           "socket_path"]

MAX_REQUEST_BYTES = 64 * 1024
# sun_path holds 108 bytes on Linux and 104 on the BSDs/macOS, including the trailing NUL.
_MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103


class ControlError(LspguardError):
    """A control request could not be made or was answered with an error."""


def socket_path(pid: int, directory: Path | None = None) -> Path:
    """Where the proxy with process id `pid` serves its control socket."""
    return (directory or paths.sessions_dir()) / f"{pid}.sock"


def json_default(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise ControlError(
            f"control socket path {path} is longer than the {_MAX_SOCKET_PATH} bytes a Unix "
            "socket address can hold; set LSPGUARD_RUNTIME_DIR to a shorter directory")

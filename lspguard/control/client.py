"""The control socket's client: one blocking request to a live session, and the live sessions
(protocol: control/common.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from lspguard import paths
from lspguard.control.common import ControlError, check_socket_path, socket_path

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MAX_RESPONSE_BYTES", "call_control", "find_sessions", "is_socket"]

MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def call_control(path: Path, command: str, args: dict[str, Any] | None = None,
                 timeout: float = 10.0) -> Any:
    """Send one request to the control socket at `path` and return its result.

    Raises ControlError with a message a user can act on: no session there, another user's
    session, no answer within `timeout` seconds, or the error the session answered with.
    """
    check_socket_path(path)
    request = json.dumps({"command": command, "args": args or {}}).encode() + b"\n"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except FileNotFoundError:
            raise ControlError(f"no lspguard control socket at {path}; is that session still "
                               "running? (`lspguard status` lists the live ones)") from None
        except ConnectionRefusedError:
            raise ControlError(f"nothing is listening on {path}: the lspguard session that "
                               "created it has exited") from None
        except PermissionError:
            raise ControlError(f"permission denied connecting to {path}: it belongs to "
                               "another user") from None
        except TimeoutError:
            raise ControlError(f"could not connect to {path} within {timeout:g} s") from None
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        buffer = bytearray()
        try:
            sock.sendall(request)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) > MAX_RESPONSE_BYTES:
                    raise ControlError(f"the answer from {path} is larger than "
                                       f"{MAX_RESPONSE_BYTES} bytes")
        except TimeoutError:
            raise ControlError(f"no answer to {command!r} from {path} within {timeout:g} s; "
                               "the session may be busy (try a longer --timeout)") from None
        except OSError as exc:
            raise ControlError(f"connection to {path} failed: {exc.strerror or exc}") from None
    line, newline, _ = bytes(buffer).partition(b"\n")
    if not newline:
        raise ControlError(f"{path} closed the connection without answering {command!r}")
    try:
        response = json.loads(line)
    except ValueError as exc:
        raise ControlError(f"malformed answer from {path}: {exc}") from None
    if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
        raise ControlError(f"malformed answer from {path}: {line[:200]!r}")
    if response["ok"]:
        return response.get("result")
    raise ControlError(f"{command}: {response.get('error') or 'failed (no reason given)'}")


def find_sessions(directory: Path | None = None) -> list[dict[str, Any]]:
    """Status documents of the live sessions, each with `socket`: the control socket's path as
    a string, or None when that session serves no socket (yet)."""
    from lspguard.status.file import read_statuses

    directory = directory or paths.sessions_dir()
    sessions = read_statuses(directory)
    for doc in sessions:
        pid = doc.get("pid")
        sock = socket_path(pid, directory) if isinstance(pid, int) else None
        doc["socket"] = str(sock) if sock is not None and is_socket(sock) else None
    return sessions


def is_socket(path: Path) -> bool:
    try:
        return path.is_socket()
    except OSError:
        return False

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

`serve_control` is the server (anyio, run inside the session's task group with `tg.start`);
`call_control` is a small blocking client (control_cli.py gives it its commands). anyio is
imported lazily so the CLI stays quick to start.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

from . import paths
from .errors import LspguardError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    from anyio import Semaphore
    from anyio.abc import ByteStream, SocketListener, TaskGroup, TaskStatus

    Handler = Callable[[dict[str, Any]], Awaitable[Any]]

__all__ = ["MAX_REQUEST_BYTES", "ControlError", "call_control", "find_sessions", "is_socket",
           "json_default", "peer_allowed", "peer_uid", "serve_control", "socket_path"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_CONNECTIONS = 16  # beyond this, new clients wait in the listen backlog
IDLE_TIMEOUT = 300.0  # a connection that sends nothing for this long is closed
# sun_path holds 108 bytes on Linux and 104 on the BSDs/macOS, including the trailing NUL.
_MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103


class ControlError(LspguardError):
    """A control request could not be made or was answered with an error."""


def socket_path(pid: int, directory: Path | None = None) -> Path:
    """Where the proxy with process id `pid` serves its control socket."""
    return (directory or paths.sessions_dir()) / f"{pid}.sock"


# --------------------------------------------------------------------------------------------
# Peer credentials
# --------------------------------------------------------------------------------------------


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket, from the kernel."""
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is not None:  # Linux: struct ucred {pid_t pid; uid_t uid; gid_t gid;}
        creds = sock.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)
    return _getpeereid(sock.fileno())


def _getpeereid(fd: int) -> int:
    """getpeereid(2) (macOS, BSDs), which Python's socket module does not wrap."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    uid, gid = ctypes.c_uint32(), ctypes.c_uint32()
    if libc.getpeereid(fd, ctypes.byref(uid), ctypes.byref(gid)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"getpeereid: {os.strerror(err)}")
    return int(uid.value)


def peer_allowed(uid: int | None, own_uid: int | None = None) -> bool:
    """Only our own uid may control a session (root included: it has other ways in)."""
    return uid is not None and uid == (os.getuid() if own_uid is None else own_uid)


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


async def serve_control(path: Path, handlers: Mapping[str, Handler], *,
                        task_status: TaskStatus[None] | None = None) -> None:
    """Serve `handlers` on a Unix socket at `path` until cancelled; then remove the socket.

    Start it with `await tg.start(serve_control, path, handlers)`: it reports started once the
    socket is listening with mode 0600 in a 0700 directory. Each connection is a task in this
    function's own task group, so cancelling it closes every connection.
    """
    import anyio

    _check_socket_path(path)
    paths.ensure_private_dir(path.parent)
    # anyio binds, chmods the socket file, then listens: no client can connect before the
    # 0600 mode is in place (connect() to a bound, non-listening socket is refused).
    listener = await anyio.create_unix_listener(path, mode=0o600)
    inode = _inode(path)
    try:
        async with listener, anyio.create_task_group() as tg:
            log.info("control socket listening at %s", path)
            if task_status is not None:
                task_status.started()
            await _accept_loop(listener, tg, dict(handlers))
    finally:
        _remove_socket(path, inode)


async def _accept_loop(listener: SocketListener, tg: TaskGroup,
                       handlers: dict[str, Handler]) -> None:
    import anyio

    slots = anyio.Semaphore(MAX_CONNECTIONS)
    own_uid = os.getuid()
    while True:
        await slots.acquire()
        try:
            stream = await listener.accept()
        except OSError as exc:  # e.g. EMFILE: wait and try again; never end the session for it
            slots.release()
            log.warning("control socket: accept failed: %s", exc)
            await anyio.sleep(0.5)
            continue
        except BaseException:
            slots.release()
            raise
        tg.start_soon(_connection, stream, handlers, own_uid, slots)


async def _connection(stream: ByteStream, handlers: dict[str, Handler], own_uid: int,
                      slots: Semaphore) -> None:
    import anyio
    from anyio.abc import SocketAttribute
    from anyio.streams.buffered import BufferedByteReceiveStream

    try:
        async with stream:
            try:
                uid: int | None = peer_uid(stream.extra(SocketAttribute.raw_socket))
            except (OSError, anyio.TypedAttributeLookupError) as exc:
                log.warning("control socket: cannot read peer credentials: %s", exc)
                uid = None
            if not peer_allowed(uid, own_uid):
                log.warning("control socket: refused a peer with uid %s (ours: %d)", uid, own_uid)
                await stream.send(_error(f"refused: peer uid {uid} is not the session owner's "
                                         f"uid {own_uid}"))
                return
            reader = BufferedByteReceiveStream(stream)
            while True:
                try:
                    with anyio.fail_after(IDLE_TIMEOUT):
                        line = await reader.receive_until(b"\n", MAX_REQUEST_BYTES)
                except anyio.DelimiterNotFound:
                    await stream.send(_error(f"request line longer than {MAX_REQUEST_BYTES} "
                                             "bytes; closing the connection"))
                    return
                except (anyio.EndOfStream, anyio.IncompleteRead, TimeoutError):
                    return
                if not line.strip():
                    continue
                await stream.send(await _respond(line, handlers))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        log.debug("control connection ended: %s", exc)
    except Exception:  # a bug in here must not end the session the socket belongs to
        log.exception("control connection failed")
    finally:
        slots.release()


async def _respond(line: bytes, handlers: dict[str, Handler]) -> bytes:
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(f"malformed request: not JSON ({exc})")
    if not isinstance(request, dict):
        return _error('malformed request: expected a JSON object like '
                      '{"command": "status", "args": {}}')
    command = request.get("command")
    if not isinstance(command, str):
        return _error('malformed request: "command" must be a string')
    args = request.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return _error('malformed request: "args" must be an object')
    handler = handlers.get(command)
    if handler is None:
        known = ", ".join(sorted(handlers)) or "none"
        return _error(f"unknown command {command!r}; known commands: {known}")
    try:
        result = await handler(args)
    except Exception as exc:
        log.exception("control command %s failed", command)
        detail = str(exc) if isinstance(exc, LspguardError) else f"{type(exc).__name__}: {exc}"
        return _error(f"{command} failed: {detail}")
    try:
        return _encode({"ok": True, "result": result})
    except (TypeError, ValueError) as exc:
        log.error("control command %s returned a result that is not JSON: %s", command, exc)
        return _error(f"{command} returned a result that cannot be sent as JSON: {exc}")


def json_default(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, default=json_default, separators=(",", ":"),
                      allow_nan=False).encode() + b"\n"


def _error(message: str) -> bytes:
    return _encode({"ok": False, "error": message})


def _inode(path: Path) -> int | None:
    try:
        return path.lstat().st_ino
    except OSError:
        return None


def _remove_socket(path: Path, inode: int | None) -> None:
    """Unlink our socket, but not a file someone else has since put at the same path."""
    try:
        if inode is None or path.lstat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove control socket %s: %s", path, exc)


def _check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise ControlError(
            f"control socket path {path} is longer than the {_MAX_SOCKET_PATH} bytes a Unix "
            "socket address can hold; set LSPGUARD_RUNTIME_DIR to a shorter directory")


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


def call_control(path: Path, command: str, args: dict[str, Any] | None = None,
                 timeout: float = 10.0) -> Any:
    """Send one request to the control socket at `path` and return its result.

    Raises ControlError with a message a user can act on: no session there, another user's
    session, no answer within `timeout` seconds, or the error the session answered with.
    """
    _check_socket_path(path)
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
    from .status import read_statuses

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

"""The control socket's server: serves a session's handlers on its Unix socket (protocol and
privacy rules: control/common.py)."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from typing import TYPE_CHECKING, Any

from lspguard import paths
from lspguard.control.common import MAX_REQUEST_BYTES, check_socket_path, json_default
from lspguard.errors import LspguardError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    from anyio import Semaphore
    from anyio.abc import ByteStream, SocketListener, TaskGroup, TaskStatus

    Handler = Callable[[dict[str, Any]], Awaitable[Any]]

__all__ = ["peer_allowed", "peer_uid", "serve_control"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 16  # beyond this, new clients wait in the listen backlog
IDLE_TIMEOUT = 300.0  # a connection that sends nothing for this long is closed


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

    check_socket_path(path)
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

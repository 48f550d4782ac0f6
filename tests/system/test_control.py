"""The control socket: protocol round trips over a real Unix socket, privacy, and the CLI."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from lspguard import paths
from lspguard.cli import main as cli
from lspguard.control import server as control
from lspguard.control.client import call_control, find_sessions
from lspguard.control.common import MAX_REQUEST_BYTES, ControlError, socket_path
from lspguard.control.server import peer_allowed, peer_uid, serve_control
from lspguard.status.schema import Memory, Slow

NOBODY = 65534


def _stub_handlers(calls: list[tuple[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    calls = [] if calls is None else calls

    async def status(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(("status", args))
        return {"pid": os.getpid(), "state": "running", "backend": {"generation": 1}}

    async def restart(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(("restart", args))
        return {"generation": 2, "reason": args.get("reason", "manual")}

    async def snapshot(args: dict[str, Any]) -> Path:
        calls.append(("snapshot", args))
        return Path("/state/bundles/20250101-000000-manual")

    async def broken(args: dict[str, Any]) -> None:
        raise RuntimeError("the watchdog is not running")

    async def slow(args: dict[str, Any]) -> None:
        await anyio.sleep(30)

    async def unencodable(args: dict[str, Any]) -> object:
        return object()

    return {"status": status, "restart": restart, "snapshot": snapshot, "broken": broken,
            "slow": slow, "unencodable": unencodable}


@asynccontextmanager
async def serving(path: Path, handlers: dict[str, Any]) -> AsyncIterator[Path]:
    async with anyio.create_task_group() as tg:
        await tg.start(serve_control, path, handlers)
        yield path
        tg.cancel_scope.cancel()


class LineClient:
    """A raw protocol client: send lines, read answer lines."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)

    async def ask(self, line: bytes) -> dict[str, Any]:
        await self.stream.send(line)
        return await self.answer()

    async def answer(self) -> dict[str, Any]:
        with anyio.fail_after(5):
            doc = json.loads(await self.reader.receive_until(b"\n", 1 << 20))
        assert isinstance(doc, dict)
        return doc

    async def at_eof(self) -> bool:
        with anyio.fail_after(5):
            try:
                await self.reader.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return True
        return False


@asynccontextmanager
async def connected(path: Path) -> AsyncIterator[LineClient]:
    async with await anyio.connect_unix(path) as stream:
        yield LineClient(stream)


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "sessions" / "4242.sock"


# ---------------------------------------------------------------- round trips


async def test_round_trip_status_restart_snapshot(sock: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    async with serving(sock, _stub_handlers(calls)):
        status = await anyio.to_thread.run_sync(call_control, sock, "status")
        restart = await anyio.to_thread.run_sync(call_control, sock, "restart",
                                                 {"reason": "test"})
        snapshot = await anyio.to_thread.run_sync(call_control, sock, "snapshot")
    assert status == {"pid": os.getpid(), "state": "running", "backend": {"generation": 1}}
    assert restart == {"generation": 2, "reason": "test"}
    assert snapshot == "/state/bundles/20250101-000000-manual"  # a Path is sent as a string
    assert calls == [("status", {}), ("restart", {"reason": "test"}), ("snapshot", {})]


async def test_many_requests_on_one_connection_answered_in_order(sock: Path) -> None:
    async with serving(sock, _stub_handlers()), connected(sock) as client:
        await client.stream.send(b'{"command": "status"}\n{"command": "restart"}\n'
                                 b'{"command": "snapshot", "args": null}\n')
        answers = [await client.answer() for _ in range(3)]
    assert [a["ok"] for a in answers] == [True, True, True]
    assert answers[0]["result"]["state"] == "running"
    assert answers[1]["result"]["generation"] == 2
    assert answers[2]["result"].endswith("manual")


async def test_socket_0600_in_a_0700_dir_and_removed_on_exit(tmp_path: Path) -> None:
    loose = tmp_path / "sessions"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    path = loose / "1.sock"
    async with serving(path, _stub_handlers()):
        st = path.lstat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(loose.stat().st_mode) == 0o700  # tightened before binding
    assert not path.exists()


async def test_socket_in_the_real_sessions_dir_is_private() -> None:
    path = socket_path(os.getpid())
    assert path.parent == paths.sessions_dir()
    async with serving(path, _stub_handlers()):
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


async def test_stale_socket_of_a_dead_proxy_is_replaced(sock: Path) -> None:
    paths.ensure_private_dir(sock.parent)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # bound, never listening: what a killed proxy leaves behind
    with pytest.raises(ControlError, match="nothing is listening"):
        call_control(sock, "status")
    async with serving(sock, _stub_handlers()):
        assert (await anyio.to_thread.run_sync(call_control, sock, "status"))["state"] \
            == "running"


# ---------------------------------------------------------------- errors


async def test_malformed_lines_get_errors_and_the_connection_keeps_working(sock: Path) -> None:
    async with serving(sock, _stub_handlers()), connected(sock) as client:
        bad = {
            b"this is not json\n": "malformed request: not JSON",
            b'{"command": "status"\n': "malformed request: not JSON",
            b"\xff\xfe\n": "malformed request: not JSON",
            b'["status"]\n': "malformed request: expected a JSON object",
            b'{"command": 5}\n': 'malformed request: "command" must be a string',
            b'{"args": {}}\n': 'malformed request: "command" must be a string',
            b'{"command": "status", "args": [1]}\n': 'malformed request: "args" must be an object',
        }
        for line, error in bad.items():
            answer = await client.ask(line)
            assert answer["ok"] is False, line
            assert answer["error"].startswith(error), (line, answer)
        await client.stream.send(b"\n  \r\n")  # blank lines are ignored, not answered
        answer = await client.ask(b'{"command": "status", "args": {}}\r\n')
        assert answer == {"ok": True, "result": {"pid": os.getpid(), "state": "running",
                                                 "backend": {"generation": 1}}}


async def test_unknown_command_names_the_known_ones(sock: Path) -> None:
    handlers = _stub_handlers()
    async with serving(sock, {k: handlers[k] for k in ("status", "restart", "snapshot")}):
        with pytest.raises(ControlError) as info:
            await anyio.to_thread.run_sync(call_control, sock, "stats")
    assert str(info.value) == ("stats: unknown command 'stats'; known commands: restart, "
                               "snapshot, status")


async def test_handler_exception_becomes_an_error_response(sock: Path) -> None:
    async with serving(sock, _stub_handlers()), connected(sock) as client:
        answer = await client.ask(b'{"command": "broken"}\n')
        assert answer == {"ok": False,
                          "error": "broken failed: RuntimeError: the watchdog is not running"}
        answer = await client.ask(b'{"command": "unencodable"}\n')
        assert answer["ok"] is False
        assert "cannot be sent as JSON" in answer["error"]
        assert (await client.ask(b'{"command": "status"}\n'))["ok"] is True
        with pytest.raises(ControlError, match=r"^broken: broken failed: RuntimeError: the wat"):
            await anyio.to_thread.run_sync(call_control, sock, "broken")


async def test_oversized_request_line_is_refused_and_closed(sock: Path) -> None:
    async with serving(sock, _stub_handlers()), connected(sock) as client:
        await client.stream.send(b"x" * (MAX_REQUEST_BYTES + 10))
        answer = await client.answer()
        assert answer["ok"] is False
        assert f"longer than {MAX_REQUEST_BYTES} bytes" in answer["error"]
        assert await client.at_eof()
        # the server itself is fine
        assert (await anyio.to_thread.run_sync(call_control, sock, "status"))["pid"] \
            == os.getpid()


async def test_client_vanishing_mid_request_does_not_hurt_the_server(sock: Path) -> None:
    async with serving(sock, _stub_handlers()):
        async with connected(sock) as client:
            await client.stream.send(b'{"command": "slow"}\n')
        async with connected(sock) as client:
            await client.stream.send(b'{"command": "sta')
        assert (await anyio.to_thread.run_sync(call_control, sock, "status"))["pid"] \
            == os.getpid()


def test_call_control_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=r"no lspguard control socket at .*lspguard status"):
        call_control(tmp_path / "nope.sock", "status")
    with pytest.raises(ControlError, match=r"longer than the .* bytes"):
        call_control(tmp_path / ("x" * 120) / "1.sock", "status")


async def test_call_control_times_out_with_a_clear_error(sock: Path) -> None:
    async with serving(sock, _stub_handlers()):
        with pytest.raises(ControlError, match=r"no answer to 'slow' .* within 0.3 s"):
            await anyio.to_thread.run_sync(lambda: call_control(sock, "slow", timeout=0.3))


# ---------------------------------------------------------------- peer uid


def test_peer_allowed_only_for_our_own_uid() -> None:
    assert peer_allowed(1000, own_uid=1000)
    assert not peer_allowed(NOBODY, own_uid=1000)
    assert not peer_allowed(0, own_uid=1000)  # root too: it is another user here
    assert not peer_allowed(None, own_uid=1000)  # credentials unreadable: refuse
    assert peer_allowed(os.getuid())


def test_peer_uid_comes_from_the_kernel() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_uid(a) == os.getuid()


async def test_peer_with_another_uid_is_refused_and_closed(
        sock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server side of the check, with the kernel's answer faked."""
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(control, "peer_uid", lambda _sock: NOBODY)
    async with serving(sock, _stub_handlers(calls)), connected(sock) as client:
        answer = await client.answer()  # sent before any request is read
        assert answer == {"ok": False, "error": f"refused: peer uid {NOBODY} is not the "
                                                f"session owner's uid {os.getuid()}"}
        with suppress(anyio.BrokenResourceError):  # already closed by the server: fine
            await client.stream.send(b'{"command": "restart"}\n')
        assert await client.at_eof()
    assert calls == []


_NOBODY_CLIENT = textwrap.dedent("""
    import os, socket, sys
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        print("connect-failed", type(e).__name__)
        raise SystemExit(0)
    print("uid", os.getuid())
    try:
        s.sendall(b'{"command": "restart"}\\n')
    except OSError as e:
        pass  # the server may have hung up already
    data = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    print(data.decode().strip())
""")


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A dir under /tmp that another uid can reach (pytest's tmp_path is inside a 0700 dir)."""
    with tempfile.TemporaryDirectory(prefix="lspguard-ctl-") as d:
        Path(d).chmod(0o755)
        yield Path(d)


def _python_for_nobody() -> str | None:
    """A Python another uid can execute (ours may live under a private /root)."""
    base = getattr(sys, "_base_executable", sys.executable)
    for candidate in (sys.executable, base, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            subprocess.run([candidate, "-I", "-c", "pass"], user=NOBODY, group=NOBODY,
                           extra_groups=[], cwd="/", capture_output=True, timeout=20, check=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    return None


def _run_as_nobody(path: Path) -> list[str]:
    """Connect to `path` from a real process running as uid/gid nobody (subprocess does the
    fork + setgroups/setgid/setuid in the child, without fork()ing this threaded test process)."""
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python interpreter that uid nobody may execute")
    out = subprocess.run([python, "-I", "-c", _NOBODY_CLIENT, str(path)],
                         user=NOBODY, group=NOBODY, extra_groups=[], cwd="/",
                         capture_output=True, text=True, timeout=20, check=True)
    return out.stdout.splitlines()


def _loosen(path: Path) -> None:
    path.parent.chmod(0o711)
    path.chmod(0o666)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching uid needs root")


@needs_root
async def test_another_uid_cannot_reach_the_socket(shared_tmp: Path) -> None:
    """File permissions alone keep another user out (dir 0700, socket 0600)."""
    path = shared_tmp / "sessions" / "1.sock"
    async with serving(path, _stub_handlers()):
        lines = await anyio.to_thread.run_sync(_run_as_nobody, path)
    assert lines == ["connect-failed PermissionError"]


@needs_root
async def test_another_uid_is_refused_by_the_peer_check(shared_tmp: Path) -> None:
    """A real process running as nobody connects after the file permissions are loosened by hand
    (as a broken runtime dir setup might): the SO_PEERCRED check still refuses it."""
    calls: list[tuple[str, dict[str, Any]]] = []
    path = shared_tmp / "sessions" / "1.sock"
    async with serving(path, _stub_handlers(calls)):
        _loosen(path)
        lines = await anyio.to_thread.run_sync(_run_as_nobody, path)
    assert lines[0] == f"uid {NOBODY}"
    assert json.loads(lines[1]) == {"ok": False, "error": f"refused: peer uid {NOBODY} is not "
                                                          f"the session owner's uid 0"}
    assert len(lines) == 2  # one error line, then the server closed the connection
    assert calls == []


# ---------------------------------------------------------------- sessions and CLI


def _write_status(directory: Path, pid: int, folders: list[str]) -> None:
    paths.ensure_private_dir(directory)
    doc = {"schema": 1, "pid": pid, "state": "running", "workspace_folders": folders}
    paths.write_private_file(directory / f"{pid}.json", json.dumps(doc).encode())


async def test_find_sessions_adds_the_socket_path(tmp_path: Path) -> None:
    directory = tmp_path / "sessions"
    _write_status(directory, os.getpid(), ["file:///ws/a"])
    _write_status(directory, os.getppid(), ["file:///ws/b"])
    _write_status(directory, 2**22 + 12345, ["file:///ws/dead"])  # no such pid: skipped
    async with serving(socket_path(os.getpid(), directory), _stub_handlers()):
        sessions = {s["pid"]: s for s in find_sessions(directory)}
    assert set(sessions) == {os.getpid(), os.getppid()}
    assert sessions[os.getpid()]["socket"] == str(directory / f"{os.getpid()}.sock")
    assert sessions[os.getppid()]["socket"] is None


async def _cli(*argv: str) -> int:
    return await anyio.to_thread.run_sync(cli.main, list(argv))


async def test_cli_restart_and_snapshot_the_only_session(capsys: pytest.CaptureFixture[str]) \
        -> None:
    directory = paths.sessions_dir()
    _write_status(directory, os.getpid(), ["file:///ws/a"])
    calls: list[tuple[str, dict[str, Any]]] = []
    async with serving(socket_path(os.getpid()), _stub_handlers(calls)):
        assert await _cli("restart") == 0
        assert capsys.readouterr().out == (f"session {os.getpid()}: restarting (replacing "
                                           "generation 2)\n")
        assert await _cli("snapshot", str(os.getpid())) == 0
        assert capsys.readouterr().out == "/state/bundles/20250101-000000-manual\n"
        assert await _cli("restart", "--json") == 0
        assert json.loads(capsys.readouterr().out) == {"generation": 2, "reason": "manual"}
    assert [c[0] for c in calls] == ["restart", "snapshot", "restart"]


async def test_cli_asks_for_a_pid_when_several_sessions_live(
        capsys: pytest.CaptureFixture[str]) -> None:
    directory = paths.sessions_dir()
    _write_status(directory, os.getpid(), ["file:///ws/a"])
    _write_status(directory, os.getppid(), ["file:///ws/b"])
    async with anyio.create_task_group() as tg:
        for pid in (os.getpid(), os.getppid()):
            await tg.start(serve_control, socket_path(pid), _stub_handlers())
        assert await _cli("restart") == 2
        err = capsys.readouterr().err
        assert "2 live lspguard sessions; say which one: lspguard restart PID" in err
        assert f"{os.getpid()}  running  file:///ws/a" in err
        assert f"{os.getppid()}  running  file:///ws/b" in err
        assert await _cli("restart", str(os.getppid())) == 0
        tg.cancel_scope.cancel()


async def test_cli_without_sessions_or_with_a_wrong_pid(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert await _cli("snapshot") == 1
    assert "no live lspguard session" in capsys.readouterr().err
    assert await _cli("restart", "999999999") == 1
    assert "no live lspguard session with pid 999999999" in capsys.readouterr().err


def test_cli_paths_names_the_sessions_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["paths", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["sessions_dir"] == str(paths.sessions_dir())
    assert socket_path(123).parent == Path(found["sessions_dir"])
    assert cli.main(["paths"]) == 0
    assert f"sessions_dir: {paths.sessions_dir()}" in capsys.readouterr().out


def test_cli_status_shows_a_slow_filesystem_and_memory(
        capsys: pytest.CaptureFixture[str]) -> None:
    slow = {"mount_point": "/workspace", "fs_type": "fuse.grpcfuse", "source": "grpcfuse",
            "role": "the workspace", "latency_ms": 20.4,
            "sentence": "the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per "
                        "operation: gopls's first load will be slow.",
            "fix": "keep GOMODCACHE and GOCACHE on a volume", "since": 1.7e9}
    memory = {"rss_bytes": 2_900_000_000, "peak_rss_bytes": 3_000_000_000,
              "limit_bytes": 3 * 2**30, "limit_source": "cgroup v1 /docker/abc", "oom_kills": 1,
              "gomemlimit": "2457MiB", "near_limit": True}
    msgspec.convert(slow, Slow)  # what the test writes is on the contract
    msgspec.convert(memory, Memory)

    def show(state: str, **fields: object) -> str:
        doc = {"schema": 2, "pid": os.getpid(), "state": state, "uptime_s": 65.0, "restarts": 0,
               "backend": {"pid": 2, "generation": 1, "label": "primary"},
               "workspace_folders": ["file:///workspace"], "handshake": {}, "latency": {},
               **fields}
        directory = paths.sessions_dir()
        paths.ensure_private_dir(directory)
        paths.write_private_file(directory / f"{os.getpid()}.json", json.dumps(doc).encode())
        assert cli.main(["status"]) == 0
        return capsys.readouterr().out

    out = show("slow", slow=slow, memory=memory)
    assert "  SLOW: the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per operation: " \
           "gopls's first load will be slow.\n  fix: keep GOMODCACHE and GOCACHE on a volume\n" \
           "  (gopls is working: requests wait for it, and nothing is restarted)\n" in out
    assert "  memory: gopls 2.9 GB of a 3.0 GiB limit (90%) [cgroup v1 /docker/abc], peak " \
           "3.0 GB, 1 OOM kill, GOMEMLIMIT=2457MiB: NEAR THE LIMIT\n" in out
    # a slow filesystem left in a running session's document is old news; no limit is said
    out = show("running", slow=slow, memory={**memory, "limit_bytes": None, "limit_source": None,
                                             "oom_kills": 0, "gomemlimit": None,
                                             "near_limit": False})
    assert "SLOW" not in out
    assert "  memory: gopls 2.9 GB, no memory limit found, peak 3.0 GB\n" in out
    out = show("degraded", degraded="the kernel's OOM killer ended gopls again",
               memory={**memory, "rss_bytes": None, "oom_kills": 2, "near_limit": False})
    assert "  DEGRADED: the kernel's OOM killer ended gopls again\n  memory: limit 3.0 GiB " \
           "[cgroup v1 /docker/abc], peak 3.0 GB, 2 OOM kills, GOMEMLIMIT=2457MiB\n" in out
    assert "memory" not in show("running", memory=None)


def test_a_stale_status_file_whose_pid_was_reused_is_not_a_session(tmp_path: Path) -> None:
    """A proxy killed with SIGKILL leaves its file; a later process may get its pid."""
    import psutil

    directory = tmp_path / "sessions"
    paths.ensure_private_dir(directory)
    created = {pid: psutil.Process(pid).create_time() for pid in (os.getpid(), os.getppid())}
    for pid, started in ((os.getpid(), created[os.getpid()] + 0.5),  # written by this process
                         (os.getppid(), created[os.getppid()] - 10.0)):  # before it existed
        doc = {"schema": 1, "pid": pid, "state": "running", "started_at": started}
        paths.write_private_file(directory / f"{pid}.json", json.dumps(doc).encode())
    assert [s["pid"] for s in find_sessions(directory)] == [os.getpid()]

"""No exit path of the proxy leaves a gopls behind, and the exit code mirrors the LSP spec."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ..conftest import REPO
from ..faultproxy import write_config
from ..rawclient import RawClient, find_gopls, lspguard_command, private_env, reap

GOPLS = find_gopls()
pytestmark = [pytest.mark.gopls,
              pytest.mark.skipif(GOPLS is None, reason="gopls not installed (.ci/run installs it)")]

GONE_WITHIN = 15.0  # generous: stop escalation is bounded by ~3 x stop_timeout


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "go.mod").write_text("module example.com/ws\n\ngo 1.22\n")
    (ws / "main.go").write_text("package main\n\nfunc main() {}\n")
    return ws


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return private_env(tmp_path)


@pytest.fixture
def restart_enabled() -> bool:
    return True


@pytest.fixture
def session(workspace: Path, env: dict[str, str], tmp_path: Path,
            restart_enabled: bool) -> Iterator[tuple[RawClient, psutil.Process]]:
    """A proxy guarding real gopls, initialized; yields the client and the gopls process."""
    assert GOPLS is not None
    config = write_config(tmp_path / "lspguard.toml", {"restart": {"enabled": restart_enabled}})
    command = lspguard_command(GOPLS)
    command[4:4] = ["--config", str(config)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, cwd=workspace)
    client = RawClient(proc)
    try:
        client.initialize(workspace)
        yield client, gopls_child(proc.pid)
    finally:
        reap(proc)


def gopls_child(proxy_pid: int) -> psutil.Process:
    """The proxy's backend gopls (not a `gopls version` an incident bundle may be running)."""
    children = []
    for p in psutil.Process(proxy_pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # a helper that ended meanwhile
            if "gopls" in p.name() and p.status() != psutil.STATUS_ZOMBIE \
                    and "version" not in p.cmdline()[1:]:
                children.append(p)
    assert len(children) == 1, children
    return children[0]


def assert_gone(*procs: psutil.Process) -> None:
    _, alive = psutil.wait_procs(list(procs), timeout=GONE_WITHIN)
    assert not alive, f"still running: {alive}"


def test_normal_shutdown_and_exit_is_exit_code_0(session: tuple[RawClient, psutil.Process]) -> None:
    client, gopls = session
    client.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    assert client.wait_response(2, 10)["result"] is None
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.proc.wait(GONE_WITHIN) == 0
    assert_gone(gopls)


def test_exit_without_shutdown_is_exit_code_1(session: tuple[RawClient, psutil.Process]) -> None:
    client, gopls = session
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.proc.wait(GONE_WITHIN) == 1
    assert_gone(gopls)


@pytest.mark.parametrize("hung", [False, True], ids=["gopls-running", "gopls-stopped"])
def test_editor_closes_stdin(session: tuple[RawClient, psutil.Process], hung: bool) -> None:
    client, gopls = session
    if hung:
        gopls.suspend()
    assert client.proc.stdin is not None
    client.proc.stdin.close()
    assert client.proc.wait(GONE_WITHIN) == 1
    assert_gone(gopls)


@pytest.mark.parametrize("hung", [False, True], ids=["gopls-running", "gopls-stopped"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_proxy_gets_a_signal(session: tuple[RawClient, psutil.Process],
                             sig: signal.Signals, hung: bool) -> None:
    """Handled, not fatal (exit code 1, not -sig); a stopped gopls can't exit on EOF by itself."""
    client, gopls = session
    if hung:
        gopls.suspend()
    client.proc.send_signal(sig)
    assert client.proc.wait(GONE_WITHIN) == 1
    assert_gone(gopls)


def test_proxy_is_sigkilled_while_gopls_is_stopped(
        session: tuple[RawClient, psutil.Process]) -> None:
    """Only PR_SET_PDEATHSIG can end a stopped gopls whose proxy was SIGKILLed."""
    client, gopls = session
    gopls.suspend()
    client.proc.kill()
    client.proc.wait(GONE_WITHIN)
    assert_gone(gopls)


@pytest.mark.parametrize("restart_enabled", [False])
def test_gopls_crashes_without_restart(session: tuple[RawClient, psutil.Process]) -> None:
    client, gopls = session
    gopls.send_signal(signal.SIGKILL)
    assert client.proc.wait(GONE_WITHIN) == 1
    assert_gone(gopls)
    while (msg := client.read_message(5)) is not None:  # the editor then sees EOF
        assert "method" in msg


def test_editor_is_killed(workspace: Path, env: dict[str, str], tmp_path: Path) -> None:
    """The editor process owning the proxy's pipes dies: its pipes close, the proxy cleans up."""
    assert GOPLS is not None
    script = tmp_path / "editor.py"
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.rawclient import RawClient, lspguard_command
        proc = subprocess.Popen(lspguard_command({GOPLS!r}), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        RawClient(proc).initialize(Path({str(workspace)!r}))
        print(proc.pid, flush=True)
        sys.stdin.read()  # block until killed
    """))
    editor = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, cwd=workspace, text=True)
    try:
        assert editor.stdout is not None
        proxy = psutil.Process(int(editor.stdout.readline()))
        gopls = gopls_child(proxy.pid)
        editor.kill()
        editor.wait(10)
        assert_gone(proxy, gopls)
    finally:
        reap(editor)


def test_gopls_crash_with_restart_leaves_one_gopls(
        session: tuple[RawClient, psutil.Process]) -> None:
    """The crashed generation is reaped, exactly one new gopls runs, and it goes on exit."""
    client, gopls = session
    gopls.send_signal(signal.SIGKILL)
    assert_gone(gopls)
    # A request that races into the dying generation gets ContentModified (the editor asks
    # again); one sent during the restart is held and answered by the new generation.
    for req_id in range(100, 110):
        client.send({"jsonrpc": "2.0", "id": req_id, "method": "workspace/symbol",
                     "params": {"query": "main"}})
        answer = client.wait_response(req_id, 30)
        if "result" in answer:
            break
        assert answer["error"]["code"] == -32801
    else:
        raise AssertionError("no answer from the restarted gopls")
    client.send({"jsonrpc": "2.0", "id": 7, "method": "shutdown"})
    assert client.wait_response(7, 30)["result"] is None
    new = gopls_child(client.proc.pid)
    assert new.pid != gopls.pid
    client.send({"jsonrpc": "2.0", "method": "exit"})
    assert client.proc.wait(GONE_WITHIN) == 0
    assert_gone(new)


def test_server_that_cannot_start_is_a_clear_error(tmp_path: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(lspguard_command(str(tmp_path / "no-such-gopls")), input=b"",
                          capture_output=True, env=env, timeout=30)
    assert proc.returncode == 1
    assert proc.stdout == b""  # nothing but LSP frames ever goes to stdout
    assert b"lspguard: cannot start" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_server_that_dies_at_once_is_no_crash(tmp_path: Path, env: dict[str, str]) -> None:
    """It exits before lspguard has wired its pipes (a race uvloop reports as RuntimeError):
    restarts are tried, the editor's initialize is answered with an error, nothing crashes."""
    proc = subprocess.Popen(lspguard_command("sh", "-c", "exit 3"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    client = RawClient(proc)
    try:
        client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"processId": None, "rootUri": None, "capabilities": {}}})
        before: list[dict[str, object]] = []
        while (message := client.read_message(30)) is not None and message.get("id") != 1:
            before.append(message)
        assert before == []  # nothing may precede the initialize answer (no showMessage)
        answer = message
        assert answer is not None and answer["error"]["code"] == -32803, answer  # RequestFailed
        assert "exit code 3" in answer["error"]["message"]
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(GONE_WITHIN) == 1
        assert proc.stderr is not None
        assert b"Traceback" not in proc.stderr.read()
    finally:
        reap(proc)

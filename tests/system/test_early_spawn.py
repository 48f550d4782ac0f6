"""The first server is spawned before the heavy imports (proxy/early.py), and adopted, or killed.

What must hold: generation 1 is the process spawned early (not a second one) when the argv and
environment are the ones the session asks for; any other is killed; and a proxy that dies
before it got that far leaves no server behind (PR_SET_PDEATHSIG, as for a normal spawn).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from lspguard.config.model import config_from_dict
from lspguard.proxy import early

from ..conftest import LspguardDirs
from ..polling import wait_until
from ..rawclient import RawClient, reap

TIMEOUT = 20.0
# A server that ignores stdin's end: only a signal ends it (so the tests see PDEATHSIG at work).
PAUSE = [sys.executable, "-c", "import signal; signal.pause()"]


@pytest.mark.parametrize(("argv", "expected"), [
    ([], []),
    (["gopls"], ["gopls", "-debug=127.0.0.1:0"]),
    (["/usr/bin/gopls", "serve"], ["/usr/bin/gopls", "-debug=127.0.0.1:0", "serve"]),
    (["gopls", "-debug=:6060"], ["gopls", "-debug=:6060"]),  # the user's own address stays
    (["gopls", "--debug", "x"], ["gopls", "--debug", "x"]),
    (["pyright", "--stdio"], ["pyright", "--stdio"]),  # not gopls
    (["gopls", "-debugx"], ["gopls", "-debug=127.0.0.1:0", "-debugx"]),
], ids=repr)
def test_gopls_gets_a_loopback_debug_server_unless_it_has_one(argv: list[str],
                                                              expected: list[str]) -> None:
    assert early.with_gopls_debug(argv) == expected


def test_first_argv_follows_snapshot_config() -> None:
    on = config_from_dict({})
    off = config_from_dict({"snapshot": {"gopls_debug": False}})
    assert early.first_argv(["gopls", "serve"], on) == ["gopls", early.DEBUG_FLAG, "serve"]
    assert early.first_argv(["gopls", "serve"], off) == ["gopls", "serve"]


def _run_snippet(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`code` in a Python whose stdin and stdout are pipes (what spawn_first requires)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], input="",
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path,
                          check=False)


def _assert_gone(pid: int) -> None:
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    _, alive = psutil.wait_procs([proc], timeout=TIMEOUT)
    assert not alive or alive[0].status() == psutil.STATUS_ZOMBIE, f"{pid} still runs"


@pytest.mark.timeout(60)
def test_claim_takes_the_same_process_once_and_kills_another(tmp_path: Path) -> None:
    out = _run_snippet(f"""
        import json, os
        from lspguard.config.model import config_from_dict
        from lspguard.proxy import early
        argv = {PAUSE!r}
        config = config_from_dict({{"backend": {{"env": {{"X": "1"}}}}}})
        first = early.spawn_first(argv, config)
        same = early.claim(argv, {{"X": "1"}}, None)
        again = early.claim(argv, {{"X": "1"}}, None)
        pid = same.popen.pid
        env = open(f"/proc/{{pid}}/environ", "rb").read().split(b"\\0")
        same.kill()
        other = early.spawn_first(argv, config)
        refused = early.claim(argv, {{}}, None)  # another env: killed, not returned
        third = early.spawn_first(argv, config)
        early.discard()  # nobody claimed it: killed
        print(json.dumps({{"same": same is first, "again": again, "x": b"X=1" in env,
                          "pgid": os.getpgid(pid) if other.popen.poll() is None else pid,
                          "pids": [pid, other.popen.pid, third.popen.pid],
                          "rc": [other.popen.returncode, third.popen.returncode],
                          "refused": refused}}))
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["same"] and got["again"] is None and got["x"] and got["refused"] is None
    assert got["rc"] == [-signal.SIGKILL, -signal.SIGKILL]
    for pid in got["pids"]:
        _assert_gone(pid)


@pytest.mark.timeout(60)
def test_a_proxy_killed_before_adopting_leaves_no_server(tmp_path: Path) -> None:
    """SIGKILL of the proxy while it imports (the early server is not yet adopted)."""
    out = _run_snippet(f"""
        import os, signal, sys
        from lspguard.config.model import config_from_dict
        from lspguard.proxy import early
        spawned = early.spawn_first({PAUSE!r}, config_from_dict({{}}))
        sys.stderr.write(f"{{spawned.popen.pid}}\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """, tmp_path)
    assert out.returncode == -signal.SIGKILL
    _assert_gone(int(out.stderr.split()[0]))


def test_no_early_spawn_without_pipes_or_with_a_trace(tmp_path: Path) -> None:
    """A terminal or a file on stdin/stdout, or a trace to open first: spawned as before."""
    code = f"""
        from lspguard.config.model import config_from_dict
        from lspguard.proxy import early
        print(early.spawn_first({PAUSE!r}, config_from_dict({{"trace": {{"enabled": True}}}})))
    """
    out = _run_snippet(code, tmp_path)
    assert (out.returncode, out.stdout) == (0, "None\n"), out.stderr
    with open(tmp_path / "in.txt", "w+b") as stdin:
        plain = subprocess.run([sys.executable, "-c", textwrap.dedent(code).replace(
            '{"trace": {"enabled": True}}', "{}")], stdin=stdin, capture_output=True,
            text=True, timeout=TIMEOUT, check=False)
    assert (plain.returncode, plain.stdout) == (0, "None\n"), plain.stderr


_ECHO_SERVER = """\
import json, os, sys
out = sys.stdout.buffer
def send(msg):
    body = json.dumps(msg).encode()
    out.write(b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
    out.flush()
inp = sys.stdin.buffer
while True:
    line = inp.readline()
    if not line:
        break
    n = int(line.split(b":")[1])
    inp.readline()
    msg = json.loads(inp.read(n))
    if msg.get("method") == "initialize":
        send({"jsonrpc": "2.0", "id": msg["id"], "result": {"capabilities": {},
              "serverInfo": {"name": "echo", "version": str(os.getpid())}}})
    elif msg.get("method") == "shutdown":
        send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
    elif msg.get("method") == "exit":
        break
"""


@pytest.mark.timeout(60)
def test_lspguard_run_adopts_the_early_server(tmp_path: Path,
                                              lspguard_dirs: LspguardDirs) -> None:
    """Generation 1 is the process spawned before the imports: it answers initialize, it is
    the backend in the status file, and it is the proxy's only server child."""
    server = tmp_path / "server.py"
    server.write_text(_ECHO_SERVER)
    proc = subprocess.Popen([sys.executable, "-m", "lspguard", "run", "--log-stderr", "--",
                             sys.executable, str(server)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    client = RawClient(proc)
    try:
        client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"processId": os.getpid(), "rootUri": None, "capabilities": {}}})
        answer = client.wait_response(1, TIMEOUT)
        server_pid = int(answer["result"]["serverInfo"]["version"])
        # The pre-relay may have forwarded that answer before the session even began.
        status_file = lspguard_dirs.runtime / "sessions" / f"{proc.pid}.json"
        assert wait_until(status_file.exists, TIMEOUT), "no status file"
        status = json.loads(status_file.read_text())
        # Its server children (the slow watch's latency probe is a helper that comes and goes)
        children = []
        for child in psutil.Process(proc.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if str(server) in child.cmdline():
                    children.append(child.pid)
        assert status["backend"]["pid"] == server_pid
        assert children == [server_pid]
        log = client.end(TIMEOUT)
    finally:
        reap(proc)
    assert f"started (spawned early, by lspguard): pid {server_pid}" in log, log
    # The initialize was in the pipe before lspguard ran: the pre-relay forwarded it (and the
    # answer too, unless the session took over first).
    assert re.search(r"took over from the pre-relay: [12] message\(s\) already relayed", log), log
    _assert_gone(server_pid)


@pytest.mark.timeout(60)
def test_a_signal_while_starting_is_noted_for_the_session(tmp_path: Path) -> None:
    """Once the pre-relay runs, the editor may have its initialize answer before the session
    watches signals: SIGTERM then must not kill the half-started proxy; the session ends on
    it (session.py `_watch_signals`), as it does on any signal."""
    out = _run_snippet(f"""
        import os, signal
        from lspguard.config.model import config_from_dict
        from lspguard.proxy import early
        spawned = early.spawn_first({PAUSE!r}, config_from_dict({{}}))
        before = early.signal_while_starting()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGHUP)  # the first one is what the session reports
        print(spawned.prerelay is not None, before, early.signal_while_starting())
        early.discard()
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"True None {int(signal.SIGTERM)}\n"

"""The proxy never passes for gopls: its comm is `lspguard`, its command line says what it guards.

Issue 12: the shim is an executable named `gopls`, so the proxy's process was named `gopls` too,
and `pkill -STOP gopls` stopped the guard along with the server. Through the real shim and real
gopls: SIGSTOP of every process named `gopls` in the proxy's tree (what `pkill -STOP gopls`
does) is a hang the guard sees and recovers from.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lspguard.demo.sample import utf16_position

from ..conftest import LspguardDirs
from ..recording_client import CONTENT_MODIFIED, RecordingClient, ask_until_answered, hover_text
from ..shimmed import session_status, shim_client

# ------------------------------------------------------------------ proctitle, in a subprocess

_SET = """\
import sys, threading
import setproctitle
from lspguard.proxy import proctitle
def cmdline():
    return open("/proc/self/cmdline", "rb").read().rstrip(b"\\0").decode()
proctitle.guarding("gopls", 1234, 2)
print(open("/proc/self/comm").read().strip(), "|", cmdline(), "|", proctitle.title())
def later():  # a restart decided on another thread: the process keeps its name
    setproctitle.setthreadtitle("worker")
    proctitle.guarding("gopls", 5678, 3)
    print(open(f"/proc/self/task/{threading.get_native_id()}/comm").read().strip())
t = threading.Thread(target=later, name="worker")
t.start(); t.join()
print(open("/proc/self/comm").read().strip(), "|", cmdline())
"""


@pytest.mark.timeout(30)
def test_title_and_comm(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _SET], capture_output=True, text=True,
                         cwd=tmp_path, timeout=20, check=True)
    first, thread, last = out.stdout.splitlines()
    title = "lspguard: guarding gopls pid 1234 (generation 2)"
    assert first == f"lspguard | {title} | {title}"
    # setproctitle renames the calling thread too; the worker gets its own name back
    assert thread == "worker"
    assert last == "lspguard | lspguard: guarding gopls pid 5678 (generation 3)"


@pytest.mark.timeout(30)
def test_lspguard_run_renames_too(tmp_path: Path, lspguard_dirs: LspguardDirs) -> None:
    """`lspguard run -- CMD` (not just the shim) takes its name (comm: what pkill matches)
    before the server starts, and its command line right after (setproctitle loads logging:
    done after the spawn, not on the editor's wait)."""
    probe = tmp_path / "server.py"
    probe.write_text("import os, socket, sys, time\n"
                     "pid = os.getppid()\n"
                     "comm = open(f'/proc/{pid}/comm').read().strip()\n"
                     "deadline = time.monotonic() + 10\n"
                     "while True:\n"
                     "    cmd = open(f'/proc/{pid}/cmdline', 'rb').read().rstrip(b'\\0').decode()\n"
                     "    if cmd.startswith('lspguard: ') or time.monotonic() > deadline:\n"
                     "        break\n"
                     "    time.sleep(0.01)\n"
                     "s = socket.socket(socket.AF_UNIX)\n"
                     "s.connect(sys.argv[1])\n"
                     "s.sendall((comm + '|' + cmd).encode())\n"
                     "s.close()\n"
                     "sys.stdin.read()\n")
    with socket.socket(socket.AF_UNIX) as listener:
        address = str(tmp_path / "probe.sock")
        listener.bind(address)
        listener.listen(1)
        listener.settimeout(20)
        with subprocess.Popen(
                [sys.executable, "-m", "lspguard", "run", "--", sys.executable, str(probe),
                 address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE) as proc:
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(20)
                    seen = b""
                    while chunk := conn.recv(4096):
                        seen += chunk
            finally:
                assert proc.stdin is not None
                proc.stdin.close()  # the editor leaves: the session ends
                proc.wait(timeout=20)
                assert proc.stderr is not None
                err = proc.stderr.read().decode()
    assert seen, err
    comm, cmdline = seen.decode().split("|", 1)
    assert comm == "lspguard"
    assert cmdline.startswith("lspguard: "), cmdline
    assert "server.py" in cmdline


# ------------------------------------------------------------------ real gopls, through the shim

DEADLINE = 3.0
CONFIG: dict[str, Any] = {
    "proxy": {"stop_timeout": 1.0},
    "watchdog": {"tick": 0.5, "ping_timeout": 1.0, "deadlines": {"textDocument/hover": DEADLINE}},
    "restart": {"backoff_initial": 0.1},
    "snapshot": {"strace_seconds": 0.5, "budget": 2.0},
}


class Shimmed:
    def __init__(self, client: RecordingClient, workspace: Path, runtime: Path,
                 stopped: list[psutil.Process]) -> None:
        self.client = client
        self.workspace = workspace
        self.runtime = runtime
        self.main_uri = (workspace / "main.go").as_uri()
        self.stopped = stopped

    @property
    def proxy(self) -> psutil.Process:
        assert self.client._server is not None
        return psutil.Process(self.client._server.pid)

    def status(self) -> dict[str, Any]:
        return session_status(self.runtime)

    def hover(self) -> asyncio.Future[Any]:
        """Hover on the greet.Hello call (sent now; the future is its answer)."""
        text = (self.workspace / "main.go").read_text()
        at = utf16_position(text, text.index("greet.Hello(") + len("greet."))
        return self.client.text_document_hover_async(types.HoverParams(  # type: ignore[return-value]
            text_document=types.TextDocumentIdentifier(uri=self.main_uri), position=at))

    def named_gopls(self) -> list[psutil.Process]:
        """What `pgrep gopls` would find in the proxy's process tree."""
        tree = [self.proxy, *self.proxy.children(recursive=True)]
        found = []
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                if p.name() == "gopls":
                    found.append(p)
        return found


@pytest.fixture
async def shimmed(tmp_path: Path, hello_workspace: Path, real_gopls: Path,
                  lspguard_dirs: LspguardDirs) -> AsyncIterator[Shimmed]:
    stopped: list[psutil.Process] = []
    try:
        async with shim_client(tmp_path, real_gopls, CONFIG, hello_workspace) as client:
            try:
                yield Shimmed(client, hello_workspace, lspguard_dirs.runtime, stopped)
            finally:
                for p in stopped:  # nothing we stopped outlives the test
                    with contextlib.suppress(psutil.NoSuchProcess):
                        p.kill()
    finally:
        _, alive = psutil.wait_procs(stopped, timeout=10)
        assert not alive


def _assert_named_for(proxy: psutil.Process, gopls_pid: int, generation: int) -> None:
    assert proxy.name() == "lspguard"
    assert Path(f"/proc/{proxy.pid}/comm").read_text() == "lspguard\n"
    # setproctitle pads the whole argv + environ area with NULs (`ps` shows just the title)
    cmdline = Path(f"/proc/{proxy.pid}/cmdline").read_bytes().rstrip(b"\0").decode()
    assert cmdline.startswith(f"lspguard: guarding gopls pid {gopls_pid} "), cmdline
    assert cmdline == f"lspguard: guarding gopls pid {gopls_pid} (generation {generation})"


@pytest.mark.gopls
@pytest.mark.timeout(120)
async def test_pkill_stop_gopls_stops_only_gopls(shimmed: Shimmed) -> None:
    await shimmed.client.open_main(shimmed.workspace,
                                   (shimmed.workspace / "main.go").read_text(), wait_for_load=True)
    assert "func greet.Hello" in hover_text(await asyncio.wait_for(shimmed.hover(), 30))

    first = shimmed.status()["backend"]
    assert first["generation"] == 1
    _assert_named_for(shimmed.proxy, first["pid"], 1)

    # `pkill -STOP gopls`, confined to this proxy's tree: the proxy is not among them.
    targets = shimmed.named_gopls()  # gopls and its `gopls ** telemetry **` child
    assert first["pid"] in [p.pid for p in targets], [p.cmdline() for p in targets]
    assert shimmed.proxy.pid not in {p.pid for p in targets}
    for p in targets:
        p.suspend()
        shimmed.stopped.append(p)
    pending = shimmed.hover()  # pending while gopls is stopped

    with pytest.raises(JsonRpcException) as answer:
        await asyncio.wait_for(pending, DEADLINE + 20)
    assert answer.value.code == CONTENT_MODIFIED, answer.value  # answered, not left hanging

    # the editor asks again, as VS Code does
    assert "func greet.Hello" in hover_text(await ask_until_answered(shimmed.hover, DEADLINE + 30))
    status = shimmed.status()
    assert status["last_verdict"]["kind"] == "stopped", status["last_verdict"]
    second = status["backend"]
    assert second["generation"] == 2 and second["pid"] != first["pid"]
    assert psutil.Process(second["pid"]).name() == "gopls"
    _assert_named_for(shimmed.proxy, second["pid"], 2)

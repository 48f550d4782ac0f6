"""Real gopls, real pygls client, through the installed shim: faults mid-session and recovery.

After each fault the edited document must still be what the editor has (hover and definition
on a constant inserted by incremental edits before the fault), diagnostics must be fresh, no
request may go unanswered or be answered twice, no registration id may be held twice, and every
progress the editor saw begin must end.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from lsprotocol import types

from ..conftest import LspguardDirs
from ..faultproxy import latest_bundle
from ..polling import wait_until_async
from ..recording_client import RecordingClient, ask_until_answered, hover_text
from ..shimmed import session_status, shim_client

pytestmark = [pytest.mark.gopls, pytest.mark.timeout(120)]

DEADLINE = 4.0
CONFIG: dict[str, Any] = {
    "proxy": {"stop_timeout": 1.0},
    "watchdog": {"tick": 0.5, "ping_timeout": 1.0, "stuck_grace_factor": 1.0,
                 "busy_grace_factor": 2.0, "deadlines": {
                     "textDocument/hover": DEADLINE, "textDocument/definition": DEADLINE}},
    "restart": {"backoff_initial": 0.1},
    "snapshot": {"strace_seconds": 0.5, "budget": 2.0},
}

# Two incremental edits: the replay must carry the second (42), not the first (41).
INSERT = "\nconst Answer = 40 + 1\n\nfunc use() int { return Answer }\n"
USE = types.Position(line=15, character=24)  # `Answer` in `return Answer`


class Guarded:
    def __init__(self, client: RecordingClient, workspace: Path, runtime: Path) -> None:
        self.client = client
        self.workspace = workspace
        self.runtime = runtime
        self.main_uri = (workspace / "main.go").as_uri()

    def status(self) -> dict[str, Any]:
        return session_status(self.runtime)

    def gopls(self) -> psutil.Process:
        return psutil.Process(self.status()["backend"]["pid"])

    async def hover(self) -> str:
        return hover_text(await self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=self.main_uri), position=USE)))

    async def hover_until_answered(self, within: float) -> str:
        """Hover like an editor: a ContentModified answer (restart) means ask again."""
        return await ask_until_answered(self.hover, within)


@pytest.fixture
async def guarded(tmp_path: Path, hello_workspace: Path, real_gopls: Path,
                  lspguard_dirs: LspguardDirs) -> AsyncIterator[Guarded]:
    async with shim_client(tmp_path, real_gopls, CONFIG, hello_workspace) as client:
        yield Guarded(client, hello_workspace, lspguard_dirs.runtime)


async def start_session(g: Guarded) -> None:
    c = g.client
    text = (g.workspace / "main.go").read_text()
    await c.open_main(g.workspace, text, wait_for_load=True)
    end = types.Position(line=text.count("\n"), character=0)
    c.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=g.main_uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=end, end=end), text=INSERT)]))
    one = types.Position(line=13, character=20)
    c.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=g.main_uri, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=one, end=types.Position(line=13, character=21)),
            text="2")]))
    assert "= 40 + 2 // 42" in await g.hover_until_answered(30)


async def check_recovered(g: Guarded, fault_at: float, verdict: str) -> dict[str, Any]:
    c, rec = g.client, g.client.record
    hover = await g.hover_until_answered(DEADLINE + 30)
    assert "const Answer untyped int = 40 + 2 // 42" in hover  # replay carried the edits
    status = g.status()
    assert status["last_verdict"]["kind"] == verdict, status["last_verdict"]
    assert status["backend"]["generation"] == 2
    assert status["last_verdict"]["at"] - fault_at <= DEADLINE + 1.0
    definition = await c.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=g.main_uri), position=USE))
    assert definition
    loc = definition[0] if isinstance(definition, list) else definition
    assert isinstance(loc, types.Location)
    assert (loc.uri, loc.range.start.line) == (g.main_uri, 13)
    # The user was told, and the new generation published diagnostics for the open file.
    await c.wait_until(lambda: any(
        m.method == "window/showMessage" and "restarted" in m.params.message
        and "Incident report:" in m.params.message for m in rec.messages), 30)
    fault_mono = time.monotonic() - (time.time() - fault_at)
    await c.wait_until(lambda: any(m.params.uri == g.main_uri for m in rec.after(
        fault_mono, "textDocument/publishDiagnostics")), 30)
    # The restart showed as work-done progress; every progress the editor saw begin has
    # ended (the dead generation's included).
    assert '"lspguard-restart-2"' in rec.progress_begun
    await c.wait_until(lambda: rec.progress_begun <= rec.progress_ended, 30)
    assert not rec.duplicate_registrations
    assert "workspace/didChangeWatchedFiles" in rec.active_registrations.values()
    # Every request answered exactly once.
    ids = [m.id for m in rec.messages if m.kind == "response"]
    assert len(ids) == len(set(ids)) == c.requests_sent
    return status


def godebug_of(pid: int) -> str:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    values = [e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"GODEBUG=")]
    return values[0] if values else ""


async def test_sigstop_of_gopls(guarded: Guarded, lspguard_dirs: LspguardDirs) -> None:
    await start_session(guarded)
    first = guarded.gopls()
    first.suspend()
    fault_at = time.time()
    # the kernel has stopped it before the editor asks
    assert await wait_until_async(lambda: first.status() == psutil.STATUS_STOPPED, 5,
                                  interval=0.01), first.status()
    await check_recovered(guarded, fault_at, "stopped")
    bundle = latest_bundle(lspguard_dirs.state, "stopped")  # written before the kill
    assert bundle["process"]["root_pid"] == first.pid
    gopls_threads = bundle["process"]["processes"][0]["threads"]  # its `go` children run on
    assert gopls_threads and {t["state"] for t in gopls_threads} == {"T"}
    _, alive = psutil.wait_procs([first], timeout=15)  # reaped once its bundle is written
    assert not alive
    # a stop is no hang of gopls's own making: the same gopls, without the hang overlay
    # (ESCALATION in causes/policy.py)
    assert "asyncpreemptoff=1" not in godebug_of(guarded.gopls().pid)


async def test_sigkill_of_gopls(guarded: Guarded) -> None:
    await start_session(guarded)
    first = guarded.gopls()
    fault_at = time.time()
    first.send_signal(signal.SIGKILL)
    status = await check_recovered(guarded, fault_at, "crashed")
    assert "SIGKILL" in status["last_verdict"]["summary"]


def hanging_go(bin_dir: Path, marker: Path) -> Path:
    """A `go` on PATH whose first `go list` never returns, as with an unreachable module path."""
    import shutil

    real_go = shutil.which("go")
    assert real_go is not None
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "go"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "list" ] && [ ! -e {marker} ]; then
    echo $$ > {marker}
    exec sleep 3600
fi
exec {real_go} "$@"
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir


async def test_package_loading_hang(tmp_path: Path, hello_workspace: Path, real_gopls: Path,
                                    lspguard_dirs: LspguardDirs) -> None:
    marker = tmp_path / "go-list-hung"
    bin_dir = hanging_go(tmp_path / "gobin", marker)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    async with shim_client(tmp_path, real_gopls, CONFIG, hello_workspace,
                           {"PATH": path}) as client:
        g = Guarded(client, hello_workspace, lspguard_dirs.runtime)
        await client.open_main(hello_workspace, (hello_workspace / "main.go").read_text(),
                               wait_for_load=False)
        fault_at = time.time()  # gopls's first `go list` is hanging: it waits on its load
        answer = await g_hover_hello(g, DEADLINE + 30)
        assert marker.exists(), "the hanging `go list` was never run"
        assert "Hello returns a friendly greeting" in answer
        status = g.status()
        # gopls idles, waiting on its child: the child (the wrapper exec'd `sleep`) is named
        assert status["last_verdict"]["kind"] == "child_never_returns", status["last_verdict"]
        cause = status["last_verdict"]["facts"]["cause"]
        assert cause["object"]["argv"][0] == "sleep" and cause["process"]["role"] == \
            "gopls's `sleep`", cause
        assert status["last_verdict"]["at"] - fault_at <= DEADLINE + 1.0
        assert status["backend"]["generation"] == 2
        assert "asyncpreemptoff=1" not in godebug_of(g.gopls().pid)  # an outside cause: plain
        await client.wait_until(lambda: any(
            m.method == "window/showMessage" and "Incident report:" in m.params.message
            for m in client.record.messages), 30)
        bundle = latest_bundle(lspguard_dirs.state, "child_never_returns")
        # gopls was alive: its goroutine dump names gopls, and the hung `go list` is in the tree
        assert "golang.org/x/tools/gopls" in (bundle["dir"] / "goroutines.txt").read_text()
        assert any(p["threads"] and p["threads"][0].get("comm") == "sleep"
                   for p in bundle["process"]["processes"])
        rec = client.record
        await client.wait_until(lambda: rec.progress_begun <= rec.progress_ended, 30)
        ids = [m.id for m in rec.messages if m.kind == "response"]
        assert len(ids) == len(set(ids)) == client.requests_sent
        await client.shutdown_and_exit(10)  # the recovered session also ends cleanly
        await client.stop()


def test_gopls_answers_the_liveness_ping_with_method_not_found(hello_workspace: Path,
                                                              real_gopls: Path) -> None:
    """What the watchdog relies on: a live gopls answers an unknown method with -32601."""
    import subprocess

    from ..rawclient import RawClient, reap

    proc = subprocess.Popen([str(real_gopls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=hello_workspace)
    try:
        client = RawClient(proc)
        client.initialize(hello_workspace)
        client.send({"jsonrpc": "2.0", "id": "ping", "method": "lspguard/ping"})
        answer = client.wait_response("ping", 20)
        assert answer["error"]["code"] == -32601
    finally:
        reap(proc)


async def g_hover_hello(g: Guarded, within: float) -> str:
    """Hover on greet.Hello in main.go, asking again after ContentModified."""
    return hover_text(await ask_until_answered(lambda: g.client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=g.main_uri),
                          position=types.Position(line=10, character=28))), within))


if sys.platform != "linux":  # pragma: no cover
    pytest.skip("needs /proc", allow_module_level=True)

"""No source text in an incident bundle unless the user opted in (`snapshot.include_text`).

The marker below is a Go identifier and a comment in the documents of a real gopls session
through `lspguard run`; hover, completion, signature help, symbols, semantic tokens, inlay hints,
formatting and code actions are asked about it while `lspguard snapshot` takes its evidence
(strace samples gopls reading those requests and writing those answers). Then every file of the
bundle is scanned as bytes. With include_text the same scan must find the marker: the check can
fail. The strace options are also checked on their own (the redactor: tests/unit/test_redact.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lspguard.incident.strace import collect_strace

from ..faultproxy import write_config
from ..polling import wait_until
from ..rawclient import RawClient, private_env, reap, wait_for_session

MARK = "zqx_MARKER_7731"
GONE_WITHIN = 15.0


def marker_files(root: Path, marker: str = MARK) -> dict[str, int]:
    """{relative path: occurrences} of `marker` in every file under `root`, read as bytes."""
    needle = marker.encode()
    hits = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            count = path.read_bytes().count(needle)
            if count:
                hits[str(path.relative_to(root))] = count
    return hits


# ---------------------------------------------------------------------------- strace

_WRITER = f"""
import os, socket, sys, time
src = sys.argv[1]
with open(src, "w") as f:
    f.write("package main // {MARK}\\n")
print("ready", flush=True)
a, b = socket.socketpair()
while True:
    fd = os.open(src, os.O_RDONLY); os.read(fd, 100); os.close(fd)
    os.stat(src)
    with open(src + ".out", "w") as f:
        f.write("{MARK}" * 4)
    a.sendall(b"{MARK}"); b.recv(100)
    os.write(2, b"{MARK}\\n")
    time.sleep(0.02)
"""


@pytest.fixture
def marker_writer(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A process that keeps reading, writing and sending the marker, and stat()ing its file."""
    src = tmp_path / "src.go"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(src)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc.pid, src
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("include_text", [False, True])
async def test_strace_keeps_paths_but_no_buffer_contents(marker_writer: tuple[int, Path],
                                                         include_text: bool) -> None:
    pid, src = marker_writer
    text = await collect_strace([pid], 0.6, include_text=include_text)
    assert "openat(AT_FDCWD</" in text and f'"{src}"' in text  # the path, in full
    assert "newfstatat(" in text or "stat(" in text
    assert re.search(rf"write\(\d+<{re.escape(str(src))}\.out>", text)  # -y: fd paths
    assert "sendto(" in text
    assert (MARK in text) is include_text, text[:3000]
    if not include_text:
        assert '""...' in text and "-s 0" in text.splitlines()[0]


# ---------------------------------------------------------------------------- real gopls

SOURCE = f"""package main

import "fmt"

// {MARK} greets; its name is the marker.
func {MARK}(name string) string {{ return "hi " + name }}

type  point struct {{ x, y int }}

func main() {{
	fmt.Println({MARK}("gopher"), point{{1, 2}})
	_ = zqx
}}
"""
HOVER = {"line": 5, "character": 8}  # on the function's name
CALL = {"line": 10, "character": 30}  # inside its call's argument list
INCOMPLETE = {"line": 11, "character": 8}  # after `_ = zqx`

CAPABILITIES = {
    "general": {"positionEncodings": ["utf-16"]},
    "window": {"workDoneProgress": True},
    "workspace": {"configuration": True, "workspaceFolders": True, "applyEdit": True},
    "textDocument": {
        "hover": {"contentFormat": ["markdown", "plaintext"]},
        "completion": {"completionItem": {"snippetSupport": True, "documentationFormat": [
            "markdown"], "resolveSupport": {"properties": ["documentation", "detail"]}}},
        "signatureHelp": {"signatureInformation": {"documentationFormat": ["markdown"]}},
        "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
        "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": [
            "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite",
            "source.organizeImports"]}}, "resolveSupport": {"properties": ["edit"]}},
        "semanticTokens": {"requests": {"full": True}, "tokenTypes": ["function", "variable"],
                           "tokenModifiers": [], "formats": ["relative"]},
        "inlayHint": {},
        "publishDiagnostics": {"relatedInformation": True},
    },
}
CONFIG: dict[str, Any] = {
    "watchdog": {"tick": 0.5, "ping_timeout": 1.0, "stuck_grace_factor": 1.0,
                 "deadlines": {"textDocument/hover": 2.0}},
    "restart": {"backoff_initial": 0.1},
    "snapshot": {"strace_seconds": 1.5, "budget": 4.0},
}


class GoplsSession:
    """`lspguard run` guarding the real gopls, driven by a raw client that keeps every answer."""

    def __init__(self, client: RawClient, workspace: Path, env: dict[str, str]) -> None:
        self.client = client
        self.workspace = workspace
        self.env = env
        self.uri = (workspace / "main.go").as_uri()
        self.answers: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.version = 1

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        self.client.send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                          "params": params})
        return self.next_id

    def collect(self, ids: list[int], within: float) -> list[dict[str, Any]]:
        """Read until every one of `ids` is answered (answering the server's requests)."""
        def keep(msg: dict[str, Any]) -> None:
            if "id" in msg and "method" not in msg:
                self.answers[msg["id"]] = msg

        if not all(i in self.answers for i in ids):
            self.client.read_until(lambda _: all(i in self.answers for i in ids), within, keep)
        return [self.answers[i] for i in ids]

    def edit(self) -> None:
        self.version += 1
        self.client.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"text": SOURCE + f"\n// {MARK} edit {self.version}\n"}]}})

    def ask_everything(self, within: float = 30.0) -> list[dict[str, Any]]:
        doc = {"textDocument": {"uri": self.uri}}
        whole = {"start": {"line": 0, "character": 0}, "end": {"line": 13, "character": 0}}
        ids = [
            self.request("textDocument/hover", {**doc, "position": HOVER}),
            self.request("textDocument/completion", {**doc, "position": INCOMPLETE}),
            self.request("textDocument/signatureHelp", {**doc, "position": CALL}),
            self.request("textDocument/documentSymbol", doc),
            self.request("textDocument/semanticTokens/full", doc),
            self.request("textDocument/inlayHint", {**doc, "range": whole}),
            self.request("textDocument/formatting", {**doc, "options": {
                "tabSize": 4, "insertSpaces": False}}),
            self.request("textDocument/codeAction", {**doc, "range": {
                "start": HOVER, "end": HOVER}, "context": {"diagnostics": []}}),
        ]
        return self.collect(ids, within)


@pytest.fixture
def gopls_session(tmp_path: Path, real_gopls: Path,
                  request: pytest.FixtureRequest) -> Iterator[GoplsSession]:
    include_text = bool(getattr(request, "param", False))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "go.mod").write_text("module example.com/marker\n\ngo 1.21\n")
    (ws / "main.go").write_text(SOURCE)
    config = write_config(tmp_path / "lspguard.toml", CONFIG,
                          {"snapshot": {"include_text": include_text}})
    env = private_env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "lspguard", "run", "--config", str(config),
                             "--", str(real_gopls)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, cwd=ws)
    seen: list[psutil.Process] = []
    try:
        session = GoplsSession(RawClient(proc), ws, env)
        session.client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": ws.as_uri(), "capabilities": CAPABILITIES,
            "workspaceFolders": [{"uri": ws.as_uri(), "name": ws.name}]}})
        session.collect([1], 30)
        session.client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        session.client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": session.uri, "languageId": "go", "version": 1,
                             "text": SOURCE}}})
        # gopls's initial load done before the tests ask (the hover deadline here is 2 s): the
        # initialize answer may come before the session is even up (the pre-relay), so the
        # load now overlaps lspguard's own start-up on a 2-core machine.
        session.client.read_until(lambda m: m.get("method") == "$/progress" and (
            m["params"].get("value") or {}).get("kind") == "end", 60)
        wait_for_session(proc, tmp_path / "run")
        with contextlib.suppress(psutil.Error):
            seen = psutil.Process(proc.pid).children(recursive=True)
        yield session
        with contextlib.suppress(OSError, TimeoutError, EOFError,
                                 subprocess.TimeoutExpired):
            session.client.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
            session.collect([2], 10)
            session.client.send({"jsonrpc": "2.0", "method": "exit"})
            proc.wait(GONE_WITHIN)
    finally:
        with contextlib.suppress(psutil.Error):
            seen += psutil.Process(proc.pid).children(recursive=True)
        reap(proc)
        for child in seen:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(seen, timeout=GONE_WITHIN)


def snapshot_while_busy(session: GoplsSession) -> Path:
    """`lspguard snapshot`, while the session keeps editing and asking (so the strace sample
    sees gopls read the marker from stdin and write it back in answers)."""
    snap = subprocess.Popen([sys.executable, "-m", "lspguard", "snapshot", "--json",
                             "--timeout", "30"], env=session.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 40
        while snap.poll() is None:
            assert time.monotonic() < deadline, "lspguard snapshot did not finish"
            session.edit()
            session.ask_everything()
        out, err = snap.communicate(timeout=10)
    finally:
        reap(snap)
    assert snap.returncode == 0, err
    return Path(json.loads(out)["bundle"])


@pytest.mark.gopls
@pytest.mark.timeout(120)
@pytest.mark.parametrize("gopls_session", [False, True], indirect=True,
                         ids=["redacted", "include_text"])
def test_no_source_text_in_bundle_of_real_gopls_session(gopls_session: GoplsSession,
                                                        request: pytest.FixtureRequest) -> None:
    include_text = request.node.callspec.params["gopls_session"]
    answers = gopls_session.ask_everything(within=60)
    # gopls really did answer with the marker: the bundle had it to leak.
    assert "result" in answers[0], answers  # (an error here says why it did not)
    assert MARK in json.dumps(answers[0]["result"])  # hover
    assert MARK in json.dumps(answers[1]["result"])  # completion
    assert MARK in json.dumps(answers[3]["result"])  # document symbols
    bundle = snapshot_while_busy(gopls_session)
    hits = marker_files(bundle)
    incident = json.loads((bundle / "incident.json").read_text())
    assert incident["collectors"]["strace"]["status"] == "ok", incident["collectors"]
    assert incident["collectors"]["messages"]["status"] == "ok"
    strace_txt = (bundle / "strace.txt").read_text()
    assert "write(" in strace_txt and "read(" in strace_txt  # gopls was seen at work
    if include_text:
        assert {"messages.jsonl", "strace.txt", "report.html"} <= set(hits), hits
    else:
        assert hits == {}
        messages = [json.loads(line) for line in
                    (bundle / "messages.jsonl").read_text().splitlines()]
        methods = {m["method"] for m in messages}
        assert {"textDocument/hover", "textDocument/completion"} <= methods
        assert any(m["message"] and "<redacted" in json.dumps(m["message"]) for m in messages)


@pytest.mark.gopls
@pytest.mark.timeout(120)
def test_no_source_text_in_verdict_bundle(gopls_session: GoplsSession, tmp_path: Path) -> None:
    """gopls stopped mid-session: the verdict's bundle is clean too, and its report names the
    hover whose lateness made the verdict."""
    gopls_session.ask_everything(within=60)
    status_files = list((tmp_path / "run" / "sessions").glob("*.json"))
    backend = json.loads(status_files[0].read_text())["backend"]["pid"]
    os.kill(backend, signal.SIGSTOP)
    rid = gopls_session.request("textDocument/hover", {
        "textDocument": {"uri": gopls_session.uri}, "position": HOVER})
    gopls_session.collect([rid], 60)  # answered once recovery is through
    incidents = tmp_path / "state" / "incidents"
    bundles = wait_until(lambda: sorted(p for p in incidents.glob("*")
                                        if not p.name.startswith(".")), 30)
    assert bundles, "no bundle for the verdict"
    bundle = bundles[0]  # renamed into place when whole
    assert marker_files(bundle) == {}
    incident = json.loads((bundle / "incident.json").read_text())
    facts = incident["verdict"]["facts"]
    assert incident["cause"] == facts.get("cause")
    if "request" in facts:  # the watchdog names the late request
        assert facts["request"]["method"] == "textDocument/hover"
        assert "triggered the verdict" in (bundle / "report.html").read_text()

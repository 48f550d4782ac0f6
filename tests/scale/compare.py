"""One scripted "editor opens a file" session, the same against bare gopls and through lspguard.

Why: lspguard's promise is "never worse than bare gopls", and only the same client, file and
caches on both sides can show whether it keeps it. The script is what VS Code does when a Go
file is opened in a fresh window: initialize (workspace folder, workDoneProgress), initialized,
didOpen, then at once documentSymbol, foldingRange, codeAction, semanticTokens/full, hover,
definition, completion and references, the last four on a real identifier declared in a
dependency. Every answer is timed from its request; a ContentModified error is asked again, as
the editor does after a restart (`retry_content_modified`).

    result = open_file_session(["gopls"], ws, env=..., label="bare")
    result = open_file_session(lspguard_command("gopls"), ws, env=..., label="lspguard",
                               runtime=dirs.runtime, state=dirs.state)

Every process the session started (its whole tree and session) is gone when this returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..polling import wait_until
from ..rawclient import RawClient
from .workspace import OpenTarget, Workspace

CONTENT_MODIFIED = -32801
AGAIN_WITHIN = 60.0  # asked again on a loaded workspace: seconds at most
IDLE_S = 3.0  # no CPU used by the tree for this long: gopls is done with the workspace
SHUTDOWN_WAIT = 3.0  # gopls busy with workspace diagnostics may not answer shutdown for 20 s
METHODS = ("textDocument/documentSymbol", "textDocument/foldingRange",
           "textDocument/codeAction", "textDocument/semanticTokens/full",
           "textDocument/hover", "textDocument/definition", "textDocument/completion",
           "textDocument/references")
SETTINGS: dict[str, Any] = {"semanticTokens": True}  # VS Code Go's default (ui.semanticTokens)
TOKEN_TYPES = ["namespace", "type", "class", "enum", "interface", "struct", "typeParameter",
               "parameter", "variable", "property", "enumMember", "event", "function", "method",
               "macro", "keyword", "modifier", "comment", "string", "number", "regexp",
               "operator", "decorator", "label"]
TOKEN_MODIFIERS = ["declaration", "definition", "readonly", "static", "deprecated", "abstract",
                   "async", "modification", "documentation", "defaultLibrary"]
CAPABILITIES: dict[str, Any] = {
    "window": {"workDoneProgress": True, "showMessage": {}},
    "workspace": {"configuration": True, "workspaceFolders": True,
                  "didChangeConfiguration": {"dynamicRegistration": True},
                  "didChangeWatchedFiles": {"dynamicRegistration": True},
                  "semanticTokens": {"refreshSupport": True}},
    "textDocument": {
        "synchronization": {"dynamicRegistration": True, "didSave": True},
        "hover": {"contentFormat": ["markdown", "plaintext"]},
        "completion": {"completionItem": {"snippetSupport": True}, "contextSupport": True},
        "definition": {"linkSupport": True},
        "references": {},
        "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
        "foldingRange": {"lineFoldingOnly": True},
        "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": [
            "", "quickfix", "refactor", "refactor.extract", "refactor.inline",
            "refactor.rewrite", "source", "source.organizeImports"]}}},
        "semanticTokens": {"requests": {"full": True, "range": True},
                           "tokenTypes": TOKEN_TYPES, "tokenModifiers": TOKEN_MODIFIERS,
                           "formats": ["relative"], "multilineTokenSupport": False,
                           "overlappingTokenSupport": False},
        "publishDiagnostics": {"relatedInformation": True},
    },
}


@dataclass
class Answer:
    """How one request of the script ended."""

    method: str
    seconds: float | None = None  # from the (last) request to its answer; None: never answered
    result: bool = False  # answered with a result (null and [] count: that is gopls's answer)
    error: dict[str, Any] | None = None  # {"code", "message"} of the final error answer
    attempts: int = 1  # > 1 when ContentModified was asked again
    size: int = 0  # items in a list result (symbols, ranges, locations, completion items)

    def describe(self) -> str:
        when = "never" if self.seconds is None else f"{self.seconds:.1f}s"
        if self.result:
            return f"result ({self.size}) at {when}"
        if self.error is not None:
            message = str(self.error.get("message", ""))[:80]
            return f"error {self.error.get('code')} {message!r} at {when}"
        return f"no answer ({when})"


@dataclass
class SessionResult:
    """What one session saw, for comparing bare gopls with lspguard."""

    label: str
    answers: dict[str, Answer]
    initialize_s: float | None = None
    first_load_s: float | None = None  # gopls's first work-done progress ended
    idle_s: float | None = None  # the tree went idle (its load done), when `settle` was asked
    after: dict[str, Answer] = field(default_factory=dict)  # the same asked again, after settle
    elapsed_s: float = 0.0
    exit_code: int | None = None  # the process we spoke to ended on its own (<0: signal)
    peak_rss_bytes: int = 0  # the largest single process of the tree (sampled)
    status: dict[str, Any] | None = None  # lspguard's status document before shutdown
    incidents: list[str] = field(default_factory=list)  # verdict kinds of its bundles
    progress: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, title)
    stderr_tail: str = ""

    @property
    def results(self) -> int:
        return sum(a.result for a in self.answers.values())

    @property
    def results_after(self) -> int:
        return sum(a.result for a in self.after.values())

    @property
    def restarts(self) -> int:
        return int((self.status or {}).get("restarts") or 0)

    @property
    def last_verdict(self) -> str | None:
        verdict = (self.status or {}).get("last_verdict")
        return str(verdict["kind"]) if isinstance(verdict, dict) else None

    def verdict_kinds(self) -> list[str]:
        """Every verdict seen: the incident bundles' kinds, and the last one in the status."""
        kinds = list(self.incidents)
        last = self.last_verdict
        if last is not None and last not in kinds:
            kinds.append(last)
        return kinds

    def missing(self, other: SessionResult) -> list[str]:
        """Methods `other` answered with a result and this session did not."""
        return [m for m, a in other.answers.items() if a.result and not self.answers[m].result]

    def summary(self) -> str:
        lines = [f"{self.label}: {self.results}/{len(self.answers)} results, "
                 f"initialize {_s(self.initialize_s)}, first load {_s(self.first_load_s)}, "
                 f"elapsed {self.elapsed_s:.1f}s, peak RSS {self.peak_rss_bytes / 2**20:.0f} MiB"
                 + (f", exit {self.exit_code}" if self.exit_code is not None else "")]
        if self.status is not None:
            st = self.status
            lines.append(f"  state={st.get('state')} restarts={st.get('restarts')} "
                         f"verdicts={self.verdict_kinds()} slow={bool(st.get('slow'))} "
                         f"memory={_memory(st.get('memory'))}")
            verdict = st.get("last_verdict")
            if isinstance(verdict, dict):
                lines.append(f"  last verdict: {verdict.get('kind')}: {verdict.get('summary')}")
        lines += [f"  {m.split('/')[-1]:<16} {a.describe()}" for m, a in self.answers.items()]
        if self.after:
            lines.append(f"  asked again once idle ({_s(self.idle_s)}): "
                         f"{self.results_after}/{len(self.after)} results")
            lines += [f"    {m.split('/')[-1]:<14} {a.describe()}" for m, a in self.after.items()]
        return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _memory(memory: Any) -> str:
    if not isinstance(memory, dict):
        return "-"
    return ", ".join(f"{k}={v}" for k, v in memory.items() if v not in (None, False, 0))


def requests(target: OpenTarget) -> list[tuple[str, dict[str, Any]]]:
    """The editor's questions on open, in the order VS Code sends them."""
    doc = {"uri": target.path.as_uri()}
    at = {"textDocument": doc, "position": target.symbol.lsp()}
    line = {"start": {"line": target.symbol.line, "character": 0},
            "end": {"line": target.symbol.line, "character": target.symbol.character}}
    return [
        ("textDocument/documentSymbol", {"textDocument": doc}),
        ("textDocument/foldingRange", {"textDocument": doc}),
        ("textDocument/codeAction", {"textDocument": doc, "range": line,
                                     "context": {"diagnostics": [], "triggerKind": 2}}),
        ("textDocument/semanticTokens/full", {"textDocument": doc}),
        ("textDocument/hover", at),
        ("textDocument/definition", at),
        ("textDocument/completion", {"textDocument": doc,
                                     "position": target.completion.lsp(),
                                     "context": {"triggerKind": 1}}),
        ("textDocument/references", {**at, "context": {"includeDeclaration": True}}),
    ]


def _size(result: Any) -> int:
    if isinstance(result, list):
        return len(result)
    if isinstance(result, dict):
        for key in ("items", "data"):
            if isinstance(result.get(key), list):
                return len(result[key])
        return 1
    return 0


class _Session:
    """The client side of one session: the pending requests and what came back."""

    def __init__(self, client: RawClient, started: float, retry: bool) -> None:
        self.client = client
        self.started = started
        self.retry = retry
        self.next_id = 1
        self.pending: dict[int, tuple[str, dict[str, Any], float]] = {}
        self.answers: dict[str, Answer] = {}
        self.progress: list[tuple[float, str, str]] = []
        self.tokens: dict[Any, str] = {}
        self.first_load: float | None = None

    def request(self, method: str, params: dict[str, Any]) -> int:
        req_id = self.next_id
        self.next_id += 1
        self.pending[req_id] = (method, params, time.monotonic())
        self.client.send({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        return req_id

    def handle(self, msg: dict[str, Any]) -> None:
        if "method" in msg:
            self._from_server(msg)
            return
        req_id = msg.get("id")
        if not isinstance(req_id, int) or req_id not in self.pending:
            return
        method, params, sent = self.pending.pop(req_id)
        if method not in METHODS:
            self.answers.setdefault(method, Answer(method)).seconds = time.monotonic() - sent
            return
        answer = self.answers.setdefault(method, Answer(method, attempts=0))
        answer.attempts += 1
        answer.seconds = time.monotonic() - sent
        error = msg.get("error")
        if isinstance(error, dict):
            answer.error = {"code": error.get("code"), "message": str(error.get("message"))}
            if self.retry and error.get("code") == CONTENT_MODIFIED:
                self.request(method, params)
            return
        answer.result, answer.error, answer.size = True, None, _size(msg.get("result"))

    def _from_server(self, msg: dict[str, Any]) -> None:
        method, params = msg["method"], msg.get("params") or {}
        if method == "$/progress":
            value = params.get("value") or {}
            kind, token = value.get("kind"), params.get("token")
            if kind == "begin":
                self.tokens[token] = str(value.get("title"))
            title = self.tokens.get(token, "?")
            now = time.monotonic() - self.started
            self.progress.append((round(now, 3), str(kind), title))
            if kind == "end" and self.first_load is None and "lspguard" not in title.lower():
                self.first_load = now
        if "id" not in msg:
            return
        result: Any = None
        if method == "workspace/configuration":
            result = [SETTINGS for _ in params.get("items") or [None]]
        self.client.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def done(self) -> bool:
        return all(m in self.answers and not any(p[0] == m for p in self.pending.values())
                   for m in METHODS)


def open_file_session(argv: list[str], ws: Workspace, *, env: dict[str, str], label: str,
                      runtime: Path | None = None, state: Path | None = None,
                      within: float = 240.0, preexec_fn: Callable[[], None] | None = None,
                      retry_content_modified: bool = True, settle: float = 0.0,
                      again: bool = False) -> SessionResult:
    """Run the script against `argv` (bare gopls, or lspguard in front of it) in `ws`.

    `runtime`/`state`: lspguard's runtime and state dirs, to read its status file and incident
    bundles (None: not lspguard). Every answer is awaited for at most `within` seconds from
    the start, then the session is shut down and every process it started is killed.

    `settle` > 0: once everything is answered, go on (answering the server) until the process
    tree has used no CPU for IDLE_S (gopls has finished loading and diagnosing the whole
    workspace), for at most `settle` more seconds: a memory limit may bite only then. `again`:
    then ask the same questions once more (`SessionResult.after`): does the editor still get
    answers once the whole workspace is loaded?"""
    target = ws.target()
    started = time.monotonic()
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, cwd=ws.root, env=env, start_new_session=True,
                                preexec_fn=preexec_fn)
        tree = _Tree(proc)
        try:
            result = _drive(proc, tree, target, ws, label, started, within,
                            retry_content_modified, settle, again)
            if runtime is not None:
                result.status = _read_status(runtime, proc.pid)
            _shutdown(proc)
        finally:
            tree.kill()
        result.elapsed_s = time.monotonic() - started
        stderr.seek(0)
        result.stderr_tail = stderr.read()[-4000:].decode(errors="replace")
    if state is not None:
        result.incidents = incident_kinds(state)
    return result


def _drive(proc: subprocess.Popen[bytes], tree: _Tree, target: OpenTarget, ws: Workspace,
           label: str, started: float, within: float, retry: bool,
           settle: float, again: bool) -> SessionResult:
    client = RawClient(proc)
    session = _Session(client, started, retry)
    deadline = started + within
    result = SessionResult(label, {m: Answer(m) for m in METHODS})
    folder = {"uri": ws.root.as_uri(), "name": ws.root.name}
    init = session.request("initialize", {
        "processId": os.getpid(), "clientInfo": {"name": "lspguard-scale"},
        "rootUri": ws.root.as_uri(), "workspaceFolders": [folder],
        "capabilities": CAPABILITIES, "initializationOptions": SETTINGS})
    ended = _pump(session, tree, deadline, lambda: init not in session.pending)
    if init in session.pending or ended:
        return _finish(result, session, proc, tree, ended)
    result.initialize_s = session.answers["initialize"].seconds
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": target.path.as_uri(), "languageId": "go", "version": 1,
                         "text": target.path.read_text()}}})
    for method, params in requests(target):
        session.request(method, params)
    ended = _pump(session, tree, deadline, session.done)
    if settle > 0 and not ended and session.done():
        ended = _pump(session, tree, time.monotonic() + settle, tree.idle)
        if tree.idle():
            result.idle_s = time.monotonic() - started - IDLE_S
    if again:
        first = {m: session.answers.pop(m) for m in METHODS if m in session.answers}
        result.after = {m: Answer(m) for m in METHODS}
        if not ended:
            for method, params in requests(target):
                session.request(method, params)
            ended = _pump(session, tree, time.monotonic() + AGAIN_WITHIN, session.done)
        result.after.update({m: session.answers[m] for m in METHODS if m in session.answers})
        session.answers.update(first)
    return _finish(result, session, proc, tree, ended)


def _pump(session: _Session, tree: _Tree, deadline: float, until: Callable[[], bool]) -> bool:
    """Read and handle messages until `until()`, the deadline or EOF; True at EOF."""
    while not until():
        now = time.monotonic()
        if now >= deadline:
            return False
        tree.sample()
        try:
            msg = session.client.read_message(min(0.5, deadline - now))
        except TimeoutError:
            continue
        except OSError:
            return True
        if msg is None:
            return True
        session.handle(msg)
    return False


def _finish(result: SessionResult, session: _Session, proc: subprocess.Popen[bytes],
            tree: _Tree, ended: bool) -> SessionResult:
    for method in METHODS:
        if method in session.answers:
            result.answers[method] = session.answers[method]
    result.progress = session.progress
    result.first_load_s = session.first_load
    result.peak_rss_bytes = tree.peak_rss
    if ended:  # its stdout closed: it is exiting, or was killed; give it a moment to be reaped
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2.0)
    result.exit_code = proc.poll()
    return result


def _read_status(runtime: Path, pid: int) -> dict[str, Any] | None:
    path = runtime / "sessions" / f"{pid}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    return None


def incident_kinds(state: Path) -> list[str]:
    """The verdict kind of every incident bundle under lspguard's state dir, oldest first."""
    kinds = []
    for bundle in sorted((state / "incidents").glob("*")):
        try:
            kinds.append(str(json.loads((bundle / "incident.json").read_text())["kind"]))
        except (OSError, ValueError, KeyError):
            parts = bundle.name.split("-")
            if len(parts) >= 3:
                kinds.append("-".join(parts[2:-1]) or bundle.name)
    return kinds


def _shutdown(proc: subprocess.Popen[bytes]) -> None:
    """The editor's polite goodbye, bounded: shutdown, exit, a few seconds to go."""
    if proc.poll() is not None:
        return
    client = RawClient(proc)
    with contextlib.suppress(OSError, TimeoutError, EOFError):
        client.send({"jsonrpc": "2.0", "id": "bye", "method": "shutdown"})
        client.wait_response("bye", SHUTDOWN_WAIT)
        client.send({"jsonrpc": "2.0", "method": "exit"})
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(SHUTDOWN_WAIT)


class _Tree:
    """The processes a session started: sampled for RSS, and killed, all of them, at the end.

    The session leader is in its own session (start_new_session), so anything it spawned is
    found by session id even once its parent died and it was re-parented."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.peak_rss = 0
        self._last_sample = 0.0
        self._cpu = (0.0, time.monotonic())  # (CPU seconds of the tree, when it last moved)

    def members(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        for pid in psutil.pids():
            with contextlib.suppress(OSError, psutil.Error):
                if pid not in found and os.getsid(pid) == self.proc.pid:
                    found[pid] = psutil.Process(pid)
        return list(found.values())

    def sample(self) -> None:
        now = time.monotonic()
        if now - self._last_sample < 0.45:
            return
        self._last_sample = now
        cpu = 0.0
        for member in self.members():
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, member.memory_info().rss)
                times = member.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
        if cpu > self._cpu[0] + 0.05:  # 50 ms of CPU in half a second: still working
            self._cpu = (cpu, now)
        elif cpu < self._cpu[0]:  # a process left the tree: a new baseline, not progress
            self._cpu = (cpu, self._cpu[1])

    def idle(self) -> bool:
        """The tree has used (almost) no CPU for IDLE_S seconds."""
        self.sample()
        return time.monotonic() - self._cpu[1] >= IDLE_S

    def kill(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        members = self.members()
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

        def gone() -> bool:
            return all(_dead(m) for m in self.members())

        wait_until(gone, 10, interval=0.05)


def _dead(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True

"""A session in-process, for recovery and the cause waits: a real Relay, fake servers, no spawn.

`Harness` plays the Session as supervise/host.py's `Supervised` and as the relay's `RelayHost`;
`FakeServer` stands in for a Backend (it records what it is sent and answers lspguard's own
requests at once; the editor's requests only when the test says). `until` waits for something
the harness saw happen: a write to either side, a phase change, a call from supervision.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import anyio
import anyio.abc

from lspguard.causes.verdict import Verdict
from lspguard.config.model import Config
from lspguard.protocol.framing import Frame, FrameDecoder, encode_frame
from lspguard.protocol.peek import Message
from lspguard.proxy.backend import Backend
from lspguard.proxy.lifecycle import Lifecycle, Phase
from lspguard.proxy.outbox import OWN_ID_PREFIX
from lspguard.proxy.relay import Relay
from lspguard.supervise.waiting import CauseWait

__all__ = ["FakeServer", "Harness", "frame", "supervised"]


def frame(message: dict[str, Any]) -> Frame:
    decoder = FrameDecoder(1 << 20)
    decoder.receive_data(encode_frame(json.dumps(message).encode()))
    out = decoder.next_frame()
    assert isinstance(out, Frame)
    return out


def _decode(decoder: FrameDecoder, data: bytes) -> list[dict[str, Any]]:
    decoder.receive_data(data)
    found = []
    while isinstance(got := decoder.next_frame(), Frame):
        found.append(json.loads(bytes(got.body)))
    return found


@dataclass
class Editor:
    """Stands in for the editor's stdout pipe: decodes and records what lspguard writes."""

    notify: Callable[[], None]
    seen: list[dict[str, Any]] = field(default_factory=list)
    feeders: list[Any] = field(default_factory=list)  # the relay sets them (back-pressure)
    _decoder: FrameDecoder = field(default_factory=lambda: FrameDecoder(1 << 20))

    def write(self, data: bytes) -> None:
        self.seen += _decode(self._decoder, data)
        self.notify()

    def answer(self, req_id: Any) -> dict[str, Any] | None:
        return next((m for m in self.seen if m.get("id") == req_id and "method" not in m), None)

    def told(self) -> list[str]:
        """What the user was shown (window/showMessage), in order."""
        return [m["params"]["message"] for m in self.seen
                if m.get("method") == "window/showMessage"]


class FakeServer:
    """One backend generation: records what it is sent; answers lspguard's own requests (the
    replayed initialize, pings) at once, the editor's only through `answer`."""

    def __init__(self, generation: int, argv: Sequence[str], env: Mapping[str, str],
                 relay: Relay, notify: Callable[[], None]) -> None:
        self.generation = generation
        self.argv = list(argv)
        self.env_overlay = dict(env)
        self.pid: int | None = None  # no process: the handshake watch has nothing to probe
        self.exited = anyio.Event()
        self.writer = SimpleNamespace(feeders=[])
        self.reader = SimpleNamespace(eof=False)
        self.received: list[dict[str, Any]] = []
        self.stopped = False
        self.signals: list[int] = []
        self.answers_own_requests = True
        self.dies_on_initialize = False  # exits when sent the replayed initialize
        self.result: dict[str, Any] = {"capabilities": {"hoverProvider": True}}
        self._relay, self._notify = relay, notify
        self._decoder = FrameDecoder(1 << 20)

    def send(self, data: bytes) -> None:
        for message in _decode(self._decoder, data):
            self.received.append(message)
            req_id = message.get("id")
            own = isinstance(req_id, str) and req_id.startswith(OWN_ID_PREFIX)
            if own and message.get("method") == "initialize" and self.dies_on_initialize:
                self.exited.set()
            elif own and "method" in message and self.answers_own_requests:
                # lspguard waits for this answer already: it may come at once
                self.answer(req_id, self.result if message["method"] == "initialize" else None)
        self._notify()

    def answer(self, req_id: Any, result: Any) -> None:
        self.say({"jsonrpc": "2.0", "id": req_id, "result": result})

    def say(self, message: dict[str, Any]) -> None:
        self._relay._from_server(self.generation, frame(message))

    def methods(self) -> list[str | None]:
        return [m.get("method") for m in self.received]

    async def stop(self, grace: float, goodbye: object = None) -> None:
        self.stopped = True
        self.exited.set()
        self._notify()

    def signal_group(self, sig: int) -> None:
        self.signals.append(sig)

    def describe_exit(self) -> str:
        return "exited"


class Harness:
    """The session, as supervision (`Supervised`) and the relay (`RelayHost`) see it."""

    def __init__(self, config: Config, tg: anyio.abc.TaskGroup) -> None:
        self.config = config
        self.command = ["gopls"]
        self.lifecycle = Lifecycle(lambda old, new: self.notify())
        self.relay = Relay(config, self.lifecycle, self)
        self.editor = Editor(self.notify)
        self.relay.client_out = self.editor  # type: ignore[assignment]
        self.end_reason: str | None = None
        self.verdicts: list[Verdict] = []
        self.cause_restarts: dict[tuple[object, ...], int] = {}
        self.told_causes: set[tuple[object, ...]] = set()
        self.cause_wait: CauseWait | None = None
        self.servers: list[FakeServer] = []
        self.doomed = 0  # how many of the next servers die during the replayed initialize
        self.evidence: list[tuple[Verdict | None, object]] = []  # (verdict, about which)
        self.restarts: list[tuple[Verdict, bool]] = []
        self.exits: list[object] = []
        self.reports: list[Verdict] = []
        self._tg = tg
        self._news = anyio.Event()

    # ---------------------------------------------------------------- the test's side

    def notify(self) -> None:
        """Something happened: wake `until`."""
        self._news.set()
        self._news = anyio.Event()

    async def until(self, check: Callable[[], object], within: float = 5.0) -> None:
        """Until `check()` holds, re-checked whenever something happens (no polling)."""
        with anyio.fail_after(within):
            while not check():
                await self._news.wait()

    def editor_says(self, message: dict[str, Any]) -> None:
        self.relay._from_client(frame(message))

    async def running(self, capabilities: dict[str, Any] | None = None) -> FakeServer:
        """Generation 1, through the editor's handshake, with a document open."""
        server = await self.start_backend(self.command, {}, "primary")
        self.lifecycle.to(Phase.INITIALIZING)
        self.editor_says({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": "file:///w", "capabilities": capabilities or {}}})
        fake = self.servers[-1]
        fake.answer(1, fake.result)
        self.editor_says({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        self.editor_says({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": "file:///w/a.go", "languageId": "go", "version": 1,
                             "text": "package a\n"}}})
        assert self.lifecycle.phase is Phase.RUNNING and server.generation == 1
        return fake

    # ---------------------------------------------------------------- Supervised

    def spawn(self, func: Callable[..., Any], *args: object) -> None:
        self._tg.start_soon(func, *args)

    spawn_evidence = spawn

    async def take_evidence(self, verdict: Verdict | None,
                            backend: Backend | None) -> str | None:
        self.evidence.append((verdict, backend))
        self.notify()
        return f"/bundles/{len(self.evidence)}"

    async def start_backend(self, argv: Sequence[str], env: Mapping[str, str],
                            label: str) -> Backend:
        server = FakeServer(self.relay.generation + 1, argv, env, self.relay, self.notify)
        server.dies_on_initialize, self.doomed = self.doomed > 0, max(0, self.doomed - 1)
        backend = cast("Backend", server)
        self.relay.attach(backend)
        self.servers.append(server)
        self.notify()
        return backend

    def restart(self, verdict: Verdict, *, fresh: bool = False) -> None:
        self.restarts.append((verdict, fresh))
        self.notify()

    def wait_on(self, verdict: Verdict, *, keep_backend: bool = True) -> None:
        self.cause_wait = CauseWait(self, verdict, keep_backend=keep_backend)
        self.cause_wait.start()

    def report_exit(self, backend: Backend) -> None:
        self.exits.append(backend)

    def backend_name(self) -> str:
        return "gopls"

    def memory_limit_for_restart(self) -> str | None:
        return None

    # ---------------------------------------------------------------- RelayHost

    def end(self, reason: str) -> None:
        self.end_reason = self.end_reason or reason

    def report(self, verdict: Verdict) -> None:
        self.reports.append(verdict)

    def answer_while_waiting(self, frame: Frame, msg: Message) -> None:
        assert self.cause_wait is not None
        self.cause_wait.on_editor_message(frame, msg)

    def changed(self) -> None:
        pass


@asynccontextmanager
async def supervised(config: Config | None = None) -> AsyncIterator[Harness]:
    """A harness whose tasks (recovery's, the wait's) end with the block."""
    async with anyio.create_task_group() as tg:
        yield Harness(config or Config(), tg)
        tg.cancel_scope.cancel()

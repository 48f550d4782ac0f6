"""Headless replay: drive any stdio language server with the editor's side of a recorded trace.

The client messages of the trace (``c2s``) are sent in order, with the recorded pacing scaled by
``speed`` or as fast as possible (``asap``). Either way a message is held back until the server
has answered every request whose answer came before that message in the recording (the editor
had seen those answers when it sent it; ``initialized`` waits for ``initialize`` this way), so a
replay keeps the causal order of the session. Requests from the server are answered with what the
editor answered in the recording (matched by method, in order; the last one is reused) or with a
sensible default. Every request has a deadline (the watchdog's per-method table unless
overridden); the first request past its deadline is a hang: sending stops, the server is stopped,
and the report names the request. A server exit before ``exit`` is a crash. Results are compared
as described in replay/report.py.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import anyio

from lspguard.errors import BackendError
from lspguard.protocol.framing import encode_frame
from lspguard.protocol.peek import decode_full, encode
from lspguard.proxy.backend import Backend
from lspguard.proxy.pipes import FrameReader
from lspguard.replay.plan import Plan
from lspguard.replay.report import VOLATILE_KEYS, VOLATILE_PATHS, ReplayReport, diff_values
from lspguard.trace.rootmap import RootMap

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from lspguard.protocol.framing import Frame
    from lspguard.replay.plan import Planned, Step
    from lspguard.trace.format import Trace

__all__ = ["Deadlines", "ReplayOptions", "replay", "run_replay"]

_OWN_SHUTDOWN_ID = "lspguard-replay-shutdown"


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds a request may go unanswered: per method, else `default`."""

    default: float = 30.0
    per_method: Mapping[str, float] = field(default_factory=dict)

    def for_method(self, method: str) -> float:
        return self.per_method.get(method, self.default)


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    server: Sequence[str]
    root_map: RootMap = field(default_factory=RootMap)
    speed: float = 1.0
    asap: bool = False
    deadlines: Deadlines = field(default_factory=Deadlines)
    ignore_keys: frozenset[str] = VOLATILE_KEYS
    cwd: str | None = None
    env: Mapping[str, str] | None = None
    stop_timeout: float = 2.0
    on_progress: Callable[[str], None] | None = None


class _Replay:
    def __init__(self, trace: Trace, options: ReplayOptions) -> None:
        self.trace = trace
        self.options = options
        self.plan = Plan(trace)
        self.live: dict[int | str, Planned] = {}
        self.report = ReplayReport(
            trace=trace.path or "<trace>", server_command=list(options.server),
            mode="asap" if options.asap else f"recorded pacing x{options.speed:g}",
            root_map=[f"{old}={new}" for old, new in options.root_map.pairs],
            redacted_trace=trace.header.redacted, client_messages=len(self.plan.steps),
            requests=[p.outcome for p in self.plan.requests],
            notifications_recorded=dict(self.plan.notifications))
        self.replayed_notifications: Counter[str] = Counter()
        self.server_requests: dict[str, Counter[str]] = {}
        self.backend: Backend | None = None
        self.exit_sent = False
        self.stopping = False
        self.send_scope = anyio.CancelScope()
        self.shutdown_answered: anyio.Event | None = None
        self.start = 0.0
        # Outstanding deadlines, earliest first; one watcher task for all of them.
        self.deadlines: list[tuple[float, int, Planned]] = []
        self.order = itertools.count()
        self.earlier_deadline: anyio.Event | None = None
        self.outstanding = 0
        self.out: list[bytes] = []  # frames of the current burst, not yet written

    async def run(self) -> ReplayReport:
        report = self.report
        if not self.plan.steps:
            report.bad_input = "the trace has no client messages to replay"
            return report
        if self.trace.gaps:
            lost = sum(g.dropped for g in self.trace.gaps)
            report.warnings.append(f"the recording dropped {lost} messages (trace gap lines "
                                   f"{', '.join(str(g.line) for g in self.trace.gaps[:5])})")
        if report.redacted_trace:
            report.warnings.append("the trace was recorded without --include-text: the server "
                                   "sees placeholder text, results are compared by shape only")
        self.start = time.monotonic()
        reader = FrameReader("server", self._on_frame, lambda exc: report.warnings.append(
            f"malformed frame from the server: {exc}"), 256 * 1024 * 1024)
        backend = self.backend = Backend(list(self.options.server), env_overlay=self.options.env,
                                         reader=reader, cwd=self._cwd())
        try:
            await backend.start()
        except BackendError as exc:
            report.bad_input = str(exc)
            return report
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_exit, backend)
                tg.start_soon(self._watch_deadlines)
                with self.send_scope:
                    await self._send_all()
                    await self._drain()
                    report.complete = True
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                self.stopping = True
                hung = bool(report.hangs) or report.crash is not None
                await backend.stop(1.0 if hung else self.options.stop_timeout,
                                   None if hung or self.exit_sent else self._goodbye)
                report.elapsed_s = time.monotonic() - self.start
                report.stderr_tail = list(backend.stderr_tail)[-40:]
                self._finish()
        return report

    def _cwd(self) -> str | None:
        if self.options.cwd is not None:
            return self.options.cwd
        for folder in self.trace.header.workspace_folders:
            path = unquote(urlparse(folder).path) if folder.startswith("file:") else folder
            if os.path.isdir(path):
                return path
        return None

    # ---------------------------------------------------------------- sending

    async def _send_all(self) -> None:
        """Send the client's messages in order; a burst goes out as one write (a write per
        message would cost a syscall and a wake-up of the server each)."""
        prev_t: float | None = None
        last_send = time.monotonic()
        for step in self.plan.steps:
            waits = [d.answered for d in step.wait_for
                     if d.answered is not None and not d.answered.is_set()]
            target = last_send
            if not self.options.asap and prev_t is not None:
                target = last_send + (step.entry.t - prev_t) / self.options.speed
            if waits or target > time.monotonic():
                self._flush()
                for answered in waits:
                    await answered.wait()
                delay = target - time.monotonic()  # read once: a second read may be later
                if delay > 0:
                    await anyio.sleep(delay)
            prev_t = step.entry.t
            last_send = time.monotonic()
            self._send(step)
            if len(self.out) >= 64:  # let answers in during a long burst
                self._flush()
                await anyio.lowlevel.checkpoint()
            if step.entry.method == "exit":
                self._flush()
                self.exit_sent = True
                assert self.backend is not None
                with anyio.move_on_after(self.options.stop_timeout):
                    await self.backend.exited.wait()
                if not self.backend.exited.is_set():
                    self.report.crash = (f"the server did not exit within "
                                         f"{self.options.stop_timeout:g} s of the exit "
                                         "notification")
                    self.send_scope.cancel()
                    return
        self._flush()

    def _flush(self) -> None:
        if self.out:
            assert self.backend is not None
            self.backend.send(b"".join(self.out))
            self.out.clear()

    def _send(self, step: Step) -> None:
        assert self.backend is not None
        request = step.request
        if request is not None:
            request.sent_at = time.monotonic()
            request.answered = anyio.Event()
            request.outcome.sent_at_s = request.sent_at - self.start
            request.outcome.deadline_s = self.options.deadlines.for_method(
                request.outcome.method)
            self.live[request.outcome.id] = request
            self.outstanding += 1
            due = request.sent_at + request.outcome.deadline_s
            heapq.heappush(self.deadlines, (due, next(self.order), request))
            if self.deadlines[0][2] is request and self.earlier_deadline is not None:
                self.earlier_deadline.set()
        self.out.append(encode_frame(encode(_live_message(step.entry.msg))))
        self.report.sent += 1
        if self.options.on_progress is not None:
            self.options.on_progress(self._progress_line(step))

    def _progress_line(self, step: Step) -> str:
        return (f"[{self.report.sent}/{self.report.client_messages}] "
                f"{step.entry.method or 'response'} (line {step.entry.line}); "
                f"{self.outstanding} awaiting answers; {time.monotonic() - self.start:.1f} s")

    async def _drain(self) -> None:
        for request in list(self.live.values()):
            if request.answered is not None:
                await request.answered.wait()

    async def _watch_deadlines(self) -> None:
        """Sleep until the earliest outstanding deadline; the first one missed is a hang."""
        heap = self.deadlines
        while True:
            while heap and heap[0][2].response is not None:
                heapq.heappop(heap)
            if heap and heap[0][0] <= time.monotonic():
                request = heap[0][2]
                request.outcome.status = "hang"
                if request.recorded is None:
                    request.outcome.note = "unanswered in the recording too"
                self.send_scope.cancel()
                return
            self.earlier_deadline = anyio.Event()
            with anyio.move_on_after(heap[0][0] - time.monotonic() if heap else math.inf):
                await self.earlier_deadline.wait()

    async def _watch_exit(self, backend: Backend) -> None:
        await backend.exited.wait()
        if not self.exit_sent and not self.stopping:
            outstanding = [f"{p.outcome.method} #{p.outcome.id}" for p in self.live.values()
                           if p.response is None]
            self.report.crash = (f"the server {backend.describe_exit()} before the exit "
                                 f"notification; outstanding: {', '.join(outstanding) or 'none'}")
            self.send_scope.cancel()

    async def _goodbye(self) -> None:
        assert self.backend is not None
        self.shutdown_answered = anyio.Event()
        self.backend.send(encode_frame(encode({"jsonrpc": "2.0", "id": _OWN_SHUTDOWN_ID,
                                               "method": "shutdown"})))
        await self.shutdown_answered.wait()
        self.backend.send(encode_frame(encode({"jsonrpc": "2.0", "method": "exit"})))
        await self.backend.exited.wait()

    # ---------------------------------------------------------------- receiving

    def _on_frame(self, frame: Frame) -> None:
        try:
            msg = decode_full(frame.body)
        except Exception as exc:
            self.report.warnings.append(f"undecodable message from the server: {exc}")
            return
        if not isinstance(msg, dict):
            return
        method = msg.get("method")
        if isinstance(method, str):
            if msg.get("id") is not None:
                self._answer_server(method, msg["id"], msg.get("params"))
            else:
                self.replayed_notifications[method] += 1
            return
        msg_id = msg.get("id")
        if msg_id == _OWN_SHUTDOWN_ID:
            if self.shutdown_answered is not None:
                self.shutdown_answered.set()
            return
        request = self.live.get(msg_id) if isinstance(msg_id, int | str) else None
        if request is None or request.response is not None:
            self.report.unexpected_responses.append(msg)
            return
        request.response = msg
        self.outstanding -= 1
        assert request.sent_at is not None and request.answered is not None
        request.outcome.replay_ms = (time.monotonic() - request.sent_at) * 1000
        request.answered.set()

    def _answer_server(self, method: str, msg_id: Any, params: Any) -> None:
        assert self.backend is not None
        part, source = self.plan.answer(method, params, self.trace.header.workspace_folders)
        self.server_requests.setdefault(method, Counter())[source] += 1
        self.backend.send(encode_frame(encode({"jsonrpc": "2.0", "id": msg_id, **part})))

    # ---------------------------------------------------------------- verdict

    def _finish(self) -> None:
        report = self.report
        report.notifications_replayed = dict(self.replayed_notifications)
        report.server_requests = {m: dict(c) for m, c in self.server_requests.items()}
        for request in self.plan.requests:
            out = request.outcome
            if out.status == "hang" or request.sent_at is None:
                continue
            if request.response is None:
                out.status = "unanswered"
                out.note = "the replay stopped first"
            elif request.cancelled or request.by_proxy:
                out.status = "not_compared"
                out.note = ("cancelled by the client" if request.cancelled
                            else "answered by lspguard during a restart in the recording")
            elif request.recorded is None:
                out.status = "extra_answer"
                out.note = "unanswered in the recording"
            else:
                out.diff = self._compare(out.method, request.recorded, request.response)
                out.status = "different" if out.diff else "same"

    def _compare(self, method: str, recorded: dict[str, Any], replayed: dict[str, Any]
                 ) -> list[str]:
        rec_error, rep_error = "error" in recorded, "error" in replayed
        if rec_error != rep_error:
            was = _short_outcome(recorded)
            now = _short_outcome(replayed)
            return [f"recorded {was}, replayed {now}"]
        if self.report.redacted_trace:
            return []
        if rec_error:
            return diff_values(recorded["error"].get("message"),
                               replayed["error"].get("message"), "error.message")
        return diff_values(recorded.get("result"), replayed.get("result"), "result",
                           ignore_keys=self.options.ignore_keys,
                           ignore_paths=VOLATILE_PATHS.get(method, frozenset()))


def _live_message(msg: dict[str, Any]) -> dict[str, Any]:
    """The message as this replay sends it: `initialize` names the replayer as the client
    process (some servers exit when the recorded, long-dead processId is gone)."""
    params = msg.get("params")
    if msg.get("method") == "initialize" and isinstance(params, dict) and params.get("processId"):
        return {**msg, "params": {**params, "processId": os.getpid()}}
    return msg


def _short_outcome(msg: dict[str, Any]) -> str:
    if "error" in msg:
        error = msg["error"] if isinstance(msg["error"], dict) else {}
        return f"an error ({error.get('message')!r})"
    return "a result"


async def replay(trace: Trace, options: ReplayOptions) -> ReplayReport:
    """Replay `trace` (root map applied here) against `options.server`; never raises for what the
    server does: hangs, crashes and divergences are in the report."""
    mapped = trace.mapped(options.root_map)
    return await _Replay(mapped, options).run()


def run_replay(trace: Trace, options: ReplayOptions) -> ReplayReport:
    """`replay` from synchronous code (its own event loop; uvloop when installed)."""
    backend_options: dict[str, bool] = {}
    if sys.platform != "win32":
        try:
            import uvloop  # noqa: F401
            backend_options = {"use_uvloop": True}
        except ImportError:
            pass
    return anyio.run(replay, trace, options, backend="asyncio", backend_options=backend_options)

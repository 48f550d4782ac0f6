"""One editor connection under supervision: the lifecycle around the relay (relay.py).

The task group holds the watchers (editor gone, backend exited, signals, status file, watchdog);
when one of them ends the session, `_let_go` runs shielded: goodbye to the backend (shutdown,
exit), then SIGTERM, then SIGKILL. An incident bundle still being collected is then cut short
and written. The exit code mirrors the LSP spec: 0 after shutdown + exit.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, Any

import anyio

from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.protocol.codes import MessageType
from lspguard.proxy import early, proctitle
from lspguard.proxy.backend import Backend
from lspguard.proxy.lifecycle import Lifecycle, Phase
from lspguard.proxy.pending import Direction
from lspguard.proxy.pipes import FrameReader
from lspguard.proxy.relay import Relay
from lspguard.session.evidence import Evidence
from lspguard.session.watched import WatchedSession
from lspguard.status.file import StatusFile
from lspguard.supervise.recovery import Recovery
from lspguard.supervise.watchdog import Watchdog

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence

    from lspguard.config.model import Config
    from lspguard.protocol.framing import Frame
    from lspguard.protocol.peek import Message
    from lspguard.status.schema import SessionStatus
    from lspguard.supervise.waiting import CauseWait

__all__ = ["Session"]

log = logging.getLogger(__name__)

C2S = Direction.CLIENT_TO_SERVER
# How long a bundle begun before the session ended may take to be written, once cut short.
_EVIDENCE_GRACE = 3.0



class Session(WatchedSession):
    """Relay one editor connection to a supervised language server.

    It *has* a relay (the hot path and its books) and supervises it: the watchdog, recovery,
    a wait on an outside cause and evidence each see the session through a narrow Protocol
    (WatchTarget, Supervised, EvidenceHost; the relay's RelayHost), and recovery and a wait
    act on the relay only through supervise/host.py's RelayControl."""

    def __init__(self, command: Sequence[str], config: Config, *,
                 log_file: str | None = None, status: StatusFile | None = None) -> None:
        if not command:
            raise ValueError("empty backend command")
        self.config = config
        self.command = list(command)
        self.log_file = log_file
        self.lifecycle = Lifecycle(self._phase_changed)
        self.relay = Relay(config, self.lifecycle, self)
        self.backend_label = "primary"
        self.end_reason: str | None = None
        self.verdicts: list[Verdict] = []
        self.bundles: list[str] = []
        self.verdict_bundles: dict[int, str] = {}  # id() of a verdict in `verdicts` -> its bundle
        self.status = status or StatusFile(self.status_snapshot)
        self.watchdog = Watchdog(config.watchdog, self)
        self._roots: tuple[int, list[tuple[str, str]]] | None = None
        self.recovery = Recovery(self)
        self.evidence = Evidence(self)
        self.cause_wait: CauseWait | None = None  # what the server waits on, while waiting
        self.ending = anyio.Event()  # set by end(); bundles being collected then finish early
        self._tg: anyio.abc.TaskGroup | None = None
        # Evidence runs here, not in _tg: a bundle begun just before the editor quits is still
        # written (cut short by `ending`) after the session's own tasks are cancelled.
        self._evidence_tg: anyio.abc.TaskGroup | None = None
        # Restarts tried per outside cause while it persists (causes/policy.py), and the causes
        # the user has been told about (once each).
        self.cause_restarts: dict[tuple[object, ...], int] = {}
        self.told_causes: set[tuple[object, ...]] = set()

    # ---------------------------------------------------------------- lifecycle

    async def run(self, connect_editor: Callable[[], Awaitable[None]]) -> int:
        """Start the backend, then connect the editor (`connect_editor` wires the relay's
        `client_reader` and `client_out` to its pipes); run until either side ends the session;
        return the exit code."""
        try:
            async with anyio.create_task_group() as evidence_tasks:
                self._evidence_tg = evidence_tasks
                try:
                    await self._serve(connect_editor)
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._let_go()
                evidence_tasks.cancel_scope.deadline = anyio.current_time() + _EVIDENCE_GRACE
        finally:
            self.lifecycle.to(Phase.EXITED)
            log.info("session over (%s); exit code %d; %d frames from the editor, %d restarts",
                     self.end_reason, self.exit_code, self.relay.client_reader.frames_in,
                     max(0, self.generation - 1))
            self.status.remove()
        return self.exit_code

    async def _serve(self, connect_editor: Callable[[], Awaitable[None]]) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._watch_signals)
            if self.relay.trace is not None:
                tg.start_soon(self.relay.trace.run)
            await self.start_backend(self.command, self.config.backend.env, "primary")
            await self._serve_control(tg)
            await connect_editor()
            self.lifecycle.advance(Phase.STARTING, Phase.INITIALIZING)
            if self.relay.editor_ready():  # answered already (the pre-relay, prerelay.py)
                self.lifecycle.advance(Phase.INITIALIZING, Phase.RUNNING)
            tg.start_soon(self._watch_editor)
            tg.start_soon(self._status_loop)
            if self.config.watchdog.enabled:
                tg.start_soon(self.watchdog.run)
            await self.ending.wait()
            tg.cancel_scope.cancel()

    @property
    def exit_code(self) -> int:
        r = self.relay
        return 0 if (r.shutdown_requested and r.exit_received) else 1

    def end(self, reason: str) -> None:
        """Ask the session to stop (idempotent); the first reason given is kept."""
        if self.end_reason is None:
            self.end_reason = reason
            log.info("session ending: %s", reason)
            self.lifecycle.to(Phase.STOPPING)
        self.ending.set()

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: object) -> None:
        assert self._tg is not None
        self._tg.start_soon(func, *args)

    def spawn_evidence(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: object) -> None:
        assert self._evidence_tg is not None
        self._evidence_tg.start_soon(func, *args)

    async def start_backend(self, argv: Sequence[str], env: Mapping[str, str],
                            label: str) -> Backend:
        """Spawn the next generation and make it current (its frames are relayed from now on)."""
        relay = self.relay
        gen = relay.generation + 1
        reader = FrameReader(f"server#{gen}", relay.on_backend_frame(gen),
                             relay.on_backend_error(gen), self.config.proxy.max_frame_bytes)
        if self.config.snapshot.enabled and self.config.snapshot.gopls_debug:
            argv = early.with_gopls_debug(argv)
        backend = Backend(argv, env_overlay=env, generation=gen, reader=reader,
                          stderr_tail_lines=self.config.proxy.stderr_tail_lines)
        backend.stderr_listeners.append(self.evidence.on_stderr)
        relay.attach(backend)
        self.backend_label = label
        if gen == 1:
            self._take_over_prerelay(reader)
        await backend.start()
        if backend.pid is not None:
            self.watchdog.memory.start(backend.pid, env)
        proctitle.guarding(self.backend_name(), backend.pid, gen)
        self.spawn(self._watch_backend, backend)
        self.status.write()
        return backend

    def _take_over_prerelay(self, server_reader: FrameReader) -> None:
        """Go on from where the pre-relay stopped (prerelay.py): book what it forwarded before
        a byte more is read, and give each reader the bytes it read and did not forward."""
        handover = early.take_over()
        if handover is None:
            return
        self.relay.book_prerelayed(handover.copied)
        server_reader.carry = handover.server_rest
        self.relay.client_reader.carry = handover.editor_rest

    async def take_evidence(self, verdict: Verdict | None,
                            backend: Backend | None) -> str | None:
        return await self.evidence.snapshot(verdict, backend=backend)

    async def _serve_control(self, tg: anyio.abc.TaskGroup) -> None:
        from lspguard.control.common import socket_path
        from lspguard.control.server import serve_control
        from lspguard.errors import LspguardError
        from lspguard.session.control import control_handlers

        try:
            await tg.start(serve_control, socket_path(os.getpid()),
                           control_handlers(self, self.evidence))
        except (OSError, LspguardError) as exc:  # a convenience: never fail the session for it
            log.warning("no control socket: %s", exc)

    async def _watch_editor(self) -> None:
        relay = self.relay
        async with anyio.create_task_group() as tg:
            async def stdin_closed() -> None:
                await relay.client_reader.done.wait()
                self.end("the editor closed its end of stdin")

            async def stdout_closed() -> None:
                await relay.client_out.closed.wait()
                self.end("the editor stopped reading stdout")

            tg.start_soon(stdin_closed)
            tg.start_soon(stdout_closed)

    async def _watch_backend(self, backend: Backend) -> None:
        await backend.exited.wait()
        with anyio.move_on_after(1.0):  # relay what it wrote before dying
            await backend.reader.done.wait()
        self.report_exit(backend)

    def report_exit(self, backend: Backend) -> None:
        """The verdict `crashed` for the current backend, if it exited unasked. Recovery calls
        this again once it is done: an exit while it ran was not judged then."""
        if backend is not self.relay.backend or self.end_reason or self.relay.exit_forwarded:
            return
        if not backend.exited.is_set():
            return
        oom = self.watchdog.memory.verdict_on_exit(backend, self.backend_name())
        if oom is not None:
            self.report(oom)
            return
        self.report(Verdict(VerdictKind.CRASHED,
                            f"The language server (pid {backend.pid}) {backend.describe_exit()}.",
                            backend.generation,
                            {"returncode": backend.returncode,
                             "stderr_tail": list(backend.stderr_tail)[-20:]}))

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            early_signal = early.signal_while_starting()
            if early_signal is not None:  # noted while the pre-relay ran (early.py)
                self.end(f"received {signal.Signals(early_signal).name} while starting")
                return
            async for signum in signals:
                self.end(f"received {signal.Signals(signum).name}")
                return

    def _warn_near_memory_limit(self) -> None:
        """One warning per generation as gopls nears its memory limit (editors without the
        extension see only this)."""
        if not self.relay.editor_ready():
            return
        text = self.watchdog.memory.near_limit_warning(self.backend_name())
        if text is not None:
            log.warning("%s", text)
            self.relay.outbox.notify_client("window/showMessage",
                                            {"type": MessageType.Warning, "message": text})

    async def _status_loop(self) -> None:
        while True:
            self._warn_near_memory_limit()
            self.relay.mirror.compact_if_due()
            await self.status.refresh()
            await anyio.sleep(self.config.proxy.status_interval)

    async def _let_go(self) -> None:
        """Stop the backend and close the editor's pipe and the trace (bundles may still be
        finishing: `run` waits for them, briefly, after this)."""
        relay = self.relay
        backend = relay.backend
        if backend is not None:
            talkative = relay.editor_ready() or relay.exit_forwarded
            await backend.stop(self.config.proxy.stop_timeout,
                               self._goodbye if talkative else None)
        await relay.client_out.aclose(within=1.0)
        if relay.trace is not None:
            await relay.trace.aclose()

    async def _goodbye(self) -> None:
        """Let the backend exit on its own terms: shutdown and exit (unless already sent)."""
        relay = self.relay
        backend = relay.backend
        assert backend is not None
        if not relay.exit_forwarded:
            if not relay.shutdown_requested or relay.recovering:
                await relay.outbox.request_server("shutdown", None)
            relay.outbox.send_server({"jsonrpc": "2.0", "method": "exit"})
        await backend.exited.wait()

    # ---------------------------------------------------------------- verdicts

    def report(self, verdict: Verdict) -> None:
        """A verdict on the current generation: record it, then act by its cause
        (causes/policy.py): restart, or wait on a cause outside the server."""
        from lspguard.causes.policy import Action, policy_for

        manual = verdict.kind is VerdictKind.MANUAL
        if self.end_reason or self.relay.recovering:
            return
        if verdict.generation != self.generation and not manual:
            return
        if self.waiting is not None:
            if not manual:
                return  # the waiting watches its own cause (and the server's exit)
            self.waiting.cancel()
        self.verdicts.append(verdict)
        log.warning("generation %d: %s", verdict.generation, verdict.summary)
        self.status.write()
        if not self.config.restart.enabled:
            if verdict.kind is VerdictKind.CRASHED:
                self.end(verdict.summary)
            return
        policy = policy_for(verdict.kind.value)
        if policy.action is Action.WAIT_ON_CAUSE and verdict.cause is not None:
            signature = verdict.cause.signature
            tried = self.cause_restarts.get(signature, 0)
            if tried >= policy.confirm_restarts:
                self.wait_on(verdict)
                return
            self.cause_restarts[signature] = tried + 1
        self.restart(verdict)

    def restart(self, verdict: Verdict, *, fresh: bool = False) -> None:
        """Replace the current generation (`fresh`: a new budget, from the primary backend)."""
        self.relay.condemn()
        self.lifecycle.to(Phase.RESTARTING)
        self.spawn(self.recovery.recover, verdict, fresh)

    def wait_on(self, verdict: Verdict, *, keep_backend: bool = True) -> None:
        """Stop judging and restarting: answer the editor at once until the cause clears."""
        from lspguard.supervise.waiting import CauseWait

        self.cause_wait = CauseWait(self, verdict, keep_backend=keep_backend)
        self.cause_wait.start()

    def answer_while_waiting(self, frame: Frame, msg: Message) -> None:
        assert self.cause_wait is not None
        self.cause_wait.on_editor_message(frame, msg)

    # ---------------------------------------------------------------- status

    def changed(self) -> None:
        self.status.write()

    def _phase_changed(self, old: Phase, new: Phase) -> None:
        self.status.write()

    def status_snapshot(self) -> SessionStatus:
        from lspguard.session.status import session_status

        return session_status(self)


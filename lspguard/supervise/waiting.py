"""The session while its server waits on a cause outside it: answer at once, watch, revive.

A restart cannot fix a filesystem that does not answer, a FIFO with no writer or a network peer
that never replies, so the session does not thrash. Instead, until the cause clears:
- every editor request is answered at once: save-path requests (formatting, code actions,
  willSaveWaitUntil) with an empty result, so saving never waits; others with RequestFailed
  naming the cause and the fix;
- notifications are mirrored (a later restart replays them) and kept in order for the server
  that waits, which gets them if it is kept;
- the user is told once, with the fix and the incident report;
- the cause is watched every tick: the waiting thread leaves its call, the child exits, the
  socket closes, or a bounded `stat` of the path answers.
When it clears, the server is kept if it answers the liveness ping (it gets what it missed),
and restarted otherwise.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from lspguard.causes.policy import SAVE_PATH_METHODS
from lspguard.causes.probe import PathProber, TreeProber
from lspguard.protocol.codes import LSPErrorCodes, MessageType
from lspguard.proxy.lifecycle import Phase
from lspguard.supervise.watchdog import PING_METHOD

if TYPE_CHECKING:
    from lspguard.causes.model import Cause
    from lspguard.causes.tree import TreeSnapshot
    from lspguard.causes.verdict import Verdict
    from lspguard.protocol.framing import Frame
    from lspguard.protocol.peek import Message
    from lspguard.supervise.host import Supervised

__all__ = ["CauseWait"]

log = logging.getLogger(__name__)

_BACKLOG_LIMIT = 20_000  # notifications kept for the waiting server; past it, it is restarted
_REVIVE_PING_S = 10.0  # a server just released may first finish the load it was stuck in


class CauseWait:
    def __init__(self, host: Supervised, verdict: Verdict, *, keep_backend: bool = True) -> None:
        assert verdict.cause is not None
        self.host, self.relay = host, host.relay
        self.verdict = verdict
        self.cause: Cause = verdict.cause
        self.keep_backend = keep_backend
        self.since = time.monotonic()
        self.since_wall = time.time()
        self.answered = 0
        self.backlog: list[bytes] | None = []  # None once it overflowed
        timeout = host.config.watchdog.probe_timeout
        self.paths = PathProber(timeout)
        self.trees = TreeProber(timeout)
        self.cleared: str | None = None
        self._cancel = anyio.CancelScope()

    # ---------------------------------------------------------------- the editor

    def start(self) -> None:
        s, r = self.host, self.relay
        log.warning("waiting on the cause, not restarting: %s", self.cause.sentence)
        # The editor's initialize is spared: the waiting server, or the next, answers it.
        self.answered += r.fail_pending(LSPErrorCodes.RequestFailed, self._why,
                                        spare_initialize=True, empty_for=SAVE_PATH_METHODS)
        s.lifecycle.to(Phase.WAITING)
        s.spawn_evidence(self._evidence_then_tell)
        s.spawn(self._watch)

    def on_editor_message(self, frame: Frame, msg: Message) -> None:
        """An editor message that arrives while the server waits (the relay has booked it, and
        handled shutdown and exit): a request is answered at once, a notification is kept for
        the waiting server."""
        if msg.id is not None:
            self.answered += 1
            self.relay.fail_request(msg.id, msg.method or "", LSPErrorCodes.RequestFailed,
                                    self._why, empty_for=SAVE_PATH_METHODS)
            return
        if self.backlog is not None:
            self.backlog.append(frame.raw)
            if len(self.backlog) > _BACKLOG_LIMIT:
                self.backlog = None

    def _why(self, method: str) -> str:
        """The error a request gets while the server waits (the save path gets an empty
        result instead: saving never waits)."""
        return f"{method}: {self.cause.sentence} Fix: {self.cause.fix}"

    async def _evidence_then_tell(self) -> None:
        s, r = self.host, self.relay
        bundle = await s.take_evidence(self.verdict, r.backend)
        # The spec allows window/showMessage while the editor's initialize is still unanswered:
        # the user stuck at "Initializing..." is told why, too.
        may_tell = r.editor_ready() or r.mirror.initialize_params is not None
        if self.cleared is not None or not may_tell or self.cause.signature in s.told_causes:
            return
        s.told_causes.add(self.cause.signature)
        where = f" Incident report: {bundle}" if bundle else ""
        r.outbox.notify_client("window/showMessage", {
            "type": MessageType.Warning,
            "message": f"lspguard: {self.cause.sentence} Fix: {self.cause.fix} Until then "
                       f"requests are answered at once, and lspguard resumes by itself.{where}"})

    # ---------------------------------------------------------------- the cause

    async def _watch(self) -> None:
        s = self.host
        with self._cancel:
            tick = s.config.watchdog.tick
            while self.cleared is None:
                await anyio.sleep(tick)
                try:
                    self.cleared = await self._clears()
                except Exception:  # a bug in watching must not end the session
                    log.exception("could not tell whether the cause cleared (asked again)")
            log.info("the cause cleared (%s) after %.1f s", self.cleared,
                     time.monotonic() - self.since)
            await self._revive()

    def cancel(self) -> None:
        self._cancel.cancel()

    async def _clears(self) -> str | None:
        """Why the cause is over, or None while it holds."""
        r = self.relay
        backend = r.backend
        if backend is None or backend.exited.is_set() or backend.pid is None:
            return "the server exited"
        culprit, blocker = self.cause.culprit, self.cause.blocker
        snap = await self.trees.snapshot(backend.pid)
        if snap is not None:
            moved = _moved_on(snap, culprit.pid, culprit.tid, culprit.syscall)
            if moved is not None:
                return moved
            if blocker.kind == "socket" and not any(
                    sock.peer == blocker.peer for sock in snap.processes[culprit.pid].sockets):
                return f"the connection to {blocker.peer} closed"
        if blocker.kind == "path" and blocker.path:
            if await self.paths.answers(blocker.path):
                return f"{blocker.path} answers again"
        elif blocker.kind == "special_file" and blocker.path:
            kind = await self.paths.file_type(blocker.path)
            if kind is not None and kind != "fifo":
                return f"{blocker.path} is no longer a FIFO"
        return None

    async def _revive(self) -> None:
        s, r = self.host, self.relay
        s.cause_restarts.pop(self.cause.signature, None)
        backend = r.backend
        alive = backend is not None and not backend.exited.is_set()
        if alive and self.keep_backend and self.backlog is not None and await self._pings():
            assert backend is not None
            for raw in self.backlog:
                backend.send(raw)
            s.lifecycle.resume(r.editor_ready())
            log.info("kept generation %d: it answers again (%d notifications caught up)",
                     r.generation, len(self.backlog))
            if r.editor_ready():
                r.outbox.notify_client("window/showMessage", {
                    "type": MessageType.Info,
                    "message": f"lspguard: gopls answers again ({self.cleared})."})
            return
        s.restart(self.verdict, fresh=True)

    async def _pings(self) -> bool:
        r = self.relay
        answered = anyio.Event()
        r.outbox.send_own_request(True, PING_METHOD, None, lambda _: answered.set())
        with anyio.move_on_after(_REVIVE_PING_S):
            await answered.wait()
        return answered.is_set()

    def as_status(self) -> dict[str, Any]:
        return {**self.cause.as_dict(), "since": self.since_wall,
                "waited_s": round(self.cause.waited_s + time.monotonic() - self.since, 1),
                "answered_at_once": self.answered}


def _moved_on(snap: TreeSnapshot, pid: int, tid: int | None, syscall: str | None) -> str | None:
    proc = snap.processes.get(pid)
    if proc is None:
        return f"process {pid} is gone"
    if tid is None:
        return None
    thread = next((t for t in proc.threads if t.tid == tid), None)
    if thread is None:
        return f"thread {tid} of process {pid} is gone"
    if thread.syscall != syscall:
        return f"process {pid} left its {syscall} call"
    return None

"""Restart a hung or crashed backend so the editor barely notices.

Order of a restart: in-flight editor requests are answered with ContentModified (VS Code drops
those silently) and the dead generation's open progress is ended. Then two things run side by
side: the evidence bundle is written from the untouched hung process, which is stopped only
afterwards; and the next backend of the escalation chain is started (tenacity retries a failed
start with backoff) and given the editor's state: the cached `initialize` (its result is not
forwarded: the editor already has one), `initialized`, the last configuration, a `didOpen` per
open document with its current text and version. Then the held editor messages are released,
the editor is asked to refresh what it supports, diagnostics only the dead generation published
are cleared once the new one has loaded, and the user is told (with the report's path).

Escalation by cause (causes/policy.py, `ESCALATION`): the first restart after a crash runs the
same backend, after a hang the hang overlay (GODEBUG=asyncpreemptoff=1), after an OOM kill
GOMEMLIMIT below the memory limit; later ones walk the fallback chain, except that a second OOM
kill stops the restarts with the fix (more memory, or less to load). A budget (max restarts per
window) ends the restarts: the editor stays connected, requests get a clear error, and the user
is told once.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import anyio

from lspguard.causes.policy import Escalation, Step
from lspguard.errors import BackendError
from lspguard.protocol.codes import LSPErrorCodes, MessageType
from lspguard.proxy.lifecycle import Phase
from lspguard.proxy.pending import Direction
from lspguard.supervise.verdict import Verdict, VerdictKind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lspguard.proxy.backend import Backend
    from lspguard.supervise.host import Supervised

__all__ = ["HandshakeWatch", "Recovery", "RestartBlocked", "RestartBudget", "merge_env"]

log = logging.getLogger(__name__)

# Diagnostics of a dead generation are cleared once the new one finished its first work, or
# after this many seconds, whichever comes first.
_DIAGNOSTICS_SETTLE_S = 15.0
_REFRESH = (  # (client capability path, request)
    (("workspace", "semanticTokens", "refreshSupport"), "workspace/semanticTokens/refresh"),
    (("workspace", "inlayHint", "refreshSupport"), "workspace/inlayHint/refresh"),
    (("workspace", "codeLens", "refreshSupport"), "workspace/codeLens/refresh"),
    (("workspace", "diagnostics", "refreshSupport"), "workspace/diagnostic/refresh"),
)


class RestartBlocked(Exception):
    """The restarted server waits on a cause too (its verdict): do not start another."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.summary)
        self.verdict = verdict


class HandshakeWatch:
    """Watches a restarted server while it takes the replayed state: a filesystem, FIFO or
    kernel wait that lasts `external_wait` is a verdict at once (its cause), and a handshake
    that times out gets the cause found then."""

    def __init__(self, host: Supervised, backend: Backend) -> None:
        from lspguard.causes.classify import CauseFinder
        from lspguard.causes.probe import TreeProber

        self.host, self.backend = host, backend
        wd = host.config.watchdog
        self.finder = CauseFinder(host.backend_name(), wd.busy_cpu_percent, wd.external_wait)
        self.prober = TreeProber(wd.probe_timeout)
        self.started = time.monotonic()
        self.verdict: Verdict | None = None
        self._snap: Any = None
        self._own = anyio.CancelScope()

    def stop(self) -> None:
        self._own.cancel()

    async def run(self, replay: anyio.CancelScope) -> None:
        with self._own:
            await self._watch(replay)

    async def _watch(self, scope: anyio.CancelScope) -> None:
        s = self.host
        wd = s.config.watchdog
        while True:
            await anyio.sleep(wd.tick)
            if self.backend.pid is None:
                continue
            snap = await self.prober.snapshot(self.backend.pid)
            if snap is None:
                continue
            now = time.monotonic()
            try:
                self.finder.observe(snap, now)
                cause = self.finder.early(snap, now, wd.external_wait)
            except Exception:  # a bug in judging must not end the session
                log.exception("could not judge the restarted server (skipped)")
                continue
            self._snap = snap
            if cause is not None:
                self.verdict = self._make(cause, now)
                scope.cancel()
                return

    def verdict_now(self) -> Verdict | None:
        """The cause of a handshake that timed out (a deadlock when nothing outside shows);
        None when there is nothing to judge (no snapshot yet, or the server has exited)."""
        s = self.host
        if self._snap is None or not self._snap.alive or self.backend.exited.is_set():
            return None
        now = time.monotonic()
        try:
            cause = self.finder.find(self._snap, now, s.config.watchdog.external_wait)
        except Exception:  # a bug in judging must not end the session: the restart goes on
            log.exception("could not judge the restarted server's handshake")
            return None
        return self._make(cause, now)

    def _make(self, cause: Any, now: float) -> Verdict:
        waited = now - self.started
        kind = VerdictKind(cause.cls.value) if cause.cls.external else \
            VerdictKind.HANDSHAKE_TIMEOUT
        summary = cause.sentence if cause.cls.external else (
            f"The restarted language server did not take the replayed initialize within "
            f"{waited:.0f} s: {cause.sentence}")
        return Verdict(kind, summary, self.backend.generation,
                       {"method": "initialize", "age_s": round(waited, 1), "restart": True},
                       cause=cause)


class RestartBudget:
    """At most `limit` restarts within `window` seconds (vscode-languageclient: 4 in 3 min)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.times: deque[float] = deque()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


def merge_env(base: Mapping[str, str], overlay: Mapping[str, str],
              inherited: Mapping[str, str]) -> dict[str, str]:
    """`base` + `overlay`; GODEBUG settings are merged with what is already set, not replaced."""
    env = dict(base)
    for key, value in overlay.items():
        current = env.get(key, inherited.get(key, "")) if key == "GODEBUG" else ""
        env[key] = ",".join(p for p in (current, value) if p)
    return env


class Recovery:
    def __init__(self, host: Supervised) -> None:
        self.host, self.relay = host, host.relay
        restart = host.config.restart
        self.budget = RestartBudget(restart.max_restarts, restart.window)
        self.tried: Counter[Escalation] = Counter()  # restarts per row of ESCALATION
        self.fallbacks = 0  # fallback backends used so far (the next one's index)
        self.memory_env: dict[str, str] = {}  # GOMEMLIMIT once an OOM kill asked for it
        self.stopped_for: Verdict | None = None  # the verdict after which no restart helps
        self.restarts = 0
        self.last_duration_s: float | None = None
        self.revivals = 0  # tries since degraded mode began (indexes the revive backoff)

    def next_backend(self, step: Step) -> tuple[list[str], dict[str, str], str]:
        """argv, env overlay and label for one restart (policy.py's `Step`). A heap limit set
        after an OOM kill stays on every later generation: the workspace still needs it."""
        s = self.host
        restart = s.config.restart
        base = {**s.config.backend.env, **self.memory_env}
        chain = restart.fallback
        if step is Step.FALLBACK and chain:
            index = min(self.fallbacks, len(chain) - 1)
            self.fallbacks += 1
            chosen = chain[index]
            env = merge_env({**chosen.env, **self.memory_env}, restart.hang_env, os.environ)
            return list(chosen.command), env, f"fallback {chosen.label}"
        if step is Step.MEMORY_LIMIT:
            limit = self.host.memory_limit_for_restart()
            if limit is not None:
                self.memory_env = {"GOMEMLIMIT": limit}
                return s.command, {**base, **self.memory_env}, f"primary + GOMEMLIMIT={limit}"
            return s.command, base, "primary"
        if step is Step.PRIMARY:
            return s.command, base, "primary"
        # the hang overlay; also FALLBACK with no chain configured
        return s.command, merge_env(base, restart.hang_env, os.environ), \
            "primary + hang overlay"

    def next_step(self, verdict: Verdict) -> Step:
        """The step of `ESCALATION` for this verdict's kind of cause: its first restart, then
        every later one."""
        from lspguard.causes.policy import ESCALATION, policy_for

        row = policy_for(verdict.kind.value).escalation
        first, later = ESCALATION[row]
        step = first if self.tried[row] == 0 else later
        self.tried[row] += 1
        return step

    async def recover(self, verdict: Verdict, fresh: bool = False) -> None:
        """Restart after `verdict`. Evidence is taken from the hung process while the next
        generation starts (it is killed only once its bundle is written), so the editor waits
        about one cold start, not a cold start plus an strace sample. `fresh`: a revival (a
        cause that cleared, a retry from degraded mode): the primary backend with a new budget,
        and no new bundle."""
        s, r = self.host, self.relay
        began = time.monotonic()
        dead, dead_gen = r.backend, r.generation
        self._answer_in_flight(dead_gen)
        for token in r.effects.take_open_progress(dead_gen):
            r.outbox.notify_client("$/progress", {"token": token, "value": {"kind": "end"}})
        bundle: list[str] = []
        evidence_in = anyio.Event()
        if not fresh:
            s.spawn_evidence(self._evidence_then_stop, verdict, dead, bundle, evidence_in)
        else:  # a revival: the evidence was taken when the verdict came
            evidence_in.set()
            if dead is not None:
                s.spawn_evidence(dead.stop, min(s.config.proxy.stop_timeout, 1.0))
        expiry = anyio.CancelScope()
        s.spawn(self._expire_held, expiry)
        try:
            outcome = await self._escalate(verdict, fresh)
        finally:
            expiry.cancel()
        if isinstance(outcome, Verdict):  # the new server waits on a cause outside it
            s.wait_on(outcome, keep_backend=False)
            r.release_held()  # into the waiting: answered at once
            return
        label = outcome
        if label is None:
            await evidence_in.wait()  # the message names the incident report
            self._degrade(verdict, bundle[0] if bundle else None)
            return
        self.restarts += 1
        self.revivals = 0
        s.lifecycle.resume(r.editor_ready())
        r.release_held()
        if r.backend is not None:
            s.report_exit(r.backend)  # it died while the restart was being finished
        self.last_duration_s = round(time.monotonic() - began, 3)
        log.info("recovered in %.2f s: generation %d (%s)", self.last_duration_s, r.generation,
                 label)
        self._refresh_client()
        s.spawn(self._clear_stale_diagnostics, dead_gen)
        await evidence_in.wait()
        self._tell_user(verdict, label, bundle[0] if bundle else None)

    async def _evidence_then_stop(self, verdict: Verdict, dead: Backend | None,
                                  bundle: list[str], done: anyio.Event) -> None:
        """Write the bundle from the untouched dead process, then stop it. Runs beside the
        restart: the editor does not wait for evidence."""
        s = self.host
        try:
            path = await s.take_evidence(verdict, dead)
            if path:
                bundle.append(path)
        finally:
            done.set()
            if dead is not None:
                await dead.stop(min(s.config.proxy.stop_timeout, 1.0))

    async def _expire_held(self, scope: anyio.CancelScope) -> None:
        r = self.relay
        with scope:
            while True:
                await anyio.sleep(0.25)
                r.expire_held(time.monotonic())

    async def _escalate(self, verdict: Verdict, fresh: bool) -> str | Verdict | None:
        """Start the next backend of the chain until one takes the editor's state; its label,
        None once the restart budget is spent, or the verdict on a new server that waits on a
        cause outside it (restarting again would only pile up servers stuck the same way)."""
        s, r = self.host, self.relay
        manual = fresh or verdict.kind is VerdictKind.MANUAL
        if manual:  # start afresh, with the plain primary and a new budget
            self.tried.clear()
            self.fallbacks = 0
            self.stopped_for = None
            self.budget.times.clear()
            if self.revivals and verdict.kind is not VerdictKind.MANUAL:
                # a try from degraded mode: one start, then back to waiting for the next try
                self.budget.times.extend([time.monotonic()] * max(0, self.budget.limit - 1))
        while True:
            step = Step.PRIMARY if manual else self.next_step(verdict)
            if step is Step.STOP:
                self.stopped_for = verdict
                return None
            if not manual and not self.budget.take():
                return None
            manual = False
            argv, env, label = self.next_backend(step)
            try:
                await self._start_and_replay(argv, env, label)
                return label
            except RestartBlocked as blocked:
                s.verdicts.append(blocked.verdict)
                log.warning("restart with %s: %s", label, blocked.verdict.summary)
                return blocked.verdict
            except BackendError as exc:
                log.error("restart with %s failed: %s", label, exc)
                s.verdicts.append(Verdict(VerdictKind.CRASHED,
                                          f"Restarting with {label} failed: {exc}.",
                                          r.generation))

    def _answer_in_flight(self, dead_gen: int) -> None:
        r = self.relay
        for req in r.pending.in_direction(Direction.CLIENT_TO_SERVER):
            if req.method == "initialize":
                continue  # answered with the new generation's result by _replay
            if req.generation <= dead_gen:
                r.pending.pop(Direction.CLIENT_TO_SERVER, req.id)
                r.outbox.reply_client(req.id, error=(LSPErrorCodes.ContentModified,
                                                     "the language server was restarted"))

    async def _start_and_replay(self, argv: list[str], env: dict[str, str], label: str) -> None:
        import tenacity  # only a restart needs it: not imported by every proxy start

        s, r = self.host, self.relay
        restart = s.config.restart
        progress = await self._begin_progress(label)
        try:
            async for attempt in tenacity.AsyncRetrying(
                    stop=tenacity.stop_after_attempt(restart.start_attempts),
                    wait=tenacity.wait_exponential(multiplier=restart.backoff_initial,
                                                   max=restart.backoff_max),
                    retry=tenacity.retry_if_exception_type(BackendError),
                    sleep=anyio.sleep, reraise=True):
                with attempt:
                    await self._start_once(argv, env, label)
        finally:
            if progress is not None:
                r.outbox.notify_client("$/progress",
                                       {"token": progress, "value": {"kind": "end"}})

    async def _start_once(self, argv: list[str], env: dict[str, str], label: str) -> None:
        s = self.host
        backend = await s.start_backend(argv, env, label)
        watch = HandshakeWatch(s, backend)
        replay = anyio.CancelScope()  # cancelled by the watch on a cause outside the server
        s.spawn(watch.run, replay)
        try:
            with replay, anyio.fail_after(s.config.watchdog.handshake_timeout):
                await self._replay()
        except (TimeoutError, BackendError, OSError) as exc:
            blocked = watch.verdict or watch.verdict_now()
            if blocked is not None and blocked.external:
                raise RestartBlocked(blocked) from exc  # keep it: the waiting watches it
            await backend.stop(0.5)
            raise BackendError(f"{label} did not take the replayed state: "
                               f"{exc or 'initialize timed out'}") from exc
        finally:
            watch.stop()
        if watch.verdict is not None:
            raise RestartBlocked(watch.verdict)

    async def _replay(self) -> None:
        """Give the new generation the editor's state, in protocol order."""
        r = self.relay
        mirror = r.mirror
        backend = r.backend
        assert backend is not None
        if mirror.initialize_params is None:
            return  # the editor never initialized: it will do so itself
        exited = backend.exited

        async def ask(method: str, params: Any) -> Any:
            async with anyio.create_task_group() as tg:
                async def died() -> None:
                    await exited.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(died)
                answer = await r.outbox.request_server(method, params)
                tg.cancel_scope.cancel()
                return answer
            raise BackendError(f"the backend {backend.describe_exit()} during {method}")

        answer = await ask("initialize", mirror.initialize_params_for_restart())
        if "error" in answer:
            raise BackendError(f"initialize failed: {answer['error']}")
        if mirror.initialize_result is None:
            self._answer_editor_initialize(answer)
        else:
            self._compare_capabilities(answer.get("result") or {})
        if not mirror.initialized:
            return
        send = r.outbox.send_server
        send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        if mirror.configuration is not None:
            send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                  "params": mirror.configuration})
        for doc in mirror.documents():
            send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
                "textDocument": {"uri": doc.uri, "languageId": doc.language_id,
                                 "version": doc.version, "text": doc.text}}})

    def _answer_editor_initialize(self, answer: dict[str, Any]) -> None:
        """The editor's own initialize was in flight when the first backend hung: this answer
        is the one it waits for (anything else would make VS Code give up on the server)."""
        r = self.relay
        for req in r.pending.in_direction(Direction.CLIENT_TO_SERVER):
            if req.method == "initialize":
                r.pending.pop(Direction.CLIENT_TO_SERVER, req.id)
                r.handshake.on_initialize_answered()
                r.mirror.on_initialize_result(answer.get("result"))
                r.outbox.reply_client(req.id, result=answer.get("result"))

    def _compare_capabilities(self, result: dict[str, Any]) -> None:
        r = self.relay
        before = (r.mirror.initialize_result or {}).get("capabilities") or {}
        after = result.get("capabilities") or {}
        lost = sorted(k for k in before if k not in after)
        gained = sorted(k for k in after if k not in before)
        if lost or gained:
            log.warning("the new backend's capabilities differ: lost %s, gained %s "
                        "(the editor keeps the first backend's)", lost, gained)

    async def _begin_progress(self, label: str) -> str | None:
        r = self.relay
        if not r.editor_ready() or not r.mirror.client_supports("window", "workDoneProgress"):
            return None
        token = f"lspguard-restart-{r.generation + 1}"
        with anyio.move_on_after(2.0):
            await r.outbox.request_client("window/workDoneProgress/create", {"token": token})
        r.outbox.notify_client("$/progress", {"token": token, "value": {
            "kind": "begin", "title": "Restarting gopls…", "message": label,
            "cancellable": False}})
        return token

    def _tell_user(self, verdict: Verdict, label: str, bundle: str | None) -> None:
        r = self.relay
        if not r.editor_ready():
            return  # restarted before the editor initialized: the session log has it
        where = f" Incident report: {bundle}" if bundle else ""
        r.outbox.notify_client("window/showMessage", {
            "type": MessageType.Warning,
            "message": f"lspguard restarted gopls ({label}): {verdict.summary}{where}"})

    def _degrade(self, verdict: Verdict, bundle: str | None) -> None:
        s, r = self.host, self.relay
        if r.backend is not None and not r.backend.exited.is_set():
            r.backend.signal_group(signal.SIGKILL)  # a half-started generation
        budget = s.config.restart
        stopped = self.stopped_for
        if stopped is not None:  # no restart can help (policy.py: Step.STOP)
            reason = f"gopls is not running: {stopped.facts.get('stop_reason') or stopped.summary}"
        else:
            reason = (f"gopls is not running: it failed {len(self.budget.times)} times within "
                      f"{budget.window:.0f} s and lspguard stopped restarting it "
                      f"(last: {(s.verdicts[-1] if s.verdicts else verdict).summary})")
        if bundle:
            reason += f"; incident report: {bundle}"
        r.backend = None
        r.degraded_reason = reason
        s.lifecycle.to(Phase.DEGRADED)
        backoff = s.config.restart.revive_backoff
        delay = backoff[min(self.revivals, len(backoff) - 1)]
        if stopped is not None:  # trying again later would only be killed again
            log.error("%s", r.degraded)
            again = "`lspguard restart` or reloading the window tries again."
        else:
            log.error("%s; trying again in %.0f s", r.degraded, delay)
            again = (f"lspguard tries again in {delay:.0f} s; `lspguard restart` or reloading "
                     "the window tries now.")
            s.spawn(self._revive_later, verdict, delay)
        if r.editor_ready() and self.revivals == 0:  # else its initialize is failed below
            r.outbox.notify_client("window/showMessage", {
                "type": MessageType.Error, "message": f"lspguard: {r.degraded}. {again}"})
        for req in r.pending.in_direction(Direction.CLIENT_TO_SERVER):  # e.g. its initialize
            r.pending.pop(Direction.CLIENT_TO_SERVER, req.id)
            r.outbox.reply_client(req.id, error=(LSPErrorCodes.RequestFailed,
                                                 f"{req.method} failed: {r.degraded}"))
        r.release_held()  # held requests now fail clearly; notifications are mirrored

    async def _revive_later(self, verdict: Verdict, delay: float) -> None:
        """Degraded is not forever: after `delay`, one more try with the primary backend."""
        s, r = self.host, self.relay
        await anyio.sleep(delay)
        if not r.degraded or s.end_reason or r.recovering:
            return
        self.revivals += 1
        log.info("degraded for %.0f s: trying gopls again (try %d)", delay, self.revivals)
        s.restart(verdict, fresh=True)

    def _refresh_client(self) -> None:
        r = self.relay
        if not r.editor_ready():
            return
        for path, method in _REFRESH:
            if r.mirror.client_supports(*path):
                r.outbox.send_own_request(False, method, None)

    async def _clear_stale_diagnostics(self, dead_gen: int) -> None:
        r = self.relay
        with anyio.move_on_after(_DIAGNOSTICS_SETTLE_S):
            await r.effects.idle.wait()
        for uri in r.effects.stale_diagnostics(set(range(1, dead_gen + 1))):
            r.outbox.notify_client("textDocument/publishDiagnostics",
                                   {"uri": uri, "diagnostics": []})

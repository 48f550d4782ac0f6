"""Restart a hung or crashed backend so the editor barely notices.

Order of a restart: in-flight editor requests are answered with ContentModified (VS Code drops
those silently) and the dead generation's open progress is ended. Then two things run side by
side: the evidence bundle is written from the untouched hung process, which is stopped only
afterwards; and the next backend of the escalation chain (escalation.py) is started (tenacity
retries a failed start with backoff) and given the editor's state (handover.py). Then the held
editor messages are released, the editor is asked to refresh what it supports, diagnostics only
the dead generation published are cleared once the new one has loaded, and the user is told
(with the report's path). Once the restart budget is spent, degraded mode (degraded.py).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio

from lspguard.causes.policy import Step
from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.errors import BackendError
from lspguard.protocol.codes import LSPErrorCodes, MessageType
from lspguard.supervise.degraded import DegradedMode
from lspguard.supervise.escalation import RestartBudget, RestartPlan, merge_env
from lspguard.supervise.handover import RestartBlocked, take_over

if TYPE_CHECKING:
    from lspguard.proxy.backend import Backend
    from lspguard.supervise.host import Supervised

__all__ = ["Recovery", "RestartBudget", "merge_env"]

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


class Recovery:
    def __init__(self, host: Supervised) -> None:
        self.host, self.relay = host, host.relay
        self.plan = RestartPlan(host)
        self.degraded = DegradedMode(host, self.plan)
        self.restarts = 0
        self.last_duration_s: float | None = None

    def next_step(self, verdict: Verdict) -> Step:
        """The step of the escalation for `verdict` (escalation.py)."""
        return self.plan.next_step(verdict)

    def next_backend(self, step: Step) -> tuple[list[str], dict[str, str], str]:
        """argv, env overlay and label for one restart (escalation.py)."""
        return self.plan.next_backend(step)

    async def recover(self, verdict: Verdict, fresh: bool = False) -> None:
        """Restart after `verdict`. Evidence is taken from the hung process while the next
        generation starts (it is killed only once its bundle is written), so the editor waits
        about one cold start, not a cold start plus an strace sample. `fresh`: a revival (a
        cause that cleared, a retry from degraded mode): the primary backend with a new budget,
        and no new bundle."""
        s, r = self.host, self.relay
        began = time.monotonic()
        dead, dead_gen = r.backend, r.generation
        # The editor's initialize is spared: the new generation's answer is its answer.
        r.fail_pending(LSPErrorCodes.ContentModified, "the language server was restarted",
                       up_to_generation=dead_gen, spare_initialize=True)
        r.end_progress(dead_gen)
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
            self.degraded.enter(verdict, bundle[0] if bundle else None)
            return
        self.restarts += 1
        self.degraded.revivals = 0
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
            # a try from degraded mode: one start, then back to waiting for the next try
            self.plan.renew(one_try=bool(self.degraded.revivals)
                            and verdict.kind is not VerdictKind.MANUAL)
        while True:
            step = Step.PRIMARY if manual else self.next_step(verdict)
            if step is Step.STOP:
                self.plan.stopped_for = verdict
                return None
            if not manual and not self.plan.budget.take():
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
                    await take_over(s, argv, env, label)
        finally:
            if progress is not None:
                r.outbox.notify_client("$/progress",
                                       {"token": progress, "value": {"kind": "end"}})

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
            await r.until_loaded()
        r.clear_diagnostics(dead_gen)

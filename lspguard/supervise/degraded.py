"""Degraded mode: the restarts are over, for now; the editor stays connected.

Once the restart budget is spent (or no restart can help: policy.py's `Step.STOP`), the
half-started generation is killed and the relay answers every request with a clear error
(proxy/downtime.py's `degrade`); the user is told once, with the incident report. Degraded is not
forever: after a backoff, one more try with the primary backend (unless no restart can help);
`lspguard restart` or reloading the window tries at once.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import anyio

from lspguard.protocol.codes import LSPErrorCodes, MessageType
from lspguard.proxy.lifecycle import Phase

if TYPE_CHECKING:
    from lspguard.causes.verdict import Verdict
    from lspguard.supervise.escalation import RestartPlan
    from lspguard.supervise.host import Supervised

__all__ = ["DegradedMode"]

log = logging.getLogger("lspguard.supervise.recovery")  # recovery's steps keep one log name


class DegradedMode:
    def __init__(self, host: Supervised, plan: RestartPlan) -> None:
        self.host, self.plan = host, plan
        self.revivals = 0  # tries since degraded mode began (indexes the revive backoff)

    def _reason(self, verdict: Verdict, bundle: str | None) -> str:
        """Why gopls is not running: what every request's error and the user are told."""
        s = self.host
        stopped = self.plan.stopped_for
        if stopped is not None:  # no restart can help (policy.py: Step.STOP)
            reason = f"gopls is not running: {stopped.facts.get('stop_reason') or stopped.summary}"
        else:
            reason = (f"gopls is not running: it failed {self.plan.budget.spent} times within "
                      f"{s.config.restart.window:.0f} s and lspguard stopped restarting it "
                      f"(last: {(s.verdicts[-1] if s.verdicts else verdict).summary})")
        if bundle:
            reason += f"; incident report: {bundle}"
        return reason

    def enter(self, verdict: Verdict, bundle: str | None) -> None:
        """The restarts after `verdict` are over (its incident report: `bundle`)."""
        s = self.host
        relay = s.relay
        backend = relay.backend
        if backend is not None and not backend.exited.is_set():
            backend.signal_group(signal.SIGKILL)  # a half-started generation
        reason = self._reason(verdict, bundle)
        relay.degrade(reason)
        backoff = s.config.restart.revive_backoff
        delay = backoff[min(self.revivals, len(backoff) - 1)]
        if self.plan.stopped_for is not None:  # trying again later would only be killed again
            log.error("%s", reason)
            again = "`lspguard restart` or reloading the window tries again."
        else:
            log.error("%s; trying again in %.0f s", reason, delay)
            again = (f"lspguard tries again in {delay:.0f} s; `lspguard restart` or reloading "
                     "the window tries now.")
            s.spawn(self._revive_later, verdict, delay)
        if relay.editor_ready() and self.revivals == 0:  # else its initialize fails below
            relay.outbox.notify_client("window/showMessage", {
                "type": MessageType.Error, "message": f"lspguard: {reason}. {again}"})
        # Requests in flight (e.g. its initialize) and held ones now fail clearly.
        relay.fail_pending(LSPErrorCodes.RequestFailed, lambda method: f"{method} failed: {reason}")
        relay.release_held()  # notifications are mirrored

    async def _revive_later(self, verdict: Verdict, delay: float) -> None:
        """Degraded is not forever: after `delay`, one more try with the primary backend."""
        s = self.host
        await anyio.sleep(delay)
        if s.lifecycle.phase is not Phase.DEGRADED or s.end_reason:
            return
        self.revivals += 1
        log.info("degraded for %.0f s: trying gopls again (try %d)", delay, self.revivals)
        s.restart(verdict, fresh=True)

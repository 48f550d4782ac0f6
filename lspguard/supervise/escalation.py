"""Which backend the next restart runs, and whether one may run at all.

Escalation by cause (causes/policy.py, `ESCALATION`): the first restart after a crash runs the
same backend, after a hang the hang overlay (GODEBUG=asyncpreemptoff=1), after an OOM kill
GOMEMLIMIT below the memory limit; later ones walk the fallback chain, except that a second OOM
kill stops the restarts with the fix (more memory, or less to load). A budget (max restarts per
window) ends the restarts (degraded.py).
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Protocol

from lspguard.causes.policy import Escalation, Step

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lspguard.causes.verdict import Verdict
    from lspguard.config.model import Config

__all__ = ["RestartBudget", "RestartPlan", "merge_env"]


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

    @property
    def spent(self) -> int:
        """Restarts taken within the window (as of the last `take`)."""
        return len(self.times)

    def renew(self, *, one_try: bool = False, now: float | None = None) -> None:
        """A full budget again; `one_try`: room for one restart only (a try from degraded
        mode: one start, then back to waiting for the next try)."""
        self.times.clear()
        if one_try:
            now = time.monotonic() if now is None else now
            self.times.extend([now] * max(0, self.limit - 1))


def merge_env(base: Mapping[str, str], overlay: Mapping[str, str],
              inherited: Mapping[str, str]) -> dict[str, str]:
    """`base` + `overlay`; GODEBUG settings are merged with what is already set, not replaced."""
    env = dict(base)
    for key, value in overlay.items():
        current = env.get(key, inherited.get(key, "")) if key == "GODEBUG" else ""
        env[key] = ",".join(p for p in (current, value) if p)
    return env


class PlanHost(Protocol):
    """What choosing the next backend needs of the session."""

    config: Config
    command: list[str]

    def memory_limit_for_restart(self) -> str | None:
        """GOMEMLIMIT for a restart after an OOM kill, or None."""


class RestartPlan:
    """The escalation so far: restarts per row of ESCALATION, fallbacks used, the budget."""

    def __init__(self, host: PlanHost) -> None:
        self.host = host
        restart = host.config.restart
        self.budget = RestartBudget(restart.max_restarts, restart.window)
        self.tried: Counter[Escalation] = Counter()  # restarts per row of ESCALATION
        self.fallbacks = 0  # fallback backends used so far (the next one's index)
        self.memory_env: dict[str, str] = {}  # GOMEMLIMIT once an OOM kill asked for it
        self.stopped_for: Verdict | None = None  # the verdict after which no restart helps

    def renew(self, *, one_try: bool = False) -> None:
        """Start afresh, from the plain primary, with a new budget (`one_try`: RestartBudget)."""
        self.tried.clear()
        self.fallbacks = 0
        self.stopped_for = None
        self.budget.renew(one_try=one_try)

    def next_step(self, verdict: Verdict) -> Step:
        """The step of `ESCALATION` for this verdict's kind of cause: its first restart, then
        every later one."""
        from lspguard.causes.policy import ESCALATION, policy_for

        row = policy_for(verdict.kind.value).escalation
        first, later = ESCALATION[row]
        step = first if self.tried[row] == 0 else later
        self.tried[row] += 1
        return step

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
            limit = s.memory_limit_for_restart()
            if limit is not None:
                self.memory_env = {"GOMEMLIMIT": limit}
                return s.command, {**base, **self.memory_env}, f"primary + GOMEMLIMIT={limit}"
            return s.command, base, "primary"
        if step is Step.PRIMARY:
            return s.command, base, "primary"
        # the hang overlay; also FALLBACK with no chain configured
        return s.command, merge_env(base, restart.hang_env, os.environ), \
            "primary + hang overlay"

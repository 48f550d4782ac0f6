"""A trace turned into a replay plan: the client messages to send, in order, each with the
answers it must wait for; the recorded response of every client request; and the editor's
recorded answers to server requests (by method, in order), with defaults for what is missing.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lspguard.replay.report import RequestOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anyio

    from lspguard.trace.format import Trace, TraceEntry

__all__ = ["Plan", "Planned", "Step"]

# What an editor says when the recording has no answer for a server request.
_DEFAULT_ANSWERS: dict[str, Any] = {
    "client/registerCapability": None, "client/unregisterCapability": None,
    "window/workDoneProgress/create": None, "window/showMessageRequest": None,
    "window/showDocument": {"success": False},
    "workspace/applyEdit": {"applied": False, "failureReason": "lspguard replay applies no edits"},
    "workspace/codeLens/refresh": None, "workspace/semanticTokens/refresh": None,
    "workspace/inlayHint/refresh": None, "workspace/inlineValue/refresh": None,
    "workspace/diagnostic/refresh": None, "workspace/foldingRange/refresh": None,
}


@dataclass(slots=True, eq=False)
class Planned:
    """A client request of the trace: what was recorded, and its live state in the replay."""

    entry: TraceEntry
    outcome: RequestOutcome
    recorded: dict[str, Any] | None = None  # the recorded response message
    by_proxy: bool = False
    cancelled: bool = False
    sent_at: float | None = None
    response: dict[str, Any] | None = None
    answered: anyio.Event | None = None


@dataclass(slots=True)
class Step:
    entry: TraceEntry
    wait_for: list[Planned]
    request: Planned | None = None


class Plan:
    """The trace turned into steps to send, expected answers, and server-request answers."""

    def __init__(self, trace: Trace) -> None:
        self.steps: list[Step] = []
        self.requests: list[Planned] = []
        self.answers: dict[str, deque[dict[str, Any]]] = {}
        self.notifications: Counter[str] = Counter()
        self.timed = any(e.t > 0 for e in trace.entries)
        pending: dict[int | str, Planned] = {}
        own: set[int | str] = set()
        server_pending: dict[int | str, str] = {}
        answered: list[Planned] = []
        initialize: Planned | None = None
        for e in trace.entries:
            kind = e.kind
            if e.dir == "c2s" and kind == "response":
                method = server_pending.pop(e.id, None) if e.id is not None else None
                if method is not None:
                    part = {k: v for k, v in e.msg.items() if k in ("result", "error")}
                    self.answers.setdefault(method, deque()).append(part)
            elif e.dir == "c2s":
                wait_for, answered = answered, []
                if initialize is not None and all(w is not initialize for w in wait_for):
                    wait_for.append(initialize)
                step = Step(e, wait_for)
                if kind == "request" and e.id is not None:
                    planned = Planned(e, RequestOutcome(e.id, e.method or "?", e.line))
                    pending[e.id] = step.request = planned
                    self.requests.append(planned)
                    if e.method == "initialize" and initialize is None:
                        initialize = planned
                elif e.method == "$/cancelRequest":
                    params = e.msg.get("params")
                    target_id = params.get("id") if isinstance(params, dict) else None
                    target = pending.get(target_id) if isinstance(target_id, int | str) else None
                    if target is not None:
                        target.cancelled = True
                self.steps.append(step)
            elif e.dir == "p2s" and kind == "request" and e.id is not None:
                own.add(e.id)
            elif kind == "response" and e.id is not None:
                if e.id in own and e.dir == "s2c":
                    own.discard(e.id)
                    continue
                planned_req = pending.pop(e.id, None)
                if planned_req is not None:
                    planned_req.recorded, planned_req.by_proxy = e.msg, e.dir == "p2c"
                    if self.timed:
                        planned_req.outcome.recorded_ms = (e.t - planned_req.entry.t) * 1000
                    answered.append(planned_req)
            elif e.dir == "s2c" and kind == "request" and e.id is not None:
                server_pending[e.id] = e.method or ""
            elif e.dir == "s2c":
                self.notifications[e.method or "?"] += 1

    def answer(self, method: str, params: Any, workspace_folders: Sequence[str]
               ) -> tuple[dict[str, Any], str]:
        """The editor's answer to a server request ({"result": ...} or {"error": ...}) and where
        it came from: the trace (in order; the last one is reused), a default, or none."""
        queue = self.answers.get(method)
        if queue:
            part = queue.popleft() if len(queue) > 1 else queue[0]
            if method == "workspace/configuration":
                part = _fit_configuration(part, params)
            return part, "from the trace"
        if method == "workspace/configuration":
            return _fit_configuration({"result": []}, params), "default"
        if method == "workspace/workspaceFolders":
            return {"result": [{"uri": f, "name": Path(unquote(urlparse(f).path)).name}
                               for f in workspace_folders]}, "default"
        if method in _DEFAULT_ANSWERS:
            return {"result": _DEFAULT_ANSWERS[method]}, "default"
        return {"error": {"code": -32601, "message": f"lspguard replay: no answer for {method} "
                                                      "in the trace"}}, "method not found"


def _fit_configuration(part: dict[str, Any], params: Any) -> dict[str, Any]:
    """One configuration value per item asked for (gopls asks per workspace folder)."""
    items = params.get("items") if isinstance(params, dict) else None
    wanted = len(items) if isinstance(items, list) else 1
    result = part.get("result")
    if "error" in part or not isinstance(result, list):
        return part
    values = list(result[:wanted])
    values += [values[-1] if values else {}] * (wanted - len(values))
    return {"result": values}

"""What a replay found: per-request outcomes, structural diffs, the verdict, and how to show them.

Comparison rules (documented in `lspguard replay --help` too):

* Responses are matched to requests by id (replay sends the recorded ids unchanged).
* A result is compared with the recorded one structurally after root mapping; keys named in
  `VOLATILE_KEYS` are ignored wherever they appear (``data``: opaque server state such as
  completion-resolve or code-action tokens), and so are the per-method paths in
  `VOLATILE_PATHS` (``serverInfo.version`` of ``initialize``: gopls puts its build info there).
  Everything else counts, hover text included: links with module versions in a gopls hover are
  part of the answer, so a different module cache is a real divergence.
* The edits of a WorkspaceEdit's ``documentChanges`` to different documents are compared by
  document URI, not by position in the list (gopls builds them from a map: their order varies
  from run to run, and edits to different files are independent). A list that also creates,
  renames or deletes files keeps its order, which then matters.
* Two errors are equal when their messages are equal; codes are not compared (gopls answers most
  failures with code 0, and its own log does not record codes).
* Requests the client cancelled, and requests lspguard answered itself during a restart, are not
  compared. A redacted trace (recorded without --include-text) is compared by shape only:
  answered with a result or an error, as in the recording.
* Server notifications (diagnostics, progress, logs) are counted, never compared: they are
  asynchronous and their number depends on timing.
"""

from __future__ import annotations

import difflib
import json
import statistics
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIVERGENCE", "EXIT_HANG", "EXIT_SAME", "VOLATILE_KEYS",
           "VOLATILE_PATHS", "ReplayReport", "RequestOutcome", "canonical", "diff_values"]

EXIT_SAME: Final = 0
EXIT_DIVERGENCE: Final = 1
EXIT_HANG: Final = 2
EXIT_BAD_INPUT: Final = 3

VOLATILE_KEYS: Final = frozenset({"data"})
VOLATILE_PATHS: Final = {"initialize": frozenset({"result.serverInfo.version"})}

_DIFF_LIMIT = 12  # differences shown per request
_SHORT = 160


@dataclass(slots=True)
class RequestOutcome:
    """One client request of the trace and what became of it in the replay."""

    id: int | str
    method: str
    line: int
    # same | different | hang | extra_answer | unanswered | not_sent | not_compared
    status: str = "not_sent"
    recorded_ms: float | None = None
    replay_ms: float | None = None
    deadline_s: float | None = None
    sent_at_s: float | None = None
    note: str = ""
    diff: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "method": self.method, "trace_line": self.line,
                "status": self.status, "recorded_ms": _ms(self.recorded_ms),
                "replay_ms": _ms(self.replay_ms), "deadline_s": self.deadline_s,
                "sent_at_s": _ms(self.sent_at_s), "note": self.note, "diff": self.diff}


@dataclass(slots=True)
class ReplayReport:
    trace: str
    server_command: list[str]
    mode: str
    root_map: list[str] = field(default_factory=list)
    redacted_trace: bool = False
    client_messages: int = 0
    sent: int = 0
    requests: list[RequestOutcome] = field(default_factory=list)
    unexpected_responses: list[dict[str, Any]] = field(default_factory=list)
    crash: str | None = None
    bad_input: str | None = None
    complete: bool = False
    elapsed_s: float = 0.0
    server_requests: dict[str, dict[str, int]] = field(default_factory=dict)
    notifications_recorded: dict[str, int] = field(default_factory=dict)
    notifications_replayed: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def hangs(self) -> list[RequestOutcome]:
        return [r for r in self.requests if r.status == "hang"]

    @property
    def divergences(self) -> list[RequestOutcome]:
        return [r for r in self.requests if r.status in ("different", "extra_answer")]

    @property
    def exit_code(self) -> int:
        if self.bad_input is not None:
            return EXIT_BAD_INPUT
        if self.crash is not None or self.hangs or not self.complete:
            return EXIT_HANG
        if self.divergences or self.unexpected_responses:
            return EXIT_DIVERGENCE
        return EXIT_SAME

    @property
    def outcome(self) -> str:
        return {EXIT_SAME: "same", EXIT_DIVERGENCE: "divergence", EXIT_BAD_INPUT: "bad input",
                EXIT_HANG: "crash" if self.crash else "hang" if self.hangs else "incomplete",
                }[self.exit_code]

    def latency_by_method(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        methods = sorted({r.method for r in self.requests})
        for method in methods:
            rows = [r for r in self.requests if r.method == method]
            rec = [r.recorded_ms for r in rows if r.recorded_ms is not None]
            rep = [r.replay_ms for r in rows if r.replay_ms is not None]
            out[method] = {"count": len(rows),
                           "recorded_p50_ms": _ms(statistics.median(rec)) if rec else None,
                           "replay_p50_ms": _ms(statistics.median(rep)) if rep else None,
                           "replay_max_ms": _ms(max(rep)) if rep else None}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "lspguard_replay_report": 1, "outcome": self.outcome, "exit_code": self.exit_code,
            "complete": self.complete, "trace": self.trace, "server_command": self.server_command,
            "mode": self.mode, "root_map": self.root_map, "redacted_trace": self.redacted_trace,
            "elapsed_s": round(self.elapsed_s, 3), "client_messages": self.client_messages,
            "sent": self.sent, "crash": self.crash, "bad_input": self.bad_input,
            "hangs": [r.to_json() for r in self.hangs],
            "requests": [r.to_json() for r in self.requests],
            "unexpected_responses": self.unexpected_responses,
            "latency": self.latency_by_method(), "server_requests": self.server_requests,
            "notifications": {"recorded": self.notifications_recorded,
                              "replayed": self.notifications_replayed},
            "warnings": self.warnings, "stderr_tail": self.stderr_tail,
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def render_text(self, *, all_requests: bool = True) -> str:
        """The human report: verdict first, then the table, then what went wrong in detail."""
        lines = [f"lspguard replay: {self.outcome.upper()} (exit {self.exit_code})",
                 f"  trace   {self.trace}" + (" (redacted: results compared by shape only)"
                                              if self.redacted_trace else ""),
                 f"  server  {' '.join(self.server_command)}",
                 f"  mode    {self.mode}" + (f"; root map {', '.join(self.root_map)}"
                                             if self.root_map else "")]
        if self.bad_input is not None:
            lines.append(f"  bad input: {self.bad_input}")
            return "\n".join(lines) + "\n"
        counts: dict[str, int] = {}
        for r in self.requests:
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        lines.append(f"  result  {len(self.requests)} requests: {summary or 'none'}; sent "
                     f"{self.sent}/{self.client_messages} client messages in "
                     f"{self.elapsed_s:.1f} s" + ("" if self.complete else " (INCOMPLETE)"))
        for hang in self.hangs:
            lines.append(f"  HANG    {hang.method} #{hang.id} (trace line {hang.line}) got no "
                         f"answer within its {hang.deadline_s:g} s deadline (sent "
                         f"{hang.sent_at_s or 0:.2f} s into the replay){_note(hang)}")
        if self.crash:
            lines.append(f"  CRASH   {self.crash}")
        lines.extend(f"  warning {w}" for w in self.warnings)
        shown = [r for r in self.requests if all_requests or r.status != "same"]
        if shown:
            lines += ["", f"  {'method':<40} {'id':>6} {'line':>5} {'recorded':>9} "
                          f"{'replayed':>9}  status"]
            lines += [f"  {r.method[:40]:<40} {str(r.id)[:6]:>6} {r.line:>5} "
                      f"{_fmt_ms(r.recorded_ms):>9} {_fmt_ms(r.replay_ms):>9}  "
                      f"{r.status.replace('_', ' ')}{_note(r)}" for r in shown]
        for r in self.requests:
            if r.diff:
                lines += ["", f"  {r.method} #{r.id} (trace line {r.line}): {r.status}"]
                lines += [f"    {d}" for d in r.diff]
        for extra in self.unexpected_responses[:10]:
            lines += ["", f"  unexpected response (no request with this id was sent): "
                          f"{_short(extra)}"]
        if (self.crash or self.hangs) and self.stderr_tail:
            lines += ["", "  server stderr (last lines):"]
            lines += [f"    {line}" for line in self.stderr_tail[-15:]]
        return "\n".join(lines) + "\n"


def canonical(value: Any) -> Any:
    """`value` with the parts whose order carries no meaning put in a fixed order."""
    if isinstance(value, dict):
        out = {k: canonical(v) for k, v in value.items()}
        changes = out.get("documentChanges")
        if isinstance(changes, list) and all(
                isinstance(c, dict) and "edits" in c and isinstance(c.get("textDocument"), dict)
                for c in changes):
            out["documentChanges"] = sorted(
                changes, key=lambda c: str(c["textDocument"].get("uri")))
        return out
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def diff_values(recorded: Any, replayed: Any, path: str, *,
                ignore_keys: frozenset[str] = VOLATILE_KEYS,
                ignore_paths: frozenset[str] = frozenset(), limit: int = _DIFF_LIMIT
                ) -> list[str]:
    """Readable differences between two JSON values ([] when equal modulo volatile fields)."""
    out: list[str] = []
    _diff(canonical(recorded), canonical(replayed), path, ignore_keys, ignore_paths, out, limit)
    if len(out) > limit:
        out[limit:] = [f"... and more differences ({len(out) - limit}+ not shown)"]
    return out


def _diff(a: Any, b: Any, path: str, ignore_keys: frozenset[str],
          ignore_paths: frozenset[str], out: list[str], limit: int) -> None:
    if len(out) > limit or path in ignore_paths:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key in ignore_keys:
                continue
            sub = f"{path}.{key}"
            if key not in b:
                out.append(f"{sub}: only in the recording: {_short(a[key])}")
            elif key not in a:
                out.append(f"{sub}: only in the replay: {_short(b[key])}")
            else:
                _diff(a[key], b[key], sub, ignore_keys, ignore_paths, out, limit)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items recorded, {len(b)} replayed")
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{index}]", ignore_keys, ignore_paths, out, limit)
        for index in range(len(b), len(a)):
            out.append(f"{path}[{index}]: only in the recording: {_short(a[index])}")
        for index in range(len(a), len(b)):
            out.append(f"{path}[{index}]: only in the replay: {_short(b[index])}")
        return
    if type(a) is type(b) and a == b:
        return
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(
            a, bool) and not isinstance(b, bool) and a == b:
        return
    if isinstance(a, str) and isinstance(b, str) and ("\n" in a or "\n" in b):
        out.append(f"{path}: text differs (- recorded, + replayed):")
        delta = difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=1)
        out.extend(f"    {line[:_SHORT]}" for line in list(delta)[2:14])
        return
    out.append(f"{path}: recorded {_short(a)}, replayed {_short(b)}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHORT else text[:_SHORT - 3] + "..."


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _note(r: RequestOutcome) -> str:
    return f" ({r.note})" if r.note else ""

"""The report's first screen: what is blocked, on what, since when, what to do, and whether a
restart helps; then the pending requests (with the one that triggered the verdict) and timings.

All of it comes from `verdict.facts["cause"]` (`Cause.as_dict()`, lspguard/causes/model.py) and
`verdict.facts["request"]` (`{"id", "method", "age_s"}`); a bundle without them (an older
verdict, an on-demand snapshot) gets the verdict's summary and its facts as a table. Values are
read defensively: a bundle is evidence from the field, not a typed object.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lspguard.incident.htmlkit import Raw, age, esc, kv_table, table

__all__ = ["cause_detail_html", "cause_of", "focus_tids", "headline", "pending_html",
           "request_of", "summary_html", "timings_html"]

STATE_NAMES = {"R": "running", "S": "sleeping", "D": "uninterruptible sleep", "T": "stopped",
               "t": "tracing stop", "Z": "zombie", "X": "dead", "I": "idle"}
_QUIET_STATES = {"R", "S", "I"}
MAX_PENDING_ROWS = 40


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _facts(incident: dict[str, Any]) -> dict[str, Any]:
    return _dict(_dict(incident.get("verdict")).get("facts"))


def cause_of(incident: dict[str, Any]) -> dict[str, Any] | None:
    """The bundle's cause: incident.json's top-level "cause", else the verdict's facts."""
    cause = incident.get("cause") or _facts(incident).get("cause")
    return cause if isinstance(cause, dict) and cause else None


def request_of(incident: dict[str, Any]) -> dict[str, Any] | None:
    """The editor request whose lateness triggered the verdict, if the verdict says."""
    request = _facts(incident).get("request")
    return request if isinstance(request, dict) and request else None


def headline(incident: dict[str, Any]) -> tuple[str, str | None]:
    """(the sentence the page leads with, the verdict's summary when it says something else)."""
    summary = str(incident.get("sentence") or "lspguard incident")
    cause = cause_of(incident)
    sentence = str(cause.get("sentence") or "") if cause else ""
    if not sentence or sentence.casefold() == summary.casefold():
        return summary, None
    return sentence, summary


def _utc(wall: Any) -> str:
    if not isinstance(wall, int | float) or isinstance(wall, bool):
        return ""
    return dt.datetime.fromtimestamp(float(wall), dt.UTC).strftime("%H:%M:%S UTC")


def _seconds(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return age(float(value) * 1000)


def _argv(argv: Any, limit: int = 8) -> str:
    if not isinstance(argv, list) or not argv:
        return ""
    shown = " ".join(str(a) for a in argv[:limit])
    return shown + (" …" if len(argv) > limit else "")


def _who(process: dict[str, Any]) -> str:
    """'gopls's `go list` (pid 12, thread 14): uninterruptible sleep (D) in openat, wchan x'."""
    role = process.get("role") or "the language server"
    ids = [f"pid {process['pid']}"] if process.get("pid") is not None else []
    if process.get("tid") is not None and process.get("tid") != process.get("pid"):
        ids.append(f"thread {process['tid']}")
    out = f"<b>{esc(role)}</b>" + (f" ({esc(', '.join(ids))})" if ids else "")
    state = process.get("state")
    if state:
        out += f": {esc(STATE_NAMES.get(str(state), str(state)))} (<code>{esc(state)}</code>)"
    if process.get("syscall"):
        out += f" in <code>{esc(process['syscall'])}</code>"
    if process.get("wchan"):
        out += f", kernel wait <code>{esc(process['wchan'])}</code>"
    return out


def _what(obj: dict[str, Any]) -> str:
    kind = obj.get("kind")
    if kind == "path":
        out = f"<code>{esc(obj.get('path') or '?')}</code>"
        mount = [f"mount <code>{esc(obj['mount_point'])}</code>"] if obj.get("mount_point") else []
        if obj.get("fs_type"):
            mount.append(f"filesystem <b>{esc(obj['fs_type'])}</b>")
        if obj.get("source"):
            mount.append(f"from <code>{esc(obj['source'])}</code>")
        return out + (f" ({', '.join(mount)})" if mount else "")
    if kind == "special_file":
        return (f"<code>{esc(obj.get('path') or '?')}</code>, a "
                f"{esc(obj.get('file_type') or 'special file')} with nobody at the other end")
    if kind == "child":
        return (f"child process <code>{esc(_argv(obj.get('argv')) or '?')}</code>"
                + (f" (pid {esc(obj['pid'])})" if obj.get("pid") is not None else ""))
    if kind == "socket":
        return (f"network peer <code>{esc(obj.get('peer') or '?')}</code>"
                + (f" ({esc(obj['socket_state'])})" if obj.get("socket_state") else ""))
    if kind == "none" or not kind:
        return "nothing outside the server"
    return esc(kind)


def _restart(cause: dict[str, Any]) -> tuple[str, str]:
    helps = cause.get("restart_helps")
    if helps is True:
        return "yes", "Yes: the wait is inside the server, a fresh one starts clean."
    if helps is False:
        return "no", ("No: the cause is outside the server; a restarted one waits on the same "
                      "thing. Fix the cause first.")
    return "unknown", "Unknown."


def _request_line(request: dict[str, Any] | None) -> str:
    if not request:
        return ""
    out = f"<code>{esc(request.get('method') or '?')}</code>"
    if request.get("id") is not None:
        out += f" (id {esc(request['id'])})"
    if request.get("age_s") is not None:
        out += f", unanswered after {esc(_seconds(request.get('age_s')))}"
    return out


def summary_html(incident: dict[str, Any]) -> str:
    """The block under the headline: the cause as a short table and the fix, or the facts."""
    cause, request = cause_of(incident), request_of(incident)
    verdict = _dict(incident.get("verdict"))
    if cause is None:
        facts = {k: v for k, v in _facts(incident).items() if k not in ("cause", "request")}
        body = (f'<table class="cause" id="cause"><tr><th>Request</th>'
                f"<td>{_request_line(request)}</td></tr></table>" if request else "")
        return body + (kv_table(facts, css="kv facts") if facts else "")
    rows = [("Blocked", _who(_dict(cause.get("process")))),
            ("Waiting on", _what(_dict(cause.get("object"))))]
    waited = cause.get("waited_s")
    if isinstance(waited, int | float) and not isinstance(waited, bool):
        since = f"{_seconds(waited)} before the verdict"
        if isinstance(verdict.get("at"), int | float):
            since = f"{_utc(float(verdict['at']) - float(waited))} ({since})"
        rows.append(("Since", esc(since)))
    if request:
        rows.append(("Request", _request_line(request)))
    chain = [c for c in cause.get("chain") or [] if isinstance(c, dict)]
    if len(chain) > 1:
        rows.append(("Chain", " → ".join(
            f"{esc(c.get('role') or '?')} (pid {esc(c.get('pid'))})" for c in chain)))
    helps, text = _restart(cause)
    rows.append(("Restart helps?", f'<span class="restart-{helps}">{esc(text)}</span>'))
    trs = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    fix = cause.get("fix") or "No fix is known for this cause."
    return (f'<div class="first"><table class="cause" id="cause">{trs}</table>'
            f'<div class="fix" id="fix"><div class="fix-title">What to do</div>'
            f"<p>{esc(fix)}</p></div></div>")


def cause_detail_html(incident: dict[str, Any]) -> str:
    """Everything the cause and the verdict's other facts say, as tables."""
    cause = cause_of(incident)
    facts = {k: v for k, v in _facts(incident).items() if k not in ("cause", "request")}
    parts = []
    if cause is not None:
        main = {k: v for k, v in cause.items() if k not in ("process", "object", "chain")}
        parts.append("<h3>Cause</h3>" + kv_table(main))
        parts.append("<h3>Blocked object</h3>" + kv_table(_dict(cause.get("object"))))
        parts.append("<h3>Waiting process</h3>" + kv_table(_dict(cause.get("process"))))
        chain = [c for c in cause.get("chain") or [] if isinstance(c, dict)]
        if chain:
            parts.append("<h3>Process chain (server down to the waiting process)</h3>" + table(
                ["pid", "role", "tid", "state", "syscall", "wchan", "argv"],
                [[c.get("pid"), c.get("role"), c.get("tid"), c.get("state"), c.get("syscall"),
                  c.get("wchan"), _argv(c.get("argv"), 12)] for c in chain]))
    if facts:
        parts.append("<h3>Other facts of the verdict</h3>" + kv_table(facts))
    return "\n".join(parts) or '<p class="muted">The verdict recorded no facts.</p>'


def pending_html(incident: dict[str, Any]) -> str:
    """The pending requests, the triggering one first and marked, even once it was answered
    (recovery answers it before the bundle is written, so it is usually no longer pending)."""
    request = request_of(incident)

    def is_trigger(r: dict[str, Any]) -> bool:
        return (request is not None and r.get("id") == request.get("id")
                and r.get("direction", "client->server") == "client->server")

    pending = [r for r in incident.get("pending") or [] if isinstance(r, dict)]
    rows = sorted(pending, key=lambda r: (not is_trigger(r), -(r.get("age_ms") or 0)))
    table_rows: list[list[Any]] = []
    classes: list[str] = []
    if request and not any(is_trigger(r) for r in rows):
        waited = _seconds(request.get("age_s"))
        table_rows.append([Raw("<b>triggered the verdict</b>; no longer pending when the "
                               "bundle was written"), "client->server", request.get("id"),
                           request.get("method"), f"{waited} at the verdict" if waited else ""])
        classes.append("trigger")
    more = len(rows) - MAX_PENDING_ROWS
    for r in rows[:MAX_PENDING_ROWS]:
        trigger = is_trigger(r)
        table_rows.append([Raw("<b>triggered the verdict</b>") if trigger else "",
                           r.get("direction"), r.get("id"), r.get("method"), age(r.get("age_ms"))])
        classes.append("trigger" if trigger else "")
    if not table_rows:
        return '<p class="muted">No request was waiting for an answer.</p>'
    out = table(["", "direction", "id", "method", "age"], table_rows, classes=classes)
    if more > 0:
        out += f'<p class="muted">{more} more, younger ones: see incident.json.</p>'
    return out


def timings_html(incident: dict[str, Any]) -> str:
    verdict, cause, request = (_dict(incident.get("verdict")), cause_of(incident) or {},
                               request_of(incident) or {})
    created, at = incident.get("created_at"), verdict.get("at")
    timings = _dict(incident.get("timings"))
    rows: dict[str, Any] = {}
    if request.get("age_s") is not None:
        rows["request unanswered for (at the verdict)"] = _seconds(request.get("age_s"))
    if cause.get("waited_s") is not None:
        rows["waiting process seen in this wait for"] = _seconds(cause.get("waited_s"))
    if isinstance(at, int | float):
        rows["verdict at"] = _utc(at)
    if isinstance(created, int | float):
        rows["bundle written at"] = _utc(created)
        if isinstance(at, int | float):
            rows["bundle written after the verdict"] = _seconds(created - at)
    if timings.get("collect_s") is not None:
        rows["evidence collection took"] = f"{_seconds(timings.get('collect_s'))} of a " \
                                           f"{_seconds(timings.get('budget_s'))} budget"
    uptime = _dict(incident.get("session")).get("uptime_s")
    if uptime is not None:
        rows["session uptime"] = _seconds(uptime)
    return kv_table(rows)


def focus_tids(incident: dict[str, Any], process: dict[str, Any]) -> list[int]:
    """Threads the report focuses on: the cause's culprit, then threads not quietly waiting."""
    out: list[int] = []
    culprit = _dict((cause_of(incident) or {}).get("process"))
    for key in ("tid", "pid"):
        if isinstance(culprit.get(key), int):
            out.append(int(culprit[key]))
            break
    for proc in process.get("processes") or []:
        for t in _dict(proc).get("threads") or []:
            if isinstance(t, dict) and t.get("state") not in _QUIET_STATES \
                    and isinstance(t.get("tid"), int) and len(out) < 8:
                out.append(int(t["tid"]))
    return list(dict.fromkeys(out))

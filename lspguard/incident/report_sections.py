"""The report's evidence sections, each kept small: the files next to report.html hold it all.

Threads (the culprit and threads not quietly waiting first), the charts, goroutines (a summary
and the start of the dump), an strace excerpt around the blocked threads, stderr, the last
messages (bodies cut short), host facts. Every section links the file it comes from.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from lspguard.incident.htmlkit import Raw, esc, kv_table, pre, read_text, table
from lspguard.incident.strace_excerpt import strace_excerpt

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

__all__ = ["file_link", "goroutines_html", "host_html", "messages_html", "stderr_html",
           "strace_html", "threads_html", "timeline_html"]

MAX_MESSAGES = 64  # rows of the messages table...
MAX_BODIES = 16  # ...of which the last ones (and those of the triggering request) show a body
MAX_BODY = 1536
MAX_GOROUTINES = 24 * 1024
MAX_STRACE = 40 * 1024
MAX_STDERR = 8 * 1024
MAX_THREAD_ROWS = 40
FULL_STACKS = 8  # threads shown with their whole kernel stack: the culprit, then hot ones...
SHORT_STACK = 8  # ...the others with their first frames
_QUIET_STATES = {"R", "S", "I"}


def file_link(name: str) -> str:
    return f'<a href="{esc(name)}">{esc(name)}</a>'


def timeline_html(incident: dict[str, Any]) -> str:
    from lspguard.incident.charts import latency_svg, timeline_svg

    verdict = incident.get("verdict") or {}
    created = float(incident.get("created_at") or time.time())
    t0 = float(verdict.get("at") or created)
    parts = []
    try:
        svg = timeline_svg(incident.get("request_timeline") or [], incident.get("pending") or [],
                           t0, created)
        parts.append(f'<div class="chart">{svg}</div>' if svg else
                     '<p class="muted">No completed or pending requests recorded.</p>')
        svg = latency_svg(incident.get("latency") or {})
        if svg:
            parts.append(f'<div class="chart">{svg}</div>')
    except ImportError as exc:
        parts.append(f'<p class="err">Charts unavailable ({esc(exc)}); install pygal.</p>')
    hs = incident.get("handshake") or {}
    if hs:
        parts.append("<h3>Handshake</h3>" + kv_table(hs))
    return "\n".join(parts)


def threads_html(process: dict[str, Any], focus: list[int]) -> str:
    procs = [p for p in process.get("processes") or [] if isinstance(p, dict)]
    if not procs:
        return (f'<p class="muted">No process data ({esc(process.get("status"))}: '
                f'{esc(process.get("error"))}).</p>')
    culprit = focus[0] if focus else None
    full_stacks = set(focus[:FULL_STACKS])
    rows: list[tuple[int, list[Any], str, bool]] = []
    for proc in procs:
        for t in proc.get("threads") or []:
            if not isinstance(t, dict):
                continue
            sc = t.get("syscall") or {}
            name = sc.get("name") or ("running" if sc.get("running") else sc.get("nr", ""))
            target = sc.get("path") or sc.get("fd_path") or ""
            if sc.get("fd") is not None:
                target = f"fd {sc['fd']}: {sc.get('fd_path') or '?'}"
                if sc.get("path"):
                    target += f"; {sc['path']}"
            elif sc.get("path"):
                target = sc["path"]
            hot = t.get("state") not in _QUIET_STATES
            is_culprit = t.get("tid") == culprit
            stack = t.get("stack")
            if isinstance(stack, list) and stack:
                frames = stack if t.get("tid") in full_stacks else stack[:SHORT_STACK]
                more = "\n…" if len(frames) < len(stack) else ""
                stack_html = (f"<details><summary>{len(stack)} frames</summary><pre>"
                              f"{esc(chr(10).join(map(str, frames)))}{more}</pre></details>")
            else:
                stack_html = f'<span class="muted">{esc(t.get("stack_error") or "")}</span>'
            cpu = (t.get("utime_s") or 0) + (t.get("stime_s") or 0)
            rank = 0 if is_culprit else 1 if hot else 2
            rows.append((rank, [proc.get("pid"), t.get("tid"), t.get("comm"),
                                f"{t.get('state', '?')} ({t.get('state_name', '')})",
                                t.get("wchan"), name, target, f"{cpu:.2f}", Raw(stack_html)],
                         "culprit" if is_culprit else "", hot))
    rows.sort(key=lambda r: r[0])  # stable: within a rank, the kernel's order
    shown, rest = rows[:MAX_THREAD_ROWS], rows[MAX_THREAD_ROWS:]
    head = ["pid", "tid", "name", "state", "wchan", "syscall", "fd / path", "cpu s", "stack"]
    summary = []
    for proc in procs:
        cmd = " ".join(proc.get("cmdline") or []) or proc.get("name") or ""
        summary.append([proc.get("pid"), proc.get("ppid"), proc.get("status"), cmd,
                        proc.get("num_threads"), proc.get("num_fds"),
                        f"{(proc.get('rss') or 0) / 1048576:.1f} MiB",
                        ", ".join(f"{k}: {v}" for k, v in (proc.get("errors") or {}).items())])
    out = (table(["pid", "ppid", "status", "command", "threads", "fds", "rss", "errors"],
                 summary)
           + table(head, [r[1] for r in shown], classes=[r[2] for r in shown],
                   hot=[r[3] for r in shown]))
    if rest:
        out += (f'<p class="muted">{len(rest)} more threads, all quietly waiting: see '
                f'{file_link("process.json")}.</p>')
    return out


def goroutines_html(text: str) -> str:
    states = Counter(re.findall(r"^goroutine \d+ \[([^\],]+)", text, flags=re.MULTILINE))
    if not states:
        return pre(text, limit=MAX_GOROUTINES, link="goroutines.txt")
    summary = ", ".join(f"{esc(s)}: {n}" for s, n in states.most_common(12))
    return (f"<p>{sum(states.values())} goroutines — {summary} "
            f"({file_link('goroutines.txt')})</p>"
            f"<details><summary>Dump</summary>"
            f"{pre(text, limit=MAX_GOROUTINES, link='goroutines.txt')}</details>")


def strace_html(text: str, focus: list[int]) -> str:
    if not text.strip():
        return '<p class="muted">Empty.</p>'
    excerpt = strace_excerpt(text, focus, max_chars=MAX_STRACE)
    lines = []
    for number, line, hot in excerpt.lines:
        if number is None:
            lines.append(f'<span class="gap">{esc(line)}</span>')
        else:
            cls = ' class="focus"' if hot else ""
            lines.append(f"<span{cls}>{esc(line)}</span>")
    picked = (f"the lines of the threads in focus (tid {esc(', '.join(map(str, focus)))}: "
              f"{excerpt.focus_lines} lines, highlighted), " if focus else "")
    note = (f'<p class="muted">{excerpt.shown_lines} of {excerpt.total_lines} lines: strace\'s '
            f"header, {picked}and the end of the sample. The whole sample: "
            f"{file_link('strace.txt')} ({len(text) // 1024} KiB).</p>")
    return note + '<pre class="strace">' + "\n".join(lines) + "</pre>"


def stderr_html(text: str) -> str:
    if len(text) > MAX_STDERR:
        text = "…\n" + text[-MAX_STDERR:]
    return pre(text, limit=MAX_STDERR + 4, link="stderr.txt")


def messages_html(path: Path, incident: dict[str, Any], ids: Collection[Any] = ()) -> str:
    """The last messages; bodies for the last few and for messages with one of `ids` (the
    triggering request's and its answer, say)."""
    all_lines = read_text(path).splitlines()
    lines = all_lines[-MAX_MESSAGES:]
    if not lines:
        return '<p class="muted">No messages recorded.</p>'
    created = float(incident.get("created_at") or time.time())
    rows = []
    for n, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        body = rec.get("message")
        if body is not None and n < len(lines) - MAX_BODIES and rec.get("id") not in ids:
            detail = '<span class="muted">in messages.jsonl</span>'
        elif body is not None:
            text = json.dumps(body, indent=1, ensure_ascii=False)
            if len(text) > MAX_BODY:
                text = text[:MAX_BODY] + f"\n… ({len(text) - MAX_BODY} more characters)"
            detail = f"<details><summary>body</summary><pre>{esc(text)}</pre></details>"
        else:
            detail = esc(rec.get("omitted") or "")
        rel = rec.get("t_wall")
        rows.append([f"{rel - created:+.3f} s" if isinstance(rel, int | float) else "",
                     rec.get("direction"), rec.get("generation"), rec.get("kind"), rec.get("id"),
                     rec.get("method"), rec.get("size"), Raw(detail)])
    note = ("" if (incident.get("session") or {}).get("include_text") else
            "Source-derived text (document text, hover and completion contents, symbol names, "
            "diagnostics, edits) is redacted. ")
    shown = (f"The last {len(lines)} of {len(all_lines)} messages"
             if len(all_lines) > len(lines) else f"{len(lines)} messages")
    shown += f" (bodies of the last {MAX_BODIES})"
    return (f'<p class="muted">{note}{shown}; all of them: {file_link("messages.jsonl")}.</p>'
            + table(["time", "direction", "gen", "kind", "id", "method", "bytes", ""], rows))


def host_html(incident: dict[str, Any]) -> str:
    host = incident.get("host") or {}
    fs_rows = []
    for label, fs in (host.get("filesystems") or {}).items():
        fs_rows.append([label, fs.get("path"), fs.get("mountpoint"), fs.get("fstype"),
                        fs.get("device"), "slow / foreign" if fs.get("slow_or_foreign") else ""])
    collectors = [[name, c.get("status"), f"{c.get('seconds', 0):.3f}", c.get("error") or ""]
                  for name, c in (incident.get("collectors") or {}).items()]
    env = incident.get("env") or {}
    return "\n".join([
        "<h3>Versions</h3>" + kv_table(incident.get("versions") or {}),
        "<h3>Kernel and container</h3>" + kv_table(
            {**(host.get("kernel") or {}), "wsl": host.get("wsl"),
             **{f"container.{k}": v for k, v in (host.get("container") or {}).items()}}),
        "<h3>Filesystems</h3>" + table(["what", "path", "mount", "type", "device", ""],
                                       fs_rows, hot=[bool(r[5]) for r in fs_rows]),
        "<h3>go env</h3>" + kv_table(host.get("go_env") or {}),
        "<h3>Environment (Go-related; secrets dropped)</h3>" + kv_table(env.get("vars") or {}),
        (f"<p class=\"muted\">Dropped: {esc(', '.join(env.get('dropped_secrets') or []))}</p>"
         if env.get("dropped_secrets") else ""),
        "<h3>Backend env overlay</h3>" + kv_table((incident.get("backend") or {})
                                                  .get("env_overlay") or {}),
        "<h3>Collectors</h3>" + table(["collector", "status", "seconds", "error"], collectors,
                                      hot=[c[1] in ("error", "timeout") for c in collectors]),
    ])

"""report.html: one self-contained page that says what happened, then shows why we think so.

The first screen answers what a user asks: what is blocked, on what (path and filesystem, child
process, network peer), since when, what to do about it, and whether a restart helps (from the
verdict's cause; a bundle without one leads with the verdict's summary and facts). Then the
evidence in the order a reader checks it: pending requests (the one that triggered the verdict
included), threads, the cause's facts, timings, charts, goroutines, an strace excerpt, stderr,
recent messages, host facts. Everything is read back from the bundle's own files (so `lspguard
report --rerender` gives the same page) and HTML-escaped; CSS and the few lines of script are
inline, nothing is fetched, and the page works from a file:// URL offline. It stays small (a
few hundred KiB at most): big evidence is excerpted here and linked, whole, next to it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lspguard import paths
from lspguard.incident.htmlkit import esc, read_json, read_text
from lspguard.incident.report_cause import (
    cause_detail_html,
    cause_of,
    focus_tids,
    headline,
    pending_html,
    request_of,
    summary_html,
    timings_html,
)
from lspguard.incident.report_sections import (
    goroutines_html,
    host_html,
    messages_html,
    stderr_html,
    strace_html,
    threads_html,
    timeline_html,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["render_report"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff}
header{padding:20px 32px;background:#fff4e5;border-bottom:3px solid #e67e22}
header.snapshot{background:#eef5ff;border-color:#3b82f6}
h1#verdict{font-size:26px;line-height:1.25;margin:4px 0 8px}
.kind{font:600 13px/1 ui-monospace,monospace;text-transform:uppercase;color:#a04000}
.also{margin:0 0 8px;color:#444}
.first{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start;margin:8px 0}
table.cause{background:#fff;font-size:14px;max-width:780px}
table.cause th{width:9em;white-space:nowrap}
.fix{flex:1 1 300px;max-width:560px;background:#eaf7ee;border:1px solid #3c9d5d;padding:8px 14px;
border-radius:4px}
.fix-title{font-weight:700;color:#1e6b39;margin-bottom:2px}.fix p{margin:4px 0}
.restart-no{color:#b00020;font-weight:600}.restart-yes{color:#1e6b39;font-weight:600}
main{padding:8px 32px 48px;max-width:1400px}
h2{margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
table.kv table{margin:0}
tr.hot td{background:#fff0f0}
tr.culprit td,tr.trigger td{background:#ffe0c2}
pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:8px;overflow:auto;max-height:600px;
font:12px/1.4 ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
pre.strace .focus{background:#ffe0c2}
pre.strace .gap{color:#888;font-style:italic}
code{font:12px ui-monospace,monospace}
.muted{color:#666}.err{color:#b00020}
nav a{margin-right:14px}
details summary{cursor:pointer}
.chart svg{max-width:100%;height:auto}
"""

# pygal's own tooltip script comes from a CDN; this gives each dot a native tooltip instead.
_JS = """
document.querySelectorAll('svg g.dots').forEach(function (g) {
  var dot = g.querySelector('.tooltip-trigger');
  if (!dot) return;
  var text = Array.prototype.map.call(g.querySelectorAll('desc.label, desc.value'),
    function (d) { return d.textContent; }).join(' \\u2014 ');
  var title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
  title.textContent = text;
  dot.appendChild(title);
});
"""


def render_report(bundle_dir: Path) -> Path:
    """Write `bundle_dir/report.html` (0600) from the bundle's files; return its path."""
    out = bundle_dir / "report.html"
    paths.write_private_file(out, render_page(bundle_dir).encode("utf-8"))  # atomic
    return out


def render_page(bundle_dir: Path) -> str:
    """The report page of `bundle_dir`, as text."""
    incident = _dict(read_json(bundle_dir / "incident.json"))
    process = _dict(read_json(bundle_dir / "process.json"))
    focus = focus_tids(incident, process)
    sections = [
        ("pending", "Pending requests", pending_html(incident)),
        ("threads", "Threads", threads_html(process, focus)),
        ("facts", "Cause and facts" if cause_of(incident) else "Facts",
         cause_detail_html(incident)),
        ("timings", "Timings", timings_html(incident)),
        ("timeline", "Requests around the incident", timeline_html(incident)),
        ("goroutines", "Goroutines", goroutines_html(read_text(bundle_dir / "goroutines.txt"))),
        ("strace", "strace sample (excerpt)", strace_html(read_text(bundle_dir / "strace.txt"),
                                                          focus)),
        ("stderr", "Language server stderr (tail)",
         stderr_html(read_text(bundle_dir / "stderr.txt"))),
        ("messages", "Recent LSP messages", messages_html(bundle_dir / "messages.jsonl",
                                                          incident, _interesting_ids(incident))),
        ("host", "Host", host_html(incident)),
    ]
    sentence, also = headline(incident)
    kind = str(incident.get("kind") or "unknown")
    backend = _dict(incident.get("backend"))
    versions = _dict(incident.get("versions"))
    meta = (f"backend pid {esc(backend.get('pid'))} · generation {esc(incident.get('generation'))}"
            f" · {esc(incident.get('created_utc'))} · gopls {esc(versions.get('gopls') or '?')}"
            f" · lspguard {esc(versions.get('lspguard') or '?')}")
    nav = " ".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{esc(title)}</h2>\n{content}</section>'
                     for sid, title, content in sections)
    argv = " ".join(map(str, backend.get("argv") or []))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lspguard: {esc(sentence)}</title>
<style>{_CSS}</style></head>
<body>
<header class="{'snapshot' if kind == 'snapshot' else 'incident'}">
<div class="kind">{esc(kind.replace('_', ' '))}</div>
<h1 id="verdict">{esc(sentence)}</h1>
{f'<p class="also" id="summary">{esc(also)}</p>' if also else ''}
{summary_html(incident)}
<div class="muted">{meta}</div>
<div class="muted">argv: <code>{esc(argv)}</code>
· bundle <code>{esc(incident.get('name') or bundle_dir.name)}</code>
· files: {_file_links(bundle_dir)}</div>
</header>
<main><nav>{nav}</nav>
{body}
<p class="muted">Generated by lspguard {esc(versions.get('lspguard') or '')} at
{esc(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}.</p>
</main>
<script>{_JS}</script>
</body></html>
"""


def _interesting_ids(incident: dict[str, Any]) -> set[Any]:
    """Ids of the triggering request and of the oldest pending ones: their messages' bodies are
    shown whatever their age."""
    request = request_of(incident)
    ids = {request.get("id")} if request and request.get("id") is not None else set()
    pending = [r for r in incident.get("pending") or [] if isinstance(r, dict)]
    pending.sort(key=lambda r: -(r.get("age_ms") or 0))
    ids.update(r.get("id") for r in pending[:4] if r.get("id") is not None)
    return ids


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _file_links(bundle_dir: Path) -> str:
    names = sorted(p.name for p in bundle_dir.iterdir() if p.name != "report.html"
                   and not p.name.startswith("."))
    return " ".join(f'<a href="{esc(n)}">{esc(n)}</a>' for n in names)

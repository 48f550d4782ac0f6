"""The report's HTML building blocks: escaping, tables (nested for structured facts), files.

Every value that reaches the page passes through `esc` or `cell`; `Raw` marks a string that is
already HTML. Structured values (a verdict's facts, a cause's object) render as nested tables,
never as JSON text.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

__all__ = ["Raw", "age", "esc", "kv_table", "pre", "read_json", "read_text",
           "table", "value_html"]

_MAX_DEPTH = 4
_COMMAND_LINES = frozenset({"argv", "cmdline", "command"})


class Raw(str):
    """Already-escaped HTML for a table cell."""

    __slots__ = ()


def esc(value: Any) -> str:
    """`value` as escaped text ("" for None)."""
    return html.escape("" if value is None else str(value), quote=True)


def value_html(value: Any, depth: int = 0) -> str:
    """Any decoded-JSON value as HTML: dicts as key/value tables, lists of dicts as tables,
    lists of scalars as a comma-separated line."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return esc(f"{value:.6g}")
    if isinstance(value, dict | list) and depth >= _MAX_DEPTH:
        return f"<code>{esc(json.dumps(value, default=str))}</code>"
    if isinstance(value, dict):
        if not value:
            return '<span class="muted">—</span>'
        return kv_table(value, depth=depth + 1)
    if isinstance(value, list):
        if not value:
            return '<span class="muted">none</span>'
        if all(isinstance(v, dict) for v in value):
            head: list[str] = []
            for item in value:
                head += [str(k) for k in item if str(k) not in head]
            return table(head, [[item.get(h) for h in head] for item in value], depth=depth + 1)
        if all(not isinstance(v, dict | list) for v in value):
            return ", ".join(value_html(v, depth + 1) for v in value)
        return "<br>".join(value_html(v, depth + 1) for v in value)
    return esc(value)


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], *,
          hot: Sequence[bool] | None = None, classes: Sequence[str] | None = None,
          depth: int = 0, css: str = "") -> str:
    """A table with a header row; `hot` rows are highlighted, `classes` set per-row classes."""
    if not rows:
        return '<p class="muted">None.</p>'
    attr = f' class="{esc(css)}"' if css else ""
    out = [f"<table{attr}><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        names = [c for c in ((classes[i] if classes else ""),
                             "hot" if hot and hot[i] else "") if c]
        cls = f' class="{" ".join(names)}"' if names else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{value_html(v, depth)}</td>" for v in row)
                   + "</tr>")
    return "\n".join(out) + "</table>"


def kv_table(mapping: Mapping[str, Any], *, depth: int = 0, css: str = "kv") -> str:
    """Keys in the first column (as headers), values rendered with `value_html`."""
    if not mapping:
        return '<p class="muted">None.</p>'
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{_kv_value(str(k), v, depth)}</td></tr>"
                   for k, v in mapping.items())
    return f'<table class="{esc(css)}">{rows}</table>'


def _kv_value(key: str, value: Any, depth: int) -> str:
    if key in _COMMAND_LINES and isinstance(value, list) and value \
            and all(isinstance(v, str) for v in value):
        return f"<code>{esc(' '.join(value))}</code>"
    return value_html(value, depth)


def pre(text: str, *, limit: int, link: str | None = None) -> str:
    """`text` in a <pre>, cut at `limit` characters (then `link` points to the whole file)."""
    if not text.strip():
        return '<p class="muted">Empty.</p>'
    note = ""
    if len(text) > limit:
        where = f' (whole file: <a href="{esc(link)}">{esc(link)}</a>)' if link else ""
        note = (f'<p class="muted">First {limit // 1024} KiB of {len(text) // 1024} KiB shown'
                f"{where}.</p>")
        text = text[:limit]
    return f"{note}<pre>{esc(text)}</pre>"


def age(ms: Any) -> str:
    """'850 ms', '12.3 s' for a number of milliseconds; '' otherwise."""
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return ""
    ms = float(ms)
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.3g} ms"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""

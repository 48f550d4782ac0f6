"""The report's charts, drawn by pygal as standalone SVG (no JavaScript, nothing fetched).

Latency spans five orders of magnitude (a 2 ms hover next to a 30 s stuck `didOpen`), so points
are plotted at log10(milliseconds) on a linear axis labelled in milliseconds: pygal's own
logarithmic XY mode drops points with negative x, and time here is relative to the verdict.
pygal's default tooltip script is loaded from a CDN; it is switched off (`js=[]`) and the report
adds its own few lines instead.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

__all__ = ["compact_svg", "latency_svg", "thin_points", "timeline_svg"]

MAX_SERIES = 10
MAX_POINTS = 160  # completed requests drawn (see thin_points)
MAX_PENDING_POINTS = 30  # the oldest pending requests drawn
WINDOW_BEFORE = 300.0  # seconds of history shown before the incident
WINDOW_AFTER = 60.0
_MIN_MS = 0.1
_FAILED = "failed (error answer)"


def _pygal() -> Any:
    import pygal  # type: ignore[import-untyped]

    return pygal


def _style() -> Any:
    from pygal.style import Style  # type: ignore[import-untyped]

    return Style(font_family="system-ui, sans-serif", background="white",
                 plot_background="#fbfbfb", legend_font_size=12, label_font_size=11,
                 major_label_font_size=11, title_font_size=14)


def fmt_ms(ms: float) -> str:
    """'850 ms', '12.3 s': latencies as people say them."""
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.3g} ms"


def _log_ms(ms: float) -> float:
    return math.log10(max(float(ms), _MIN_MS))


def timeline_svg(timeline: list[dict[str, Any]], pending: list[dict[str, Any]],
                 t0: float, created_at: float) -> str | None:
    """Scatter of request latency by start time (seconds relative to `t0`), one series per
    method, plus the requests still pending at `created_at`; None when there is nothing to plot.
    """
    points: list[tuple[str, float, float, str]] = []  # (series, x, ms, label)
    for item in timeline:
        start, ms = item.get("start"), item.get("duration_ms")
        if not isinstance(start, int | float) or not isinstance(ms, int | float):
            continue
        method = str(item.get("method") or "?")
        if item.get("ok", True):
            points.append((method, start - t0, float(ms), f"{method}: ok"))
        else:
            error = f"error {item.get('error') or ''}".strip()
            points.append((_FAILED, start - t0, float(ms), f"{method}: {error}"))
    in_window = [p for p in points if -WINDOW_BEFORE <= p[1] <= WINDOW_AFTER]
    points = in_window or points
    total = len(points)
    points = thin_points(points, MAX_POINTS)
    open_points: list[tuple[float, float, str]] = []
    oldest = sorted((p for p in pending if isinstance(p.get("age_ms"), int | float)),
                    key=lambda p: -float(p["age_ms"]))[:MAX_PENDING_POINTS]
    for item in oldest:
        age = item.get("age_ms")
        if isinstance(age, int | float):
            start = created_at - age / 1000.0 - t0
            open_points.append((start, float(age), f"{item.get('method')} (id {item.get('id')}, "
                                                   f"{item.get('direction')}): no answer yet"))
    if not points and not open_points:
        return None

    pygal = _pygal()
    chart = pygal.XY(
        stroke=False, js=[], disable_xml_declaration=True, width=1100, height=440,
        style=_style(), dots_size=3, legend_at_bottom=True, legend_at_bottom_columns=4,
        truncate_legend=40, title="Requests by start time: latency (log scale)"
        + (f"; {len(points)} of {total} shown (the slowest and failed ones all)"
           if total > len(points) else ""),
        x_title="seconds relative to the verdict", y_title="latency",
        x_value_formatter=lambda x: f"{x:+.1f} s", value_formatter=lambda y: fmt_ms(10 ** y),
        show_x_guides=True, margin_bottom=36)
    xs = [p[1] for p in points] + [p[0] for p in open_points] + [0.0]
    pad = max((max(xs) - min(xs)) * 0.03, 0.2)
    chart.xrange = (min(xs) - pad, max(xs) + pad)
    ys = [_log_ms(p[2]) for p in points] + [_log_ms(p[1]) for p in open_points]
    low, high = math.floor(min(ys)), math.ceil(max(ys))
    chart.y_labels = [{"value": d, "label": fmt_ms(10 ** d)} for d in range(low, max(high, low + 1)
                                                                         + 1)]
    counts = Counter(p[0] for p in points if p[0] != _FAILED)
    shown = [m for m, _ in counts.most_common(MAX_SERIES)]
    for method in shown:
        chart.add(method, [{"value": (x, _log_ms(ms)), "label": label}
                           for m, x, ms, label in points if m == method])
    rest = [p for p in points if p[0] not in shown and p[0] != _FAILED]
    if rest:
        chart.add("other methods", [{"value": (x, _log_ms(ms)), "label": label}
                                    for _, x, ms, label in rest])
    failed = [p for p in points if p[0] == _FAILED]
    if failed:
        chart.add(_FAILED, [{"value": (x, _log_ms(ms)), "label": label}
                            for _, x, ms, label in failed], dots_size=5)
    if open_points:
        chart.add("still pending (age so far)",
                  [{"value": (x, _log_ms(ms)), "label": label} for x, ms, label in open_points],
                  dots_size=6)
    chart.add("verdict", [(0.0, low), (0.0, max(high, low + 1))], stroke=True, show_dots=False,
              stroke_style={"width": 2, "dasharray": "6, 4"})
    return compact_svg(str(chart.render(is_unicode=True)))


def thin_points(points: list[tuple[str, float, float, str]],
                limit: int) -> list[tuple[str, float, float, str]]:
    """At most `limit` of `points` (series, x, ms, label), in their order: the failed ones (up
    to half of `limit`, slowest first) and the slowest of the others (a fifth of `limit`), which
    are what an incident is about, then an even spread of the rest. Each point costs the page
    about 200 bytes; a session records up to 2000 requests."""
    if len(points) <= limit:
        return points
    slowest = sorted(range(len(points)), key=lambda i: -points[i][2])
    failed = [i for i in slowest if points[i][0] == _FAILED][:limit // 2]
    keep = set(failed) | set([i for i in slowest if points[i][0] != _FAILED][:limit // 5])
    rest = [i for i in range(len(points)) if i not in keep]
    room = limit - len(keep)
    if room > 0 and rest:
        step = len(rest) / room
        keep.update(rest[int(k * step)] for k in range(room))
    return [points[i] for i in sorted(keep)]


def latency_svg(latency: dict[str, dict[str, Any]]) -> str | None:
    """p50 / p99 / max per method (the session's recent window); None without data."""
    rows = [(m, v) for m, v in latency.items() if isinstance(v, dict)]
    if not rows:
        return None
    rows.sort(key=lambda r: -float(r[1].get("max_ms") or 0))
    rows = rows[:20]
    pygal = _pygal()
    chart = pygal.HorizontalBar(
        js=[], disable_xml_declaration=True, width=1100, height=120 + 34 * len(rows),
        style=_style(), legend_at_bottom=True, truncate_label=60,
        title="Latency per method (recent window, log scale)",
        value_formatter=lambda y: fmt_ms(10 ** y))
    chart.x_labels = [f"{m} (n={v.get('count')})" for m, v in rows]
    for key, title in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
        # Bars start at 0.1 ms (log10 = -1) so that 1 ms still shows as a bar.
        chart.add(title, [_log_ms(float(v.get(key) or 0)) + 1 for _, v in rows],
                  formatter=lambda y: fmt_ms(10 ** (y - 1)))
    chart.y_labels = [{"value": d + 1, "label": fmt_ms(10 ** d)} for d in range(-1, 6)]
    return compact_svg(str(chart.render(is_unicode=True)))


_TOOLTIP_XY = re.compile(r'<desc class="[xy](?: [^"]*)?">[^<]*</desc>')
_CONFIG_SCRIPT = re.compile(r'<script type="text/javascript">window\.pygal = .*?</script>', re.S)
_LONG_DECIMAL = re.compile(r"(\d\.\d\d)\d+")


def compact_svg(svg: str) -> str:
    """pygal's SVG without what only its (unused) tooltip script reads, its configuration (a
    script) and the x/y of each dot, and with coordinates rounded to 1/100 px: about half the
    bytes."""
    svg = _CONFIG_SCRIPT.sub("", _TOOLTIP_XY.sub("", svg))
    return _LONG_DECIMAL.sub(r"\1", svg)

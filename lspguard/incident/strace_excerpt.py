"""The part of a strace sample worth reading in the report: the blocked threads, and the end.

A busy gopls makes megabytes of strace output in a few seconds, almost all of it futex and
epoll calls of threads that are fine. The report shows strace's own header and attach lines,
every line of the threads the verdict is about (the culprit's tid, threads in `D`/`T` state),
and the last lines of the sample, in their original order with the gaps marked; the whole
sample stays in strace.txt, which the report links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Excerpt", "strace_excerpt"]

_PID_PREFIX = re.compile(r"^\[pid\s+(\d+)\]")
_STRACE_SAYS = re.compile(r"^\S*strace: ")  # "/usr/bin/strace: Process 12 attached"
_HEAD_LINES = 24


@dataclass(frozen=True)
class Excerpt:
    lines: list[tuple[int | None, str, bool]]  # (line number or None for a gap, text, focus)
    total_lines: int
    shown_lines: int
    focus_lines: int


def strace_excerpt(text: str, tids: Sequence[int], *, tail: int = 120,
                   per_thread: int = 200, per_other: int = 40,
                   max_chars: int = 96 * 1024) -> Excerpt:
    """Pick the lines of `text` (strace -f output) a reader needs; see the module docstring.

    `tids` come in order of importance: the first (the culprit) keeps its last `per_thread`
    lines, the others their last `per_other`. Past `max_chars`, the other threads' lines go
    first, then the tail's, then the culprit's, oldest first; the header always stays. Lines
    without a `[pid N]` prefix come from the only tracee (strace prefixes every line once it
    traces two threads), and count as the first tid's.
    """
    lines = text.splitlines()
    prefixed = any(_PID_PREFIX.match(ln) for ln in lines[:400])
    rank = {tid: n for n, tid in enumerate(dict.fromkeys(int(t) for t in tids))}
    first = next(iter(rank), None)
    head: list[int] = []
    by_tid: dict[int, list[int]] = {}
    for i, line in enumerate(lines):
        if line.startswith("#") or _STRACE_SAYS.match(line):
            if len(head) < _HEAD_LINES:
                head.append(i)
            continue
        match = _PID_PREFIX.match(line)
        tid = int(match.group(1)) if match else (first if not prefixed else None)
        if tid is not None and tid in rank:
            by_tid.setdefault(tid, []).append(i)
    for tid, found in by_tid.items():
        by_tid[tid] = found[-(per_thread if rank[tid] == 0 else per_other):]
    focus = {i for found in by_tid.values() for i in found}
    keep_head = set(head)
    tail_lines = [i for i in range(max(0, len(lines) - tail), len(lines))
                  if i not in focus and i not in keep_head]
    chosen = keep_head | focus | set(tail_lines)
    others = [i for tid in sorted(by_tid, key=lambda t: -rank[t]) if rank[tid] > 0
              for i in by_tid[tid]]
    culprit = by_tid.get(first, []) if first is not None else []
    removable = others + tail_lines + culprit
    size = sum(len(lines[i]) + 1 for i in chosen)
    for i in removable:
        if size <= max_chars:
            break
        if i in chosen:
            chosen.discard(i)
            size -= len(lines[i]) + 1
    out: list[tuple[int | None, str, bool]] = []
    previous = -1
    for i in sorted(chosen):
        if i > previous + 1:
            out.append((None, f"… {i - previous - 1} lines not shown …", False))
        line = lines[i]
        if len(line) > 2000:
            line = line[:2000] + " …"
        out.append((i + 1, line, i in focus))
        previous = i
    if lines and previous < len(lines) - 1:
        out.append((None, f"… {len(lines) - 1 - previous} lines not shown …", False))
    return Excerpt(out, len(lines), len(chosen), sum(1 for i in chosen if i in focus))

"""A bounded directory walk that never follows directory symlinks.

The trees the doctor looks at are exactly the ones that may be pathological (symlink loops, a
module cache on a network filesystem), so the walk is breadth-first, capped in entries and in
time, and skips what gopls skips anyway: VCS metadata and node_modules (gopls's default
`directoryFilters` is `-**/node_modules`). Symlinks are yielded, never descended into.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator

__all__ = ["SKIP_DIR_NAMES", "WalkStats", "walk"]

#: Directory names never descended into. `vendor` and `testdata` are walked on purpose: gopls
#: loads vendor/ under -mod=vendor, and editors' file watchers descend into testdata.
SKIP_DIR_NAMES = frozenset({".git", ".hg", ".svn", ".jj", "node_modules"})


@dataclass(slots=True)
class WalkStats:
    """What a walk covered, and why it stopped early (empty `truncated` = it finished)."""

    visited: int = 0
    truncated: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, error), first few


def walk(
    root: str,
    stats: WalkStats,
    *,
    max_entries: int,
    seconds: float,
    skip_names: Collection[str] = SKIP_DIR_NAMES,
    skip_paths: Collection[str] = (),
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[os.DirEntry[str]]:
    """Yield entries below `root` breadth first; stop after `max_entries` or `seconds`."""
    deadline = clock() + seconds
    queue: deque[str] = deque([root])
    while queue:
        directory = queue.popleft()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            if len(stats.errors) < 20:
                stats.errors.append((directory, f"{type(exc).__name__}: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if stats.visited >= max_entries:
                stats.truncated = f"stopped after {max_entries} entries"
                return
            if clock() > deadline:
                stats.truncated = f"stopped after {seconds:g} s ({stats.visited} entries)"
                return
            stats.visited += 1
            yield entry
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir and entry.name not in skip_names and entry.path not in skip_paths:
                queue.append(entry.path)

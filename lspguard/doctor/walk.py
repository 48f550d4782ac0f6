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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator

__all__ = ["SKIP_DIR_NAMES", "WalkStats", "walk"]

#: Directory names never descended into. `vendor` and `testdata` are walked on purpose: gopls
#: loads vendor/ under -mod=vendor, and editors' file watchers descend into testdata.
SKIP_DIR_NAMES = frozenset({".git", ".hg", ".svn", ".jj", "node_modules"})


class WalkStats:
    """What a walk covered, and why it stopped early (empty `truncated` = it finished).
    A plain class: dataclasses would double the start-up time of the probe helpers."""

    __slots__ = ("errors", "truncated", "visited")

    def __init__(self) -> None:
        self.visited = 0
        self.truncated = ""
        self.errors: list[tuple[str, str]] = []  # (path, error), first few


def walk(
    root: str,
    stats: WalkStats,
    *,
    max_entries: int,
    seconds: float,
    skip_names: Collection[str] = SKIP_DIR_NAMES,
    skip_paths: Collection[str] = (),
    clock: Callable[[], float] = time.monotonic,
    before_list: Callable[[str], None] | None = None,
) -> Iterator[os.DirEntry[str]]:
    """Yield entries below `root` breadth first; stop after `max_entries` or `seconds`.
    `before_list(dir)` is called before each directory is read (a bounded helper's note)."""
    deadline = clock() + seconds
    queue: deque[str] = deque([root])
    while queue:
        directory = queue.popleft()
        if before_list is not None:
            before_list(directory)
        try:
            with os.scandir(directory) as it:
                entries = []
                for entry in it:
                    entries.append(entry)
                    if before_list is not None and len(entries) % 1000 == 0:
                        before_list(directory)  # still listing: a huge directory, not a hang
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

"""Rewriting workspace roots in LSP messages: how a trace recorded in one place replays in another.

Traces name files by absolute URI. `--root-map OLD=NEW` rewrites every occurrence of the old
root, as a URI and as a path, in every string and every dict key of every message, so a session
recorded in /home/me/proj (or stored with the placeholder file:///WORKSPACE) replays against a
fresh copy anywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PLACEHOLDER_ROOT", "RootMap"]

#: Where the corpus traces pretend their workspace was.
PLACEHOLDER_ROOT = "file:///WORKSPACE"

# Characters that continue a path segment: a root only matches where none of them follows (so
# /ws never rewrites /wsx) and none precedes (so /ws never rewrites /home/ws).
_SEGMENT = r"[\w.\-~%+@]"


class RootMap:
    """Rewrites workspace roots (as URIs and as paths) in every string of a message.

    Each OLD=NEW pair is given as a URI (file:///...) or a path; both forms are derived from
    either, so `file:///WORKSPACE=/tmp/copy` also turns "/WORKSPACE/main.go" into
    "/tmp/copy/main.go". Dict keys are rewritten too (WorkspaceEdit.changes is keyed by URI).
    """

    def __init__(self, pairs: Sequence[tuple[str, str]] = ()) -> None:
        table: dict[str, str] = {}
        for old, new in pairs:
            old_uri, old_path = _forms(old, resolve=False)
            new_uri, new_path = _forms(new, resolve=True)
            table.setdefault(old_uri, new_uri)
            table.setdefault(old_path, new_path)
        self.pairs = tuple(pairs)
        self._table = table
        alternatives = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
        self._regex = re.compile(f"(?<!{_SEGMENT})(?:{alternatives})(?!{_SEGMENT})"
                                 if table else r"(?!x)x")

    @classmethod
    def parse(cls, specs: Sequence[str]) -> RootMap:
        """From OLD=NEW strings (split at the first '='); ValueError names a bad one."""
        pairs: list[tuple[str, str]] = []
        for spec in specs:
            old, sep, new = spec.partition("=")
            if not sep or not old or not new:
                raise ValueError(f"--root-map {spec!r}: expected OLD=NEW (URIs or paths)")
            pairs.append((old, new))
        return cls(pairs)

    def __bool__(self) -> bool:
        return bool(self._table)

    def apply_str(self, text: str) -> str:
        if not self._table or "/" not in text:
            return text
        return self._regex.sub(lambda m: self._table[m.group(0)], text)

    def apply(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.apply_str(value)
        if isinstance(value, dict):
            return {self.apply_str(k): self.apply(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        return value


def _forms(root: str, *, resolve: bool) -> tuple[str, str]:
    """(URI, path) of a root given either way, without a trailing slash."""
    if root.startswith("file:"):
        uri = root.rstrip("/")
        path = unquote(urlparse(uri).path) or "/"
        return uri, path
    path = os.path.abspath(root) if resolve else root
    path = path.rstrip("/") or "/"
    return Path(path).as_uri() if path.startswith("/") else "file:///" + path, path

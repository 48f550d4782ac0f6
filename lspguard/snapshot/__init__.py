"""Incident evidence: a bundle directory per verdict (or on demand) and its report.html.

    write_bundle(IncidentContext) -> Path     bundle.py: collectors under one budget, atomic dir
    snapshot_now(IncidentContext) -> Path|None  the same, for hooks that must never raise
    render_report(bundle_dir) -> Path         report.py: the self-contained page
    list_bundles() / prune_bundles()          bundle.py

Names are loaded on first use: `lspguard.snapshot.cli` is imported whenever the CLI starts, and
must not pull in psutil, pygal or anyio for `lspguard --help`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bundle import BundleInfo, list_bundles, prune_bundles, snapshot_now, write_bundle
    from .context import IncidentContext, RecentMessage
    from .report import render_report

__all__ = ["BundleInfo", "IncidentContext", "RecentMessage", "list_bundles", "prune_bundles",
           "render_report", "snapshot_now", "write_bundle"]

_HOMES = {"BundleInfo": "bundle", "list_bundles": "bundle", "prune_bundles": "bundle",
          "snapshot_now": "bundle", "write_bundle": "bundle", "IncidentContext": "context",
          "RecentMessage": "context", "render_report": "report"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)

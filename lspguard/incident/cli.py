"""`lspguard report` and `lspguard bundles`: find, (re)render, open and prune incident bundles.

Heavy imports (psutil, pygal, msgspec) happen inside the command functions: this module is
imported every time the CLI starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lspguard.argtypes import int_at_least

__all__ = ["register_cli"]


def register_cli(subparsers: Any) -> None:
    """Add the `report` and `bundles` subcommands to the `lspguard` parser."""
    report = subparsers.add_parser(
        "report", help="print (and optionally open) the report of an incident bundle")
    report.add_argument("bundle", nargs="?", type=Path,
                        help="bundle directory or name (default: the newest bundle)")
    report.add_argument("--open", action="store_true", help="open report.html in a browser")
    report.add_argument("--rerender", action="store_true",
                        help="render report.html again from the bundle's files")
    report.add_argument("--dir", type=Path, help=argparse.SUPPRESS)  # bundles root, for tests
    report.set_defaults(func=_cmd_report)

    bundles = subparsers.add_parser("bundles", help="list incident bundles, newest first")
    bundles.add_argument("--json", action="store_true", help="print JSON")
    bundles.add_argument("--prune", action="store_true",
                         help="delete the oldest bundles beyond --keep / --max-mb")
    bundles.add_argument("--keep", type=int_at_least(0), metavar="N",
                         help="bundles to keep (default 20)")
    bundles.add_argument("--max-mb", type=int_at_least(0), metavar="MB",
                         help="total size to keep (default 200 MB)")
    bundles.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    bundles.set_defaults(func=_cmd_bundles)


def _root(args: argparse.Namespace) -> Path:
    from lspguard.incident.bundle import incidents_dir

    return Path(args.dir) if args.dir else incidents_dir()


def _cmd_report(args: argparse.Namespace) -> int:
    from lspguard.incident.bundle import list_bundles
    from lspguard.incident.report import render_report

    root = _root(args)
    if args.bundle is None:
        found = list_bundles(root)
        if not found:
            print(f"lspguard report: no incident bundles in {root}", file=sys.stderr)
            return 1
        bundle = found[0].path
    else:
        bundle = args.bundle if args.bundle.is_dir() else root / args.bundle
        if not (bundle / "incident.json").is_file():
            print(f"lspguard report: {args.bundle} is not an incident bundle", file=sys.stderr)
            return 1
    report = bundle / "report.html"
    if args.rerender or not report.is_file():
        report = render_report(bundle)
    print(report)
    if args.open:
        import webbrowser

        if not webbrowser.open(report.resolve().as_uri()):
            print("lspguard report: no browser could be started; open the file above",
                  file=sys.stderr)
    return 0


def _cmd_bundles(args: argparse.Namespace) -> int:
    from lspguard.incident.bundle import (
        DEFAULT_KEEP,
        DEFAULT_MAX_BYTES,
        list_bundles,
        prune_bundles,
    )

    root = _root(args)
    if args.prune:
        keep = DEFAULT_KEEP if args.keep is None else args.keep
        max_bytes = DEFAULT_MAX_BYTES if args.max_mb is None else args.max_mb * 1024 * 1024
        removed = prune_bundles(root, keep, max_bytes)
        for path in removed:
            print(f"removed {path}", file=sys.stderr)
    found = list_bundles(root)
    if args.json:
        print(json.dumps([b.as_dict() for b in found], indent=2))
        return 0
    if not found:
        print(f"no incident bundles in {root}")
        return 0
    for b in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.created_at))
        print(f"{when}  {b.kind:<18} {_size(b.size_bytes):>9}  {b.sentence}")
        print(f"    {b.path}")
    return 0


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"

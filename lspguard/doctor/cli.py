"""The `lspguard doctor` subcommand (registered through lspguard.cli.main.COMMAND_MODULES).

Only argparse is imported at module level: the CLI must start fast, so the checks are imported
when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lspguard.argtypes import int_at_least

__all__ = ["register_cli"]

_CHECK_NAMES = ("toolchain", "goenv", "mounts", "writable", "symlinks", "special", "devcontainer",
                "latency")

_EPILOG = """\
checks: toolchain (go and gopls versions), goenv (`go env` sanity), mounts (caches and
workspace on slow/foreign filesystems), writable (GOCACHE, GOMODCACHE, gopls cache),
symlinks (loops, links out of the workspace or into the module cache), special (FIFOs,
sockets, devices in the workspace, worst when named like Go files), devcontainer
(devcontainer.json mount mistakes, with line numbers), latency (stat p50/p99).

Every filesystem probe and command runs in a helper process with a deadline: a mount that
does not answer is reported as filesystem.not-answering (the call, the fs type, the mount
point) instead of hanging the doctor, which finishes within about 30 s.

exit status: 0 nothing worse than info, 1 warnings, 2 errors.
--json prints {"version": 1, "workspace", "worst", "findings": [{"id", "severity", "title",
"found", "why", "fix", "path", "line"}]} (see lspguard/doctor/render.py).
"""


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `doctor` to the lspguard command line."""
    doctor = subparsers.add_parser(
        "doctor", help="check this machine and workspace for known causes of gopls hangs",
        description="Check what the field reports as causes of gopls hangs (Dev Containers, "
                    "SSH, macOS Docker Desktop) and say, for each finding, what was found, why "
                    "it matters for gopls, and the fix.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument("workspace", nargs="?", type=Path, default=None,
                        help="the folder opened in the editor (default: current directory)")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--check", action="append", choices=_CHECK_NAMES, metavar="CHECK",
                        help="run only this check (repeatable): " + ", ".join(_CHECK_NAMES))
    doctor.add_argument("--max-files", type=int_at_least(1), default=None,
                        help="entries the symlink walk may visit (default 20000)")
    doctor.add_argument("--sample", type=int_at_least(1), default=None,
                        help="files stat'ed per tree for the latency sample (default 200)")
    doctor.add_argument("--gopls", default="",
                        help="the real gopls to check (default: LSPGUARD_GOPLS or PATH)")
    doctor.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    import dataclasses

    from lspguard.doctor.context import Limits
    from lspguard.doctor.render import render_json, render_text
    from lspguard.doctor.runner import run_doctor

    limits = Limits()
    if args.max_files is not None:
        limits = dataclasses.replace(limits, max_files=args.max_files)
    if args.sample is not None:
        limits = dataclasses.replace(limits, sample_files=args.sample)
    report = run_doctor(args.workspace or Path.cwd(), checks=args.check, limits=limits,
                        gopls=args.gopls)
    sys.stdout.write(render_json(report) + "\n" if args.json else render_text(report))
    return report.exit_code

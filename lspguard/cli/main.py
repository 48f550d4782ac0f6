"""`lspguard`: the management command line (run, install-shim, status, ...).

The gopls drop-in shim has its own entry point (shim/main.py) so that `gopls version` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lspguard import __version__
from lspguard.errors import ConfigError, LspguardError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

# Modules that add their own subcommands: each defines `register_cli(subparsers) -> None` and
# keeps heavy imports inside its command functions (the CLI must start fast).
COMMAND_MODULES: tuple[str, ...] = ("lspguard.control.cli", "lspguard.doctor.cli",
                                    "lspguard.incident.cli", "lspguard.replay.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # `lspguard run` is what an editor starts: it does not pay for the other commands' modules.
    parser = _parser(others=argv[:1] != ["run"])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"lspguard: {exc}", file=sys.stderr)
        return 2
    except LspguardError as exc:
        print(f"lspguard: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `lspguard bundles | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a path that is missing, a directory, not writable, ...
        print(f"lspguard: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lspguard: interrupted", file=sys.stderr)
        return 130
    return code


def _parser(*, others: bool = True) -> argparse.ArgumentParser:
    """The command line; without `others`, the commands of COMMAND_MODULES are left out."""
    parser = argparse.ArgumentParser(
        prog="lspguard",
        description="Supervising proxy for language servers (gopls first).")
    parser.add_argument("--version", action="version", version=f"lspguard {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="guard any stdio language server: lspguard run -- CMD...")
    run.add_argument("--config", help="config file (default: LSPGUARD_CONFIG, .lspguard.toml, "
                     "user config dir)")
    run.add_argument("--log-stderr", action="store_true", default=None,
                     help="also log to stderr (never stdout)")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    run.set_defaults(func=_cmd_run)

    shim = sub.add_parser("install-shim",
                          help="write DIR/gopls, a drop-in for go.alternateTools.gopls (native: "
                               "built with your Go toolchain)")
    shim.add_argument("directory", type=Path)
    shim.add_argument("--config", type=Path, help="config file the shim should always use")
    shim.add_argument("--force", action="store_true", help="overwrite an existing file")
    shim.add_argument("--script", action="store_true",
                      help="write the Python script shim, not the native one built with Go "
                           "(VS Code Go then warns \"Tools (gopls) need recompiling\")")
    shim.set_defaults(func=_cmd_install_shim)

    demo = sub.add_parser("demo", help="run a scripted editor session through lspguard against "
                          "real gopls on the bundled sample module and say what happened")
    demo.add_argument("--workspace", type=Path, help="Go module to open (default: bundled sample)")
    demo.add_argument("--gopls", help="the real gopls (default: LSPGUARD_GOPLS or PATH)")
    demo.set_defaults(func=_cmd_demo)

    status = sub.add_parser("status", help="list live lspguard sessions")
    status.add_argument("--json", action="store_true", help="print the raw status documents")
    status.set_defaults(func=_cmd_status)

    for name in COMMAND_MODULES if others else ():
        importlib.import_module(name).register_cli(sub)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from lspguard.argtypes import server_command
    from lspguard.config.model import resolve_config
    from lspguard.proxy import early, proctitle

    command = server_command(args, "lspguard run -- gopls serve")
    if command is None:
        return 2
    config = resolve_config(args.config)
    command = [*command, *config.backend.args]
    proctitle.set_comm()  # never pass for the server (pkill gopls); the title comes after
    # Before the event loop and the session are imported: the server's start-up overlaps ours.
    early.spawn_first(command, config)
    from lspguard.session.run import exit_code_or_exit_now, run_proxy

    return exit_code_or_exit_now(run_proxy(command, config, log_stderr=args.log_stderr))


def _ms(value: object) -> str:
    return "not yet" if value is None else f"{value} ms"


def _cmd_install_shim(args: argparse.Namespace) -> int:
    import json

    from lspguard.shim.install import SCRIPT_WARNING, install_shim_report

    shim = install_shim_report(args.directory, config=args.config, force=args.force,
                               script=args.script)
    path = shim.path
    print(f"wrote {path}")
    if shim.kind == "native":
        print("native shim: `go version -m` reports the Go toolchain that built it")
    else:
        print(f"warning: a Python script shim ({shim.why_script}): {SCRIPT_WARNING}",
              file=sys.stderr)
    if args.config is not None and not Path(args.config).expanduser().is_file():
        print(f"warning: {args.config} does not exist (yet): until it does, the shim fails, "
              "`gopls version` too", file=sys.stderr)
    print("In VS Code settings (workspace or user):")
    print(json.dumps({"go.alternateTools": {"gopls": str(path)}}, indent=2))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from lspguard.demo.main import run_demo

    return run_demo(workspace=args.workspace, gopls=args.gopls)


def _cmd_status(args: argparse.Namespace) -> int:
    import json

    from lspguard.status.file import read_statuses

    docs = read_statuses()
    if args.json:
        print(json.dumps(docs, indent=2))
        return 0
    if not docs:
        print("no live lspguard sessions")
        return 0
    for doc in docs:
        backend = doc.get("backend", {})
        hs = doc.get("handshake", {})
        uptime = time.strftime("%H:%M:%S", time.gmtime(doc.get("uptime_s", 0)))
        print(f"pid {doc['pid']}  {doc.get('state')}  up {uptime}  "
              f"backend pid {backend.get('pid')} gen {backend.get('generation')} "
              f"({backend.get('label', 'primary')})  restarts {doc.get('restarts')}")
        print(f"  workspace: {', '.join(doc.get('workspace_folders') or []) or '-'}")
        last = doc.get("last_verdict")
        if last:
            when = time.strftime("%H:%M:%S", time.localtime(last.get("at", 0)))
            print(f"  last verdict ({when}): {last.get('kind')}: {last.get('summary')}")
            if last.get("bundle"):
                print(f"  incident report: {last['bundle']}/report.html")
        cause = doc.get("cause")
        if doc.get("state") == "waiting" and isinstance(cause, dict):
            print(f"  WAITING ON {cause.get('class')} for {cause.get('waited_s')} s: "
                  f"{cause.get('sentence')}")
            print(f"  fix: {cause.get('fix')}")
            print("  (requests are answered at once; lspguard resumes when this clears)")
        slow = doc.get("slow")
        if doc.get("state") == "slow" and isinstance(slow, dict):
            print(f"  SLOW: {slow.get('sentence') or slow.get('mount_point')}")
            if slow.get("fix"):
                print(f"  fix: {slow['fix']}")
            print("  (gopls is working: requests wait for it, and nothing is restarted)")
        if doc.get("degraded"):
            print(f"  DEGRADED: {doc['degraded']}")
        memory = doc.get("memory")
        if isinstance(memory, dict):
            print(f"  memory: {_memory(memory)}")
        print(f"  handshake: initialize {_ms(hs.get('initialize_ms'))}, "
              f"{hs.get('first_work_title') or 'first work'} {_ms(hs.get('first_work_ms'))}")
        for method, lat in sorted(doc.get("latency", {}).items()):
            print(f"  {method}: n={lat['count']} p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms")
        print(f"  log: {doc.get('log_file')}")
    return 0


def _memory(memory: dict[str, Any]) -> str:
    """The status file's `memory` in one line: RSS against the limit, peak, OOM kills,
    GOMEMLIMIT; "NEAR THE LIMIT" when the OOM killer may strike soon."""
    from lspguard.causes.memory import format_bytes

    rss, peak, limit = (memory.get(k) for k in ("rss_bytes", "peak_rss_bytes", "limit_bytes"))
    if isinstance(rss, int) and isinstance(limit, int) and limit > 0:
        parts = [f"gopls {format_bytes(rss)} of a {format_bytes(limit, binary=True)} limit "
                 f"({100 * rss / limit:.0f}%)"]
    elif isinstance(rss, int):
        parts = [f"gopls {format_bytes(rss)}, no memory limit found"]
    else:
        parts = [f"limit {format_bytes(limit, binary=True)}" if isinstance(limit, int)
                 else "no memory limit found"]
    if isinstance(limit, int) and memory.get("limit_source"):
        parts[0] += f" [{memory['limit_source']}]"
    if isinstance(peak, int) and peak > (rss if isinstance(rss, int) else 0):
        parts.append(f"peak {format_bytes(peak)}")
    kills = memory.get("oom_kills")
    if isinstance(kills, int) and kills > 0:
        parts.append(f"{kills} OOM kill{'' if kills == 1 else 's'}")
    if memory.get("gomemlimit"):
        parts.append(f"GOMEMLIMIT={memory['gomemlimit']}")
    line = ", ".join(parts)
    return f"{line}: NEAR THE LIMIT" if memory.get("near_limit") else line


if __name__ == "__main__":
    raise SystemExit(main())

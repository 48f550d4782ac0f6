"""`lspguard restart [PID]`, `lspguard snapshot [PID]` and `lspguard paths`: the command-line
side of the control socket (control/client.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lspguard import paths
from lspguard.control.client import call_control, find_sessions, is_socket
from lspguard.control.common import ControlError, json_default, socket_path

__all__ = ["register_cli"]


_CLI_COMMANDS = {
    "restart": "restart the language server of a live session (through its control socket)",
    "snapshot": "write an incident bundle for a live session now, without restarting it",
}


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text in _CLI_COMMANDS.items():
        parser = subparsers.add_parser(name, help=text, description=text)
        parser.add_argument("pid", nargs="?", type=int,
                            help="the proxy's pid (see `lspguard status`); optional when exactly "
                                 "one session is live")
        parser.add_argument("--json", action="store_true", help="print the raw result as JSON")
        parser.add_argument("--timeout", type=_positive_seconds, default=60.0,
                            help="seconds to wait for the answer (default: %(default)s)")
        parser.set_defaults(func=_cmd_control, control_command=name)
    where = subparsers.add_parser(
        "paths", help="print where lspguard keeps status files, control sockets and state",
        description="Print lspguard's private directories (the VS Code extension asks this to "
                    "find the sessions' status files and control sockets).")
    where.add_argument("--json", action="store_true", help="print them as a JSON object")
    where.set_defaults(func=_cmd_paths)


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _cmd_paths(args: argparse.Namespace) -> int:
    found = {"runtime_dir": str(paths.runtime_dir()), "sessions_dir": str(paths.sessions_dir()),
             "state_dir": str(paths.state_dir()), "config_dir": str(paths.config_dir())}
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for key, value in found.items():
            print(f"{key}: {value}")
    return 0


def _cmd_control(args: argparse.Namespace) -> int:
    command: str = args.control_command
    target = _pick_session(command, args.pid)
    if isinstance(target, int):
        return target
    pid, path = target
    result = call_control(path, command, timeout=args.timeout)
    if args.json:
        print(json.dumps(result, indent=2, default=json_default))
    elif command == "restart" and isinstance(result, dict):
        print(f"session {pid}: " + ("a restart is already under way" if result.get("already")
                                    else f"restarting (replacing generation "
                                         f"{result.get('generation')})"))
    elif result is None:
        print(f"{command}: done (session {pid})")
    elif isinstance(result, str):
        print(result)
    elif isinstance(result, dict):
        for key, value in result.items():
            shown = value if isinstance(value, (str, int, float, bool)) or value is None \
                else json.dumps(value, default=json_default)
            print(f"{key}: {shown}")
    else:
        print(json.dumps(result, default=json_default))
    return 0


def _pick_session(command: str, pid: int | None) -> tuple[int, Path] | int:
    """The (pid, socket) to act on, or an exit code after telling the user why there is none."""
    sessions = find_sessions()
    if pid is not None:
        path = socket_path(pid)
        if is_socket(path):
            return pid, path
        raise ControlError(f"no live lspguard session with pid {pid} (no control socket at "
                           f"{path}); `lspguard status` lists the live ones")
    usable = [s for s in sessions if s.get("socket")]
    if len(usable) == 1:
        return int(usable[0]["pid"]), Path(usable[0]["socket"])
    if not usable:
        print("no live lspguard session with a control socket"
              + (f" ({len(sessions)} without one)" if sessions else ""), file=sys.stderr)
        return 1
    print(f"{len(usable)} live lspguard sessions; say which one: lspguard {command} PID",
          file=sys.stderr)
    for doc in usable:
        folders = ", ".join(doc.get("workspace_folders") or []) or "-"
        print(f"  {doc['pid']}  {doc.get('state', '?')}  {folders}", file=sys.stderr)
    return 2

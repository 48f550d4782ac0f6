"""`lspguard record`, `lspguard replay` and `lspguard import-trace`: the command-line side of
record and replay (README: "Record and replay").

Heavy imports stay inside the command functions: the CLI must start fast.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lspguard.replay.report import ReplayReport
    from lspguard.replay.run import Deadlines
    from lspguard.trace.format import Trace

__all__ = ["REPLAY_USAGE", "ReplayUsageError", "parse_replay_args", "register_cli"]

_EPILOG = """\
exit codes: 0 every answer as recorded; 1 divergence (different, extra or unexpected answers);
2 hang or crash (a request past its deadline, the server died, the replay did not finish);
3 bad input (malformed trace, bad arguments, server cannot start).

Results are compared after --root-map, ignoring keys named `data` (opaque server state) and
initialize's serverInfo.version; errors compare by message. A trace recorded without
--include-text has placeholder document text, so its results are compared by shape only.
"""


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `record`, `replay` and `import-trace` to the lspguard CLI."""
    record = subparsers.add_parser(
        "record", help="guard a server and record the session: lspguard record -- CMD...",
        description="Run the guarded proxy (like `lspguard run`) with tracing on. Document text "
        "is redacted unless --include-text is given; a faithful replay needs the text.")
    record.add_argument("--out", type=Path, help="trace file (default: a new file in the "
                        "lspguard state dir, traces/)")
    record.add_argument("--include-text", action="store_true",
                        help="keep document text and rendered contents (needed for a faithful "
                        "replay; the trace then contains your code)")
    record.add_argument("--config", help="config file, as for `lspguard run`")
    record.add_argument("--log-stderr", action="store_true", default=None,
                        help="also log to stderr (never stdout)")
    record.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    record.set_defaults(func=_cmd_record)

    replay = subparsers.add_parser(
        "replay", help="replay a trace against a server, headless, and compare: "
        "lspguard replay TRACE [options] -- CMD...",
        # Everything after `replay` goes as it is to the replay parser (`_replay_parser`): its
        # options follow TRACE and end at `--`, which one argparse pass cannot express (a
        # REMAINDER positional after TRACE swallows them). No argv string can contain NUL, so
        # with NUL as the only prefix character nothing is an option here, not even -h.
        prefix_chars="\0", add_help=False)
    replay.add_argument("operands", nargs=argparse.REMAINDER)
    replay.set_defaults(func=_cmd_replay)

    imp = subparsers.add_parser(
        "import-trace", help="convert a VS Code / gopls -rpc.trace / lsp-devtools log to a trace")
    imp.add_argument("log", type=Path)
    imp.add_argument("--out", type=Path, required=True, help="trace file to write")
    imp.add_argument("--format", default="auto",
                     help="auto, vscode, gopls, lsp-devtools, lspguard (default auto)")
    imp.add_argument("--root-map", action="append", default=[], metavar="OLD=NEW",
                     help="rewrite a root while importing, e.g. to file:///WORKSPACE; repeatable")
    imp.add_argument("--server-command", default="", help="server command line to note in the "
                     "header")
    imp.set_defaults(func=_cmd_import)


# ------------------------------------------------------------------------------------- record


def _cmd_record(args: argparse.Namespace) -> int:
    from lspguard.argtypes import server_command
    from lspguard.config.model import resolve_config
    from lspguard.session.run import default_trace_path, exit_code_or_exit_now, run_proxy

    command = server_command(args, "lspguard record --out session.jsonl -- gopls serve")
    if command is None:
        return 2
    config = resolve_config(args.config)
    out: Path = args.out or default_trace_path(config)
    # stdout is the LSP stream: say where the trace goes on stderr only.
    print(f"lspguard record: writing {out}"
          + ("" if args.include_text else " (document text redacted)"), file=sys.stderr)
    return exit_code_or_exit_now(
        run_proxy([*command, *config.backend.args], config, log_stderr=args.log_stderr,
                  trace_path=out, include_text=args.include_text))


# ------------------------------------------------------------------------------------- replay

REPLAY_USAGE = "lspguard replay TRACE [options] -- SERVER [ARGS...]"


class ReplayUsageError(Exception):
    """A `lspguard replay` command line that cannot be run as written (exit 3: bad input)."""


class _ReplayParser(argparse.ArgumentParser):
    """argparse, but a usage error is an exception (replay exits 3 on bad input, not 2:
    2 means a hang)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.own_options: set[str] = {"-h", "--help"}

    def error(self, message: str) -> NoReturn:
        raise ReplayUsageError(message)


def _replay_parser() -> _ReplayParser:
    """The parser of `lspguard replay TRACE [options]` (the part before `--`)."""
    replay = _ReplayParser(
        prog="lspguard replay", usage=REPLAY_USAGE,
        description="Drive a stdio language server with the editor's side of a trace and\n"
        "report latency, divergences and hangs. The server command comes last, after --,\n"
        "as for `lspguard run -- CMD` and `lspguard record -- CMD`:\n\n"
        "  lspguard replay session.jsonl --asap --root-map file:///WORKSPACE=$PWD -- gopls",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)

    def opt(add: Callable[..., argparse.Action], *names: str, **kw: Any) -> None:
        replay.own_options.update(add(*names, **kw).option_strings)

    add = replay.add_argument
    add("trace", metavar="TRACE", help="trace file (lspguard format unless --from says otherwise)")
    opt(add, "--from", dest="fmt", default="lspguard", help="read another log format directly: "
        "vscode, gopls, lsp-devtools, auto (default: lspguard)")
    opt(add, "--root-map", action="append", default=[], metavar="OLD=NEW",
        help="rewrite a workspace root (URI or path) in every message; repeatable")
    pace = replay.add_mutually_exclusive_group().add_argument
    opt(pace, "--speed", default="1", metavar="N", help="recorded pacing divided by N (default 1)")
    opt(pace, "--asap", action="store_true", help="send as fast as causality allows (still "
        "waits for answers the editor had seen)")
    opt(add, "--timeout", metavar="S", help="deadline in seconds for every request (default: "
        "the watchdog's per-method deadlines from the config)")
    opt(add, "--deadline", action="append", default=[], metavar="METHOD=S",
        help="deadline for one method; repeatable")
    opt(add, "--ignore-key", action="append", default=[], metavar="KEY",
        help="also ignore this key wherever it appears when comparing")
    opt(add, "--json", nargs="?", const="-", metavar="FILE", help="write the JSON report to "
        "FILE; with no FILE or '-', print it on stdout instead of the text report (and nothing "
        "else)")
    opt(add, "--guard", action="store_true",
        help="run the server through `lspguard run` (the proxy under test)")
    opt(add, "--cwd", help="server working directory (default: the first mapped workspace "
        "folder, if it exists)")
    opt(add, "--config", help="config file for the deadlines")
    opt(add, "--quiet", action="store_true", help="no progress, short report")
    opt(add, "--server", nargs=argparse.REMAINDER, metavar="CMD",
        help="deprecated: the server command as the last option; write -- CMD [ARGS...]")
    return replay


def _own_option(parser: _ReplayParser, arg: str) -> str | None:
    """The replay option `arg` is (`--asap`, `--json=r.json`, ...), or None."""
    name = arg.split("=", 1)[0] if arg.startswith("--") else arg
    return name if name in parser.own_options else None


def parse_replay_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `TRACE [options] -- SERVER...` (what follows `lspguard replay`); the server
    command is in `.server`. Raises ReplayUsageError; -h/--help prints the help and exits 0.

    `--server CMD...` (the old form: last, swallowing the rest) is still read, but refuses an
    option of replay's own among what it would swallow: `--server gopls --asap` once started
    `gopls --asap`.
    """
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    before, after = argv[:split], argv[split + 1:]
    parser = _replay_parser()
    args = parser.parse_args(before)
    old = args.server
    args.deprecated_server = old is not None
    if old:
        for arg in old:
            own = _own_option(parser, arg)
            if own is not None:
                raise ReplayUsageError(
                    f"--server must come last: it would pass {arg!r} to the server, but "
                    f"{own} is an option of lspguard replay; put the server after -- instead: "
                    f"{REPLAY_USAGE}")
        if split < len(argv):
            raise ReplayUsageError(f"two server commands: --server {' '.join(old)} and -- "
                                   f"{' '.join(after)}; give one, after --")
    args.server = list(old) if old else after
    if not args.server:
        raise ReplayUsageError(f"give the server command after --, e.g. lspguard replay "
                               f"{args.trace} --asap -- gopls")
    return args


def _cmd_replay(ns: argparse.Namespace) -> int:
    from lspguard.errors import ConfigError, TraceError
    from lspguard.replay.report import EXIT_BAD_INPUT, VOLATILE_KEYS
    from lspguard.replay.run import ReplayOptions, run_replay
    from lspguard.trace.rootmap import RootMap

    try:
        args = parse_replay_args(ns.operands)
    except ReplayUsageError as exc:
        print(f"lspguard replay: {exc}\nusage: {REPLAY_USAGE} (lspguard replay -h for more)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # -h
        return exc.code if isinstance(exc.code, int) else 0
    if args.deprecated_server:
        print(f"lspguard replay: --server is deprecated; write the server last, after --: "
              f"{REPLAY_USAGE}", file=sys.stderr)
    server: list[str] = args.server
    try:
        if args.asap and args.speed != "1":
            raise ValueError("--speed and --asap exclude each other")
        speed = _positive(args.speed, "--speed")
        root_map = RootMap.parse(args.root_map)
        deadlines = _deadlines(args)
        trace = _load(args.trace, args.fmt)
        if args.json not in (None, "-"):  # checked now: not after a long replay
            _check_output_file(args.json, "--json")
            if os.path.exists(args.json) and os.path.samefile(args.json, args.trace):
                raise ValueError(f"--json {args.json} is the trace itself")
        if args.guard and shutil.which(server[0]) is None:  # the guard would start, then fail
            raise ValueError(f"cannot start {server[0]!r}: not found or not executable")
    except (ValueError, TraceError, ConfigError) as exc:
        print(f"lspguard replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.guard:
        server = [sys.executable, "-m", "lspguard", "run", "--", *server]
    progress = _Progress() if sys.stderr.isatty() and not args.quiet else None
    options = ReplayOptions(server=server, root_map=root_map, speed=speed, asap=args.asap,
                            deadlines=deadlines, ignore_keys=VOLATILE_KEYS | set(args.ignore_key),
                            cwd=args.cwd, on_progress=progress)
    try:
        report = run_replay(trace, options)
    finally:
        if progress is not None:
            progress.clear()
    _emit(report, args.json, quiet=args.quiet)
    return report.exit_code


def _load(path: str, fmt: str) -> Trace:
    from lspguard.trace.importers import import_log
    from lspguard.trace.reader import read_trace

    if fmt == "lspguard":
        return read_trace(path)
    return import_log(path, fmt).trace


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive number, got {text!r}")
    return value


def _deadlines(args: argparse.Namespace) -> Deadlines:
    """--timeout for everything, else the config's watchdog table; then --deadline entries."""
    from lspguard.replay.run import Deadlines

    per_method: dict[str, float] = {}
    if args.timeout is not None:
        default = _positive(args.timeout, "--timeout")
    else:
        from lspguard.config import model as config_module

        watchdog: Any = getattr(config_module.resolve_config(args.config), "watchdog", None)
        default = float(getattr(watchdog, "default_deadline", 30.0))
        per_method.update(getattr(config_module, "DEFAULT_DEADLINES", {}))
        per_method.update(getattr(watchdog, "deadlines", {}))
    for spec in args.deadline:
        method, sep, seconds = spec.rpartition("=")
        if not sep or not method:
            raise ValueError(f"--deadline {spec!r}: expected METHOD=SECONDS")
        per_method[method] = _positive(seconds, f"--deadline {method}")
    return Deadlines(default, per_method)


def _check_output_file(text: str, flag: str) -> None:
    path = Path(text)
    if path.is_dir() or not path.parent.is_dir():
        raise ValueError(f"{flag} {text}: not a file in an existing directory")


def _emit(report: ReplayReport, json_path: str | None, *, quiet: bool) -> None:
    if json_path == "-":
        sys.stdout.write(report.to_json_text())
        return
    if json_path:
        Path(json_path).write_text(report.to_json_text(), encoding="utf-8")
    sys.stdout.write(report.render_text(all_requests=not quiet))


class _Progress:
    """One self-overwriting status line on a terminal (stderr), at most ~10 updates a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.width = 0

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        columns = max(20, _terminal_columns() - 1)
        text = line[:columns]
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _terminal_columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        return 80


# ------------------------------------------------------------------------------------- import


def _cmd_import(args: argparse.Namespace) -> int:
    import shlex

    from lspguard.errors import TraceError
    from lspguard.replay.report import EXIT_BAD_INPUT
    from lspguard.trace.importers import import_log
    from lspguard.trace.rootmap import RootMap
    from lspguard.trace.writer import write_trace

    try:
        result = import_log(args.log, args.format, root_map=RootMap.parse(args.root_map),
                            server_command=shlex.split(args.server_command))
        write_trace(result.trace, args.out)
    except (ValueError, TraceError, OSError) as exc:
        print(f"lspguard import-trace: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    kinds = {"c2s": 0, "s2c": 0}
    for entry in result.trace.entries:
        kinds[entry.dir] = kinds.get(entry.dir, 0) + 1
    print(f"{args.out}: {len(result.trace.entries)} messages from a {result.format} log "
          f"({kinds['c2s']} from the editor, {kinds['s2c']} from the server; "
          f"{result.skipped} other log entries skipped)")
    return 0

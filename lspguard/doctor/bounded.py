"""Run a filesystem probe or a command in a helper process that can be abandoned.

Every probe runs in `python -I -S` in a helper process (lspguard.procfs.helper: why a process,
not a thread). The parent only reads the helper's pipes with a deadline, kills its session on
timeout and polls its exit: it never blocks on reaping a process stuck in the kernel.

The helper side is `_probe.serve`; the probes themselves are in `probes.py`. Protocol, on the
helper's stdout, one line each: `@["op", "path", long]` before every call that may block (it
restarts the parent's stall clock, and on a timeout says what hung); then `=VALUE` (the JSON
result) or `!"error"`. A command is run by exec'ing it after `@["exec", path, true]`: what
follows on stdout is the command's own output, and its exit status is the helper's.
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lspguard.procfs.helper import Helper, reap_abandoned

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["CommandResult", "Done", "Failed", "TimedOut", "run_bounded", "run_command"]

_ROOT = str(Path(__file__).resolve().parent.parent.parent)  # the directory holding lspguard/
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from lspguard.doctor._probe import serve; serve()")
_MAX_OUTPUT = 8 << 20
_REAP_SECONDS = 0.25  # how long a killed helper gets to die before it is abandoned


@dataclass(frozen=True, slots=True)
class Done:
    """The helper finished: `value` is the probe's JSON result."""

    value: Any
    seconds: float


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The helper was killed. `op`/`path` is the last call it announced ("start" with no path
    if it never got that far); `limit` is the allowance that ran out."""

    op: str
    path: str
    limit: float
    waited: float  # how long `op` had been outstanding
    long: bool  # the op was one allowed to take long (a command), not a single syscall
    reaped: bool  # False: it did not die at once (stuck in the kernel) and was abandoned
    pid: int

    def describe(self) -> str:
        return f"{self.op} on {self.path} did not return within {self.limit:g} s"


@dataclass(frozen=True, slots=True)
class Failed:
    """The helper could not start or its probe raised; a bug or a broken installation."""

    error: str


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command that ran to its end (or could not be found: `path` is "")."""

    argv: tuple[str, ...]
    path: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return bool(self.path) and self.returncode == 0

    def describe(self) -> str:
        cmd = " ".join(self.argv)
        if not self.path:
            return f"`{cmd}` could not start: {self.argv[0]} not found"
        tail = (self.stderr.strip() or self.stdout.strip())[-500:]
        return f"`{cmd}` exited with status {self.returncode}" + (f": {tail}" if tail else "")


# ------------------------------------------------------------------------------- parent side


class _Reader:
    """Splits the helper's stdout into notes, the result, and (after exec) raw output."""

    def __init__(self) -> None:
        self.pending = b""
        self.op: tuple[str, str, bool] | None = None
        self.op_since = 0.0
        self.result: tuple[str, Any] | None = None
        self.raw: bytearray | None = None  # set once the helper exec'ed a command

    def feed(self, data: bytes, now: float) -> None:
        if self.raw is not None:
            self.raw += data[:max(0, _MAX_OUTPUT - len(self.raw))]
            return
        self.pending += data
        while self.raw is None and b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            kind, body = line[:1], line[1:]
            try:
                value = json.loads(body)
            except ValueError:
                continue
            if kind == b"@":
                self.op, self.op_since = (str(value[0]), str(value[1]), bool(value[2])), now
                if self.op[0] == "exec":
                    self.raw = bytearray(self.pending)
                    self.pending = b""
            elif kind in (b"=", b"!"):
                self.result = (kind.decode(), value)


def _timed_out(reader: _Reader, limit: float, now: float, helper: Helper) -> TimedOut:
    name, path, long = reader.op if reader.op is not None else ("start", "", False)
    waited = now - reader.op_since if reader.op is not None else limit
    return TimedOut(name, path, limit, waited, long, helper.kill(_REAP_SECONDS), helper.pid)


def _run(func: str, args: Any, *, timeout: float, stall: float | None,
         env: Mapping[str, str] | None) -> tuple[Done | TimedOut | Failed, _Reader, bytes, int]:
    """Run the helper; also hand back what it printed and its exit status (for commands)."""
    reap_abandoned()
    argv = [sys.executable, "-I", "-S", "-c", _BOOT, _ROOT, func, json.dumps(args)]
    start = time.monotonic()
    try:
        helper = Helper(argv, env=os.environ if env is None else env)
    except OSError as exc:
        return Failed(f"cannot start {sys.executable}: {exc}"), _Reader(), b"", -1
    out_r = helper.stdout
    reader, err = _Reader(), bytearray()
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ)
    if helper.stderr is not None:
        sel.register(helper.stderr, selectors.EVENT_READ)
    try:
        while sel.get_map():
            now = time.monotonic()
            limit, until = timeout, start + timeout
            op = reader.op
            if op is not None and stall is not None and not op[2] \
                    and reader.op_since + stall < until:
                limit, until = stall, reader.op_since + stall
            if now >= until:
                return _timed_out(reader, limit, now, helper), reader, bytes(err), -1
            for key, _ in sel.select(until - now):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                elif key.fd == out_r:
                    reader.feed(data, time.monotonic())
                elif len(err) < _MAX_OUTPUT:
                    err += data
        status = helper.poll(max(0.5, start + timeout - time.monotonic()))
        if status is None:  # closed its pipes but lives on: treat as hung
            return _timed_out(reader, timeout, time.monotonic(), helper), reader, bytes(err), -1
    finally:
        sel.close()
        helper.close()
    seconds = time.monotonic() - start
    if reader.raw is not None:
        return Done(None, seconds), reader, bytes(err), status
    if reader.result is None:
        tail = err.decode(errors="replace").strip()[-500:]
        return Failed(f"helper exited with status {status} and no result: {tail}"), reader, \
            bytes(err), status
    kind, value = reader.result
    if kind == "!":
        return Failed(str(value)), reader, bytes(err), status
    return Done(value, seconds), reader, bytes(err), status


def run_bounded(func: str, args: Any, *, timeout: float, stall: float | None = None,
                env: Mapping[str, str] | None = None) -> Done | TimedOut | Failed:
    """Call `func` ("package.module:function", taking and returning JSON values) in a helper.

    It is killed and abandoned after `timeout` s in all, or once one announced call has not
    returned for `stall` s. `env` is the helper's environment (default: ours)."""
    outcome, _, _, _ = _run(func, args, timeout=timeout, stall=stall, env=env)
    return outcome


def run_command(argv: Sequence[str], *, cwd: str, env: Mapping[str, str], timeout: float,
                stall: float | None = None) -> CommandResult | TimedOut | Failed:
    """Run `argv` with no stdin from `cwd` under `env`, like subprocess.run with a timeout, but
    with the PATH lookup, the chdir and the exec in the helper: each may hang on a dead mount.
    `stall` bounds each of those steps; `timeout` the whole run."""
    args = {"argv": list(argv), "cwd": cwd}
    outcome, reader, err, status = _run("lspguard.doctor.probes:command", args,
                                        timeout=timeout, stall=stall, env=env)
    if not isinstance(outcome, Done):
        return outcome
    if reader.raw is None:  # the probe returned instead of exec'ing: not found
        return CommandResult(tuple(argv), "", 127, "", str(outcome.value or ""))
    path = reader.op[1] if reader.op else ""
    return CommandResult(tuple(argv), path, status, reader.raw.decode(errors="replace"),
                         err.decode(errors="replace"))

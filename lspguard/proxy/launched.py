"""What the native gopls shim did before it exec'd Python (lspguard/shim/launcher/main.go).

The shim spawns the real gopls as soon as it starts, then execs Python in the same process:
gopls is therefore our child, and its pipes are open in this process (inherited across the
exec). It says so in $LSPGUARD_LAUNCHER (JSON): its own path (never to be taken for the real
gopls), and, when it spawned gopls, the pid, our three pipe ends and gopls's argv.
`from_environment` reads it (once: it is removed from the environment, so no gopls inherits
it), and `InheritedChild` is the spawned gopls behind the part of `subprocess.Popen` that
early.py and the backend use.

Standard library only, like early.py: read before anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Any, Protocol

__all__ = ["ENV", "ChildProcess", "InheritedChild", "Launch", "from_environment"]

ENV = "LSPGUARD_LAUNCHER"
PROTOCOL = 1  # the payload's "v": a shim built by another lspguard may speak another


class ChildProcess(Protocol):
    """The part of `subprocess.Popen` a spawned-early gopls is used through."""

    @property
    def pid(self) -> int: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def stderr(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


@dataclass(frozen=True)
class Launch:
    """The native shim's report (see the module docstring)."""

    shim: str  # the shim's own executable
    version: str  # the lspguard that built it
    go: str  # the Go toolchain that built it
    pid: int | None = None  # gopls, spawned early (None: the shim spawned nothing)
    stdin: int = -1  # our end of gopls's stdin
    stdout: int = -1  # our end of gopls's stdout
    stderr: int = -1  # our end of gopls's stderr
    argv: tuple[str, ...] = ()

    @property
    def spawned(self) -> bool:
        return self.pid is not None


def from_environment(environ: dict[str, str] | os._Environ[str] | None = None) -> Launch | None:
    """The shim's report, removed from the environment; None if we were not run by the shim,
    or by one that speaks another protocol (its gopls, if any, is then killed: we cannot tell
    which fds are its pipes)."""
    env = os.environ if environ is None else environ
    raw = env.pop(ENV, None)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        if data.get("v") != PROTOCOL:
            raise ValueError(f"protocol {data.get('v')!r}")
        spawned: dict[str, Any] = {}
        if data.get("pid"):
            spawned = {"pid": int(data["pid"]), "stdin": int(data["stdin"]),
                       "stdout": int(data["stdout"]), "stderr": int(data["stderr"]),
                       "argv": tuple(str(a) for a in data["argv"])}
        return Launch(str(data["shim"]), str(data.get("version", "")), str(data.get("go", "")),
                      **spawned)
    except (ValueError, KeyError, TypeError):
        with contextlib.suppress(ValueError, TypeError, ProcessLookupError, PermissionError):
            pid = int(data.get("pid") or 0)
            if pid > 0:
                os.kill(pid, 9)
        return None


class InheritedChild:
    """gopls spawned by the native shim before this process became Python: our child, so
    waitpid reaps it and its exit status is ours to read, as with a Popen."""

    def __init__(self, pid: int, stderr_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stderr: IO[bytes] | None = os.fdopen(stderr_fd, "rb")
        self.args = ()

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = 255
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, 9)

    def wait(self, timeout: float | None = None) -> int:
        """Reap it; subprocess.TimeoutExpired after `timeout` seconds, as Popen.wait."""
        done = self.poll()
        if done is not None:
            return done
        deadline = None if timeout is None else time.monotonic() + timeout
        pidfd = os.pidfd_open(self.pid)
        try:
            while self.poll() is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0.0)
                select.select([pidfd], [], [], left)
        finally:
            os.close(pidfd)
        assert self.returncode is not None
        return self.returncode

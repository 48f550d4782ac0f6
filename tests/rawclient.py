"""A deliberately dumb blocking LSP client over pipes, for process-lifecycle tests.

pygls clients own their process; these tests need to kill, signal and orphan things by hand.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .polling import wait_until

ROOT = Path(__file__).resolve().parent.parent


def find_gopls() -> str | None:
    """The real gopls, found as the shim finds it ($LSPGUARD_GOPLS, PATH, $GOBIN, $GOPATH/bin,
    ~/go/bin; never an lspguard shim): the one lookup every test uses."""
    from lspguard.errors import BackendError
    from lspguard.gopls.find import find_real_gopls

    try:
        return str(find_real_gopls(""))
    except BackendError:
        return None


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class RawClient:
    """Writes frames to a process's stdin and reads frames from its stdout, with deadlines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self._buf = b""

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(message))
        self.proc.stdin.flush()

    def read_message(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None at EOF; raises TimeoutError past the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if sep:
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                if len(rest) >= length:
                    self._buf = rest[length:]
                    return json.loads(rest[:length])  # type: ignore[no-any-return]
            if not self._fill(deadline):
                return None

    def read_until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                   keep: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Read until a message satisfies `predicate` (and return it), answering the server's
        requests with null so it goes on; `keep` is given every message read. Raises
        EOFError if the stream ends first, TimeoutError past the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read_message(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise EOFError("the stream ended before the message waited for")
            if keep is not None:
                keep(msg)
            if "method" in msg and "id" in msg:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            if predicate(msg):
                return msg

    def wait_response(self, req_id: int | str, timeout: float) -> dict[str, Any]:
        return self.read_until(lambda m: m.get("id") == req_id and "method" not in m, timeout)

    def initialize(self, root: Path, timeout: float = 30) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {},
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}]}})
        result = self.wait_response(1, timeout)
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return result

    def end(self, timeout: float = 30) -> str:
        """shutdown, then exit; the exit code must be 0. Returns what the process wrote on
        stderr (its log, with --log-stderr)."""
        self.send({"jsonrpc": "2.0", "id": "end", "method": "shutdown"})
        self.wait_response("end", timeout)
        self.send({"jsonrpc": "2.0", "method": "exit"})
        assert self.proc.wait(timeout) == 0
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode()

    def _fill(self, deadline: float) -> bool:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError("no data from the server before the deadline")
        data = os.read(fd, 65536)
        if not data:
            return False
        self._buf += data
        return True


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill `proc` if it still runs, wait for it, and close our ends of its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()


def private_env(root: Path) -> dict[str, str]:
    """os.environ with lspguard's state and runtime dirs at `root`/state and `root`/run, for a
    test that looks at the files a proxy writes there."""
    return {**os.environ, "LSPGUARD_STATE_DIR": str(root / "state"),
            "LSPGUARD_RUNTIME_DIR": str(root / "run")}


def wait_for_session(proc: subprocess.Popen[bytes], runtime: Path, within: float = 20, *,
                     control: bool = False) -> Path:
    """The status file of the `lspguard run` session `proc`, once it is written (the session
    is up), and with `control` its control socket too; fails at once if `proc` exits first.

    An editor can have its initialize answer before either exists: the pre-relay
    (proxy/prerelay.py) forwards it while the session is still being imported."""
    status = runtime / "sessions" / f"{proc.pid}.json"
    wanted = [status, status.with_suffix(".sock")] if control else [status]

    def up() -> bool:
        if all(path.exists() for path in wanted):
            return True
        assert proc.poll() is None, (f"proxy exited ({proc.returncode}) before it started: "
                                     f"{proc.stderr.read() if proc.stderr else b''!r}")
        return False

    assert wait_until(up, within), "proxy did not start"
    return status


def lspguard_command(*server: str) -> list[str]:
    return [sys.executable, "-m", "lspguard", "run", "--", *server]

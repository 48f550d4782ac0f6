"""What `lspguard run` does when its stdin/stdout are not the pipes an editor gives.

Pipes and sockets run on uvloop; libuv aborts the whole process (SIGABRT, no message) on an fd it
does not expect, and epoll refuses regular files and /dev/null. So: a terminal works (asyncio's
own loop), anything else is one clear line on stderr, exit code 1, and no server started."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

from ..rawclient import lspguard_command, private_env, reap, wait_for_session


def _server_that_leaves_a_mark(tmp_path: Path) -> list[str]:
    return ["sh", "-c", f"touch {tmp_path / 'server-started'}; exec cat"]


@pytest.mark.parametrize(("stdin", "stdout", "complaint"), [
    ("devnull", "pipe", "stdin is a device that is not a terminal"),
    ("pipe", "file", "stdout is a regular file"),
    ("file", "pipe", "stdin is a regular file"),
])
def test_unusable_stdio_is_one_clear_line(tmp_path: Path, stdin: str, stdout: str,
                                          complaint: str) -> None:
    files = {"devnull": subprocess.DEVNULL, "pipe": subprocess.PIPE}
    regular = (tmp_path / "regular").open("w+b")
    proc = subprocess.Popen(lspguard_command(*_server_that_leaves_a_mark(tmp_path)),
                            stdin=files.get(stdin, regular), stdout=files.get(stdout, regular),
                            stderr=subprocess.PIPE, env=private_env(tmp_path))
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
        regular.close()
    text = err.decode()
    assert proc.returncode == 1, (proc.returncode, text)  # not -6 (SIGABRT from libuv)
    assert text.startswith(f"lspguard: {complaint}:"), text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert not (tmp_path / "server-started").exists()


def test_a_terminal_works(tmp_path: Path) -> None:
    """Someone trying `lspguard run -- gopls` by hand: it runs, and ^D ends it."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(lspguard_command(*_server_that_leaves_a_mark(tmp_path)),
                            stdin=terminal, stdout=terminal, stderr=subprocess.PIPE,
                            env=private_env(tmp_path))
    os.close(terminal)
    try:
        wait_for_session(proc, tmp_path / "run")  # the session is up: its status file is written
        os.write(controller, b"\x04")  # end of input, as the terminal's ^D
        _, err = proc.communicate(timeout=20)
    finally:
        reap(proc)
        os.close(controller)
    assert proc.returncode == 1, (proc.returncode, err)  # the editor left without shutdown
    assert (tmp_path / "server-started").exists()

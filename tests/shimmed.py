"""Real gopls behind the installed `gopls` shim, driven by a RecordingClient, as an editor runs it.

The start and the end every such test shares: the shim installed with a config written from a
dict, the client started on it, and on the way out the session ended politely if the test did
not end it itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcException

from lspguard.shim.install import install_shim

from .faultproxy import write_config
from .polling import wait_until
from .recording_client import RecordingClient


@contextlib.asynccontextmanager
async def shim_client(tmp_path: Path, real_gopls: Path, config: dict[str, Any], cwd: Path,
                      env: dict[str, str] | None = None) -> AsyncIterator[RecordingClient]:
    """A RecordingClient running the shim installed in `tmp_path`/bin (its config written from
    `config`), which guards `real_gopls`; `env` goes over os.environ. On the way out a session
    still running gets shutdown and exit (a slow or failed shutdown is let go), then is stopped."""
    shim = install_shim(tmp_path / "bin", config=write_config(tmp_path / "lspguard.toml", config))
    client = RecordingClient()
    await client.start_io(str(shim), env={**os.environ, "LSPGUARD_GOPLS": str(real_gopls),
                                          **(env or {})}, cwd=str(cwd))
    try:
        yield client
    finally:
        if not client.stopped:
            with contextlib.suppress(TimeoutError, JsonRpcException):
                await client.shutdown_and_exit(10)
            await client.stop()


def session_status(runtime: Path, within: float = 20) -> dict[str, Any]:
    """The status document of the one session under `runtime`, once it is written: the editor
    can have its initialize answer first (the pre-relay, proxy/prerelay.py)."""
    found = wait_until(lambda: list((runtime / "sessions").glob("*.json")), within)
    assert len(found) == 1, f"status files under {runtime}: {found}"
    return json.loads(found[0].read_text())  # type: ignore[no-any-return]


def fake_gopls(directory: Path, name: str = "gopls") -> Path:
    """A stand-in gopls that prints how it was called ($0 and its arguments)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text('#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n')
    path.chmod(0o755)
    return path


def shim_env(tmp_path: Path, *path: str | Path, **extra: str) -> dict[str, str]:
    """A clean environment: PATH = `path`, a fresh HOME, no user config; `extra` on top."""
    env = {
        "PATH": os.pathsep.join(str(p) for p in path),
        "HOME": str(tmp_path / "home"),
        "LSPGUARD_CONFIG_DIR": str(tmp_path / "no-config"),
        "LANG": "C.UTF-8",
    }
    for var in ("GOCACHE", "GOROOT", "TMPDIR"):
        if var in os.environ:
            env[var] = os.environ[var]
    env.update(extra)
    return env


def run_cmd(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=30, check=False)

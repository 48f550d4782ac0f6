"""Real gopls behind the installed `gopls` shim, driven by a RecordingClient, as an editor runs it.

The start and the end every such test shares: the shim installed with a config written from a
dict, the client started on it, and on the way out the session ended politely if the test did
not end it itself.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcException

from lspguard.shim.main import install_shim

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

"""The status file's writes: state changes at once, refreshes from a thread, never older."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from lspguard.status.file import StatusFile

pytestmark = pytest.mark.timeout(10)


def test_an_older_document_never_replaces_a_newer_one(tmp_path: Path) -> None:
    state = {"n": 0}
    status = StatusFile(lambda: dict(state), tmp_path / "1.json")
    state["n"] = 1
    older = status._render()
    state["n"] = 2
    status.write()  # a state change, written at once
    status._store(*older)  # the refresh rendered before it finishes late
    assert json.loads(status.path.read_text()) == {"n": 2}
    assert status.path.stat().st_mode & 0o777 == 0o600


def test_a_refresh_is_written_from_a_worker_thread_and_nothing_after_remove(
        tmp_path: Path) -> None:
    state = {"n": 1}
    status = StatusFile(lambda: dict(state), tmp_path / "2.json")

    async def main() -> None:
        await status.refresh()
        assert json.loads(status.path.read_text()) == {"n": 1}
        late = status._render()
        status.remove()
        await anyio.to_thread.run_sync(status._store, *late)

    anyio.run(main)
    assert not status.path.exists()

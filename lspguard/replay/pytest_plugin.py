"""pytest plugin: the `lsp_replay` fixture, so a project's tests can pin "this must not hang".

    def test_no_hang(lsp_replay, tmp_path):
        lsp_replay("traces/open_big_module.jsonl", server=["gopls"],
                   workspace=copy_of_my_module(tmp_path))

A relative trace path is taken from the test file's directory. `workspace` maps the trace's first
workspace folder onto that directory (or pass `root_map={"file:///WORKSPACE": "/some/dir"}`).
The call returns the `ReplayReport`; on a hang, crash or divergence the test fails with the
readable report (`allow_divergence=True` tolerates different results, still not hangs). Installed
as a `pytest11` entry point; the plugin defines only this fixture (no hooks), so loading it
globally changes nothing else.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from lspguard.replay.report import ReplayReport

__all__ = ["LspReplay", "lsp_replay"]


class LspReplay:
    """Callable behind the `lsp_replay` fixture."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def __call__(self, trace: str | Path, *, server: Sequence[str],
                 workspace: str | Path | None = None, root_map: Mapping[str, str] | None = None,
                 asap: bool = True, speed: float = 1.0, timeout: float | None = None,
                 deadlines: Mapping[str, float] | None = None, log_format: str = "lspguard",
                 allow_divergence: bool = False) -> ReplayReport:
        """Replay `trace` against `server`; fail the test unless the answers match in time."""
        from lspguard.errors import TraceError
        from lspguard.replay.run import Deadlines, ReplayOptions, run_replay
        from lspguard.trace.importers import import_log
        from lspguard.trace.reader import read_trace
        from lspguard.trace.rootmap import RootMap

        path = Path(trace)
        if not path.is_absolute():
            path = self.base / path
        try:
            loaded = (read_trace(path) if log_format == "lspguard"
                      else import_log(path, log_format).trace)
        except TraceError as exc:
            pytest.fail(f"lsp_replay: bad trace: {exc}", pytrace=False)
        pairs = list((root_map or {}).items())
        if workspace is not None and loaded.header.workspace_folders:
            pairs.append((loaded.header.workspace_folders[0], str(Path(workspace).resolve())))
        per_method = dict(deadlines or {})
        options = ReplayOptions(
            server=list(server), root_map=RootMap(pairs), asap=asap, speed=speed,
            deadlines=Deadlines(timeout if timeout is not None else 30.0, per_method),
            cwd=str(workspace) if workspace is not None else None)
        report = _run_outside_any_loop(lambda: run_replay(loaded, options))
        failed = report.exit_code not in ((0, 1) if allow_divergence else (0,))
        if failed:
            pytest.fail(report.render_text(all_requests=False), pytrace=False)
        return report


def _run_outside_any_loop(fn: Callable[[], ReplayReport]) -> ReplayReport:
    """Run `fn` here, or in a helper thread when this thread already runs an event loop
    (an async test): a replay needs a loop of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["report"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="lsp_replay")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    report: ReplayReport = box["report"]
    return report


@pytest.fixture
def lsp_replay(request: pytest.FixtureRequest) -> LspReplay:
    """Replay a recorded LSP session against a server; fails the test on hang or divergence."""
    return LspReplay(Path(request.path).parent)

"""Real gopls through the shim: when a generation is replaced or the session ends, every process
of its tree ends, those outside gopls's process group included.

The one gopls starts by itself is its telemetry child: golang.org/x/telemetry re-executes gopls
as `gopls "** telemetry **"` (environment GO_TELEMETRY_CHILD=1) in a session of its own
(setsid), so killpg on gopls's group misses it. It exits when gopls's crash-output pipe closes,
unless it is stopped: then, reparented to pid 1, it stays for good. The tests stop it by pid and
check, by pidfd, that nothing of the old tree is left. Telemetry is kept out of the user's
config: XDG_CONFIG_HOME is a temporary dir (mode "local" by default, so the child starts), and
GOENV still names the user's go env file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from lsprotocol import types

from ..conftest import LspguardDirs
from ..held import Holding, holding
from ..polling import wait_until_async
from ..recording_client import RecordingClient, ask_until_answered, hover_text
from ..shimmed import session_status, shim_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = [pytest.mark.gopls, pytest.mark.timeout(120),
              pytest.mark.skipif(sys.platform != "linux", reason="needs /proc and pidfds")]

TELEMETRY_ARG = "** telemetry **"  # x/telemetry's argv[1] for its child, "just for ps(1)"
DEADLINE = 4.0
GONE_WITHIN = 15.0  # the stop escalation is bounded by ~3 x stop_timeout
CONFIG: dict[str, Any] = {
    "proxy": {"stop_timeout": 1.0},
    "watchdog": {"tick": 0.5, "ping_timeout": 1.0, "stuck_grace_factor": 1.0,
                 "busy_grace_factor": 2.0, "deadlines": {"textDocument/hover": DEADLINE}},
    "restart": {"backoff_initial": 0.1},
    "snapshot": {"strace_seconds": 0.5, "budget": 2.0},
}
HELLO = types.Position(line=10, character=28)  # greet.Hello in main.go


def telemetry_env(tmp_path: Path) -> dict[str, str]:
    """x/telemetry's config dir (os.UserConfigDir()/go/telemetry) in `tmp_path`: its mode is
    "local" there whatever the user chose, and its counters stay out of the user's dir."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
            "GOENV": os.environ.get("GOENV") or str(Path(config_home) / "go" / "env")}


def telemetry_child(gopls: int) -> int | None:
    """The pid of `gopls`'s telemetry child, once it runs (found by argv: this is the test
    looking for it; lspguard itself never goes by names)."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(gopls).children():
            with contextlib.suppress(psutil.Error):
                if child.cmdline()[1:2] == [TELEMETRY_ARG]:
                    return child.pid
    return None


async def hold_tree(held: Holding, gopls: int) -> tuple[int, list[int]]:
    """Hold `gopls` and every process of its tree (its telemetry child among them) by pidfd:
    the telemetry child's pid, and all the pids held."""
    telemetry = await wait_until_async(lambda: telemetry_child(gopls), 20, interval=0.05)
    assert telemetry is not None, "gopls started no telemetry child"
    pids = [gopls]
    for child in psutil.Process(gopls).children(recursive=True):
        with contextlib.suppress(ProcessLookupError):  # a `go list` that has just ended
            held.hold(child.pid)
            pids.append(child.pid)
    held.hold(gopls)
    assert telemetry in pids
    return telemetry, pids


def describe(pid: int) -> str:
    """What the telemetry child looks like (for the report when a test fails)."""
    try:
        p = psutil.Process(pid)
        return (f"pid {pid}: argv {p.cmdline()}, ppid {p.ppid()}, sid {os.getsid(pid)}, "
                f"pgid {os.getpgid(pid)}, status {p.status()}")
    except (psutil.Error, ProcessLookupError):
        return f"pid {pid}: gone"


async def stop_by_pid(held: Holding, *pids: int) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    assert await wait_until_async(
        lambda: all(held.held[pid].state() == "T" for pid in pids), 5, interval=0.01), \
        [describe(pid) for pid in pids]


async def assert_gone(held: Holding, pids: list[int]) -> None:
    def left() -> list[int]:
        return [pid for pid in pids if not held.held[pid].gone()]

    await wait_until_async(lambda: not left(), GONE_WITHIN, interval=0.05)
    assert not left(), f"the old generation left: {[describe(pid) for pid in left()]}"


async def opened(client: RecordingClient, workspace: Path) -> str:
    return await client.open_main(workspace, (workspace / "main.go").read_text(),
                                  wait_for_load=True)


async def hover_hello(client: RecordingClient, uri: str, within: float) -> str:
    """Hover on greet.Hello, asking again after ContentModified (a restart), as an editor does."""
    return hover_text(await ask_until_answered(lambda: client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri),
                          position=HELLO)), within))


@contextlib.asynccontextmanager
async def answering_gopls(tmp_path: Path, workspace: Path, real_gopls: Path, runtime: Path
                          ) -> AsyncIterator[tuple[Holding, RecordingClient, str]]:
    """A session through the shim (telemetry on) that has answered a hover on main.go: what
    the test holds by pidfd, the client, and main.go's URI."""
    with holding() as held:
        async with shim_client(tmp_path, real_gopls, CONFIG, workspace,
                               telemetry_env(tmp_path)) as client:
            uri = await opened(client, workspace)
            assert "Hello returns" in await hover_hello(client, uri, 30)
            yield held, client, uri


async def test_the_telemetry_child_is_outside_goplss_group(
        tmp_path: Path, hello_workspace: Path, real_gopls: Path,
        lspguard_dirs: LspguardDirs) -> None:
    """What the other tests rely on: the child exists, in a session and group of its own."""
    with holding() as held:
        async with shim_client(tmp_path, real_gopls, CONFIG, hello_workspace,
                               telemetry_env(tmp_path)) as client:
            await opened(client, hello_workspace)
            gopls = session_status(lspguard_dirs.runtime)["backend"]["pid"]
            telemetry, _ = await hold_tree(held, gopls)
            assert os.getpgid(gopls) == gopls  # lspguard starts gopls as a group leader
            assert os.getsid(telemetry) == os.getpgid(telemetry) == telemetry, \
                describe(telemetry)
            assert psutil.Process(telemetry).environ().get("GO_TELEMETRY_CHILD") == "1"


async def test_a_replaced_generation_leaves_no_process(
        tmp_path: Path, hello_workspace: Path, real_gopls: Path,
        lspguard_dirs: LspguardDirs) -> None:
    """gopls and its telemetry child are stopped; lspguard replaces the generation; nothing of
    the old tree is left, the telemetry child (reparented, stopped) included."""
    async with answering_gopls(tmp_path, hello_workspace, real_gopls,
                               lspguard_dirs.runtime) as (held, client, uri):
        gopls = session_status(lspguard_dirs.runtime)["backend"]["pid"]
        telemetry, old_tree = await hold_tree(held, gopls)
        await stop_by_pid(held, telemetry, gopls)
        assert "Hello returns" in await hover_hello(client, uri, DEADLINE + 30)
        status = session_status(lspguard_dirs.runtime)
        assert status["backend"]["generation"] == 2
        assert status["last_verdict"]["kind"] == "stopped", status["last_verdict"]
        await assert_gone(held, old_tree)
        # the new generation has a telemetry child of its own, and it runs
        assert held.held[telemetry].gone()
        new_telemetry, new_tree = await hold_tree(held, status["backend"]["pid"])
        assert new_telemetry != telemetry
        await client.shutdown_and_exit(10)
        await client.stop()
        await assert_gone(held, new_tree)


async def test_the_session_end_leaves_no_process(
        tmp_path: Path, hello_workspace: Path, real_gopls: Path,
        lspguard_dirs: LspguardDirs) -> None:
    """The editor ends the session (shutdown, exit) while gopls's telemetry child is stopped:
    gopls exits as asked, and its stopped child must not stay behind."""
    async with answering_gopls(tmp_path, hello_workspace, real_gopls,
                               lspguard_dirs.runtime) as (held, client, _):
        gopls = session_status(lspguard_dirs.runtime)["backend"]["pid"]
        telemetry, tree = await hold_tree(held, gopls)
        await stop_by_pid(held, telemetry)
        await client.shutdown_and_exit(10)
        await client.stop()
        await assert_gone(held, tree)

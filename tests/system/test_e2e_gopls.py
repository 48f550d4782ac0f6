"""End to end with a real client and the real gopls: direct vs through lspguard.

The scripted editor session (lspguard.demo.session) runs against gopls directly and
through the drop-in shim; the normalised transcripts must be equal, and each answer is also
checked on its own so a failure says which one broke.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from lsprotocol import types
from pytest_lsp import (
    ClientServerConfig,
    LanguageClient,
    client_capabilities,
    make_test_lsp_client,
)

from lspguard import paths
from lspguard.demo.sample import utf16_position
from lspguard.demo.session import scripted_session
from lspguard.demo.transcript import SessionTranscript
from lspguard.shim.install import install_shim

from ..polling import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..conftest import LspguardDirs

pytestmark = pytest.mark.gopls

SESSION_TIMEOUT = 25.0  # per scripted session; the test's own timeout (pyproject) is 60 s


def _line_of(path: Path, needle: str) -> int:
    """0-based line of the first line containing `needle`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def assert_expected(t: SessionTranscript, workspace: Path) -> None:
    """Each answer of the scripted session, checked on its own."""
    assert t.server_name == "gopls"
    assert t.position_encoding == "utf-16"

    # Hover on greet.Hello in `fmt.Println("👋", greet.Hello("gopher"))`: the emoji is two UTF-16
    # code units, so a wrong encoding would land on the "." and hover the package instead.
    assert "func greet.Hello(name string) string" in t.hover_text
    assert "Hello returns a friendly greeting for name." in t.hover_text
    hover_range = t.hover["range"]
    assert hover_range["start"] == t.hover_position
    assert hover_range["end"]["character"] - hover_range["start"]["character"] == len("Hello")

    line = _line_of(workspace / "greet" / "greet.go", "func Hello(")
    assert t.definition == [{"uri": "greet/greet.go", "range": {
        "start": {"line": line, "character": len("func ")},
        "end": {"line": line, "character": len("func Hello")}}}]

    assert len(t.diagnostics) == 1, t.diagnostics
    diag = t.diagnostics[0]
    assert 'cannot use "forty-two" (untyped string constant) as int value' in diag["message"]
    assert diag["range"]["start"]["line"] == 3
    assert diag["severity"] == types.DiagnosticSeverity.Error.value

    assert 'const name untyped string = "lspguard"' in t.edited_hover_text
    assert t.edited_hover["range"]["start"] == t.edited_hover_position
    assert t.exit_code == 0


async def test_direct_and_shim_give_identical_transcripts(
        real_gopls: Path, hello_workspace: Path, tmp_path: Path) -> None:
    direct = await scripted_session([str(real_gopls)], hello_workspace, timeout=SESSION_TIMEOUT)
    assert_expected(direct, hello_workspace)

    shim = install_shim(tmp_path / "bin")
    proxied = await scripted_session([str(shim)], hello_workspace, timeout=SESSION_TIMEOUT,
                                     env={"LSPGUARD_GOPLS": str(real_gopls)})
    assert_expected(proxied, hello_workspace)

    assert proxied == direct
    assert proxied.server_pid != direct.server_pid


async def test_status_file_has_handshake_timings(
        real_gopls: Path, hello_workspace: Path, lspguard_dirs: LspguardDirs) -> None:
    seen: dict[str, Any] = {}

    def read_status(pid: int) -> None:
        path = paths.sessions_dir() / f"{pid}.json"
        seen["path"] = path
        seen["mode"] = stat.S_IMODE(path.stat().st_mode)
        seen["dir_mode"] = stat.S_IMODE(path.parent.stat().st_mode)

        def with_first_work() -> dict[str, Any] | None:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return doc if doc["handshake"]["first_work_ms"] is not None else None

        # The proxy forwards the progress end first and books it after: the editor can see
        # it a moment before the status file does.
        seen["doc"] = wait_until(with_first_work, 10) or json.loads(path.read_text("utf-8"))
        backend_pid = seen["doc"]["backend"]["pid"]
        seen["backend_name"] = psutil.Process(backend_pid).name()

    command = [sys.executable, "-m", "lspguard", "run", "--", str(real_gopls)]
    t = await scripted_session(command, hello_workspace, timeout=SESSION_TIMEOUT,
                               on_ready=read_status)
    assert t.exit_code == 0
    check_status(seen, t, hello_workspace, lspguard_dirs)


def check_status(seen: dict[str, Any], t: SessionTranscript, workspace: Path,
                 dirs: LspguardDirs) -> None:
    path: Path = seen["path"]
    assert path.parent.parent == dirs.runtime
    assert seen["mode"] == 0o600
    assert seen["dir_mode"] == 0o700
    doc = seen["doc"]
    assert doc["pid"] == t.server_pid
    assert doc["backend"]["pid"] != t.server_pid
    assert seen["backend_name"] == "gopls"
    handshake = doc["handshake"]
    assert handshake["initialize_ms"] > 0
    assert handshake["first_work_ms"] > 0
    # The proxy times the first progress the server begins after `initialized`; the client saw
    # the same one (gopls v0.21.1: "Setting up workspace").
    assert handshake["first_work_title"]
    assert f"begin: {handshake['first_work_title']}" == t.progress[0]
    assert doc["workspace_folders"] == [workspace.resolve().as_uri()]
    assert not path.exists(), "the status file of a finished session is removed"


# ------------------------------------------------------------------ pytest-lsp through the shim


def _make_client() -> LanguageClient:
    """pytest-lsp's client, plus the one request gopls makes that it does not answer."""
    client = make_test_lsp_client()

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        return None

    return client


@pytest.fixture
async def shim_client(real_gopls: Path, tmp_path: Path) -> AsyncIterator[LanguageClient]:
    """A pytest-lsp client whose server is the installed shim (which finds the real gopls)."""
    shim = install_shim(tmp_path / "bin")
    config = ClientServerConfig(server_command=[str(shim)], client_factory=_make_client,
                                server_env={**os.environ, "LSPGUARD_GOPLS": str(real_gopls)})
    client = await config.start()
    assert isinstance(client, LanguageClient)
    yield client
    await client.stop()  # type: ignore[no-untyped-call]  # pytest-lsp's own client class


async def test_pytest_lsp_through_shim(shim_client: LanguageClient, hello_workspace: Path) -> None:
    async with asyncio.timeout(SESSION_TIMEOUT):
        uri = hello_workspace.as_uri()
        result = await shim_client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name="hello")]))
        assert result.server_info is not None
        assert result.server_info.name == "gopls"

        main = hello_workspace / "main.go"
        text = main.read_text(encoding="utf-8")
        shim_client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=main.as_uri(), language_id="go", version=1,
                                                 text=text)))
        position = utf16_position(text, text.index("greet.Hello(") + len("greet."))
        hover = await shim_client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=main.as_uri()),
            position=position))
        assert hover is not None
        assert isinstance(hover.contents, types.MarkupContent)
        assert "Hello returns a friendly greeting for name." in hover.contents.value

        await shim_client.shutdown_session()
    assert shim_client._server is not None
    assert shim_client._server.returncode == 0


# ------------------------------------------------------------------ the demo command


def test_demo_command(real_gopls: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lspguard", "demo", "--gopls", str(real_gopls)],
        capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Hello returns a friendly greeting for name." in proc.stdout
    assert 'const name untyped string = "lspguard"' in proc.stdout
    assert "exit code 0" in proc.stdout

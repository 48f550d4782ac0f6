"""Record the replay corpus: scripted editor sessions through `lspguard record` against real gopls.

    .venv/bin/python -m tests.traces.record_corpus [--gopls PATH]

Each scenario runs a pygls client against `lspguard record --include-text -- gopls` on a fresh
copy of examples/hello, then rewrites the copy's root to file:///WORKSPACE and writes
tests/traces/<scenario>.jsonl. Replay them with
`lspguard replay T --root-map file:///WORKSPACE=<copy of examples/hello> --asap -- gopls`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

from ..rawclient import find_gopls

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "hello"
CORPUS = Path(__file__).resolve().parent
PLACEHOLDER = "file:///WORKSPACE"
STEP_TIMEOUT = 20.0


def recording_command(out: Path, server: list[str]) -> list[str]:
    """argv of a proxy that records to `out`, document text included."""
    return [sys.executable, "-m", "lspguard", "record", "--out", str(out), "--include-text",
            "--", *server]


# ------------------------------------------------------------------------------ scenarios


def _initialize_params(workspace: Path) -> types.InitializeParams:
    uri = workspace.as_uri()
    return types.InitializeParams(
        process_id=os.getpid(), root_uri=uri,
        client_info=types.ClientInfo(name="lspguard-corpus", version="1"),
        workspace_folders=[types.WorkspaceFolder(uri=uri, name=workspace.name)],
        capabilities=types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            workspace=types.WorkspaceClientCapabilities(
                configuration=True, workspace_folders=True,
                workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True)),
            text_document=types.TextDocumentClientCapabilities(
                hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
                rename=types.RenameClientCapabilities(prepare_support=True),
                completion=types.CompletionClientCapabilities(
                    completion_item=types.ClientCompletionItemOptions(snippet_support=False))),
        ))


class _Editor:
    """A pygls client with the answers a plain editor gives to gopls's requests."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.client = LanguageClient("lspguard-corpus", "1")

        @self.client.feature(types.WORKSPACE_CONFIGURATION)
        def configuration(params: types.ConfigurationParams) -> list[Any]:
            # An unlimited completion budget makes gopls's completion results deterministic.
            return [{"completionBudget": "0s"} for _ in params.items]

        for method in (types.WINDOW_WORK_DONE_PROGRESS_CREATE, types.CLIENT_REGISTER_CAPABILITY):
            self.client.feature(method)(lambda params: None)

    def uri(self, name: str) -> str:
        return (self.workspace / name).as_uri()

    def open(self, name: str) -> str:
        text = (self.workspace / name).read_text(encoding="utf-8")
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=self.uri(name), language_id="go", version=1,
                                             text=text)))
        return text

    async def step(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, STEP_TIMEOUT)


def _pos(text: str, needle: str, delta: int = 0) -> types.Position:
    index = text.index(needle) + delta
    line = text.count("\n", 0, index)
    column = len(text[text.rfind("\n", 0, index) + 1:index].encode("utf-16-le")) // 2
    return types.Position(line=line, character=column)


async def _navigate(ed: _Editor) -> None:
    main = ed.open("main.go")
    doc = types.TextDocumentIdentifier(uri=ed.uri("main.go"))
    at = _pos(main, "greet.Hello(", len("greet."))
    await ed.step(ed.client.text_document_hover_async(
        types.HoverParams(text_document=doc, position=at)))
    await ed.step(ed.client.text_document_definition_async(
        types.DefinitionParams(text_document=doc, position=at)))
    await ed.step(ed.client.text_document_references_async(types.ReferenceParams(
        text_document=doc, position=at,
        context=types.ReferenceContext(include_declaration=True))))
    await ed.step(ed.client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=doc)))
    # An error answer belongs in the corpus too ("column is beyond end of line").
    with contextlib.suppress(JsonRpcException):
        await ed.step(ed.client.text_document_hover_async(types.HoverParams(
            text_document=doc, position=types.Position(line=0, character=500))))


async def _complete(ed: _Editor) -> None:
    main = ed.open("main.go")
    doc = types.VersionedTextDocumentIdentifier(uri=ed.uri("main.go"), version=2)
    ident = types.TextDocumentIdentifier(uri=doc.uri)
    at = _pos(main, "\tfmt.Println(")
    ed.client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=doc, content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=at, end=at), text="\tgreet.\n")]))
    where = types.Position(line=at.line, character=len("\tgreet."))
    await ed.step(ed.client.text_document_completion_async(
        types.CompletionParams(text_document=ident, position=where)))


async def _rename(ed: _Editor) -> None:
    greet = ed.open("greet/greet.go")
    doc = types.TextDocumentIdentifier(uri=ed.uri("greet/greet.go"))
    at = _pos(greet, "func Hello(", len("func "))
    await ed.step(ed.client.text_document_prepare_rename_async(
        types.PrepareRenameParams(text_document=doc, position=at)))
    await ed.step(ed.client.text_document_rename_async(
        types.RenameParams(text_document=doc, position=at, new_name="Greet")))


async def _edit(ed: _Editor) -> None:
    main = ed.open("main.go")
    uri = ed.uri("main.go")
    at = _pos(main, "func main()")
    ed.client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=at, end=at), text='const name = "lspguard"\n\n')]))
    edited = main.replace("func main()", 'const name = "lspguard"\n\nfunc main()', 1)
    start = _pos(edited, '"gopher"')
    end = _pos(edited, '"gopher"', len('"gopher"'))
    ed.client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=start, end=end), text="name")]))
    doc = types.TextDocumentIdentifier(uri=uri)
    await ed.step(ed.client.text_document_hover_async(
        types.HoverParams(text_document=doc, position=start)))
    await ed.step(ed.client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=doc, options=types.FormattingOptions(tab_size=4, insert_spaces=False))))


SCENARIOS = {"navigate": _navigate, "complete": _complete, "rename": _rename, "edit": _edit}


async def run_scenario(name: str, command: list[str], workspace: Path) -> int | None:
    """Drive `command` through scenario `name` on `workspace`; return the server's exit code."""
    ed = _Editor(workspace)
    await ed.client.start_io(command[0], *command[1:], cwd=str(workspace))
    server = ed.client._server
    assert server is not None
    try:
        await ed.step(ed.client.initialize_async(_initialize_params(workspace)))
        ed.client.initialized(types.InitializedParams())
        await SCENARIOS[name](ed)
        await ed.step(ed.client.shutdown_async(None))
        ed.client.exit(None)
        code: int | None = await ed.step(server.wait())
        return code
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        await ed.client.stop()


def placeholder_trace(recorded: Path, workspace: Path, out: Path) -> None:
    """Rewrite `recorded` with the workspace root as file:///WORKSPACE and a portable command."""
    from dataclasses import replace

    from lspguard.trace.reader import read_trace
    from lspguard.trace.rootmap import RootMap
    from lspguard.trace.writer import write_trace

    trace = read_trace(recorded).mapped(RootMap([(str(workspace), PLACEHOLDER)]))
    trace.header = replace(trace.header, server_command=("gopls",))
    write_trace(trace, out)


def gopls_rpc_log(gopls: str, out: Path) -> None:
    """tests/fixtures/gopls_rpc_trace.log: what real gopls -rpc.trace writes for the navigate
    scenario, with the workspace root rewritten to /WORKSPACE."""
    with tempfile.TemporaryDirectory(prefix="lspguard-rpclog-") as tmp:
        workspace = Path(shutil.copytree(SAMPLE, Path(tmp) / "hello")).resolve()
        log = Path(tmp) / "gopls.log"
        asyncio.run(run_scenario("navigate", [gopls, "-rpc.trace", f"-logfile={log}"],
                                 workspace))
        text = log.read_text(encoding="utf-8")
    text = text.replace(workspace.as_uri(), PLACEHOLDER).replace(str(workspace), "/WORKSPACE")
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gopls", default=find_gopls() or "gopls")  # never a shim
    args = parser.parse_args(argv)
    gopls_rpc_log(args.gopls, ROOT / "tests" / "fixtures" / "gopls_rpc_trace.log")
    print(f"gopls -rpc.trace log: {ROOT / 'tests' / 'fixtures' / 'gopls_rpc_trace.log'}")
    for name in SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="lspguard-corpus-") as tmp:
            workspace = Path(shutil.copytree(SAMPLE, Path(tmp) / "hello")).resolve()
            recorded = Path(tmp) / "trace.jsonl"
            code = asyncio.run(run_scenario(name, recording_command(recorded, [args.gopls]),
                                            workspace))
            placeholder_trace(recorded, workspace, CORPUS / f"{name}.jsonl")
            print(f"{name}: exit {code}, {CORPUS / f'{name}.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The sample module the scripted session opens (examples/hello), and what it does to it: the
planted type error, the incremental edit, the positions it asks about, and the editor's
initialize. Pure functions of the module's text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from lspguard import __version__
from lspguard.demo.client import ScriptedSessionError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BROKEN_FILE", "BROKEN_TEXT", "CALL", "EDIT_ARGUMENT", "EDIT_CONST", "SAMPLE_MODULE",
           "edit_main", "errors_of", "find_in", "initialize_params", "position_dict",
           "server_version_of", "utf16_position"]

#: The bundled sample module (a source checkout / editable install keeps it next to the package).
SAMPLE_MODULE = Path(__file__).resolve().parents[2] / "examples" / "hello"

#: The file the script plants a type error in; it exists only as an editor buffer (didOpen).
BROKEN_FILE = "broken.go"
BROKEN_TEXT = (
    "package main\n"
    "\n"
    "// answer is deliberately wrong: the demo expects gopls to report it.\n"
    'var answer int = "forty-two"\n'
)
#: What the incremental edit inserts into main.go (before `func main`) and then uses in the call.
EDIT_CONST = 'const name = "lspguard"\n\n'
EDIT_ARGUMENT = "name"
CALL = "greet.Hello("


def utf16_position(text: str, offset: int) -> types.Position:
    """The LSP position (UTF-16 code units) of the character at `offset` in `text`."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    column = len(text[start:offset].encode("utf-16-le")) // 2
    return types.Position(line=line, character=column)


def find_in(text: str, needle: str, what: str) -> int:
    index = text.find(needle)
    if index < 0:
        raise ScriptedSessionError(f"the workspace does not look like examples/hello: {what} "
                                   f"({needle!r}) not found")
    return index


def initialize_params(workspace: Path) -> types.InitializeParams:
    uri = workspace.as_uri()
    return types.InitializeParams(
        process_id=os.getpid(),
        client_info=types.ClientInfo(name="lspguard-demo", version=__version__),
        root_uri=uri,
        workspace_folders=[types.WorkspaceFolder(uri=uri, name=workspace.name)],
        capabilities=types.ClientCapabilities(
            general=types.GeneralClientCapabilities(
                position_encodings=[types.PositionEncodingKind.Utf16]),
            window=types.WindowClientCapabilities(work_done_progress=True),
            workspace=types.WorkspaceClientCapabilities(
                configuration=True,
                workspace_folders=True,
                did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                    dynamic_registration=True)),
            text_document=types.TextDocumentClientCapabilities(
                synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
                hover=types.HoverClientCapabilities(
                    content_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText]),
                definition=types.DefinitionClientCapabilities(link_support=False),
                publish_diagnostics=types.PublishDiagnosticsClientCapabilities(
                    related_information=True, version_support=True)),
        ),
    )


def errors_of(diagnostics: Sequence[types.Diagnostic] | None) -> list[types.Diagnostic]:
    """Error-severity diagnostics in a stable order (warnings and hints may arrive later)."""
    errors = [d for d in diagnostics or () if d.severity == types.DiagnosticSeverity.Error]
    return sorted(errors, key=lambda d: (d.range.start.line, d.range.start.character, d.message))


def edit_main(text: str) -> tuple[str, list[types.TextDocumentContentChangeEvent]]:
    """Two range edits, applied in order as LSP specifies: insert EDIT_CONST before `func main`,
    then replace the string argument of greet.Hello with EDIT_ARGUMENT. Returns the new text."""
    changes: list[types.TextDocumentContentChangeEvent] = []
    at = find_in(text, "func main()", "func main")
    pos = utf16_position(text, at)
    changes.append(types.TextDocumentContentChangePartial(
        range=types.Range(start=pos, end=pos), text=EDIT_CONST))
    text = text[:at] + EDIT_CONST + text[at:]
    start = find_in(text, CALL, "the greet.Hello call") + len(CALL)
    end = text.index(")", start)
    changes.append(types.TextDocumentContentChangePartial(
        range=types.Range(start=utf16_position(text, start), end=utf16_position(text, end)),
        text=EDIT_ARGUMENT))
    text = text[:start] + EDIT_ARGUMENT + text[end:]
    return text, changes


def position_dict(pos: types.Position) -> dict[str, int]:
    return {"line": pos.line, "character": pos.character}


def server_version_of(version: str | None) -> str | None:
    """gopls puts its build info (JSON) into serverInfo.version; keep just the module version."""
    if not version:
        return None
    try:
        info = json.loads(version)
    except ValueError:
        return version
    if isinstance(info, dict):
        main = info.get("Main")
        if isinstance(main, dict) and main.get("Version"):
            return str(main["Version"])
        if info.get("Version"):
            return str(info["Version"])
    return version

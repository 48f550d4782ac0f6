"""A scripted editor session against gopls: what `lspguard demo` runs and the e2e tests compare.

`scripted_session` plays the first minute of an editor on the sample module (examples/hello):
handshake, wait for gopls's initial load, hover, go-to-definition, diagnostics for a planted type
error, an incremental edit and a hover that must see it, shutdown and exit. It never writes to the
workspace (the broken file and the edit live only in the editor's buffers), and it returns a
`SessionTranscript` whose responses are normalised (workspace URIs made relative, volatile fields
dropped) so the same script run directly against gopls and through lspguard compares equal.

`lspguard.demo.main.run_demo` runs it through `python -m lspguard run -- gopls` and tells the user.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lspguard import __version__
from lspguard.demo.client import (
    Normaliser,
    Recorder,
    RecordingClient,
    ScriptedSessionError,
    StepClock,
    drain_stderr,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["SAMPLE_MODULE", "HangTranscript", "ScriptedSessionError", "SessionTranscript",
           "incident_report_path", "scripted_session", "utf16_position"]

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


@dataclass(frozen=True)
class SessionTranscript:
    """What the server answered, normalised so two runs compare equal with `==`.

    Fields marked `compare=False` (timings, progress titles, pids, stderr) differ from run to run
    or between routes and are kept for reporting only.
    """

    server_name: str
    server_version: str | None
    position_encoding: str
    hover_position: dict[str, int]
    hover: Any
    definition: Any
    diagnostics: Any
    edited_hover_position: dict[str, int]
    edited_hover: Any
    exit_code: int | None
    timings_ms: dict[str, float] = field(compare=False, default_factory=dict)
    progress: tuple[str, ...] = field(compare=False, default=())
    initial_progress: tuple[str, ...] = field(compare=False, default=())  # until initial work ends
    server_pid: int | None = field(compare=False, default=None)
    log_messages: tuple[str, ...] = field(compare=False, default=())
    stderr_tail: str = field(compare=False, default="")
    hang: HangTranscript | None = field(compare=False, default=None)

    @property
    def hover_text(self) -> str:
        return _hover_text(self.hover)

    @property
    def edited_hover_text(self) -> str:
        return _hover_text(self.edited_hover)


@dataclass(frozen=True)
class HangTranscript:
    """What the editor saw when the server hung and after lspguard replaced it."""

    stopped_pid: int  # the server process `hang` stopped
    stopped_at: float  # time.time() just after it was stopped
    first_answer: str  # how the hover sent during the hang was answered
    first_answer_s: float  # seconds from the stop to that answer
    asked: int  # hovers sent until one got a result
    recovered_s: float  # seconds from the stop to the first hover answered with a result
    hover: Any  # that result (normalised)
    told: str  # the window/showMessage that names the incident report

    @property
    def hover_text(self) -> str:
        return _hover_text(self.hover)


def _hover_text(hover: Any) -> str:
    if not isinstance(hover, dict):
        return ""
    contents = hover.get("contents")
    if isinstance(contents, dict):
        return str(contents.get("value", ""))
    if isinstance(contents, list):
        return "\n".join(c.get("value", "") if isinstance(c, dict) else str(c) for c in contents)
    return str(contents or "")


# ------------------------------------------------------------------------------------ helpers


def utf16_position(text: str, offset: int) -> types.Position:
    """The LSP position (UTF-16 code units) of the character at `offset` in `text`."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    column = len(text[start:offset].encode("utf-16-le")) // 2
    return types.Position(line=line, character=column)


def _find(text: str, needle: str, what: str) -> int:
    index = text.find(needle)
    if index < 0:
        raise ScriptedSessionError(f"the workspace does not look like examples/hello: {what} "
                                   f"({needle!r}) not found")
    return index


# ------------------------------------------------------------------------------------ script


async def scripted_session(
    command: Sequence[str],
    workspace: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,  # noqa: ASYNC109 - one budget for many steps, reported per step
    on_ready: Callable[[int], Awaitable[None] | None] | None = None,
    hang: Callable[[int], int] | None = None,
    on_recovered: Callable[[int], Awaitable[None] | None] | None = None,
) -> SessionTranscript:
    """Drive `command` (a gopls-compatible stdio server) through a scripted editor session.

    `workspace` must have the shape of examples/hello (main.go calling `greet.Hello(`); it is not
    modified. `env` is laid over the current environment for the server process, which runs in
    `workspace`. `timeout` bounds the whole session. `on_ready(pid)` is called (and awaited if it
    returns an awaitable) once the server's initial work has ended, while the session is live --
    e.g. to read lspguard's status file.

    With `hang`, after the edit the script makes the server hang: `hang(pid)` (pid: the server
    process the script started, i.e. lspguard) must stop the real server and return the pid it
    stopped. The script then hovers like an editor, asking again after each ContentModified,
    until a new server answers, waits for the warning that names the incident report, calls
    `on_recovered(pid)` and records it all in `SessionTranscript.hang`. Raises
    ScriptedSessionError naming the step that failed.
    """
    program, workspace, main_text = _prepare(command, workspace)
    ws_uri = workspace.as_uri()
    main_uri = (workspace / "main.go").as_uri()
    broken_uri = (workspace / BROKEN_FILE).as_uri()
    normalise = Normaliser(workspace)
    recorder = Recorder(ws_uri, workspace.name)
    client = RecordingClient(recorder)
    clock = StepClock(timeout)
    stderr_tail: list[bytes] = []
    child_env = {**os.environ, **(env or {})}

    await clock.step("start", f"starting {program}", client.start_io(
        program, *command[1:], env=child_env, cwd=str(workspace)))
    server = client._server  # pygls keeps the process here; we need its pid and exit code
    assert server is not None
    drain = asyncio.create_task(drain_stderr(server.stderr, stderr_tail))
    try:
        result: types.InitializeResult = await clock.step(
            "initialize", "initialize", client.initialize_async(_initialize_params(workspace)))
        client.initialized(types.InitializedParams())
        initialized_at = time.monotonic()
        await clock.step("initial_work", "waiting for the server's initial work-done progress "
                         "to end", recorder.wait_for(lambda: recorder.initial_work_done))
        clock.timings["initial_work_after_initialized"] = round(
            (time.monotonic() - initialized_at) * 1000, 1)
        initial_progress = tuple(recorder.progress)
        if on_ready is not None:
            maybe = on_ready(server.pid)
            if maybe is not None:
                await clock.step("on_ready", "on_ready callback", maybe)

        # Open main.go and ask about the greet.Hello call (position in UTF-16 code units).
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=main_uri, language_id="go", version=1,
                                                 text=main_text)))
        hello_at = utf16_position(main_text, _find(main_text, CALL, "the greet.Hello call")
                                  + len("greet."))
        doc = types.TextDocumentIdentifier(uri=main_uri)
        hover = await clock.step("hover", "hover on greet.Hello", client.text_document_hover_async(
            types.HoverParams(text_document=doc, position=hello_at)))
        definition = await clock.step(
            "definition", "definition of greet.Hello", client.text_document_definition_async(
                types.DefinitionParams(text_document=doc, position=hello_at)))

        # A new, unsaved file with a type error: gopls must publish an error for it.
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=broken_uri, language_id="go", version=1,
                                                 text=BROKEN_TEXT)))
        await clock.step("diagnostics", f"diagnostics for {BROKEN_FILE}", recorder.wait_for(
            lambda: bool(_errors(recorder.diagnostics.get(broken_uri)))))
        diagnostics = _errors(recorder.diagnostics.get(broken_uri))

        # Incremental edit of main.go: insert a constant, then use it as the argument.
        edited, changes = _edit_main(main_text)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=main_uri, version=2),
            content_changes=changes))
        name_at = utf16_position(edited, _find(edited, CALL + EDIT_ARGUMENT, "the edited call")
                                 + len(CALL))
        edited_hover = await clock.step(
            "edited_hover", "hover on the inserted constant", client.text_document_hover_async(
                types.HoverParams(text_document=doc, position=name_at)))

        hang_transcript = None
        if hang is not None:
            hover_params = types.HoverParams(text_document=doc, position=name_at)
            hang_transcript = await clock.step("hang", "the hang and the restart", _through_hang(
                client, recorder, hover_params, lambda: hang(server.pid), normalise))
            if on_recovered is not None:
                maybe = on_recovered(server.pid)
                if maybe is not None:
                    await clock.step("on_recovered", "on_recovered callback", maybe)

        await clock.step("shutdown", "shutdown", client.shutdown_async(None))
        client.exit(None)
        exit_code: int | None = await clock.step("exit", "waiting for the server to exit",
                                                 server.wait())
    except ScriptedSessionError as exc:
        code = server.returncode  # before _stop: did the server exit on its own?
        await _stop(client, server, drain)
        message = str(exc)
        if code is not None and "exited" not in message:
            message += f" (the server had exited with code {code})"
        tail = b"".join(stderr_tail).decode("utf-8", "replace").strip().splitlines()[-10:]
        if tail:
            message += "; the server's stderr ended with:\n" + "\n".join(tail)
        raise ScriptedSessionError(message) from exc
    finally:
        await _stop(client, server, drain)
    clock.timings["total"] = round((time.monotonic() - clock.start) * 1000, 1)

    info = result.server_info
    caps = result.capabilities
    return SessionTranscript(
        server_name=info.name if info else "",
        server_version=_server_version(info.version if info else None),
        # gopls v0.21 does not announce one: absent means UTF-16, the LSP default.
        position_encoding=str(getattr(caps.position_encoding, "value", caps.position_encoding)
                              or types.PositionEncodingKind.Utf16.value),
        hover_position=_position(hello_at),
        hover=normalise(hover),
        definition=normalise(definition),
        diagnostics=normalise(diagnostics),
        edited_hover_position=_position(name_at),
        edited_hover=normalise(edited_hover),
        exit_code=exit_code,
        timings_ms=dict(clock.timings),
        progress=tuple(recorder.progress),
        initial_progress=initial_progress,
        server_pid=server.pid,
        log_messages=tuple(recorder.log_messages),
        stderr_tail=b"".join(stderr_tail).decode("utf-8", "replace")[-4000:],
        hang=hang_transcript,
    )


CONTENT_MODIFIED = -32801
_REPORT_MARK = "Incident report:"


async def _through_hang(client: RecordingClient, recorder: Recorder, params: types.HoverParams,
                        stop: Callable[[], int], normalise: Normaliser) -> HangTranscript:
    """Stop the server, then hover like an editor until a server answers with a result."""
    told_before = len(recorder.log_messages)
    stopped_pid = stop()
    began, stopped_at = time.monotonic(), time.time()
    first: tuple[str, float] | None = None
    asked = 0
    while True:
        asked += 1
        try:
            result = await client.text_document_hover_async(params)
        except JsonRpcException as exc:
            code = exc.code if isinstance(exc.code, int) else None
            if first is None:
                name = "ContentModified" if code == CONTENT_MODIFIED else "error"
                first = (f"{name} ({code}) {exc.message!r}", time.monotonic() - began)
            if code != CONTENT_MODIFIED:
                raise ScriptedSessionError(f"the hover failed with {first[0]}") from exc
            continue  # what VS Code does: the document changed under it, ask again
        recovered = time.monotonic() - began
        if first is None:
            first = ("a result", recovered)
        break
    await recorder.wait_for(lambda: any(
        _REPORT_MARK in m for m in recorder.log_messages[told_before:]))
    told = next(m for m in recorder.log_messages[told_before:] if _REPORT_MARK in m)
    return HangTranscript(stopped_pid=stopped_pid, stopped_at=stopped_at, first_answer=first[0],
                          first_answer_s=round(first[1], 2), asked=asked,
                          recovered_s=round(recovered, 2), hover=normalise(result), told=told)


def incident_report_path(told: str) -> Path | None:
    """The bundle directory named by lspguard's restart warning ("... Incident report: DIR")."""
    _, mark, rest = told.partition(_REPORT_MARK)
    return Path(rest.strip()) if mark and rest.strip() else None


async def _stop(client: RecordingClient, server: asyncio.subprocess.Process,
                drain: asyncio.Task[None]) -> None:
    """Idempotent cleanup: never leave the server behind, even when a step failed."""
    if server.returncode is None:
        server.kill()
        await server.wait()
    if not client.closed:  # not `client.stopped`: pygls sets that when the server exits
        client.closed = True
        await client.stop()  # type: ignore[no-untyped-call]
    await drain


def _prepare(command: Sequence[str], workspace: Path) -> tuple[str, Path, str]:
    """The program to run (made absolute: the server runs in the workspace), the resolved
    workspace and the text of its main.go."""
    if not command:
        raise ValueError("empty server command")
    workspace = Path(workspace).resolve()
    program = command[0]
    if os.sep in program and not os.path.isabs(program):
        program = os.path.abspath(program)
    main_path = workspace / "main.go"
    try:
        return program, workspace, main_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptedSessionError(f"cannot read {main_path}: {exc}") from exc


def _initialize_params(workspace: Path) -> types.InitializeParams:
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


def _errors(diagnostics: Sequence[types.Diagnostic] | None) -> list[types.Diagnostic]:
    """Error-severity diagnostics in a stable order (warnings and hints may arrive later)."""
    errors = [d for d in diagnostics or () if d.severity == types.DiagnosticSeverity.Error]
    return sorted(errors, key=lambda d: (d.range.start.line, d.range.start.character, d.message))


def _edit_main(text: str) -> tuple[str, list[types.TextDocumentContentChangeEvent]]:
    """Two range edits, applied in order as LSP specifies: insert EDIT_CONST before `func main`,
    then replace the string argument of greet.Hello with EDIT_ARGUMENT. Returns the new text."""
    changes: list[types.TextDocumentContentChangeEvent] = []
    at = _find(text, "func main()", "func main")
    pos = utf16_position(text, at)
    changes.append(types.TextDocumentContentChangePartial(
        range=types.Range(start=pos, end=pos), text=EDIT_CONST))
    text = text[:at] + EDIT_CONST + text[at:]
    start = _find(text, CALL, "the greet.Hello call") + len(CALL)
    end = text.index(")", start)
    changes.append(types.TextDocumentContentChangePartial(
        range=types.Range(start=utf16_position(text, start), end=utf16_position(text, end)),
        text=EDIT_ARGUMENT))
    text = text[:start] + EDIT_ARGUMENT + text[end:]
    return text, changes


def _position(pos: types.Position) -> dict[str, int]:
    return {"line": pos.line, "character": pos.character}


def _server_version(version: str | None) -> str | None:
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

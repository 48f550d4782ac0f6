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
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lspguard.demo.client import (
    Normaliser,
    Recorder,
    RecordingClient,
    ScriptedSessionError,
    StepClock,
    drain_stderr,
)
from lspguard.demo.sample import (
    BROKEN_FILE,
    BROKEN_TEXT,
    CALL,
    EDIT_ARGUMENT,
    edit_main,
    errors_of,
    find_in,
    initialize_params,
    position_dict,
    server_version_of,
    utf16_position,
)
from lspguard.demo.transcript import HangTranscript, SessionTranscript

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["incident_report_path", "scripted_session"]



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
            "initialize", "initialize", client.initialize_async(initialize_params(workspace)))
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
        hello_at = utf16_position(main_text, find_in(main_text, CALL, "the greet.Hello call")
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
            lambda: bool(errors_of(recorder.diagnostics.get(broken_uri)))))
        diagnostics = errors_of(recorder.diagnostics.get(broken_uri))

        # Incremental edit of main.go: insert a constant, then use it as the argument.
        edited, changes = edit_main(main_text)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=main_uri, version=2),
            content_changes=changes))
        name_at = utf16_position(edited, find_in(edited, CALL + EDIT_ARGUMENT, "the edited call")
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
        server_version=server_version_of(info.version if info else None),
        # gopls v0.21 does not announce one: absent means UTF-16, the LSP default.
        position_encoding=str(getattr(caps.position_encoding, "value", caps.position_encoding)
                              or types.PositionEncodingKind.Utf16.value),
        hover_position=position_dict(hello_at),
        hover=normalise(hover),
        definition=normalise(definition),
        diagnostics=normalise(diagnostics),
        edited_hover_position=position_dict(name_at),
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



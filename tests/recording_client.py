"""A real pygls LanguageClient that records what an editor would see, for recovery tests.

It answers the server's requests like VS Code does and keeps a log that tests check against the
promises of recovery: every request answered exactly once, no registration id held twice, every
progress begun also ended, fresh diagnostics.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient
from pygls.protocol import JsonRPCProtocol

from .polling import wait_until_async

T = TypeVar("T")
CONTENT_MODIFIED = -32801


@dataclass
class Seen:
    t: float
    kind: str  # request / response / notification
    id: Any
    method: str | None
    params: Any


@dataclass
class Record:
    messages: list[Seen] = field(default_factory=list)
    active_registrations: dict[str, str] = field(default_factory=dict)
    duplicate_registrations: list[str] = field(default_factory=list)
    progress_begun: set[str] = field(default_factory=set)
    progress_ended: set[str] = field(default_factory=set)

    def answers(self, req_id: Any) -> list[Seen]:
        return [m for m in self.messages if m.kind == "response" and m.id == req_id]

    def after(self, t: float, method: str) -> list[Seen]:
        return [m for m in self.messages if m.t >= t and m.method == method]


class RecordingClient(LanguageClient):
    def __init__(self) -> None:
        super().__init__("lspguard-tests", "1")
        self.record = Record()
        self.changed = asyncio.Event()
        self.requests_sent = 0
        self._wrap_protocol(self.protocol)
        self._register_handlers()

    async def stop(self) -> None:
        """pygls's stop, typed (the base method has no annotations), and bounded: pygls waits
        for its reader, which waits for the server's stdout; a server that never got `exit`
        is asked to end with SIGTERM instead of waiting for ever."""
        server = self._server
        try:
            async with asyncio.timeout(5):
                await super().stop()  # type: ignore[no-untyped-call]
                return
        except TimeoutError:
            pass
        if server is not None and server.returncode is None:
            server.terminate()
        async with asyncio.timeout(15):
            await super().stop()  # type: ignore[no-untyped-call]

    def _wrap_protocol(self, protocol: JsonRPCProtocol) -> None:
        handle = protocol.handle_message
        send = protocol.send_request

        def handle_message(message: Any) -> None:
            self._log(message)
            handle(message)

        def send_request(method: str, params: Any = None, *args: Any, **kw: Any) -> Any:
            self.requests_sent += 1
            return send(method, params, *args, **kw)

        protocol.handle_message = handle_message  # type: ignore[method-assign]
        protocol.send_request = send_request  # type: ignore[method-assign]

    def _log(self, message: Any) -> None:
        method = getattr(message, "method", None)
        msg_id = getattr(message, "id", None)
        kind = ("response" if method is None else "request" if msg_id is not None
                else "notification")
        params = getattr(message, "params", None)
        self.record.messages.append(Seen(time.monotonic(), kind, msg_id, method, params))
        self.changed.set()

    def _register_handlers(self) -> None:
        rec = self.record

        @self.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register(params: types.RegistrationParams) -> None:
            for reg in params.registrations:
                if reg.id in rec.active_registrations:
                    rec.duplicate_registrations.append(reg.id)
                rec.active_registrations[reg.id] = reg.method

        @self.feature(types.CLIENT_UNREGISTER_CAPABILITY)
        def unregister(params: types.UnregistrationParams) -> None:
            for reg in params.unregisterations:
                rec.active_registrations.pop(reg.id, None)

        @self.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @self.feature(types.WORKSPACE_CONFIGURATION)
        def configuration(params: types.ConfigurationParams) -> list[Any]:
            return [{} for _ in params.items]

        for method in (types.WORKSPACE_SEMANTIC_TOKENS_REFRESH, types.WORKSPACE_INLAY_HINT_REFRESH,
                       types.WORKSPACE_CODE_LENS_REFRESH):
            self.feature(method)(lambda params: None)

        @self.feature(types.PROGRESS)
        def progress(params: types.ProgressParams) -> None:
            value = params.value
            kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
            token = json.dumps(params.token)
            if kind == "begin":
                rec.progress_begun.add(token)
            elif kind == "end":
                rec.progress_ended.add(token)

        for method in (types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_SHOW_MESSAGE,
                       types.WINDOW_LOG_MESSAGE):
            self.feature(method)(lambda params: None)

    async def open_main(self, workspace: Path, text: str, *, wait_for_load: bool) -> str:
        """Open `workspace` as an editor does: initialize, initialized, then (with
        `wait_for_load`) the end of gopls's first work-done progress (its "Setting up
        workspace" load), then didOpen of its main.go with `text`; main.go's URI."""
        await asyncio.wait_for(self.initialize_async(initialize_params(workspace)), 30)
        self.initialized(types.InitializedParams())
        if wait_for_load:
            await self.wait_until(lambda: bool(self.record.progress_begun)
                                  and self.record.progress_begun <= self.record.progress_ended, 60)
        uri = (workspace / "main.go").as_uri()
        self.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="go", version=1, text=text)))
        return uri

    async def shutdown_and_exit(self, within: float | None) -> None:
        """shutdown, answered within `within` seconds (None: no bound), then exit."""
        async with asyncio.timeout(within):
            await self.shutdown_async(None)
            self.exit(None)

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> None:
        """Wait for a condition on the record, woken by each message (no sleeps); raises
        TimeoutError if it does not hold within `within` seconds."""
        if not await wait_until_async(predicate, within, woken_by=self.changed):
            raise TimeoutError(f"the client did not see it within {within} s")


async def ask_until_answered(ask: Callable[[], Awaitable[T]], within: float) -> T:
    """`ask()`, asked again after each ContentModified answer (a restart), as an editor does;
    any other error fails."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await ask()
            except JsonRpcException as exc:
                assert exc.code == CONTENT_MODIFIED, exc


def hover_text(hover: types.Hover | None) -> str:
    """A hover's text (it must have one)."""
    assert hover is not None
    contents = hover.contents
    return contents.value if isinstance(contents, types.MarkupContent) else str(contents)


def initialize_params(workspace: Path) -> types.InitializeParams:
    return types.InitializeParams(
        process_id=None,
        root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
        capabilities=types.ClientCapabilities(
            general=types.GeneralClientCapabilities(
                position_encodings=[types.PositionEncodingKind.Utf16]),
            window=types.WindowClientCapabilities(work_done_progress=True),
            workspace=types.WorkspaceClientCapabilities(
                configuration=True,
                workspace_folders=True,
                did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                    dynamic_registration=True),
                did_change_configuration=types.DidChangeConfigurationClientCapabilities(
                    dynamic_registration=True),
                semantic_tokens=types.SemanticTokensWorkspaceClientCapabilities(
                    refresh_support=True),
            ),
            text_document=types.TextDocumentClientCapabilities(
                hover=types.HoverClientCapabilities(
                    content_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText]),
                publish_diagnostics=types.PublishDiagnosticsClientCapabilities(),
            ),
        ),
    )

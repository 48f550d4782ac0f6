"""The client half of the scripted session (session.py): a pygls client that answers
server requests as a fresh VS Code would and records progress, diagnostics and messages; the
normaliser that makes transcripts comparable; one deadline shared by every step."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from lsprotocol.converters import get_converter
from pygls.lsp.client import LanguageClient

from lspguard import __version__

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

__all__ = ["Normaliser", "Recorder", "RecordingClient", "ScriptedSessionError", "StepClock",
           "drain_stderr"]

_converter = get_converter()


class ScriptedSessionError(Exception):
    """A step of the scripted session failed or did not finish in time; says which step."""


class Normaliser:
    """Turns lsprotocol objects into plain JSON data without anything run-specific."""

    # Fields whose values are opaque server state, not part of the answer.
    VOLATILE = frozenset({"data"})

    def __init__(self, workspace: Path) -> None:
        root = workspace.resolve()
        self.uri_prefix = root.as_uri() + "/"
        self.path_prefix = str(root) + os.sep
        self.plain_prefix = str(workspace) + os.sep

    def __call__(self, obj: Any) -> Any:
        return self._walk(_converter.unstructure(obj))

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items() if k not in self.VOLATILE}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, str):
            for prefix in (self.uri_prefix, self.path_prefix, self.plain_prefix):
                value = value.replace(prefix, "")
            return value
        return value


class Recorder:
    """The client side of the conversation: answers server requests, watches notifications."""

    def __init__(self, workspace_uri: str, workspace_name: str) -> None:
        self.workspace_uri = workspace_uri
        self.workspace_name = workspace_name
        self.changed = asyncio.Event()  # set on every notification that may satisfy a wait
        self.progress: list[str] = []
        self.active_tokens: set[str] = set()
        self.ended_tokens: set[str] = set()
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.log_messages: list[str] = []
        self.exited = False
        self.exit_code: int | None = None

    def attach(self, client: LanguageClient) -> None:
        # pygls tags each handler with attributes, which bound methods refuse: wrap them.
        handlers: dict[str, Callable[[Any], Any]] = {
            types.WINDOW_WORK_DONE_PROGRESS_CREATE: self._progress_create,
            types.CLIENT_REGISTER_CAPABILITY: self._register_capability,
            types.CLIENT_UNREGISTER_CAPABILITY: self._register_capability,
            types.WORKSPACE_CONFIGURATION: self._configuration,
            types.WORKSPACE_WORKSPACE_FOLDERS: self._workspace_folders,
            types.PROGRESS: self._on_progress,
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: self._on_diagnostics,
            types.WINDOW_LOG_MESSAGE: self._on_message,
            types.WINDOW_SHOW_MESSAGE: self._on_message,
        }
        for method, handler in handlers.items():
            client.feature(method)(_plain(handler))

    # server -> client requests
    def _progress_create(self, params: types.WorkDoneProgressCreateParams) -> None:
        return None

    def _register_capability(self, params: Any) -> None:
        return None

    def _configuration(self, params: types.ConfigurationParams) -> list[Any]:
        return [{} for _ in params.items]  # gopls's defaults, as a fresh VS Code would send

    def _workspace_folders(self, params: None) -> list[types.WorkspaceFolder]:
        return [types.WorkspaceFolder(uri=self.workspace_uri, name=self.workspace_name)]

    # server -> client notifications
    def _on_progress(self, params: types.ProgressParams) -> None:
        value = params.value if isinstance(params.value, dict) else {}
        token = str(params.token)
        kind = value.get("kind")
        if kind == "begin":
            self.active_tokens.add(token)
            self.progress.append(f"begin: {value.get('title', '')}")
        elif kind == "report":
            if value.get("message"):
                self.progress.append(f"report: {value.get('message')}")
        elif kind == "end":
            self.active_tokens.discard(token)
            self.ended_tokens.add(token)
            self.progress.append(f"end: {value.get('message', '')}")
        self.changed.set()

    def _on_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.diagnostics[params.uri] = list(params.diagnostics)
        self.changed.set()

    def _on_message(self, params: types.LogMessageParams | types.ShowMessageParams) -> None:
        self.log_messages.append(params.message)
        self.changed.set()

    @property
    def initial_work_done(self) -> bool:
        return bool(self.ended_tokens) and not self.active_tokens

    def server_exited(self, code: int | None) -> None:
        self.exit_code = code
        self.exited = True
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self.exited:
                raise ScriptedSessionError(f"the server exited (code {self.exit_code})")
            self.changed.clear()
            await self.changed.wait()


class RecordingClient(LanguageClient):
    """pygls's client, telling the recorder when the server process exits."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__("lspguard-demo", __version__)
        self.recorder = recorder
        self.closed = False
        recorder.attach(self)

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        self.recorder.server_exited(server.returncode)


def _plain(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call(params: Any) -> Any:
        return handler(params)

    return call


class StepClock:
    """One deadline for the whole session; each step gets what is left of it."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.monotonic()
        self.deadline = self.start + timeout
        self.timings: dict[str, float] = {}

    async def step(self, name: str, what: str, awaitable: Awaitable[Any]) -> Any:
        remaining = self.deadline - time.monotonic()
        began = time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            result = await asyncio.wait_for(awaitable, remaining)
        except TimeoutError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise ScriptedSessionError(
                f"{what}: no answer {time.monotonic() - self.start:.1f} s into the session "
                f"(timeout {self.timeout:g} s)") from None
        except ScriptedSessionError as exc:
            raise ScriptedSessionError(f"{what}: {exc}") from exc
        except Exception as exc:  # pygls fails pending requests with RuntimeError, etc.
            raise ScriptedSessionError(f"{what}: {type(exc).__name__}: {exc}") from exc
        self.timings[name] = round((time.monotonic() - began) * 1000, 1)
        return result


async def drain_stderr(stream: asyncio.StreamReader | None, tail: list[bytes]) -> None:
    """Read the server's stderr so a chatty server never blocks on a full pipe; keep a tail."""
    if stream is None:
        return
    while chunk := await stream.read(65536):
        tail.append(chunk)
        while len(tail) > 16:
            tail.pop(0)

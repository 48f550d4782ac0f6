"""The editor's state as the server saw it, kept so a new backend generation can be given it.

DESIGN.md section 5: the cached `initialize` (with workspace-folder changes applied), whether
`initialized` was sent, the last configuration, and every open document with its current text and
version. Document notifications are only *logged* on the hot path (an append of the original
bytes); they are decoded and applied with pygls `TextDocument` (incremental edits in the
negotiated position encoding) when a restart needs the documents, or when the log grows long.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec

from .peek import decode_full

__all__ = ["ClientMirror", "OpenDocument"]

log = logging.getLogger(__name__)

# Notifications whose effect on the server's view of the editor must be replayed.
DOCUMENT_METHODS = frozenset({
    "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
    "workspace/didChangeWorkspaceFolders",
})
_COMPACT_ENTRIES = 512
_COMPACT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class OpenDocument:
    uri: str
    language_id: str
    version: int
    text: str


class ClientMirror:
    """Fed with what the editor sent to the server, in the order it was forwarded."""

    def __init__(self) -> None:
        self.initialize_params: dict[str, Any] | None = None
        self.initialize_result: dict[str, Any] | None = None
        self.initialized = False
        self.configuration: dict[str, Any] | None = None  # last didChangeConfiguration params
        self._log: list[tuple[str, bytes]] = []
        self._log_bytes = 0
        self._docs: dict[str, tuple[TextDocument, str]] = {}  # uri -> (document, languageId)
        self._folders: list[dict[str, Any]] | None = None
        self._codec = PositionCodec()

    # ---------------------------------------------------------------- hot path

    def record(self, method: str, body: bytes | memoryview) -> None:
        """Remember a document/workspace notification (cheap: no decoding here)."""
        data = bytes(body)
        self._log.append((method, data))
        self._log_bytes += len(data)
        if len(self._log) >= _COMPACT_ENTRIES or self._log_bytes >= _COMPACT_BYTES:
            self._apply_log()

    # ---------------------------------------------------------------- handshake facts

    def on_initialize(self, params: dict[str, Any] | None) -> None:
        self.initialize_params = params
        folders = (params or {}).get("workspaceFolders")
        self._folders = list(folders) if isinstance(folders, list) else None

    def on_initialize_result(self, result: dict[str, Any] | None) -> None:
        self.initialize_result = result
        capabilities = (result or {}).get("capabilities") or {}
        encoding = capabilities.get("positionEncoding") or "utf-16"
        self._codec = PositionCodec(encoding)

    def on_configuration(self, params: dict[str, Any] | None) -> None:
        self.configuration = params

    @property
    def client_capabilities(self) -> dict[str, Any]:
        caps = (self.initialize_params or {}).get("capabilities")
        return caps if isinstance(caps, dict) else {}

    def client_supports(self, *path: str) -> bool:
        """True if the client capability at `path` (e.g. "window", "workDoneProgress") is set."""
        node: Any = self.client_capabilities
        for key in path:
            if not isinstance(node, dict):
                return False
            node = node.get(key)
        return bool(node)

    # ---------------------------------------------------------------- replay

    def initialize_params_for_restart(self) -> dict[str, Any]:
        """The cached initialize params, with workspace-folder changes applied."""
        params = copy.deepcopy(self.initialize_params or {})
        self._apply_log()
        if self._folders is not None:
            params["workspaceFolders"] = copy.deepcopy(self._folders)
        return params

    def documents(self) -> list[OpenDocument]:
        """Every open document with its current text and version, in the order opened."""
        self._apply_log()
        return [OpenDocument(uri, language_id, doc.version or 0, doc.source)
                for uri, (doc, language_id) in self._docs.items()]

    def _apply_log(self) -> None:
        entries, self._log, self._log_bytes = self._log, [], 0
        for method, body in entries:
            try:
                params = decode_full(body).get("params") or {}
                self._apply(method, params)
            except Exception:
                log.exception("mirror: cannot apply %s", method)

    def _apply(self, method: str, params: dict[str, Any]) -> None:
        if method == "textDocument/didOpen":
            item = params["textDocument"]
            doc = TextDocument(item["uri"], item["text"], version=item.get("version"),
                               language_id=item.get("languageId"), position_codec=self._codec)
            self._docs[item["uri"]] = (doc, item.get("languageId", ""))
        elif method == "textDocument/didChange":
            ident = params["textDocument"]
            entry = self._docs.get(ident["uri"])
            if entry is None:
                log.warning("mirror: didChange for %s, which is not open", ident["uri"])
                return
            doc = entry[0]
            for change in params.get("contentChanges", []):
                doc.apply_change(_change_event(change))
            doc.version = ident.get("version")
        elif method == "textDocument/didClose":
            self._docs.pop(params["textDocument"]["uri"], None)
        elif method == "workspace/didChangeWorkspaceFolders":
            event = params.get("event") or {}
            removed = {f.get("uri") for f in event.get("removed", [])}
            folders = [f for f in (self._folders or []) if f.get("uri") not in removed]
            self._folders = folders + list(event.get("added", []))


def _change_event(change: dict[str, Any]) -> types.TextDocumentContentChangeEvent:
    rng = change.get("range")
    if rng is None:
        return types.TextDocumentContentChangeWholeDocument(text=change["text"])
    return types.TextDocumentContentChangePartial(
        range=types.Range(
            start=types.Position(line=rng["start"]["line"], character=rng["start"]["character"]),
            end=types.Position(line=rng["end"]["line"], character=rng["end"]["character"])),
        text=change["text"], range_length=change.get("rangeLength"))

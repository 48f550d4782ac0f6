"""The editor's state as the server saw it, kept so a new backend generation can be given it.

What survives a restart: the cached `initialize` (with workspace-folder changes applied), whether
`initialized` was sent, the last configuration, and every open document with its current text and
version. Document notifications are applied after they are forwarded: a keystroke in O(edit);
a large didOpen is logged and decoded by a timer, off the message path.

Why not pygls `TextDocument`, as the design suggests: it rewrites the whole text on every
incremental change (measured: 1.5 s for 512 keystrokes on a 5,000-line file, 1 ms of proxy CPU
per keystroke), and importing lsprotocol costs the proxy ~15 MB of RSS. Documents here are lists
of lines edited in place, with positions converted from the negotiated encoding (UTF-16 by
default); tests/unit/proxy/test_mirror.py checks the result against pygls `TextDocument` on
random edits.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from typing import Any

from lspguard.protocol.peek import decode_full

__all__ = ["ClientMirror", "LineDocument", "OpenDocument"]

log = logging.getLogger(__name__)

# Notifications whose effect on the server's view of the editor must be replayed.
DOCUMENT_METHODS = frozenset({
    "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
    "workspace/didChangeWorkspaceFolders",
})
# Notifications pending below this many bytes are applied as they come (after forwarding);
# a larger one (a big didOpen) waits for the timer, so decoding it delays no message.
_EAGER_BYTES = 256 * 1024
_MAX_PENDING = 8192  # safety bound, should the timer never run


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
        self._log: list[tuple[str, bytes | memoryview]] = []
        self._log_bytes = 0
        self._docs: dict[str, LineDocument] = {}
        self._folders: list[dict[str, Any]] | None = None
        self._encoding = "utf-16"

    # ---------------------------------------------------------------- hot path

    def record(self, method: str, body: bytes | memoryview) -> None:
        """Apply a document/workspace notification the relay has already forwarded.

        A keystroke's didChange is decoded and applied at once, in O(edit): a batch of them
        applied later would stall the loop for milliseconds. A large body (a big didOpen)
        is only logged (a view of the immutable frame: no copy) and applied by the timer
        (`compact_if_due`), or when a restart needs the documents, so decoding it delays no
        message; later notifications queue behind it, in order.
        """
        self._log.append((method, body))
        self._log_bytes += len(body)
        if self._log_bytes <= _EAGER_BYTES or len(self._log) >= _MAX_PENDING:
            self._apply_log()

    @property
    def compaction_due(self) -> bool:
        return bool(self._log)

    def compact_if_due(self) -> None:
        """Apply what is logged; called from a timer, not from the message path."""
        if self._log:
            self._apply_log()

    # ---------------------------------------------------------------- handshake facts

    def on_initialize(self, params: dict[str, Any] | None) -> None:
        self.initialize_params = params
        folders = (params or {}).get("workspaceFolders")
        self._folders = list(folders) if isinstance(folders, list) else None

    def on_initialize_result(self, result: dict[str, Any] | None) -> None:
        self.initialize_result = result
        capabilities = (result or {}).get("capabilities") or {}
        self._encoding = str(capabilities.get("positionEncoding") or "utf-16")

    def on_configuration(self, params: dict[str, Any] | None) -> None:
        self.configuration = params

    def workspace_folder_uris(self) -> list[str]:
        """The editor's workspace folders as URIs (its rootUri when it sent none), with folder
        changes applied up to the last compaction."""
        uris = [f["uri"] for f in self._folders or []
                if isinstance(f, dict) and isinstance(f.get("uri"), str)]
        root = (self.initialize_params or {}).get("rootUri")
        return uris or ([root] if isinstance(root, str) and root else [])

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
        return [OpenDocument(uri, doc.language_id, doc.version or 0, doc.text)
                for uri, doc in self._docs.items()]

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
            self._docs[item["uri"]] = LineDocument(item["text"], item.get("version"),
                                                   item.get("languageId", ""))
        elif method == "textDocument/didChange":
            ident = params["textDocument"]
            doc = self._docs.get(ident["uri"])
            if doc is None:
                log.warning("mirror: didChange for %s, which is not open", ident["uri"])
                return
            for change in params.get("contentChanges", []):
                doc.apply(change, self._encoding)
            doc.version = ident.get("version")
        elif method == "textDocument/didClose":
            self._docs.pop(params["textDocument"]["uri"], None)
        elif method == "workspace/didChangeWorkspaceFolders":
            event = params.get("event") or {}
            removed = {f.get("uri") for f in event.get("removed", [])}
            folders = [f for f in (self._folders or []) if f.get("uri") not in removed]
            self._folders = folders + list(event.get("added", []))


class LineDocument:
    """A document's text as a list of lines (each with its line break), edited in place."""

    __slots__ = ("_lines", "_text", "language_id", "version")

    def __init__(self, text: str, version: int | None = None, language_id: str = "") -> None:
        self._text: str | None = text  # split into lines at the first edit, not at didOpen
        self._lines: list[str] = []
        self.version = version
        self.language_id = language_id

    @property
    def text(self) -> str:
        return self._text if self._text is not None else "".join(self._lines)

    def apply(self, change: dict[str, Any], encoding: str = "utf-16") -> None:
        """Apply one `TextDocumentContentChangeEvent` (a range edit, or the whole text)."""
        rng = change.get("range")
        if rng is None:
            self._text, self._lines = change["text"], []
            return
        if self._text is not None:
            self._lines, self._text = _split(self._text), None
        lines = self._lines
        if not lines:
            lines.append("")
        start, end = rng["start"], rng["end"]
        sl, el, n = start["line"], end["line"], len(lines)
        if sl >= n:  # the empty line after a final line break, or past the end: append
            head, sl = "".join(lines[n - 1:]), n - 1
        else:
            head = lines[sl][:_column(lines[sl], start["character"], encoding)]
        if el >= n:
            el, tail = n - 1, ""
        else:
            tail = lines[el][_column(lines[el], end["character"], encoding):]
        # Re-split one line more on each side: an edit can make or break a \r\n across lines.
        lo, hi = max(sl - 1, 0), min(el + 2, n)
        piece = "".join(lines[lo:sl]) + head + change["text"] + tail + "".join(lines[el + 1:hi])
        lines[lo:max(hi, sl)] = _split(piece)


# Line breaks that str.splitlines() knows but LSP does not (LSP: \n, \r\n, \r only).
_NOT_LSP_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_BREAK = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")


def _split(text: str) -> list[str]:
    if _NOT_LSP_BREAKS.search(text) is None:
        return text.splitlines(keepends=True)
    lines = _BREAK.split(text)
    if lines and not lines[-1]:
        lines.pop()
    return lines


def _column(line: str, units: int, encoding: str) -> int:
    """Index in `line` of the position `units` code units in, clamped to the line's content."""
    content = len(line) - (2 if line.endswith("\r\n") else 1 if line.endswith(("\n", "\r")) else 0)
    if encoding == "utf-32" or line.isascii():
        return min(units, content)
    utf8 = encoding == "utf-8"
    i = counted = 0
    while i < content and counted < units:
        c = ord(line[i])
        if utf8:
            counted += 1 if c < 0x80 else 2 if c < 0x800 else 3 if c < 0x10000 else 4
        else:
            counted += 2 if c > 0xFFFF else 1
        i += 1
    return i

"""Which messages lspguard reads, and what it does with them: one table per direction.

The relay forwards the original bytes of almost every message *before* it books anything. Only
these must be looked at before they go on, because they are rewritten, held or consumed:

- editor -> server, while no server takes editor messages (restarting, waiting on an outside
  cause, degraded): every message is held or answered here (`Down`), by the phase;
- editor -> server responses: lspguard's own requests are answered to lspguard, and a new
  generation's request ids were remapped (`g2:7`) and are restored;
- server -> editor responses: answers to no pending request are dropped (an editor must never
  get two answers), and answers to lspguard's own requests are consumed;
- server -> editor requests: ids of generation 2 and later are remapped, and
  `client/registerCapability` loses the registrations the editor already holds (`rewrites`).

Everything else is forwarded first, then booked by its row's `book` in the same loop iteration.
Before the relay exists, the pre-relay (prerelay.py) copies the first round trip (the editor's
`initialize`, the server's notifications and answer) and stops before any server request.
The forward path and the hold path (restarting, waiting, degraded) read the same row: a row
that `keeps_state` is booked even when its message is not forwarded, so the next server can be
given it; `when_down` says what a message does when no server takes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from lspguard.proxy.mirror import DOCUMENT_METHODS

__all__ = ["EDITOR_ROUTES", "PLAIN", "SERVER_ROUTES", "Book", "Down", "EditorRoute", "ServerRoute"]


class Book(enum.Enum):
    """The relay's book-keeping for one method (relay.py maps each to one of its handlers)."""

    INITIALIZE = "the cached initialize and the handshake clock"
    INITIALIZED = "initialized was sent"
    SHUTDOWN = "shutdown was asked for"
    EXIT = "the session ends"
    CONFIGURATION = "the last configuration"
    DOCUMENT = "the open documents and workspace folders"
    PROGRESS = "open work-done progress and the first-work clock"
    DIAGNOSTICS = "who published which diagnostics"
    UNREGISTER = "the registrations the editor dropped"


class Down(enum.Enum):
    """What an editor message does when no server takes it."""

    BY_PHASE = "held while restarting; answered at once while waiting or degraded"
    ANSWER_NULL = "answered with null here: there is no server to shut down"
    END = "the session ends, and nothing is forwarded"


@dataclass(frozen=True, slots=True)
class EditorRoute:
    book: Book | None = None
    keeps_state: bool = False  # booked even when not forwarded: a restart replays it
    when_down: Down = Down.BY_PHASE


@dataclass(frozen=True, slots=True)
class ServerRoute:
    book: Book | None = None
    rewrites: bool = False  # decoded and rewritten (and booked) before it is forwarded


_DOCUMENT = EditorRoute(Book.DOCUMENT, keeps_state=True)
PLAIN: Final = EditorRoute()

EDITOR_ROUTES: Final[dict[str, EditorRoute]] = {
    "initialize": EditorRoute(Book.INITIALIZE),
    "initialized": EditorRoute(Book.INITIALIZED),
    "shutdown": EditorRoute(Book.SHUTDOWN, when_down=Down.ANSWER_NULL),
    "exit": EditorRoute(Book.EXIT, when_down=Down.END),
    "workspace/didChangeConfiguration": EditorRoute(Book.CONFIGURATION, keeps_state=True),
    **{method: _DOCUMENT for method in DOCUMENT_METHODS},  # didOpen, didChange, didClose, ..
}

SERVER_ROUTES: Final[dict[str, ServerRoute]] = {
    "$/progress": ServerRoute(Book.PROGRESS),
    "textDocument/publishDiagnostics": ServerRoute(Book.DIAGNOSTICS),
    "client/registerCapability": ServerRoute(rewrites=True),
    "client/unregisterCapability": ServerRoute(Book.UNREGISTER),
}

"""Every exception lspguard raises on purpose.

    LspguardError
     ├── ProtocolError            malformed LSP framing or JSON-RPC
     │    ├── LocalProtocolError  we were asked to send something invalid
     │    └── RemoteProtocolError a peer (editor or server) sent something invalid
     ├── ConfigError              a config file is unreadable, has an unknown key or a wrong type
     ├── BackendError             the language server could not be started or found
     │    └── ShimLoopError       the "real gopls" resolves to an lspguard shim
     ├── TraceError               a trace file is malformed (record/replay)
     ├── IllegalTransition        a session was asked to move to a phase its table forbids
     └── StdioError               stdin/stdout cannot carry an LSP session (e.g. a regular file)
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "IllegalTransition",
    "LocalProtocolError",
    "LspguardError",
    "ProtocolError",
    "RemoteProtocolError",
    "ShimLoopError",
    "StdioError",
    "TraceError",
]


class LspguardError(Exception):
    """Base of every error lspguard raises deliberately."""


class ProtocolError(LspguardError):
    """Malformed framing or JSON-RPC; `offset` is the stream byte offset when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at stream byte {offset})")
        self.offset = offset


class LocalProtocolError(ProtocolError):
    """lspguard itself was about to send something invalid (a bug in lspguard)."""


class RemoteProtocolError(ProtocolError):
    """The editor or the language server sent bytes that are not valid LSP framing."""


class ConfigError(LspguardError):
    """A config file is unreadable, or names an unknown key, or holds a value of the wrong type."""


class BackendError(LspguardError):
    """The language server could not be found or started."""


class ShimLoopError(BackendError):
    """The configured "real gopls" is an lspguard shim: running it would loop forever."""


class TraceError(LspguardError):
    """A trace file is malformed; the message names the line and what was wrong."""


class StdioError(LspguardError):
    """stdin or stdout is not something an LSP session can run over (a regular file, say)."""


class IllegalTransition(LspguardError):
    """A lifecycle transition the table in lifecycle.py does not allow: a bug, never input."""

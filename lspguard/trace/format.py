"""The data model of a trace file (see writer.py for the format): header, entries, gaps.

Kept apart from the writer and the reader so importers and replay can build and inspect traces
without pulling in the recording machinery. The msgspec types below are the lines of the file:
the writer encodes entries and gaps as ``EntryRecord`` and ``GapRecord``; the reader (reader.py)
decodes each line into one (line 1 into ``HeaderVersion``, then ``TraceHeader`` itself), which
checks its keys and their types, and turns msgspec's errors into messages naming line and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, get_args

import msgspec

if TYPE_CHECKING:
    from lspguard.trace.rootmap import RootMap

__all__ = ["DIRECTIONS", "TRACE_VERSION", "EntryRecord", "GapRecord", "HeaderVersion",
           "MessageShape", "Trace", "TraceEntry", "TraceGap", "TraceHeader", "message_kind",
           "workspace_folders_of"]

TRACE_VERSION: Final = 1
#: c2s editor -> server, s2c server -> editor, p2s / p2c sent by lspguard itself.
Direction = Literal["c2s", "s2c", "p2s", "p2c"]
DIRECTIONS: Final[tuple[str, ...]] = get_args(Direction)


# ------------------------------------------------------------------- the lines of a trace file


class HeaderVersion(msgspec.Struct):
    """What marks line 1 as a trace header; the rest of it is a ``TraceHeader`` (other keys, which
    a later version may add, are ignored)."""

    lspguard_trace: Literal[1]


class EntryRecord(msgspec.Struct, forbid_unknown_fields=True):
    """One message: seconds since the start, direction, backend generation, the message."""

    t: Annotated[float, msgspec.Meta(ge=0)]
    dir: Direction
    gen: Annotated[int, msgspec.Meta(ge=0)]
    msg: dict[str, Any]


class GapRecord(msgspec.Struct, forbid_unknown_fields=True):
    """`dropped` messages were not recorded at `t` (the recorder's queue was full)."""

    t: Annotated[float, msgspec.Meta(ge=0)]
    dropped: Annotated[int, msgspec.Meta(ge=1)]


class MessageShape(msgspec.Struct):
    """What replay relies on in an entry's ``msg`` (JSON-RPC 2.0), and nothing more; unset keys
    are ``UNSET`` (``null`` is None). Which of method, result and error a message must have is
    checked by the reader (reader.py)."""

    jsonrpc: Literal["2.0"] | msgspec.UnsetType = msgspec.UNSET
    id: int | str | None = None
    method: Annotated[str, msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET
    params: dict[str, Any] | list[Any] | None = None
    result: Any = msgspec.UNSET
    error: Any = msgspec.UNSET


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """Line 1 of a trace: who recorded what, and whether document text was kept."""

    lspguard_version: str
    created: str
    workspace_folders: tuple[str, ...]
    redacted: bool
    server_command: tuple[str, ...]
    imported_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "lspguard_trace": TRACE_VERSION, "lspguard_version": self.lspguard_version,
            "created": self.created, "workspace_folders": list(self.workspace_folders),
            "redacted": self.redacted, "server_command": list(self.server_command)}
        if self.imported_from is not None:
            doc["imported_from"] = self.imported_from
        return doc


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One message; `line` is its 1-based line in the file it was read from (0: built here)."""

    t: float
    dir: str
    gen: int
    msg: dict[str, Any]
    line: int = 0

    @property
    def kind(self) -> str:
        return message_kind(self.msg)

    @property
    def method(self) -> str | None:
        method = self.msg.get("method")
        return method if isinstance(method, str) else None

    @property
    def id(self) -> int | str | None:
        value = self.msg.get("id")
        return value if isinstance(value, int | str) else None

    def record(self) -> EntryRecord:
        return EntryRecord(self.t, self.dir, self.gen, self.msg)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TraceGap:
    """`dropped` messages were not recorded here (the recorder's queue was full)."""

    t: float
    dropped: int
    line: int = 0

    def record(self) -> GapRecord:
        return GapRecord(self.t, self.dropped)


@dataclass(slots=True)
class Trace:
    header: TraceHeader
    entries: list[TraceEntry] = field(default_factory=list)
    gaps: list[TraceGap] = field(default_factory=list)
    path: str | None = None

    def mapped(self, root_map: RootMap) -> Trace:
        """A copy with every root URI/path rewritten by `root_map` (messages and header)."""
        if not root_map:
            return self
        header = replace(self.header, workspace_folders=tuple(
            root_map.apply_str(f) for f in self.header.workspace_folders))
        entries = [replace(e, msg=root_map.apply(e.msg)) for e in self.entries]
        return Trace(header, entries, list(self.gaps), self.path)


def message_kind(msg: dict[str, Any]) -> str:
    """"request", "notification" or "response" (the message is assumed valid)."""
    if "method" in msg:
        return "notification" if msg.get("id") is None else "request"
    return "response"


def workspace_folders_of(initialize_params: Any) -> list[str]:
    """Workspace folder URIs named by `initialize` params (folders, else rootUri, else rootPath)."""
    if not isinstance(initialize_params, dict):
        return []
    folders = initialize_params.get("workspaceFolders") or []
    uris = [f["uri"] for f in folders if isinstance(f, dict) and isinstance(f.get("uri"), str)]
    if uris:
        return uris
    if isinstance(initialize_params.get("rootUri"), str):
        return [initialize_params["rootUri"]]
    if isinstance(initialize_params.get("rootPath"), str):
        return [Path(initialize_params["rootPath"]).as_uri()]
    return []



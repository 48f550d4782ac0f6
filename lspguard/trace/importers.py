"""Importers: other tools' LSP logs turned into lspguard traces, so existing logs can be replayed.

* ``vscode``: the output channel of any vscode-languageclient extension with tracing on (for Go:
  ``"go.trace.server": "verbose"``). Entries look like::

      [Trace - 10:00:00 AM] Sending request 'textDocument/hover - (12)'.
      Params: {
          "textDocument": ...
      }

      [Trace - 10:00:00 AM] Received response 'textDocument/hover - (12)' in 5ms.
      Result: {...}

  plus ``Sending/Received notification 'm'.``, ``Received request 'm - (id)'.``, ``Sending
  response 'm - (id)'. Processing request took Nms``, ``No result returned.``, ``No parameters
  provided.``, ``Error data:`` and `` Request failed: MSG (CODE).``. Newer VS Code log channels
  write ``2024-05-01 10:00:00.123 [trace] Sending request ...`` instead of ``[Trace - ...]``.
* ``gopls``: what ``gopls -rpc.trace -logfile=F`` writes. The same text format from gopls's side
  (it logs the editor's messages as "Sending", its own as "Received"), with millisecond times,
  one-line JSON, and error responses as ``[Error - Received] 18:27:34.849 PM #2 MESSAGE`` (the
  error code is not logged).
* ``lsp-devtools``: ``lsp-devtools record --to-file F`` writes one JSON-RPC message per line and
  no direction; a line may also be ``{"source": "client"|"server", "message": {...}}`` (custom
  ``--format-message``), optionally with a ``timestamp``. Without a source, the direction is
  inferred from the method (server-to-client methods are a fixed set) and, for responses, from
  which side has a request with that id outstanding.

Text logs carry wall-clock times of day; they become seconds since the first entry (a jump back
of more than 12 hours is taken as midnight). Lines that are not messages (``[Info - ...]``,
stderr) are skipped and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lspguard import __version__
from lspguard.errors import TraceError
from lspguard.trace.format import (
    Trace,
    TraceEntry,
    TraceHeader,
    message_kind,
    workspace_folders_of,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lspguard.trace.rootmap import RootMap

__all__ = ["FORMATS", "ImportResult", "detect_format", "import_log", "parse_lsp_devtools",
           "parse_text_log"]

FORMATS: Final = ("auto", "lspguard", "vscode", "gopls", "lsp-devtools")

_TIME = r"(?P<time>\d{1,2}:\d{2}:\d{2}(?:\.\d+)?(?:\s*[AaPp]\.?[Mm]\.?)?)"
_HEADERS: Final = (
    re.compile(r"^\[(?P<level>Trace|Info|Warn|Error|Debug)\s*-\s*[^\]]*?" + _TIME
               + r"[^\]]*\]\s?(?P<text>.*)$"),
    re.compile(r"^\d{4}-\d{2}-\d{2}[ T]" + _TIME
               + r"\s+\[(?P<level>trace|debug|info|warning|error)\]\s?(?P<text>.*)$"),
)
_GOPLS_ERROR: Final = re.compile(r"^\[Error - (?P<side>Received|Sent)\]\s+" + _TIME
                                 + r"\s+#(?P<id>\S+)\s?(?P<text>.*)$")
_ANY_HEADER: Final = re.compile(r"^(\[(Trace|Info|Warn|Error|Debug)\s*-|"
                                r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}:\d{2}\S*\s+\[\w+\])")
_EVENTS: Final = (
    ("request", re.compile(r"^(?P<verb>Sending|Received) request '(?P<method>.+) - "
                           r"\((?P<id>[^)]*)\)'\.?\s*$")),
    ("notification", re.compile(r"^(?P<verb>Sending|Received) notification "
                                r"'(?P<method>[^']+)'\.?\s*$")),
    ("response", re.compile(r"^(?P<verb>Sending|Received) response '(?P<method>.*) - "
                            r"\((?P<id>[^)]*)\)'(?:\.)?(?: in (?P<in>\d+)ms\.?| Processing "
                            r"request took (?P<took>\d+)ms\.?)?(?: Request failed: "
                            r"(?P<emsg>.*) \((?P<ecode>-?\d+)\)\.)?\s*$")),
)
_FAILED: Final = re.compile(r"^Request (?P<method>\S+) failed\.\s*$")

# Methods only a server sends (requests and notifications); everything else comes from the client.
_SERVER_METHODS: Final = frozenset({
    "window/showMessage", "window/showMessageRequest", "window/logMessage", "window/showDocument",
    "window/workDoneProgress/create", "telemetry/event", "textDocument/publishDiagnostics",
    "client/registerCapability", "client/unregisterCapability", "workspace/configuration",
    "workspace/workspaceFolders", "workspace/applyEdit", "workspace/codeLens/refresh",
    "workspace/semanticTokens/refresh", "workspace/inlayHint/refresh",
    "workspace/inlineValue/refresh", "workspace/diagnostic/refresh",
    "workspace/foldingRange/refresh", "$/logTrace", "$/progress",
})


@dataclass(frozen=True, slots=True)
class ImportResult:
    trace: Trace
    format: str
    skipped: int  # log entries that were not LSP messages


def import_log(path: str | Path, fmt: str = "auto", *, root_map: RootMap | None = None,
               server_command: Sequence[str] = ()) -> ImportResult:
    """Read a log in `fmt` (or detect it) as a trace; TraceError names the line at fault."""
    from lspguard.trace.reader import read_trace, validate_trace

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if fmt not in FORMATS:
        raise TraceError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = detect_format(text, str(path))
    if fmt == "lspguard":
        trace, skipped = read_trace(path), 0
    else:
        if fmt == "lsp-devtools":
            entries, skipped = parse_lsp_devtools(text, str(path))
        else:
            entries, skipped = parse_text_log(text, str(path))
        if not entries:
            raise TraceError(f"{path}: no LSP messages found in this {fmt} log")
        init = next((e for e in entries if e.method == "initialize"), None)
        header = TraceHeader(
            lspguard_version=__version__,
            created=datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z"),
            workspace_folders=tuple(workspace_folders_of(init.msg.get("params") if init else None)),
            redacted=False, server_command=tuple(server_command), imported_from=fmt)
        trace = Trace(header, entries, path=str(path))
        validate_trace(trace)
    return ImportResult(trace.mapped(root_map) if root_map else trace, fmt, skipped)


def detect_format(text: str, where: str = "<log>") -> str:
    """"lspguard", "gopls", "vscode" or "lsp-devtools", from the first lines."""
    lines = [line for line in text.splitlines()[:200] if line.strip()]
    if lines and lines[0].lstrip().startswith("{") and '"lspguard_trace"' in lines[0]:
        return "lspguard"
    for line in lines:
        if _GOPLS_ERROR.match(line) or re.match(r"^\[Trace - \d{1,2}:\d{2}:\d{2}\.\d{3} [AP]M\]",
                                                line):
            return "gopls"
        if _ANY_HEADER.match(line):
            return "vscode"
    if lines and all(line.lstrip().startswith("{") for line in lines[:20]):
        return "lsp-devtools"
    raise TraceError(f"{where}: not a log format lspguard can import (expected an lspguard "
                     "trace, a VS Code/gopls '[Trace - ...]' log or lsp-devtools JSON lines)")


# ------------------------------------------------------------------------ VS Code / gopls text


class _Clock:
    """Times of day -> seconds since the first entry, never decreasing, across midnight."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.offset = 0.0
        self.last_raw: float | None = None
        self.now = 0.0
        self.precise = False

    def at(self, stamp: str | None) -> float:
        seconds = _seconds_of_day(stamp) if stamp else None
        if seconds is None:
            return self.now
        self.precise = "." in stamp if stamp else False
        if self.last_raw is not None and seconds < self.last_raw - 12 * 3600:
            self.offset += 24 * 3600
        self.last_raw = seconds
        if self.first is None:
            self.first = seconds
        self.now = max(self.now, seconds + self.offset - self.first)
        return self.now


def _seconds_of_day(stamp: str) -> float | None:
    match = re.match(r"(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)\s*([AaPp])?", stamp)
    if match is None:
        return None
    hour, minute, second = int(match[1]), int(match[2]), float(match[3])
    half = (match[4] or "").upper()
    if half and hour <= 12:  # gopls writes "18:27:33.608 PM": a 24-hour clock with a suffix
        hour = hour % 12 + (12 if half == "P" else 0)
    return hour * 3600 + minute * 60 + second


def _parse_id(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def parse_text_log(text: str, where: str = "<log>") -> tuple[list[TraceEntry], int]:
    """Entries of a VS Code or gopls text trace, and the number of skipped log entries."""
    blocks: list[tuple[int, str, str | None, str, list[str]]] = []  # line, level, time, text, body
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        gopls_error = _GOPLS_ERROR.match(line)
        if gopls_error:
            blocks.append((number, f"gopls-{gopls_error['side'].lower()}", gopls_error["time"],
                           f"{gopls_error['id']} {gopls_error['text']}", []))
            continue
        header = next((m for m in (h.match(line) for h in _HEADERS) if m), None)
        if header:
            blocks.append((number, header["level"].lower(), header["time"], header["text"], []))
        elif blocks:
            blocks[-1][4].append(line)
    clock = _Clock()
    entries: list[TraceEntry] = []
    sent_at: dict[tuple[str, int | str], float] = {}  # (dir of request, id) -> t
    skipped = 0
    for index, (number, level, stamp, head, body) in enumerate(blocks):
        t = clock.at(stamp)
        where_line = f"{where}: line {number}"
        if level.startswith("gopls-"):
            id_text, _, message = head.partition(" ")
            message = "\n".join([message, *body]).strip()
            direction = "s2c" if level == "gopls-received" else "c2s"
            entries.append(TraceEntry(t, direction, 1, {
                "jsonrpc": "2.0", "id": _parse_id(id_text), "error": {
                    "code": -32603, "message": message,
                    "data": {"lspguard": "imported from a gopls log, which has no error codes"}}},
                number))
            continue
        event = next(((kind, m) for kind, m in ((k, r.match(head)) for k, r in _EVENTS) if m),
                     None)
        if level not in ("trace", "debug") or event is None:
            skipped += 1
            continue
        kind, match = event
        direction = "c2s" if match["verb"] == "Sending" else "s2c"
        label, payload = _payload(where_line, body)
        msg: dict[str, Any] = {"jsonrpc": "2.0"}
        if kind != "notification":
            msg_id = msg["id"] = _parse_id(match["id"])
        if kind != "response":
            if kind == "request":
                sent_at[(direction, msg_id)] = t
            msg["method"] = match["method"]
            if label == "Params" and payload is not None:
                msg["params"] = payload
        else:
            started = sent_at.pop(("s2c" if direction == "c2s" else "c2s", msg_id), None)
            if match["in"] is not None and started is not None and not clock.precise:
                t = clock.now = max(clock.now, min(t + 1.0, started + int(match["in"]) / 1000))
            if match["emsg"] is not None or label == "Error data":
                error: dict[str, Any] = {"code": int(match["ecode"] or -32603),
                                         "message": match["emsg"] or "(message not logged)"}
                if label == "Error data":
                    error["data"] = payload
                msg["error"] = error
            elif label == "Result":
                msg["result"] = payload
            elif label == "No result returned":
                msg["result"] = None
            else:  # older clients log the error in a separate "[Error - ...] Request m failed."
                msg["error"] = _separate_error(blocks, index, match["method"])
        entries.append(TraceEntry(t, direction, 1, msg, number))
    return entries, skipped


def _payload(where: str, body: list[str]) -> tuple[str | None, Any]:
    """The label of a block body ("Params", "Result", ...) and its JSON value (None if empty)."""
    text = "\n".join(body).strip()
    for label in ("No result returned", "No parameters provided"):
        if text.startswith(label):
            return label, None
    label, sep, rest = text.partition(":")
    if not sep or label not in ("Params", "Result", "Error data"):
        return None, None
    rest = rest.strip()
    if not rest:
        return label, None
    try:
        value, _ = json.JSONDecoder().raw_decode(rest)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: {label} is not valid JSON ({exc.msg} at line "
                         f"{exc.lineno} of the block); was the log cut short?") from None
    return label, value


def _separate_error(blocks: list[tuple[int, str, str | None, str, list[str]]], index: int,
                    method: str) -> dict[str, Any]:
    for _, level, _, head, body in blocks[index + 1:index + 4]:
        failed = _FAILED.match(head)
        if level == "error" and failed and failed["method"] == method:
            fields = dict(line.strip().partition(": ")[::2] for line in body if ": " in line)
            code = fields.get("Code", "").strip()
            return {"code": int(code) if re.fullmatch(r"-?\d+", code) else -32603,
                    "message": fields.get("Message", "(message not logged)")}
    return {"code": -32603, "message": "(no result or error logged)"}


# ------------------------------------------------------------------------ lsp-devtools


def parse_lsp_devtools(text: str, where: str = "<log>") -> tuple[list[TraceEntry], int]:
    """Entries of lsp-devtools JSON lines (bare messages or {source, message, timestamp})."""
    entries: list[TraceEntry] = []
    pending: dict[tuple[str, int | str], str] = {}
    first: datetime | None = None
    last_t = 0.0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where_line = f"{where}: line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{where_line}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise TraceError(f"{where_line}: expected a JSON object")
        source, stamp, msg = None, None, obj
        if "jsonrpc" not in obj and isinstance(obj.get("message"), dict):
            source, stamp, msg = obj.get("source"), obj.get("timestamp"), obj["message"]
        if not isinstance(msg.get("method"), str) and "id" not in msg:
            raise TraceError(f"{where_line}: not a JSON-RPC message (no method, no id)")
        t = last_t
        if isinstance(stamp, str):
            try:
                when = datetime.fromisoformat(stamp)
            except ValueError:
                raise TraceError(f"{where_line}: timestamp {stamp!r} is not ISO 8601") from None
            first = first or when
            t = last_t = max(last_t, (when - first).total_seconds())
        kind = message_kind(msg)
        if source in ("client", "server"):
            direction = "c2s" if source == "client" else "s2c"
        elif kind != "response":
            direction = "s2c" if msg["method"] in _SERVER_METHODS else "c2s"
        elif ("c2s", msg["id"]) in pending:
            direction = "s2c"
        elif ("s2c", msg["id"]) in pending:
            direction = "c2s"
        else:
            raise TraceError(f"{where_line}: response to id {msg['id']!r} matches no request, "
                             "and the line names no source")
        if kind == "request":
            pending[(direction, msg["id"])] = msg["method"]
        elif kind == "response" and isinstance(msg.get("id"), int | str):
            pending.pop(("s2c" if direction == "c2s" else "c2s", msg["id"]), None)
        entries.append(TraceEntry(t, direction, 1, msg, number))
    return entries, 0

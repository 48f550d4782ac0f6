"""Reading trace files strictly (the format: writer.py): each line is decoded into its record type
(format.py), and whatever msgspec rejects becomes a TraceError naming the line and the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from lspguard.errors import TraceError
from lspguard.trace.format import (
    DIRECTIONS,
    TRACE_VERSION,
    EntryRecord,
    GapRecord,
    HeaderVersion,
    MessageShape,
    Trace,
    TraceEntry,
    TraceGap,
    TraceHeader,
)

if TYPE_CHECKING:
    import os

__all__ = ["read_trace", "validate_trace"]

_R = TypeVar("_R")

_decode = msgspec.json.Decoder().decode
_decode_version = msgspec.json.Decoder(HeaderVersion).decode
_decode_header = msgspec.json.Decoder(TraceHeader).decode
_decode_entry = msgspec.json.Decoder(EntryRecord).decode

# What is wrong with each key a line (or its msg) holds, from msgspec's error at that key.
_PROBLEMS: Final = {
    "lspguard_trace": "unsupported trace version {value!r} (this lspguard reads version "
                      f"{TRACE_VERSION})",
    "lspguard_version": "header 'lspguard_version' must be a str, got {type}",
    "created": "header 'created' must be a str, got {type}",
    "redacted": "header 'redacted' must be a bool, got {type}",
    "workspace_folders": "header 'workspace_folders' must be a list of strings, got {type}",
    "server_command": "header 'server_command' must be a list of strings, got {type}",
    "imported_from": "header 'imported_from' must be a string",
    "t": "'t' must be a non-negative number of seconds, got {value!r}",
    "dir": f"unknown direction {{value!r}} (expected one of {', '.join(DIRECTIONS)})",
    "gen": "'gen' must be a non-negative integer, got {value!r}",
    "dropped": "'dropped' must be a positive integer, got {value!r}",
    "msg": "'msg' must be a JSON-RPC message object, got {type}",
    "jsonrpc": 'msg.jsonrpc must be "2.0", got {value!r}',
    "id": "msg.id must be an integer or a string, got {type}",
    "method": "msg.method must be a non-empty string, got {type}",
    "params": "msg.params must be an object or an array, got {type}",
}
_AT_KEY: Final = re.compile(r" - at `\$\.(\w+)")
_MISSING_KEY: Final = re.compile(r"missing required field `(\w+)`")
_NO_HEADER: Final = ('missing trace header (a JSON object with "lspguard_trace": 1); is this an '
                     "lspguard trace? Other logs can be converted with `lspguard import-trace`")


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and validate a whole trace; TraceError names the line and what is wrong with it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    if not lines:
        raise TraceError(f"{path}: line 1: empty file, expected a trace header")
    trace = Trace(_read_header(f"{path}: line 1", lines[0]), path=str(path))
    last_t = 0.0
    for number, raw in enumerate(lines[1:], start=2):
        where = f"{path}: line {number}"
        try:
            record: EntryRecord | GapRecord = _decode_entry(raw)
        except msgspec.DecodeError:  # a gap line, or a bad one
            record = _read_other(where, raw, last=number == len(lines))
        if record.t < last_t:
            raise TraceError(f"{where}: 't' goes backwards ({record.t} after {last_t})")
        last_t = record.t
        if isinstance(record, GapRecord):
            trace.gaps.append(TraceGap(record.t, record.dropped, number))
            continue
        _check_message(where, record.msg)
        trace.entries.append(TraceEntry(record.t, record.dir, record.gen, record.msg, number))
    return trace


def validate_trace(trace: Trace) -> None:
    """The checks of `read_trace`, for a trace built in memory (importers)."""
    last_t = 0.0
    for entry in trace.entries:
        where = f"{trace.path or '<trace>'}: line {entry.line}"
        if not 0 <= entry.t < float("inf") or entry.t < last_t:
            raise TraceError(f"{where}: bad or decreasing time {entry.t!r}")
        last_t = entry.t
        obj = {"t": entry.t, "dir": entry.dir, "gen": entry.gen, "msg": entry.msg}
        _check_message(where, _typed(where, obj, EntryRecord).msg)


def _read_header(where: str, raw: bytes) -> TraceHeader:
    try:
        _decode_version(raw)
        return _decode_header(raw)
    except msgspec.DecodeError:
        pass
    try:
        obj = _decode(raw)
    except msgspec.DecodeError:
        obj = None
    if not isinstance(obj, dict) or "lspguard_trace" not in obj:
        raise TraceError(f"{where}: {_NO_HEADER}") from None
    _typed(where, obj, HeaderVersion)
    return _typed(where, obj, TraceHeader)


def _read_other(where: str, raw: bytes, *, last: bool) -> EntryRecord | GapRecord:
    """A line that is not a valid entry: a gap, else TraceError saying what is wrong."""
    if not raw.strip():
        raise TraceError(f"{where}: empty line")
    try:
        obj = _decode(raw)
    except msgspec.DecodeError as exc:
        hint = " (the last line is cut short: was the recording interrupted?)" if last else ""
        raise TraceError(f"{where}: not valid JSON: {exc}{hint}") from None
    if not isinstance(obj, dict):
        raise TraceError(f"{where}: expected a JSON object, got {_type(obj)}")
    gap = "dropped" in obj
    keys = set((GapRecord if gap else EntryRecord).__struct_fields__)
    missing = sorted(keys - obj.keys())
    if missing:
        raise TraceError(f"{where}: missing {', '.join(map(repr, missing))}")
    extra = sorted(obj.keys() - keys)
    if extra:
        raise TraceError(f"{where}: unexpected key {', '.join(map(repr, extra))}")
    return _typed(where, obj, GapRecord) if gap else _typed(where, obj, EntryRecord)


def _check_message(where: str, msg: dict[str, Any]) -> None:
    """Strict JSON-RPC 2.0 shape: what replay relies on, and nothing more."""
    shape = _typed(where, msg, MessageShape)
    if shape.method is not msgspec.UNSET:
        return
    if shape.result is not msgspec.UNSET and shape.error is not msgspec.UNSET:
        raise TraceError(f"{where}: a response has both 'result' and 'error'")
    if shape.error is not msgspec.UNSET:
        error = shape.error
        if (not isinstance(error, dict) or type(error.get("code")) is not int
                or not isinstance(error.get("message"), str)):
            raise TraceError(f"{where}: msg.error must be an object with an integer 'code' and "
                             "a string 'message'")
    elif shape.result is msgspec.UNSET:
        raise TraceError(f"{where}: msg is neither a request, a notification nor a response "
                         "(no 'method', no 'result', no 'error')")
    elif shape.id is None:
        raise TraceError(f"{where}: a result response without an 'id'")


def _typed(where: str, obj: dict[str, Any], record: type[_R]) -> _R:
    """`obj` as a `record`; TraceError naming the key at fault (msgspec names it `$.key`)."""
    try:
        return msgspec.convert(obj, record)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _AT_KEY.search(text) or _MISSING_KEY.search(text)
        key = found.group(1) if found else ""
        if key not in _PROBLEMS:
            raise TraceError(f"{where}: {text}") from None
        value = obj.get(key)
        problem = _PROBLEMS[key].format(value=value, type=_type(value))
        raise TraceError(f"{where}: {problem}") from None


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__

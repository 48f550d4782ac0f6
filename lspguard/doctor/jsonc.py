"""A small tolerant JSONC reader (JSON with comments and trailing commas) that remembers lines.

devcontainer.json is JSONC, and the doctor must point at the line of a mistake so the VS Code
extension can show it as a Problems item; the PyPI JSON5/JSONC parsers return plain values
without positions. `parse` returns the value plus the line of every member and element, keyed by
its path (`("mounts", 0)`, `("containerEnv", "GOCACHE")`).
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JsoncError", "Parsed", "parse"]

JsonPath = tuple[str | int, ...]

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


class JsoncError(ValueError):
    """Malformed JSONC; `line` and `column` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column


@dataclass(slots=True)
class Parsed:
    value: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)

    def line_of(self, *path: str | int) -> int | None:
        """Line of the member/element at `path` (the key's line for object members)."""
        return self.lines.get(tuple(path))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[JsonPath, int] = {}
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self._starts, self.pos if pos is None else pos)

    def error(self, message: str, pos: int | None = None) -> JsoncError:
        at = self.pos if pos is None else pos
        line = self.line(at)
        return JsoncError(message, line, at - self._starts[line - 1] + 1)

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, path: JsonPath) -> Any:
        self.skip()
        self.lines.setdefault(path, self.line())
        ch = self.peek()
        if ch == "{":
            return self.obj(path)
        if ch == "[":
            return self.array(path)
        if ch == '"':
            return self.string()
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return json.loads(match.group())
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return literal
        raise self.error("expected a value" if ch else "unexpected end of file")

    def string(self) -> str:
        start = self.pos
        i = start + 1
        while True:
            j = self.text.find('"', i)
            if j < 0:
                raise self.error("unterminated string", start)
            backslashes = len(self.text[i:j]) - len(self.text[i:j].rstrip("\\"))
            if backslashes % 2 == 0:
                break
            i = j + 1
        self.pos = j + 1
        try:
            result: str = json.loads(self.text[start:self.pos], strict=False)
        except json.JSONDecodeError as exc:
            raise self.error(f"bad string: {exc.msg}", start) from None
        return result

    def obj(self, path: JsonPath) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.peek() == "}":
                self.pos += 1
                return out
            if self.peek() != '"':
                raise self.error("expected a quoted key or '}'")
            key_line = self.line()
            key = self.string()
            self.skip()
            if self.peek() != ":":
                raise self.error(f"expected ':' after key {key!r}")
            self.pos += 1
            self.lines[(*path, key)] = key_line
            out[key] = self.value((*path, key))
            self.skip()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise self.error("expected ',' or '}'")

    def array(self, path: JsonPath) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        while True:
            self.skip()
            if self.peek() == "]":
                self.pos += 1
                return out
            out.append(self.value((*path, len(out))))
            self.skip()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise self.error("expected ',' or ']'")


def parse(text: str) -> Parsed:
    """Parse JSONC text; raises JsoncError naming line and column on malformed input."""
    parser = _Parser(text)
    value = parser.value(())
    parser.skip()
    if parser.pos != len(text):
        raise parser.error("unexpected text after the end of the document")
    return Parsed(value, parser.lines)

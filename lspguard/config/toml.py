"""TOML documents <-> frozen dataclasses: the generic machinery behind lspguard's config.

`Loader` walks a dataclass schema (through ``typing.get_type_hints``) and converts a parsed TOML
document into it, raising ``ConfigError``s that name the source, the dotted key and what was
expected (with a "did you mean" for unknown keys). `to_toml` writes a dataclass back as TOML that
the loader reads again. The schema itself, and which file is used, live in config/model.py.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NoReturn, get_args, get_origin, get_type_hints

from lspguard.errors import ConfigError

__all__ = ["InvalidValue", "Key", "Loader", "check_count", "check_seconds", "to_toml"]

Key = tuple[str | int, ...]
"""A position in a config document: ("backend", "args", 2) is backend.args[2]."""
_Key = Key


class InvalidValue(ConfigError):
    """A field has the right type but a bad value; the loader adds the file and section."""

    def __init__(self, key: str | _Key, problem: str) -> None:
        self.key: _Key = (key,) if isinstance(key, str) else key
        self.problem = problem
        super().__init__(f"{_dotted(self.key)}: {problem}")


def check_seconds(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise InvalidValue(key, f"must be a positive, finite number of seconds, got {value!r}")


def check_count(key: str, value: int, *, minimum: int) -> None:
    if value < minimum:
        raise InvalidValue(key, f"must be at least {minimum}, got {value!r}")


# --------------------------------------------------------------------------------------------
# Keys and type descriptions (for messages)
# --------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_TOML_NAMES: dict[type, str] = {
    bool: "bool", int: "int", float: "float", str: "str", list: "array", dict: "table",
}


def _key_str(part: str) -> str:
    """One TOML key: bare when possible, else quoted."""
    return part if _BARE_KEY.match(part) else _toml_str(part)


def _dotted(key: _Key) -> str:
    """``("backend", "args", 2)`` -> ``backend.args[2]``."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key_str(part)
    return out


def _section(key: _Key) -> str:
    """The TOML table header naming `key` (array indices dropped): ``restart.fallback.env``."""
    return ".".join(_key_str(p) for p in key if isinstance(p, str))


def _optional_inner(tp: Any) -> Any:
    """``X`` for ``X | None``; None for any other type; TypeError for other unions."""
    if get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = get_args(tp)
    inner = [a for a in args if a is not type(None)]
    if len(inner) != 1 or len(args) != 2:
        raise TypeError(f"unsupported config type {tp!r}: only `X | None` unions are supported")
    return inner[0]


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    inner = _optional_inner(tp)
    if inner is not None:
        return f"{_type_name(inner)} | None"
    origin = get_origin(tp)
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, get_args(tp)))}]"
    if origin is tuple:
        return f"tuple[{_type_name(get_args(tp)[0])}, ...]"
    if origin is Mapping:
        k, v = get_args(tp)
        return f"Mapping[{_type_name(k)}, {_type_name(v)}]"
    return str(getattr(tp, "__name__", repr(tp)))


def _describe(tp: Any, key: _Key) -> str:
    """What a value for a field of type `tp` at `key` must be, in words."""
    inner = _optional_inner(tp)
    if inner is not None:
        return _describe(inner, key)
    origin = get_origin(tp)
    if tp is str:
        return "a string (str)"
    if tp is bool:
        return "a boolean (bool)"
    if tp is int:
        return "an integer (int)"
    if tp is float:
        return "a number (float)"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, get_args(tp)))
    if origin is tuple:
        args = get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported config type {tp!r}: use tuple[T, ...]")
        if _is_dataclass_type(args[0]):
            return f"an array of tables ([[{_section(key)}]])"
        return f"an array ({_type_name(tp)})"
    if origin is Mapping:
        if get_args(tp)[0] is not str:
            raise TypeError(f"unsupported config type {tp!r}: Mapping keys must be str")
        return f"a table ({_type_name(tp)})"
    if _is_dataclass_type(tp):
        return f"a table ([{_section(key)}])"
    raise TypeError(f"unsupported config type {tp!r} at {_dotted(key) or '<top>'}")


def _describe_value(value: Any) -> str:
    if value is None:
        return "None"
    name = _TOML_NAMES.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{name} {text}"


_FIELDS_CACHE: dict[type[Any], dict[str, tuple[dataclasses.Field[Any], Any]]] = {}


def _toml_fields(cls: type[Any]) -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    """The TOML-visible fields of dataclass `cls`, name -> (field, resolved type)."""
    fields = _FIELDS_CACHE.get(cls)
    if fields is None:
        hints = get_type_hints(cls)
        fields = {
            f.name: (f, hints[f.name])
            for f in dataclasses.fields(cls)
            if f.init and f.metadata.get("toml", True)
        }
        _FIELDS_CACHE[cls] = fields
    return fields


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class Loader:
    """Converts a parsed TOML document into the dataclass schema, naming `source` in errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: _Key, message: str) -> NoReturn:
        where = _dotted(key)
        raise ConfigError(f"{self.source}: {where}: {message}" if where else
                          f"{self.source}: {message}")

    def wrong_type(self, tp: Any, value: Any, key: _Key) -> NoReturn:
        self.fail(key, f"expected {_describe(tp, key)}, got {_describe_value(value)}")

    def convert(self, tp: Any, value: Any, key: _Key, base: Any) -> Any:
        """`value` as `tp`; `base` is the default it overrides (merged into, for dataclasses)."""
        inner = _optional_inner(tp)
        if inner is not None:
            if value is None:
                return None
            return self.convert(inner, value, key, base)
        origin = get_origin(tp)
        if tp is bool:
            if not isinstance(value, bool):
                self.wrong_type(tp, value, key)
            return value
        if tp is int:
            if not isinstance(value, int) or isinstance(value, bool):
                self.wrong_type(tp, value, key)
            return value
        if tp is float:
            if not isinstance(value, int | float) or isinstance(value, bool):
                self.wrong_type(tp, value, key)
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                self.wrong_type(tp, value, key)
            return value
        if origin is Literal:
            for choice in get_args(tp):
                if type(value) is type(choice) and value == choice:
                    return value
            self.wrong_type(tp, value, key)
        if origin is tuple:
            _describe(tp, key)  # rejects unsupported tuple shapes
            if not isinstance(value, list | tuple):
                self.wrong_type(tp, value, key)
            item_tp = get_args(tp)[0]
            return tuple(
                self.convert(item_tp, item, (*key, i), None) for i, item in enumerate(value)
            )
        if origin is Mapping:
            _describe(tp, key)  # rejects non-str keys
            if not isinstance(value, Mapping):
                self.wrong_type(tp, value, key)
            value_tp = get_args(tp)[1]
            return MappingProxyType({
                k: self.convert(value_tp, v, (*key, k), None) for k, v in value.items()
            })
        if _is_dataclass_type(tp):
            return self.dataclass(tp, value, key, base)
        _describe(tp, key)  # raises TypeError: unsupported type (a bug in the schema)
        raise AssertionError("unreachable")

    def dataclass(self, cls: type[Any], value: Any, key: _Key, base: Any) -> Any:
        if not isinstance(value, Mapping):
            self.wrong_type(cls, value, key)
        fields = _toml_fields(cls)
        for name in value:
            if name not in fields:
                self.unknown_key(name, fields, key)
        kwargs: dict[str, Any] = {}
        for name, item in value.items():
            f, tp = fields[name]
            sub_base = getattr(base, name) if base is not None else _field_default(f)
            if sub_base is dataclasses.MISSING:
                sub_base = None
            kwargs[name] = self.convert(tp, item, (*key, name), sub_base)
        if base is None:
            for name, (f, tp) in fields.items():
                if name not in kwargs and _field_default(f) is dataclasses.MISSING:
                    self.fail(key, f"missing required key {_key_str(name)} "
                                   f"(expected {_describe(tp, (*key, name))})")
        try:
            return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
        except InvalidValue as e:
            self.fail((*key, *e.key), e.problem)
        except ConfigError as e:
            self.fail(key, str(e))

    def unknown_key(self, name: str, fields: Mapping[str, Any], key: _Key) -> NoReturn:
        known = ", ".join(sorted(fields))
        if not key:
            where = "known top-level keys"
        elif isinstance(key[-1], int):
            where = f"known keys in [[{_section(key)}]]"
        else:
            where = f"known keys in [{_section(key)}]"
        message = f"{self.source}: unknown key {_dotted((*key, name))} ({where}: {known})"
        import difflib  # an unknown key: the error path only

        close = difflib.get_close_matches(name, list(fields), n=1)
        if close:
            message += f"; did you mean {_dotted((*key, close[0]))}?"
        raise ConfigError(message)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_STRING_ESCAPES = {
    '"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r",
}


def _toml_str(text: str) -> str:
    out = []
    for ch in text:
        if ch in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{_key_str(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _toml_value({
            name: getattr(value, name)
            for name in _toml_fields(type(value))
            if getattr(value, name) is not None
        })
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_dataclass_value(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _emit(obj: Any, key: _Key, lines: list[str]) -> None:
    """Append `obj`'s fields: plain keys first, then its sub-tables (TOML requires that order)."""
    tables: list[tuple[str, Any]] = []
    for name in _toml_fields(type(obj)):
        value = getattr(obj, name)
        if value is None:  # `X | None` fields: absent means None
            continue
        if (_is_dataclass_value(value) or isinstance(value, Mapping)
                or (isinstance(value, tuple) and value
                    and all(_is_dataclass_value(v) for v in value))):
            tables.append((name, value))
        else:
            lines.append(f"{_key_str(name)} = {_toml_value(value)}")
    for name, value in tables:
        sub: _Key = (*key, name)
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                lines += ["", f"[[{_section(sub)}]]"]
                _emit(item, (*sub, i), lines)
        else:
            lines += ["", f"[{_section(sub)}]"]
            if isinstance(value, Mapping):
                lines += [f"{_key_str(k)} = {_toml_value(v)}" for k, v in value.items()]
            else:
                _emit(value, sub, lines)


def to_toml(obj: Any, header: list[str]) -> str:
    """A dataclass as a TOML document (every key, with its value), after `header` lines."""
    lines = list(header)
    _emit(obj, (), lines)
    return "\n".join(lines) + "\n"

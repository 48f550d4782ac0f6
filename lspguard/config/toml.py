"""TOML documents <-> frozen dataclasses: the generic machinery behind lspguard's config.

`load` converts a parsed TOML document into a dataclass schema with ``msgspec.convert``, which
checks every type and runs each dataclass's ``__post_init__`` (the range checks). Done here: unknown
keys are errors (msgspec ignores them in dataclasses), a partial table overrides its defaults field
by field, and msgspec's errors become ``ConfigError``s naming the source, the dotted key and what
was expected. `to_toml` writes a dataclass back as TOML that `load` reads again. The schema, and
which file is used: config/sections.py and config/model.py.

Supported field types: ``str``, ``int``, ``float`` (an int is accepted; a bool is not), ``bool``,
``Literal[...]``, ``tuple[T, ...]`` (a TOML array; ``T`` a dataclass means an array of tables),
``Mapping[str, T]`` (a TOML table; the dataclass's ``__post_init__`` freezes it, e.g. into a
``MappingProxyType``), nested dataclasses (a TOML table) and ``T | None`` (absent from the file
means ``None``; such fields must default to ``None``). A Mapping or tuple value in a file
*replaces* the default value as a whole; only dataclass tables are merged with their defaults.
``__post_init__`` reports a bad value by raising ``InvalidValue``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, get_args, get_origin

from lspguard.errors import ConfigError

if TYPE_CHECKING:
    import msgspec

__all__ = ["InvalidValue", "Key", "check_count", "check_seconds", "load", "to_toml"]

Key = tuple[str | int, ...]
"""A position in a config document: ("backend", "args", 2) is backend.args[2]."""
_T = TypeVar("_T")


class InvalidValue(ConfigError, ValueError):
    """A field has the right type but a bad value; the loader adds the file and section.

    A ValueError too: msgspec turns one raised in ``__post_init__`` into a ValidationError at
    the dataclass's path (its ``__cause__``)."""

    def __init__(self, key: str | Key, problem: str) -> None:
        self.key: Key = (key,) if isinstance(key, str) else key
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


def _dotted(key: Key) -> str:
    """``("backend", "args", 2)`` -> ``backend.args[2]``."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key_str(part)
    return out


def _section(key: Key) -> str:
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


def _describe(tp: Any, key: Key) -> str:
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
        hints = typing.get_type_hints(cls)
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


def _check_schema(cls: type[Any], key: Key = ()) -> None:
    """TypeError for a field type the loader does not support (a bug in the schema)."""
    for name, (_, tp) in _toml_fields(cls).items():
        _describe(tp, (*key, name))
        inner = _optional_inner(tp) or tp
        origin, args = get_origin(inner), get_args(inner)
        inner = args[0] if origin is tuple else args[1] if origin is Mapping else inner
        if _is_dataclass_type(inner):
            _check_schema(inner, (*key, name))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_AT = re.compile(r" - at (`key` in )?`\$([^`]*)`\Z")
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]|\[\.\.\.\]")
_MISSING = re.compile(r"Object missing required field `(\w+)`")


def load(cls: type[_T], data: Any, *, source: str, base: _T | None = None) -> _T:
    """`data` (a parsed TOML document) as dataclass `cls`; absent keys keep `base`'s values (the
    field defaults when None). Errors are ``ConfigError``s whose messages start with `source`."""
    import msgspec  # here: without a config file (the usual case) nothing needs it

    loader = _Loader(source)
    merged = loader.overlay(cls, data, (), base)
    try:
        return msgspec.convert(merged, cls)
    except msgspec.ValidationError as e:
        loader.explain(e, cls, merged)
    except TypeError:  # a field type msgspec cannot convert: say which (a bug in the schema)
        _check_schema(cls)
        raise


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: Key, message: str) -> NoReturn:
        where = _dotted(key)
        raise ConfigError(f"{self.source}: {where}: {message}" if where else
                          f"{self.source}: {message}") from None

    def overlay(self, tp: Any, value: Any, key: Key, base: Any) -> Any:
        """`value` for a field of type `tp`, its tables checked for unknown keys (msgspec ignores
        them in dataclasses), and with the fields in which `base` differs from the defaults."""
        inner = _optional_inner(tp) or tp
        if _is_dataclass_type(inner) and isinstance(value, Mapping):
            fields = _toml_fields(inner)
            out = dict(value)
            for name, item in value.items():
                if name not in fields:
                    self.unknown_key(name, fields, key)
                f, field_tp = fields[name]
                sub_base = _field_default(f) if base is None else getattr(base, name)
                sub_base = None if sub_base is dataclasses.MISSING else sub_base
                out[name] = self.overlay(field_tp, item, (*key, name), sub_base)
            for name, (f, _) in fields.items() if base is not None else ():
                if name not in out and getattr(base, name) != _field_default(f):
                    out[name] = getattr(base, name)
            return out
        origin, args = get_origin(inner), get_args(inner)
        if origin is tuple and isinstance(value, list | tuple):
            return [self.overlay(args[0], item, (*key, i), None) for i, item in enumerate(value)]
        if origin is Mapping and isinstance(value, Mapping):
            return {k: self.overlay(args[1], v, (*key, k), None) for k, v in value.items()}
        return value

    def explain(self, error: msgspec.ValidationError, tp: Any, value: Any) -> NoReturn:
        """A ConfigError in our words for msgspec's `error` in converting `value` to `tp`."""
        import msgspec

        text = str(error)
        at = _AT.search(text)
        key: list[str | int] = []
        for name, index in (m.groups() for m in _STEP.finditer(at.group(2) if at else "")):
            tp = _optional_inner(tp) or tp
            if name:
                tp, value = _toml_fields(tp)[name][1], value[name]
                key.append(name)
            elif index:
                tp, value = get_args(tp)[0], value[int(index)]
                key.append(int(index))
            else:  # `[...]`: a Mapping value; the first that does not convert is at fault
                tp = get_args(tp)[1]
                for k, v in value.items():
                    try:
                        msgspec.convert(v, tp)
                    except msgspec.ValidationError:
                        key.append(k)
                        value = v
                        break
        cause = error.__cause__  # what __post_init__ raised
        if isinstance(cause, InvalidValue):
            self.fail((*key, *cause.key), cause.problem)
        if cause is not None:
            raise cause
        missing = _MISSING.match(text)
        if missing and not (at and at.group(1)):
            field_tp = _toml_fields(_optional_inner(tp) or tp)[missing.group(1)][1]
            self.fail(tuple(key), f"missing required key {_key_str(missing.group(1))} "
                                  f"(expected {_describe(field_tp, (*key, missing.group(1)))})")
        self.fail(tuple(key), f"expected {_describe(tp, tuple(key))}, got {_describe_value(value)}")

    def unknown_key(self, name: str, fields: Mapping[str, Any], key: Key) -> NoReturn:
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


def _emit(obj: Any, key: Key, lines: list[str]) -> None:
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
        sub: Key = (*key, name)
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

"""lspguard's configuration: typed, frozen dataclasses loaded from TOML.

A config file holds only what it wants to change; everything else keeps the defaults written
here (documented, key by key, in ``configs/default.toml``)::

    [backend]                 # BackendConfig: which language server to run, and how
    gopls = "/usr/local/bin/gopls"
    args = ["-remote.debug=:0"]

    [backend.env]             # environment overlay for every backend generation
    GOMODCACHE = "/tmp/gomodcache"

    [proxy]                   # ProxyConfig: the proxy itself
    stop_timeout = 5.0

Which file is used (``find_config``): ``--config PATH`` > ``$LSPGUARD_CONFIG`` > a workspace
``.lspguard.toml`` (in the working directory or its nearest parent that has one) > the user config
dir's ``config.toml`` (``$LSPGUARD_CONFIG_DIR`` or the platform's config dir) > built-in defaults.

Unknown keys, wrong types and out-of-range values are ``ConfigError``s naming the file, the dotted
key and what was expected. The loader is generic: it walks the dataclass fields (through
``typing.get_type_hints``), so adding a section is just adding a dataclass field to ``Config``.
Supported field types: ``str``, ``int``, ``float`` (an int is accepted; a bool is not), ``bool``,
``Literal[...]``, ``tuple[T, ...]`` (a TOML array; ``T`` a dataclass means an array of tables),
``Mapping[str, T]`` (a TOML table, stored as a read-only ``MappingProxyType``), nested dataclasses
(a TOML table; a partial table overrides the defaults field by field) and ``T | None`` (absent
from the file means ``None``; such fields must default to ``None``). A Mapping or tuple value in a
file *replaces* the default value as a whole; only dataclass tables are merged with their
defaults. Range checks live in each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, get_args, get_origin, get_type_hints

from lspguard import paths
from lspguard.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_DEADLINES",
    "USER_CONFIG_FILE",
    "WORKSPACE_CONFIG_FILE",
    "BackendConfig",
    "Config",
    "FallbackBackend",
    "LogLevel",
    "ProxyConfig",
    "RestartConfig",
    "SnapshotConfig",
    "TraceConfig",
    "WatchdogConfig",
    "config_from_dict",
    "config_to_toml",
    "find_config",
    "load_config",
    "resolve_config",
]

CONFIG_ENV = "LSPGUARD_CONFIG"
"""Environment variable naming a config file (below ``--config``, above the workspace file)."""
WORKSPACE_CONFIG_FILE = ".lspguard.toml"
"""Per-workspace config file, looked up in the working directory and its parents."""
USER_CONFIG_FILE = "config.toml"
"""Per-user config file name inside ``paths.config_dir()``."""

LogLevel = Literal["debug", "info", "warning", "error"]

_Key = tuple[str | int, ...]
"""A position in a config document: ("backend", "args", 2) is backend.args[2]."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


class _InvalidValue(ConfigError):
    """A field has the right type but a bad value; the loader adds the file and section."""

    def __init__(self, key: str | _Key, problem: str) -> None:
        self.key: _Key = (key,) if isinstance(key, str) else key
        self.problem = problem
        super().__init__(f"{_dotted(self.key)}: {problem}")


def _check_seconds(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise _InvalidValue(key, f"must be a positive, finite number of seconds, got {value!r}")


def _check_count(key: str, value: int, *, minimum: int) -> None:
    if value < minimum:
        raise _InvalidValue(key, f"must be at least {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """The language server lspguard runs (one process per generation)."""

    gopls: str = ""
    """Path of the real gopls; "" means $LSPGUARD_GOPLS, then PATH (looked up by the shim)."""
    args: tuple[str, ...] = ()
    """Extra arguments appended to the backend command line."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """Environment overlay for every backend generation (read-only)."""

    def __post_init__(self) -> None:
        # Copy and freeze, so a dict passed by a caller can neither be mutated through us nor
        # change under us.
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        if "\0" in self.gopls:
            raise _InvalidValue("gopls", "must not contain a NUL character")
        for i, arg in enumerate(self.args):
            if "\0" in arg:
                raise _InvalidValue(("args", i), "must not contain a NUL character")
        for name, value in self.env.items():
            if not name or "=" in name or "\0" in name:
                raise _InvalidValue(
                    ("env", name),
                    "is not a valid environment variable name (empty, or has '=' or NUL)",
                )
            if "\0" in value:
                raise _InvalidValue(("env", name), "must not contain a NUL character")


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The proxy itself: framing limits, stopping, logging, status."""

    max_frame_bytes: int = 256 * 1024 * 1024
    """Frames larger than this are a protocol error."""
    stop_timeout: float = 2.0
    """Seconds for each stop step (shutdown/exit, SIGTERM) before escalating."""
    log_level: LogLevel = "info"
    log_stderr: bool = False
    """Also log to stderr (never stdout: stdout is the LSP stream)."""
    stderr_tail_lines: int = 200
    """Backend stderr lines kept in memory (for snapshots)."""
    status_interval: float = 1.0
    """Seconds between status-file refreshes."""

    def __post_init__(self) -> None:
        _check_count("max_frame_bytes", self.max_frame_bytes, minimum=1)
        _check_seconds("stop_timeout", self.stop_timeout)
        if self.log_level not in get_args(LogLevel):
            raise _InvalidValue(
                "log_level",
                f"must be one of {', '.join(map(repr, get_args(LogLevel)))}, "
                f"got {self.log_level!r}",
            )
        _check_count("stderr_tail_lines", self.stderr_tail_lines, minimum=0)
        _check_seconds("status_interval", self.status_interval)


# Deadlines (seconds) of methods whose default differs from `watchdog.default_deadline`.
# `watchdog.deadlines` in a config file overrides single entries of this table.
DEFAULT_DEADLINES: Mapping[str, float] = MappingProxyType({
    "textDocument/hover": 10.0,
    "textDocument/completion": 10.0,
    "textDocument/definition": 10.0,
    "textDocument/signatureHelp": 10.0,
    "textDocument/documentHighlight": 10.0,
    "textDocument/semanticTokens/full": 15.0,
    "textDocument/semanticTokens/range": 15.0,
    "textDocument/inlayHint": 15.0,
    "shutdown": 10.0,
    # Long by nature: gopls runs tests, `go generate` and vulncheck through executeCommand.
    "workspace/executeCommand": 600.0,
    "workspace/symbol": 60.0,
    "textDocument/references": 60.0,
    "textDocument/rename": 60.0,
})


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    """When a backend counts as hung (DESIGN.md section 4)."""

    enabled: bool = True
    tick: float = 1.0
    """Seconds between watchdog checks."""
    handshake_timeout: float = 30.0
    """Seconds `initialize` may take before the verdict handshake_timeout."""
    default_deadline: float = 30.0
    """Seconds a request may take when `deadlines` and the built-in table don't name it."""
    deadlines: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({}), hash=False)
    """Per-method deadlines in seconds, on top of the built-in table."""
    busy_cpu_percent: float = 20.0
    """Backend tree CPU (% of one core) above which a late server counts as busy, not stuck."""
    busy_grace_factor: float = 3.0
    """A busy server gets deadline x this before the verdict busy_spin."""
    stuck_grace_factor: float = 2.0
    """A server with flat CPU that still answers pings gets deadline x this (it may be waiting
    on the network, e.g. downloading modules) before the verdict deadlocked."""
    ping_timeout: float = 2.0
    """Seconds a liveness ping (unknown method) may go unanswered while requests are late."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "deadlines", MappingProxyType(dict(self.deadlines)))
        for key in ("tick", "handshake_timeout", "default_deadline", "ping_timeout"):
            _check_seconds(key, getattr(self, key))
        for method, seconds in self.deadlines.items():
            _check_seconds(f"deadlines.{method}", seconds)
        for key in ("busy_grace_factor", "stuck_grace_factor"):
            if not getattr(self, key) >= 1:
                raise _InvalidValue(key, f"must be >= 1, got {getattr(self, key)}")
        if not 0 < self.busy_cpu_percent <= 100 * 1024:
            raise _InvalidValue("busy_cpu_percent", f"must be > 0, got {self.busy_cpu_percent}")

    def deadline_for(self, method: str) -> float:
        return self.deadlines.get(method) or DEFAULT_DEADLINES.get(method, self.default_deadline)


@dataclass(frozen=True, slots=True)
class FallbackBackend:
    """One step of the fallback chain: another server command (e.g. a forked gopls build)."""

    command: tuple[str, ...]
    """argv of the fallback server (stdio LSP)."""
    name: str = ""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        if not self.command:
            raise _InvalidValue("command", "must name a program")

    @property
    def label(self) -> str:
        return self.name or self.command[0]


@dataclass(frozen=True, slots=True)
class RestartConfig:
    """How lspguard restarts a hung or crashed backend (DESIGN.md section 5)."""

    enabled: bool = True
    max_restarts: int = 4
    """At most this many restarts within `window` seconds (like vscode-languageclient)..."""
    window: float = 180.0
    """...after which lspguard stops restarting and answers requests with an error."""
    hang_env: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"GODEBUG": "asyncpreemptoff=1"}), hash=False)
    """Env overlay from the first restart on (GODEBUG values are merged, not replaced)."""
    fallback: tuple[FallbackBackend, ...] = ()
    """Backends tried from the second restart on, in order; the last one is kept."""
    backoff_initial: float = 0.2
    """Seconds before the first retry of a failed start; doubles each retry."""
    backoff_max: float = 5.0
    start_attempts: int = 3
    """Tries to start (spawn + initialize) one generation before counting it as failed."""
    queue_limit: int = 1000
    """Editor requests held while restarting; past this they get ContentModified."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hang_env", MappingProxyType(dict(self.hang_env)))
        object.__setattr__(self, "fallback", tuple(self.fallback))
        _check_count("max_restarts", self.max_restarts, minimum=0)
        _check_seconds("window", self.window)
        _check_seconds("backoff_initial", self.backoff_initial)
        _check_seconds("backoff_max", self.backoff_max)
        _check_count("start_attempts", self.start_attempts, minimum=1)
        _check_count("queue_limit", self.queue_limit, minimum=0)


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    """Incident bundles (DESIGN.md section 6), written on every verdict before any kill."""

    enabled: bool = True
    budget: float = 5.0
    """Seconds all collectors together may take (recovery waits at most this long)."""
    strace_seconds: float = 3.0
    """Length of the strace sample (when strace exists and ptrace is allowed)."""
    include_text: bool = False
    """Keep document text and hover contents in bundles (redacted by default)."""
    gopls_debug: bool = True
    """Start gopls with -debug=127.0.0.1:0 (unless set) so a bundle holds a goroutine dump."""
    keep: int = 20
    """Bundles kept; older ones are pruned..."""
    max_mb: int = 200
    """...as are the oldest past this total size."""

    def __post_init__(self) -> None:
        _check_seconds("budget", self.budget)
        _check_seconds("strace_seconds", self.strace_seconds)
        _check_count("keep", self.keep, minimum=1)
        _check_count("max_mb", self.max_mb, minimum=1)


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """Record every session to a trace file (`lspguard record` does this for one session)."""

    enabled: bool = False
    directory: str = ""
    """Where traces go; "" means <user state dir>/traces."""
    include_text: bool = False
    """Keep document text in traces: needed for a faithful replay; off redacts it."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. Each field but ``source`` is a TOML section."""

    backend: BackendConfig = field(default_factory=BackendConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    restart: RestartConfig = field(default_factory=RestartConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    trace: TraceConfig = field(default_factory=TraceConfig)
    source: str = field(default="<defaults>", metadata={"toml": False})
    """Not a TOML key: where this config came from (a file path, or "<defaults>")."""


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


class _Loader:
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
        except _InvalidValue as e:
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
        close = difflib.get_close_matches(name, list(fields), n=1)
        if close:
            message += f"; did you mean {_dotted((*key, close[0]))}?"
        raise ConfigError(message)


def config_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Config:
    """Build a Config from an already parsed TOML document, layered on the defaults.

    Errors are ``ConfigError``s whose messages start with `source`.
    """
    config = _Loader(source).dataclass(Config, data, (), Config())
    assert isinstance(config, Config)
    return dataclasses.replace(config, source=source)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load the TOML file at `path`, layered on the defaults; ``source`` is ``str(path)``."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{source}: cannot read config file: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{source}: config file is not UTF-8 text: {e}") from e
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML: {e}") from e
    return config_from_dict(document, source=source)


# --------------------------------------------------------------------------------------------
# Finding
# --------------------------------------------------------------------------------------------


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. EACCES on a parent: treat as absent
        return False


def _given_path(path: Path, what: str) -> Path:
    """`path` if it can be read as a config file; ConfigError when it does not exist."""
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: config file given by {what} is a directory")
        if not path.exists():
            raise ConfigError(f"{path}: config file given by {what} does not exist")
    except OSError as e:
        raise ConfigError(f"{path}: config file given by {what}: {e.strerror or e}") from e
    return path


def find_config(
    explicit: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The config file to use, or None for the built-in defaults.

    Precedence: `explicit` (``--config``) > ``$LSPGUARD_CONFIG`` (read from `environ` when given,
    else ``os.environ``) > ``.lspguard.toml`` in `cwd` (default: the working directory) or its
    nearest parent that has one > ``paths.config_dir() / "config.toml"`` (which honours
    ``$LSPGUARD_CONFIG_DIR`` from ``os.environ``) > None. Relative paths are taken relative to
    `cwd`. An explicit or ``$LSPGUARD_CONFIG`` path that does not exist is a ``ConfigError``.
    """
    env = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else Path(cwd)
    if explicit is not None:
        return _given_path(base / Path(explicit).expanduser(), "--config")
    from_env = env.get(CONFIG_ENV)
    if from_env:
        return _given_path(base / Path(from_env).expanduser(), f"${CONFIG_ENV}")
    start = base.resolve()
    for directory in (start, *start.parents):
        candidate = directory / WORKSPACE_CONFIG_FILE
        if _is_file(candidate):
            return candidate
    user = paths.config_dir() / USER_CONFIG_FILE
    return user if _is_file(user) else None


def resolve_config(
    explicit: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """``load_config(find_config(...))``, or the defaults (``Config()``) when no file is found."""
    path = find_config(explicit, cwd=cwd, environ=environ)
    return Config() if path is None else load_config(path)


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


def config_to_toml(config: Config) -> str:
    """`config` as a TOML document (every key, with its value) that ``load_config`` reads back."""
    source = " ".join(config.source.splitlines())
    lines = ["# lspguard configuration", f"# source: {source}"]
    _emit(config, (), lines)
    return "\n".join(lines) + "\n"

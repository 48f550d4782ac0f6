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
import math
import os
from collections.abc import Mapping  # noqa: TC003 - get_type_hints() resolves the schema at runtime
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

from lspguard import paths
from lspguard.config.toml import InvalidValue as _InvalidValue
from lspguard.config.toml import Loader, to_toml
from lspguard.config.toml import check_count as _check_count
from lspguard.config.toml import check_seconds as _check_seconds
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



# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------



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
    """When a backend counts as hung (README: "Detection")."""

    enabled: bool = True
    tick: float = 1.0
    """Seconds between watchdog checks."""
    handshake_timeout: float = 30.0
    """Seconds `initialize` may take before the verdict handshake_timeout."""
    default_deadline: float = 30.0
    """Seconds a request may wait without progress (supervise/progress.py: not its age) when
    `deadlines` and the built-in table don't name it."""
    deadlines: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({}), hash=False)
    """Per-method deadlines in seconds, on top of the built-in table."""
    busy_cpu_percent: float = 20.0
    """Backend tree CPU (% of one core) above which a late server counts as busy, not stuck."""
    busy_grace_factor: float = 3.0
    """A busy server (CPU with no other progress) gets deadline x this before busy_spin."""
    stuck_grace_factor: float = 2.0
    """A server with flat CPU that still answers pings gets deadline x this (it may be waiting
    on the network, e.g. downloading modules) before the verdict deadlocked."""
    ping_timeout: float = 2.0
    """Seconds a liveness ping (unknown method) may go unanswered while requests are late."""
    external_wait: float = 3.0
    """Seconds a thread may sit in a filesystem, FIFO or uninterruptible kernel wait while a
    request waits, before that wait is the verdict (without waiting out the deadline)."""
    probe_timeout: float = 2.0
    """Seconds a probe (a /proc snapshot, a stat of a suspect path) may take before it is
    abandoned: probes never hang the proxy."""
    slow_fs_ms: float = 1.0
    """Milliseconds per lookup above which a filesystem gopls needs counts as slow (a state
    with the fix, not a verdict: nothing is restarted)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "deadlines", MappingProxyType(dict(self.deadlines)))
        for key in ("tick", "handshake_timeout", "default_deadline", "ping_timeout",
                    "external_wait", "probe_timeout", "slow_fs_ms"):
            _check_seconds(key, getattr(self, key))
        for method, seconds in self.deadlines.items():
            _check_seconds(f"deadlines.{method}", seconds)
        for key in ("busy_grace_factor", "stuck_grace_factor"):
            if not 1 <= getattr(self, key) < math.inf:
                raise _InvalidValue(key, f"must be >= 1 and finite, got {getattr(self, key)}")
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
    """How lspguard restarts a hung or crashed backend (README: "Recovery")."""

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
    revive_backoff: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0)
    """While degraded (the restart budget spent), retry after these many seconds (the last one
    repeats), so the session comes back by itself."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hang_env", MappingProxyType(dict(self.hang_env)))
        object.__setattr__(self, "fallback", tuple(self.fallback))
        object.__setattr__(self, "revive_backoff", tuple(self.revive_backoff))
        if not self.revive_backoff:
            raise _InvalidValue("revive_backoff", "must hold at least one number of seconds")
        for i, seconds in enumerate(self.revive_backoff):
            _check_seconds(f"revive_backoff[{i}]", seconds)
        _check_count("max_restarts", self.max_restarts, minimum=0)
        _check_seconds("window", self.window)
        _check_seconds("backoff_initial", self.backoff_initial)
        _check_seconds("backoff_max", self.backoff_max)
        _check_count("start_attempts", self.start_attempts, minimum=1)
        _check_count("queue_limit", self.queue_limit, minimum=0)


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    """Incident bundles (README: "Evidence"), written on every verdict before any kill."""

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


def config_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Config:
    """Build a Config from an already parsed TOML document, layered on the defaults.

    Errors are ``ConfigError``s whose messages start with `source`.
    """
    config = Loader(source).dataclass(Config, data, (), Config())
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
    import tomllib  # here: without a config file (the usual case) the proxy never needs it

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


def config_to_toml(config: Config) -> str:
    """`config` as a TOML document (every key, with its value) that ``load_config`` reads back."""
    source = " ".join(config.source.splitlines())
    return to_toml(config, ["# lspguard configuration", f"# source: {source}"])

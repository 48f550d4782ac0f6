"""The sections of lspguard's configuration: one frozen dataclass per TOML table.

Each checks its values in ``__post_init__`` (raising ``InvalidValue``, which the loader turns into
an error naming the file and the key) and freezes what a caller could mutate (a Mapping becomes a
read-only ``MappingProxyType``, a list a tuple), so direct construction is checked and frozen too.
The defaults are documented, key by key, in ``configs/default.toml``; ``Config`` (model.py) holds
one of each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping  # noqa: TC003 - get_type_hints() resolves the schema at runtime
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from lspguard.config.toml import InvalidValue, check_count, check_seconds

__all__ = ["DEFAULT_DEADLINES", "BackendConfig", "FallbackBackend", "LogLevel", "ProxyConfig",
           "RestartConfig", "SnapshotConfig", "TraceConfig", "WatchdogConfig"]

LogLevel = Literal["debug", "info", "warning", "error"]


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
            raise InvalidValue("gopls", "must not contain a NUL character")
        for i, arg in enumerate(self.args):
            if "\0" in arg:
                raise InvalidValue(("args", i), "must not contain a NUL character")
        for name, value in self.env.items():
            if not name or "=" in name or "\0" in name:
                raise InvalidValue(
                    ("env", name),
                    "is not a valid environment variable name (empty, or has '=' or NUL)",
                )
            if "\0" in value:
                raise InvalidValue(("env", name), "must not contain a NUL character")


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
        check_count("max_frame_bytes", self.max_frame_bytes, minimum=1)
        check_seconds("stop_timeout", self.stop_timeout)
        if self.log_level not in get_args(LogLevel):
            raise InvalidValue(
                "log_level",
                f"must be one of {', '.join(map(repr, get_args(LogLevel)))}, "
                f"got {self.log_level!r}",
            )
        check_count("stderr_tail_lines", self.stderr_tail_lines, minimum=0)
        check_seconds("status_interval", self.status_interval)


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
            check_seconds(key, getattr(self, key))
        for method, seconds in self.deadlines.items():
            check_seconds(f"deadlines.{method}", seconds)
        for key in ("busy_grace_factor", "stuck_grace_factor"):
            if not 1 <= getattr(self, key) < math.inf:
                raise InvalidValue(key, f"must be >= 1 and finite, got {getattr(self, key)}")
        if not 0 < self.busy_cpu_percent <= 100 * 1024:
            raise InvalidValue("busy_cpu_percent", f"must be > 0, got {self.busy_cpu_percent}")

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
            raise InvalidValue("command", "must name a program")

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
            raise InvalidValue("revive_backoff", "must hold at least one number of seconds")
        for i, seconds in enumerate(self.revive_backoff):
            check_seconds(f"revive_backoff[{i}]", seconds)
        check_count("max_restarts", self.max_restarts, minimum=0)
        check_seconds("window", self.window)
        check_seconds("backoff_initial", self.backoff_initial)
        check_seconds("backoff_max", self.backoff_max)
        check_count("start_attempts", self.start_attempts, minimum=1)
        check_count("queue_limit", self.queue_limit, minimum=0)


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
        check_seconds("budget", self.budget)
        check_seconds("strace_seconds", self.strace_seconds)
        check_count("keep", self.keep, minimum=1)
        check_count("max_mb", self.max_mb, minimum=1)


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """Record every session to a trace file (`lspguard record` does this for one session)."""

    enabled: bool = False
    directory: str = ""
    """Where traces go; "" means <user state dir>/traces."""
    include_text: bool = False
    """Keep document text in traces: needed for a faithful replay; off redacts it."""

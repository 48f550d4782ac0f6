"""lspguard's configuration: typed, frozen dataclasses loaded from TOML.

A config file holds only what it wants to change; everything else keeps the defaults written
in config/sections.py (documented, key by key, in ``configs/default.toml``)::

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
key and what was expected. The loader (config/toml.py, msgspec underneath) is generic: adding a
section is just adding a dataclass field to ``Config``; the sections themselves, and their range
checks, are in config/sections.py.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lspguard import paths
from lspguard.config.sections import (
    DEFAULT_DEADLINES,
    BackendConfig,
    FallbackBackend,
    LogLevel,
    ProxyConfig,
    RestartConfig,
    SnapshotConfig,
    TraceConfig,
    WatchdogConfig,
)
from lspguard.config.toml import load, to_toml
from lspguard.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    return dataclasses.replace(load(Config, data, source=source, base=Config()), source=source)


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

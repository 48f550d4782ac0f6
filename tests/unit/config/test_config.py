"""Tests for lspguard.config.model: schema, loading, errors, lookup precedence, writing."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args, get_origin

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lspguard.config import toml as tomlschema
from lspguard.config.model import (
    BackendConfig,
    Config,
    ProxyConfig,
    config_from_dict,
    config_to_toml,
    find_config,
    load_config,
    resolve_config,
)
from lspguard.errors import ConfigError

from ...conftest import REPO

CONFIGS = REPO / "configs"
PROFILES = sorted(CONFIGS.glob("*.toml"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path / "x.toml", text))


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "x.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def toml_keys(document: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for k, v in document.items():
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= toml_keys(v, f"{prefix}{k}.")
    return keys


# --- profiles in configs/ ------------------------------------------------------------------


def test_default_file_equals_code_defaults() -> None:
    loaded = load_config(CONFIGS / "default.toml")
    assert loaded.source == str(CONFIGS / "default.toml")
    assert dataclasses.replace(loaded, source=Config().source) == Config()


def test_default_file_lists_every_key() -> None:
    documented = tomllib.loads((CONFIGS / "default.toml").read_text(encoding="utf-8"))
    every = tomllib.loads(config_to_toml(Config()))
    assert toml_keys(documented) == toml_keys(every)


def test_profiles_exist() -> None:
    names = {p.name for p in PROFILES}
    assert {"default.toml", "devcontainer-macos.toml", "fallback-example.toml"} <= names


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_loads_and_round_trips(profile: Path) -> None:
    loaded = load_config(profile)
    assert loaded.source == str(profile)
    again = config_from_dict(tomllib.loads(config_to_toml(loaded)), source=loaded.source)
    assert again == loaded


def test_devcontainer_profile_uses_container_local_caches() -> None:
    env = load_config(CONFIGS / "devcontainer-macos.toml").backend.env
    assert env["GOMODCACHE"].startswith("/tmp/")
    assert env["GOCACHE"].startswith("/tmp/")


# --- loading -------------------------------------------------------------------------------


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, "")
    assert dataclasses.replace(loaded, source=Config().source) == Config()
    assert loaded.source == str(tmp_path / "x.toml")


def test_partial_table_overrides_field_by_field(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, '[proxy]\nstop_timeout = 7.5\n\n[backend.env]\nGOFLAGS = "-x"\n')
    assert loaded.proxy == dataclasses.replace(ProxyConfig(), stop_timeout=7.5)
    assert loaded.backend == BackendConfig(env={"GOFLAGS": "-x"})


def test_values_of_every_kind(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, """
[backend]
gopls = "/opt/gopls"
args = ["-rpc.trace", "serve"]
env = { GOFLAGS = "-mod=mod", "A.B" = "c" }

[proxy]
max_frame_bytes = 1024
stop_timeout = 3
log_level = "debug"
log_stderr = true
stderr_tail_lines = 0
status_interval = 0.25
""")
    assert loaded.backend.gopls == "/opt/gopls"
    assert loaded.backend.args == ("-rpc.trace", "serve")
    assert dict(loaded.backend.env) == {"GOFLAGS": "-mod=mod", "A.B": "c"}
    assert isinstance(loaded.backend.env, MappingProxyType)
    assert loaded.proxy.stop_timeout == 3.0
    assert type(loaded.proxy.stop_timeout) is float  # an int is accepted for a float
    assert loaded.proxy.log_level == "debug"
    assert loaded.proxy.log_stderr is True
    assert loaded.proxy.stderr_tail_lines == 0


def test_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(b"\xef\xbb\xbf[proxy]\nlog_level = \"error\"\n")
    assert load_config(path).proxy.log_level == "error"


def test_load_config_accepts_str(tmp_path: Path) -> None:
    path = write(tmp_path / "x.toml", "")
    assert load_config(str(path)).source == str(path)


# --- errors --------------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[bakend]\ngopls = "x"\n')
    assert "unknown key bakend" in message
    assert "known top-level keys: backend, proxy" in message
    assert "did you mean backend?" in message


def test_unknown_nested_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[proxy]\nstop_timout = 1.0\n")
    path = tmp_path / "x.toml"
    assert message == (
        f"{path}: unknown key proxy.stop_timout (known keys in [proxy]: log_level, log_stderr, "
        "max_frame_bytes, status_interval, stderr_tail_lines, stop_timeout); "
        "did you mean proxy.stop_timeout?"
    )


def test_source_is_not_a_toml_key(tmp_path: Path) -> None:
    assert "unknown key source" in error_of(tmp_path, 'source = "x"\n')


def test_wrong_type_message_is_exact(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[proxy]\nstop_timeout = "soon"\n')
    assert message == (
        f"{tmp_path / 'x.toml'}: proxy.stop_timeout: expected a number (float), got str 'soon'"
    )


@pytest.mark.parametrize(("text", "expected"), [
    ("[proxy]\nmax_frame_bytes = true", "proxy.max_frame_bytes: expected an integer (int), "
                                        "got bool True"),
    ("[proxy]\nstop_timeout = false", "proxy.stop_timeout: expected a number (float), got bool"),
    ("[proxy]\nmax_frame_bytes = 1.5", "proxy.max_frame_bytes: expected an integer (int), "
                                       "got float 1.5"),
    ("[proxy]\nlog_stderr = \"yes\"", "proxy.log_stderr: expected a boolean (bool), got str 'yes'"),
    ("[proxy]\nlog_stderr = 1", "proxy.log_stderr: expected a boolean (bool), got int 1"),
    ("[proxy]\nlog_level = \"verbose\"", "proxy.log_level: expected one of 'debug', 'info', "
                                         "'warning', 'error', got str 'verbose'"),
    ("[proxy]\nlog_level = 1", "proxy.log_level: expected one of"),
    ("[proxy]\nstop_timeout = 2024-01-01", "proxy.stop_timeout: expected a number (float), "
                                           "got date"),
    ('[backend]\nargs = ["a", 1]', "backend.args[1]: expected a string (str), got int 1"),
    ('[backend]\nargs = "a"', "backend.args: expected an array (tuple[str, ...]), got str 'a'"),
    ("[backend]\ngopls = 5", "backend.gopls: expected a string (str), got int 5"),
    ("[backend.env]\nFOO = 1", "backend.env.FOO: expected a string (str), got int 1"),
    ('[backend.env]\n"a/b" = true', 'backend.env."a/b": expected a string (str), got bool True'),
    ('[backend]\nenv = ["x"]', "backend.env: expected a table (Mapping[str, str]), "
                               "got array ['x']"),
    ("proxy = 3", "proxy: expected a table ([proxy]), got int 3"),
])
def test_wrong_types_name_key_and_expected_type(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text + "\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("[proxy]\nstop_timeout = 0", "proxy.stop_timeout: must be a positive"),
    ("[proxy]\nstop_timeout = -1.5", "proxy.stop_timeout: must be a positive"),
    ("[proxy]\nstop_timeout = nan", "proxy.stop_timeout: must be a positive"),
    ("[proxy]\nstop_timeout = inf", "proxy.stop_timeout: must be a positive"),
    ("[proxy]\nstatus_interval = 0.0", "proxy.status_interval: must be a positive"),
    ("[proxy]\nmax_frame_bytes = 0", "proxy.max_frame_bytes: must be at least 1, got 0"),
    ("[proxy]\nstderr_tail_lines = -1", "proxy.stderr_tail_lines: must be at least 0"),
    ("[watchdog]\nbusy_grace_factor = 1e400", "busy_grace_factor: must be >= 1 and finite"),
    ("[watchdog]\nstuck_grace_factor = 0.5", "stuck_grace_factor: must be >= 1 and finite"),
    ('[backend.env]\n"A=B" = "x"', 'backend.env."A=B": is not a valid environment variable'),
    ('[backend.env]\n"" = "x"', 'backend.env."": is not a valid environment variable'),
    ('[backend]\nargs = ["a\\u0000b"]', "backend.args[0]: must not contain a NUL"),
])
def test_out_of_range_values(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text + "\n")


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="stop_timeout: must be a positive"):
        ProxyConfig(stop_timeout=0)
    with pytest.raises(ConfigError, match="log_level: must be one of"):
        ProxyConfig(log_level="loud")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="env"):
        BackendConfig(env={"A=B": "c"})


def test_toml_syntax_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[proxy\nstop_timeout = 1\n")
    assert "invalid TOML" in message
    assert "line 1" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(b'[backend]\ngopls = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_config_from_dict_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^<cli>: proxy\.stop_timeout: expected a number"):
        config_from_dict({"proxy": {"stop_timeout": "x"}}, source="<cli>")


# --- immutability --------------------------------------------------------------------------


def test_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.proxy = ProxyConfig()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.proxy.stop_timeout = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.backend.gopls = "x"  # type: ignore[misc]


def test_env_mapping_is_immutable_and_detached(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, '[backend.env]\nA = "1"\n')
    with pytest.raises(TypeError):
        loaded.backend.env["A"] = "2"  # type: ignore[index]
    source = {"A": "1"}
    backend = BackendConfig(env=source)
    source["A"] = "changed"
    assert backend.env["A"] == "1"
    assert isinstance(backend.env, MappingProxyType)


def _mappings(obj: Any) -> list[Any]:
    """Every Mapping-typed field value reachable from dataclass `obj`."""
    found = []
    for name, (_, tp) in tomlschema._toml_fields(type(obj)).items():
        value = getattr(obj, name)
        if get_origin(tp) is Mapping:
            found.append(value)
        for item in value if isinstance(value, tuple) else (value,):
            if dataclasses.is_dataclass(item):
                found += _mappings(item)
    return found


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_every_loaded_mapping_is_read_only(profile: Path) -> None:
    mappings = _mappings(load_config(profile))
    assert len(mappings) >= 3  # backend.env, watchdog.deadlines, restart.hang_env (+ fallbacks)
    assert all(isinstance(m, MappingProxyType) for m in mappings), mappings


def test_args_list_becomes_tuple() -> None:
    assert BackendConfig(args=["a", "b"]).args == ("a", "b")  # type: ignore[arg-type]


def test_configs_are_hashable_and_comparable() -> None:
    assert hash(Config()) == hash(Config())
    assert Config() == Config()
    assert Config(backend=BackendConfig(env={"A": "1"})) != Config()


# --- find_config / resolve_config ----------------------------------------------------------


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "user-config"
    monkeypatch.setenv("LSPGUARD_CONFIG_DIR", str(directory))
    monkeypatch.delenv("LSPGUARD_CONFIG", raising=False)
    return directory


def test_find_config_precedence(tmp_path: Path, user_dir: Path) -> None:
    explicit = write(tmp_path / "explicit.toml", "")
    from_env = write(tmp_path / "env.toml", "")
    workspace = write(tmp_path / "ws" / ".lspguard.toml", "")
    user = write(user_dir / "config.toml", "")
    deep = tmp_path / "ws" / "a" / "b"
    deep.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    environ = {"LSPGUARD_CONFIG": str(from_env)}

    assert find_config(explicit, cwd=deep, environ=environ) == explicit
    assert find_config(None, cwd=deep, environ=environ) == from_env
    assert find_config(None, cwd=deep, environ={}) == workspace.resolve()
    assert find_config(None, cwd=outside, environ={}) == user
    user.unlink()
    assert find_config(None, cwd=outside, environ={}) is None


def test_nearest_workspace_file_wins(tmp_path: Path, user_dir: Path) -> None:
    write(tmp_path / "ws" / ".lspguard.toml", "")
    inner = write(tmp_path / "ws" / "a" / ".lspguard.toml", "")
    deep = tmp_path / "ws" / "a" / "b"
    deep.mkdir()
    assert find_config(cwd=deep, environ={}) == inner.resolve()
    assert find_config(cwd=inner.parent, environ={}) == inner.resolve()


def test_workspace_directory_named_like_the_file_is_skipped(
    tmp_path: Path, user_dir: Path
) -> None:
    outer = write(tmp_path / "ws" / ".lspguard.toml", "")
    (tmp_path / "ws" / "a" / ".lspguard.toml").mkdir(parents=True)
    assert find_config(cwd=tmp_path / "ws" / "a", environ={}) == outer.resolve()


def test_find_config_reads_os_environ_by_default(
    tmp_path: Path, user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = write(tmp_path / "env.toml", "")
    monkeypatch.setenv("LSPGUARD_CONFIG", str(from_env))
    assert find_config(cwd=tmp_path) == from_env


def test_empty_env_variable_is_ignored(tmp_path: Path, user_dir: Path) -> None:
    assert find_config(cwd=tmp_path, environ={"LSPGUARD_CONFIG": ""}) is None


def test_missing_explicit_path_is_an_error(tmp_path: Path, user_dir: Path) -> None:
    write(user_dir / "config.toml", "")  # must not be used instead
    with pytest.raises(ConfigError, match=r"missing\.toml: config file given by --config does "
                                          r"not exist"):
        find_config(tmp_path / "missing.toml", cwd=tmp_path, environ={})


def test_missing_env_path_is_an_error(tmp_path: Path, user_dir: Path) -> None:
    environ = {"LSPGUARD_CONFIG": str(tmp_path / "missing.toml")}
    with pytest.raises(ConfigError, match=r"given by \$LSPGUARD_CONFIG does not exist"):
        find_config(cwd=tmp_path, environ=environ)


def test_explicit_directory_is_an_error(tmp_path: Path, user_dir: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        find_config(tmp_path, cwd=tmp_path, environ={})


def test_relative_paths_are_relative_to_cwd(tmp_path: Path, user_dir: Path) -> None:
    target = write(tmp_path / "sub" / "c.toml", "")
    assert find_config("sub/c.toml", cwd=tmp_path, environ={}) == target
    assert find_config(cwd=tmp_path, environ={"LSPGUARD_CONFIG": "sub/c.toml"}) == target


def test_resolve_config(tmp_path: Path, user_dir: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert resolve_config(cwd=outside, environ={}) == Config()
    user = write(user_dir / "config.toml", "[proxy]\nlog_level = \"debug\"\n")
    resolved = resolve_config(cwd=outside, environ={})
    assert resolved.source == str(user)
    assert resolved.proxy.log_level == "debug"
    explicit = write(tmp_path / "e.toml", "[proxy]\nlog_level = \"error\"\n")
    assert resolve_config(explicit, cwd=outside, environ={}).proxy.log_level == "error"


# --- writing -------------------------------------------------------------------------------


def round_trip(config: Config, tmp_path: Path | None = None) -> Config:
    text = config_to_toml(config)
    if tmp_path is not None:
        return dataclasses.replace(load_text(tmp_path, text), source=config.source)
    return config_from_dict(tomllib.loads(text), source=config.source)


def test_config_to_toml_round_trips_defaults(tmp_path: Path) -> None:
    assert round_trip(Config(), tmp_path) == Config()


def test_config_to_toml_round_trips_awkward_strings(tmp_path: Path) -> None:
    awkward = 'q"uo\\te\n\ttab \x7f del \x01 ctl é 😀 \'single\' """'
    config = Config(
        backend=BackendConfig(
            gopls=awkward,
            args=(awkward, "", "-x"),
            env={awkward: awkward, "with.dot": "", "a/b c": "1", "PLAIN": "v"},
        ),
        proxy=ProxyConfig(
            max_frame_bytes=1, stop_timeout=1e-9, log_level="warning", log_stderr=True,
            stderr_tail_lines=0, status_interval=1e300,
        ),
        source="multi\nline source",
    )
    assert round_trip(config, tmp_path) == config
    assert config_to_toml(config).startswith("# lspguard configuration\n# source: multi line")


_env_name = st.text(min_size=1).filter(lambda s: "=" not in s and "\0" not in s)
_no_nul = st.text().filter(lambda s: "\0" not in s)
_seconds = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(st.builds(
    Config,
    backend=st.builds(
        BackendConfig,
        gopls=_no_nul,
        args=st.lists(_no_nul, max_size=4).map(tuple),
        env=st.dictionaries(_env_name, _no_nul, max_size=4),
    ),
    proxy=st.builds(
        ProxyConfig,
        max_frame_bytes=st.integers(min_value=1, max_value=2**62),
        stop_timeout=_seconds,
        log_level=st.sampled_from(["debug", "info", "warning", "error"]),
        log_stderr=st.booleans(),
        stderr_tail_lines=st.integers(min_value=0, max_value=10**9),
        status_interval=_seconds,
    ),
))
def test_config_to_toml_round_trips_anything(config: Config) -> None:
    assert round_trip(config) == config


# --- the loader is generic: future sections are just dataclass fields ----------------------


@dataclass(frozen=True, slots=True)
class _Fallback:
    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    weight: float | None = None

    def __post_init__(self) -> None:  # the schema's convention: a dataclass freezes its Mappings
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))


@dataclass(frozen=True, slots=True)
class _Inner:
    depth: int = 1
    label: str = "inner"


@dataclass(frozen=True, slots=True)
class _Restart:
    max_restarts: int = 3
    fallback: tuple[_Fallback, ...] = ()
    inner: _Inner = field(default_factory=lambda: _Inner(depth=5))
    extra: _Inner | None = None


@dataclass(frozen=True, slots=True)
class _Watchdog:
    deadlines: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"textDocument/hover": 5.0}), hash=False)
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deadlines", MappingProxyType(dict(self.deadlines)))
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))


@dataclass(frozen=True, slots=True)
class _Future:
    watchdog: _Watchdog = field(default_factory=_Watchdog)
    restart: _Restart = field(default_factory=_Restart)


def load_future(text: str) -> _Future:
    return tomlschema.load(_Future, tomllib.loads(text), source="f.toml", base=_Future())


def future_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_future(text)
    return str(info.value)


FUTURE = """
[watchdog]
deadlines = { "textDocument/hover" = 2, "textDocument/completion" = 10.5 }

[restart]
max_restarts = 7

[restart.inner]
label = "changed"

[restart.extra]
depth = 9

[[restart.fallback]]
name = "pinned"
command = ["/opt/gopls-old"]

[[restart.fallback]]
name = "fork"
command = ["/opt/gopls-fork", "serve"]
weight = 2

[restart.fallback.env]
GOFLAGS = "-mod=mod"
"""


def test_generic_loader_handles_future_sections() -> None:
    loaded = load_future(FUTURE)
    assert dict(loaded.watchdog.deadlines) == {
        "textDocument/hover": 2.0, "textDocument/completion": 10.5}
    assert isinstance(loaded.watchdog.deadlines, MappingProxyType)
    assert loaded.restart.max_restarts == 7
    # a partial nested table overrides the field's own default, field by field
    assert loaded.restart.inner == _Inner(depth=5, label="changed")
    assert loaded.restart.extra == _Inner(depth=9)
    assert loaded.restart.fallback == (
        _Fallback(name="pinned", command=("/opt/gopls-old",)),
        _Fallback(name="fork", command=("/opt/gopls-fork", "serve"),
                  env=MappingProxyType({"GOFLAGS": "-mod=mod"}), weight=2.0),
    )
    assert load_future("").restart.extra is None


def test_generic_writer_round_trips_future_sections() -> None:
    loaded = load_future(FUTURE)
    lines: list[str] = []
    tomlschema._emit(loaded, (), lines)
    assert load_future("\n".join(lines)) == loaded


@pytest.mark.parametrize(("text", "expected"), [
    ('[watchdog.deadlines]\n"textDocument/hover" = "5s"',
     'f.toml: watchdog.deadlines."textDocument/hover": expected a number (float), got str'),
    ("[watchdog.counts]\nx = 1.5", "watchdog.counts.x: expected an integer (int), got float 1.5"),
    ('[[restart.fallback]]\nname = "a"\ncommand = ["x"]\n[[restart.fallback]]\nname = "b"\n'
     'command = [1]', "f.toml: restart.fallback[1].command[0]: expected a string (str)"),
    ('[[restart.fallback]]\nname = "a"', "f.toml: restart.fallback[0]: missing required key "
                                         "command (expected an array (tuple[str, ...]))"),
    ('[[restart.fallback]]\nname = "a"\ncommand = []\ncomand = []',
     "unknown key restart.fallback[0].comand (known keys in [[restart.fallback]]: command, env, "
     "name, weight); did you mean restart.fallback[0].command?"),
    ("[restart]\nfallback = 1", "restart.fallback: expected an array of tables "
                                "([[restart.fallback]]), got int 1"),
    ("[restart]\nextra = 1", "restart.extra: expected a table ([restart.extra]), got int 1"),
    ("[restart.extra]\ndepth = 1.0", "restart.extra.depth: expected an integer (int)"),
])
def test_generic_loader_errors(text: str, expected: str) -> None:
    assert expected in future_error(text + "\n")


def _walk_schema(cls: type[Any], key: tuple[str | int, ...]) -> list[tuple[Any, Any, Any]]:
    """(key, type, default) of every TOML field reachable from dataclass `cls`."""
    out = []
    for name, (f, tp) in tomlschema._toml_fields(cls).items():
        sub = (*key, name)
        out.append((sub, tp, tomlschema._field_default(f)))
        inner = tomlschema._optional_inner(tp) or tp
        if get_origin(inner) is tuple:
            inner = get_args(inner)[0]
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            out += _walk_schema(inner, sub)
    return out


@pytest.mark.parametrize("schema", [Config, _Future])
def test_schema_uses_only_supported_types(schema: type[Any]) -> None:
    for key, tp, default in _walk_schema(schema, ()):
        tomlschema._describe(tp, key)  # raises TypeError for unsupported types
        if tomlschema._optional_inner(tp) is not None:
            # absent from a file means None, so `X | None` fields must default to None
            assert default is None, key


def test_unsupported_type_is_a_programming_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        when: complex = 0j

    with pytest.raises(TypeError, match="unsupported config type"):
        tomlschema.load(Bad, {"when": 1}, source="b.toml", base=Bad())


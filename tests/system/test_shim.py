"""The `gopls` shim: argument classification, finding the real gopls, install, passthrough."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lspguard.errors import BackendError, ShimLoopError
from lspguard.gopls.find import find_real_gopls
from lspguard.gopls.identity import SHIM_MARKER
from lspguard.proxy import early, proctitle
from lspguard.shim import gopls_args
from lspguard.shim import main as shim
from lspguard.shim.install import install_shim
from lspguard.shim.main import ShimMode, classify, explain

from ..rawclient import find_gopls
from ..shimmed import fake_gopls, run_cmd, shim_env

LSP = ShimMode.LSP
PASS = ShimMode.PASSTHROUGH


GOPLS = find_gopls()
needs_gopls = pytest.mark.skipif(GOPLS is None, reason="real gopls not installed")
TIMEOUT = 30


# --------------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------------

CASES: list[tuple[list[str], ShimMode]] = [
    # LSP sessions on stdio
    ([], LSP),
    (["serve"], LSP),
    (["-rpc.trace"], LSP),
    (["--rpc.trace"], LSP),
    (["-rpc.trace=true"], LSP),
    (["-logfile=/tmp/x"], LSP),
    (["-logfile", "/tmp/x"], LSP),
    (["-logfile", "/tmp/x", "serve"], LSP),
    (["--logfile", "version"], LSP),  # "version" is -logfile's value, not a subcommand
    (["-logfile", "-rpc.trace"], LSP),  # Go takes the next arg as the value, even "-..."
    (["-remote=auto"], LSP),
    (["-remote", "auto", "serve"], LSP),
    (["-remote=auto", "-remote.debug", ":0", "-remote.listen.timeout", "1m30s"], LSP),
    (["-mode=stdio"], LSP),
    (["-mode", "stdio", "serve"], LSP),
    (["serve", "-mode=stdio"], LSP),
    (["serve", "-rpc.trace", "-logfile", "auto"], LSP),
    (["-debug", "127.0.0.1:0"], LSP),
    (["-v", "-vv", "serve"], LSP),
    (["-verbose", "-veryverbose=false"], LSP),
    (["-profile.cpu", "/tmp/cpu", "-profile.mem", "m", "-profile.alloc", "a",
      "-profile.trace", "t", "-profile.block", "b"], LSP),
    (["-ocagent", "http://localhost:55678"], LSP),
    (["-port=0"], LSP),  # port 0 means "no port": still stdio
    (["-listen="], LSP),  # empty address: still stdio
    (["-listen=:0", "-listen="], LSP),  # last value wins, as in Go
    (["-listen.timeout", "5m"], LSP),
    (["-mcp.listen", "localhost:0"], LSP),  # MCP on a port *and* LSP on stdio
    (["--", "serve"], LSP),
    (["-rpc.trace", "--"], LSP),
    (["-some-new-flag"], LSP),  # unknown flags do not make it passthrough
    (["-some-new-flag", "value", "serve"], LSP),
    (["-some-new-flag=1", "serve"], LSP),
    # not LSP
    (["version"], PASS),
    (["version", "-json"], PASS),
    (["-rpc.trace", "version"], PASS),
    (["-logfile=/tmp/x", "version", "-json"], PASS),
    (["-remote=auto", "stats"], PASS),
    (["bug"], PASS),
    (["stats"], PASS),
    (["stats", "-anon"], PASS),
    (["help"], PASS),
    (["help", "serve"], PASS),
    (["api-json"], PASS),
    (["licenses"], PASS),
    (["check", "x.go"], PASS),
    (["references", "x.go:#10"], PASS),
    (["remote", "sessions"], PASS),
    (["mcp"], PASS),  # MCP on stdio is not LSP
    (["nosuchcmd"], PASS),
    (["-some-new-flag", "version"], PASS),
    (["-", "serve"], PASS),  # "-" is a positional argument in Go
    ([""], PASS),
    (["-h"], PASS),
    (["-help"], PASS),
    (["--help"], PASS),
    (["-h=false"], PASS),
    (["-rpc.trace", "-h"], PASS),
    (["serve", "-h"], PASS),
    (["serve", "-listen=:0"], PASS),
    (["-listen", "127.0.0.1:37374"], PASS),
    (["-listen=unix;/tmp/gopls.sock", "serve"], PASS),
    (["-port", "8080"], PASS),
    (["-port=0x10"], PASS),
    (["-mode=tcp"], PASS),
    (["serve", "-mode", "socket"], PASS),
    (["serve", "extra"], PASS),  # gopls: "server does not take arguments"
    (["serve", "-remote=auto"], PASS),  # global flag after serve: gopls rejects it
    (["serve", "-v"], PASS),
    (["-logfile"], PASS),  # flag needs an argument
    (["-port=x"], PASS),  # invalid int
    (["-listen.timeout=forever"], PASS),  # invalid duration
    (["-v=maybe"], PASS),  # invalid bool
    (["---x"], PASS),  # bad flag syntax
    (["-=x"], PASS),
]


@pytest.mark.parametrize(
    ("args", "expected"), CASES, ids=[" ".join(a) or "<none>" for a, _ in CASES]
)
def test_classify(args: list[str], expected: ShimMode) -> None:
    assert classify(args) is expected, explain(args)


def test_explain_says_why() -> None:
    assert explain(["version", "-json"]).subcommand == "version"
    assert "daemon" in explain(["serve", "-listen=:0"]).reason
    assert "-mode=tcp" in explain(["-mode=tcp"]).reason
    assert "no arguments" in explain(["serve", "x"]).reason
    assert explain(["-rpc.trace"]) == shim.Classification(LSP, "LSP session on stdio", None)


@needs_gopls
def test_flag_table_matches_gopls_help() -> None:
    """Every flag gopls documents is known to the classifier (catches new gopls flags)."""
    assert GOPLS is not None
    out = subprocess.run([GOPLS, "help"], capture_output=True, text=True, timeout=TIMEOUT)
    names: set[str] = set()
    for line in (out.stdout + out.stderr).splitlines():
        s = line.strip()
        if s.startswith("-") and not s.startswith("--"):
            flag = s[1:].split("=")[0]
            names.update(flag.split(",-"))
    assert {"rpc.trace", "logfile", "remote", "listen", "port", "mode"} <= names
    known = set(gopls_args._APP_VALUE_FLAGS) | gopls_args._APP_BOOL_FLAGS
    assert names <= known, names - known


# --------------------------------------------------------------------------------------------
# install_shim / is_shim
# --------------------------------------------------------------------------------------------


def test_install_shim_writes_marked_executable(tmp_path: Path) -> None:
    path = install_shim(tmp_path / "bin", config=tmp_path / "cfg.toml", script=True)
    assert path == tmp_path / "bin" / "gopls"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    text = path.read_text()
    assert text.startswith(f"#!{os.path.abspath(sys.executable)}\n")
    assert SHIM_MARKER in text.encode()[:512].decode().splitlines()
    assert f"os.environ.setdefault('LSPGUARD_CONFIG', {str(tmp_path / 'cfg.toml')!r})" in text
    assert "from lspguard.shim.main import main" in text
    assert shim.is_shim(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["gopls"]  # no temp file left


def test_install_shim_without_config_sets_no_env(tmp_path: Path) -> None:
    text = install_shim(tmp_path, script=True).read_text()
    assert "LSPGUARD_CONFIG" not in text


def test_install_shim_mode_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        path = install_shim(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_install_shim_refuses_to_overwrite_non_shim(tmp_path: Path) -> None:
    target = tmp_path / "gopls"
    target.write_bytes(b"\x7fELF real gopls")
    with pytest.raises(FileExistsError, match="not an lspguard shim"):
        install_shim(tmp_path)
    assert target.read_bytes() == b"\x7fELF real gopls"
    install_shim(tmp_path, force=True)
    assert shim.is_shim(target)


def test_install_shim_replaces_existing_shim(tmp_path: Path) -> None:
    install_shim(tmp_path)  # native
    path = install_shim(tmp_path, config=tmp_path / "c.toml", script=True)
    assert "LSPGUARD_CONFIG" in path.read_text()


def test_install_shim_with_odd_interpreter_path_uses_sh(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/my python/bin/python3")
    text = install_shim(tmp_path, script=True).read_text()
    assert text.startswith("#!/bin/sh\n'exec' '/opt/my python/bin/python3' \"$0\" \"$@\"\n")
    assert shim.is_shim(tmp_path / "gopls")
    compile(text, "gopls", "exec")  # still valid Python


def test_is_shim(tmp_path: Path) -> None:
    path = install_shim(tmp_path / "a", script=True)
    link = tmp_path / "link"
    link.symlink_to(path)
    assert shim.is_shim(link)
    copy = tmp_path / "copy"
    shutil.copy(path, copy)
    assert shim.is_shim(copy)
    assert not shim.is_shim(tmp_path / "missing")
    assert not shim.is_shim(tmp_path)  # a directory
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert not shim.is_shim(fifo)  # and no hang: a FIFO is never opened
    late = tmp_path / "late"
    late.write_text("#!/bin/sh\n" + "#" * 600 + "\n" + SHIM_MARKER + "\n")
    assert not shim.is_shim(late)  # marker must be in the first 512 bytes
    mention = tmp_path / "mention"
    mention.write_text("#!/bin/sh\necho '# lspguard-shim is a marker'\n")
    assert not shim.is_shim(mention)  # a whole line, not a substring
    if GOPLS:
        assert not shim.is_shim(Path(GOPLS))


# --------------------------------------------------------------------------------------------
# find_real_gopls (in-process, fake binaries)
# --------------------------------------------------------------------------------------------


def test_find_skips_shims_and_self_on_path(tmp_path: Path) -> None:
    shim_path = install_shim(tmp_path / "shim")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "gopls").symlink_to(shim_path)
    shutil.copytree(tmp_path / "shim", tmp_path / "copy")
    not_exec = tmp_path / "noexec" / "gopls"
    not_exec.parent.mkdir()
    not_exec.write_text("#!/bin/sh\n")
    real = fake_gopls(tmp_path / "real")
    dirs = ["shim", "link", "copy", "noexec", "real"]
    env = {"PATH": os.pathsep.join(str(tmp_path / d) for d in dirs)}
    assert find_real_gopls(environ=env, self_path=shim_path) == real


def test_find_skips_self_even_without_marker(tmp_path: Path) -> None:
    me = fake_gopls(tmp_path / "me")  # e.g. a wrapper script named gopls that runs main()
    hard = tmp_path / "hard"
    hard.mkdir()
    os.link(me, hard / "gopls")
    real = fake_gopls(tmp_path / "real")
    env = {"PATH": f"{me.parent}:{hard}:{real.parent}"}
    assert find_real_gopls(environ=env, self_path=me) == real
    assert find_real_gopls(environ=env, self_path=None) == me


def test_find_precedence_config_env_path(tmp_path: Path) -> None:
    a, b, c = (fake_gopls(tmp_path / d) for d in "abc")
    env = {"PATH": str(c.parent), "LSPGUARD_GOPLS": str(b)}
    assert find_real_gopls(str(a), environ=env) == a
    assert find_real_gopls("", environ=env) == b
    assert find_real_gopls("", environ={"PATH": str(c.parent)}) == c
    other = fake_gopls(tmp_path / "d", "gopls-0.20")
    assert find_real_gopls("gopls-0.20", environ={"PATH": str(other.parent)}) == other


def test_find_explicit_shim_is_loop_error(tmp_path: Path) -> None:
    shim_path = install_shim(tmp_path / "shim")
    link = tmp_path / "elsewhere" / "gopls"
    link.parent.mkdir()
    link.symlink_to(shim_path)
    env = {"PATH": str(fake_gopls(tmp_path / "real").parent)}
    with pytest.raises(ShimLoopError, match=r"backend\.gopls=.*points at the lspguard gopls shim"):
        find_real_gopls(str(shim_path), environ=env)
    with pytest.raises(ShimLoopError, match=rf"LSPGUARD_GOPLS=.*{link} -> {shim_path}"):
        find_real_gopls(environ={**env, "LSPGUARD_GOPLS": str(link)})


def test_find_explicit_missing_is_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no such file") as info:
        find_real_gopls(str(tmp_path / "nope"), environ={"PATH": ""})
    assert not isinstance(info.value, ShimLoopError)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(BackendError, match="not an executable"):
        find_real_gopls(environ={"PATH": "", "LSPGUARD_GOPLS": str(tmp_path / "plain")})


def test_find_nothing_names_what_was_searched(tmp_path: Path) -> None:
    shim_path = install_shim(tmp_path / "shim")
    env = {"PATH": str(shim_path.parent), "HOME": str(tmp_path / "home")}
    with pytest.raises(BackendError) as info:
        find_real_gopls(environ=env, self_path=shim_path)
    msg = str(info.value)
    assert str(shim_path.parent) in msg
    assert str(tmp_path / "home" / "go" / "bin") in msg
    assert "go install golang.org/x/tools/gopls@latest" in msg
    assert "LSPGUARD_GOPLS" in msg
    assert f"skipped lspguard shims: {shim_path}" in msg


def test_find_falls_back_to_gobin_and_gopath(tmp_path: Path) -> None:
    gobin = fake_gopls(tmp_path / "gobin")
    gopath = fake_gopls(tmp_path / "gp" / "bin")
    home = fake_gopls(tmp_path / "home" / "go" / "bin")
    base = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path / "home")}
    assert find_real_gopls(environ={**base, "GOBIN": str(gobin.parent)}) == gobin
    assert find_real_gopls(environ={**base, "GOPATH": str(tmp_path / "gp")}) == gopath
    assert find_real_gopls(environ=base) == home


# --------------------------------------------------------------------------------------------
# main (in-process): routing, config, errors
# --------------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("LSPGUARD_CONFIG", "LSPGUARD_GOPLS", "LSPGUARD_SHIM_DEPTH", "GOBIN", "GOPATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LSPGUARD_CONFIG_DIR", str(tmp_path / "no-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_main_lsp_mode_runs_proxy_with_backend_args(clean_env: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import lspguard.session.run

    real = fake_gopls(clean_env / "real")
    cfg = clean_env / "c.toml"
    cfg.write_text(f'[backend]\ngopls = "{real}"\nargs = ["-remote.debug=:0"]\n')
    monkeypatch.setenv("LSPGUARD_CONFIG", str(cfg))
    calls: list[list[str]] = []

    def fake_run_proxy(command: list[str], config: object) -> int:
        calls.append(list(command))
        return 42

    monkeypatch.setattr(lspguard.session.run, "run_proxy", fake_run_proxy)
    spawned: list[list[str]] = []  # the early spawn gets the same command line
    monkeypatch.setattr(early, "spawn_first", lambda command, config: spawned.append(command))
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail(f"execv in LSP mode: {a}"))
    renamed: list[str] = []
    monkeypatch.setattr(proctitle, "set_comm", lambda: renamed.append("comm"))  # not pytest
    monkeypatch.setattr(proctitle, "set_title", renamed.append)
    assert shim.main(["-rpc.trace", "serve"]) == 42
    assert calls == [[str(real), "-rpc.trace", "serve", "-remote.debug=:0"]]
    assert spawned == calls
    assert renamed == ["comm"]  # the title is run_proxy's (faked here)


def test_main_passthrough_execs_real_gopls(clean_env: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import lspguard.session.run

    real = fake_gopls(clean_env / "real")
    monkeypatch.setenv("PATH", str(real.parent))
    execs: list[tuple[object, list[str]]] = []

    def fake_execv(path: object, argv: list[str]) -> None:
        execs.append((path, argv))
        raise OSError(8, "Exec format error")

    monkeypatch.setattr(os, "execv", fake_execv)
    monkeypatch.setattr(lspguard.session.run, "run_proxy",
                        lambda *a: pytest.fail("proxy in passthrough"))
    monkeypatch.setattr(proctitle, "set_title", lambda t: pytest.fail(f"renamed to {t!r}"))
    assert shim.main(["version", "-json"]) == shim.EXIT_CANNOT_EXEC
    assert execs == [(real, [str(real), "version", "-json"])]
    # the failed exec left this process as it was (SIGPIPE still ignored, as Python sets it)
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN


def test_main_config_error_exits_2(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = clean_env / "bad.toml"
    cfg.write_text("[backend]\ngopls = 3\n")
    monkeypatch.setenv("LSPGUARD_CONFIG", str(cfg))
    assert shim.main(["version"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("lspguard: ") and err.count("\n") == 1
    assert "gopls" in err


def test_main_not_found_exits_127(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(clean_env / "empty"))
    assert shim.main(["version"]) == 127
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("lspguard: cannot find the real gopls") and err.count("\n") == 1


# --------------------------------------------------------------------------------------------
# The installed shim, end to end (subprocesses)
# --------------------------------------------------------------------------------------------


@needs_gopls
@pytest.mark.parametrize(
    "args",
    [["version", "-json"], ["version"], ["-rpc.trace", "version"], ["nosuchcmd"], ["help"],
     ["-h"], ["serve", "extra"], ["-port=x"], ["check"]],
    ids=" ".join,
)
def test_passthrough_is_byte_identical(tmp_path: Path, args: list[str]) -> None:
    assert GOPLS is not None
    shim_dir = install_shim(tmp_path / "shim").parent
    env = shim_env(tmp_path, shim_dir, Path(GOPLS).parent, "/usr/bin", "/bin")
    via_shim = run_cmd(["gopls", *args], env, tmp_path)  # found on PATH: the shim
    direct = run_cmd([GOPLS, *args], env, tmp_path)
    assert (via_shim.returncode, via_shim.stdout, via_shim.stderr) == (
        direct.returncode, direct.stdout, direct.stderr)
    if args[0] == "version":
        assert b"golang.org/x/tools/gopls" in via_shim.stdout
    if args == ["nosuchcmd"]:
        assert via_shim.returncode == 2 and b"Unknown command nosuchcmd" in via_shim.stderr


def test_passthrough_restores_sigpipe(tmp_path: Path) -> None:
    """Python ignores SIGPIPE and ignored signals survive exec: the real server must get the
    default back, or `gopls ... | head` ends differently (EPIPE errors instead of SIGPIPE)."""
    shim_path = install_shim(tmp_path / "shim")
    real = tmp_path / "real" / "gopls"
    real.parent.mkdir()
    real.write_text("#!/bin/sh\nexec yes\n")  # sh/yes keep an inherited SIG_IGN for SIGPIPE
    real.chmod(0o755)
    env = shim_env(tmp_path, shim_path.parent, real.parent, "/usr/bin", "/bin")
    with subprocess.Popen([str(shim_path), "version"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(2) == b"y\n"
        proc.stdout.close()
        assert proc.wait(timeout=TIMEOUT) == -signal.SIGPIPE
        assert proc.stderr.read() == b""


def test_passthrough_argv_is_exact(tmp_path: Path) -> None:
    """argv[0] is the real path and the arguments arrive unchanged (spaces, empties, unicode)."""
    shim_path = install_shim(tmp_path / "shim")
    real = fake_gopls(tmp_path / "real")
    env = shim_env(tmp_path, shim_path.parent, real.parent, "/usr/bin", "/bin")
    args = ["version", "-json", "", "a b", "ünï", "--", "-x"]
    out = run_cmd(["gopls", *args], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split("\n")[:-1] == [str(real), *args]
    assert out.stderr == b""


@needs_gopls
def test_symlink_and_copy_of_shim_on_path_are_skipped(tmp_path: Path) -> None:
    assert GOPLS is not None
    shim_path = install_shim(tmp_path / "shim")
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    (link_dir / "gopls").symlink_to(shim_path)
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    shutil.copy2(shim_path, copy_dir / "gopls")
    env = shim_env(tmp_path, shim_path.parent, link_dir, copy_dir, Path(GOPLS).parent)
    expected = run_cmd([GOPLS, "version"], env, tmp_path)
    for entry in (link_dir / "gopls", copy_dir / "gopls", shim_path):
        got = run_cmd([str(entry), "version"], env, tmp_path)
        assert (got.returncode, got.stdout, got.stderr) == (0, expected.stdout, b""), entry


def test_env_pointing_at_shim_fails_fast(tmp_path: Path) -> None:
    shim_path = install_shim(tmp_path / "shim")
    link = tmp_path / "other" / "gopls"
    link.parent.mkdir()
    link.symlink_to(shim_path)
    for target in (shim_path, link):
        env = shim_env(tmp_path, shim_path.parent, "/usr/bin", "/bin", LSPGUARD_GOPLS=str(target))
        out = run_cmd([str(shim_path), "version"], env, tmp_path)  # timeout = no hang
        assert out.returncode == 127
        assert out.stdout == b""
        err = out.stderr.decode()
        assert err.startswith(f"lspguard: LSPGUARD_GOPLS='{target}' points at the lspguard")
        assert "unset it" in err and err.count("\n") == 1


def test_config_pointing_at_shim_fails_fast(tmp_path: Path) -> None:
    cfg = tmp_path / "lspguard.toml"
    shim_path = install_shim(tmp_path / "shim", config=cfg)
    cfg.write_text(f'[backend]\ngopls = "{shim_path}"\n')
    env = shim_env(tmp_path, shim_path.parent, "/usr/bin", "/bin")
    for args in (["version"], []):  # passthrough and LSP mode both check before doing anything
        out = run_cmd([str(shim_path), *args], env, tmp_path)
        assert out.returncode == 127
        assert out.stderr.decode().startswith(f"lspguard: backend.gopls='{shim_path}' points at")


def test_only_shim_on_path_reports_not_found(tmp_path: Path) -> None:
    shim_path = install_shim(tmp_path / "shim")
    env = shim_env(tmp_path, shim_path.parent)
    out = run_cmd(["gopls", "version", "-json"], env, tmp_path)
    assert out.returncode == 127
    assert out.stdout == b""
    err = out.stderr.decode()
    assert err.startswith("lspguard: cannot find the real gopls: searched PATH=")
    assert "go install golang.org/x/tools/gopls@latest" in err
    assert "skipped lspguard shims" in err


def test_wrapper_loop_is_cut_by_depth_guard(tmp_path: Path) -> None:
    """A wrapper script that runs `gopls` from PATH (the shim again) cannot loop forever."""
    shim_path = install_shim(tmp_path / "shim")
    wrapper = tmp_path / "wrap" / "gopls-wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\nexec gopls "$@"\n')
    wrapper.chmod(0o755)
    env = shim_env(tmp_path, shim_path.parent, "/usr/bin", "/bin", LSPGUARD_GOPLS=str(wrapper))
    out = run_cmd(["gopls", "version"], env, tmp_path)
    assert out.returncode == 127
    assert b"re-entered" in out.stderr
    assert out.stdout == b""


def test_config_error_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[backend]\nnot_a_key = 1\n")
    shim_path = install_shim(tmp_path / "shim", config=cfg)
    out = run_cmd([str(shim_path), "version"], shim_env(tmp_path, "/usr/bin", "/bin"), tmp_path)
    assert out.returncode == 2
    assert out.stdout == b""
    assert out.stderr.startswith(b"lspguard: ") and out.stderr.count(b"\n") == 1


def test_passthrough_imports_stay_light(tmp_path: Path) -> None:
    """`gopls version` runs often: the passthrough path must not import the async stack."""
    code = (
        "import sys, lspguard.shim.main as s, lspguard.config.model as c\n"
        "c.resolve_config(); s.classify(['version']); s.is_shim(__import__('pathlib').Path('/'))\n"
        "heavy = {'anyio', 'pygls', 'lsprotocol', 'msgspec', 'psutil', 'uvloop', 'tenacity',\n"
        "         'asyncio', 'lspguard.session.run'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=shim_env(tmp_path, "/usr/bin", "/bin"), timeout=TIMEOUT, check=True)
    assert out.stdout == "[]\n"


# What the shim's main() did by the time it exec'd (passthrough) or renamed itself (LSP mode).
_PROBE = """\
import os, sys
from lspguard.proxy import proctitle
from lspguard.shim import main as shim
HEAVY = {"anyio", "pygls", "lsprotocol", "msgspec", "psutil", "uvloop", "asyncio",
         "lspguard.config.model", "lspguard.session.run", "lspguard.session.session"}
def on_comm(name="lspguard"):
    print("comm", repr(name), sorted(HEAVY & set(sys.modules)), flush=True)
    raise SystemExit(0)
def on_title(text):
    print("title", repr(text), sorted(HEAVY & set(sys.modules)), flush=True)
    raise SystemExit(0)
def on_exec(path, argv):
    comm = open("/proc/self/comm").read().strip()
    print("exec", comm, "setproctitle" in sys.modules, proctitle.title(), flush=True)
    raise SystemExit(0)
proctitle.set_title = on_title
proctitle.set_comm = on_comm
os.execv = on_exec
sys.argv[0] = "/nonexistent/gopls"
raise SystemExit(shim.main(sys.argv[1:]))
"""


def _probe(tmp_path: Path, *args: str) -> str:
    real = fake_gopls(tmp_path / "real")
    env = shim_env(tmp_path, "/usr/bin", "/bin", LSPGUARD_GOPLS=str(real))
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=TIMEOUT, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_passthrough_never_renames_before_exec(tmp_path: Path) -> None:
    """`gopls version` becomes the real gopls by exec, untouched: no title, no setproctitle."""
    assert _probe(tmp_path, "version", "-json") == "exec python False None\n"


@pytest.mark.parametrize("args", [[], ["serve"], ["-rpc.trace", "-mode=stdio"]], ids=repr)
def test_lsp_mode_renames_first(tmp_path: Path, args: list[str]) -> None:
    """LSP mode renames the process (comm: what pkill matches) before the config, the proxy
    or the async stack load; its command line follows once gopls is spawned."""
    assert _probe(tmp_path, *args) == "comm 'lspguard' []\n"


@needs_gopls
def test_shim_via_sh_trampoline_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreter path with a space (unusable in #!) goes through /bin/sh and still works."""
    assert GOPLS is not None
    venv = Path(sys.prefix)
    fake = tmp_path / "my venv"
    (fake / "bin").mkdir(parents=True)
    shutil.copy(venv / "pyvenv.cfg", fake / "pyvenv.cfg")
    (fake / "lib").symlink_to(venv / "lib")
    (fake / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setattr(sys, "executable", str(fake / "bin" / "python"))
    shim_path = install_shim(tmp_path / "shim", script=True)
    assert shim_path.read_text().startswith("#!/bin/sh\n")
    env = shim_env(tmp_path, shim_path.parent, Path(GOPLS).parent, "/usr/bin", "/bin")
    got = run_cmd(["gopls", "version", "-json"], env, tmp_path)
    direct = run_cmd([GOPLS, "version", "-json"], env, tmp_path)
    assert (got.returncode, got.stdout, got.stderr) == (0, direct.stdout, direct.stderr)

"""The native gopls shim (lspguard/shim/launcher), built here with the real Go toolchain.

What VS Code Go checks (`go version -m`), the build cache, the fallback to the script, the
launcher's reading of command lines against the Python rule, and the two things it does
without Python: exec the real gopls, and spawn gopls before Python starts for the guard to
adopt. The rest of the shim's behaviour (loops, flags, config errors) is tested through the
native shim by tests/system/test_shim.py, whose install_shim builds it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lspguard import __version__
from lspguard.gopls.identity import MODULE, is_native_shim, is_script_shim, is_shim
from lspguard.procfs.processes import read_stat
from lspguard.shim import native
from lspguard.shim.install import install_shim, install_shim_report
from lspguard.shim.main import ShimMode, classify

from ..conftest import LspguardDirs
from ..polling import wait_until
from ..rawclient import RawClient, find_gopls, reap
from ..shimmed import run_cmd, shim_env
from ..system.test_early_spawn import _ECHO_SERVER
from ..system.test_shim import CASES

GO = native.find_go()
GOPLS = find_gopls()
pytestmark = [pytest.mark.skipif(GO is None, reason="no Go toolchain"),
              pytest.mark.timeout(120)]
TIMEOUT = 30


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build cache of the test's own (the first build there takes about a second)."""
    monkeypatch.setenv("LSPGUARD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _go_version() -> str:
    assert GO is not None
    return native.go_version(GO)


def test_go_version_m_reports_the_toolchain_as_vs_code_go_reads_it(tmp_path: Path) -> None:
    path = install_shim(tmp_path / "bin")
    out = subprocess.run([str(GO), "version", "-m", str(path)], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout
    lines = out.split("\n")
    # goInstallTools.ts, inspectGoToolVersion: the Go version from line 1, the module
    # version from line 3 ("(devel)": not semver, so no "update gopls" offer either).
    go_version = re.search(r"\s+(go\d+.\d+\S*)", lines[0])
    assert go_version is not None and go_version[1] == _go_version(), out
    assert lines[1].split() == ["path", MODULE], out
    assert lines[2].split()[:3] == ["mod", MODULE, "(devel)"], out
    assert is_native_shim(path) and is_shim(path) and not is_script_shim(path)
    info = native.shim_build_info(path)
    assert info is not None
    assert (info.version, info.go, info.python, info.config) == (
        __version__, _go_version(), os.path.abspath(sys.executable), "")


def test_builds_are_cached_by_what_is_baked_in(cache: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = native.build()
    assert first.is_relative_to(cache)
    built_at = first.stat().st_mtime_ns
    assert native.build() == first and first.stat().st_mtime_ns == built_at  # reused
    pinned = native.build(tmp_path / "lspguard.toml")
    assert pinned != first
    info = native.shim_build_info(pinned)
    assert info is not None and info.config == str(tmp_path / "lspguard.toml")
    monkeypatch.setattr(native, "__version__", "99.0.0")  # a new lspguard: a new build
    upgraded = native.build()
    assert upgraded != first
    info = native.shim_build_info(upgraded)
    assert info is not None and info.version == "99.0.0"


def test_without_go_the_script_shim_is_the_fallback(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "find_go", lambda environ=None: None)
    shim = install_shim_report(tmp_path / "bin")
    assert (shim.kind, shim.why_script) == ("script", "no Go toolchain found (go is not on PATH)")
    assert is_script_shim(shim.path)
    # ... and a native one replaces it once Go is there.
    monkeypatch.undo()
    again = install_shim_report(tmp_path / "bin")
    assert again.kind == "native" and is_native_shim(again.path)


def test_the_launcher_reads_command_lines_as_the_python_shim_does(tmp_path: Path) -> None:
    path = install_shim(tmp_path / "bin")
    extra: list[list[str]] = [["-port=0x10"], ["-port", "0"], ["-listen.timeout=1h2m"],
                              ["serve", "-listen.timeout", "nope"], ["-v", "serve"],
                              ["-vv=false", "check", "x.go"], ["--", "version"], ["-"]]
    env = {**os.environ, "LSPGUARD_LAUNCHER_SELFTEST": "classify"}
    for args in [a for a, _ in CASES] + extra:
        out = subprocess.run([str(path), *args], capture_output=True, text=True, env=env,
                             timeout=TIMEOUT, check=True).stdout
        assert json.loads(out)["lsp"] == (classify(args) is ShimMode.LSP), (args, out)


@pytest.mark.skipif(GOPLS is None, reason="real gopls not installed")
def test_other_commands_exec_gopls_with_no_python_at_all(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shim whose Python is gone still runs `gopls version`: no Python is involved."""
    assert GOPLS is not None
    monkeypatch.setattr(sys, "executable", str(tmp_path / "gone" / "python3"))
    shim_dir = install_shim(tmp_path / "bin").parent
    env = shim_env(tmp_path, shim_dir, Path(GOPLS).parent, "/usr/bin", "/bin")
    for args in (["version"], ["version", "-json"], ["help"]):
        via_shim, direct = run_cmd(["gopls", *args], env, tmp_path), run_cmd([GOPLS, *args],
                                                                                env, tmp_path)
        assert (via_shim.returncode, via_shim.stdout, via_shim.stderr) == (
            direct.returncode, direct.stdout, direct.stderr)
    # An LSP session needs the guard: a clear error, and the gopls spawned for it dies too.
    marker = tmp_path / "gopls-pid"
    fake = tmp_path / "real" / "gopls"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 60\n")
    fake.chmod(0o755)
    env = shim_env(tmp_path, shim_dir, fake.parent, "/usr/bin", "/bin")
    lsp = subprocess.run(["gopls"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         stdin=subprocess.PIPE, timeout=TIMEOUT, check=False)
    assert lsp.returncode == 127
    assert f"cannot run lspguard's Python {tmp_path / 'gone' / 'python3'}" in lsp.stderr
    pid = int(wait_until(lambda: marker.exists() and marker.read_text().strip(), TIMEOUT))
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists(), TIMEOUT), \
        f"gopls (pid {pid}) outlived the shim: PDEATHSIG"


@pytest.mark.timeout(60)
def test_the_guard_adopts_the_gopls_the_shim_spawned(tmp_path: Path,
                                                     lspguard_dirs: LspguardDirs) -> None:
    """In LSP mode the launcher spawns the server itself and execs Python, which adopts it:
    the server is the shim process's child, answers initialize, is generation 1 in the status
    file, and the shim process is named lspguard, never gopls."""
    server = tmp_path / "real" / "gopls"
    server.parent.mkdir()
    server.write_text(f"#!{sys.executable}\n{_ECHO_SERVER}")
    server.chmod(0o755)
    (tmp_path / "lspguard.toml").write_text("[proxy]\nlog_stderr = true\n")
    shim = install_shim(tmp_path / "bin")
    env = {**os.environ, "LSPGUARD_GOPLS": str(server),
           "LSPGUARD_CONFIG": str(tmp_path / "lspguard.toml")}
    proc = subprocess.Popen([str(shim)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    client = RawClient(proc)
    try:
        client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"processId": os.getpid(), "rootUri": None, "capabilities": {}}})
        server_pid = int(client.wait_response(1, TIMEOUT)["result"]["serverInfo"]["version"])
        stat = read_stat(server_pid)
        assert stat is not None and stat.ppid == proc.pid
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "lspguard"
        assert b"-debug=127.0.0.1:0" in Path(f"/proc/{server_pid}/cmdline").read_bytes()
        status_file = lspguard_dirs.runtime / "sessions" / f"{proc.pid}.json"
        assert wait_until(status_file.exists, TIMEOUT), "no status file"
        assert json.loads(status_file.read_text())["backend"]["pid"] == server_pid
        server_env = Path(f"/proc/{server_pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in server_env if v.startswith(b"LSPGUARD_LAUNCHER=")]
        log = client.end(TIMEOUT)
    finally:
        reap(proc)
    assert f"started (spawned early, by the native shim): pid {server_pid}" in log, log


@pytest.mark.timeout(60)
def test_a_config_that_sets_the_backend_is_left_to_python(tmp_path: Path,
                                                          lspguard_dirs: LspguardDirs) -> None:
    """The launcher reads no TOML: with [backend] in the config, Python spawns gopls, with
    the configured arguments."""
    server = tmp_path / "real" / "gopls"
    server.parent.mkdir()
    server.write_text(f"#!{sys.executable}\n{_ECHO_SERVER}")
    server.chmod(0o755)
    (tmp_path / "lspguard.toml").write_text(
        '[proxy]\nlog_stderr = true\n[backend]\nargs = ["-rpc.trace"]\n')
    shim = install_shim(tmp_path / "bin", config=tmp_path / "lspguard.toml")
    proc = subprocess.Popen([str(shim)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path,
                            env={**os.environ, "LSPGUARD_GOPLS": str(server)})
    client = RawClient(proc)
    try:
        client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                     "params": {"processId": os.getpid(), "rootUri": None, "capabilities": {}}})
        server_pid = int(client.wait_response(1, TIMEOUT)["result"]["serverInfo"]["version"])
        assert b"-rpc.trace" in Path(f"/proc/{server_pid}/cmdline").read_bytes().split(b"\0")
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT)
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
    finally:
        reap(proc)
    assert f"started (spawned early, by lspguard): pid {server_pid}" in log, log


def _doctor_shim(workspace: Path, shim: Path) -> list[tuple[str, str]]:
    from lspguard.doctor.runner import run_doctor

    (workspace / ".vscode").mkdir(parents=True, exist_ok=True)
    (workspace / ".vscode" / "settings.json").write_text(
        '{\n  // as the extension writes it\n  "go.alternateTools": {"gopls": '
        + json.dumps(str(shim)) + "}\n}\n")
    report = run_doctor(workspace, checks=["toolchain"])
    return [(f.severity.value, f.title) for f in report.findings
            if f.id == "toolchain.shim-build"]


def test_doctor_judges_the_shim_vs_code_go_is_given(tmp_path: Path, cache: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shim = install_shim(tmp_path / "bin")
    assert _doctor_shim(tmp_path / "ws", shim) == [
        ("ok", f"native gopls shim ({_go_version()}, lspguard {__version__})")]
    install_shim(tmp_path / "bin", script=True)
    assert _doctor_shim(tmp_path / "ws", shim) == [("warning", "The gopls shim is a Python script")]
    monkeypatch.setattr(native, "__version__", "0.0.1")  # built by an older lspguard
    install_shim(tmp_path / "bin")
    monkeypatch.undo()
    assert _doctor_shim(tmp_path / "ws", shim) == [("warning", "The gopls shim is out of date")]
    monkeypatch.setattr(sys, "executable", str(tmp_path / "gone" / "python3"))
    install_shim(tmp_path / "bin")
    monkeypatch.undo()
    assert _doctor_shim(tmp_path / "ws", shim) == [("error", "The gopls shim's Python is gone")]

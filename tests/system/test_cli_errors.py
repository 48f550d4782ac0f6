"""Mistakes on the command line get one clear line and an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..rawclient import private_env


def lspguard(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lspguard", *args], capture_output=True,
                          input="", text=True, env=private_env(tmp_path), timeout=60)


@pytest.mark.parametrize(("args", "code", "says"), [
    (["bundles", "--prune", "--keep", "-1"], 2, "--keep: must be 0 or more, not -1"),
    (["bundles", "--prune", "--max-mb", "-5"], 2, "--max-mb: must be 0 or more, not -5"),
    (["snapshot", "--timeout", "-1"], 2, "--timeout: must be more than 0 seconds, not -1"),
    (["doctor", "--sample", "0"], 2, "--sample: must be 1 or more, not 0"),
    (["doctor", "--max-files", "-1"], 2, "--max-files: must be 1 or more, not -1"),
    (["record", "--out", "{tmp}/no/such/dir/t.jsonl", "--", "gopls"], 1,
     "No such file or directory"),
    (["install-shim", "{tmp}/a-file"], 1, "a-file"),
])
def test_one_line_error(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    done = lspguard(tmp_path, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert done.returncode == code, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_install_shim_will_not_overwrite_a_real_gopls(tmp_path: Path) -> None:
    real = tmp_path / "bin" / "gopls"
    real.parent.mkdir()
    real.write_text("#!/bin/sh\necho real\n")
    done = lspguard(tmp_path, "install-shim", str(real.parent))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"lspguard: {real} exists and is not an lspguard shim (is it the real gopls?); choose "
        "another directory or pass --force to overwrite it"]
    assert real.read_text() == "#!/bin/sh\necho real\n"


def test_install_shim_warns_of_a_missing_config(tmp_path: Path) -> None:
    done = lspguard(tmp_path, "install-shim", str(tmp_path / "shim"), "--config",
                    str(tmp_path / "later.toml"))
    assert done.returncode == 0
    assert "later.toml does not exist (yet)" in done.stderr


def test_listing_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`lspguard paths | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    read, write = os.pipe()
    os.close(read)  # nobody will read: the first write fails with EPIPE
    with os.fdopen(write, "wb") as out:
        done = subprocess.run([sys.executable, "-m", "lspguard", "paths"], stdout=out,
                              stderr=subprocess.PIPE, text=True, env=private_env(tmp_path),
                              timeout=60)
    assert "Traceback" not in done.stderr, done.stderr


def test_a_state_dir_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "elsewhere")
    done = lspguard(tmp_path, "bundles")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"lspguard: {tmp_path / 'state'} is a symbolic link; lspguard keeps its files in a real "
        "directory"]

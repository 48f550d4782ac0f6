"""Shared fixtures: private lspguard dirs for every test, the real gopls, the sample module."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from .faultproxy import proxies  # noqa: F401 - a fixture shared by the fault-server tests
from .polling import wait_until
from .rawclient import find_gopls

TESTS_DIR = Path(__file__).resolve().parent  # tests/: its servers/, fixtures/, traces/
REPO = TESTS_DIR.parent
SAMPLE = REPO / "examples" / "hello"


@dataclass(frozen=True)
class LspguardDirs:
    state: Path
    runtime: Path
    config: Path


@pytest.fixture(scope="session")
def shim_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The native shims the tests build (shim/native.py), shared by the run: each build is
    about a second the first time, and the user's ~/.cache is left alone."""
    return tmp_path_factory.mktemp("shim-cache")


@pytest.fixture(autouse=True)
def lspguard_dirs(tmp_path_factory: pytest.TempPathFactory, shim_cache: Path,
                  monkeypatch: pytest.MonkeyPatch) -> LspguardDirs:
    """Every proxy a test starts (they inherit os.environ) logs and writes status files into
    throwaway dirs, reads no user config, and builds shims into the run's own cache: tests
    never touch ~/.local/state, ~/.config or ~/.cache."""
    monkeypatch.setenv("LSPGUARD_CACHE_DIR", str(shim_cache))
    base = tmp_path_factory.mktemp("lspguard")
    dirs = LspguardDirs(state=base / "state", runtime=base / "run", config=base / "config")
    monkeypatch.setenv("LSPGUARD_STATE_DIR", str(dirs.state))
    monkeypatch.setenv("LSPGUARD_RUNTIME_DIR", str(dirs.runtime))
    monkeypatch.setenv("LSPGUARD_CONFIG_DIR", str(dirs.config))
    monkeypatch.delenv("LSPGUARD_CONFIG", raising=False)
    return dirs


LEAK_GRACE_S = 10.0  # a process being reaped, a thread being joined, may take a moment


def _alive_children(me: psutil.Process) -> dict[int, str]:
    found: dict[int, str] = {}
    try:
        children = me.children(recursive=True)
    except psutil.Error:
        return found
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = " ".join(child.cmdline()[:4]) or child.name()
        except psutil.Error:
            continue
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """No thread or process a test started may outlive it: the test that leaked one fails
    (at teardown), naming what it left."""
    me = psutil.Process()
    threads_before = set(threading.enumerate())
    procs_before = set(_alive_children(me))
    yield
    threads: list[str] = []
    procs: dict[int, str] = {}

    def all_gone() -> bool:
        threads[:] = [t.name for t in threading.enumerate()
                      if t not in threads_before and t.is_alive()]
        procs.clear()
        procs.update((pid, cmd) for pid, cmd in _alive_children(me).items()
                     if pid not in procs_before)
        return not threads and not procs

    if not wait_until(all_gone, LEAK_GRACE_S, interval=0.05):
        pytest.fail(f"the test left threads {threads} and processes {procs} running")


@pytest.fixture(scope="session")
def real_gopls() -> Path:
    """The real gopls (rawclient.find_gopls: never a shim), or skip."""
    found = find_gopls()
    if found is None:
        pytest.skip("gopls not found; .ci/run and `make test` install it")
    return Path(found)


@pytest.fixture
def hello_workspace(tmp_path: Path) -> Path:
    """A private copy of examples/hello (gopls and the tests may write next to it)."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "hello"))

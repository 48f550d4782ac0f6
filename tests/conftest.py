"""Shared fixtures: private lspguard dirs for every test, the real gopls, the sample module."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from lspguard.errors import BackendError

from .faultproxy import proxies  # noqa: F401 - a fixture shared by the fault-server tests

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "examples" / "hello"


@dataclass(frozen=True)
class LspguardDirs:
    state: Path
    runtime: Path
    config: Path


@pytest.fixture(autouse=True)
def lspguard_dirs(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> LspguardDirs:
    """Every proxy a test starts (they inherit os.environ) logs and writes status files into
    throwaway dirs, and reads no user config: tests never touch ~/.local/state or ~/.config."""
    base = tmp_path_factory.mktemp("lspguard")
    dirs = LspguardDirs(state=base / "state", runtime=base / "run", config=base / "config")
    monkeypatch.setenv("LSPGUARD_STATE_DIR", str(dirs.state))
    monkeypatch.setenv("LSPGUARD_RUNTIME_DIR", str(dirs.runtime))
    monkeypatch.setenv("LSPGUARD_CONFIG_DIR", str(dirs.config))
    monkeypatch.delenv("LSPGUARD_CONFIG", raising=False)
    return dirs


@pytest.fixture(scope="session")
def real_gopls() -> Path:
    """The real gopls ($LSPGUARD_GOPLS, PATH, $GOPATH/bin, ~/go/bin; never a shim), or skip."""
    from lspguard.shim import find_real_gopls

    try:
        return find_real_gopls("")
    except BackendError as exc:
        pytest.skip(f"gopls not found ({exc}); .ci/run and `make test` install it")


@pytest.fixture
def hello_workspace(tmp_path: Path) -> Path:
    """A private copy of examples/hello (gopls and the tests may write next to it)."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "hello"))

"""lspguard against bare gopls on a real-size workspace, the same client on both (issue 16).

Each test runs the same "editor opens a file" script (tests/scale/compare.py) against bare gopls
and through `lspguard run`, in one test and on the same machine state, and asserts that lspguard
is never worse: a result wherever bare gopls gave one, no restart and no verdict. The cases are
what a fresh dev container meets: cold caches, a slow bind mount, a memory limit.

The fixture (about 480 packages on client-go, controller-runtime, the AWS SDK, x/tools, gRPC;
see tests/scale/workspace.py) is built by `.ci/run` with
`python -m tests.scale.workspace --ensure`; without it these tests skip. Select them with
`-m scale`; each side prints its summary (`pytest -m scale -rP` shows them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import LspguardDirs
from ..faultlab import FuseMount
from ..faultlab import faultfs as faultfs  # the fixture
from ..faultlab.memcg import memory_cgroup
from ..rawclient import lspguard_command
from ..scale import workspace
from ..scale.compare import SessionResult, open_file_session
from ..scale.workspace import Workspace

pytestmark = [pytest.mark.scale, pytest.mark.gopls]

WITHIN = 150.0  # per session: a cold load here answers everything in 10-45 s, ~65 s when slow
SETTLE = 120.0  # then until the whole workspace is loaded (the tree idle): ~35 s here
FUSE_DELAY_MS = 2.0  # per operation: osxfs/grpcfuse on an ordinary day
FUSE_ATTR_CACHE_S = 1.0  # the kernel's entry/attr cache, as virtiofs (cache=auto) keeps it
# Measured on the large fixture, cold (tests/scale/compare.py, settle): bare gopls answers the
# open file at ~2.5 GB RSS, then diagnosing the whole workspace takes it to ~5.4 GB (live heap
# ~3.6 GB). Under 4.5 GiB the kernel OOM-kills it (also at 4.75 and 5 GiB); with GOMEMLIMIT at
# 80% (3.6 GiB) the same load finishes at ~3.7 GB, no kill. A limit low enough to kill it
# before it answers (2 GiB) also kills it with GOMEMLIMIT once it loads the whole workspace.
MEMORY_LIMIT = 4608 * 2**20


def installed(ws: Workspace) -> Workspace:
    """`ws` with its files read once, so that neither side pays the first disk read; or skip."""
    if not workspace.ready(ws):
        pytest.skip(f"the scale fixture is not installed under {ws.root.parent}: run "
                    "`.venv/bin/python -m tests.scale.workspace --ensure` (.ci/run does)")
    for top in (ws.root, ws.modcache):
        for dirpath, _, names in os.walk(top):
            for name in names:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    path.read_bytes()
    return ws


@pytest.fixture(scope="module")
def large() -> Iterator[Workspace]:
    yield installed(workspace.large())


@pytest.fixture(scope="module")
def second() -> Iterator[Workspace]:
    yield installed(workspace.second())


def both(ws: Workspace, real_gopls: Path, tmp_path: Path, dirs: LspguardDirs,
         **kwargs: object) -> tuple[SessionResult, SessionResult]:
    """The script against bare gopls, then through lspguard: each with its own empty GOCACHE
    and gopls file cache (cold), everything else the same."""
    sides = []
    for label, argv in (("bare gopls", [str(real_gopls)]),
                        ("lspguard", lspguard_command(str(real_gopls)))):
        caches = tmp_path / label.replace(" ", "-")
        env = ws.env(gocache=caches / "gocache", goplscache=caches / "goplscache")
        is_guard = label == "lspguard"
        result = open_file_session(argv, ws, env=env, label=label, within=WITHIN,
                                   runtime=dirs.runtime if is_guard else None,
                                   state=dirs.state if is_guard else None,
                                   **kwargs)  # type: ignore[arg-type]
        print(result.summary())
        sides.append(result)
    return sides[0], sides[1]


def assert_never_worse(bare: SessionResult, guarded: SessionResult) -> None:
    report = f"\n{bare.summary()}\n{guarded.summary()}"
    assert bare.results == len(bare.answers), f"bare gopls did not answer everything:{report}"
    assert not guarded.missing(bare), \
        f"lspguard gave no result for {guarded.missing(bare)}:{report}"
    assert guarded.restarts == 0, f"lspguard restarted a working gopls:{report}"
    assert guarded.verdict_kinds() == [], f"lspguard called a working gopls hung:{report}"


@pytest.mark.timeout(2 * WITHIN + 60)
def test_cold_caches(large: Workspace, real_gopls: Path, tmp_path: Path,
                     lspguard_dirs: LspguardDirs) -> None:
    """A fresh container: gopls's file cache and GOCACHE empty, a load of tens of seconds that
    burns CPU while it reads files. Working, not busy-spinning."""
    bare, guarded = both(large, real_gopls, tmp_path, lspguard_dirs)
    assert_never_worse(bare, guarded)


@pytest.mark.timeout(2 * WITHIN + 90)
def test_cold_caches_on_a_slow_mount(second: Workspace, real_gopls: Path, tmp_path: Path,
                                     lspguard_dirs: LspguardDirs, faultfs: object) -> None:
    """Cold, with the workspace and its GOMODCACHE on a FUSE mount that answers every operation
    in 2 ms: slow, not hung (bare gopls answers after ~65 s here). lspguard may say "slow"; it
    must not say "hung". The second fixture (x/tools): the large one's `go list` alone makes
    ~160k operations, over 5 minutes at 2 ms each, for bare gopls too."""
    mount: FuseMount = faultfs(second.root.parent, delay_ms=FUSE_DELAY_MS,  # type: ignore[operator]
                               cache_timeout=FUSE_ATTR_CACHE_S)
    bare, guarded = both(second.under(mount.mountpoint), real_gopls, tmp_path, lspguard_dirs)
    assert mount.status()["served"] > 0 and not mount.status()["hung"]
    assert_never_worse(bare, guarded)


@pytest.mark.timeout(2 * (WITHIN + SETTLE + 60) + 60)
def test_a_memory_limit_that_kills_bare_gopls(large: Workspace, real_gopls: Path,
                                              tmp_path: Path,
                                              lspguard_dirs: LspguardDirs) -> None:
    """A container's memory limit under which the kernel OOM-kills bare gopls during its load
    (after it has answered the open file: the editor then has no gopls at all). lspguard names
    it out_of_memory and restarts gopls with GOMEMLIMIT below the limit, under which the same
    load finishes, and the editor's questions, asked again once it is idle, get results."""
    results: list[SessionResult] = []
    kills: list[int] = []
    for label, argv in (("bare gopls", [str(real_gopls)]),
                        ("lspguard", lspguard_command(str(real_gopls)))):
        caches = tmp_path / label.replace(" ", "-")
        env = large.env(gocache=caches / "gocache", goplscache=caches / "goplscache")
        is_guard = label == "lspguard"
        with memory_cgroup(MEMORY_LIMIT) as cg:
            result = open_file_session(argv, large, env=env, label=label, within=WITHIN,
                                       preexec_fn=cg.preexec, settle=SETTLE, again=True,
                                       runtime=lspguard_dirs.runtime if is_guard else None,
                                       state=lspguard_dirs.state if is_guard else None)
            kills.append(cg.oom_kills)
        print(result.summary(), f"\n  OOM kills in the cgroup: {kills[-1]}")
        results.append(result)
    bare, guarded = results
    report = f"\n{bare.summary()}\n{guarded.summary()}\nOOM kills: {kills}"
    assert kills[0] >= 1 and bare.exit_code == -9 and bare.results_after == 0, \
        f"the limit did not kill bare gopls: the fixture or gopls changed; measure again{report}"
    assert "out_of_memory" in guarded.verdict_kinds(), report
    backend = (guarded.status or {}).get("backend") or {}
    assert guarded.restarts >= 1 and "GOMEMLIMIT" in (backend.get("env_overlay") or {}), report
    assert not guarded.missing(bare), report
    assert guarded.results_after == len(guarded.after), report
    assert kills[1] == 1, f"gopls with GOMEMLIMIT was killed again{report}"

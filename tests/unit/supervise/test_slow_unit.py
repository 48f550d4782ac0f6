"""Slow is a state: which directories are measured, when the session is slow and when it is no
longer, and how it is said. The FUSE mount that is slow for real: test_faultlab_gopls.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lspguard.causes.kernel import WaitKind
from lspguard.causes.probe import PathProber
from lspguard.causes.tree import ProcessFacts, ThreadWait, TreeSnapshot
from lspguard.procfs.mounts import Mount
from lspguard.supervise import slow as slow_module
from lspguard.supervise.slow import SlowWatch, go_roots, measure_latency

pytestmark = pytest.mark.timeout(20)

MOUNTS = (Mount("/", "overlay", "overlay"), Mount("/workspace", "fuse.grpcfuse", "grpcfuse"),
          Mount("/go/pkg/mod", "ext4", "/dev/vda"))
ROOTS = [("the workspace", "/workspace/app"), ("GOMODCACHE", "/go/pkg/mod"),
         ("GOCACHE", "/root/.cache/go-build")]


def test_go_roots_as_the_go_command_finds_them(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "GOPATH": f"/gp{':'}/other"}
    roots = go_roots(["/workspace/app"], env)
    assert roots == [("the workspace", "/workspace/app"), ("GOMODCACHE", "/gp/pkg/mod"),
                     ("GOCACHE", f"{tmp_path}/.cache/go-build")]
    goenv = tmp_path / ".config" / "go" / "env"
    goenv.parent.mkdir(parents=True)
    goenv.write_text("GOMODCACHE=/cache/mod\nGOCACHE=off\n")  # `go env -w` settings
    assert go_roots([], {"HOME": str(tmp_path)}) == [("GOMODCACHE", "/cache/mod")]


async def test_a_local_directory_answers_in_well_under_a_millisecond(tmp_path: Path) -> None:
    found = await measure_latency([str(tmp_path)], PathProber(10.0))
    assert set(found) == {str(tmp_path)} and found[str(tmp_path)] < 1.0, found


def _snapshot(at: float) -> TreeSnapshot:
    reading = ThreadWait(9, "S", "request_wait_answer", "read", fd_path="/srv/share/x.go",
                         kind=WaitKind.FILESYSTEM)
    go = ProcessFacts(2, 1, ("go", "list"), "S", 0.0, (reading,))
    gopls = ProcessFacts(1, 0, ("gopls",), "S", 0.0, ())
    return TreeSnapshot(1, {1: gopls, 2: go}, (*MOUNTS, Mount("/srv/share", "nfs4", "h:/")),
                        at)


async def test_slow_comes_and_goes_with_the_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    latency = {"/workspace/app": 20.3, "/go/pkg/mod": 0.01, "/root/.cache/go-build": 0.02}
    asked: list[list[str]] = []

    async def measure(directories: Sequence[str], helpers: PathProber) -> dict[str, float]:
        asked.append(list(directories))
        return {d: latency[d] for d in directories if d in latency}

    monkeypatch.setattr(slow_module, "measure_latency", measure)
    monkeypatch.setattr(slow_module, "read_mountinfo", lambda: list(MOUNTS))
    watch = SlowWatch(threshold_ms=1.0, timeout=2.0)
    due = watch.due(ROOTS, None, now=0.0)
    # one directory per mount: GOCACHE is on "/" (overlay), measured too
    assert [d for _, d, _ in due] == ["/workspace/app", "/go/pkg/mod", "/root/.cache/go-build"]
    await watch.measure(due)
    slow = watch.slow
    assert slow is not None and (slow.mount_point, slow.role) == ("/workspace", "the workspace")
    assert slow.sentence.startswith("The workspace at /workspace (fuse.grpcfuse) answers in "
                                    "20.3 ms per operation")
    assert "Docker Desktop" in slow.fix and "GOMODCACHE" in slow.fix
    assert watch.due(ROOTS, None, now=1.0) == []  # nothing is due again for 30 s
    # a thread waits on another mount: that one is measured now, the others are not
    latency["/srv/share"] = 0.2
    assert [d for _, d, _ in watch.due(ROOTS, _snapshot(2.0), now=2.0)] == ["/srv/share"]
    latency["/workspace/app"] = 0.3  # the share answers quickly again
    due = watch.due(ROOTS, None, now=31.0)
    await watch.measure(due)
    assert watch.slow is None

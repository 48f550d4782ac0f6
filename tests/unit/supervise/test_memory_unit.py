"""The memory cgroup, its limit and OOM counters, read from hand-made /proc and /sys trees; and
the verdict `out_of_memory` from them. The real kernel's OOM killer:
tests/system/test_memory_oom.py."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lspguard.causes.memory import format_bytes, memory_cgroup
from lspguard.causes.verdict import VerdictKind
from lspguard.supervise import memory as watch
from lspguard.supervise.memory import MemoryWatch, gomemlimit_for

pytestmark = pytest.mark.timeout(10)

GIB = 1 << 30


def _files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _proc(tmp_path: Path, cgroup: str, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    _files(proc, {"123/cgroup": cgroup, "123/mountinfo": mountinfo})
    return proc


def test_cgroup_v1_limit_on_an_ancestor_and_oom_kills_counted_up_the_tree(
        tmp_path: Path) -> None:
    sys_memory = tmp_path / "memory"
    _files(sys_memory, {
        "docker/abc/memory.limit_in_bytes": "9223372036854771712\n",  # no limit of its own
        "docker/abc/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        "docker/memory.limit_in_bytes": f"{3 * GIB}\n",
        "docker/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    })
    proc = _proc(tmp_path, "5:cpu:/\n4:memory:/docker/abc\n0::/\n",
                 f"30 25 0:27 / {sys_memory} rw,nosuid - cgroup cgroup rw,memory\n")
    found = memory_cgroup(123, proc=str(proc))
    assert found is not None and found.version == 1
    assert found.label == "cgroup v1 /docker/abc"
    assert found.limit_bytes() == 3 * GIB
    assert found.oom_kills() == 2


def test_inside_a_container_the_mount_root_is_the_containers_cgroup(tmp_path: Path) -> None:
    sys_memory = tmp_path / "memory"
    _files(sys_memory, {"memory.limit_in_bytes": f"{2 * GIB}\n"})
    proc = _proc(tmp_path, "4:memory:/docker/abc\n",
                 f"30 25 0:27 /docker/abc {sys_memory} rw - cgroup cgroup rw,memory\n")
    found = memory_cgroup(123, proc=str(proc))
    assert found is not None and found.dirs == (str(sys_memory),)
    assert found.limit_bytes() == 2 * GIB


def test_cgroup_v2_max_and_memory_events(tmp_path: Path) -> None:
    unified = tmp_path / "cgroup"
    _files(unified, {
        "user.slice/app/memory.max": "max\n",
        "user.slice/app/memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        "user.slice/memory.max": f"{GIB}\n",
        "user.slice/memory.events": "oom 0\noom_kill 0\n",
    })
    proc = _proc(tmp_path, "0::/user.slice/app\n",
                 f"29 25 0:26 / {unified} rw - cgroup2 cgroup2 rw,nsdelegate\n")
    found = memory_cgroup(123, proc=str(proc))
    assert found is not None and found.version == 2
    assert (found.limit_bytes(), found.oom_kills()) == (GIB, 1)


def test_no_memory_controller_is_no_cgroup(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "1:cpu:/\n",
                 "30 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")
    assert memory_cgroup(123, proc=str(proc)) is None


def test_heap_limit_and_sizes_are_said_as_people_say_them() -> None:
    assert gomemlimit_for(3 * GIB) == "2457MiB"
    assert (format_bytes(3.0e9), format_bytes(3 * GIB, binary=True)) == ("3.0 GB", "3.0 GiB")


@dataclass
class _Backend:
    pid: int
    returncode: int | None
    generation: int = 1
    stderr_tail: list[str] = field(default_factory=list)


@dataclass
class _Group:
    kills: int
    limit: int | None = 3 * GIB
    version: int = 1
    name: str = "/docker/abc"
    dirs: tuple[str, ...] = ("/x",)

    @property
    def label(self) -> str:
        return f"cgroup v{self.version} {self.name}"

    def limit_bytes(self) -> int | None:
        return self.limit

    def oom_kills(self) -> int:
        return self.kills


def test_an_exit_by_sigkill_with_the_oom_counter_up_is_out_of_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    group = _Group(kills=0)
    monkeypatch.setattr(watch, "memory_cgroup", lambda pid: group)
    monkeypatch.setattr(watch, "global_oom_kills", lambda: 0)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    memory = MemoryWatch()
    memory.start(42, {})
    memory.sample(42, tree_rss=3_000_000_000)
    killed = _Backend(42, -signal.SIGKILL)
    assert memory.verdict_on_exit(killed, "gopls") is None  # SIGKILL, but no OOM kill counted
    group.kills = 1
    assert memory.verdict_on_exit(_Backend(42, 2), "gopls") is None  # an exit, not a kill
    verdict = memory.verdict_on_exit(killed, "gopls")
    assert verdict is not None and verdict.kind is VerdictKind.OUT_OF_MEMORY
    assert verdict.summary == (
        "The kernel's OOM killer ended gopls (pid 42) at 3.0 GB; the memory limit of its "
        "cgroup (cgroup v1 /docker/abc, a container's limit) is 3.0 GiB.")
    assert memory.limit_for_restart({}) == "2457MiB"
    assert memory.limit_for_restart({"GOMEMLIMIT": "1GiB"}) is None  # the user's own stays
    status = memory.as_status()
    assert status is not None and status["oom_kills"] == 1 and status["near_limit"]
    assert "raise the container's memory limit" in verdict.facts["stop_reason"]


def test_the_machines_own_oom_killer_counts_without_a_cgroup_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    counts = iter([5, 6])
    monkeypatch.setattr(watch, "memory_cgroup", lambda pid: None)
    monkeypatch.setattr(watch, "global_oom_kills", lambda: next(counts))
    memory = MemoryWatch()
    memory.start(42, {})
    verdict = memory.verdict_on_exit(_Backend(42, -signal.SIGKILL), "gopls")
    assert verdict is not None and "the machine ran out of memory" in verdict.summary


def test_nearing_the_limit_is_said_once_per_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "memory_cgroup", lambda pid: _Group(kills=0))
    monkeypatch.setattr(watch, "global_oom_kills", lambda: 0)
    memory = MemoryWatch()
    memory.start(42, {})
    memory.sample(42, tree_rss=2 * GIB)
    assert memory.near_limit_warning("gopls") is None  # 67 %: nothing to say
    memory.sample(42, tree_rss=int(2.8 * GIB))
    text = memory.near_limit_warning("gopls")
    assert text is not None and "3.0 GB of its 3.0 GiB memory limit" in text
    assert memory.near_limit_warning("gopls") is None  # once
    memory.start(43, {})
    memory.sample(43, tree_rss=int(2.9 * GIB))
    assert memory.near_limit_warning("gopls") is not None  # a new generation, told again

"""Out of memory, with the real kernel's OOM killer in a real memory cgroup.

The proxy starts in a memory cgroup with a small limit, as in a container (its server inherits
it), and the scripted fault server (tests/servers/fault_server.py, `--fault oom`) grows its heap
on a hover until the kernel kills it, as gopls does on a big workspace. With GOMEMLIMIT set it
stops at half of it, as the Go runtime's collector would hold a heap. lspguard must name the
OOM kill and the limit (not "crashed"), restart with GOMEMLIMIT at 80% of the limit, and, when
that is not enough, stop restarting with one message that says how to fix it. The
large-workspace OOM with real gopls is in tests/system/test_scale.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..faultlab.memcg import MemoryCgroup, memcg_unavailable
from ..faultproxy import Proxy, hover, initialize, start_proxy
from ..polling import wait_until

pytestmark = pytest.mark.timeout(90)

LIMIT = 192 << 20


@pytest.fixture
def memcg() -> Iterator[MemoryCgroup]:
    why = memcg_unavailable()
    if why is not None:
        pytest.skip(why)
    group = MemoryCgroup(LIMIT)
    try:
        yield group
    finally:
        group.close()


def _start(tmp_path: Path, memcg: MemoryCgroup, *extra: str) -> Proxy:
    restart = {"max_restarts": 4, "window": 600.0, "backoff_initial": 0.1}
    p = start_proxy(tmp_path, "--fault", "oom", *extra, restart=restart,
                    preexec_fn=memcg.preexec)
    initialize(p)
    wait_until(lambda: (p.status().get("memory") or {}).get("limit_bytes") == LIMIT, 20)
    return p


def test_an_oom_kill_is_named_with_the_limit_and_restarted_with_gomemlimit(
        tmp_path: Path, memcg: MemoryCgroup, proxies: list[Proxy]) -> None:
    p = _start(tmp_path, memcg)
    proxies.append(p)
    killed = hover(p)
    assert p.answer(killed, 30)["error"]["code"] == -32801  # ContentModified: asked again
    p.wait_for_state("running", 30)
    status = p.status()
    verdict = status["last_verdict"]
    assert verdict["kind"] == "out_of_memory"
    assert "OOM killer" in verdict["summary"] and "192.0 MiB" in verdict["summary"]
    assert verdict["facts"]["limit_bytes"] == LIMIT
    assert memcg.oom_kills >= 1
    # restarted with a heap limit at 80% of the memory limit, and it now answers
    assert status["backend"]["env_overlay"].get("GOMEMLIMIT") == "153MiB"
    assert status["restarts"] == 1
    answer = p.answer(hover(p), 30)
    assert "result" in answer, answer
    assert p.status()["memory"]["oom_kills"] == 1


def test_a_second_oom_kill_stops_the_restarts_with_the_fix(
        tmp_path: Path, memcg: MemoryCgroup, proxies: list[Proxy]) -> None:
    p = _start(tmp_path, memcg, "--ignore-gomemlimit")
    proxies.append(p)
    assert p.answer(hover(p), 30)["error"]["code"] == -32801
    p.wait_for_state("running", 30)
    assert p.status()["backend"]["env_overlay"].get("GOMEMLIMIT") == "153MiB"
    assert p.answer(hover(p), 30)["error"]["code"] == -32801  # killed again: in flight
    p.wait_for_state("degraded", 30)
    answer = p.answer(hover(p), 10)
    assert answer["error"]["code"] == -32803, answer  # RequestFailed, with the reason
    assert "OOM killer" in answer["error"]["message"]
    status = p.status()
    assert "again" in status["degraded"] and "192.0 MiB memory limit" in status["degraded"]
    assert "build.directoryFilters" in status["degraded"]
    told = p.seen_or_wait(lambda m: m.get("method") == "window/showMessage"
                          and m["params"]["type"] == 1, 10)
    assert "OOM killer" in told["params"]["message"]
    assert status["restarts"] == 1  # one restart with GOMEMLIMIT, then no more
    assert p.client.proc.poll() is None

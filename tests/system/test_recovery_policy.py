"""Escalation and budget: restart 1 is the same backend with the hang overlay, restarts 2.. walk
the fallback chain in order, and once the budget is spent the editor stays connected and gets
clear errors (told once). Driven by the scripted fault server, which here crashes on every hover.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lspguard.control.client import call_control

from ..faultproxy import (
    FAULT_SERVER,
    Proxy,
    hover,
    initialize,
    start_proxy,
)
from ..polling import wait_until


def fallback(name: str) -> dict[str, Any]:
    return {"name": name,
            "command": [sys.executable, str(FAULT_SERVER), "--fault", "exit", "--name", name]}


def whoami(p: Proxy) -> dict[str, str]:
    return p.answer(p.request("fault/whoami", None), 20)["result"]  # type: ignore[no-any-return]


def crash_and_wait(p: Proxy) -> None:
    """Make the running server crash (a hover held during a restart could be answered at its
    deadline instead of reaching, and crashing, the next server)."""
    p.wait_for_state("running", 20)
    rid = hover(p)
    assert p.answer(rid, 20)["error"]["code"] == -32801


def test_fallback_chain_in_order_then_budget(tmp_path: Path, proxies: list[Proxy]) -> None:
    restart = {"max_restarts": 3, "window": 600.0, "backoff_initial": 0.1,
               "hang_env": {"GODEBUG": "asyncpreemptoff=1"},
               "fallback": [fallback("fallback-one"), fallback("fallback-two")]}
    p = start_proxy(tmp_path, "--fault", "exit", "--name", "primary", restart=restart)
    proxies.append(p)
    initialize(p)
    me = whoami(p)
    assert (me["name"], me["godebug"]) == ("primary", os.environ.get("GODEBUG", ""))

    seen = []
    for _ in range(3):
        crash_and_wait(p)
        seen.append(whoami(p))
    assert [s["name"] for s in seen] == ["primary", "fallback-one", "fallback-two"]
    # a crash is no hang: restart 1 runs the same server, without the hang overlay
    assert "asyncpreemptoff=1" not in seen[0]["godebug"]
    assert "asyncpreemptoff=1" in seen[1]["godebug"]  # the fallbacks carry it
    assert len({s["pid"] for s in seen}) == 3

    crash_and_wait(p)  # a 4th crash: the budget (3 restarts) is spent
    errors = p.seen_or_wait(lambda m: m.get("method") == "window/showMessage"
                        and m["params"]["type"] == 1, 20)
    assert "stopped restarting" in errors["params"]["message"]
    answer = p.answer(hover(p), 10)
    assert answer["error"]["code"] == -32803  # RequestFailed, with the reason
    assert "stopped restarting" in answer["error"]["message"]
    assert p.status()["state"] == "degraded"
    assert p.client.proc.poll() is None  # the editor's connection stays up
    p.answer(hover(p), 10)
    told = [m for m in p.seen if m.get("method") == "window/showMessage"
            and m["params"]["type"] == 1]
    assert len(told) == 1  # said once

    # `lspguard restart` (the control socket) revives it: the plain primary, a fresh budget.
    sock = p.runtime / "sessions" / f"{p.client.proc.pid}.sock"
    assert call_control(sock, "restart", timeout=10)["restarting"] is True
    p.wait_for(lambda m: m.get("method") == "window/showMessage"
               and "restarted" in m["params"]["message"], 20)
    me = whoami(p)
    assert (me["name"], me["godebug"]) == ("primary", os.environ.get("GODEBUG", ""))
    assert p.status()["state"] == "running" and p.status()["degraded"] is None


def test_restarts_asked_at_once_start_one_server(tmp_path: Path, proxies: list[Proxy]) -> None:
    """Two `lspguard restart` (or a double click in the extension) while one is under way."""
    import psutil

    p = start_proxy(tmp_path)
    proxies.append(p)
    initialize(p)
    sock = p.runtime / "sessions" / f"{p.client.proc.pid}.sock"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: call_control(sock, "restart", timeout=10), range(4)))
    started = [r for r in results if not r.get("already")]
    assert started and all(r["restarting"] for r in results), results
    generation = 1 + len(started)
    def restarted(m: dict[str, object]) -> bool:
        return m.get("method") == "window/showMessage" and "restarted" in str(m["params"])

    while sum(map(restarted, p.seen)) < len(started):
        p.wait_for(restarted, 20)
    assert whoami(p)["name"] == "fault_server"  # the session goes on
    status = p.status()
    assert (status["backend"]["generation"], status["state"]) == (generation, "running"), status
    def servers() -> list[int]:
        """The proxy's server children; not its other helpers (the slow watch's latency probe
        comes and goes), and not one that ends while it is looked at."""
        found = []
        for child in psutil.Process(p.client.proc.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and \
                        str(FAULT_SERVER) in child.cmdline():
                    found.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return found

    # The replaced server is stopped beside the restart, once its bundle is written (about
    # 1 s of grace, then SIGTERM and SIGKILL): only the new one may be left after that.
    assert wait_until(lambda: servers() == [status["backend"]["pid"]], 10), servers()


def test_degraded_tries_again_by_itself(tmp_path: Path, proxies: list[Proxy]) -> None:
    """Degraded is not forever: after revive_backoff the primary is tried again, no manual
    restart needed."""
    restart = {"max_restarts": 1, "window": 600.0, "backoff_initial": 0.1,
               "revive_backoff": [2.0]}
    p = start_proxy(tmp_path, "--fault", "exit", restart=restart)
    proxies.append(p)
    initialize(p)
    crash_and_wait(p)  # restart 1: the budget
    crash_and_wait(p)  # a 2nd crash: degraded
    p.seen_or_wait(lambda m: m.get("method") == "window/showMessage"
                   and "tries again in 2 s" in m["params"]["message"], 20)
    assert p.status()["state"] == "degraded"
    p.wait_for(lambda m: m.get("method") == "window/showMessage"
               and "restarted" in m["params"]["message"], 20)
    assert whoami(p)["name"] == "fault_server"
    status = p.status()
    assert status["state"] == "running" and status["degraded"] is None, status

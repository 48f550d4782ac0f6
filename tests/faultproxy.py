"""A proxy guarding the scripted fault server, and a raw client that records what it saw."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .polling import wait_until
from .rawclient import RawClient, private_env, reap, wait_for_session

FAULT_SERVER = Path(__file__).parent / "servers" / "fault_server.py"
HOVER_DEADLINE = 1.5
HANDSHAKE_TIMEOUT = 8.0  # a Python fake server can take seconds to start on a loaded machine

FAST_WATCHDOG: dict[str, Any] = {
    "proxy": {"stop_timeout": 0.5},
    "watchdog": {
        "tick": 0.25, "handshake_timeout": HANDSHAKE_TIMEOUT, "default_deadline": 5.0,
        "ping_timeout": 0.5,
        "busy_cpu_percent": 15.0,  # a spinner on a loaded 2-core box may get only a third
        "busy_grace_factor": 1.0, "stuck_grace_factor": 1.0,
        "deadlines": {"textDocument/hover": HOVER_DEADLINE, "fault/echo": HOVER_DEADLINE},
    },
    "restart": {"backoff_initial": 0.1},
    "snapshot": {"strace_seconds": 0.5, "budget": 2.0},
}


def write_config(path: Path, *layers: dict[str, Any]) -> Path:
    """A config file from `layers` (each section of a layer replaces or extends the one below,
    key by key), written as TOML by lspguard itself: the one way a test writes a config."""
    from lspguard.config.model import config_from_dict, config_to_toml

    merged: dict[str, Any] = {}
    for layer in layers:
        for section, keys in layer.items():
            merged.setdefault(section, {}).update(keys)
    path.write_text(config_to_toml(config_from_dict(merged, source=str(path))))
    return path

DOC_URI = "file:///ws/main.go"
DOC_TEXT = "package main\n\nfunc main() {}\n"


@dataclass
class Proxy:
    """A proxy guarding the fault server, with a raw client that records what it saw."""

    client: RawClient
    runtime: Path
    seen: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 100

    def request(self, method: str, params: Any) -> int:
        self.next_id += 1
        self.client.send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                          "params": params})
        return self.next_id

    def notify(self, method: str, params: Any) -> None:
        self.client.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """Read (answering server requests, keeping all in `seen`) until a message satisfies
        `predicate`."""
        return self.client.read_until(predicate, timeout, keep=self.seen.append)

    def seen_or_wait(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """A message already read that satisfies `predicate`, or the next one that does."""
        for msg in self.seen:
            if predicate(msg):
                return msg
        return self.wait_for(predicate, timeout)

    def answer(self, req_id: int, timeout: float) -> dict[str, Any]:
        return self.wait_for(lambda m: m.get("id") == req_id and "method" not in m, timeout)

    def status(self) -> dict[str, Any]:
        path = self.runtime / "sessions" / f"{self.client.proc.pid}.json"
        return json.loads(path.read_text())  # type: ignore[no-any-return]

    def wait_for_state(self, state: str, within: float) -> None:
        """Poll the status file until the session is in `state`."""
        assert wait_until(lambda: self.status()["state"] == state, within, interval=0.05), \
            self.status()

    def answers_to(self, req_id: int) -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("id") == req_id and "method" not in m]


def start_proxy(tmp_path: Path, *fault_args: str, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                restart: dict[str, Any] | None = None, once: bool = True,
                strace_seconds: float = 0.5,
                preexec_fn: Callable[[], None] | None = None) -> Proxy:
    """A proxy guarding the fault server; `restart` adds to the [restart] section (and then
    the fault fires every time: a restart policy is what is under test)."""
    cfg = write_config(tmp_path / "lspguard.toml", FAST_WATCHDOG,
                       {"watchdog": {"handshake_timeout": handshake_timeout},
                        "snapshot": {"strace_seconds": strace_seconds,
                                     "budget": strace_seconds + 1.5}},
                       {"restart": restart or {}})
    runtime = tmp_path / "run"
    env = private_env(tmp_path)
    once_args = ["--once-file", str(tmp_path / "fired")] if once and not restart else []
    cmd = [sys.executable, "-m", "lspguard", "run", "--config", str(cfg), "--",
           sys.executable, str(FAULT_SERVER), *once_args, *fault_args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            preexec_fn=preexec_fn)  # e.g. join a memory cgroup, as in a container
    proxy = Proxy(RawClient(proc), runtime)
    # Fault clocks start once the proxy runs (its status file exists), not at interpreter start.
    wait_for_session(proc, runtime)
    return proxy


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    started: list[Proxy] = []
    yield started
    for p in started:
        reap(p.client.proc)


def initialize(p: Proxy) -> None:
    rid = p.request("initialize", {"processId": os.getpid(), "rootUri": "file:///ws",
                                   "capabilities": {"window": {"workDoneProgress": True}}})
    p.answer(rid, 10)
    wait_for_session(p.client.proc, p.runtime, control=True)  # the answer may come first
    p.notify("initialized", {})
    p.notify("textDocument/didOpen", {"textDocument": {
        "uri": DOC_URI, "languageId": "go", "version": 1, "text": DOC_TEXT}})


def hover(p: Proxy) -> int:
    return p.request("textDocument/hover", {"textDocument": {"uri": DOC_URI},
                                            "position": {"line": 2, "character": 5}})


def latest_bundle(state_dir: Path, kind: str) -> dict[str, Any]:
    """The newest incident bundle of `kind`: its dir, incident.json and process.json."""
    import stat as stat_mod

    bundles = sorted((state_dir / "incidents").glob(f"*-{kind}-*"))
    assert bundles, f"no {kind} bundle in {state_dir / 'incidents'}"
    bundle = bundles[-1]
    assert stat_mod.S_IMODE(bundle.stat().st_mode) == 0o700
    incident = json.loads((bundle / "incident.json").read_text())
    process = json.loads((bundle / "process.json").read_text())
    assert incident["verdict"]["kind"] == kind
    assert html.escape(incident["verdict"]["summary"]) in (bundle / "report.html").read_text()
    threads = [t for p in process.get("processes", []) for t in p.get("threads", [])]
    return {"dir": bundle, "incident": incident, "threads": threads, "process": process}

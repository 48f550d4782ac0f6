#!/usr/bin/env python3
"""Recovery benchmark: how fast lspguard notices a hung or dead gopls, and how fast it is back.

    recovery_bench.py [--gopls PATH] [--workspace DIR] [--reps N] [--deadline S] [--json FILE]

In one run, on the same machine state:
  cold start   gopls spawned directly: spawn -> initialize -> initialized -> didOpen -> the first
               successful hover answer (median of --reps).
  per fault    (SIGKILL and SIGSTOP of gopls, through `lspguard run`): the fault is struck while
               a hover is in flight; "detection" is fault -> verdict (the verdict's own time, from
               the status file), "recovery" is verdict -> the first successful hover answer (the
               editor asks again after ContentModified, as VS Code does).
Targets: detection <= deadline + 1 s (a crash needs no deadline); recovery <= cold start + 1 s.
Results are medians; ratios are against the cold start measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "examples" / "hello"
HOVER_AT = {"line": 10, "character": 28}  # greet.Hello in main.go


class Client:
    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=cwd, env=env)
        self.buf = b""
        self.next_id = 0

    def send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def request(self, method: str, params: Any) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def read(self, deadline: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                n = int(head.split(b":")[1])
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return json.loads(rest[:n])  # type: ignore[no-any-return]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            data = os.read(fd, 65536)
            if not data:
                raise EOFError
            self.buf += data

    def answer(self, req_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read(deadline)
            if "method" in msg and "id" in msg:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif msg.get("id") == req_id and "method" not in msg:
                return msg

    def open_and_hover(self, ws: Path) -> None:
        uri = (ws / "main.go").as_uri()
        rid = self.request("initialize", {"processId": os.getpid(), "rootUri": ws.as_uri(),
                                          "capabilities": {}, "workspaceFolders": [
                                              {"uri": ws.as_uri(), "name": ws.name}]})
        self.answer(rid, 60)
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        self.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "go", "version": 1,
                             "text": (ws / "main.go").read_text()}}})
        self.hover_until_ok(ws, 60)

    def hover_until_ok(self, ws: Path, timeout: float) -> float:
        """Hover until a result comes back; the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while True:
            rid = self.request("textDocument/hover", {
                "textDocument": {"uri": (ws / "main.go").as_uri()}, "position": HOVER_AT})
            msg = self.answer(rid, deadline - time.monotonic())
            if msg.get("result"):
                return time.monotonic()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def cold_start(gopls: str, ws: Path, env: dict[str, str]) -> float:
    t0 = time.monotonic()
    client = Client([gopls], ws, env)
    try:
        client.open_and_hover(ws)
        return time.monotonic() - t0
    finally:
        client.close()


def fault_run(gopls: str, ws: Path, env: dict[str, str], sig: signal.Signals,
              config: Path, runtime: Path) -> tuple[float, float, str]:
    argv = [sys.executable, "-m", "lspguard", "run", "--config", str(config), "--", gopls]
    client = Client(argv, ws, env)
    try:
        client.open_and_hover(ws)
        status_file = runtime / "sessions" / f"{client.proc.pid}.json"
        pid = json.loads(status_file.read_text())["backend"]["pid"]
        fault_wall = time.time()
        fault_mono = time.monotonic()
        os.kill(pid, sig)
        ok_at = client.hover_until_ok(ws, 120)
        verdict = json.loads(status_file.read_text())["last_verdict"]
        verdict_mono = fault_mono + (verdict["at"] - fault_wall)
        return verdict_mono - fault_mono, ok_at - verdict_mono, verdict["kind"]
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gopls", default=os.environ.get("LSPGUARD_GOPLS") or shutil.which(
        "gopls") or str(Path.home() / "go" / "bin" / "gopls"))
    parser.add_argument("--workspace", type=Path, default=SAMPLE)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=3.0, help="hover deadline (s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws = Path(shutil.copytree(args.workspace, tmp / "ws"))
        runtime = tmp / "run"
        env = {**os.environ, "LSPGUARD_RUNTIME_DIR": str(runtime),
               "LSPGUARD_STATE_DIR": str(tmp / "state")}
        config = tmp / "lspguard.toml"
        config.write_text(f'[watchdog]\ntick = 0.5\n[watchdog.deadlines]\n'
                          f'"textDocument/hover" = {args.deadline}\n'
                          f'[restart]\nmax_restarts = 100\n')
        results: dict[str, Any] = {"cold_start_s": [], "faults": {}}
        for rep in range(args.reps):  # interleaved, so machine noise hits all alike
            results["cold_start_s"].append(cold_start(args.gopls, ws, env))
            for sig in (signal.SIGKILL, signal.SIGSTOP):
                det, rec, kind = fault_run(args.gopls, ws, env, sig, config, runtime)
                runs = results["faults"].setdefault(sig.name, {"detection_s": [],
                                                              "recovery_s": [], "verdict": kind})
                runs["detection_s"].append(det)
                runs["recovery_s"].append(rec)
            print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    cold = statistics.median(results["cold_start_s"])
    print(f"gopls cold start (spawn -> first hover answer): {cold:.2f} s "
          f"(median of {args.reps}; hover deadline {args.deadline} s)\n")
    print("| fault | verdict | detection (median) | target | recovery (median) | "
          "recovery / cold start | target |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results["faults"].items():
        det = statistics.median(runs["detection_s"])
        rec = statistics.median(runs["recovery_s"])
        target = 1.0 if name == "SIGKILL" else args.deadline + 1.0
        print(f"| {name} | {runs['verdict']} | {det:.2f} s | <= {target:.1f} s "
              f"{'met' if det <= target else 'MISSED'} | {rec:.2f} s | {rec / cold:.2f}x | "
              f"<= cold + 1 s {'met' if rec <= cold + 1.0 else 'MISSED'} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Replay throughput: client messages per second that `lspguard replay --asap` pushes through.

    replay_bench.py [--requests 2000,10000] [--size 64] [--reps 3] [--server CMD...]

Builds synthetic traces against bench/echo_server.py (it answers every request with a payload of
`params.size` bytes) and replays them in-process with `--asap`, comparing every answer:

* sequential: each request was sent after the previous answer arrived (an editor waiting on
  each result), so the replay waits for every answer: a ping-pong, bounded by round trips;
* pipelined: all requests before any answer (an editor typing ahead, plus a didChange before
  every request), so the replay never waits: bounded by encode/compare and the server;

plus one end-to-end run of the CLI (`python -m lspguard replay`) on the largest trace, which adds
interpreter start-up and the report. Wall time includes spawning the server. Median of --reps.
Also shows what the recorder's hot path costs per message (TraceWriter.record).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from lspguard.replay.run import ReplayOptions, run_replay  # noqa: E402
from lspguard.trace.writer import Trace, TraceEntry, TraceHeader, TraceWriter, write_trace  # noqa: E402


def synthetic(requests: int, size: int, pipelined: bool) -> Trace:
    """initialize, N x (didChange + hover-like request), shutdown, exit; echo_server's answers."""
    entries: list[TraceEntry] = []
    t = 0.0

    def add(direction: str, msg: dict[str, object]) -> None:
        nonlocal t
        t += 0.001
        entries.append(TraceEntry(round(t, 6), direction, 1, {"jsonrpc": "2.0", **msg},
                                  len(entries) + 2))

    import echo_server  # bench/ is on sys.path when this script runs

    echo_init = json.loads(echo_server.INIT_RESULT)
    add("c2s", {"id": 0, "method": "initialize", "params": {"processId": None,
                                                           "capabilities": {}}})
    add("s2c", {"id": 0, "result": echo_init})
    add("c2s", {"method": "initialized", "params": {}})
    uri = "file:///bench/main.go"
    answer = {"payload": "x" * size}
    for i in range(1, requests + 1):
        add("c2s", {"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": i},
            "contentChanges": [{"text": f"package main // {i}\n"}]}})
        add("c2s", {"id": i, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 0, "character": i % 80},
            "size": size}})
        if not pipelined:
            add("s2c", {"id": i, "result": answer})
    if pipelined:
        for i in range(1, requests + 1):
            add("s2c", {"id": i, "result": answer})
    add("c2s", {"id": requests + 1, "method": "shutdown"})
    add("s2c", {"id": requests + 1, "result": None})
    add("c2s", {"method": "exit"})
    return Trace(TraceHeader("bench", "now", (), False, ("echo_server.py",)), entries,
                 path=f"<synthetic {requests}>")


def replay_once(trace: Trace, server: list[str]) -> tuple[float, int, int]:
    began = time.perf_counter()
    report = run_replay(trace, ReplayOptions(server=server, asap=True))
    wall = time.perf_counter() - began
    if report.exit_code != 0:
        raise SystemExit(f"replay_bench: replay did not come out the same:\n"
                         f"{report.render_text(all_requests=False)}")
    return wall, report.sent, len(report.requests)


def record_cost(n: int = 200_000) -> float:
    """ns per TraceWriter.record call (queue only: the writer task is not running)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "textDocument/hover",
                       "params": {"position": {"line": 1, "character": 2}}}).encode()
    with tempfile.TemporaryDirectory() as tmp:
        writer = TraceWriter(Path(tmp) / "t.jsonl", server_command=["x"], max_queue=n + 1)
        view = memoryview(body)
        began = time.perf_counter()
        for _ in range(n):
            writer.record("c2s", 1, view)
        return (time.perf_counter() - began) / n * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", default="2000,10000")
    parser.add_argument("--size", type=int, default=64, help="answer payload bytes")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--server", nargs=argparse.REMAINDER,
                        default=[sys.executable, str(HERE / "echo_server.py")])
    args = parser.parse_args()
    sizes = [int(n) for n in args.requests.split(",")]
    rows = []
    for pipelined in (False, True):
        for n in sizes:
            trace = synthetic(n, args.size, pipelined)
            runs = [replay_once(trace, args.server) for _ in range(args.reps)]
            wall = statistics.median(r[0] for r in runs)
            sent, requests = runs[0][1], runs[0][2]
            rows.append(("pipelined" if pipelined else "sequential", n, sent, wall,
                         sent / wall, requests / wall))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"
        write_trace(synthetic(max(sizes), args.size, True), path)
        walls = []
        for _ in range(args.reps):
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "lspguard", "replay", str(path),
                                   "--asap", "--quiet", "--", *args.server],
                                  capture_output=True, text=True, cwd=HERE.parent)
            walls.append(time.perf_counter() - began)
            if done.returncode != 0:
                raise SystemExit(f"replay_bench: CLI replay failed:\n{done.stdout}{done.stderr}")
        sent = 2 * max(sizes) + 3
        rows.append(("pipelined, CLI", max(sizes), sent, statistics.median(walls),
                     sent / statistics.median(walls), (max(sizes) + 2) / statistics.median(walls)))

    print(f"replay --asap against {' '.join(Path(a).name for a in args.server)}, "
          f"{args.size}-byte answers, median of {args.reps}")
    print(f"{'mode':<16} {'requests':>8} {'client msgs':>11} {'wall s':>7} {'msgs/s':>9} "
          f"{'answers/s':>9}")
    for mode, n, sent, wall, rate, answers in rows:
        print(f"{mode:<16} {n:>8} {sent:>11} {wall:>7.2f} {rate:>9.0f} {answers:>9.0f}")
    print(f"\nTraceWriter.record (hot path, queue only): {record_cost():.0f} ns per message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

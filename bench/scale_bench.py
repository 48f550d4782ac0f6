#!/usr/bin/env python3
"""Scale benchmark: what an editor opening a file on a real-size workspace gets, bare gopls vs lspguard.

    scale_bench.py [--workspaces large,second] [--modes cold,warm,slow] [--reps N] [--memory]
                   [--memory-limit-mib 4608] [--lspguard-path DIR] [--baseline-path DIR]
                   [--gopls PATH] [--within S] [--out DIR]

The script is tests/scale/compare.py's (what VS Code asks when a Go file is opened: initialize,
didOpen, then documentSymbol, foldingRange, codeAction, semanticTokens/full, hover, definition,
completion, references), driven by the same client against each candidate:
  bare      gopls itself
  lspguard  `python -m lspguard run -- gopls` (the venv's lspguard, or --lspguard-path)
  baseline  with --baseline-path DIR: `lspguard run` imported from another checkout, e.g. the
            code before a change (`git archive <rev> lspguard | tar -x -C DIR`)
Workspaces (tests/scale/workspace.py, built by `python -m tests.scale.workspace --ensure`):
`large` (~480 generated packages on client-go, controller-runtime, the AWS SDK, x/tools, gRPC)
and `second` (golang.org/x/tools itself). Modes:
  cold   GOCACHE and gopls's file cache (GOPLSCACHE) fresh and empty for every session
  warm   both filled by one untimed bare session first, then shared (gopls's file cache is
         content-addressed: every candidate reads the same entries)
  slow   cold, with the workspace and its GOMODCACHE on a FUSE mount that answers every
         operation in 2 ms, with a 1 s kernel attribute cache (tests/faultlab, needs root and
         /dev/fuse); ~65 s per session on `second`, over 5 min on `large` (use `second`)
--memory adds the memory case on `large`: each candidate in its own memory cgroup (v1) of
--memory-limit-mib, cold; then it is left to finish the workspace (until its tree is idle) so a
second OOM kill shows.
Repetitions interleave the candidates (order rotated per rep). Reported per workspace and mode:
for each request, the median answer time of each candidate and lspguard ÷ bare (the median of
per-rep ratios), how many answered with a result, restarts and verdicts. Results go to
bench/results/scale-<time>/ (runs.json, summary.md; not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # tests.scale: the fixture and the client the tests use

from tests.rawclient import find_gopls  # noqa: E402
from tests.scale import workspace  # noqa: E402
from tests.scale.compare import METHODS, SessionResult, open_file_session  # noqa: E402

MODES = ("cold", "warm", "slow")
FUSE_DELAY_MS = 2.0
FUSE_ATTR_CACHE_S = 1.0  # the kernel's entry/attr cache, as virtiofs (cache=auto) keeps it


def candidates(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv, extra env)."""
    py = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").is_dir() else sys.executable
    lspguard_env = {"PYTHONPATH": str(args.lspguard_path)} if args.lspguard_path else {}
    found: dict[str, tuple[list[str], dict[str, str]]] = {
        "bare": ([args.gopls], {}),
        "lspguard": ([py, "-m", "lspguard", "run", "--", args.gopls], lspguard_env)}
    if args.baseline_path:
        found["baseline"] = ([py, "-m", "lspguard", "run", "--", args.gopls],
                             {"PYTHONPATH": str(args.baseline_path)})
    return found


def session(name: str, argv: list[str], extra: dict[str, str], ws: workspace.Workspace,
            caches: Path, home: Path, within: float, **kwargs: Any) -> SessionResult:
    """One scripted session; lspguard's dirs fresh under `home` (so its incidents are its own)."""
    env = ws.env(gocache=caches / "gocache", goplscache=caches / "goplscache")
    env.update(extra)
    guarded = name != "bare"
    if guarded:
        env.update(LSPGUARD_STATE_DIR=str(home / "state"), LSPGUARD_RUNTIME_DIR=str(home / "run"),
                   LSPGUARD_CONFIG_DIR=str(home / "config"))
        env.pop("LSPGUARD_CONFIG", None)
    return open_file_session(argv, ws, env=env, label=name, within=within,
                             runtime=home / "run" if guarded else None,
                             state=home / "state" if guarded else None, **kwargs)


def record(result: SessionResult, **extra: Any) -> dict[str, Any]:
    status = result.status or {}
    backend = status.get("backend") or {}
    return {
        "label": result.label, "results": result.results, "elapsed_s": round(result.elapsed_s, 2),
        "initialize_s": result.initialize_s, "first_load_s": result.first_load_s,
        "idle_s": result.idle_s, "exit_code": result.exit_code,
        "peak_rss_mib": round(result.peak_rss_bytes / 2**20),
        "restarts": result.restarts if result.status is not None else None,
        "verdicts": result.verdict_kinds(), "state": status.get("state"),
        "slow": status.get("slow"), "memory": status.get("memory"),
        "last_verdict": (status.get("last_verdict") or {}).get("summary"),
        "env_overlay": backend.get("env_overlay"),
        "answers": {m: {"s": a.seconds, "result": a.result, "error": a.error,
                        "attempts": a.attempts, "size": a.size}
                    for m, a in result.answers.items()},
        **extra}


def run_mode(ws: workspace.Workspace, mode: str, reps: int, cands: dict[str, Any],
             scratch: Path, within: float, log: list[dict[str, Any]]) -> None:
    warm = scratch / f"warm-{ws.name.replace('/', '_')}"
    if mode == "warm" and not warm.exists():
        print(f"  warming caches for {ws.name} (untimed bare session)", flush=True)
        session("bare", *cands["bare"], ws, warm, scratch / "home-warmup", within)
    names = list(cands)
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
            caches = warm if mode == "warm" else home / "caches"
            if mode == "slow":
                from tests.faultlab import FuseMount

                with FuseMount(ws.root.parent, delay_ms=FUSE_DELAY_MS,
                               cache_timeout=FUSE_ATTR_CACHE_S) as mount:
                    result = session(name, *cands[name], ws.under(mount.mountpoint), caches,
                                     home, within)
            else:
                result = session(name, *cands[name], ws, caches, home, within)
            print(result.summary(), flush=True)
            log.append(record(result, workspace=ws.name, mode=mode, rep=rep, candidate=name))
            shutil.rmtree(home, ignore_errors=True)


def run_memory(ws: workspace.Workspace, limit_mib: int, reps: int, cands: dict[str, Any],
               scratch: Path, within: float, log: list[dict[str, Any]]) -> None:
    from tests.faultlab.memcg import MemoryCgroup

    names = list(cands)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            home = Path(tempfile.mkdtemp(prefix=f"mem-{name}-", dir=scratch))
            with MemoryCgroup(limit_mib * 2**20) as cg:
                result = session(name, *cands[name], ws, home / "caches", home, within,
                                 preexec_fn=cg.preexec, settle=120.0, again=True)
                kills = cg.oom_kills
            print(result.summary(), f"\n  OOM kills: {kills}", flush=True)
            log.append(record(result, workspace=ws.name, mode=f"memory {limit_mib} MiB", rep=rep,
                              candidate=name, oom_kills=kills,
                              results_after=result.results_after))
            shutil.rmtree(home, ignore_errors=True)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.2f}{unit}" if unit == "×" else f"{value:.1f}{unit}"


def summarise(log: list[dict[str, Any]]) -> str:
    out = ["# Scale benchmark", ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in log:
        groups.setdefault((run["workspace"], run["mode"]), []).append(run)
    for (ws, mode), runs in groups.items():
        names = list(dict.fromkeys(r["candidate"] for r in runs))
        out += [f"## {ws}, {mode} ({len(runs) // max(1, len(names))} reps)", ""]
        head = "| request | " + " | ".join(f"{n} (s)" for n in names)
        head += "".join(f" | {n} ÷ bare" for n in names if n != "bare") + " |"
        out += [head, "|" + "---|" * (1 + len(names) + len(names) - 1)]
        for method in METHODS:
            cells = []
            for name in names:
                times = [r["answers"][method]["s"] for r in runs if r["candidate"] == name
                         and r["answers"][method]["result"]]
                answered = sum(r["answers"][method]["result"] for r in runs
                               if r["candidate"] == name)
                total = sum(r["candidate"] == name for r in runs)
                cell = _fmt(_median(times))
                cells.append(cell if answered == total else f"{cell} ({answered}/{total} results)")
            for name in names:
                if name == "bare":
                    continue
                ratios = []
                for rep in {r["rep"] for r in runs}:
                    pair = {r["candidate"]: r for r in runs if r["rep"] == rep}
                    a, b = pair.get(name), pair.get("bare")
                    if a and b and a["answers"][method]["result"] and b["answers"][method]["result"]:
                        ratios.append(a["answers"][method]["s"] / max(b["answers"][method]["s"],
                                                                      1e-3))
                cells.append(_fmt(_median(ratios), "×"))
            out.append(f"| {method.removeprefix('textDocument/')} | " + " | ".join(cells) + " |")
        out.append("")
        for name in names:
            mine = [r for r in runs if r["candidate"] == name]
            verdicts = sorted({v for r in mine for v in r["verdicts"]})
            restarts = [r["restarts"] for r in mine if r["restarts"] is not None]
            kills = [r.get("oom_kills") for r in mine if r.get("oom_kills") is not None]
            out.append(
                f"- {name}: results {[r['results'] for r in mine]} of {len(METHODS)}; "
                f"first load {_fmt(_median([r['first_load_s'] for r in mine if r['first_load_s']]))}; "
                f"peak RSS {[r['peak_rss_mib'] for r in mine]} MiB"
                + (f"; restarts {restarts}; verdicts {verdicts or 'none'}" if name != "bare" else "")
                + (f"; exit {[r['exit_code'] for r in mine]}" if any(r["exit_code"] for r in mine)
                   else "")
                + (f"; OOM kills {kills}" if kills else "")
                + (f"; asked again once idle: {[r['results_after'] for r in mine]} results"
                   if any("results_after" in r for r in mine) else "")
                + (f"; idle at {[r['idle_s'] and round(r['idle_s'], 1) for r in mine]} s"
                   if any(r["idle_s"] for r in mine) else "")
                + (f"; GOMEMLIMIT {mine[-1]['env_overlay'].get('GOMEMLIMIT')}"
                   if (mine[-1].get("env_overlay") or {}).get("GOMEMLIMIT") else "")
                + (f"; slow: {mine[-1]['slow'].get('sentence')}" if mine[-1].get("slow") else ""))
            for r in mine:
                if r["last_verdict"]:
                    out.append(f"  - rep {r['rep']}: {r['last_verdict']}")
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gopls", default=os.environ.get("LSPGUARD_GOPLS") or find_gopls()
                        or str(Path.home() / "go" / "bin" / "gopls"))
    parser.add_argument("--workspaces", default="large,second")
    parser.add_argument("--modes", default="cold,warm")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="add the memory-limit case")
    parser.add_argument("--memory-reps", type=int, default=1)
    parser.add_argument("--memory-limit-mib", type=int, default=4608)
    parser.add_argument("--lspguard-path", type=Path)
    parser.add_argument("--baseline-path", type=Path)
    parser.add_argument("--within", type=float, default=240.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if bad := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(bad)}; known: {', '.join(MODES)}")
    top = workspace.ensure()
    fixtures = {"large": workspace.large(top), "second": workspace.second(top)}
    out = args.out or HERE / "results" / time.strftime("scale-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    cands = candidates(args)
    log: list[dict[str, Any]] = []
    meta = {"gopls": args.gopls, "candidates": {k: v[0] for k, v in cands.items()},
            "lspguard_path": str(args.lspguard_path), "baseline_path": str(args.baseline_path),
            "load": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for name in args.workspaces.split(","):
            for mode in modes:
                print(f"== {name}, {mode}", flush=True)
                run_mode(fixtures[name], mode, args.reps, cands, scratch, args.within, log)
        if args.memory:
            print(f"== large, memory limit {args.memory_limit_mib} MiB", flush=True)
            run_memory(fixtures["large"], args.memory_limit_mib, args.memory_reps, cands,
                       scratch, args.within, log)
    meta["load_after"] = os.getloadavg()
    (out / "runs.json").write_text(json.dumps({"meta": meta, "runs": log}, indent=2))
    summary = summarise(log)
    (out / "summary.md").write_text(summary + "\n")
    print(summary)
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

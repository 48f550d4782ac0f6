#!/usr/bin/env python3
"""Start-up benchmark: the editor's `initialize` round trip with real gopls, direct vs lspguard.

    startup_bench.py [--gopls PATH] [--workspace DIR ...] [--reps N] [--candidates a,b,...]
                     [--lspguard-path DIR] [--baseline-path DIR] [--cold] [--json FILE]

What an editor waits for at every start and window reload: from spawning the server command to
the `initialize` answer. The client writes `initialize` right after the spawn (as VS Code does:
the pipe holds it until someone reads), then times the answer. Candidates:
  direct     gopls itself
  lspguard   `python -m lspguard run -- gopls`
  shim       the installed `gopls` shim (`lspguard install-shim`: native, built with Go), what
             VS Code runs through go.alternateTools.gopls
  script     the Python script shim (`lspguard install-shim --script`, the no-Go fallback)
  baseline   with --baseline-path DIR: `lspguard run` from another checkout (A/B, one run)
N interleaved repetitions (order rotated per rep), on the same copy of each workspace. Reported:
medians, the median of the per-rep difference to `direct` of the same rep, the proxy's own view
of the handshake (status file `handshake.initialize_ms`: initialize forwarded -> answered, so
the rest is lspguard's start-up before it forwarded), and the proxy's peak RSS (VmHWM) 0.2 s
after the answer, as bench.py reads it. Each session then ends with shutdown + exit.
Then `gopls version` (what VS Code Go runs at activation): direct and through each shim,
--version-reps times, interleaved.
Targets: initialize through the shim <= direct + 40 ms (median; `lspguard run` and the script:
+ 60 ms); `gopls version` through the shim <= direct + 5 ms (median); proxy VmHWM after
initialize <= 30 MB.

Bytecode: an installed lspguard has its .pyc files (pip writes them); a checkout run with
PYTHONDONTWRITEBYTECODE=1 (set on this machine) compiles every module at every start, which
here costs about 100 ms more. So the package measured is byte-compiled first (`compileall`,
into its own __pycache__, gitignored); --no-compile measures it as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "examples" / "hello"
CANDIDATES = ("direct", "lspguard", "shim", "script")
TARGET_ADDED_MS = {"shim": 40.0}  # the rest: DEFAULT_TARGET_MS
DEFAULT_TARGET_MS = 60.0
TARGET_VERSION_MS = 5.0
TARGET_HWM_MB = 30.0
IDLE_S = 0.2  # bench.py reads the idle proxy's VmHWM this long after initialize


def frame(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def initialize(ws: Path) -> dict[str, Any]:
    """An editor-like initialize (a subset of VS Code Go's capabilities)."""
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": os.getpid(), "clientInfo": {"name": "startup_bench", "version": "1"},
        "rootUri": ws.as_uri(), "workspaceFolders": [{"uri": ws.as_uri(), "name": ws.name}],
        "initializationOptions": {}, "capabilities": {
            "workspace": {"configuration": True, "workspaceFolders": True,
                          "didChangeWatchedFiles": {"dynamicRegistration": True}},
            "textDocument": {"synchronization": {"dynamicRegistration": True, "didSave": True},
                             "hover": {"contentFormat": ["markdown", "plaintext"]},
                             "completion": {"completionItem": {"snippetSupport": True}}},
            "window": {"workDoneProgress": True}}}}


def read_message(fd: int, buf: bytearray, deadline: float) -> dict[str, Any]:
    while True:
        head, sep, _ = bytes(buf[:4096]).partition(b"\r\n\r\n")
        if sep:
            n = int(head.split(b":")[1])
            start = len(head) + 4
            if len(buf) >= start + n:
                body = bytes(buf[start:start + n])
                del buf[:start + n]
                return json.loads(body)  # type: ignore[no-any-return]
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("no answer to initialize")
        data = os.read(fd, 65536)
        if not data:
            raise EOFError("the server closed stdout")
        buf += data


def vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def one_run(argv: list[str], ws: Path, env: dict[str, str], proxy: bool,
            runtime: Path) -> dict[str, Any]:
    """Spawn `argv`, time initialize, read the proxy's VmHWM, end with shutdown + exit."""
    init = frame(initialize(ws))
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ws, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    result: dict[str, Any] = {"ok": False}
    try:
        proc.stdin.write(init)
        proc.stdin.flush()
        fd, buf = proc.stdout.fileno(), bytearray()
        deadline = time.monotonic() + 30
        while True:
            msg = read_message(fd, buf, deadline)
            if msg.get("id") == 1 and "method" not in msg:
                break
            if "method" in msg and "id" in msg:  # a server request before the answer
                proc.stdin.write(frame({"jsonrpc": "2.0", "id": msg["id"], "result": None}))
                proc.stdin.flush()
        result["initialize_ms"] = (time.perf_counter() - t0) * 1000
        result["ok"] = "result" in msg
        if proxy:
            time.sleep(IDLE_S)  # not synchronisation: the idle period whose peak is measured
            result["proxy_hwm_mb"] = vm_hwm_mb(proc.pid)
            try:
                status = json.loads((runtime / "sessions" / f"{proc.pid}.json").read_text())
                result["proxy_saw_ms"] = status["handshake"]["initialize_ms"]
            except (OSError, ValueError, KeyError):
                result["proxy_saw_ms"] = None
        proc.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        proc.stdin.flush()
        while read_message(fd, buf, deadline).get("id") != 2:
            pass
        proc.stdin.write(frame({"jsonrpc": "2.0", "method": "exit"}))
        proc.stdin.close()
        result["clean_exit"] = proc.wait(10) == 0
    except (TimeoutError, EOFError, OSError, subprocess.TimeoutExpired) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        if not proc.stdin.closed:
            proc.stdin.close()
    return result


def version_runs(argvs: dict[str, list[str]], env: dict[str, str], reps: int,
                 cold: bool) -> dict[str, list[float]]:
    """`ARGV version` per candidate, `reps` times, interleaved (rotated); ms per run."""
    times: dict[str, list[float]] = {name: [] for name in argvs}
    names = list(argvs)
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            if cold:
                drop_page_cache()
            t0 = time.perf_counter()
            subprocess.run([*argvs[name], "version"], env=env, capture_output=True, check=True,
                           timeout=30)
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def drop_page_cache() -> None:
    """Write dirty pages, then drop clean ones: every file the run reads comes from disk."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def med(xs: list[float | None]) -> float | None:
    ys = [x for x in xs if x is not None]
    return statistics.median(ys) if ys else None


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gopls", default=os.environ.get("LSPGUARD_GOPLS") or shutil.which(
        "gopls") or str(Path.home() / "go" / "bin" / "gopls"))
    parser.add_argument("--workspace", type=Path, action="append",
                        help="Go module to open (repeatable; default: examples/hello)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--lspguard-path", type=Path,
                        help="import lspguard from this directory (a fixed copy, e.g. "
                             "`git archive HEAD lspguard | tar -x -C DIR`), not the venv's")
    parser.add_argument("--baseline-path", type=Path,
                        help="add candidate `baseline`: `lspguard run` imported from this "
                             "directory (e.g. `git worktree add DIR main`), in the same run")
    parser.add_argument("--cold", action="store_true",
                        help="drop the page cache before every run (root: a first start after "
                             "boot, or in a new container)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile the lspguard measured first")
    parser.add_argument("--version-reps", type=int, default=15,
                        help="`gopls version` runs per candidate (0: none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    names = ["direct", *[c for c in args.candidates.split(",") if c and c != "direct"]]
    if args.baseline_path:
        names.append("baseline")
    unknown = set(names) - {*CANDIDATES, "baseline"}
    if unknown:
        parser.error(f"unknown candidates: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="lspguard-startup-") as tmp_name:
        tmp = Path(tmp_name)
        runtime = tmp / "run"
        env = {**os.environ, "LSPGUARD_RUNTIME_DIR": str(runtime),
               "LSPGUARD_STATE_DIR": str(tmp / "state"),
               "LSPGUARD_CONFIG_DIR": str(tmp / "config")}
        env.setdefault("LSPGUARD_CONFIG", str(HERE / "lspguard-bench.toml"))
        env["LSPGUARD_GOPLS"] = args.gopls  # the shim's real gopls
        if args.lspguard_path:
            env["PYTHONPATH"] = str(args.lspguard_path.resolve())
        envs = {name: env for name in names}
        lspguards = [env]  # one environment per lspguard checkout measured
        if args.baseline_path:
            envs["baseline"] = {**env, "PYTHONPATH": str(args.baseline_path.resolve())}
            lspguards.append(envs["baseline"])
        if not args.no_compile:
            for compile_env in lspguards:
                subprocess.run([sys.executable, "-c", "import compileall, os, lspguard; "
                                "compileall.compile_dir(os.path.dirname(lspguard.__file__), "
                                "quiet=1)"], check=True, env=compile_env, cwd=tmp)
        shim_dir, script_dir = tmp / "shim", tmp / "script"
        for name, directory, extra in (("shim", shim_dir, []), ("script", script_dir,
                                                                 ["--script"])):
            if name in names:
                subprocess.run([sys.executable, "-m", "lspguard", "install-shim", *extra,
                                str(directory)], check=True, env=env, capture_output=True)
        argvs = {"direct": [args.gopls],
                 "lspguard": [sys.executable, "-m", "lspguard", "run", "--", args.gopls],
                 "shim": [str(shim_dir / "gopls")],
                 "script": [str(script_dir / "gopls")],
                 "baseline": [sys.executable, "-m", "lspguard", "run", "--", args.gopls]}
        workspaces = [Path(shutil.copytree(w, tmp / f"ws{i}" / w.name))
                      for i, w in enumerate(args.workspace or [SAMPLE])]
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            ws.name: {n: [] for n in names} for ws in workspaces}
        for rep in range(args.reps):
            for ws in workspaces:
                k = rep % len(names)
                for name in names[k:] + names[:k]:  # rotated: noise hits all alike
                    if args.cold:
                        drop_page_cache()
                    res = one_run(argvs[name], ws, envs[name], name != "direct", runtime)
                    runs[ws.name][name].append(res)
                    if not res["ok"]:
                        print(f"  {ws.name} {name}: FAILED {res.get('error')}", file=sys.stderr)
            print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)
        version_names = [n for n in names if n in ("direct", "shim", "script")]
        versions = version_runs({n: argvs[n] for n in version_names}, env, args.version_reps,
                                args.cold)

    print(f"\ninitialize round trip, spawn -> answer (median of {args.reps}; gopls {args.gopls})\n")
    print("| workspace | candidate | initialize ms | min ms | + vs direct ms | min + ms | target | "
          "proxy saw ms | lspguard before forwarding ms | proxy VmHWM MB | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summary: dict[str, dict[str, dict[str, float | None]]] = {}
    for ws_name, by_name in runs.items():
        direct = by_name["direct"]
        for name in names:
            rs = by_name[name]
            total = med([r.get("initialize_ms") for r in rs if r["ok"]])
            oks = [r["initialize_ms"] for r in rs if r["ok"]]
            least = min(oks) if oks else None
            added = med([r["initialize_ms"] - d["initialize_ms"] for r, d in zip(rs, direct, strict=True)
                         if r["ok"] and d["ok"]]) if name != "direct" else None
            direct_oks = [d["initialize_ms"] for d in direct if d["ok"]]
            least_added = (least - min(direct_oks) if least is not None and direct_oks
                           and name != "direct" else None)
            target = TARGET_ADDED_MS.get(name, DEFAULT_TARGET_MS)
            saw = med([r.get("proxy_saw_ms") for r in rs if r["ok"]])
            before = med([r["initialize_ms"] - r["proxy_saw_ms"] for r in rs
                          if r["ok"] and r.get("proxy_saw_ms") is not None])
            hwm = med([r.get("proxy_hwm_mb") for r in rs if r["ok"]])
            summary.setdefault(ws_name, {})[name] = {
                "initialize_ms": total, "added_ms": added, "min_ms": least,
                "min_added_ms": least_added, "target_added_ms": target, "proxy_saw_ms": saw,
                "before_forwarding_ms": before, "proxy_hwm_mb": hwm,
                "reps_ok": sum(1 for r in rs if r["ok"]),
                "clean_exit": all(r.get("clean_exit") for r in rs)}
            met_t = "-" if added is None else ("met" if added <= target else "MISSED")
            met_m = "-" if hwm is None else ("met" if hwm <= TARGET_HWM_MB else "MISSED")
            print(f"| {ws_name} | {name} | {fmt(total)} | {fmt(least)} | "
                  f"{'-' if added is None else format(added, '+.0f')} | "
                  f"{'-' if least_added is None else format(least_added, '+.0f')} | "
                  f"{met_t if name == 'direct' else f'<= +{target:.0f} {met_t}'} | "
                  f"{fmt(saw)} | {fmt(before)} | {fmt(hwm, '.1f')} | "
                  f"{'-' if hwm is None else f'<= {TARGET_HWM_MB:.0f} {met_m}'} |")
    print(f"\n`gopls version` (median and minimum of {args.version_reps}, interleaved)\n")
    print("| candidate | median ms | + vs direct ms | min ms | target |")
    print("|---|---|---|---|---|")
    for name, times in versions.items():
        added = (statistics.median([t - d for t, d in zip(times, versions["direct"],
                                                           strict=True)])
                 if name != "direct" else None)
        met = "-" if added is None else (
            f"<= +{TARGET_VERSION_MS:.0f} {'met' if added <= TARGET_VERSION_MS else 'MISSED'}"
            if name == "shim" else "-")
        summary.setdefault("gopls version", {})[name] = {
            "median_ms": statistics.median(times), "added_ms": added, "min_ms": min(times)}
        print(f"| {name} | {statistics.median(times):.1f} | "
              f"{'-' if added is None else format(added, '+.1f')} | {min(times):.1f} | {met} |")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "versions": versions,
                                         "summary": summary}, indent=2))
    failed = any(not r["ok"] for by in runs.values() for rs in by.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

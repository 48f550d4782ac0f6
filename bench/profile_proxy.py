#!/usr/bin/env python3
"""Profile a Python proxy (default: lspguard) under one client_bench workload.

    profile_proxy.py [--phases latency] [--tool cprofile|strace] [--top 25] [--out DIR]
                     [--module lspguard] [--] [CLIENT_BENCH_OPTIONS...]

cprofile: runs `{py} -m cProfile -o OUT -m MODULE run -- {py} echo_server.py` as the server side
of client_bench.py, then prints the proxy's functions by own time and by cumulative time.
cProfile slows Python calls several-fold, so read the shares, not the absolute times.
strace: runs the proxy under `strace -c` (syscall counts and times of the proxy's main thread).
Everything is kept in --out (default results/profile-<timestamp>/).

    .venv/bin/python bench/profile_proxy.py --phases latency
    .venv/bin/python bench/profile_proxy.py --phases large,notify -- --max-s 2
    .venv/bin/python bench/profile_proxy.py --tool strace --phases latency
"""
import argparse
import datetime
import json
import os
import pstats
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    argv = sys.argv[1:]
    client_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, client_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phases", default="latency", help="client_bench phases (comma list)")
    ap.add_argument("--tool", choices=("cprofile", "strace"), default="cprofile")
    ap.add_argument("--module", default="lspguard", help="python -m MODULE run -- SERVER")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", help="output directory")
    args = ap.parse_args(argv)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(HERE, "results", f"profile-{stamp}")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    for var, sub in (("LSPGUARD_STATE_DIR", "state"), ("LSPGUARD_RUNTIME_DIR", "run"),
                     ("LSPGUARD_CONFIG_DIR", "config")):
        env[var] = os.path.join(out, "lspguard-home", sub)
    env.setdefault("LSPGUARD_CONFIG", os.path.join(HERE, "lspguard-bench.toml"))
    server = [sys.executable, os.path.join(HERE, "echo_server.py")]
    tag = args.phases.replace(",", "+")
    if args.tool == "cprofile":
        prof = os.path.join(out, f"{args.module}-{tag}.prof")
        cmd = [sys.executable, "-m", "cProfile", "-o", prof, "-m", args.module, "run", "--", *server]
    else:
        prof = os.path.join(out, f"{args.module}-{tag}.strace")
        # No -f: only the proxy's main thread is counted, not the server it spawns.
        cmd = ["strace", "-c", "-o", prof, sys.executable, "-m", args.module, "run", "--", *server]
    result_json = os.path.join(out, f"client-{tag}.json")
    client = [sys.executable, os.path.join(HERE, "client_bench.py"), "--json-out", result_json,
              "--phases", args.phases, *client_args, "--", *cmd]
    print("$", " ".join(client), flush=True)
    rc = subprocess.run(client, env=env).returncode
    if rc != 0:
        sys.exit(f"client_bench failed (rc={rc}); see {result_json}")
    with open(result_json) as f:
        res = json.load(f)
    for name, acc in res["accounting"].items():
        print(f"[{name}] proxy CPU {acc['proxy_cpu_s']} s, wall {acc['wall_s']:.2f} s")
    if args.tool == "strace":
        with open(prof) as f:
            print(f.read())
        print("(main thread of the proxy only; strace itself slows every syscall)")
        return
    stats = pstats.Stats(prof)
    stats.strip_dirs()
    with open(os.path.join(out, f"{args.module}-{tag}.txt"), "w") as f:
        for key in ("tottime", "cumulative"):
            pstats.Stats(prof, stream=f).sort_stats(key).print_stats(60)
    print(f"\n=== by own time (tottime), top {args.top} ===")
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"\n=== by cumulative time, top {args.top} ===")
    stats.sort_stats("cumulative").print_stats(args.top)
    print(f"profile: {prof}")


if __name__ == "__main__":
    main()

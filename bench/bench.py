#!/usr/bin/env python3
"""Run client_bench.py against several proxy candidates, interleaved, and summarise.

    bench.py [--reps 3] [--candidates a,b,...] [--proxy NAME=TEMPLATE ...]
             [--quick] [--out DIR] [-- CLIENT_BENCH_OPTIONS...]

A candidate is a command-line template. The token {server} is replaced by the
server's argv (several arguments); without it the server argv is appended.
Other placeholders: {py} (this Python), {here} (this directory), {server_str}
(the server argv joined into one shell-quoted string, e.g. for socat EXEC:),
{dead_port} (a localhost TCP port nobody listens on). If neither {server} nor
{server_str} appears, the server argv is appended.

    bench.py --proxy 'mine=./myproxy --stdio --'     # adds a candidate
    bench.py --candidates direct,relay_raw --proxy 'mine=./myproxy --stdio -- {server}'

`lspguard` is a built-in candidate (`{py} -m lspguard run -- {server}`: the package as installed
in the Python that runs this script). Its state, runtime and config dirs are pointed into the
results directory, and LSPGUARD_CONFIG at bench/lspguard-bench.toml (built-in defaults) unless
LSPGUARD_CONFIG is already set, so runs neither read nor litter the user's lspguard files.
After the tables, the targets for --target (default: lspguard) are checked against direct and
socat of the same run.

Every repetition runs every candidate once (order rotated per repetition);
"direct" is always included and is the baseline. Reported numbers are the
median over repetitions; deltas and ratios are paired within a repetition
(candidate vs the direct run of the same repetition), then the median is taken.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILTIN = {
    "direct": "{server}",
    "socat": "socat -b 65536 - EXEC:{server_str},pipes",
    "relay_raw": "{py} {here}/relay_raw.py -- {server}",
    "relay_raw_256k": "{py} {here}/relay_raw.py --read-size 262144 -- {server}",
    "relay_raw_uvloop": "{py} {here}/relay_raw.py --uvloop -- {server}",
    "relay_raw_uvloop_sock": "{py} {here}/relay_raw.py --uvloop --socketpair -- {server}",
    "relay_raw_uvloop_pipe1m": "{py} {here}/relay_raw.py --uvloop --pipe-size 1048576 -- {server}",
    "parse_json": "{py} {here}/relay_parse.py --decoder json -- {server}",
    "parse_json_reenc": "{py} {here}/relay_parse.py --decoder json --reencode -- {server}",
    "parse_orjson": "{py} {here}/relay_parse.py --decoder orjson -- {server}",
    "parse_msgspec_env": "{py} {here}/relay_parse.py --decoder msgspec-envelope -- {server}",
    "parse_msgspec_reenc": "{py} {here}/relay_parse.py --decoder msgspec --reencode -- {server}",
    "lsp_devtools": "{bindir}/lsp-devtools agent -p {dead_port} -- {server}",
    "lspguard": "{py} -m lspguard run -- {server}",
    "lspguard_script": "{bindir}/lspguard run -- {server}",  # the console script (same code)
    # Attribution (lspguard_ablate.py): lspguard's process with less per-message work.
    "lspguard_relay": "{py} {here}/lspguard_ablate.py --mode relay -- {server}",
    "lspguard_frames": "{py} {here}/lspguard_ablate.py --mode frames -- {server}",
}
# socat is dropped from the default set when it is not installed.
DEFAULT = ["direct", "socat", "relay_raw", "relay_raw_uvloop", "lspguard"]
QUICK_ARGS = ["--n-latency", "1000", "--small-msgs", "20000", "--large-msgs", "100",
              "--max-s", "1", "--notify-reps", "1", "--notify-size", "2MiB", "--notify-max-s", "5",
              "--typing-rounds", "500"]
# Targets for the proxy under test (--target), on the machine the run is on.
TARGETS = {
    "p50_vs_socat": 1.0,     # added p50 latency <= 1.0 x socat's added p50
    "p99_vs_socat": 1.5,     # added p99 latency <= 1.5 x socat's added p99
    "large_vs_direct": 0.75,  # large-message throughput >= 0.75 x direct
    "notify_added_ms": 20.0,  # the ~10 MiB didOpen adds <= 20 ms vs direct
    "proxy_rss_mb": 30.0,    # proxy RSS idle <= 30 MB: its VmHWM (peak RSS) after initialize
}


def dead_port():
    with socket.socket() as s:  # bound then closed: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expand(template, server):
    subst = {"py": sys.executable, "here": HERE, "bindir": os.path.dirname(sys.executable),
             "server_str": shlex.join(server), "dead_port": str(dead_port())}
    out, seen = [], False
    for tok in shlex.split(template):
        if tok == "{server}":
            out.extend(server)
            seen = True
        else:
            seen = seen or "{server_str}" in tok
            for k, v in subst.items():
                tok = tok.replace("{" + k + "}", v)
            out.append(tok)
    return out if seen else out + list(server)


def run_one(cmd, client_args, server_match, timeout, env=None, cwd=None):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        argv = [sys.executable, os.path.join(HERE, "client_bench.py"), "-q", "--json-out", path,
                "--server-match", server_match, *client_args, "--", *cmd]
        try:
            p = subprocess.run(argv, timeout=timeout, capture_output=True, text=True, env=env, cwd=cwd)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"client_bench timed out after {timeout}s", "cmd": cmd}
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"ok": False, "cmd": cmd, "error": f"no result (rc={p.returncode}): {p.stderr[-1500:]}"}
    finally:
        os.unlink(path)


# ------------------------------------------------------------------ summary

def get(res, *path):
    for k in path:
        if not isinstance(res, dict) or k not in res:
            return None
        res = res[k]
    return res


def derived(res):
    """Flat metrics of one client_bench result."""
    p, a = res.get("phases", {}), res.get("accounting", {})
    m = {
        "p50_us": get(p, "latency", "p50_us"), "p90_us": get(p, "latency", "p90_us"),
        "p99_us": get(p, "latency", "p99_us"), "max_us": get(p, "latency", "max_us"),
        "small_MBps": get(p, "small", "payload_MBps"), "small_msgps": get(p, "small", "msgs_per_s"),
        "large_MBps": get(p, "large", "payload_MBps"), "large_msgps": get(p, "large", "msgs_per_s"),
        "notify_ms": get(p, "notify", "median_ms"),
        "typing_p50_us": get(p, "typing", "p50_us"), "typing_p90_us": get(p, "typing", "p90_us"),
        "typing_p99_us": get(p, "typing", "p99_us"), "typing_max_us": get(p, "typing", "max_us"),
        "initialize_ms": get(res, "initialize_ms"),
        "proxy_rss_mb": get(res, "peak_rss_mb", "proxy"), "tree_rss_mb": get(res, "peak_rss_mb", "tree"),
        "proxy_idle_hwm_mb": get(res, "peak_rss_mb_after_init", "proxy"),
        "proxy_idle_rss_mb": get(res, "rss_mb_after_init", "proxy"),
        "proxy_cpu_s": round(sum(x["proxy_cpu_s"] for x in a.values()), 2) if a else None,
        "foreign_cpu_s": round(sum(x["foreign_cpu_s"] for x in a.values()), 2) if a else None,
        "clean_exit": get(res, "shutdown", "clean"),
    }
    # Proxy CPU per unit of work (robust to scheduling noise, unlike wall time).
    if "latency" in p and "latency" in a:
        n = p["latency"]["n"] + p["latency"].get("warmup", 0)
        m["cpu_us_per_rtt"] = a["latency"]["proxy_cpu_s"] / n * 1e6
        if a["latency"].get("proxy_sys_s") is not None and a["latency"]["proxy_cpu_s"] > 0:
            m["sys_us_per_rtt"] = a["latency"]["proxy_sys_s"] / n * 1e6  # kernel part (10 ms ticks)
    if "small" in p and "small" in a:
        m["cpu_us_per_small"] = a["small"]["proxy_cpu_s"] / p["small"]["msgs"] * 1e6
    if "large" in p and "large" in a:
        mib = p["large"]["msgs"] * p["large"]["size"] / (1 << 20)
        m["cpu_ms_per_MiB_down"] = a["large"]["proxy_cpu_s"] / mib * 1e3
    if "notify" in p and "notify" in a:
        mib = p["notify"]["reps"] * p["notify"]["body_bytes"] / (1 << 20)
        m["cpu_ms_per_MiB_up"] = a["notify"]["proxy_cpu_s"] / mib * 1e3
    if "typing" in p and "typing" in a:  # includes the one ~150 KB didOpen of the phase
        m["cpu_us_per_keystroke"] = a["typing"]["proxy_cpu_s"] / (p["typing"]["n"] + p["typing"]["warmup"]) * 1e6
    return m


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(runs, names):
    """runs: list (per rep) of {name: result}. Returns {name: summary dict}."""
    out = {}
    for name in names:
        per_rep = [(derived(r[name]), derived(r["direct"])) for r in runs
                   if r.get(name, {}).get("ok") and r.get("direct", {}).get("ok")]
        mine = [c for c, _ in per_rep]
        s = {k: med([c.get(k) for c in mine]) for k in (mine[0] if mine else {})
             if k != "clean_exit"}
        s["reps_ok"] = len(mine)
        s["reps_failed"] = sum(1 for r in runs if name in r and not r[name].get("ok"))
        s["clean_exit"] = all(c["clean_exit"] for c in mine) if mine else None
        for k in ("p50_us", "p99_us", "notify_ms", "typing_p50_us", "typing_p99_us"):
            s[f"{k}_added"] = med([c[k] - d[k] for c, d in per_rep if c[k] is not None and d[k] is not None])
        for k in ("small_MBps", "large_MBps", "p50_us", "typing_p50_us"):
            s[f"{k}_ratio"] = med([c[k] / d[k] for c, d in per_rep if c[k] and d[k]])
        out[name] = s
    return out


def fmt(x, spec=".0f", signed=False):
    if x is None:
        return "-"
    return format(x, ("+" if signed else "") + spec)


def tables(summary):
    h1 = ("| candidate | p50 µs | +p50 µs | p99 µs | +p99 µs | small MB/s (×direct) | "
          "large MB/s (×direct) | 10MiB notify ms (+) | proxy peak RSS MB | proxy CPU s | clean exit |")
    rows = [h1, "|" + "---|" * (h1.count("|") - 1)]
    for name, s in summary.items():
        rows.append(
            f"| {name} | {fmt(s.get('p50_us'))} | {fmt(s.get('p50_us_added'), signed=True)} | "
            f"{fmt(s.get('p99_us'))} | {fmt(s.get('p99_us_added'), signed=True)} | "
            f"{fmt(s.get('small_MBps'), '.2f')} ({fmt(s.get('small_MBps_ratio'), '.2f')}) | "
            f"{fmt(s.get('large_MBps'), '.0f')} ({fmt(s.get('large_MBps_ratio'), '.2f')}) | "
            f"{fmt(s.get('notify_ms'))} ({fmt(s.get('notify_ms_added'), signed=True)}) | "
            f"{fmt(s.get('proxy_rss_mb'), '.1f')} | {fmt(s.get('proxy_cpu_s'), '.2f')} | "
            f"{'yes' if s.get('clean_exit') else 'no'}"
            f"{' ({} failed)'.format(s['reps_failed']) if s.get('reps_failed') else ''} |")
    h2 = ("| candidate | proxy CPU µs/round trip (kernel part) | µs/keystroke | µs/small msg | ms/MiB server→client | "
          "ms/MiB client→server | foreign CPU s (noise) |")
    rows += ["", h2, "|" + "---|" * (h2.count("|") - 1)]
    for name, s in summary.items():
        rows.append(f"| {name} | {fmt(s.get('cpu_us_per_rtt'))} ({fmt(s.get('sys_us_per_rtt'))}) | "
                    f"{fmt(s.get('cpu_us_per_keystroke'))} | "
                    f"{fmt(s.get('cpu_us_per_small'))} | "
                    f"{fmt(s.get('cpu_ms_per_MiB_down'), '.2f')} | {fmt(s.get('cpu_ms_per_MiB_up'), '.2f')} | "
                    f"{fmt(s.get('foreign_cpu_s'), '.2f')} |")
    h3 = ("| candidate | typing: completion p50 µs | +p50 µs | p90 µs | p99 µs | +p99 µs | max µs | "
          "p50 ×direct | initialize ms | proxy RSS MB after initialize (VmRSS / VmHWM) |")
    rows += ["", h3, "|" + "---|" * (h3.count("|") - 1)]
    for name, s in summary.items():
        rows.append(f"| {name} | {fmt(s.get('typing_p50_us'))} | {fmt(s.get('typing_p50_us_added'), signed=True)} | "
                    f"{fmt(s.get('typing_p90_us'))} | {fmt(s.get('typing_p99_us'))} | "
                    f"{fmt(s.get('typing_p99_us_added'), signed=True)} | {fmt(s.get('typing_max_us'))} | "
                    f"{fmt(s.get('typing_p50_us_ratio'), '.2f')} | {fmt(s.get('initialize_ms'))} | "
                    f"{fmt(s.get('proxy_idle_rss_mb'), '.1f')} / {fmt(s.get('proxy_idle_hwm_mb'), '.1f')} |")
    return "\n".join(rows)


def ratio(a, b):
    return a / b if a is not None and b else None


def vs_anchor(summary, anchor):
    """Each candidate against `anchor` (medians of the same run): what it adds, as a multiple
    of what the anchor adds over direct, and its proxy CPU per unit of work as a multiple."""
    a = summary.get(anchor)
    if a is None:
        return []
    keys = [("p50_us_added", "+p50"), ("p99_us_added", "+p99"), ("typing_p50_us_added", "typing +p50"),
            ("typing_p99_us_added", "typing +p99"), ("notify_ms_added", "notify +ms"),
            ("large_MBps", "large MB/s"), ("cpu_us_per_rtt", "CPU/round trip"),
            ("cpu_us_per_keystroke", "CPU/keystroke"), ("cpu_us_per_small", "CPU/small msg"),
            ("cpu_ms_per_MiB_down", "CPU/MiB s→c"), ("cpu_ms_per_MiB_up", "CPU/MiB c→s")]
    head = f"| × {anchor} (same run) | " + " | ".join(label for _, label in keys) + " |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, s in summary.items():
        if name == "direct":
            continue
        # A ratio to a delta the anchor did not add (≤ 0, i.e. noise) means nothing: "-".
        rows.append(f"| {name} | " + " | ".join(
            fmt(ratio(s.get(k), a.get(k)) if (a.get(k) or 0) > 0 else None, ".2f") for k, _ in keys) + " |")
    return rows


def check_targets(summary, target, anchor="socat"):
    """Evaluate TARGETS for `target` against direct (paired) and `anchor` (same run).

    Returns (rows, verdicts): markdown rows and {name: True/False/None}.
    """
    t, a = summary.get(target), summary.get(anchor)
    if t is None:
        return [], {}
    a = a or {}
    checks = [
        ("p50_vs_socat", f"added p50 latency ≤ {TARGETS['p50_vs_socat']}× {anchor}'s",
         t.get("p50_us_added"), a.get("p50_us_added"), "µs", lambda r: r <= TARGETS["p50_vs_socat"]),
        ("p99_vs_socat", f"added p99 latency ≤ {TARGETS['p99_vs_socat']}× {anchor}'s",
         t.get("p99_us_added"), a.get("p99_us_added"), "µs", lambda r: r <= TARGETS["p99_vs_socat"]),
    ]
    rows = [f"| target ({target}) | {target} | {anchor} | ratio | met? |", "|---|---|---|---|---|"]
    verdicts = {}
    for key, label, mine, theirs, unit, ok in checks:
        r = ratio(mine, theirs)
        if mine is not None and theirs is not None and theirs <= 0:
            # The anchor added nothing measurable (noise): no ratio, no verdict.
            verdict, rtxt = None, f"n/a ({anchor} ≤ 0: noise, rerun)"
        else:
            verdict, rtxt = (None if r is None else ok(r)), fmt(r, ".2f")
        verdicts[key] = verdict
        rows.append(f"| {label} | {fmt(mine, '+.0f')} {unit} | {fmt(theirs, '+.0f')} {unit} | {rtxt} | "
                    f"{_yes(verdict)} |")
    lr = t.get("large_MBps_ratio")
    verdicts["large_vs_direct"] = None if lr is None else lr >= TARGETS["large_vs_direct"]
    rows.append(f"| large-message throughput ≥ {TARGETS['large_vs_direct']}× direct | "
                f"{fmt(t.get('large_MBps'))} MB/s | {fmt(a.get('large_MBps'))} MB/s | "
                f"{fmt(lr, '.2f')}× direct ({fmt(a.get('large_MBps_ratio'), '.2f')} for {anchor}) | "
                f"{_yes(verdicts['large_vs_direct'])} |")
    na = t.get("notify_ms_added")
    verdicts["notify_added_ms"] = None if na is None else na <= TARGETS["notify_added_ms"]
    rows.append(f"| ~10 MiB didOpen adds ≤ {TARGETS['notify_added_ms']:.0f} ms vs direct | "
                f"{fmt(na, '+.1f')} ms | {fmt(a.get('notify_ms_added'), '+.1f')} ms | - | "
                f"{_yes(verdicts['notify_added_ms'])} |")
    idle = t.get("proxy_idle_hwm_mb")
    verdicts["proxy_rss_mb"] = None if idle is None else idle <= TARGETS["proxy_rss_mb"]
    rows.append(f"| proxy RSS idle ≤ {TARGETS['proxy_rss_mb']:.0f} MB: peak RSS (VmHWM) after initialize + 0.2 s | "
                f"{fmt(idle, '.1f')} MB | {fmt(a.get('proxy_idle_hwm_mb'), '.1f')} MB | - | "
                f"{_yes(verdicts['proxy_rss_mb'])} |")
    rss = t.get("proxy_rss_mb")
    rows.append(f"| (info) proxy peak RSS (VmHWM) over the whole run, incl. 1 MiB and 10 MiB messages | "
                f"{fmt(rss, '.1f')} MB | {fmt(a.get('proxy_rss_mb'), '.1f')} MB | - | - |")
    rows.append(f"| (info) typing: added completion p50 / p99 | {fmt(t.get('typing_p50_us_added'), '+.0f')} / "
                f"{fmt(t.get('typing_p99_us_added'), '+.0f')} µs | {fmt(a.get('typing_p50_us_added'), '+.0f')} / "
                f"{fmt(a.get('typing_p99_us_added'), '+.0f')} µs | "
                f"{fmt(_pos_ratio(t.get('typing_p50_us_added'), a.get('typing_p50_us_added')), '.2f')} / "
                f"{fmt(_pos_ratio(t.get('typing_p99_us_added'), a.get('typing_p99_us_added')), '.2f')} | - |")
    return rows, verdicts


def _pos_ratio(a, b):
    return ratio(a, b) if (b or 0) > 0 else None


def _yes(v):
    return "-" if v is None else ("yes" if v else "**no**")


def code_state(lspguard_path=None):
    """Which lspguard code is measured: git HEAD, dirty files, and a hash of lspguard/*.py
    (other people may edit it during a run: compared at the start and the end)."""
    repo = os.path.dirname(HERE)
    pkg = os.path.join(lspguard_path or repo, "lspguard")
    h = hashlib.sha1()
    for root, dirs, files in sorted(os.walk(pkg)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(root, name), "rb") as f:
                    h.update(name.encode() + b"\0" + f.read())

    def git(*args):
        try:
            return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    dirty = git("status", "--porcelain", "--", "lspguard")
    if lspguard_path:
        return {"lspguard_path": lspguard_path, "lspguard_py_sha1": h.hexdigest()[:12],
                "repo_git_head": git("rev-parse", "--short", "HEAD")}
    return {"git_head": git("rev-parse", "--short", "HEAD"), "lspguard_py_sha1": h.hexdigest()[:12],
            "lspguard_dirty": dirty.splitlines() if dirty else []}


def env_info():
    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0:2]
        except (OSError, subprocess.SubprocessError, IndexError):
            return None
    pkgs = {}
    for mod in ("orjson", "msgspec", "uvloop", "lsp_devtools", "lspguard", "anyio"):
        try:
            from importlib.metadata import version
            pkgs[mod] = version(mod.replace("_", "-"))
        except Exception:
            pkgs[mod] = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        cpu = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "nproc": os.cpu_count(),
            "cpu": cpu,
            "loadavg": os.getloadavg(), "socat": ver(["socat", "-V"]), "packages": pkgs}


def main():
    argv = sys.argv[1:]
    client_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, client_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--candidates", help=f"comma list from: {', '.join(BUILTIN)} (default: {','.join(DEFAULT)})")
    ap.add_argument("--proxy", action="append", default=[], metavar="NAME=TEMPLATE",
                    help="extra candidate (repeatable)")
    ap.add_argument("--server", default=None,
                    help="server command (default: this Python + echo_server.py)")
    ap.add_argument("--server-match", default="echo_server.py",
                    help="cmdline substring that identifies the server process")
    ap.add_argument("--quick", action="store_true", help="1 rep, small workloads: a smoke test")
    ap.add_argument("--timeout", type=float, default=600, help="per client_bench run")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    ap.add_argument("--target", default="lspguard",
                    help="candidate whose targets are checked against direct and socat")
    ap.add_argument("--lspguard-path", metavar="DIR",
                    help="benchmark the lspguard package in DIR/lspguard (put first on PYTHONPATH) "
                         "instead of the working tree, e.g. a `git archive HEAD lspguard` export")
    ap.add_argument("--resummarise", metavar="RESULTS_DIR",
                    help="do not run: rebuild summary.md/summary.json of RESULTS_DIR from its runs.json")
    args = ap.parse_args(argv)
    if args.resummarise:
        resummarise(args.resummarise, args.target)
        return

    server = shlex.split(args.server) if args.server else [sys.executable, os.path.join(HERE, "echo_server.py")]
    templates = dict(BUILTIN)
    names = args.candidates.split(",") if args.candidates else list(DEFAULT)
    if not args.candidates and shutil.which("socat") is None:
        print("socat not found: not in the default candidates (apt-get install -y socat)", file=sys.stderr)
        names.remove("socat")
    for spec in args.proxy:
        name, sep, tmpl = spec.partition("=")
        if not sep:
            sys.exit(f"--proxy wants NAME=TEMPLATE, got {spec!r}")
        templates[name] = tmpl
        names.append(name)
    names = ["direct"] + [n for n in dict.fromkeys(names) if n != "direct"]
    for n in names:
        if n not in templates:
            sys.exit(f"unknown candidate {n!r}")
    if args.quick:
        args.reps = 1
        client_args = QUICK_ARGS + client_args

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(args.out, stamp)
    os.makedirs(outdir, exist_ok=True)
    env = dict(os.environ)
    home = os.path.join(outdir, "lspguard-home")  # the lspguard candidates' files (logs, status)
    for var, sub in (("LSPGUARD_STATE_DIR", "state"), ("LSPGUARD_RUNTIME_DIR", "run"),
                     ("LSPGUARD_CONFIG_DIR", "config")):
        env[var] = os.path.join(home, sub)
    env.setdefault("LSPGUARD_CONFIG", os.path.join(HERE, "lspguard-bench.toml"))
    if args.lspguard_path:
        args.lspguard_path = os.path.abspath(args.lspguard_path)
        if not os.path.isfile(os.path.join(args.lspguard_path, "lspguard", "__init__.py")):
            sys.exit(f"--lspguard-path: no lspguard/__init__.py in {args.lspguard_path}")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.lspguard_path, env.get("PYTHONPATH")]))
    meta = {"env": env_info(), "server": server, "client_args": client_args, "reps": args.reps,
            "argv": sys.argv, "lspguard_config": env["LSPGUARD_CONFIG"], "code": code_state(args.lspguard_path),
            "templates": {n: templates[n] for n in names}}
    runs = []
    t_start = time.time()
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        results = {}
        for name in order:
            cmd = expand(templates[name], server)
            t0 = time.time()
            # cwd: the results dir, so `python -m lspguard` finds the installed (or
            # --lspguard-path) package, not whatever the caller's directory holds.
            res = run_one(cmd, client_args, args.server_match, args.timeout, env, cwd=outdir)
            res["candidate"], res["rep"] = name, rep
            results[name] = res
            d = derived(res) if res.get("ok") else {}
            print(f"[rep {rep + 1}/{args.reps}] {name:<20} {time.time() - t0:6.1f}s "
                  + (f"p50={fmt(d.get('p50_us'))}us typing p50={fmt(d.get('typing_p50_us'))}us "
                     f"small={fmt(d.get('small_MBps'), '.2f')}MB/s "
                     f"large={fmt(d.get('large_MBps'))}MB/s notify={fmt(d.get('notify_ms'))}ms "
                     f"rss={fmt(d.get('proxy_rss_mb'), '.1f')}MB foreign={fmt(d.get('foreign_cpu_s'), '.2f')}s"
                     if res.get("ok") else f"FAILED: {res.get('error')}"), flush=True)
        runs.append(results)
        meta["elapsed_s"] = round(time.time() - t_start, 1)
        meta["loadavg_end"] = os.getloadavg()
        meta["code_end"] = code_state(args.lspguard_path)
        with open(os.path.join(outdir, "runs.json"), "w") as f:
            json.dump({"meta": meta, "runs": runs}, f, indent=1)
    report(outdir, meta, runs, names, args.target)


def report(outdir, meta, runs, names, target):
    """Summarise `runs` into outdir/summary.{json,md} and print the tables."""
    summary = summarise(runs, names)
    code, code_end = meta.get("code") or {}, meta.get("code_end") or {}
    changed = code.get("lspguard_py_sha1") != code_end.get("lspguard_py_sha1")
    text = (f"{len(names)} candidates x {len(runs)} reps, {meta.get('elapsed_s')}s, "
            f"{meta['env']['nproc']} CPUs, loadavg {meta['env']['loadavg']} at start, "
            f"{meta.get('loadavg_end')} at end; lspguard code: "
            f"{code.get('lspguard_path') or 'working tree'}, git {code.get('git_head') or code.get('repo_git_head')}, "
            f"lspguard/*.py sha1 {code.get('lspguard_py_sha1')}"
            f"{' (uncommitted changes)' if code.get('lspguard_dirty') else ''}"
            f"{' -- WARNING: lspguard/ changed during the run' if code and changed else ''}"
            "\n\n" + tables(summary))
    socat_rows = vs_anchor(summary, "socat")
    if socat_rows:
        text += "\n\n" + "\n".join(socat_rows)
    target_rows, verdicts = check_targets(summary, target)
    if target_rows:
        text += "\n\n" + "\n".join(target_rows)
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump({"meta": meta, "summary": summary, "targets": verdicts}, f, indent=1)
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)
    print(f"\nresults: {outdir}")


def resummarise(path, target):
    """Rebuild the summary of an earlier run from its runs.json (e.g. after changing this file)."""
    outdir = path if os.path.isdir(path) else os.path.dirname(path)
    with open(os.path.join(outdir, "runs.json")) as f:
        data = json.load(f)
    meta, runs = data["meta"], data["runs"]
    names = list(meta["templates"])
    report(outdir, meta, runs, names, target)


if __name__ == "__main__":
    main()

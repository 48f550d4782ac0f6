#!/usr/bin/env python3
"""LSP-over-stdio benchmark client.

    client_bench.py [options] -- CMD [ARGS...]

CMD is the "server side": the echo server itself, or a proxy wrapping it.
Phases (each can be skipped with --phases):
  latency  N sequential tiny requests, per-request round trip (us percentiles)
  small    pipelined requests (--window in flight), --small-size payload responses
  large    same with --large-size payload responses
  notify   a --notify-size didOpen notification followed by a request: time to response
  typing   didOpen of a --typing-lines Go-like file, then per keystroke one incremental
           didChange (a one-character insert) and a textDocument/completion request:
           keystroke -> completion response round trip (us percentiles)
Around every phase the server-side process tree is read from /proc: CPU seconds
of "proxy" processes (everything in the tree that is not the server, see
--server-match), of the server, of this client, and of everything else on the
machine ("foreign", to spot noise). Per-process CPU comes from the threads'
schedstat (ns) when available, else from stat (10 ms ticks). Peak RSS is each
process's VmHWM.
Writes a JSON result (--json-out) and prints a human table.
"""
import argparse
import contextlib
import json
import os
import re
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20
SMALL_BODY = 65536  # bodies up to this size are fully JSON-decoded by the client
ID_RE = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')


def parse_size(text):
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1000, "mb": 10**6, "b": 1}
    t = text.strip().lower()
    for suffix, mult in units.items():
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * mult)
    return int(t)


def frame(body):
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def echo_request(rid, size):
    return frame(b'{"jsonrpc":"2.0","id":%d,"method":"bench/echo","params":{"size":%d}}' % (rid, size))


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, round(p / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


# ---------------------------------------------------------------- /proc accounting

def _read(path):
    with open(path, "rb") as f:
        return f.read()


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                data = _read(f"/proc/{name}/stat")
            except OSError:
                continue
            ppid = int(data[data.rindex(b")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(name))
    return kids


def proc_info(pid):
    """cpu seconds, VmHWM/VmRSS kB and cmdline of one process, or None if gone."""
    try:
        stat = _read(f"/proc/{pid}/stat")
        status = _read(f"/proc/{pid}/status")
        cmd = _read(f"/proc/{pid}/cmdline").rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    f = stat[stat.rindex(b")") + 2:].split()
    cpu_s = (int(f[11]) + int(f[12])) / CLK_TCK  # utime + stime, in 10 ms ticks
    precise = task_cpu_s(pid)
    # schedstat is ns-accurate but only counts live threads; stat also counts exited ones.
    if precise is not None and precise > cpu_s - 2 / CLK_TCK:
        cpu_s = precise
    info = {"cpu_s": cpu_s, "sys_s": int(f[12]) / CLK_TCK, "cmd": cmd, "hwm_kb": 0, "rss_kb": 0}
    for line in status.splitlines():
        if line.startswith(b"VmHWM:"):
            info["hwm_kb"] = int(line.split()[1])
        elif line.startswith(b"VmRSS:"):
            info["rss_kb"] = int(line.split()[1])
    return info


def task_cpu_s(pid):
    """CPU seconds of the live threads of `pid` from /proc/PID/task/*/schedstat (ns), or None."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            total += int(_read(f"/proc/{pid}/task/{tid}/schedstat").split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        return None


def system_busy_s():
    fields = [int(x) for x in _read("/proc/stat").split(b"\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Tree:
    """The spawned process and its descendants, split into proxy and server.

    Server processes: those whose cmdline contains `match` and that have no
    descendant whose cmdline also contains it (a proxy's own argv usually
    contains the server command), plus their descendants. Everything else
    (socat, a relay, a shell wrapper...) is the proxy side.
    """

    def __init__(self, root, match):
        self.root, self.match = root, match

    def snapshot(self):
        kids = children_map()
        order, parent = [self.root], {}
        for pid in order:  # BFS
            for c in kids.get(pid, ()):
                parent[c] = pid
                order.append(c)
        infos = {pid: i for pid in order if (i := proc_info(pid)) is not None}
        matching = {pid for pid, i in infos.items() if self.match in i["cmd"]}
        server = set()
        for pid in matching:
            if not any(self._is_ancestor(pid, m, parent) for m in matching if m != pid):
                server.add(pid)
        for pid in order:  # descendants of server processes are server too
            if parent.get(pid) in server:
                server.add(pid)
        for pid, i in infos.items():
            i["role"] = "server" if pid in server else "proxy"
        return {"t": time.perf_counter(), "procs": infos, "client_cpu_s": self_cpu_s(),
                "system_busy_s": system_busy_s()}

    @staticmethod
    def _is_ancestor(anc, pid, parent):
        while pid in parent:
            pid = parent[pid]
            if pid == anc:
                return True
        return False


def cpu_by_role(before, after, key="cpu_s"):
    out = {"proxy": 0.0, "server": 0.0}
    for pid, i in after["procs"].items():
        prev = before["procs"].get(pid)
        out[i["role"]] += i[key] - (prev[key] if prev else 0.0)
    return out


def phase_accounting(before, after):
    cpu = cpu_by_role(before, after)
    client = after["client_cpu_s"] - before["client_cpu_s"]
    busy = after["system_busy_s"] - before["system_busy_s"]
    rss = {r: sum(i["rss_kb"] for i in after["procs"].values() if i["role"] == r) / 1024
           for r in ("proxy", "server")}
    return {
        "wall_s": after["t"] - before["t"],
        "proxy_cpu_s": round(cpu["proxy"], 3),
        "proxy_sys_s": round(cpu_by_role(before, after, "sys_s")["proxy"], 3),  # kernel part (ticks)
        "server_cpu_s": round(cpu["server"], 3),
        "client_cpu_s": round(client, 3),
        "foreign_cpu_s": round(max(0.0, busy - client - cpu["proxy"] - cpu["server"]), 3),
        "proxy_rss_mb_end": round(rss["proxy"], 1),
        "server_rss_mb_end": round(rss["server"], 1),
    }


# ---------------------------------------------------------------- connection

class ProtocolError(Exception):
    pass


class Conn:
    """Client end of a Content-Length framed JSON-RPC stream to a child process."""

    def __init__(self, cmd, stderr):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, bufsize=0, start_new_session=True)
        self.wfd, self.rfd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.rbuf, self.wbuf = bytearray(), bytearray()
        self.pending = None  # (body_start, length) of a partially received frame
        self.chunk = memoryview(bytearray(256 * 1024))
        self.poller = select.poll()
        self.next_id = 0
        self.bytes_in = self.bytes_out = 0
        self.server_requests = self.server_notifications = 0
        self.stall_timeout = 60.0

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def set_blocking(self, flag):
        os.set_blocking(self.wfd, flag)
        os.set_blocking(self.rfd, flag)

    # -- raw I/O
    def read_some(self):
        """Read once. False if nothing available (non-blocking); EOFError at EOF."""
        try:
            n = os.readv(self.rfd, [self.chunk])
        except BlockingIOError:
            return False
        if n == 0:
            raise EOFError("server side closed its stdout")
        self.rbuf += self.chunk[:n]
        self.bytes_in += n
        return True

    def flush(self):
        while self.wbuf:
            try:
                n = os.write(self.wfd, self.wbuf)
            except BlockingIOError:
                return
            del self.wbuf[:n]  # O(1) in CPython (bytearray keeps a start offset)
            self.bytes_out += n

    def step(self, timeout_s):
        """Non-blocking mode: flush, wait for readiness, read all that is there."""
        self.flush()
        self.poller.register(self.rfd, select.POLLIN)
        if self.wbuf and not self.proc.stdin.closed:
            self.poller.register(self.wfd, select.POLLOUT)
        else:
            with contextlib.suppress(KeyError):
                self.poller.unregister(self.wfd)
        events = self.poller.poll(timeout_s * 1000)
        for fd, ev in events:
            if fd == self.rfd:
                while self.read_some():
                    pass
            elif fd == self.wfd:
                if ev & (select.POLLERR | select.POLLHUP):
                    raise EOFError("server side closed its stdin")
                self.flush()
        return bool(events)

    # -- framing
    def bodies(self):
        """Yield complete message bodies currently buffered."""
        buf, pos = self.rbuf, 0
        try:
            while True:
                if self.pending is None:
                    end = buf.find(b"\r\n\r\n", pos)
                    if end < 0:
                        return
                    length = None
                    for line in bytes(buf[pos:end]).split(b"\r\n"):
                        key, _, value = line.partition(b":")
                        if key.strip().lower() == b"content-length":
                            length = int(value)
                    if length is None:
                        raise ProtocolError(f"header without Content-Length: {bytes(buf[pos:end])!r}")
                    self.pending = (end + 4, length)
                start, length = self.pending
                if len(buf) < start + length:
                    return
                self.pending = None
                pos = start + length
                yield bytes(buf[start:pos])
        finally:
            if pos:
                del buf[:pos]
                if self.pending is not None:
                    self.pending = (self.pending[0] - pos, self.pending[1])

    def classify(self, body):
        """Return the id of a response to us, or None for other traffic
        (server->client requests are answered with a null result)."""
        if len(body) <= SMALL_BODY:
            msg = json.loads(body)
            if "method" in msg:
                if "id" in msg:
                    self.server_requests += 1
                    self.wbuf += frame(dumps({"jsonrpc": "2.0", "id": msg["id"], "result": None}))
                else:
                    self.server_notifications += 1
                return None
            if "error" in msg:
                raise ProtocolError(f"error response: {msg['error']}")
            return msg.get("id")
        # Large: only our echo responses are large; the id is near one end.
        m = ID_RE.search(body, 0, 256) or ID_RE.search(body, len(body) - 256)
        if m is None:
            raise ProtocolError(f"no id in large body {body[:120]!r}...")
        return json.loads(m.group(1))

    def wait_for(self, rid):
        """Non-blocking mode: pump until the response with id `rid` arrives."""
        last = time.perf_counter()
        while True:
            for body in self.bodies():
                if self.classify(body) == rid:
                    return
            if self.step(1.0):
                last = time.perf_counter()
            elif time.perf_counter() - last > self.stall_timeout:
                raise TimeoutError(f"no progress for {self.stall_timeout}s waiting for id {rid}")

    def call(self, method, params=None):
        rid = self.new_id()
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.wbuf += frame(dumps(msg))
        self.wait_for(rid)

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.wbuf += frame(dumps(msg))
        self.flush()


# ---------------------------------------------------------------- phases

def phase_latency(conn, n, warmup, size):
    """Sequential requests with blocking I/O: the least client overhead per round trip."""
    conn.set_blocking(True)
    samples = []
    try:
        for i in range(warmup + n):
            rid = conn.new_id()
            req = echo_request(rid, size)
            t0 = time.perf_counter_ns()
            view = memoryview(req)
            while view:
                view = view[os.write(conn.wfd, view):]
            done = False
            while not done:
                for body in conn.bodies():
                    if conn.classify(body) == rid:
                        done = True
                if conn.wbuf:  # answers to server->client requests
                    os.write(conn.wfd, conn.wbuf)
                    conn.wbuf.clear()
                if not done:
                    conn.read_some()
            if i >= warmup:
                samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        conn.set_blocking(False)
    s = sorted(samples)
    return {"n": n, "warmup": warmup, "size": size, "mean_us": round(statistics.fmean(s), 1),
            **{f"p{p}_us": round(percentile(s, p), 1) for p in (50, 90, 99)},
            "max_us": round(s[-1], 1)}


def phase_pipelined(conn, size, window, max_msgs, max_s):
    outstanding = set()
    sent = done = 0
    t0 = t_last = time.perf_counter()
    deadline = t0 + max_s
    last_progress = t0
    while True:
        issuing = sent < max_msgs and time.perf_counter() < deadline
        while issuing and len(outstanding) < window and sent < max_msgs:
            rid = conn.new_id()
            conn.wbuf += echo_request(rid, size)
            outstanding.add(rid)
            sent += 1
        if not outstanding:
            break
        if conn.step(1.0):
            last_progress = time.perf_counter()
        elif time.perf_counter() - last_progress > conn.stall_timeout:
            raise TimeoutError(f"pipelined: stalled with {len(outstanding)} outstanding")
        for body in conn.bodies():
            rid = conn.classify(body)
            if rid is not None:
                try:
                    outstanding.remove(rid)
                except KeyError:
                    raise ProtocolError(f"unexpected response id {rid!r}") from None
                if size > SMALL_BODY and len(body) < size:
                    raise ProtocolError(f"short response body: {len(body)} < {size}")
                done += 1
                t_last = time.perf_counter()
    elapsed = t_last - t0
    return {"size": size, "window": window, "msgs": done, "elapsed_s": round(elapsed, 4),
            "msgs_per_s": round(done / elapsed, 1),
            "payload_MBps": round(done * size / elapsed / 1e6, 2)}


def make_text(target_bytes):
    """Deterministic source-like text: quotes, backslashes, tabs, some non-ASCII."""
    lines, i, total = [], 0, 0
    while total < target_bytes:
        line = (f'\tdef func_{i}(self, x):  # TODO: handle "{i}" case \\ caf\u00e9\n'
                if i % 50 == 0 else
                f'    value_{i} = compute(x, "key_{i}", {i % 97}) + other.attribute_{i % 13}\n')
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines)


def phase_notify(conn, size, reps, max_s):
    text = make_text(size)
    times = []
    t_start = time.perf_counter()
    body_len = 0
    for k in range(reps):
        body = dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": "file:///bench/big.py", "languageId": "python",
                             "version": k + 1, "text": text}}})
        body_len = len(body)
        msg = frame(body)
        del body
        rid = conn.new_id()
        t0 = time.perf_counter()
        conn.wbuf += msg
        conn.wbuf += echo_request(rid, 0)
        del msg
        conn.wait_for(rid)
        times.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - t_start > max_s:
            break
    return {"body_bytes": body_len, "reps": len(times), "times_ms": [round(t, 1) for t in times],
            "median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
            "MBps": round(body_len / (statistics.median(times) / 1000) / 1e6, 1)}


GO_TYPED = "fmt.Println(values, err)"  # what the "user" types, one character per keystroke


def make_go_source(n_lines):
    """Deterministic Go-like source of `n_lines` lines, and the typing spots in it.

    Returns (text, spots): `spots` are the line numbers of lines holding a single tab inside
    function bodies, where typing starts at character 1. Only comments contain non-ASCII, so
    UTF-16 columns equal character columns on the typing lines.
    """
    lines = ["// Code generated for lspguard's benchmark. Not real code.", "",
             "package main", "", "import (", '\t"context"', '\t"fmt"', '\t"strings"', ")", ""]
    spots, i = [], 0
    while len(lines) < n_lines:
        lines += [
            f'// handler{i} handles case {i}: "quoted" \\ tab\there, caf\u00e9 \u2014 r\u00e9sum\u00e9',
            f"func handler{i}(ctx context.Context, req *Request{i % 7}) (string, error) {{",
            "\tif req == nil {",
            f'\t\treturn "", fmt.Errorf("handler{i}: nil request \\"%d\\"\\n", {i})',
            "\t}",
            f"\tvalues := make([]string, 0, {i % 64 + 1})",
            "\tfor j := 0; j < len(req.Items); j++ {",
            f"\t\tvalues = append(values, fmt.Sprint(req.Items[j]*{i % 13 + 1}))",
            "\t}",
        ]
        spots.append(len(lines))
        lines += ["\t", '\treturn strings.Join(values, ",\\t"), ctx.Err()', "}", ""]
        i += 1
    del lines[n_lines:]
    spots = [ln for ln in spots if ln < n_lines]
    return "\n".join(lines) + "\n", spots


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def phase_typing(conn, n_lines, rounds, warmup, max_s, per_line):
    """An editor session in miniature: open a file, then type into it with completion on.

    Per keystroke: one `textDocument/didChange` (incremental: a one-character insert with a
    range) and one `textDocument/completion` at the new cursor, written back to back as an
    editor does, then wait for the completion result. Timed from just before the didChange is
    written to the completion response (keystroke -> completion). Blocking I/O, like `latency`.
    After `per_line` characters the cursor moves to the next typing spot (another function).
    """
    text, spots = make_go_source(n_lines)
    uri = "file:///bench/typing/main.go"
    conn.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "go", "version": 1, "text": text}})
    conn.call("bench/echo", {"size": 0})  # the didOpen has gone through the whole chain
    doc_bytes = len(text.encode())
    del text
    version, spot, col = 1, 0, 1
    samples = []
    conn.set_blocking(True)
    t_start = time.perf_counter()
    try:
        for k in range(warmup + rounds):
            if k >= warmup and time.perf_counter() - t_start > max_s:
                break
            if col > per_line:
                spot, col = (spot + 1) % len(spots), 1
            line = spots[spot]
            ch = GO_TYPED[(col - 1) % len(GO_TYPED)]
            version += 1
            change = frame(dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": line, "character": col},
                                              "end": {"line": line, "character": col}},
                                    "text": ch}]}}))
            rid = conn.new_id()
            context = ({"triggerKind": 2, "triggerCharacter": "."} if ch == "." else
                       {"triggerKind": 1})
            completion = frame(dumps({"jsonrpc": "2.0", "id": rid, "method": "textDocument/completion",
                                      "params": {"textDocument": {"uri": uri},
                                                 "position": {"line": line, "character": col + 1},
                                                 "context": context}}))
            col += 1
            t0 = time.perf_counter_ns()
            write_all(conn.wfd, change)  # two writes, as vscode-jsonrpc sends two messages
            write_all(conn.wfd, completion)
            done = False
            while not done:
                for body in conn.bodies():
                    if conn.classify(body) == rid:
                        done = True
                if conn.wbuf:  # answers to server->client requests
                    write_all(conn.wfd, conn.wbuf)
                    conn.wbuf.clear()
                if not done:
                    conn.read_some()
            if k >= warmup:
                samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        conn.set_blocking(False)
    s = sorted(samples)
    return {"n": len(s), "warmup": warmup, "doc_lines": n_lines, "doc_bytes": doc_bytes,
            "elapsed_s": round(time.perf_counter() - t_start, 3),
            "mean_us": round(statistics.fmean(s), 1),
            **{f"p{p}_us": round(percentile(s, p), 1) for p in (50, 90, 99)},
            "max_us": round(s[-1], 1)}


# ---------------------------------------------------------------- driver

def alive(pid):
    """True unless the process is gone or a zombie."""
    try:
        stat = _read(f"/proc/{pid}/stat")
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] != b"Z"


def shutdown(conn, tree_snap, call_timeout_s, exit_timeout_s):
    """shutdown request, exit notification, close stdin; wait for the tree to go."""
    res = {}
    t0 = time.perf_counter()
    try:
        conn.stall_timeout = call_timeout_s
        conn.call("shutdown")
        conn.notify("exit")
        conn.set_blocking(True)
        conn.flush()
        conn.proc.stdin.close()
        res["shutdown_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        os.set_blocking(conn.rfd, False)
        deadline = time.perf_counter() + exit_timeout_s
        try:  # drain stdout until EOF so a chatty proxy cannot block on it
            while time.perf_counter() < deadline:
                conn.step(0.1)
                list(conn.bodies())
        except EOFError:
            pass
        res["exit_code"] = conn.proc.wait(timeout=max(0.01, deadline - time.perf_counter()))
        res["exit_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        res["clean"] = True
    except subprocess.TimeoutExpired:
        res["clean"] = False
        res["error"] = f"still running {exit_timeout_s}s after exit: killed"
        kill_tree(conn, tree_snap)
    except Exception as e:
        res["clean"] = False
        res["error"] = f"{type(e).__name__}: {e}"
        kill_tree(conn, tree_snap)
    # Server processes left behind by their proxy: give them a moment, then kill.
    left = [pid for pid in tree_snap["procs"] if pid != conn.proc.pid]
    grace = time.perf_counter() + 1.0
    while (left := [p for p in left if alive(p)]) and time.perf_counter() < grace:
        time.sleep(0.02)
    if left:
        res["clean"] = False
        res["stragglers"] = len(left)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return res


def kill_tree(conn, snap):
    with contextlib.suppress(OSError):  # the child was started in its own session/process group
        os.killpg(conn.proc.pid, signal.SIGKILL)
    for pid in [*list(snap["procs"]), conn.proc.pid]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        conn.proc.wait(timeout=5)


def run(args, cmd):
    stderr_file = open(args.stderr, "wb") if args.stderr else tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    conn = Conn(cmd, stderr_file)
    conn.stall_timeout = args.stall_timeout
    conn.set_blocking(False)
    tree = Tree(conn.proc.pid, args.server_match)
    result = {"cmd": cmd, "phases": {}, "accounting": {}}
    snap = tree.snapshot()
    try:
        t0 = time.perf_counter()
        conn.call("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
        conn.notify("initialized", {})
        result["initialize_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        time.sleep(0.2)  # let the tree settle (forks, threads)
        snap = tree.snapshot()
        result["rss_mb_after_init"] = {
            r: round(sum(i["rss_kb"] for i in snap["procs"].values() if i["role"] == r) / 1024, 1)
            for r in ("proxy", "server")}
        result["peak_rss_mb_after_init"] = {  # VmHWM so far: initialize + idle
            r: round(sum(i["hwm_kb"] for i in snap["procs"].values() if i["role"] == r) / 1024, 1)
            for r in ("proxy", "server")}
        result["processes"] = [{"pid": p, "role": i["role"], "cmd": i["cmd"][:200]}
                               for p, i in snap["procs"].items()]
        phases = {
            "latency": lambda: phase_latency(conn, args.n_latency, args.warmup, args.latency_size),
            "small": lambda: phase_pipelined(conn, args.small_size, args.window, args.small_msgs, args.max_s),
            "large": lambda: phase_pipelined(conn, args.large_size, args.large_window, args.large_msgs, args.max_s),
            "notify": lambda: phase_notify(conn, args.notify_size, args.notify_reps, args.notify_max_s),
            "typing": lambda: phase_typing(conn, args.typing_lines, args.typing_rounds,
                                           args.typing_warmup, args.typing_max_s, args.typing_per_line),
        }
        if "small" in args.phases or "large" in args.phases:  # warm up the pipelined path
            phase_pipelined(conn, args.small_size, args.window, 2000, 2.0)
        for name in args.phases:
            before = tree.snapshot()
            result["phases"][name] = phases[name]()
            after = tree.snapshot()
            result["accounting"][name] = phase_accounting(before, after)
        snap = tree.snapshot()
        procs = snap["procs"].values()
        result["peak_rss_mb"] = {
            role: round(sum(i["hwm_kb"] for i in procs if i["role"] == role) / 1024, 1)
            for role in ("proxy", "server")}
        result["peak_rss_mb"]["tree"] = round(sum(i["hwm_kb"] for i in procs) / 1024, 1)
        result["cpu_total_s"] = {role: round(sum(i["cpu_s"] for i in procs if i["role"] == role), 2)
                                 for role in ("proxy", "server")}
        result["server_to_client"] = {"requests": conn.server_requests,
                                      "notifications": conn.server_notifications}
        result["bytes"] = {"to_server": conn.bytes_out, "from_server": conn.bytes_in}
        result["shutdown"] = shutdown(conn, snap, args.stall_timeout, args.exit_timeout)
        result["ok"] = True
    except Exception as e:
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
        kill_tree(conn, tree.snapshot() if conn.proc.poll() is None else snap)
    stderr_file.seek(0, os.SEEK_END)
    if stderr_file.tell():
        stderr_file.seek(max(0, stderr_file.tell() - 2000))
        result["stderr_tail"] = stderr_file.read().decode(errors="replace")
    stderr_file.close()
    return result


def table(res):
    out = [f"cmd: {' '.join(res['cmd'])}"]
    if not res.get("ok"):
        out.append(f"FAILED: {res.get('error')}")
    p, acc = res["phases"], res["accounting"]
    if "latency" in p:
        lat = p["latency"]
        out.append(f"latency  n={lat['n']:<6} p50={lat['p50_us']:>8.1f}us p90={lat['p90_us']:>8.1f}us "
                   f"p99={lat['p99_us']:>8.1f}us max={lat['max_us']:>9.1f}us")
    for name in ("small", "large"):
        if name in p:
            t = p[name]
            out.append(f"{name:<8} size={t['size']:<8} {t['msgs_per_s']:>10.1f} msg/s "
                       f"{t['payload_MBps']:>9.2f} MB/s  ({t['msgs']} msgs in {t['elapsed_s']}s)")
    if "typing" in p:
        t = p["typing"]
        out.append(f"typing   n={t['n']:<6} p50={t['p50_us']:>8.1f}us p90={t['p90_us']:>8.1f}us "
                   f"p99={t['p99_us']:>8.1f}us max={t['max_us']:>9.1f}us  (keystroke -> completion, "
                   f"{t['doc_lines']}-line / {t['doc_bytes']} B file)")
    if "notify" in p:
        n = p["notify"]
        out.append(f"notify   {n['body_bytes']} B didOpen + request: median {n['median_ms']} ms "
                   f"(min {n['min_ms']}, {n['reps']} reps, {n['MBps']} MB/s)")
    for name, a in acc.items():
        out.append(f"cpu[{name:<7}] wall={a['wall_s']:.2f}s proxy={a['proxy_cpu_s']:.2f}s "
                   f"server={a['server_cpu_s']:.2f}s client={a['client_cpu_s']:.2f}s "
                   f"foreign={a['foreign_cpu_s']:.2f}s  rss: proxy={a['proxy_rss_mb_end']}MB")
    if "peak_rss_mb" in res:
        r = res["peak_rss_mb"]
        out.append(f"peak RSS (VmHWM) proxy={r['proxy']} MB server={r['server']} MB tree={r['tree']} MB"
                   f" (proxy after initialize: VmRSS {res['rss_mb_after_init']['proxy']} MB, "
                   f"VmHWM {res['peak_rss_mb_after_init']['proxy']} MB)")
    if "shutdown" in res:
        out.append(f"shutdown: {res['shutdown']}")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        sys.exit("usage: client_bench.py [options] -- CMD [ARGS...]")
    split = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-latency", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=200, help="untimed latency requests first")
    ap.add_argument("--latency-size", type=parse_size, default=0)
    ap.add_argument("--window", type=int, default=200, help="requests in flight when pipelining")
    ap.add_argument("--small-size", type=parse_size, default=200)
    ap.add_argument("--small-msgs", type=int, default=100000)
    ap.add_argument("--large-size", type=parse_size, default=MiB)
    ap.add_argument("--large-msgs", type=int, default=1000)
    ap.add_argument("--large-window", type=int, default=16,
                    help="in flight for large payloads (bounds the drain after --max-s)")
    ap.add_argument("--max-s", type=float, default=3.0, help="stop issuing pipelined requests after this")
    ap.add_argument("--notify-size", type=parse_size, default=10 * MiB)
    ap.add_argument("--notify-reps", type=int, default=3)
    ap.add_argument("--notify-max-s", type=float, default=20.0)
    ap.add_argument("--typing-lines", type=int, default=5000, help="lines of the file typed into")
    ap.add_argument("--typing-rounds", type=int, default=2000, help="timed keystrokes")
    ap.add_argument("--typing-warmup", type=int, default=20, help="untimed keystrokes first")
    ap.add_argument("--typing-max-s", type=float, default=10.0,
                    help="stop typing (after the warm-up) after this many seconds")
    ap.add_argument("--typing-per-line", type=int, default=24,
                    help="characters typed at one spot before moving to the next function")
    ap.add_argument("--phases", type=lambda s: s.split(","),
                    default=["latency", "typing", "small", "large", "notify"])
    ap.add_argument("--server-match", default="echo_server.py",
                    help="substring of the server's cmdline (to tell proxy from server processes)")
    ap.add_argument("--stall-timeout", type=float, default=120.0,
                    help="give up when nothing moves for this long")
    ap.add_argument("--exit-timeout", type=float, default=5.0,
                    help="after exit + closing stdin, kill the tree if it is still there after this")
    ap.add_argument("--stderr", help="file for the server side's stderr (default: kept, tail in JSON)")
    ap.add_argument("--json-out", help="write the JSON result here ('-' for stdout)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no human table")
    args = ap.parse_args(argv[:split])
    cmd = argv[split + 1:]
    res = run(args, cmd)
    if args.json_out == "-":
        json.dump(res, sys.stdout, indent=1)
        print()
    elif args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(res, f, indent=1)
    if not args.quiet:
        print(table(res), file=sys.stderr if args.json_out == "-" else sys.stdout)
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())

"""Incident bundles against real processes: a FIFO reader, a stopped process, real gopls.

The backends here are real: what the bundle records is what this kernel reports, which is the
point (wchan names, for one, differ between kernel versions: 6.x reports `anon_pipe_read` for a
reader blocked on a FIFO, older kernels `pipe_read`; opening a FIFO with no writer waits in
`wait_for_partner` under `fifo_open`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from lspguard.cli import main as cli
from lspguard.incident.bundle import list_bundles, prune_bundles, snapshot_now, write_bundle
from lspguard.incident.collect import Collector, Skipped, in_thread, run_collectors
from lspguard.incident.context import IncidentContext, RecentMessage
from lspguard.incident.goroutines import fetch_goroutines, parse_debug_address
from lspguard.incident.host import filesystem_of, sanitize_env
from lspguard.incident.proc import collect_process_tree, read_thread
from lspguard.incident.strace import collect_strace
from lspguard.procfs.mounts import Mount
from lspguard.procfs.syscalls import parse_syscall_line, syscall_name
from lspguard.redact import redact_message

from ..polling import wait_until

FILES = {"incident.json", "process.json", "strace.txt", "goroutines.txt", "stderr.txt",
         "messages.jsonl", "session.log", "report.html"}
SECRET_TEXT = "package main // SECRET-SOURCE-TEXT-7f3a"
SECRET_HOVER = "HOVER-DOC-SECRET-91c2 func Println"


def syscall_of(pid: int) -> str | None:
    """The syscall the main thread of `pid` sleeps in (None while running)."""
    return (read_thread(pid, pid).get("syscall") or {}).get("name")


def proc_status(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(key)


def frame(message: dict[str, Any], direction: str, kind: str) -> RecentMessage:
    body = json.dumps(message).encode()
    return RecentMessage(time.monotonic(), time.time(), direction, 1, kind, message.get("id"),
                         message.get("method"), len(body), body)


def make_ctx(pid: int | None, **kw: Any) -> IncidentContext:
    now = time.time()
    defaults: dict[str, Any] = dict(
        verdict={"kind": "blocked_in_kernel", "summary": "gopls is blocked in read(2) on a FIFO.",
                 "generation": 1, "at": now, "facts": {"syscall": "read"}},
        reason="test", generation=1, backend_pid=pid, backend_argv=[sys.executable],
        pending=[{"direction": "client->server", "id": 7, "method": "textDocument/hover",
                  "age_ms": 4200.0}],
        latency={"textDocument/hover": {"count": 3, "p50_ms": 5.0, "p99_ms": 9.0,
                                        "max_ms": 9.0}},
        request_timeline=[{"method": "textDocument/hover", "start": now - 10 + i,
                           "duration_ms": 3.0 + i, "generation": 1, "ok": True}
                          for i in range(3)],
        recent_messages=[
            frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
                "textDocument": {"uri": "file:///w/main.go", "languageId": "go", "version": 1,
                                 "text": SECRET_TEXT}}}, "client->server", "notification"),
            frame({"jsonrpc": "2.0", "id": 7, "result": {
                "contents": {"kind": "markdown", "value": SECRET_HOVER},
                "range": {"start": {"line": 1, "character": 2},
                          "end": {"line": 1, "character": 9}}}}, "server->client", "response"),
        ],
        stderr_tail=["gopls: starting"], workspace_folders=["file:///work/main"],
        started_at=now - 60, lspguard_version="0.1.0")
    defaults.update(kw)
    return IncidentContext(**defaults)


@pytest.fixture
def fifo_reader(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A process blocked in read(2) on a FIFO (a writer is open, nothing is ever written)."""
    fifo = tmp_path / "pipe.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-c",
                             f"import os; os.read(os.open({str(fifo)!r}, os.O_RDONLY), 1)"])

    def open_writer() -> int | None:
        try:  # non-blocking: fails (ENXIO) until the reader has the FIFO open
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None

    writer = wait_until(open_writer, 10)
    assert writer, "the reader did not open the FIFO"
    try:
        assert wait_until(lambda: syscall_of(proc.pid) == "read", 10), \
            "the reader did not block in read"
        yield proc.pid, fifo
    finally:
        proc.kill()
        proc.wait(timeout=10)
        os.close(writer)


def start_sleeper() -> subprocess.Popen[bytes]:
    """A Python process asleep in time.sleep (past exec and startup: ready to be inspected)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    assert wait_until(lambda: syscall_of(proc.pid)
                      in ("clock_nanosleep", "nanosleep", "select", "pselect6"), 10), \
        "python did not fall asleep"
    return proc


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = start_sleeper()
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def root_thread(bundle: Path, pid: int) -> dict[str, Any]:
    doc = json.loads((bundle / "process.json").read_text())
    proc = next(p for p in doc["processes"] if p["pid"] == pid)
    return next(t for t in proc["threads"] if t["tid"] == pid)


# ---------------------------------------------------------------------------- real processes


async def test_bundle_of_process_blocked_reading_fifo(fifo_reader: tuple[int, Path],
                                                      tmp_path: Path) -> None:
    pid, fifo = fifo_reader
    bundle = await write_bundle(make_ctx(pid), root=tmp_path / "b", strace_seconds=0.5)
    thread = root_thread(bundle, pid)
    assert thread["state"] == "S"
    assert "pipe" in thread["wchan"]  # anon_pipe_read (6.x) / pipe_read (older)
    assert thread["syscall"]["name"] == "read"
    assert thread["syscall"]["fd_path"] == str(fifo)
    assert any("fifo" in frame or "pipe" in frame for frame in thread["stack"])
    incident = json.loads((bundle / "incident.json").read_text())
    assert incident["thread_states"] == {"S": 1}
    assert incident["collectors"]["process"]["status"] == "ok"
    # strace saw the blocked read, and let go of the process as it found it.
    strace_txt = (bundle / "strace.txt").read_text()
    assert incident["collectors"]["strace"]["status"] == "ok", strace_txt
    assert f"Process {pid} attached" in strace_txt and "read(3" in strace_txt
    assert proc_status(pid, "TracerPid") == "0"
    assert read_thread(pid, pid)["state"] == "S"


def test_thread_blocked_opening_fifo_names_the_path(tmp_path: Path) -> None:
    fifo = tmp_path / "nobody-writes.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}).read()"])
    try:
        assert wait_until(lambda: syscall_of(proc.pid) == "openat", 10), \
            "the reader did not block opening the FIFO"
        thread = collect_process_tree(proc.pid, [])[0]["threads"][0]
        assert thread["state"] == "S"
        assert thread["wchan"] == "wait_for_partner"
        assert thread["syscall"]["path"] == str(fifo)  # read from the process's memory
        assert any("fifo_open" in frame for frame in thread["stack"])
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def test_bundle_of_stopped_process(sleeper: subprocess.Popen[bytes],
                                         tmp_path: Path) -> None:
    pid = sleeper.pid
    os.kill(pid, signal.SIGSTOP)
    assert wait_until(lambda: read_thread(pid, pid).get("state") == "T", 10), \
        "SIGSTOP did not take effect"
    ctx = make_ctx(pid, verdict={"kind": "stopped", "summary": "gopls is stopped (SIGSTOP).",
                                 "generation": 1, "at": time.time(), "facts": {}})
    bundle = await write_bundle(ctx, root=tmp_path / "b", strace_seconds=0.5)
    thread = root_thread(bundle, pid)
    assert thread["state"] == "T" and thread["state_name"] == "stopped"
    assert thread["wchan"] == "do_signal_stop"
    assert bundle.name.endswith(f"-stopped-{pid}")
    strace_txt = (bundle / "strace.txt").read_text()
    assert "stopped by SIGSTOP" in strace_txt or f"Process {pid} attached" in strace_txt
    # Still stopped by the signal (T), not left in a tracing stop (t) or traced.
    assert read_thread(pid, pid)["state"] == "T"
    assert proc_status(pid, "TracerPid") == "0"
    os.kill(pid, signal.SIGCONT)
    assert wait_until(lambda: read_thread(pid, pid).get("state") == "S", 10), \
        "SIGCONT did not resume it"


async def test_bundle_after_the_backend_died(tmp_path: Path) -> None:
    async with await anyio.open_process([sys.executable, "-c", "raise SystemExit(3)"]) as proc:
        assert await proc.wait() == 3  # exited and reaped: the pid is gone
    ctx = make_ctx(proc.pid, verdict={"kind": "crashed", "summary": "gopls exited (code 3).",
                                      "generation": 1, "at": time.time(), "facts": {}})
    bundle = await write_bundle(ctx, root=tmp_path / "b")
    incident = json.loads((bundle / "incident.json").read_text())
    for name in ("process", "strace"):
        assert incident["collectors"][name]["status"] == "skipped"
        assert "no longer exists" in incident["collectors"][name]["error"]
    assert {p.name for p in bundle.iterdir()} == FILES


@pytest.mark.gopls
async def test_bundle_of_real_gopls_has_goroutine_dump(real_gopls: Path,
                                                       tmp_path: Path) -> None:
    process = await anyio.open_process([str(real_gopls), "-debug=127.0.0.1:0", "serve"],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert process.stderr is not None
        seen = ""
        with anyio.fail_after(20):
            while (address := parse_debug_address(seen)) is None:
                seen += (await process.stderr.receive()).decode()
        assert "debug server listening at http://localhost:" in seen
        ctx = make_ctx(process.pid, backend_argv=[str(real_gopls), "serve"],
                       debug_address=address)
        bundle = await write_bundle(ctx, root=tmp_path / "b", strace_seconds=0.5)
        dump = (bundle / "goroutines.txt").read_text()
        assert "golang.org/x/tools/gopls" in dump and dump.startswith("goroutine ")
        incident = json.loads((bundle / "incident.json").read_text())
        assert incident["collectors"]["goroutines"]["status"] == "ok"
        assert incident["versions"]["gopls"].startswith("golang.org/x/tools/gopls v")
        assert "goroutines" in (bundle / "report.html").read_text()
        assert process.returncode is None  # evidence taken without harm
    finally:
        with contextlib.suppress(psutil.Error):  # its telemetry child runs in its own session
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
        process.kill()
        await process.wait()
        await process.aclose()


# ---------------------------------------------------------------------------- the directory


async def test_bundle_is_private_and_appears_whole(sleeper: subprocess.Popen[bytes],
                                                   tmp_path: Path) -> None:
    root = tmp_path / "incidents"
    root.mkdir(mode=0o700)
    seen_tmp, partial = False, []

    async def watch(done: anyio.Event) -> None:
        nonlocal seen_tmp
        while not done.is_set():
            for entry in os.scandir(root):
                if entry.name.startswith(".tmp-"):
                    seen_tmp = True
                elif set(os.listdir(entry.path)) != FILES:
                    partial.append(sorted(os.listdir(entry.path)))
            await anyio.sleep(0.002)

    done = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, done)
        bundle = await write_bundle(make_ctx(sleeper.pid), root=root, strace_seconds=0.3)
        done.set()
    assert seen_tmp and not partial
    assert os.listdir(root) == [bundle.name]
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
    assert {p.name for p in bundle.iterdir()} == FILES
    for file in bundle.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


async def test_cancelled_bundle_leaves_nothing(sleeper: subprocess.Popen[bytes],
                                               tmp_path: Path) -> None:
    root = tmp_path / "incidents"
    with anyio.move_on_after(0.3) as scope:
        await write_bundle(make_ctx(sleeper.pid), root=root, strace_seconds=2.0)
    assert scope.cancelled_caught
    assert os.listdir(root) == []
    assert read_thread(sleeper.pid, sleeper.pid)["state"] == "S"  # strace stopped cleanly


@pytest.mark.parametrize("include_text", [False, True])
async def test_source_text_redacted_unless_opted_in(tmp_path: Path, include_text: bool) -> None:
    bundle = await write_bundle(make_ctx(None, include_text=include_text), root=tmp_path / "b")
    everything = b"".join(p.read_bytes() for p in bundle.iterdir())
    for secret in (SECRET_TEXT, SECRET_HOVER):
        assert (secret.encode() in everything) is include_text
    lines = [json.loads(line) for line in (bundle / "messages.jsonl").read_text().splitlines()]
    assert [m["method"] for m in lines] == ["textDocument/didOpen", None]
    assert lines[0]["message"]["params"]["textDocument"]["uri"] == "file:///w/main.go"
    assert lines[1]["message"]["result"]["range"]["end"] == {"line": 1, "character": 9}


def test_redact_message_keeps_the_shape() -> None:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": 3, "result": {"items": [{
        "label": "Println", "kind": 3, "documentation": {"kind": "markdown", "value": "doc"},
        "textEdit": {"range": {"start": {"line": 0, "character": 0},
                               "end": {"line": 0, "character": 2}}, "newText": "Println()"},
        "detail": "x" * 300}]}}
    out = redact_message(msg)
    item = out["result"]["items"][0]
    assert isinstance(item, dict)
    assert item["label"] == "Println" and item["kind"] == 3
    assert item["documentation"] == {"kind": "markdown", "value": "<redacted 3 chars>"}
    assert item["textEdit"]["newText"] == "<redacted 9 chars>"
    assert item["textEdit"]["range"]["end"] == {"line": 0, "character": 2}
    assert item["detail"] == "<redacted 300 chars>"
    assert msg["result"]["items"][0]["textEdit"]["newText"] == "Println()"  # input untouched
    change = redact_message({"method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///a.go", "version": 4},
        "contentChanges": [{"text": "abc"}]}})
    assert change["params"]["textDocument"] == {"uri": "file:///a.go", "version": 4}
    assert change["params"]["contentChanges"] == [{"text": "<redacted 3 chars>"}]
    hover = redact_message({"contents": ["plain", {"language": "go", "value": "func f()"}]})
    assert hover == {"contents": ["<redacted 5 chars>",
                                  {"language": "go", "value": "<redacted 8 chars>"}]}


# ---------------------------------------------------------------------------- budgets, failures


async def test_hanging_debug_server_costs_only_the_budget(sleeper: subprocess.Popen[bytes],
                                                          tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        bundle = await write_bundle(make_ctx(sleeper.pid, debug_address=address),
                                    root=tmp_path / "b", budget=2.0, strace_seconds=3.0)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 0.75, elapsed
    incident = json.loads((bundle / "incident.json").read_text())
    goroutines = incident["collectors"]["goroutines"]
    assert goroutines["status"] == "timeout" and goroutines["error"]
    assert "timeout" in (bundle / "goroutines.txt").read_text()
    assert incident["collectors"]["process"]["status"] == "ok"
    assert incident["collectors"]["strace"]["status"] == "ok"  # shortened to fit the budget


async def test_process_collector_keeps_what_it_read_before_blocking(
        sleeper: subprocess.Popen[bytes], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a command line blocks while the process holds its mmap lock (a page fault on a
    hung filesystem): the collector times out, and the threads already read are kept."""
    release = threading.Event()
    monkeypatch.setattr(psutil.Process, "cmdline", lambda self: release.wait(60) and [])
    try:
        bundle = await write_bundle(make_ctx(sleeper.pid), root=tmp_path / "b", budget=2.0,
                                    strace_seconds=0.2)
    finally:
        release.set()
    doc = json.loads((bundle / "process.json").read_text())
    assert doc["status"] == "timeout" and doc["error"]
    thread = root_thread(bundle, sleeper.pid)
    assert thread["state"] == "S" and thread["syscall"]["name"] in ("clock_nanosleep",
                                                                   "select", "pselect6")
    assert "cmdline" not in doc["processes"][0]


async def test_collectors_fail_alone() -> None:
    release = threading.Event()
    order: list[str] = []

    async def fine() -> str:
        order.append("fine")
        return "data"

    async def broken() -> None:
        raise RuntimeError("no /proc here")

    async def nothing() -> None:
        raise Skipped("nothing to do")

    async def stuck() -> None:
        await in_thread(release.wait)  # a read that never returns, abandoned on timeout

    async def second() -> str:
        order.append("second")
        return "ok"

    try:
        started = time.monotonic()
        results = await run_collectors([
            Collector("stuck", stuck, 0.3), Collector("broken", broken, 5),
            Collector("second", second, 5, after=("fine",)), Collector("fine", fine, 5),
            Collector("nothing", nothing, 5),
        ], deadline=time.monotonic() + 5)
        assert time.monotonic() - started < 2.0
    finally:
        release.set()
    assert {n: r.status for n, r in results.items()} == {
        "stuck": "timeout", "broken": "error", "second": "ok", "fine": "ok", "nothing": "skipped"}
    assert results["broken"].error == "RuntimeError: no /proc here"
    assert results["fine"].data == "data" and order == ["fine", "second"]


def test_goroutines_only_from_loopback() -> None:
    for address in ("10.1.2.3:6060", "192.0.2.1:80", "example.com:6060"):
        with pytest.raises(ValueError, match="refusing"):
            fetch_goroutines(address, 0.5)
    line = "serve.go:521: debug server listening at http://localhost:34639"
    assert parse_debug_address(line) == "localhost:34639"
    assert parse_debug_address("debug server listening at http://[::1]:80") == "[::1]:80"
    assert parse_debug_address("gopls: starting") is None


async def test_strace_missing_or_not_permitted(sleeper: subprocess.Popen[bytes],
                                               tmp_path: Path) -> None:
    with pytest.raises(Skipped, match="not installed"):
        await collect_strace([sleeper.pid], 0.2, strace="no-such-strace-binary")
    fake = tmp_path / "strace"
    fake.write_text("#!/bin/sh\necho 'strace: attach: ptrace(PTRACE_SEIZE, 1): "
                    "Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(Skipped, match=r"could not attach.*Operation not permitted"):
        await collect_strace([sleeper.pid], 0.2, strace=str(fake))


# ---------------------------------------------------------------------------- pieces


def test_syscall_lines_decode() -> None:
    assert parse_syscall_line("running") == {"raw": "running", "running": True}
    assert parse_syscall_line("-1 0x7ffd 0x4a3f")["nr"] == -1
    parsed = parse_syscall_line("0 0x3 0x55da 0x2000 0x1000 0x0 0x0 0x7fff 0x7f81")
    assert parsed["args"][:3] == [3, 0x55DA, 0x2000]
    assert syscall_name(0, "x86_64") == "read" and syscall_name(202, "x86_64") == "futex"
    assert syscall_name(63, "arm64") == "read" and syscall_name(98, "arm64") == "futex"


def test_process_tree_includes_children(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run("
                             "[sys.executable, '-c', 'import time; time.sleep(60)'])"])
    try:
        tree = wait_until(lambda: len(t := collect_process_tree(proc.pid, [])) == 2
                          and t[1]["threads"][0].get("state") == "S"
                          and t[1]["threads"][0].get("syscall", {}).get("name")
                          in ("clock_nanosleep", "nanosleep", "select", "pselect6") and t, 10)
        assert tree, "the child did not start sleeping"
        assert tree[1]["ppid"] == proc.pid and tree[1]["threads"][0]["state"] == "S"
        assert tree[0]["threads"][0]["syscall"]["name"] in ("wait4", "waitid")
        assert tree[0]["cmdline"][0] == sys.executable
    finally:
        for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            os.kill(int(child), signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=10)


def test_env_sanitized_and_mounts_matched() -> None:
    env = sanitize_env({"GOPROXY": "https://bob:hunter2@proxy.corp/go,direct",
                        "GOAUTH": "netrc", "GO_TOKEN_FILE": "/x", "GOFLAGS": "-mod=mod",
                        "HTTPS_PROXY": "http://u:p@10.0.0.1:3128", "EDITOR": "vim"})
    assert env["vars"] == {"GOPROXY": "https://proxy.corp/go,direct", "GOFLAGS": "-mod=mod",
                           "HTTPS_PROXY": "http://10.0.0.1:3128"}
    assert env["dropped_secrets"] == ["GOAUTH", "GO_TOKEN_FILE"]
    mounts = [Mount("/", "ext4", "/dev/vda", "rw"),
              Mount("/go/pkg", "fuse.grpcfuse", "grpcfuse", "rw"),
              Mount("/go/pkgx", "ext4", "x", "rw")]
    cache = filesystem_of("/go/pkg/mod", mounts)
    assert cache["fstype"] == "fuse.grpcfuse" and cache["slow_or_foreign"] is True
    assert cache["device"] == "grpcfuse" and cache["options"] == "rw"
    assert filesystem_of("/go/pkgx/a", mounts)["mountpoint"] == "/go/pkgx"
    assert filesystem_of("/home", mounts)["slow_or_foreign"] is False
    assert filesystem_of("relative/path", mounts) == {"path": "relative/path"}


async def test_list_prune_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "incidents"
    made = []
    for kind in ("crashed", "deadlocked", "busy_spin"):
        ctx = make_ctx(None, verdict={"kind": kind, "summary": f"It {kind}.", "generation": 1,
                                      "at": time.time(), "facts": {}})
        made.append(await write_bundle(ctx, root=root, budget=2.0))
    infos = list_bundles(root)
    assert [i.kind for i in infos] == ["busy_spin", "deadlocked", "crashed"]
    assert infos[0].sentence == "It busy_spin." and infos[0].size_bytes > 0

    assert cli.main(["bundles", "--json", "--dir", str(root)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [b["kind"] for b in listed] == ["busy_spin", "deadlocked", "crashed"]
    (made[-1] / "report.html").unlink()
    assert cli.main(["report", "--dir", str(root)]) == 0
    assert capsys.readouterr().out.strip() == str(made[-1] / "report.html")
    inode = (made[-1] / "report.html").stat().st_ino
    assert cli.main(["report", "--rerender", str(made[0])]) == 0
    assert capsys.readouterr().out.strip() == str(made[0] / "report.html")
    assert cli.main(["report", "--rerender", "--dir", str(root), made[-1].name]) == 0
    assert (made[-1] / "report.html").stat().st_ino != inode  # rewritten (atomically)
    capsys.readouterr()

    stale, fresh = root / ".tmp-old-1", root / ".tmp-now-2"
    stale.mkdir()
    fresh.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    removed = prune_bundles(root, keep=2, max_bytes=None)
    assert set(removed) == {made[0], stale}
    removed = prune_bundles(root, keep=None, max_bytes=1)  # the newest always stays
    assert removed == [made[1]]
    assert sorted(os.listdir(root)) == sorted([".tmp-now-2", made[2].name])
    assert cli.main(["report", "--dir", str(tmp_path / "none")]) == 1


async def test_report_escapes_everything(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script>"
    ctx = make_ctx(None, verdict={"kind": "deadlocked", "summary": f"Hung {evil}",
                                  "generation": 1, "at": time.time(), "facts": {"w": evil}},
                   pending=[{"direction": "client->server", "id": evil, "method": evil,
                             "age_ms": 10.0}],
                   stderr_tail=[evil], backend_argv=[evil])
    bundle = await write_bundle(ctx, root=tmp_path / "b", budget=2.0)
    page = (bundle / "report.html").read_text()
    assert evil not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Hung &lt;script&gt;" in page


async def test_snapshot_now_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    assert await snapshot_now(make_ctx(None), root=blocker / "incidents") is None
    path = await snapshot_now(make_ctx(None, verdict=None, reason="user asked"),
                              root=tmp_path / "ok")
    assert path is not None and path.name.split("-")[-2] == "snapshot"
    incident = json.loads((path / "incident.json").read_text())
    assert incident["sentence"] == "On-demand snapshot: user asked"


def test_cli_module_imports_light() -> None:
    code = ("import sys, lspguard.incident.cli, lspguard.incident; "
            "print(sorted(m for m in ('psutil', 'pygal', 'anyio', 'msgspec') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert out.strip() == "[]"


_BLOCKED_COLLECTOR = """
import sys, threading, anyio
from lspguard.incident.collect import in_thread
from lspguard.session.run import exit_code_or_exit_now
forever = threading.Event()
async def main():
    with anyio.move_on_after(0.2):  # a /proc read stuck on a hung mount, abandoned
        await in_thread(forever.wait if sys.argv[1] == "blocked" else (lambda: None))
anyio.run(main)
print("leaving", flush=True)
raise SystemExit(exit_code_or_exit_now(3))
"""


@pytest.mark.parametrize("collector", ["blocked", "done"])
def test_proxy_exits_even_with_a_collector_thread_blocked(collector: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_COLLECTOR, collector],
                          capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout) == (3, "leaving\n"), proc.stderr

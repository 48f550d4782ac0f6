"""report.html's content, in process: the cause first, facts as tables, and a bounded size.

(tests/system/test_report_chromium.py looks at the page in a browser.)
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from lspguard.causes.model import Blocker, Cause, CauseClass, Culprit
from lspguard.incident.bundle import write_bundle
from lspguard.incident.charts import thin_points
from lspguard.incident.report import render_report
from lspguard.incident.strace_excerpt import strace_excerpt

from ...system.test_snapshot import make_ctx

REQUEST = {"id": 42, "method": "textDocument/hover", "age_s": 6.5}


def fuse_cause() -> Cause:
    server = Culprit(1000, ("/usr/bin/gopls",), "gopls", tid=1000, state="S",
                     syscall="wait4", wchan="do_wait")
    child = Culprit(1010, ("go", "list", "-json", "./..."), "gopls's `go list`", tid=1012,
                    state="D", syscall="newfstatat", wchan="fuse_wait_answer")
    return Cause(CauseClass.FILESYSTEM, child,
                 Blocker("path", path="/mnt/share/mod/cache/x.go", mount_point="/mnt/share",
                         fs_type="fuse.sshfs", source="me@nas:/export"), 37.0,
                 "gopls's `go list` (pid 1010) has waited 37 s for /mnt/share (fuse.sshfs), "
                 "which does not answer; a restart will not help.",
                 "Check the sshfs mount at /mnt/share (is nas reachable?); unmount it with "
                 "`fusermount -uz /mnt/share` if it is gone.", chain=(server, child))


def verdict(facts: dict[str, Any], kind: str = "filesystem_not_answering",
            summary: str = "gopls is blocked.") -> dict[str, Any]:
    return {"kind": kind, "summary": summary, "generation": 1, "at": time.time() - 1,
            "facts": facts}


def header_of(page: str) -> str:
    return page[:page.index("<main>")]


def section(page: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert match, sid
    return match.group(1)


async def test_report_leads_with_the_cause(tmp_path: Path) -> None:
    cause = fuse_cause()
    ctx = make_ctx(None, verdict=verdict({"cause": cause.as_dict(), "request": REQUEST},
                                         summary=cause.sentence), pending=[])
    bundle = await write_bundle(ctx, root=tmp_path / "b", budget=2.0)
    incident = json.loads((bundle / "incident.json").read_text())
    assert incident["cause"] == cause.as_dict() == incident["verdict"]["facts"]["cause"]
    page = (bundle / "report.html").read_text()
    head = header_of(page)
    assert re.search(r'<h1 id="verdict">gopls&#x27;s `go list` \(pid 1010\) has waited 37 s',
                     head)
    for shown in ("gopls&#x27;s `go list`</b>", "pid 1010", "thread 1012", "uninterruptible sleep",
                  "newfstatat", "fuse_wait_answer", "/mnt/share/mod/cache/x.go",
                  "mount <code>/mnt/share</code>", "fuse.sshfs", "me@nas:/export",
                  "37 s before the verdict", "textDocument/hover</code> (id 42)", "6.5 s",
                  "No: the cause is outside the server", "fusermount -uz /mnt/share",
                  "gopls (pid 1000) → gopls&#x27;s `go list` (pid 1010)"):
        assert shown in head, shown
    assert 'id="fix"' in head and "What to do" in head
    pending = section(page, "pending")
    assert "triggered the verdict" in pending and "textDocument/hover" in pending
    assert "6.5 s at the verdict" in pending
    facts = section(page, "facts")
    assert "<h3>Process chain" in facts and "fuse_wait_answer" in facts
    for html_part in (head, facts, section(page, "timings")):
        assert "{&quot;" not in html_part and "[&quot;" not in html_part  # no JSON blobs
    timings = section(page, "timings")
    assert "request unanswered for" in timings and "37 s" in timings


async def test_report_of_a_verdict_without_cause(tmp_path: Path) -> None:
    facts = {"syscall": "read", "wchan": "pipe_read",
             "threads": [{"tid": 1, "state": "S"}, {"tid": 2, "state": "D"}],
             "nested": {"fd": 3, "paths": ["/a", "/b"]}}
    ctx = make_ctx(None, verdict=verdict(facts, kind="blocked_in_kernel",
                                         summary="gopls is blocked in read(2)."))
    bundle = await write_bundle(ctx, root=tmp_path / "b", budget=2.0)
    assert json.loads((bundle / "incident.json").read_text())["cause"] is None
    page = (bundle / "report.html").read_text()
    head = header_of(page)
    assert '<h1 id="verdict">gopls is blocked in read(2).</h1>' in head
    assert 'id="fix"' not in head and "Restart helps?" not in head
    assert '<table class="kv facts">' in head and "pipe_read" in head
    assert "<th>tid</th>" in head and "/a, /b" in head  # a list of dicts is a table
    assert "{&quot;" not in head
    pending = section(page, "pending")  # make_ctx's pending hover, id 7, no trigger named
    assert "textDocument/hover" in pending and "triggered" not in pending


async def test_snapshot_report_and_odd_facts_render(tmp_path: Path) -> None:
    ctx = make_ctx(None, verdict=None, reason="user asked")
    page = (await write_bundle(ctx, root=tmp_path / "a", budget=2.0)) / "report.html"
    assert '<h1 id="verdict">On-demand snapshot: user asked</h1>' in page.read_text()
    odd = {"cause": {"process": "x", "object": 5, "chain": "y", "waited_s": "z",
                     "restart_helps": "maybe", "sentence": 3},
           "request": {"id": None, "method": ["?"], "age_s": "long"}}
    ctx = make_ctx(None, verdict=verdict(odd))
    page = (await write_bundle(ctx, root=tmp_path / "b", budget=2.0)) / "report.html"
    text = page.read_text()
    assert "The full report could not be rendered" not in text
    assert "Restart helps?" in text and "Unknown." in text


async def test_report_escapes_the_cause(tmp_path: Path) -> None:
    evil = "<script>alert('x')</script>"
    cause = Cause(CauseClass.CHILD, Culprit(1, (evil,), evil, state=evil), Blocker(
        "child", pid=2, argv=(evil, evil)), 1.0, f"Stuck {evil}", f"Fix {evil}")
    ctx = make_ctx(None, verdict=verdict({"cause": cause.as_dict(),
                                          "request": {"id": evil, "method": evil}}))
    page = ((await write_bundle(ctx, root=tmp_path / "b", budget=2.0)) / "report.html")
    text = page.read_text()
    assert evil not in text and "Stuck &lt;script&gt;" in text and "Fix &lt;script&gt;" in text


def test_trigger_still_pending_is_marked_once(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    pending = [{"direction": "server->client", "id": 42, "method": "workspace/configuration",
                "age_ms": 9000.0},
               {"direction": "client->server", "id": 42, "method": "textDocument/hover",
                "age_ms": 7000.0},
               {"direction": "client->server", "id": 43, "method": "textDocument/completion",
                "age_ms": 8000.0}]
    (bundle / "incident.json").write_text(json.dumps({
        "kind": "deadlocked", "sentence": "s", "pending": pending,
        "verdict": verdict({"request": REQUEST})}))
    text = section(render_report(bundle).read_text(), "pending")
    assert text.count("triggered the verdict") == 1
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", text, re.S)
    assert "triggered the verdict" in rows[1] and "textDocument/hover" in rows[1]  # first
    assert "no longer pending" not in text


# ---------------------------------------------------------------------------- size


def big_bundle(root: Path, culprit: int) -> Path:
    """A bundle with every file at or past its collector's cap."""
    bundle = root / "big"
    bundle.mkdir()
    now = time.time()
    cause = fuse_cause().as_dict()
    cause["process"]["tid"] = culprit
    incident = {
        "kind": "filesystem_not_answering", "sentence": "s", "created_at": now,
        "verdict": verdict({"cause": cause, "request": REQUEST}), "cause": cause,
        "request_timeline": [{"method": f"textDocument/m{i % 30}", "start": now - 200 + i * 0.1,
                              "duration_ms": 1.0 + (i * 37) % 5000, "generation": 1,
                              "ok": i % 13 != 0} for i in range(2000)],
        "latency": {f"textDocument/m{i}": {"count": 9, "p50_ms": 5.0, "p99_ms": 90.0,
                                           "max_ms": 900.0} for i in range(40)},
        "pending": [{"direction": "client->server", "id": i, "method": "textDocument/hover",
                     "age_ms": 1000.0 + i} for i in range(500)],
    }
    (bundle / "incident.json").write_text(json.dumps(incident))
    stack = [f"[<0>] function_{n}+0x1c/0x40" for n in range(64)]
    threads = [{"tid": 5000 + i, "comm": "gopls", "state": "S" if i % 10 else "D",
                "state_name": "x", "wchan": "futex_do_wait",
                "syscall": {"name": "futex", "fd": 3, "fd_path": "/x" * 40}, "stack": stack}
               for i in range(256)]
    (bundle / "process.json").write_text(json.dumps({"processes": [
        {"pid": 4000 + p, "cmdline": ["gopls"] * 50, "threads": threads} for p in range(4)]}))
    lines = [f"[pid {5000 + i % 300}] 19:00:00.{i:06d} futex(0x{i:x}, FUTEX_WAIT_PRIVATE, 0, "
             f"NULL) = 0 <0.000100>" for i in range(40000)]
    lines[20000:20000] = [f"[pid {culprit}] 19:00:01.000000 newfstatat(AT_FDCWD, "
                          f'"/mnt/share/{n}", <unfinished ...>' for n in range(400)]
    (bundle / "strace.txt").write_text("# strace -f\n" + "\n".join(lines) + "\n")
    (bundle / "goroutines.txt").write_text("goroutine 1 [select]:\nmain.f()\n" * 200_000)
    (bundle / "stderr.txt").write_text("log line\n" * 200_000)
    body = {"jsonrpc": "2.0", "id": 1, "result": {"contents": "x" * 50_000}}
    (bundle / "messages.jsonl").write_text("".join(
        json.dumps({"t_wall": now, "direction": "server->client", "generation": 1,
                    "kind": "response", "id": i, "method": None, "size": 50_000,
                    "message": body}) + "\n" for i in range(200)))
    return bundle


def test_report_of_a_huge_bundle_stays_small(tmp_path: Path) -> None:
    bundle = big_bundle(tmp_path, culprit=777)
    page = render_report(bundle).read_text()
    size = len(page.encode())
    assert size < 300 * 1024, size
    strace = section(page, "strace")
    assert strace.count("/mnt/share/") >= 100  # the culprit's lines are there...
    assert '<a href="strace.txt">strace.txt</a>' in strace  # ...the rest is linked
    assert "<svg" in section(page, "timeline")  # the charts are kept
    assert "of 2000 shown" in section(page, "timeline")
    for name in ("goroutines.txt", "stderr.txt", "messages.jsonl", "process.json"):
        assert f'href="{name}"' in page, name


def test_strace_excerpt_focuses_on_the_culprit() -> None:
    text = "\n".join(
        ["# strace -f -p 1", "/usr/bin/strace: Process 1 attached with 3 threads"]
        + [f"[pid {2 if i % 50 == 7 else 3}] call{i}()" for i in range(1000)])
    excerpt = strace_excerpt(text, [2], tail=5)
    shown = [line for number, line, _ in excerpt.lines if number is not None]
    assert shown[:2] == ["# strace -f -p 1", "/usr/bin/strace: Process 1 attached with 3 threads"]
    focus = [line for _, line, hot in excerpt.lines if hot]
    assert focus == [f"[pid 2] call{i}()" for i in range(7, 1000, 50)]
    assert shown[-5:] == [f"[pid 3] call{i}()" for i in range(995, 1000)]
    gaps = [line for number, line, _ in excerpt.lines if number is None]
    assert gaps and all("lines not shown" in g for g in gaps)
    assert excerpt.total_lines == 1002 and excerpt.focus_lines == len(focus)
    # One tracee: no [pid] prefixes, every syscall line is the culprit's.
    single = "# x\n/usr/bin/strace: Process 9 attached\nread(3, \"\"..., 4) = 4\nopenat(AT_FDCWD"
    assert [hot for _, _, hot in strace_excerpt(single, [9]).lines] == [False, False, True, True]
    # Bounded: the oldest focus lines go first.
    capped = strace_excerpt(text, [2], tail=5, max_chars=300)
    assert sum(len(line) for n, line, _ in capped.lines if n is not None) <= 300


@pytest.mark.parametrize("n", [10, 5000])
def test_thin_points_keeps_failures_and_outliers(n: int) -> None:
    points = [("failed (error answer)" if i % 100 == 0 else "m", float(i), float(i % 977), "")
              for i in range(n)]
    kept = thin_points(points, 200)
    assert len(kept) == min(n, 200)
    assert [p[1] for p in kept] == sorted(p[1] for p in kept)  # still in time order
    assert {p for p in points if p[0].startswith("failed")} <= set(kept)
    assert max(p[2] for p in points) in {p[2] for p in kept}

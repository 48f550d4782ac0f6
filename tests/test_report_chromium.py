"""report.html as a person sees it: rendered by headless Chromium, offline, without script errors.

Chromium comes from Debian (`apt-get install -y chromium`; .ci/run installs it). The screenshot
of the last run is kept in test-artifacts/report.png (gitignored) for a human to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from lspguard.snapshot.bundle import write_bundle
from lspguard.snapshot.proc import read_thread

from .test_snapshot import make_ctx, start_sleeper, wait_for

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
VERDICT = "gopls stopped answering: blocked in read(2) on /tmp/x.fifo for 42 s."
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; .ci/run does)")


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on `url` with no network features; stderr carries console lines."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--host-resolver-rules=MAP * ~NOTFOUND", *extra, url],
        capture_output=True, text=True, timeout=25, stdin=subprocess.DEVNULL)


def console_errors(stderr: str) -> list[str]:
    """Console output and uncaught exceptions of the page (Chromium logs both as CONSOLE)."""
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A bundle of a stopped process with requests, pending work and messages."""
    root = tmp_path_factory.mktemp("incidents")
    proc = start_sleeper()
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        wait_for(lambda: read_thread(proc.pid, proc.pid).get("state") == "T", "SIGSTOP")
        now = time.time()
        timeline = [{"method": m, "start": now - 60 + i * 1.7, "duration_ms": d * (1 + i % 5),
                     "generation": 1, "ok": i % 9 != 0}
                    for i in range(30)
                    for m, d in (("textDocument/hover", 4.0), ("textDocument/completion", 35.0))]
        ctx = make_ctx(proc.pid, verdict={"kind": "blocked_in_kernel", "summary": VERDICT,
                                          "generation": 1, "at": now,
                                          "facts": {"syscall": "read", "wchan": "pipe_read"}},
                       request_timeline=timeline)
        bundle = anyio.run(lambda: write_bundle(ctx, root=root, budget=3.0, strace_seconds=0.5))
    finally:
        proc.kill()
        proc.wait(timeout=10)
    yield bundle / "report.html"


def test_report_is_self_contained(report: Path) -> None:
    page = report.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)
    assert "<svg" in page  # the charts are inline


def test_report_renders_verdict_without_console_errors(report: Path, tmp_path: Path) -> None:
    dom = chromium(report.as_uri(), tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    match = re.search(r'<h1 id="verdict">(.*?)</h1>', dom.stdout, re.S)
    assert match and match.group(1).strip() == VERDICT
    # The tooltip script ran: dots got native <title> tooltips.
    assert re.search(r'class="dot[^"]*tooltip-trigger"[^>]*>\s*<title>', dom.stdout)


def test_report_screenshot(report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "report.png"
    png.unlink(missing_ok=True)
    shot = chromium(report.as_uri(), tmp_path / "profile", f"--screenshot={png}",
                    "--window-size=1200,1600")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_errors(shot.stderr) == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_console_error_detection_works(tmp_path: Path) -> None:
    """The check above can fail: a page that throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><h1>x</h1><script>missingFunction()</script>")
    result = chromium(page.as_uri(), tmp_path / "profile", "--dump-dom")
    assert any("missingFunction" in line for line in console_errors(result.stderr))

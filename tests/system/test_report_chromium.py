"""report.html as a person sees it: rendered by headless Chromium, offline, without script errors,
leading with the cause (what is blocked, on what, what to do, whether a restart helps) on the
first screen.

Chromium comes from Debian (`apt-get install -y chromium`; .ci/run installs it). The screenshot
of the last run is kept in test-artifacts/report.png (gitignored) for a human to look at.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from lspguard.causes.model import Blocker, Cause, CauseClass, Culprit
from lspguard.incident.bundle import write_bundle
from lspguard.incident.proc import read_thread

from ..conftest import REPO
from ..polling import wait_until
from ..system.test_snapshot import make_ctx

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FIRST_SCREEN = (1280, 800)

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


@dataclass(frozen=True)
class Rendered:
    report: Path
    sentence: str
    fix: str
    fifo: Path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """The bundle of a verdict with a cause: a process blocked opening a FIFO nobody writes to,
    the hover that found it late already answered by recovery, a busy minute of requests."""
    root = tmp_path_factory.mktemp("incidents")
    fifo = tmp_path_factory.mktemp("ws") / "generated.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}).read()"])
    try:
        assert wait_until(lambda: read_thread(proc.pid, proc.pid).get("wchan")
                          == "wait_for_partner", 10), "the reader did not block opening the FIFO"
        now = time.time()
        culprit = Culprit(proc.pid, (sys.executable, "-c", "open(...)"), "gopls", tid=proc.pid,
                          state="S", syscall="openat", wchan="wait_for_partner")
        sentence = (f"gopls (pid {proc.pid}) has waited 42 s to open {fifo}, a FIFO nobody "
                    "writes to; a restarted gopls would wait on it again.")
        fix = (f"Remove {fifo} from the workspace, or add it to gopls's directoryFilters, "
               "then restart gopls.")
        cause = Cause(CauseClass.SPECIAL_FILE, culprit,
                      Blocker("special_file", path=str(fifo), file_type="fifo"), 42.0,
                      sentence, fix, chain=(culprit,))
        timeline = [{"method": m, "start": now - 60 + i * 1.7, "duration_ms": d * (1 + i % 5),
                     "generation": 1, "ok": i % 9 != 0}
                    for i in range(30)
                    for m, d in (("textDocument/hover", 4.0), ("textDocument/completion", 35.0))]
        ctx = make_ctx(proc.pid, verdict={
            "kind": cause.cls.value, "summary": sentence, "generation": 1, "at": now,
            "facts": {"cause": cause.as_dict(),
                      "request": {"id": 7, "method": "textDocument/hover", "age_s": 4.2}}},
            request_timeline=timeline, pending=[])
        bundle = anyio.run(lambda: write_bundle(ctx, root=root, budget=3.0, strace_seconds=0.5))
    finally:
        proc.kill()
        proc.wait(timeout=10)
    yield Rendered(bundle / "report.html", sentence, fix, fifo)


@pytest.fixture(scope="module")
def report(rendered: Rendered) -> Path:
    return rendered.report


def test_report_is_self_contained(report: Path) -> None:
    page = report.read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)
    assert "<svg" in page  # the charts are inline


def test_report_renders_verdict_without_console_errors(rendered: Rendered,
                                                       tmp_path: Path) -> None:
    dom = chromium(rendered.report.as_uri(), tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    match = re.search(r'<h1 id="verdict">(.*?)</h1>', dom.stdout, re.S)
    assert match and html.unescape(match.group(1).strip()) == rendered.sentence
    fix = re.search(r'<div class="fix" id="fix">(.*?)</div></div>', dom.stdout, re.S)
    assert fix and rendered.fix in html.unescape(fix.group(1))
    cause = re.search(r'<table class="cause" id="cause">(.*?)</table>', dom.stdout, re.S)
    assert cause, dom.stdout[:3000]
    for shown in (str(rendered.fifo), "fifo", "openat", "wait_for_partner",
                  "No: the cause is outside the server", "textDocument/hover", "4.2 s"):
        assert shown in html.unescape(cause.group(1)), shown
    pending = re.search(r'<section id="pending">(.*?)</section>', dom.stdout, re.S)
    assert pending and "triggered the verdict" in pending.group(1)
    assert "No request was waiting" not in pending.group(1)
    # The tooltip script ran: dots got native <title> tooltips.
    assert re.search(r'class="dot[^"]*tooltip-trigger"[^>]*>\s*<title>', dom.stdout)


_PROBE = """<script>
var box = function (id) { var e = document.getElementById(id);
  return e ? e.getBoundingClientRect().bottom : -1; };
document.body.setAttribute('data-probe', [box('verdict'), box('cause'), box('fix'),
  window.innerHeight].join(' '));
</script></body>"""


def test_first_screen_says_the_cause_and_the_fix(rendered: Rendered, tmp_path: Path) -> None:
    """Without scrolling, in a 1280x800 window: the sentence, the cause table and the fix."""
    probe = rendered.report.with_name(".probe.html")
    probe.write_text(rendered.report.read_text().replace("</body>", _PROBE))
    try:
        dom = chromium(probe.as_uri(), tmp_path / "profile", "--dump-dom",
                       f"--window-size={FIRST_SCREEN[0]},{FIRST_SCREEN[1]}")
    finally:
        probe.unlink()
    assert dom.returncode == 0 and console_errors(dom.stderr) == [], dom.stderr[-2000:]
    match = re.search(r'data-probe="([^"]+)"', dom.stdout)
    assert match, dom.stdout[:2000]
    verdict, cause, fix, height = (float(v) for v in match.group(1).split())
    assert 500 < height <= FIRST_SCREEN[1]  # the viewport: the window less its chrome
    assert 0 < verdict < cause <= height and 0 < fix <= height, match.group(1)


def test_report_stays_small(rendered: Rendered) -> None:
    assert rendered.report.stat().st_size < 300 * 1024
    assert '<a href="strace.txt">' in rendered.report.read_text()


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

"""`lspguard demo` (what `make demo` runs): the happy path, then a real hang of gopls, told."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lspguard.demo.main import DEMO_HOVER_DEADLINE

from ..conftest import LspguardDirs

pytestmark = [pytest.mark.gopls, pytest.mark.timeout(120)]


def _line(out: str, label: str) -> str:
    """The text after `label` on the demo's line for it."""
    found = re.search(rf"^ *{re.escape(label)} +(.*)$", out, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{out}"
    return found.group(1)


def test_demo_shows_the_hang_and_the_recovery(real_gopls: Path,
                                              lspguard_dirs: LspguardDirs) -> None:
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lspguard", "demo", "--gopls", str(real_gopls)],
        capture_output=True, text=True, timeout=100, stdin=subprocess.DEVNULL, check=False)
    took = time.monotonic() - began
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert took < 60, f"the demo took {took:.0f} s"

    # the happy path, as before
    assert "Hello returns a friendly greeting for name." in out
    assert 'const name untyped string = "lspguard"' in out
    assert "(named 'lspguard': `pkill gopls` spares it)" in out

    # the hang: the real gopls stopped by its pid, the verdict in one sentence
    stopped = re.search(r"gopls \(pid (\d+), from lspguard's status file\) is stopped with "
                        r"SIGSTOP", out)
    assert stopped, out
    pid = stopped.group(1)
    assert _line(out, "verdict").startswith(f"stopped: gopls (pid {pid}) is stopped")
    detect = re.fullmatch(rf"([\d.]+) s after the hang began \(the hover's deadline is "
                          rf"{DEMO_HOVER_DEADLINE:g} s\)", _line(out, "time to detect"))
    assert detect, out
    assert DEMO_HOVER_DEADLINE <= float(detect.group(1)) <= DEMO_HOVER_DEADLINE + 2.0
    assert _line(out, "pending hover").startswith("answered at ")
    assert "with ContentModified (-32801)" in _line(out, "pending hover")
    recovered = re.match(r"([\d.]+) s after the verdict, ([\d.]+) s after the hang began: "
                         r"the editor's next good answer", _line(out, "recovered in"))
    assert recovered, out
    assert float(recovered.group(1)) < 15
    # the hover after the restart sees the unsaved edit (it was replayed to the new gopls)
    after = out.split("recovered in", 1)[1]
    assert 'const name untyped string = "lspguard"' in after.split("the user saw", 1)[0]
    assert "-> pid " in _line(out, "restart") and "generation 2" in _line(out, "restart")

    # the incident report exists, in the state dir, and is the one the user was told about
    report = Path(_line(out, "incident report").split(" (written, ", 1)[0])
    assert report.name == "report.html" and report.is_file()
    assert report.is_relative_to(lspguard_dirs.state / "incidents")
    assert f"Incident report: {report.parent}" in _line(out, "the user saw")

    assert re.search(r"^8\. shutdown \+ exit exit code 0 ", out, re.MULTILINE), out
    assert "demo OK:" in out

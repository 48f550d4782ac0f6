"""The watchdog's CPU signal from /proc agrees with psutil's, for a tree with a busy child."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from lspguard.supervise import cputime

# A parent that runs a child which burns CPU until its stdin closes; both print when started.
_TREE = """\
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c",
    "import sys, select\\nprint('go', flush=True)\\n"
    "while not select.select([sys.stdin], [], [], 0)[0]: pass"], stdin=sys.stdin)
child.wait()
"""


@pytest.mark.timeout(30)
def test_proc_and_psutil_agree_on_a_tree() -> None:
    with subprocess.Popen([sys.executable, "-c", _TREE], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"go\n"
            kids = psutil.Process(proc.pid).children(recursive=True)
            assert len(kids) == 1
            ours = cputime._proc_tree_cpu(proc.pid)
            theirs = cputime._psutil_tree_cpu(proc.pid)
            again = cputime._proc_tree_cpu(proc.pid)
            assert ours is not None and theirs is not None and again is not None
            assert ours <= theirs + 0.02 and theirs <= again + 0.02  # the child keeps burning
            child_only = kids[0].cpu_times()
            assert again >= child_only.user + child_only.system - 0.02  # the child is counted
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)


def test_a_gone_process_is_none() -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=10)
    pid = int(done.stdout)
    assert cputime.tree_cpu_seconds(pid) is None
    assert cputime._psutil_tree_cpu(pid) is None

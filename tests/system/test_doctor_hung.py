"""`lspguard doctor` must never hang on what hangs gopls (the field report: no output for more
than 10 minutes on a workspace whose FUSE mount stopped answering). Here: the bounded helper
that every probe runs in, a FIFO named x.go, and a real hung FUSE mount, which must be named,
as the dead mount it is, within 30 s.

The mount is real: tests/servers/tiny_fuse.py (mfusepy over libfuse3) mirrors a small Go module
and stops answering the way a wedged Docker Desktop or sshfs does, in one of two ways: "stopped"
(SIGSTOP: requests stay queued in the kernel, a killed caller dies) or "stalled" (requests are
read and never answered: a killed caller stays in D state until the answer, so the doctor must
abandon its probe rather than reap it). While it hangs nothing in this test may touch the mount
(even `Path.exists` would block), so readiness and cleanup go through /proc/self/mountinfo only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from lspguard.doctor import Severity, run_doctor
from lspguard.doctor.bounded import CommandResult, Done, Failed, TimedOut, run_bounded, run_command
from lspguard.procfs.mounts import parse_mountinfo

from ..conftest import TESTS_DIR
from ..polling import wait_until

TINY_FUSE = TESTS_DIR / "servers" / "tiny_fuse.py"
FSTYPE = "fuse.tinyfuse"


# ------------------------------------------------------------------------- the bounded helper


def test_bounded_helper_returns_its_json() -> None:
    done = run_bounded("os.path:basename", "/a/b/c.go", timeout=10)
    assert isinstance(done, Done) and done.value == "c.go"
    failed = run_bounded("json:loads", "not json", timeout=10)
    assert isinstance(failed, Failed) and "JSONDecodeError" in failed.error


@pytest.mark.parametrize(("func", "timeout", "stall"), [
    ("time:sleep", 1.0, None),  # past the whole deadline
    ("builtins:open", 30.0, 1.0),  # blocked in the kernel opening a FIFO: past the stall limit
])
def test_bounded_helper_past_its_deadline_is_killed(tmp_path: Path, func: str, timeout: float,
                                                    stall: float | None) -> None:
    fifo = tmp_path / "x.go"
    os.mkfifo(fifo)
    start = time.monotonic()
    outcome = run_bounded(func, 60 if func == "time:sleep" else str(fifo), timeout=timeout,
                          stall=stall)
    elapsed = time.monotonic() - start
    assert isinstance(outcome, TimedOut), outcome
    assert 0.9 <= elapsed < 3, elapsed  # on time: neither early nor waiting for the sleep
    assert outcome.op == "start" and outcome.limit == 1.0 and outcome.reaped
    assert not psutil.pid_exists(outcome.pid)  # killed and reaped: no zombie either
    assert outcome.pid not in [p.pid for p in psutil.Process().children(recursive=True)]


def test_bounded_command(tmp_path: Path) -> None:
    result = run_command(["sh", "-c", "pwd; echo oops >&2; exit 3"], cwd=str(tmp_path),
                         env=os.environ, timeout=10)
    assert isinstance(result, CommandResult)
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (
        3, str(tmp_path), "oops")
    assert result.path == shutil.which("sh") and not result.ok
    missing = run_command(["no-such-command-lspguard"], cwd="/", env=os.environ, timeout=10)
    assert isinstance(missing, CommandResult) and not missing.path
    assert "could not start" in missing.describe()
    script = tmp_path / "no-shebang"
    script.write_bytes(b"\x7fELF not really")
    script.chmod(0o755)
    broken = run_command([str(script)], cwd="/", env=os.environ, timeout=10)
    assert isinstance(broken, CommandResult) and broken.returncode == 126
    assert "cannot run" in broken.stderr


# ---------------------------------------------------------------------------------- FIFOs


def test_fifo_named_like_a_go_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "go.mod").write_text("module example.com/ws\n\ngo 1.21\n")
    (ws / "pkg" / "a.go").write_text("package pkg\n")
    os.mkfifo(ws / "pkg" / "x.go")  # `go list ./...` would block opening it, forever
    os.mkfifo(ws / "events.pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ws / "dev.sock"))

        report = run_doctor(ws, go_env={}, checks={"special", "symlinks", "latency"})

    [fifo] = report.by_id("special.go-file")
    assert fifo.severity is Severity.ERROR and fifo.path == str(ws / "pkg" / "x.go")
    assert "pkg/x.go is a FIFO" in fifo.found and "blocks" in fifo.why
    assert f"rm '{ws / 'pkg' / 'x.go'}'" in fifo.fix
    assert [f.severity for f in report.by_id("special.fifo")] == [Severity.WARNING]
    assert "dev.sock (socket)" in report.by_id("special.other")[0].found
    assert report.exit_code == 2

    start = time.monotonic()  # the whole command, with the real go env, does not hang on it
    proc = subprocess.run([sys.executable, "-m", "lspguard", "doctor", "--json", str(ws)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - start < 30
    doc = json.loads(proc.stdout)
    assert "special.go-file" in {f["id"] for f in doc["findings"]} and proc.returncode == 2


# ------------------------------------------------------------------------ a hung FUSE mount


def _skip_reason() -> str:
    if os.geteuid() != 0:
        return "mounting FUSE needs root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: libfuse3 itself is missing
        return f"the FUSE binding is missing (pip install mfusepy): {exc}"
    return ""


needs_fuse = pytest.mark.skipif(bool(_skip_reason()), reason=_skip_reason() or "n/a")


def _mounted(mountpoint: Path) -> bool:
    text = Path("/proc/self/mountinfo").read_text()
    return any(m.mount_point == str(mountpoint) and m.fs_type == FSTYPE
               for m in parse_mountinfo(text))


@dataclass
class TinyMount:
    proc: subprocess.Popen[bytes]
    mountpoint: Path
    stall_file: Path

    def hang(self, how: str) -> None:
        if how == "stopped":
            os.kill(self.proc.pid, signal.SIGSTOP)
        else:
            self.stall_file.touch()

    def release(self) -> None:
        self.stall_file.unlink(missing_ok=True)
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        """Answer what is blocked, detach the mount, end the daemon (idempotent)."""
        self.release()  # first: whatever is blocked on the mount must be able to finish
        if _mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)],
                           capture_output=True, timeout=10, check=False)
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def tiny_mount(tmp_path: Path) -> Iterator[TinyMount]:
    """A pass-through FUSE mount of tmp_path/src at tmp_path/mnt, served by its own process."""
    source, mountpoint = tmp_path / "src", tmp_path / "mnt"
    (source / "hello").mkdir(parents=True)
    (source / "hello" / "go.mod").write_text("module example.com/hello\n\ngo 1.21\n")
    (source / "hello" / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n')
    mountpoint.mkdir()
    log, stall = tmp_path / "tiny_fuse.log", tmp_path / "stall"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(TINY_FUSE), str(source), str(mountpoint),
                                 str(stall)], stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    mount = TinyMount(proc, mountpoint, stall)
    try:
        wait_until(lambda: _mounted(mountpoint) or proc.poll() is not None, 10, interval=0.05)
        if not _mounted(mountpoint):
            pytest.skip(f"tiny_fuse did not mount: {log.read_text(errors='replace')[-500:]}")
        yield mount
    finally:
        mount.close()


def _touching(root: Path) -> list[str]:
    """Live processes (other than us) whose command line or cwd is under `root`. Zombies are
    not counted: one the doctor had to abandon is reaped by init, if init reaps."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            cwd = proc.cwd()
        except (psutil.Error, OSError):
            cwd = ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmdline or cwd.startswith(str(root)):
            found.append(f"{proc.pid} {proc.info['status']} {cmdline[:200]}")
    return found


@needs_fuse
@pytest.mark.parametrize("how", ["stopped", "stalled"])
def test_doctor_reports_a_hung_fuse_mount_within_30_s(tiny_mount: TinyMount, tmp_path: Path,
                                                      how: str) -> None:
    workspace = tiny_mount.mountpoint / "hello"
    assert (workspace / "go.mod").read_text().startswith("module")  # it answers, for now
    tiny_mount.hang(how)

    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lspguard", "doctor", "--json",
                           str(workspace)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    elapsed = time.monotonic() - start

    assert elapsed < 30, f"doctor took {elapsed:.1f} s"
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    hung = [f for f in report["findings"] if f["id"] == "filesystem.not-answering"]
    assert len(hung) == 1, report["findings"]
    finding = hung[0]
    assert finding["severity"] == "error" and report["worst"] == "error"
    assert f"{FSTYPE} at {tiny_mount.mountpoint} is not answering" in finding["found"]
    assert f"on {workspace} did not return within" in finding["found"]
    assert "fusermount3 -u -z" in finding["fix"] and "reload" in finding["fix"]
    assert ("did not even die on SIGKILL" in finding["found"]) == (how == "stalled")
    # The checks that needed the workspace say why they did not look, and the rest still ran.
    skipped = {f["id"] for f in report["findings"] if f["id"].endswith(".skipped")}
    assert {"symlinks.skipped", "special.skipped", "devcontainer.skipped"} <= skipped
    assert any(f["id"] == "writable.gocache" for f in report["findings"])

    tiny_mount.close()
    wait_until(lambda: not _touching(tmp_path), 10, interval=0.1)
    assert not _touching(tmp_path)  # no probe helper, go command or FUSE daemon left behind

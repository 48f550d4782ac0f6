"""A short `strace -f -tt -T -y` sample of the backend, or the reason none could be taken.

No buffer contents by default (`-s 0`): what gopls reads and writes is the user's source and
the editor's LSP payloads. Syscalls, results, timings and file names stay (strace prints paths
in full whatever `-s` says, and `-y` adds the path behind every fd argument). With `include_text`
(config `snapshot.include_text`) the first 128 bytes of every buffer are kept, as before.

strace is stopped with SIGINT, on which it detaches from every thread and leaves each one as it
found it (running, blocked, or group-stopped by SIGSTOP); SIGKILL is only the fallback, and even
then the kernel detaches the tracees. Output is drained for the whole run and kept up to a cap,
because a tracer that cannot write holds its tracees in syscall-stop: a busy gopls must never be
slowed by a report nobody reads.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from lspguard.incident.collect import Skipped

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["collect_strace", "ptrace_obstacles", "strace_argv"]

MAX_OUTPUT = 2 * 1024 * 1024
_CAP_SYS_PTRACE = 19


async def collect_strace(pids: Sequence[int], seconds: float, *,
                         strace: str | None = None, max_bytes: int = MAX_OUTPUT,
                         until: anyio.Event | None = None, include_text: bool = False) -> str:
    """Trace `pids` (all their threads) for `seconds`, or until `until` is set (the sample
    is then shorter, not lost); return strace's output with a header. Buffer contents are
    left out unless `include_text`."""
    if not pids:
        raise Skipped("no backend process to trace")
    exe = shutil.which(strace or "strace")
    if exe is None:
        raise Skipped(f"{strace or 'strace'} is not installed (apt-get install strace)")
    obstacles = ptrace_obstacles()
    if any(o.startswith("ptrace is disabled") for o in obstacles):
        raise Skipped("; ".join(obstacles))
    seconds = max(seconds, 0.1)
    argv = _dies_with_us(strace_argv(exe, pids, include_text=include_text))

    kept = bytearray()
    dropped = 0
    drained = anyio.Event()
    started = time.monotonic()
    # Never inherit stdin/stdout: in the proxy those are the editor's LSP stream.
    process = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    stderr = process.stderr

    async def drain() -> None:
        nonlocal dropped
        try:
            async for chunk in stderr:
                room = max(0, max_bytes - len(kept))
                kept.extend(chunk[:room])
                dropped += len(chunk) - min(room, len(chunk))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            drained.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            with anyio.move_on_after(seconds) as sampling:
                if until is not None:
                    tg.start_soon(_cancel_when, until, sampling)
                await process.wait()  # strace ends early when it cannot attach
            with anyio.CancelScope(shield=True):
                await _stop(process)
                with anyio.move_on_after(0.5):  # the last lines (detach messages)
                    await drained.wait()
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(process)
            await process.aclose()

    text = kept.decode("utf-8", "replace")
    elapsed = time.monotonic() - started
    if "attached" not in text and ("Operation not permitted" in text or "EPERM" in text):
        raise Skipped("strace could not attach: " + "; ".join(
            [text.strip().splitlines()[0] if text.strip() else "EPERM", *obstacles]))
    header = [f"# {' '.join(argv)}", f"# sampled for {elapsed:.2f} s; strace exit status "
              f"{process.returncode}"]
    if until is not None and until.is_set() and elapsed < seconds:
        header.append("# cut short: the session ended")
    if not include_text:
        header.append("# buffer contents left out (-s 0); snapshot.include_text = true keeps "
                      "them")
    if dropped:
        header.append(f"# output capped at {max_bytes} bytes; {dropped} more bytes dropped")
    return "\n".join(header) + "\n" + text


def strace_argv(exe: str, pids: Sequence[int], *, include_text: bool) -> list[str]:
    """The strace command line: threads followed, wall-clock times, durations, fd paths."""
    argv = [exe, "-f", "-tt", "-T", "-y", "-s", "128" if include_text else "0"]
    for pid in pids:
        argv += ["-p", str(pid)]
    return argv


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _stop(process: anyio.abc.Process) -> None:
    """SIGINT (strace detaches cleanly), then SIGKILL; bounded; no-op once it has exited."""
    for sig, grace in ((signal.SIGINT, 1.0), (signal.SIGKILL, 1.0)):
        if process.returncode is not None:
            return
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            return
        with anyio.move_on_after(grace):
            await process.wait()


def ptrace_obstacles() -> list[str]:
    """What may stop this process from tracing another one (empty when nothing obvious)."""
    notes: list[str] = []
    scope_file = Path("/proc/sys/kernel/yama/ptrace_scope")
    try:
        scope = int(scope_file.read_text().strip())
    except (OSError, ValueError):
        scope = None
    has_cap = _has_cap_sys_ptrace()
    if scope == 3:
        notes.append("ptrace is disabled: /proc/sys/kernel/yama/ptrace_scope is 3 (no process "
                     "may be traced until reboot)")
    elif scope == 2 and not has_cap:
        notes.append("/proc/sys/kernel/yama/ptrace_scope is 2 (only CAP_SYS_PTRACE may trace) "
                     "and this process lacks CAP_SYS_PTRACE")
    elif scope == 1 and not has_cap:
        notes.append("/proc/sys/kernel/yama/ptrace_scope is 1 (only a process's ancestors may "
                     "trace it, and strace is not an ancestor of the language server); "
                     "CAP_SYS_PTRACE would allow it")
    if not has_cap and _in_container():
        notes.append("in a container without CAP_SYS_PTRACE: run it with --cap-add=SYS_PTRACE "
                     '(devcontainer.json: "capAdd": ["SYS_PTRACE"])')
    return notes


def _has_cap_sys_ptrace() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def _in_container() -> bool:
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def _dies_with_us(argv: list[str]) -> list[str]:
    """strace under `setpriv --pdeathsig KILL` (util-linux) when it exists: a proxy killed with
    SIGKILL mid-sample must not leave strace attached to the hung server for ever."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv

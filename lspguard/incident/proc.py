"""The backend's process tree as the kernel sees it: processes, and every thread's wait.

Per thread: the state letter, `wchan` (the kernel function it sleeps in), the syscall it is in
with its fd or path argument resolved, and the kernel stack when readable (root can). That is what
tells "blocked reading a FIFO" from "stuck in a FUSE request" from "stopped by SIGSTOP".

Readers that need the process's mmap lock (`cmdline`, a syscall's path argument read from the
process's memory) come last, in a second pass: a process stuck in a page fault on a hung
filesystem holds that lock, and such a read blocks with it. Records are appended to `out` as they
are made, so what was read before a read blocked survives the collector's timeout.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from lspguard.incident.syscalls import describe_syscall, has_path_argument, parse_syscall_line

__all__ = ["STATE_NAMES", "collect_process_tree", "read_proc_file", "read_thread"]

STATE_NAMES = {
    "R": "running", "S": "sleeping", "D": "uninterruptible (disk) sleep", "T": "stopped",
    "t": "tracing stop", "Z": "zombie", "X": "dead", "I": "idle", "P": "parked", "W": "waking",
    "K": "wakekill",
}
_STACK_LINES = 64


def collect_process_tree(pid: int, out: list[dict[str, Any]], *, max_processes: int = 32,
                         max_threads: int = 256) -> list[dict[str, Any]]:
    """Append one record per process of the tree rooted at `pid` to `out`; return `out`.

    Two passes: first every process with the reads that cannot block (records appended as they
    are made), then each record is replaced by a fuller copy with the reads that can (command
    lines, syscall path arguments from memory). A reader of `out` never sees a record change.
    """
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess as exc:
        raise ProcessLookupError(f"process {pid} does not exist") from exc
    procs = [root]
    out.append(_process_record(root, max_threads))
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        children = []
    for child in children[:max_processes - 1]:
        procs.append(child)
        out.append(_process_record(child, max_threads))
    first = len(out) - len(procs)
    if len(children) > max_processes - 1:
        out.append({"pid": None, "note": f"{len(children) - max_processes + 1} more processes "
                                          "not recorded"})
    for i, proc in enumerate(procs):
        out[first + i] = _fuller_record(proc, out[first + i])
    return out


def _process_record(proc: psutil.Process, max_threads: int) -> dict[str, Any]:
    pid = proc.pid
    record: dict[str, Any] = {"pid": pid, "t_wall": time.time()}
    errors: dict[str, str] = {}
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError as exc:
        tids = []
        errors["threads"] = str(exc)
    record["threads"] = [read_thread(pid, tid) for tid in tids[:max_threads]]
    if len(tids) > max_threads:
        record["threads_truncated"] = len(tids) - max_threads
    # Only readers of /proc/PID/{stat,status,statm,fd,cwd}: none needs the mmap lock.
    getters: list[tuple[str, Any]] = [
        ("ppid", proc.ppid),
        ("name", proc.name),
        ("status", proc.status),
        ("create_time", proc.create_time),
        ("cpu_times", lambda: proc.cpu_times()._asdict()),
        ("rss", lambda: proc.memory_info().rss),
        ("num_threads", proc.num_threads),
        ("num_fds", proc.num_fds),
        ("cwd", proc.cwd),
        ("open_files", lambda: len(proc.open_files())),
    ]
    _get_all(record, errors, getters)
    return record


def _fuller_record(proc: psutil.Process, record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `record` with what needs the process's mmap lock (may block: see above)."""
    fuller = dict(record)
    errors = dict(record.get("errors") or {})
    _get_all(fuller, errors, [("cmdline", proc.cmdline)])
    threads = []
    for thread in record.get("threads") or []:
        syscall = thread.get("syscall")
        if syscall and has_path_argument(syscall) and thread.get("state") != "R":
            thread = {**thread, "syscall": describe_syscall(proc.pid, thread["tid"], syscall)}
        threads.append(thread)
    fuller["threads"] = threads
    return fuller


def _get_all(record: dict[str, Any], errors: dict[str, str],
             getters: list[tuple[str, Any]]) -> None:
    for key, getter in getters:
        try:
            record[key] = getter()
        except psutil.Error as exc:
            errors[key] = f"{type(exc).__name__}: {exc}"
        except OSError as exc:
            errors[key] = str(exc)
    if errors:
        record["errors"] = errors


def read_thread(pid: int, tid: int) -> dict[str, Any]:
    """State, wchan, syscall (decoded) and kernel stack of one thread; missing parts say why."""
    base = f"/proc/{pid}/task/{tid}"
    thread: dict[str, Any] = {"tid": tid}
    stat = read_proc_file(f"{base}/stat")
    if stat is not None:
        # "TID (comm) S ppid ...": comm may hold spaces and parentheses; split at the last ')'.
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        thread["comm"] = head.partition("(")[2]
        if fields:
            thread["state"] = fields[0]
            thread["state_name"] = STATE_NAMES.get(fields[0], fields[0])
        if len(fields) > 12:
            ticks = os.sysconf("SC_CLK_TCK")
            thread["utime_s"] = int(fields[11]) / ticks
            thread["stime_s"] = int(fields[12]) / ticks
    wchan = read_proc_file(f"{base}/wchan")
    thread["wchan"] = None if wchan in (None, "", "0") else wchan
    line = read_proc_file(f"{base}/syscall")
    if line is not None:
        thread["syscall"] = describe_syscall(pid, tid, parse_syscall_line(line),
                                             read_memory=False)
    try:
        with open(f"{base}/stack", encoding="utf-8", errors="replace") as f:
            thread["stack"] = [ln.rstrip("\n") for ln in f.readlines()[:_STACK_LINES]]
    except OSError as exc:
        thread["stack"] = None
        thread["stack_error"] = exc.strerror or str(exc)
    return thread


def read_proc_file(path: str) -> str | None:
    """A small /proc file's text, stripped; None if it cannot be read (thread gone, no access)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None

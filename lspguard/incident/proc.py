"""The backend's process tree as the kernel sees it: processes, and every thread's wait.

Per thread: the state letter, `wchan` (the kernel function it sleeps in), the syscall it is in
with its fd or path argument resolved, and the kernel stack when readable (root can), as
lspguard.procfs reads them. That is what tells "blocked reading a FIFO" from "stuck in a FUSE
request" from "stopped by SIGSTOP".

Readers that need the process's mmap lock (`cmdline`, a syscall's path argument read from the
process's memory) come last, in a second pass: a process stuck in a page fault on a hung
filesystem holds that lock, and such a read blocks with it. Records are appended to `out` as they
are made, so what was read before a read blocked survives the collector's timeout.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from lspguard.procfs.syscalls import describe_syscall, has_path_argument
from lspguard.procfs.threads import (
    STATE_NAMES,
    kernel_stack,
    task_ids,
    task_stat,
    task_syscall,
    wchan,
)

__all__ = ["collect_process_tree", "read_thread"]

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
        tids = task_ids(pid)
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
    thread: dict[str, Any] = {"tid": tid}
    stat = task_stat(pid, tid)
    if stat is not None:
        thread["comm"] = stat.comm
        if stat.state is not None:
            thread["state"] = stat.state
            thread["state_name"] = STATE_NAMES.get(stat.state, stat.state)
        if stat.utime_s is not None:
            thread["utime_s"] = stat.utime_s
            thread["stime_s"] = stat.stime_s
    waits_in = wchan(pid, tid)
    thread["wchan"] = None if waits_in in (None, "", "0") else waits_in
    parsed = task_syscall(pid, tid)
    if parsed is not None:
        thread["syscall"] = describe_syscall(pid, tid, parsed, read_memory=False)
    try:
        thread["stack"] = kernel_stack(pid, tid, _STACK_LINES)
    except OSError as exc:
        thread["stack"] = None
        thread["stack_error"] = exc.strerror or str(exc)
    return thread

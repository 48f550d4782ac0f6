"""The words a cause is told in: one sentence (what, where, since when, whether a restart
helps) and the fix. Kept apart from the classifier so the wording can be read in one place;
what a restart does is said as the class's row in kinds.py says it (`restart_clause`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lspguard.causes.kinds import row
from lspguard.causes.model import CauseClass

if TYPE_CHECKING:
    from lspguard.causes.model import Cause

__all__ = ["call_name", "fix_for", "sentence_for"]

# How a syscall is named to a user: `stat()`, not `newfstatat`.
_CALL_NAMES = {
    "newfstatat": "stat", "fstatat64": "stat", "statx": "stat", "lstat": "stat", "stat": "stat",
    "fstat": "stat", "openat": "open", "openat2": "open", "open": "open", "creat": "open",
    "getdents64": "readdir", "getdents": "readdir", "readlinkat": "readlink",
    "faccessat": "access", "faccessat2": "access", "pread64": "read", "readv": "read",
    "pwrite64": "write", "writev": "write", "wait4": "wait", "waitid": "wait",
}


def call_name(syscall: str | None) -> str:
    return _CALL_NAMES.get(syscall or "", syscall or "a system call")


def _who(cause: Cause) -> str:
    return f"{cause.culprit.role} (pid {cause.culprit.pid})"


def sentence_for(cause: Cause, server: str = "gopls") -> str:
    """One sentence a user reads in a notification, the status bar and the report: what waits
    on what, then what a restart does (the class's `restart_clause` in kinds.py)."""
    clause = row(cause.cls.value).restart_clause or ""
    return f"{_what_waits(cause, server)} {clause.format(server=server)}"


def _what_waits(cause: Cause, server: str) -> str:
    c, b = cause.culprit, cause.blocker
    waited = f"{cause.waited_s:.0f} s"
    call = f"`{call_name(c.syscall)}()`"
    if cause.cls is CauseClass.FILESYSTEM:
        on = f" on {b.path}" if b.path else ""
        if b.mount_point:
            where = f"the filesystem there ({b.fs_type} at {b.mount_point}) is not answering"
        else:
            where = f"the {b.fs_type or ''} filesystem is not answering".replace("  ", " ")
        return f"{_who(cause)} has waited {waited} in {call}{on}: {where}."
    if cause.cls is CauseClass.SPECIAL_FILE:
        if b.file_type == "FIFO":
            why = ("a FIFO that no process writes to: opening or reading it blocks until one "
                   "does")
        else:
            why = f"a {b.file_type or 'special file'} that does not answer"
        return f"{_who(cause)} has waited {waited} in {call} on {b.path}, {why}."
    if cause.cls is CauseClass.KERNEL:
        on = f" on {b.path}" if b.path else ""
        return (f"{_who(cause)} has been in uninterruptible sleep for {waited} in {call}{on} "
                f"(wchan {c.wchan or '?'}): it waits in the kernel.")
    if cause.cls is CauseClass.NETWORK:
        what = ("does not accept the connection" if b.socket_state == "SYN_SENT"
                else "accepted the connection but does not answer")
        return f"{_who(cause)} has waited {waited} on the network peer {b.peer}, which {what}."
    if cause.cls is CauseClass.CHILD:
        parent = cause.chain[-2].role if len(cause.chain) > 1 else server
        return (f"{parent} has waited {waited} for {c.role.removeprefix(parent + chr(39) + 's ')}"
                f" (pid {c.pid}: `{' '.join(c.argv[:6])}`), which never returns and uses no "
                "CPU.")
    if cause.cls is CauseClass.STOPPED:
        return f"{_who(cause)} is stopped (SIGSTOP, or a debugger holds it)."
    if cause.cls is CauseClass.CPU:
        cpu = cause.facts.get("cpu_percent")
        busy = f" ({cpu}% CPU)" if cpu is not None else ""
        return f"{_who(cause)} is busy{busy} and does not answer."
    return (f"{server} is idle and answers nothing, and it waits on nothing outside itself "
            "(no filesystem, child, file or network wait): a deadlock inside the server.")


def fix_for(cause: Cause) -> str:
    """What the user can do about it (the report and the notification give it as the fix)."""
    b = cause.blocker
    resume = " lspguard resumes by itself once it answers."
    if cause.cls is CauseClass.FILESYSTEM:
        where = b.mount_point or b.path or "the mount"
        return (f"Make the filesystem at {where} answer again: for a Docker Desktop bind mount "
                "(osxfs, grpcfuse, virtiofs) restart Docker Desktop's file sharing or Docker "
                "Desktop; for a network mount, check its server." + resume + " To avoid it, "
                "keep GOMODCACHE and GOCACHE on a container volume (`lspguard doctor` checks).")
    if cause.cls is CauseClass.SPECIAL_FILE:
        return (f"Remove or move {b.path} out of the workspace: the go command opens every "
                "file of a package (a FIFO, socket or device there blocks it)." + resume)
    if cause.cls is CauseClass.KERNEL:
        return ("Find what the kernel waits on (the incident report has the kernel stack and "
                "an strace sample); it is usually a disk or a mount." + resume)
    if cause.cls is CauseClass.NETWORK:
        return (f"Check that {b.peer} answers (GOPROXY, GOPRIVATE, a VCS server, a proxy or "
                "VPN); try `go mod download` in a terminal in the workspace." + resume)
    if cause.cls is CauseClass.CHILD:
        return (f"Run `{' '.join(cause.culprit.argv[:6])}` in a terminal in the workspace to "
                "see it hang; check GOFLAGS, GOPACKAGESDRIVER and the go command's network "
                "access.")
    if cause.cls is CauseClass.STOPPED:
        return "Resume it (kill -CONT) or detach the debugger; lspguard restarts it meanwhile."
    if cause.cls is CauseClass.CPU:
        return "Nothing to fix outside gopls: the incident report has its goroutine dump."
    return ("Nothing to fix outside gopls: file a gopls issue with the incident report (it has "
            "the goroutine dump).")

"""Small kernel files (/proc, /sys/fs/cgroup): read whole, or not at all.

procfs and sysfs make their text when it is read, without touching any filesystem, so a read
here never waits on a hung mount. The exceptions are a process's `cmdline`, `environ` and `mem`,
which take its mmap lock: a process stuck in a page fault on a hung filesystem holds that lock,
and such a read blocks with it (call those off the event loop, under a deadline).
"""

from __future__ import annotations

__all__ = ["read_proc_bytes", "read_proc_file"]


def read_proc_file(path: str) -> str | None:
    """A small /proc or /sys file's text, stripped; None if it cannot be read (gone, no access)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def read_proc_bytes(path: str, limit: int = 1 << 20) -> bytes | None:
    """At most `limit` bytes of a /proc file as they are (`environ`, `cmdline`: NUL-separated);
    None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None

"""What a hang is waiting on: the cause classes, the blocking object, and the process that waits.

A late request is a symptom; a `Cause` is what the user can act on. It names the class (from the
one table in `kernel.py`), the object the wait is on (a path with its mount and filesystem type,
a child's argv, a socket's peer), the process that waits ("gopls" or "gopls's `go list`"), how
long it has waited, whether restarting gopls can help, and what to fix. `as_dict` is the shape
written to the status file, the log and the incident bundle (`verdict.facts["cause"]`).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any

from lspguard.causes.kinds import row

__all__ = ["Blocker", "Cause", "CauseClass", "Culprit"]


class CauseClass(enum.Enum):
    """Why a backend does not answer. The value is the verdict kind the user sees; its row in
    kinds.py `KINDS` says the rest (outside the server or not, early, rank, words)."""

    FILESYSTEM = "filesystem_not_answering"
    SPECIAL_FILE = "special_file_no_partner"
    CHILD = "child_never_returns"
    NETWORK = "network_peer_not_answering"
    KERNEL = "blocked_in_kernel"  # uninterruptible sleep the table has no better name for
    STOPPED = "stopped"
    CPU = "busy_spin"
    DEADLOCK = "deadlocked"

    @property
    def external(self) -> bool:
        """The cause lies outside the server: restarting it repeats the same wait."""
        return self in _EXTERNAL


_EXTERNAL = frozenset(c for c in CauseClass if row(c.value).outside)


@dataclass(frozen=True)
class Culprit:
    """The process whose thread waits: the server itself or one of its descendants."""

    pid: int
    argv: tuple[str, ...]
    role: str  # "gopls", "gopls's `go list`", "gopls's `go list`'s `git`"
    tid: int | None = None
    state: str | None = None  # /proc state letter of the waiting thread
    syscall: str | None = None
    wchan: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "argv": list(self.argv), "role": self.role, "tid": self.tid,
                "state": self.state, "syscall": self.syscall, "wchan": self.wchan}


@dataclass(frozen=True)
class Blocker:
    """The object a wait is on. `kind` says which fields are set:

    - "path": `path`, `mount_point`, `fs_type` (and `source`, the mount's device or share);
    - "special_file": `path` and `file_type` ("fifo", "socket", "character device", ...);
    - "child": `pid` and `argv` of the child that never returns;
    - "socket": `peer` ("127.0.0.1:8080") and `socket_state` ("ESTABLISHED", "SYN_SENT");
    - "none": nothing external (deadlock, busy, stopped).
    """

    kind: str
    path: str | None = None
    mount_point: str | None = None
    fs_type: str | None = None
    source: str | None = None
    file_type: str | None = None
    pid: int | None = None
    argv: tuple[str, ...] = ()
    peer: str | None = None
    socket_state: str | None = None

    def describe(self) -> str:
        if self.kind == "path":
            return self.path or "?"
        if self.kind == "special_file":
            return f"{self.path} (a {self.file_type or 'special file'})"
        if self.kind == "child":
            return f"`{' '.join(self.argv[:6])}` (pid {self.pid})"
        if self.kind == "socket":
            return f"{self.peer} ({self.socket_state})"
        return "nothing outside the server"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("path", "mount_point", "fs_type", "source", "file_type", "pid", "peer",
                     "socket_state"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.argv:
            out["argv"] = list(self.argv)
        return out


@dataclass(frozen=True)
class Cause:
    cls: CauseClass
    culprit: Culprit
    blocker: Blocker
    waited_s: float  # how long the culprit has been seen in this wait
    sentence: str  # one sentence for the user: what, where, since when, whether a restart helps
    fix: str  # what to do about it
    chain: tuple[Culprit, ...] = ()  # the server down to the culprit, for "waits on its child"
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def restart_helps(self) -> bool:
        return not self.cls.external

    @property
    def signature(self) -> tuple[Any, ...]:
        """Equal for the same cause seen again (in another generation, say): what is waited
        on, not who waits."""
        b = self.blocker
        key = b.mount_point or b.path if b.kind == "path" else (
            b.path or b.peer or (os.path.basename(b.argv[0]) if b.argv else None))
        return (self.cls.value, b.kind, key)

    def as_dict(self) -> dict[str, Any]:
        return {"class": self.cls.value, "external": self.cls.external,
                "restart_helps": self.restart_helps, "sentence": self.sentence,
                "fix": self.fix, "waited_s": round(self.waited_s, 1),
                "process": self.culprit.as_dict(), "object": self.blocker.as_dict(),
                "chain": [c.as_dict() for c in self.chain], **self.facts}

"""Findings for probes that did not come back: a mount that stopped answering, a check that was
skipped because of one, or ran out of time.

A hung mount is the worst thing the doctor can find: everything gopls, the go command and the
editor's file watcher do on it blocks in the kernel, silently and forever. So it is reported once
per mount, as an error naming the call that hung, the filesystem and what to restart; the checks
that could not look at something on it say so briefly instead of repeating the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lspguard.doctor.model import Finding, Severity
from lspguard.procfs.fstypes import IfHung, fs_type

if TYPE_CHECKING:
    from lspguard.doctor.bounded import TimedOut
    from lspguard.procfs.mounts import Mount

__all__ = ["HungMount", "NotChecked", "not_answering", "out_of_time", "skipped", "timed_out"]

HUNG_ID = "filesystem.not-answering"


@dataclass(frozen=True, slots=True)
class HungMount:
    """The first call seen hanging on a mount (`mount` None: the path is on no known mount)."""

    mount: Mount | None
    op: str
    path: str
    seconds: float
    abandoned: bool  # the helper did not even die on SIGKILL

    @property
    def where(self) -> str:
        if self.mount is None:
            return f"the filesystem holding {self.path}"
        return f"{self.mount.fs_type} at {self.mount.mount_point}"


class NotChecked(Exception):
    """A probe was skipped or did not return; `finding` says so in the report."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.found)
        self.finding = finding


def _restart(h: HungMount) -> str:
    point = h.mount.mount_point if h.mount else h.path
    fix = fs_type(h.mount.fs_type if h.mount else "").if_hung
    if fix is IfHung.DOCKER_DESKTOP:
        return ("Restart Docker Desktop (its file sharing backend is what stopped answering: "
                "Troubleshoot > Restart, or switch the file sharing implementation to VirtioFS "
                "in Settings > General).")
    if fix is IfHung.SSH:
        return (f"The SSH connection behind it is gone: detach it (`fusermount3 -u -z {point}`) "
                "and mount it again with `-o reconnect,ServerAliveInterval=15`.")
    if fix is IfHung.SERVER:
        return (f"Check the server and the network to it; if it does not come back, detach it "
                f"(`umount -f -l {point}`) and mount it again.")
    if fix is IfHung.FUSE_DAEMON:
        return (f"Restart the FUSE daemon that serves it, or detach it (`fusermount3 -u -z "
                f"{point}`) and mount it again.")
    return f"Find out what serves {point} and restart it (check `dmesg` for errors)."


def not_answering(h: HungMount) -> Finding:
    """The error for one hung mount."""
    point = h.mount.mount_point if h.mount else h.path
    left = (" The probe did not even die on SIGKILL (it is in the kernel's uninterruptible "
            "wait) and was left behind; it ends once the filesystem answers." if h.abandoned
            else "")
    return Finding(
        HUNG_ID, Severity.ERROR, f"{h.where} is not answering",
        found=f"{h.op} on {h.path} did not return within {h.seconds:g} s: {h.where} is not "
              f"answering" + (f" (mounted from {h.mount.source})." if h.mount else ".") + left,
        why="gopls, the go command it runs and the editor's file watcher make the same calls "
            "there; each blocks in the kernel until the filesystem answers, which is the "
            "\"Loading packages...\" or \"Initializing...\" that never ends, often without a "
            "single log line, and a process blocked there may not die even on SIGKILL. The "
            "doctor gave up on its probe instead of waiting with it.",
        fix=_restart(h) + " If it keeps happening, move GOMODCACHE, GOCACHE or the workspace "
            "off this mount (a local directory, or a named volume in a container). Once it "
            f"answers again (`timeout 5 ls {point}` succeeds), reload the editor window: gopls "
            "and go processes stuck there only continue or die then.",
        path=h.path)


def skipped(check: str, what: str, path: str, h: HungMount) -> Finding:
    """What a check could not look at because it is on a hung mount."""
    return Finding(
        f"{check}.skipped", Severity.INFO, f"{what[:1].upper()}{what[1:]} was not checked",
        found=f"Not checked: {what}" + ("" if what == path else f" ({path})")
              + f" is on {h.where}, which is not answering (see {HUNG_ID}).", path=path)


def out_of_time(check: str, what: str, total: float) -> Finding:
    """A probe that was not started because the doctor's time budget was spent."""
    return Finding(
        f"{check}.skipped", Severity.WARNING, f"{what[:1].upper()}{what[1:]} was not checked",
        found=f"Not checked: the doctor's {total:g} s budget ran out before {what}.",
        why="Earlier probes took all the time; something on this machine is very slow or hung.",
        fix=f"Rerun `lspguard doctor --check {check}` on its own.")


def timed_out(check: str, what: str, t: TimedOut) -> Finding:
    """A probe that did not finish but cannot be pinned on one mount."""
    detail = t.describe() if t.path else f"the probe did not finish within {t.limit:g} s"
    return Finding(
        f"{check}.timeout", Severity.ERROR, f"{what[:1].upper()}{what[1:]} did not finish",
        found=f"Checking {what}: {detail}.",
        why="The check makes the same calls gopls does; what blocks it would block gopls in "
            "the same way.",
        fix=f"Rerun `lspguard doctor --check {check}`; if it times out again, look at what it "
            "touches with `ls`/`stat` in a terminal (see `lspguard doctor --help`).")

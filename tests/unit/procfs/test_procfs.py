"""lspguard.procfs, in process: small files, the mount table, the filesystem-type table, one
thread's facts, and the helper process that can be abandoned."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from lspguard.procfs.fstypes import MODERATE, SLOW, IfHung, IfSlow, Kind, fs_type
from lspguard.procfs.helper import Helper, abandoned
from lspguard.procfs.mounts import (
    Mount,
    is_within,
    mount_for,
    parse_mountinfo,
    parse_mounts,
    read_mount_table,
    read_mountinfo,
)
from lspguard.procfs.read import read_proc_bytes, read_proc_file
from lspguard.procfs.syscalls import describe_syscall
from lspguard.procfs.threads import (
    context_switches,
    io_counts,
    kernel_stack,
    task_ids,
    task_stat,
    task_syscall,
    wchan,
)

pytestmark = pytest.mark.timeout(20)


# ------------------------------------------------------------------------------------ read


def test_small_files_are_read_whole_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"  12 \n\xff\n")
    assert read_proc_file(str(tmp_path / "f")) == "12 \n\ufffd"
    assert read_proc_file(str(tmp_path / "missing")) is None
    assert read_proc_bytes(str(tmp_path / "f"), limit=3) == b"  1"
    assert read_proc_bytes(str(tmp_path / "missing")) is None
    environ = read_proc_bytes(f"/proc/{os.getpid()}/environ")
    assert environ is not None and b"\0" in environ


# ---------------------------------------------------------------------------------- mounts

MOUNTINFO = (
    "22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l\n"
    "35 22 0:40 /Users /work\\040space rw,nosuid - fuse.grpcfuse grpc\\040fuse rw,user_id=0\n"
    "36 35 8:1 / /work\\040space/sub rw shared:1 master:2 - ext4 /dev/vda1 rw\n"
    "40 22 0:50 / /short - tmpfs tmpfs\n"  # no options field, no superblock options
    "garbage\n"
    "41 22 0:51 / /no/separator ext4 /dev/x rw\n"
)


def test_mountinfo_fields() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in mounts] == ["/", "/work space", "/work space/sub", "/short"]
    share = mounts[1]
    assert share == Mount("/work space", "fuse.grpcfuse", "grpc fuse", "rw,nosuid", "/Users",
                          "rw,user_id=0")
    assert mounts[2].options == "rw" and mounts[2].super_options == "rw"
    assert mounts[3].options == "" and mounts[3].super_options == ""


def test_proc_mounts_fields() -> None:
    mounts = parse_mounts("a /x ext4 rw 0 0\nb /x/my\\040dir 9p rw,trans=virtio 0 0\nbad\n"
                          "c\\134d /y nfs4 ro 0 0\n")
    assert mounts == [Mount("/x", "ext4", "a", "rw"),
                      Mount("/x/my dir", "9p", "b", "rw,trans=virtio"),
                      Mount("/y", "nfs4", "c\\d", "ro")]


def test_only_octal_escapes_are_unescaped() -> None:
    (mount,) = parse_mounts("src /a\\089\\040b ext4 rw 0 0\n")
    assert mount.mount_point == "/a\\089 b"


def test_the_mount_holding_a_path() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    found = mount_for("/work space/go.work", mounts)
    assert found is not None and found.fs_type == "fuse.grpcfuse"
    found = mount_for("/work space/sub/x.go", mounts)
    assert found is not None and found.fs_type == "ext4"
    found = mount_for("/work space", mounts)
    assert found is not None and found.fs_type == "fuse.grpcfuse"
    found = mount_for("/work spacex/y", mounts)
    assert found is not None and found.mount_point == "/"
    found = mount_for("go.work", mounts)  # not absolute: the root mount, as the causes had it
    assert found is not None and found.mount_point == "/"
    shadowed = [Mount("/x", "ext4", "a"), Mount("/x", "nfs4", "b")]
    assert mount_for("/x/y", shadowed) == shadowed[1]  # the later mount on a point wins
    assert mount_for("/y", shadowed) is None
    assert mount_for("/y", []) is None


def test_is_within() -> None:
    assert is_within("/a/b", "/a") and is_within("/a", "/a") and is_within("/a", "/a/")
    assert is_within("/a", "/") and not is_within("a", "/")
    assert not is_within("/ab", "/a") and not is_within("/", "/a")


def test_own_mount_table() -> None:
    mounts = read_mountinfo()
    assert mounts and any(m.mount_point == "/" for m in mounts)
    assert read_mountinfo(os.getpid()) == mounts
    assert read_mount_table() == mounts
    assert read_mountinfo(2 ** 22 + 1) == []  # no such process


# --------------------------------------------------------------------------------- fstypes
# What each of the four tables fstypes.py replaced said, as their code had it: every column
# must keep what its user did.

_DOCTOR_SLOW = {
    "osxfs", "fuse.grpcfuse", "grpcfuse", "9p", "drvfs", "vboxsf", "vmhgfs", "fuse.vmhgfs-fuse",
    "prl_fs", "fuse.sshfs", "sshfs", "nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph",
    "glusterfs", "fuse.glusterfs", "lustre", "davfs", "fuse.davfs2", "fuse.rclone", "fuse.s3fs",
    "fuse.gcsfuse", "fuse.mountpoint-s3"}
_DOCTOR_MODERATE = {"virtiofs", "fakeowner"}
_HUNG_DOCKER = ("osxfs", "fuse.grpcfuse", "grpcfuse", "virtiofs", "fakeowner")
_HUNG_NETWORK = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph", "glusterfs", "lustre",
                 "9p", "drvfs")
_SLOW_SHARED = ("fuse.grpcfuse", "grpcfuse", "fuse.osxfs", "osxfs", "virtiofs", "fakeowner",
                "9p", "fuse.gcsfuse", "vboxsf", "prl_fs", "fuse.vmhgfs-fuse")
_SLOW_NETWORK = ("nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "sshfs", "ceph", "glusterfs")
_BUNDLE_SLOW = ("fuse", "osxfs", "virtiofs", "9p", "nfs", "cifs", "smb", "vboxsf", "fakeowner",
                "sshfs", "davfs")


def _old_tier(name: str) -> str | None:
    if name in _DOCTOR_SLOW:
        return SLOW
    if name in _DOCTOR_MODERATE or name == "fuse" or name.startswith(("fuse.", "fuseblk")):
        return MODERATE
    return None


def _old_if_hung(name: str) -> IfHung:
    if name in _HUNG_DOCKER:
        return IfHung.DOCKER_DESKTOP
    if "sshfs" in name:
        return IfHung.SSH
    if name in _HUNG_NETWORK or name.startswith("fuse.gcsfuse"):
        return IfHung.SERVER
    if name.startswith("fuse"):
        return IfHung.FUSE_DAEMON
    return IfHung.UNKNOWN


def _old_if_slow(name: str) -> IfSlow:
    if name in _SLOW_SHARED:
        return IfSlow.HOST_SHARING
    if name in _SLOW_NETWORK:
        return IfSlow.NETWORK
    return IfSlow.GENERIC


_NAMES = sorted({
    *_DOCTOR_SLOW, *_DOCTOR_MODERATE, *_HUNG_DOCKER, *_HUNG_NETWORK, *_SLOW_SHARED,
    *_SLOW_NETWORK, *_BUNDLE_SLOW,
    # families and near misses
    "fuse.faultfs", "fuse.tinyfuse", "fuseblk", "fuseblk2", "fusectl", "fuse3", "fuse.sshfs2",
    "sshfs2", "fuse.gcsfuse2", "fuse.osxfs2", "osxfs2", "virtiofs2", "9p2000", "nfsd", "nfs3",
    "smb2", "cifs2", "vboxsf2", "fakeowner2", "davfs2", "grpcfuse2", "drvfs2",
    # local and pseudo
    "ext4", "xfs", "btrfs", "overlay", "tmpfs", "proc", "sysfs", "cgroup2", "nsfs", "zfs",
    "iso9660", "", "something-new",
})


@pytest.mark.parametrize("name", _NAMES)
def test_every_column_keeps_what_its_user_did(name: str) -> None:
    row = fs_type(name)
    assert row.name == name
    assert row.tier == _old_tier(name)
    assert row.if_hung is _old_if_hung(name)
    assert row.if_slow is _old_if_slow(name)
    assert row.slow_or_foreign is name.startswith(_BUNDLE_SLOW)


def test_labels_as_the_doctor_writes_them() -> None:
    assert fs_type("fuse.grpcfuse").label == "gRPC FUSE, Docker Desktop's host file sharing"
    assert fs_type("virtiofs").label.startswith("VirtioFS, a VM host share")
    fuse = "a FUSE filesystem (every stat is a trip to a user daemon)"
    for name in ("fuse", "fuse.faultfs", "fuseblk", "fuse.osxfs", "fuse.sshfs2"):
        assert fs_type(name).label == f"{name}, {fuse}"
    assert fs_type("ext4").label == "ext4"


def test_kinds() -> None:
    assert fs_type("fuse.grpcfuse").kind is Kind.SHARED_FROM_HOST
    assert fs_type("9p").kind is Kind.SHARED_FROM_HOST
    assert fs_type("nfs4").kind is Kind.NETWORK
    assert fs_type("fuse.sshfs").kind is Kind.NETWORK
    assert fs_type("fuse.faultfs").kind is Kind.FUSE
    assert fs_type("ext4").kind is Kind.LOCAL
    assert fs_type("something-new").kind is Kind.LOCAL
    assert fs_type("proc").kind is Kind.PSEUDO
    assert fs_type("fusectl").kind is Kind.PSEUDO


# --------------------------------------------------------------------------------- threads


def test_a_thread_blocked_in_a_pipe_read() -> None:
    pid = os.getpid()
    r, w = os.pipe()
    reader = threading.Thread(target=os.read, args=(r, 1), name="blocked-reader")
    reader.start()
    try:
        tid = reader.native_id
        assert tid is not None and tid in task_ids(pid) and pid in task_ids(pid)
        deadline = time.monotonic() + 5
        while (stat := task_stat(pid, tid)) is not None and stat.state != "S":
            assert time.monotonic() < deadline, stat
            time.sleep(0.01)
        assert stat is not None and stat.comm and stat.utime_s is not None
        assert wchan(pid, tid)  # the kernel's name for the pipe wait ("0" if it hides it)
        parsed = task_syscall(pid, tid)
        assert parsed is not None and parsed.get("name") in ("read", None)
        if parsed.get("name") == "read":
            described = describe_syscall(pid, tid, parsed)
            assert described["fd"] == r and str(described["fd_path"]).startswith("pipe:[")
        assert context_switches(pid, tid) is not None
        counts = io_counts(pid, tid)
        assert counts is None or len(counts) == 4
        with contextlib.suppress(OSError):  # only root reads kernel stacks
            assert len(kernel_stack(pid, tid, limit=2)) <= 2
    finally:
        os.write(w, b"x")
        reader.join()
        os.close(r)
        os.close(w)


def test_a_thread_that_is_gone() -> None:
    gone = 2 ** 22 + 1
    assert task_stat(gone, gone) is None
    assert wchan(gone, gone) is None and task_syscall(gone, gone) is None
    assert io_counts(gone) is None and context_switches(gone, gone) is None
    with pytest.raises(OSError):
        task_ids(gone)
    with pytest.raises(OSError):
        kernel_stack(gone, gone)


# ---------------------------------------------------------------------------------- helper


def test_a_helper_that_finishes(tmp_path: Path) -> None:
    helper = Helper([sys.executable, "-I", "-S", "-c", "import os; print(os.getcwd())"],
                    cwd=str(tmp_path), stderr=False)
    try:
        assert helper.stderr is None
        assert helper.poll(10) == 0 and helper.returncode == 0
        assert helper.read_stdout().decode().strip() == str(tmp_path)
    finally:
        helper.close()


def test_a_helper_that_does_not_finish_is_killed_with_its_session() -> None:
    helper = Helper(["sh", "-c", "sleep 60 & echo $!; wait"], env={"PATH": os.environ["PATH"]})
    try:
        ready, _, _ = select.select([helper.stdout], [], [], 10)
        assert ready
        child = int(os.read(helper.stdout, 100))
        assert helper.poll(0.1) is None
        assert os.getsid(helper.pid) == helper.pid  # a session of its own
        assert helper.kill(grace=5)  # reaped: it was not stuck in the kernel
        assert helper.returncode == -signal.SIGKILL
        assert abandoned() == 0
        deadline = time.monotonic() + 5
        while (stat := read_proc_file(f"/proc/{child}/stat")) is not None \
                and stat.rpartition(")")[2].split()[0] != "Z":  # the session's other process
            assert time.monotonic() < deadline, stat
            time.sleep(0.01)
    finally:
        helper.close()

"""The one table of filesystem types: what serves each, and what each user of it makes of it.

A type is the third field of /proc/mounts ("ext4", "fuse.grpcfuse"). `fs_type(name)` gives its
row: the exact one below, else that of the longest family (a prefix: "fuse." is every FUSE
filesystem not listed), else a local disk. The columns:

- `kind`: what answers a call there: the network, the host of a VM or container (file sharing),
  a FUSE daemon, the kernel on a local disk, or the kernel alone (a pseudo filesystem);
- `label`: a human name, as the doctor writes it ("gRPC FUSE, Docker Desktop's host file
  sharing"); `{name}` in a family's label is the type;
- `tier`: how gopls's loads fare there (the doctor's mounts check): "slow", "moderate" or None;
- `if_hung`: what to restart when it stops answering (the doctor's hung-mount finding);
- `if_slow`: which fix the slow-mount state gives (supervise/slow.py): the host's file sharing,
  the network, or the generic one;
- `slow_or_foreign`: flagged so in an incident bundle's filesystems.

The last four columns were four lists that did not agree (9p was shared from the host for the
slow state but a network filesystem for the hung finding; grpcfuse, drvfs, ceph... were slow to
the doctor but not flagged in bundles): each column keeps what its user did.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final, Literal

__all__ = ["MODERATE", "SLOW", "FsType", "IfHung", "IfSlow", "Kind", "fs_type"]

SLOW: Final = "slow"
MODERATE: Final = "moderate"
Tier = Literal["slow", "moderate"]


class Kind(enum.Enum):
    NETWORK = "network"
    SHARED_FROM_HOST = "shared-from-host"  # a VM's or container's share of the host's files
    FUSE = "fuse"  # a user-space daemon, nothing more known
    LOCAL = "local"
    PSEUDO = "pseudo"  # made by the kernel: proc, sysfs, cgroup2...


class IfHung(enum.Enum):
    """What to restart when it stops answering."""

    DOCKER_DESKTOP = "docker-desktop"
    SSH = "ssh"  # the SSH connection behind it
    SERVER = "server"  # check the server and the network; detach and mount again
    FUSE_DAEMON = "fuse-daemon"
    UNKNOWN = "unknown"  # find out what serves it


class IfSlow(enum.Enum):
    """The fix when it answers, but slowly."""

    HOST_SHARING = "host-sharing"  # a volume, or Docker Desktop's file sharing mode
    NETWORK = "network"  # a local clone
    GENERIC = "generic"  # check the disk or the mount


@dataclass(frozen=True, slots=True)
class FsType:
    name: str
    kind: Kind
    label: str
    tier: Tier | None = None
    if_hung: IfHung = IfHung.UNKNOWN
    if_slow: IfSlow = IfSlow.GENERIC
    slow_or_foreign: bool = False


_NET, _HOST, _FUSE = Kind.NETWORK, Kind.SHARED_FROM_HOST, Kind.FUSE
_DOCKER, _SSH, _SERVER, _DAEMON = (IfHung.DOCKER_DESKTOP, IfHung.SSH, IfHung.SERVER,
                                   IfHung.FUSE_DAEMON)
_SHARING, _CLONE = IfSlow.HOST_SHARING, IfSlow.NETWORK
_A_FUSE_FS = "{name}, a FUSE filesystem (every stat is a trip to a user daemon)"

_TYPES: Final[tuple[FsType, ...]] = (
    # Shared from the host: Docker Desktop, WSL, VirtualBox, VMware, Parallels
    FsType("osxfs", _HOST, "osxfs, Docker for Mac's legacy file sharing",
           SLOW, _DOCKER, _SHARING, True),
    FsType("fuse.osxfs", _HOST, _A_FUSE_FS.format(name="fuse.osxfs"),
           MODERATE, _DAEMON, _SHARING, True),
    FsType("fuse.grpcfuse", _HOST, "gRPC FUSE, Docker Desktop's host file sharing",
           SLOW, _DOCKER, _SHARING, True),
    FsType("grpcfuse", _HOST, "gRPC FUSE, Docker Desktop's host file sharing",
           SLOW, _DOCKER, _SHARING, False),
    FsType("virtiofs", _HOST, "VirtioFS, a VM host share (Docker Desktop, Podman machine, Lima)",
           MODERATE, _DOCKER, _SHARING, True),
    FsType("fakeowner", _HOST, "fakeowner, Docker Desktop's host file sharing (over VirtioFS)",
           MODERATE, _DOCKER, _SHARING, True),
    FsType("9p", _HOST, "9p, a VM host share (WSL2 /mnt/<drive>, Lima, QEMU)",
           SLOW, _SERVER, _SHARING, True),
    FsType("drvfs", _HOST, "drvfs, a Windows drive seen from WSL", SLOW, _SERVER),
    FsType("vboxsf", _HOST, "vboxsf, a VirtualBox shared folder",
           SLOW, IfHung.UNKNOWN, _SHARING, True),
    FsType("vmhgfs", _HOST, "a VMware shared folder", SLOW),
    FsType("fuse.vmhgfs-fuse", _HOST, "a VMware shared folder", SLOW, _DAEMON, _SHARING, True),
    FsType("prl_fs", _HOST, "a Parallels shared folder", SLOW, IfHung.UNKNOWN, _SHARING),
    # Network filesystems, in the kernel or through FUSE
    FsType("sshfs", _NET, "sshfs, a filesystem over SSH", SLOW, _SSH, _CLONE, True),
    FsType("fuse.sshfs", _NET, "sshfs, a filesystem over SSH", SLOW, _SSH, _CLONE, True),
    FsType("nfs", _NET, "NFS, a network filesystem", SLOW, _SERVER, _CLONE, True),
    FsType("nfs4", _NET, "NFSv4, a network filesystem", SLOW, _SERVER, _CLONE, True),
    FsType("cifs", _NET, "SMB/CIFS, a network filesystem", SLOW, _SERVER, _CLONE, True),
    FsType("smb3", _NET, "SMB3, a network filesystem", SLOW, _SERVER, _CLONE, True),
    FsType("smbfs", _NET, "SMB, a network filesystem", SLOW, _SERVER, IfSlow.GENERIC, True),
    FsType("afs", _NET, "AFS, a network filesystem", SLOW, _SERVER),
    FsType("ceph", _NET, "CephFS, a network filesystem", SLOW, _SERVER, _CLONE),
    FsType("glusterfs", _NET, "GlusterFS, a network filesystem", SLOW, _SERVER, _CLONE),
    FsType("fuse.glusterfs", _NET, "GlusterFS, a network filesystem",
           SLOW, _DAEMON, IfSlow.GENERIC, True),
    FsType("lustre", _NET, "Lustre, a network filesystem", SLOW, _SERVER),
    FsType("davfs", _NET, "WebDAV", SLOW, IfHung.UNKNOWN, IfSlow.GENERIC, True),
    FsType("fuse.davfs2", _NET, "WebDAV", SLOW, _DAEMON, IfSlow.GENERIC, True),
    FsType("fuse.rclone", _NET, "rclone, a cloud storage mount",
           SLOW, _DAEMON, IfSlow.GENERIC, True),
    FsType("fuse.s3fs", _NET, "s3fs, an object storage mount",
           SLOW, _DAEMON, IfSlow.GENERIC, True),
    FsType("fuse.gcsfuse", _NET, "gcsfuse, an object storage mount",
           SLOW, _SERVER, _SHARING, True),
    FsType("fuse.mountpoint-s3", _NET, "Mountpoint for S3, an object storage mount",
           SLOW, _DAEMON, IfSlow.GENERIC, True),
    # FUSE with nothing more known
    FsType("fuse", _FUSE, _A_FUSE_FS.format(name="fuse"),
           MODERATE, _DAEMON, IfSlow.GENERIC, True),
    # Made by the kernel (two are flagged in bundles: their names begin like fuse and nfs)
    FsType("fusectl", Kind.PSEUDO, "fusectl", None, _DAEMON, IfSlow.GENERIC, True),
    FsType("nfsd", Kind.PSEUDO, "nfsd", slow_or_foreign=True),
    *(FsType(name, Kind.PSEUDO, name) for name in (
        "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs",
        "securityfs", "pstore", "bpf", "configfs", "hugetlbfs", "binfmt_misc", "autofs",
        "nsfs", "rpc_pipefs", "efivarfs", "selinuxfs")),
    *(FsType(name, Kind.LOCAL, name) for name in (
        "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "overlay", "tmpfs", "ramfs",
        "devtmpfs", "vfat", "exfat", "ntfs3", "squashfs", "erofs", "iso9660")),
)

# Types not listed above, by the longest prefix of their name.
_FAMILIES: Final[tuple[tuple[str, FsType], ...]] = (
    ("fuse.", FsType("", _FUSE, _A_FUSE_FS, MODERATE, _DAEMON, IfSlow.GENERIC, True)),
    ("fuseblk", FsType("", _FUSE, _A_FUSE_FS, MODERATE, _DAEMON, IfSlow.GENERIC, True)),
    ("fuse.sshfs", FsType("", _NET, _A_FUSE_FS, MODERATE, _SSH, IfSlow.GENERIC, True)),
    ("fuse.gcsfuse", FsType("", _NET, _A_FUSE_FS, MODERATE, _SERVER, IfSlow.GENERIC, True)),
    ("fuse", FsType("", _FUSE, "{name}", None, _DAEMON, IfSlow.GENERIC, True)),
    ("sshfs", FsType("", _NET, "{name}", None, _SSH, IfSlow.GENERIC, True)),
    *((prefix, FsType("", kind, "{name}", slow_or_foreign=True)) for prefix, kind in (
        ("osxfs", _HOST), ("virtiofs", _HOST), ("9p", _HOST), ("vboxsf", _HOST),
        ("fakeowner", _HOST), ("nfs", _NET), ("cifs", _NET), ("smb", _NET), ("davfs", _NET))),
)

_BY_NAME: Final[dict[str, FsType]] = {t.name: t for t in _TYPES}


def fs_type(name: str) -> FsType:
    """The row of filesystem type `name` (any string: an unknown one is a local disk)."""
    known = _BY_NAME.get(name)
    if known is not None:
        return known
    family = max((p for p in _FAMILIES if name.startswith(p[0])), key=lambda p: len(p[0]),
                 default=None)
    if family is None:
        return FsType(name, Kind.LOCAL, name)
    return replace(family[1], name=name, label=family[1].label.format(name=name))

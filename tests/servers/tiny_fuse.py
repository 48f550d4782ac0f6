"""A tiny pass-through FUSE filesystem (mfusepy over libfuse3) for hung-mount tests.

    python tiny_fuse.py SOURCE MOUNTPOINT [STALL_FILE]

Mirrors SOURCE at MOUNTPOINT in the foreground, single-threaded, with every kernel cache
disabled (attr/entry/negative timeouts 0), so each stat reaches this process. Two ways to make
the mount stop answering, as a wedged Docker Desktop or sshfs does:

- SIGSTOP this process: requests queue in the kernel unread, and callers block in
  `request_wait_answer`, where SIGKILL still ends them. SIGCONT answers them.
- create STALL_FILE: each call is read, then held until the file is removed. A caller killed
  meanwhile cannot die (its request is in userspace): it sits in D state until the answer.

`fusermount3 -u -z MOUNTPOINT` plus SIGTERM ends it. The type in mountinfo is `fuse.tinyfuse`.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import Any

import mfusepy


class Passthrough(mfusepy.Operations):  # type: ignore[misc]
    """Every call on the mount is the same call on SOURCE."""

    use_ns = True

    def __init__(self, root: str, stall_file: str) -> None:
        self.root = root
        self.stall_file = stall_file

    def _p(self, path: str) -> str:
        while self.stall_file and os.path.exists(self.stall_file):
            time.sleep(0.02)
        return os.path.join(self.root, path.lstrip("/"))

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        try:
            st = os.lstat(self._p(path))
        except OSError as exc:
            raise mfusepy.FuseOSError(exc.errno or errno.EIO) from None
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns",
                "st_mtime_ns", "st_ctime_ns")
        attrs = {k.removesuffix("_ns"): getattr(st, k) for k in keys}
        return attrs

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *os.listdir(self._p(path))]

    def readlink(self, path: str) -> str:
        return os.readlink(self._p(path))

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._p(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def open(self, path: str, flags: int) -> int:
        return os.open(self._p(path), flags)

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        return os.open(self._p(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        os.truncate(self._p(path), length)
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0

    def unlink(self, path: str) -> int:
        os.unlink(self._p(path))
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._p(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._p(path))
        return 0

    def mknod(self, path: str, mode: int, dev: int) -> int:
        os.mknod(self._p(path), mode, dev)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize",
                                            "f_favail", "f_ffree", "f_files", "f_flag",
                                            "f_frsize", "f_namemax")}


def main() -> None:
    source, mountpoint, stall_file = [*sys.argv[1:], ""][:3]
    mfusepy.FUSE(Passthrough(os.path.abspath(source), stall_file), mountpoint, foreground=True,
                 nothreads=True, fsname="tinyfuse", subtype="tinyfuse", attr_timeout=0,
                 entry_timeout=0, negative_timeout=0)


if __name__ == "__main__":
    main()

"""The mount table as a process sees it (/proc/PID/mountinfo), and the mount a path is on.

Pure string work: nothing here stats a path (a path on a hung mount would hang the caller), and
nothing heavy is imported, so the slow-filesystem watch can use it on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Mount", "mount_for", "parse_mountinfo"]


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fs_type: str
    source: str


def parse_mountinfo(text: str) -> tuple[Mount, ...]:
    """Mounts from /proc/PID/mountinfo: mount point, filesystem type ("fuse.grpcfuse"), source."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return tuple(mounts)


def _unescape(field_text: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134."""
    if "\\" not in field_text:
        return field_text
    out, i = [], 0
    while i < len(field_text):
        chunk = field_text[i:i + 4]
        if len(chunk) == 4 and chunk[0] == "\\" and chunk[1:].isdigit():
            out.append(chr(int(chunk[1:], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def mount_for(path: str, mounts: tuple[Mount, ...]) -> Mount | None:
    """The mount `path` is on: the longest mount point that is a prefix of it (the last one
    mounted there wins, as in the kernel). No filesystem access."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point
        inside = path == point or path.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best

"""Is this file an lspguard shim? The test every gopls lookup applies to its candidates.

A shim is named `gopls` and is usually on PATH, so looking up the real gopls must skip it,
whichever kind it is: the script (the marker line in its first 512 bytes) or the native
launcher (a small Go program whose build info names MODULE; launcher/find.go applies the same
rule). Standard library only: run on every lookup, `gopls version` through a shim included.
"""

from __future__ import annotations

import mmap
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MODULE", "SCRIPT_WARNING", "SHIM_MARKER", "is_native_shim", "is_script_shim",
           "is_shim"]

#: The line that identifies a script shim (searched for in the first 512 bytes).
SHIM_MARKER = "# lspguard-shim"
_MARKER_BYTES = SHIM_MARKER.encode()
_MARKER_WINDOW = 512

#: Why a script shim makes VS Code Go warn (doctor and install-shim say it).
SCRIPT_WARNING = ("VS Code Go runs `go version -m` on the gopls it is given, which fails on a "
                  "script: it will warn \"Tools (gopls) need recompiling\" at every start")

#: The native shim's Go module path: what `go version -m` prints on it.
MODULE = "lspguard/gopls-shim"
_MODULE_LINE = f"path\t{MODULE}\n".encode()
_MAX_NATIVE_SIZE = 16 << 20  # a native shim is a few MiB; a real gopls is over 20: not read


def is_script_shim(path: Path) -> bool:
    """True if `path` (followed through symlinks) is a script shim: has the marker line."""
    try:
        if not os.path.isfile(path):  # never open a FIFO or device: it could block
            return False
        with open(path, "rb") as f:
            head = f.read(_MARKER_WINDOW)
    except OSError:
        return False
    return any(line.strip() == _MARKER_BYTES for line in head.splitlines())


def is_native_shim(path: str | os.PathLike[str]) -> bool:
    """True if `path` is a native shim: a regular file of at most a few MiB whose Go build
    info names MODULE."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not 0 < size <= _MAX_NATIVE_SIZE:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return data.find(_MODULE_LINE) >= 0
    except (OSError, ValueError):
        return False


def is_shim(path: Path) -> bool:
    """True if `path` is an lspguard shim of either kind."""
    return is_script_shim(path) or is_native_shim(path)

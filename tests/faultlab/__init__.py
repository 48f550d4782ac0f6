"""A real-kernel fault lab for the tests: mounts, sockets and files that make callers block.

    fusefs    FuseMount / fuse_mount() / the `faultfs` fixture: a FUSE pass-through mount that
              stops answering ("handler" or "stop"), like a wedged Docker Desktop bind mount
    netpeer   SilentPeer / silent_peer(): a loopback TCP peer that never answers (a GOPROXY)
    special   PlantedFifo / planted_fifo(): a FIFO posing as a .go file (open blocks)
    procinfo  what a blocked thread waits on: state, wchan, syscall and its path argument

See README.md for the kernel waits each fault produces and how cleanup works. To use the fixture
in a test module: `from .faultlab import faultfs  # noqa: F401` (or import it in a conftest).
"""

from __future__ import annotations

from .fusefs import (
    FS_NAME,
    FaultLabError,
    FuseMount,
    HangMode,
    faultfs,
    find_mount,
    fuse_mount,
    fuse_unavailable,
    require_fuse,
)
from .netpeer import SilentPeer, silent_peer, socket_inodes, tcp_connections
from .procinfo import ThreadWait, threads, tree, wait_for_wchan, waits_in
from .special import FIFO_NAME, PlantedFifo, plant_fifo, planted_fifo

__all__ = [
    "FIFO_NAME",
    "FS_NAME",
    "FaultLabError",
    "FuseMount",
    "HangMode",
    "PlantedFifo",
    "SilentPeer",
    "ThreadWait",
    "faultfs",
    "find_mount",
    "fuse_mount",
    "fuse_unavailable",
    "plant_fifo",
    "planted_fifo",
    "require_fuse",
    "silent_peer",
    "socket_inodes",
    "tcp_connections",
    "threads",
    "tree",
    "wait_for_wchan",
    "waits_in",
]

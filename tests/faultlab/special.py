"""Special files that make `go list` (and gopls) block in the kernel: a FIFO posing as a .go file.

    with planted_fifo(module_dir) as fifo:   # module_dir/zz_fifo.go, a named pipe
        ...                                  # `go list ./...` opens it: blocks, no writer
        fifo.release()                       # wake whoever is blocked opening it (they read EOF)

Opening a FIFO for reading blocks until some process opens it for writing: the opener sleeps in
wchan `wait_for_partner` (fifo_open), state S, in openat(2) on the FIFO's path. Nothing answers,
nothing times out: only a writer (or a signal) ends it. Go's os.Open does not use O_NONBLOCK for
files, so the Go thread doing the open is stuck in the syscall (the Go runtime moves on with other
threads: the process is not frozen, one goroutine is).

`release()` opens the FIFO for writing without blocking (O_WRONLY|O_NONBLOCK: ENXIO when nobody
waits, which is then a no-op) and closes it again: every blocked opener returns and its reads see
EOF. `remove()` (and __exit__) keeps a read+write handle open while it unlinks the FIFO, so any
opener is woken, no new opener can find it, and closing the handle leaves them all at EOF.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

FIFO_NAME = "zz_fifo.go"  # sorts last: go list has read every real file before it reaches it


class PlantedFifo:
    """A named pipe at `path`, with bounded ways to unblock its readers and remove it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def release(self) -> bool:
        """Wake the processes blocked opening the FIFO (True if any was waiting)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENOENT):  # no reader waits / already gone
                return False
            raise
        os.close(fd)
        return True

    def remove(self) -> None:
        """Unlink the FIFO, waking any blocked opener first; idempotent."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISFIFO(st.st_mode):
            raise RuntimeError(f"{self.path} is no longer a FIFO")
        # O_RDWR on a FIFO never blocks on Linux and counts as a writer: blocked openers wake.
        fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        finally:
            os.close(fd)  # no writer left: the woken readers read EOF

    def __enter__(self) -> PlantedFifo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def plant_fifo(directory: str | Path, name: str = FIFO_NAME) -> PlantedFifo:
    """Create the named pipe `directory/name` (e.g. a Go package dir) and return it."""
    path = Path(directory) / name
    os.mkfifo(path, 0o644)
    return PlantedFifo(path)


@contextlib.contextmanager
def planted_fifo(directory: str | Path, name: str = FIFO_NAME) -> Iterator[PlantedFifo]:
    """plant_fifo() for the duration of the block; removed (readers woken) afterwards."""
    with plant_fifo(directory, name) as fifo:
        yield fifo

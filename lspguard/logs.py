"""Per-session log files under the user state dir; never stdout (that is the LSP stream)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING

from lspguard import paths

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["RotatingLog", "setup_session_logging"]

KEEP_SESSION_LOGS = 50
_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"
_DATEFMT = "%Y-%m-%dT%H:%M:%S"


def setup_session_logging(level: str = "info", *, to_stderr: bool = False) -> Path | None:
    """Log to a new 0600 file `logs/<time>-<pid>.log` (rotating) and optionally stderr.

    Returns the log file, or None if the state dir is unusable (then only stderr is used, so a
    read-only home never stops the editor from getting a language server).
    """
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    formatter = logging.Formatter(_FORMAT, _DATEFMT)
    path: Path | None = None
    try:
        directory = paths.logs_dir()
        path = directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        handler: logging.Handler = RotatingLog(path, max_bytes=10 * 1024 * 1024, backups=2)
        handler.setFormatter(formatter)
        root.addHandler(handler)
        _prune(directory)
    except OSError as exc:
        path = None
        to_stderr = True
        print(f"lspguard: cannot open a session log ({exc}); logging to stderr", file=sys.stderr)
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        root.addHandler(stream)
    return path


class RotatingLog(logging.FileHandler):
    """A 0600 log file that is renamed to .1 (.1 to .2, ...) when it reaches `max_bytes`.

    logging.handlers.RotatingFileHandler's scheme, without importing logging.handlers (socket,
    pickle, queue, threading: ~10 ms of the proxy's start-up), and each new file is created
    0600 too (open() would give it the umask's mode)."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.max_bytes, self.backups = max_bytes, backups
        os.close(_create_private(path))
        super().__init__(path, encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is not None and self.stream.tell() >= self.max_bytes:
                self._rotate()
        except Exception:
            self.handleError(record)
            return
        super().emit(record)

    def _rotate(self) -> None:
        if self.stream is not None:
            self.stream.close()
        base = self.baseFilename
        for i in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{base}.{i}"):
                os.replace(f"{base}.{i}", f"{base}.{i + 1}")
        if self.backups > 0:
            os.replace(base, f"{base}.1")
        else:
            os.truncate(base, 0)
        os.close(_create_private(base))
        self.stream = self._open()


def _create_private(path: str | os.PathLike[str]) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def _prune(directory: Path) -> None:
    """Keep the newest KEEP_SESSION_LOGS session logs (and their rotations)."""
    logs = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[KEEP_SESSION_LOGS:]:
        for file in directory.glob(old.name + "*"):
            file.unlink(missing_ok=True)

"""Per-session log files under the user state dir; never stdout (that is the LSP stream)."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from typing import TYPE_CHECKING

from lspguard import paths

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["setup_session_logging"]

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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=10 * 1024 * 1024, backupCount=2, encoding="utf-8")
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


def _prune(directory: Path) -> None:
    """Keep the newest KEEP_SESSION_LOGS session logs (and their rotations)."""
    logs = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[KEEP_SESSION_LOGS:]:
        for file in directory.glob(old.name + "*"):
            file.unlink(missing_ok=True)

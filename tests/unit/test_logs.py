"""The session log rotates like logging.handlers.RotatingFileHandler, and every file is 0600."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from lspguard.logs import RotatingLog


def test_rotates_at_max_bytes_keeps_backups_and_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    handler = RotatingLog(path, max_bytes=100, backups=2)
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for i in range(12):  # 12 lines of 30 bytes: three files' worth and more
            handler.emit(logging.makeLogRecord({"msg": f"{i:02d}" + "x" * 27}))
    finally:
        handler.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["s.log", "s.log.1", "s.log.2"]
    lines = [line for name in ("s.log.2", "s.log.1", "s.log")
             for line in (tmp_path / name).read_text().splitlines()]
    assert [int(line[:2]) for line in lines] == list(range(12 - len(lines), 12))  # newest kept
    for name in files:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
        assert (tmp_path / name).stat().st_size <= 100 + 30

"""Handshake timing: `initialize` -> result, and `initialized` -> end of the first server work.

gopls reports its initial workspace load as work-done progress ("Setting up workspace",
"Loading packages..."), so the time until the first progress token that began after
`initialized` ends is what the user experiences as "gopls is ready".
"""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["HandshakeTimer"]

log = logging.getLogger(__name__)


class HandshakeTimer:
    """Fed by the session with the few messages that matter; all times are monotonic seconds."""

    def __init__(self) -> None:
        self.initialize_sent: float | None = None
        self.initialize_ms: float | None = None
        self.initialized_sent: float | None = None
        self.first_work_title: str | None = None
        self.first_work_ms: float | None = None
        self._first_token: Any = None

    @property
    def watching_progress(self) -> bool:
        """True while the first work-done progress has not ended (only then decode $/progress)."""
        return self.initialized_sent is not None and self.first_work_ms is None

    @property
    def awaiting_initialize(self) -> bool:
        return self.initialize_sent is not None and self.initialize_ms is None

    def on_initialize_sent(self, now: float | None = None) -> None:
        self.initialize_sent = time.monotonic() if now is None else now

    def on_initialize_answered(self, now: float | None = None) -> None:
        if self.initialize_sent is None or self.initialize_ms is not None:
            return
        self.initialize_ms = ((time.monotonic() if now is None else now)
                              - self.initialize_sent) * 1000
        log.info("handshake: initialize answered in %.1f ms", self.initialize_ms)

    def on_initialized_sent(self, now: float | None = None) -> None:
        if self.initialized_sent is None:
            self.initialized_sent = time.monotonic() if now is None else now

    def on_progress(self, params: Any, now: float | None = None) -> None:
        """Feed the params of a server `$/progress` notification."""
        if not self.watching_progress or not isinstance(params, dict):
            return
        value = params.get("value")
        if not isinstance(value, dict):
            return
        kind, token = value.get("kind"), params.get("token")
        if kind == "begin" and self._first_token is None:
            self._first_token = token
            self.first_work_title = str(value.get("title", ""))
        elif kind == "end" and self._first_token is not None and token == self._first_token:
            assert self.initialized_sent is not None
            self.first_work_ms = ((time.monotonic() if now is None else now)
                                  - self.initialized_sent) * 1000
            log.info("handshake: first server work %r done %.1f ms after initialized",
                     self.first_work_title, self.first_work_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "initialize_ms": _round(self.initialize_ms),
            "first_work_title": self.first_work_title,
            "first_work_ms": _round(self.first_work_ms),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

"""What the scripted session saw, normalised so that two runs (direct, and through lspguard)
compare equal with `==`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HangTranscript", "SessionTranscript", "hover_text_of"]


@dataclass(frozen=True)
class SessionTranscript:
    """What the server answered, normalised so two runs compare equal with `==`.

    Fields marked `compare=False` (timings, progress titles, pids, stderr) differ from run to run
    or between routes and are kept for reporting only.
    """

    server_name: str
    server_version: str | None
    position_encoding: str
    hover_position: dict[str, int]
    hover: Any
    definition: Any
    diagnostics: Any
    edited_hover_position: dict[str, int]
    edited_hover: Any
    exit_code: int | None
    timings_ms: dict[str, float] = field(compare=False, default_factory=dict)
    progress: tuple[str, ...] = field(compare=False, default=())
    initial_progress: tuple[str, ...] = field(compare=False, default=())  # until initial work ends
    server_pid: int | None = field(compare=False, default=None)
    log_messages: tuple[str, ...] = field(compare=False, default=())
    stderr_tail: str = field(compare=False, default="")
    hang: HangTranscript | None = field(compare=False, default=None)

    @property
    def hover_text(self) -> str:
        return hover_text_of(self.hover)

    @property
    def edited_hover_text(self) -> str:
        return hover_text_of(self.edited_hover)


@dataclass(frozen=True)
class HangTranscript:
    """What the editor saw when the server hung and after lspguard replaced it."""

    stopped_pid: int  # the server process `hang` stopped
    stopped_at: float  # time.time() just after it was stopped
    first_answer: str  # how the hover sent during the hang was answered
    first_answer_s: float  # seconds from the stop to that answer
    asked: int  # hovers sent until one got a result
    recovered_s: float  # seconds from the stop to the first hover answered with a result
    hover: Any  # that result (normalised)
    told: str  # the window/showMessage that names the incident report

    @property
    def hover_text(self) -> str:
        return hover_text_of(self.hover)


def hover_text_of(hover: Any) -> str:
    """The text of a normalised hover result (markup, a string, or a list of them)."""
    if not isinstance(hover, dict):
        return ""
    contents = hover.get("contents")
    if isinstance(contents, dict):
        return str(contents.get("value", ""))
    if isinstance(contents, list):
        return "\n".join(c.get("value", "") if isinstance(c, dict) else str(c) for c in contents)
    return str(contents or "")

"""What a live session hands to the incident bundle: one frozen value, no references back.

The session builds an `IncidentContext` from its own state at the moment of a verdict (or of an
on-demand snapshot) and the collectors read only this value, so taking evidence never reaches into
objects the relay keeps mutating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["IncidentContext", "RecentMessage"]


class RecentMessage(NamedTuple):
    """One LSP message in the session's ring (a tuple: the relay makes one per frame)."""

    t_monotonic: float
    t_wall: float
    direction: str  # "client->server" | "server->client"
    generation: int
    kind: str  # "request" | "response" | "notification"
    id: int | str | None
    method: str | None
    size: int  # body bytes
    body: bytes | None  # None when the message was too large to keep


@dataclass(frozen=True, kw_only=True)
class IncidentContext:
    """Everything a bundle is written from.

    `request_timeline` holds completed requests, each
    `{"method", "start": wall seconds, "duration_ms", "generation", "ok": bool}` (an `"error"`
    string may be added). `pending` holds `{"direction", "id", "method", "age_ms"}` as in the
    status file; `latency` is `LatencyStats.summary()`.
    """

    verdict: dict[str, Any] | None  # Verdict.as_dict(); None for an on-demand snapshot
    reason: str
    generation: int
    backend_pid: int | None
    backend_argv: list[str]
    backend_env_overlay: dict[str, str] = field(default_factory=dict)
    debug_address: str | None = None  # gopls debug server, "127.0.0.1:PORT"
    handshake: dict[str, Any] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[str, dict[str, float | int]] = field(default_factory=dict)
    recent_messages: list[RecentMessage] = field(default_factory=list)
    request_timeline: list[dict[str, Any]] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    session_log: str | None = None
    workspace_folders: list[str] = field(default_factory=list)
    include_text: bool = False  # opt out of redacting source text in the bundle
    started_at: float = 0.0  # wall clock of the session start
    lspguard_version: str = ""

    @property
    def kind(self) -> str:
        """The verdict kind, or "snapshot" when the user asked for evidence."""
        if self.verdict and isinstance(self.verdict.get("kind"), str):
            return str(self.verdict["kind"])
        return "snapshot"

    @property
    def sentence(self) -> str:
        """The one sentence a report leads with."""
        if self.verdict and self.verdict.get("summary"):
            return str(self.verdict["summary"])
        return f"On-demand snapshot: {self.reason}" if self.reason else "On-demand snapshot."

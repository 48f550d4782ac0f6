"""Requests in flight, keyed by (direction, id), and per-method latency.

Client and server number their requests independently, so the same id can be in flight both ways
at once (lsp-devtools matches on id alone and gets this wrong): the key is always (direction, id).
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Direction", "LatencyStats", "PendingRequest", "PendingTable", "RequestId"]

RequestId = int | str


class Direction(enum.Enum):
    """Who sent the request: the editor (to the server) or the server (to the editor)."""

    CLIENT_TO_SERVER = "client->server"
    SERVER_TO_CLIENT = "server->client"

    __hash__ = object.__hash__  # singletons: hash by identity, in C (keys of every request)


@dataclass(slots=True)
class PendingRequest:
    direction: Direction
    id: RequestId
    method: str
    started: float  # time.monotonic()
    generation: int

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


class PendingTable:
    """Requests sent but not yet answered."""

    def __init__(self) -> None:
        self._items: dict[tuple[Direction, RequestId], PendingRequest] = {}

    def add(self, direction: Direction, id: RequestId, method: str, generation: int = 0,
            now: float | None = None) -> PendingRequest:
        req = PendingRequest(direction, id, method,
                             time.monotonic() if now is None else now, generation)
        self._items[(direction, id)] = req
        return req

    def pop(self, direction: Direction, id: RequestId) -> PendingRequest | None:
        """Remove and return the request `direction` sent with `id` (None if unknown)."""
        return self._items.pop((direction, id), None)

    def get(self, direction: Direction, id: RequestId) -> PendingRequest | None:
        return self._items.get((direction, id))

    def in_direction(self, direction: Direction) -> list[PendingRequest]:
        return [r for r in self._items.values() if r.direction is direction]

    def oldest(self) -> PendingRequest | None:
        return min(self._items.values(), key=lambda r: r.started, default=None)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[PendingRequest]:
        """A snapshot: the table may change while the caller iterates."""
        return iter(list(self._items.values()))


class LatencyStats:
    """Per-method round-trip times: a bounded window of recent samples for percentiles."""

    def __init__(self, window: int = 512) -> None:
        self._window = window
        self._samples: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}

    def record(self, method: str, seconds: float) -> None:
        samples = self._samples.get(method)
        if samples is None:
            samples = self._samples[method] = deque(maxlen=self._window)
        samples.append(seconds)
        self._counts[method] = self._counts.get(method, 0) + 1

    def summary(self) -> dict[str, dict[str, float | int]]:
        """{method: {count, p50_ms, p99_ms, max_ms}} over the recent window."""
        out: dict[str, dict[str, float | int]] = {}
        for method, samples in self._samples.items():
            ordered = sorted(samples)
            out[method] = {
                "count": self._counts[method],
                "p50_ms": round(_percentile(ordered, 0.50) * 1000, 3),
                "p99_ms": round(_percentile(ordered, 0.99) * 1000, 3),
                "max_ms": round(ordered[-1] * 1000, 3),
            }
        return out


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list: the ceil(q*n)-th value."""
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]

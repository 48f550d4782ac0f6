"""Waiting on a condition with a deadline: the one sync and the one async helper of the tests.

Both return the condition's first truthy value, or its last (falsy) one once the time given
has passed; the caller asserts, with a message saying what did not happen. The condition may
raise (an assertion that something has already gone wrong ends the wait at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, interval: float = 0.02) -> T:
    """Poll `condition` every `interval` seconds until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


async def wait_until_async(condition: Callable[[], T], within: float, *,
                           woken_by: asyncio.Event | None = None, interval: float = 0.02) -> T:
    """`wait_until` without blocking the event loop: the condition is checked again each time
    `woken_by` is set (a client's "a message came" event: no polling), or else every
    `interval` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        remaining = deadline - time.monotonic()
        if value or remaining <= 0:
            return value
        if woken_by is None:
            await asyncio.sleep(min(interval, remaining))
            continue
        woken_by.clear()  # no await since the check: nothing could have set it in between
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await woken_by.wait()

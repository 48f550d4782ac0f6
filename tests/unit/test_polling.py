"""The two waiting helpers: they return what held, and give up (falsy) at their deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from ..polling import wait_until, wait_until_async

pytestmark = pytest.mark.timeout(10)


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = iter([None, 0, "found"])
    assert wait_until(lambda: next(calls), 5, interval=0.001) == "found"


def test_wait_until_gives_up_with_the_last_value() -> None:
    began = time.monotonic()
    assert wait_until(lambda: [], 0.1) == []
    assert 0.1 <= time.monotonic() - began < 2


async def test_wait_until_async_is_woken_by_its_event() -> None:
    changed = asyncio.Event()
    seen: list[int] = []

    def message() -> None:
        seen.append(1)
        changed.set()

    asyncio.get_running_loop().call_later(0.05, message)
    assert await wait_until_async(lambda: bool(seen), 5, woken_by=changed)


async def test_wait_until_async_gives_up_at_its_deadline() -> None:
    began = time.monotonic()
    assert not await wait_until_async(lambda: False, 0.1, woken_by=asyncio.Event())
    assert not await wait_until_async(lambda: False, 0.1)
    assert 0.2 <= time.monotonic() - began < 2

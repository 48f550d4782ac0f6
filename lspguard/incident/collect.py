"""Run evidence collectors side by side, each under its own timeout, none able to fail the bundle.

A collector is an async callable that returns its data. Whatever happens to it (an exception, its
own timeout, the bundle's overall deadline) becomes a `CollectorResult` with a status and an error
line, so a broken `/proc` read or a debug server that never answers is itself recorded as evidence
instead of stopping the others. Blocking work runs in worker threads that are *abandoned* on
timeout: a read of `/proc/PID/cmdline` can block for as long as the process holds its mmap lock
(exactly what a process stuck on a hung filesystem does), and recovery must not wait for it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["Collector", "CollectorResult", "Skipped", "in_thread", "run_bounded",
           "run_collectors", "threads_still_blocked"]

Status = Literal["ok", "error", "timeout", "skipped"]


class Skipped(Exception):
    """Raised by a collector that has nothing to collect; the message says why."""


@dataclass
class CollectorResult:
    name: str
    status: Status = "timeout"
    seconds: float = 0.0
    error: str | None = None
    data: Any = None

    def as_dict(self) -> dict[str, Any]:
        """What incident.json records about the collector (the data goes to its own file)."""
        return {"status": self.status, "seconds": round(self.seconds, 3), "error": self.error}


@dataclass
class Collector:
    name: str
    run: Callable[[], Awaitable[Any]]
    timeout: float
    # Names of collectors to wait for first (each is waited for only until its own end).
    after: tuple[str, ...] = ()
    # When the session ends mid-collection: cancel it, or wait for it (up to `timeout`)
    # because it is quick and central to every bundle, or ends early by itself.
    when_hurried: Literal["cancel", "wait"] = "cancel"
    done: anyio.Event = field(default_factory=anyio.Event)


_busy_threads = 0
_busy_lock = threading.Lock()


def threads_still_blocked() -> int:
    """How many `in_thread` calls have not returned (abandoned ones included)."""
    return _busy_threads


async def in_thread(func: Callable[[], Any]) -> Any:
    """Run blocking `func` in a worker thread that is abandoned (not waited for) on cancel."""

    def counted() -> Any:
        global _busy_threads
        with _busy_lock:
            _busy_threads += 1
        try:
            return func()
        finally:
            with _busy_lock:
                _busy_threads -= 1

    return await anyio.to_thread.run_sync(counted, abandon_on_cancel=True)


async def run_collectors(collectors: Sequence[Collector], deadline: float,
                         hurry: anyio.Event | None = None) -> dict[str, CollectorResult]:
    """Run `collectors` concurrently until each ends or `deadline` (time.monotonic()) passes.

    Once `hurry` is set (the session is ending), collectors that are not `essential` stop and
    the bundle gets what they had, except those that say to wait for them."""
    results = {c.name: CollectorResult(c.name) for c in collectors}
    by_name = {c.name: c for c in collectors}
    scopes = {c.name: anyio.CancelScope() for c in collectors if c.when_hurried == "cancel"}

    async def one(collector: Collector) -> None:
        result = results[collector.name]
        try:
            for name in collector.after:
                if name in by_name:
                    await by_name[name].done.wait()
            started = time.monotonic()
            timeout = min(collector.timeout, deadline - started)
            result.error = result.error or f"did not finish within {timeout:.1f} s"
            try:
                with scopes.get(collector.name) or anyio.CancelScope(), \
                        anyio.fail_after(max(timeout, 0.0)):
                    result.data = await collector.run()
                    result.status, result.error = "ok", None
            except TimeoutError:
                result.status = "timeout"
            except Skipped as exc:
                result.status, result.error = "skipped", str(exc)
            except Exception as exc:
                result.status, result.error = "error", f"{type(exc).__name__}: {exc}"
            result.seconds = time.monotonic() - started
        finally:
            collector.done.set()

    async def cut_short_when(event: anyio.Event) -> None:
        await event.wait()
        for name, scope in scopes.items():
            if not by_name[name].done.is_set():
                results[name].error = "cut short: the session ended before it finished"
                scope.cancel()

    with anyio.move_on_after(max(deadline - time.monotonic(), 0.0)):
        async with anyio.create_task_group() as watcher:
            if hurry is not None:
                watcher.start_soon(cut_short_when, hurry)
            async with anyio.create_task_group() as tg:
                for collector in collectors:
                    tg.start_soon(one, collector)
            watcher.cancel_scope.cancel()
    for result in results.values():
        if result.status == "timeout" and result.error is None:
            result.error = "did not start or finish before the bundle's deadline"
    return results


def run_bounded(argv: Sequence[str], timeout: float, *, env: Mapping[str, str] | None = None,
                cwd: str | None = None) -> tuple[int | None, str, str]:
    """Run a short command (blocking; call it from a worker thread) and return (rc, out, err).

    rc is None when the command overran `timeout` and was killed. A child stuck in `D` state
    cannot die until its I/O ends, so after SIGKILL it gets half a second and is then left to be
    reaped later: asyncio's process API would wait for it without bound.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(env) if env is not None else None,
                            cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            out, err = proc.communicate(timeout=0.5)
            return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        return None, "", ""
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

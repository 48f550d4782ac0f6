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
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["Collector", "CollectorResult", "Skipped", "in_thread", "run_bounded",
           "run_collectors"]

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
    done: anyio.Event = field(default_factory=anyio.Event)


async def in_thread(func: Callable[[], Any]) -> Any:
    """Run blocking `func` in a worker thread that is abandoned (not waited for) on cancel."""
    return await anyio.to_thread.run_sync(func, abandon_on_cancel=True)


async def run_collectors(collectors: Sequence[Collector], deadline: float
                         ) -> dict[str, CollectorResult]:
    """Run `collectors` concurrently until each ends or `deadline` (time.monotonic()) passes."""
    results = {c.name: CollectorResult(c.name) for c in collectors}
    by_name = {c.name: c for c in collectors}

    async def one(collector: Collector) -> None:
        result = results[collector.name]
        try:
            for name in collector.after:
                if name in by_name:
                    await by_name[name].done.wait()
            started = time.monotonic()
            timeout = min(collector.timeout, deadline - started)
            result.error = f"did not finish within {timeout:.1f} s"
            try:
                with anyio.fail_after(max(timeout, 0.0)):
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

    with anyio.move_on_after(max(deadline - time.monotonic(), 0.0)):
        async with anyio.create_task_group() as tg:
            for collector in collectors:
                tg.start_soon(one, collector)
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

"""Entry point of a guarded session: logging, event loop, and the session itself."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from lspguard import paths
from lspguard.errors import LspguardError, StdioError
from lspguard.logs import setup_session_logging
from lspguard.proxy import early, proctitle
from lspguard.proxy.pipes import check_stdio, open_stdio
from lspguard.proxy.proctitle import server_name
from lspguard.session.session import Session

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lspguard.config.model import Config

__all__ = ["default_trace_path", "exit_code_or_exit_now", "keep_freed_memory", "run_proxy"]

log = logging.getLogger(__name__)


def run_proxy(command: Sequence[str], config: Config, *, log_stderr: bool | None = None,
              trace_path: Path | None = None, include_text: bool = False) -> int:
    """Guard `command` (a stdio language server) for the editor on our stdin/stdout.

    With `trace_path` (or `[trace] enabled`), every message is recorded for `lspguard replay`.
    The first server may already run (early.spawn_first, called before this module was
    imported); the session adopts it, and it is killed if the session never gets that far.
    Returns the process exit code (0 after shutdown + exit, 1 otherwise).
    """
    proctitle.starting(server_name(list(command)))  # never pass for the server (`pkill gopls`)
    try:
        return _run_proxy(command, config, log_stderr=log_stderr, trace_path=trace_path,
                          include_text=include_text)
    finally:
        early.discard()


def _run_proxy(command: Sequence[str], config: Config, *, log_stderr: bool | None,
               trace_path: Path | None, include_text: bool) -> int:
    try:
        pipes_only = check_stdio()  # before anything starts: no server for a session that can't run
    except StdioError as exc:
        print(f"lspguard: {exc}", file=sys.stderr)
        return 1
    keep_freed_memory()
    to_stderr = config.proxy.log_stderr if log_stderr is None else log_stderr
    log_file = setup_session_logging(config.proxy.log_level, to_stderr=to_stderr)
    log.info("lspguard guarding: %s (config %s)", " ".join(command), config.source)
    session = Session(command, config, log_file=str(log_file) if log_file else None)
    if trace_path is None and config.trace.enabled:
        trace_path = default_trace_path(config)
        include_text = include_text or config.trace.include_text
    if trace_path is not None:
        from lspguard.trace.writer import TraceWriter

        # Opened now: a bad path fails before any server starts.
        session.relay.trace = TraceWriter(trace_path, server_command=command,
                                          include_text=include_text)
        log.info("recording a trace to %s (text %s)", trace_path,
                 "kept" if include_text else "redacted")

    async def main() -> int:
        relay = session.relay
        return await session.run(lambda: open_stdio(relay.client_reader, relay.client_out))

    options = _backend_options(pipes_only)
    # What start-up built (~23,000 objects) lives as long as the process: frozen, a full
    # collection scans only what the session allocated since, not all of it (15 ms here).
    gc.freeze()
    try:
        return anyio.run(main, backend="asyncio", backend_options=options)
    except (LspguardError, ExceptionGroup) as exc:
        errors = _own_errors(exc)
        if not errors:
            raise
        for error in errors:  # e.g. the server cannot be started: one clear line, no traceback
            log.error("%s", error)
            print(f"lspguard: {error}", file=sys.stderr)
        return 1


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 16 * 1024 * 1024
_TRIM_THRESHOLD = 32 * 1024 * 1024


def keep_freed_memory() -> None:
    """Let glibc keep freed heap for reuse (up to 32 MiB) instead of returning it at once.

    Each 1 MiB message is a fresh allocation; by default glibc gives such memory back to the
    kernel as soon as it is freed, so the next message pays a page fault per 4 KiB page. Here
    that doubled the proxy's CPU per MiB (bench: 2.9 -> 1.6 ms/MiB server->client). Frames
    of 16 MiB and more still get their own mmap. No-op where mallopt does not exist."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def exit_code_or_exit_now(code: int) -> int:
    """Return `code` for the caller to exit with, or end the process with it here when worker
    threads are still running: evidence collectors abandon threads stuck on a /proc read of a
    process in D state (a hung mount), and interpreter exit would wait for them forever."""
    collect = sys.modules.get("lspguard.incident.collect")  # not imported: no evidence taken
    blocked = collect.threads_still_blocked() if collect is not None else 0
    if not blocked:
        return code
    log.warning("exiting now: %d evidence collector thread(s) still blocked", blocked)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _own_errors(exc: BaseException) -> list[LspguardError]:
    """lspguard's own errors inside `exc` (task groups wrap them in exception groups)."""
    if isinstance(exc, LspguardError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found = [e for sub in exc.exceptions for e in _own_errors(sub)]
        unexplained = [sub for sub in exc.exceptions if not _own_errors(sub)]
        return [] if unexplained else found
    return []


def default_trace_path(config: Config) -> Path:
    """`[trace] directory` (default <state dir>/traces) / <time>-<pid>.jsonl; the dir is 0700."""
    directory = Path(config.trace.directory) if config.trace.directory else (
        paths.state_dir() / "traces")
    paths.ensure_private_dir(directory)
    return directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"


def _backend_options(pipes_only: bool) -> dict[str, bool]:
    """uvloop when installed and stdin/stdout are pipes or sockets; else asyncio's own loop."""
    if not pipes_only:
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}

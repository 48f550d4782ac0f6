"""Entry point of a guarded session: logging, event loop, and the session itself."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import anyio

from .errors import LspguardError
from .logs import setup_session_logging
from .pipes import open_stdio
from .session import Session

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import Config

__all__ = ["run_proxy"]

log = logging.getLogger(__name__)


def run_proxy(command: Sequence[str], config: Config, *, log_stderr: bool | None = None) -> int:
    """Guard `command` (a stdio language server) for the editor on our stdin/stdout.

    Returns the process exit code (0 after shutdown + exit, 1 otherwise).
    """
    to_stderr = config.proxy.log_stderr if log_stderr is None else log_stderr
    log_file = setup_session_logging(config.proxy.log_level, to_stderr=to_stderr)
    log.info("lspguard guarding: %s (config %s)", " ".join(command), config.source)
    session = Session(command, config, log_file=str(log_file) if log_file else None)

    async def main() -> int:
        return await session.run(lambda: open_stdio(session.client_reader, session.client_out))

    try:
        return anyio.run(main, backend="asyncio", backend_options=_backend_options())
    except LspguardError as exc:
        log.error("%s", exc)
        print(f"lspguard: {exc}", file=sys.stderr)
        return 1


def _backend_options() -> dict[str, bool]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}

"""The control socket's requests (`lspguard status`, `restart`, `snapshot`), served by the
session: each handler does what the command asks through the session and its evidence."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lspguard.causes.verdict import Verdict, VerdictKind

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from lspguard.session.evidence import Evidence, EvidenceHost

__all__ = ["control_handlers"]


def control_handlers(s: EvidenceHost, evidence: Evidence
                     ) -> Mapping[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
    """The handlers by request name (control/server.py serves them)."""
    async def status(args: dict[str, Any]) -> Any:
        import msgspec

        return msgspec.to_builtins(s.status_snapshot())

    async def restart(args: dict[str, Any]) -> Any:
        r = s.relay
        if r.recovering:  # one restart at a time: a second would start a spare server
            return {"restarting": True, "generation": r.generation, "already": True}
        reason = str(args.get("reason") or "requested with `lspguard restart`")
        s.report(Verdict(VerdictKind.MANUAL, f"Restart {reason}.", r.generation))
        return {"restarting": True, "generation": r.generation}

    async def snapshot(args: dict[str, Any]) -> Any:
        path = await evidence.snapshot(None, str(args.get("reason") or "requested"))
        if path is None:
            raise RuntimeError("no bundle was written (see the session log)")
        return {"bundle": path, "report": os.path.join(path, "report.html")}

    return {"status": status, "restart": restart, "snapshot": snapshot}

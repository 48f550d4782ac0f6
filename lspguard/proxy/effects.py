"""What a backend generation did to the editor that outlives it: registrations, progress, ...

When a generation dies, the editor still holds its capability registrations (gopls reuses fixed
ids such as `workspace/didChangeWatchedFiles-0`; VS Code leaks a duplicate file watcher if they
are registered again), its begun-but-unended progress (the "Loading packages…" spinner turns
forever) and its diagnostics. This module tracks them per generation so recovery can end the
progress, keep one registration per id, and clear diagnostics nobody republishes.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import msgspec

__all__ = ["ServerEffects"]

log = logging.getLogger(__name__)


class _Diagnostics(msgspec.Struct):
    uri: str
    diagnostics: list[msgspec.Raw] = []


class _PublishDiagnostics(msgspec.Struct):
    params: _Diagnostics


_diagnostics_decoder = msgspec.json.Decoder(_PublishDiagnostics)
_encoder = msgspec.json.Encoder()


def _token_key(token: Any) -> str:
    return _encoder.encode(token).decode()


class ServerEffects:
    def __init__(self) -> None:
        # registration id -> (method, canonical JSON of registerOptions); active in the editor
        self.registrations: dict[str, tuple[str, bytes]] = {}
        # progress token (as JSON) -> (token, generation) for progress begun and not ended
        self.open_progress: dict[str, tuple[Any, int]] = {}
        # uri -> generation that last published non-empty diagnostics for it
        self.diagnostics: dict[str, int] = {}
        # set when the newest generation's work-done progress has all ended (it has loaded)
        self.idle = anyio.Event()
        self._watched_generation = 0

    def new_generation(self, generation: int) -> None:
        self._watched_generation = generation
        self.idle = anyio.Event()

    # ---------------------------------------------------------------- progress

    def on_progress(self, params: dict[str, Any], generation: int) -> None:
        value = params.get("value")
        if not isinstance(value, dict):
            return
        key = _token_key(params.get("token"))
        if value.get("kind") == "begin":
            self.open_progress[key] = (params.get("token"), generation)
        elif value.get("kind") == "end":
            self.open_progress.pop(key, None)
            if generation == self._watched_generation and not any(
                    gen == generation for _, gen in self.open_progress.values()):
                self.idle.set()

    def take_open_progress(self, generation: int) -> list[Any]:
        """Tokens `generation` began and never ended (forgotten: the caller ends them)."""
        keys = [k for k, (_, gen) in self.open_progress.items() if gen == generation]
        return [self.open_progress.pop(k)[0] for k in keys]

    # ---------------------------------------------------------------- diagnostics

    def on_diagnostics(self, body: bytes | memoryview, generation: int) -> None:
        try:
            params = _diagnostics_decoder.decode(body).params
        except msgspec.DecodeError:
            return
        if params.diagnostics:
            self.diagnostics[params.uri] = generation
        else:
            self.diagnostics.pop(params.uri, None)

    def stale_diagnostics(self, dead_generations: set[int]) -> list[str]:
        """URIs whose diagnostics came from a dead generation and were not republished."""
        stale = [uri for uri, gen in self.diagnostics.items() if gen in dead_generations]
        for uri in stale:
            del self.diagnostics[uri]
        return stale

    # ---------------------------------------------------------------- registrations

    def filter_registrations(self, registrations: list[dict[str, Any]]
                             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Split a registerCapability request into (to forward, exact duplicates to swallow).

        Registrations the editor already holds with the same id, method and options (from a dead
        generation) are swallowed; new ones are recorded as active.
        """
        forward, duplicate = [], []
        for reg in registrations:
            rid, method = str(reg.get("id")), str(reg.get("method"))
            options = _encoder.encode(reg.get("registerOptions"))
            if self.registrations.get(rid) == (method, options):
                duplicate.append(reg)
            else:
                forward.append(reg)
        return forward, duplicate

    def conflicting(self, registrations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Active registrations that new ones would replace (same id, other method/options):
        they must be unregistered first, or the editor ends up holding both."""
        out = []
        for reg in registrations:
            rid = str(reg.get("id"))
            if rid in self.registrations:
                out.append({"id": rid, "method": self.registrations[rid][0]})
        return out

    def on_registered(self, registrations: list[dict[str, Any]]) -> None:
        for reg in registrations:
            self.registrations[str(reg.get("id"))] = (
                str(reg.get("method")), _encoder.encode(reg.get("registerOptions")))

    def on_unregistered(self, unregistrations: list[dict[str, Any]]) -> None:
        for reg in unregistrations:
            self.registrations.pop(str(reg.get("id")), None)

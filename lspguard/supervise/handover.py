"""A new generation takes over: started, given the editor's state, watched while it takes it.

The state is replayed in protocol order: the cached `initialize` (its result is not forwarded:
the editor already has one, unless its own initialize was still in flight), `initialized`, the
last configuration, a `didOpen` per open document with its current text and version. A
filesystem, FIFO or kernel wait of the new server that lasts `external_wait` is a verdict at once
(`RestartBlocked`: starting yet another server would only pile up servers stuck the same way);
a handshake that times out gets the cause found then.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from lspguard.causes.verdict import Verdict, VerdictKind
from lspguard.errors import BackendError

if TYPE_CHECKING:
    from lspguard.proxy.backend import Backend
    from lspguard.supervise.host import RelayControl, Supervised

__all__ = ["HandshakeWatch", "RestartBlocked", "replay_state", "take_over"]

log = logging.getLogger("lspguard.supervise.recovery")  # recovery's steps keep one log name


class RestartBlocked(Exception):
    """The restarted server waits on a cause too (its verdict): do not start another."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.summary)
        self.verdict = verdict


async def take_over(host: Supervised, argv: list[str], env: dict[str, str], label: str) -> None:
    """Start one generation and give it the editor's state within the handshake timeout.
    BackendError when it does not take it (it is stopped); RestartBlocked when it waits on a
    cause outside it (it is kept: the waiting watches it)."""
    backend = await host.start_backend(argv, env, label)
    watch = HandshakeWatch(host, backend)
    replay = anyio.CancelScope()  # cancelled by the watch on a cause outside the server
    host.spawn(watch.run, replay)
    try:
        with replay, anyio.fail_after(host.config.watchdog.handshake_timeout):
            await replay_state(host.relay)
    except (TimeoutError, BackendError, OSError) as exc:
        blocked = watch.verdict or watch.verdict_now()
        if blocked is not None and blocked.external:
            raise RestartBlocked(blocked) from exc  # keep it: the waiting watches it
        await backend.stop(0.5)
        raise BackendError(f"{label} did not take the replayed state: "
                           f"{exc or 'initialize timed out'}") from exc
    finally:
        watch.stop()
    if watch.verdict is not None:
        raise RestartBlocked(watch.verdict)


async def replay_state(relay: RelayControl) -> None:
    """Give the new generation the editor's state, in protocol order."""
    mirror = relay.mirror
    backend = relay.backend
    assert backend is not None
    if mirror.initialize_params is None:
        return  # the editor never initialized: it will do so itself
    exited = backend.exited

    async def ask(method: str, params: Any) -> Any:
        async with anyio.create_task_group() as tg:
            async def died() -> None:
                await exited.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(died)
            answer = await relay.outbox.request_server(method, params)
            tg.cancel_scope.cancel()
            return answer
        raise BackendError(f"the backend {backend.describe_exit()} during {method}")

    answer = await ask("initialize", mirror.initialize_params_for_restart())
    if "error" in answer:
        raise BackendError(f"initialize failed: {answer['error']}")
    if mirror.initialize_result is None:
        relay.answer_initialize(answer.get("result"))  # the one the editor waits for
    else:
        _compare_capabilities(mirror.initialize_result, answer.get("result") or {})
    if not mirror.initialized:
        return
    send = relay.outbox.send_server
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    if mirror.configuration is not None:
        send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
              "params": mirror.configuration})
    for doc in mirror.documents():
        send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": doc.uri, "languageId": doc.language_id,
                             "version": doc.version, "text": doc.text}}})


def _compare_capabilities(first: dict[str, Any], result: dict[str, Any]) -> None:
    before = first.get("capabilities") or {}
    after = result.get("capabilities") or {}
    lost = sorted(k for k in before if k not in after)
    gained = sorted(k for k in after if k not in before)
    if lost or gained:
        log.warning("the new backend's capabilities differ: lost %s, gained %s "
                    "(the editor keeps the first backend's)", lost, gained)


class HandshakeWatch:
    """Watches a restarted server while it takes the replayed state: a filesystem, FIFO or
    kernel wait that lasts `external_wait` is a verdict at once (its cause), and a handshake
    that times out gets the cause found then."""

    def __init__(self, host: Supervised, backend: Backend) -> None:
        from lspguard.causes.classify import CauseFinder
        from lspguard.causes.probe import TreeProber

        self.host, self.backend = host, backend
        wd = host.config.watchdog
        self.finder = CauseFinder(host.backend_name(), wd.busy_cpu_percent, wd.external_wait)
        self.prober = TreeProber(wd.probe_timeout)
        self.started = time.monotonic()
        self.verdict: Verdict | None = None
        self._snap: Any = None
        self._own = anyio.CancelScope()

    def stop(self) -> None:
        self._own.cancel()

    async def run(self, replay: anyio.CancelScope) -> None:
        with self._own:
            await self._watch(replay)

    async def _watch(self, scope: anyio.CancelScope) -> None:
        s = self.host
        wd = s.config.watchdog
        while True:
            await anyio.sleep(wd.tick)
            if self.backend.pid is None:
                continue
            snap = await self.prober.snapshot(self.backend.pid)
            if snap is None:
                continue
            now = time.monotonic()
            try:
                self.finder.observe(snap, now)
                cause = self.finder.early(snap, now, wd.external_wait)
            except Exception:  # a bug in judging must not end the session
                log.exception("could not judge the restarted server (skipped)")
                continue
            self._snap = snap
            if cause is not None:
                self.verdict = self._make(cause, now)
                scope.cancel()
                return

    def verdict_now(self) -> Verdict | None:
        """The cause of a handshake that timed out (a deadlock when nothing outside shows);
        None when there is nothing to judge (no snapshot yet, or the server has exited)."""
        s = self.host
        if self._snap is None or not self._snap.alive or self.backend.exited.is_set():
            return None
        now = time.monotonic()
        try:
            cause = self.finder.find(self._snap, now, s.config.watchdog.external_wait)
        except Exception:  # a bug in judging must not end the session: the restart goes on
            log.exception("could not judge the restarted server's handshake")
            return None
        return self._make(cause, now)

    def _make(self, cause: Any, now: float) -> Verdict:
        waited = now - self.started
        kind = VerdictKind(cause.cls.value) if cause.cls.external else \
            VerdictKind.HANDSHAKE_TIMEOUT
        summary = cause.sentence if cause.cls.external else (
            f"The restarted language server did not take the replayed initialize within "
            f"{waited:.0f} s: {cause.sentence}")
        return Verdict(kind, summary, self.backend.generation,
                       {"method": "initialize", "age_s": round(waited, 1), "restart": True},
                       cause=cause)

"""Trace files: one LSP session as JSON lines, recorded off the relay's hot path (read: reader.py).

Format (version 1), one JSON object per line, UTF-8, ``\\n``-terminated::

    {"lspguard_trace": 1, "lspguard_version": "0.1.0", "created": "2026-11-25T18:27:33Z",
     "workspace_folders": ["file:///home/me/proj"], "redacted": true,
     "server_command": ["gopls", "serve"]}                    <- header, always line 1
    {"t": 0.0012, "dir": "c2s", "gen": 1, "msg": {"jsonrpc": "2.0", "id": 1, ...}}
    {"t": 0.2031, "dir": "s2c", "gen": 1, "msg": {...}}
    {"t": 9.5, "dropped": 12}                                 <- gap: 12 messages not recorded

``t`` is monotonic seconds since the recording started (never decreasing), ``dir`` one of
``c2s`` (editor to server), ``s2c`` (server to editor), ``p2s`` / ``p2c`` (sent by lspguard
itself to the server / the editor), ``gen`` the backend generation, ``msg`` the JSON-RPC message.
The header may also carry ``imported_from`` (which log format an importer read).

By default document text is redacted (``lspguard.redact``): such a trace shows what was asked, of
which file and when, but a replay cannot reproduce results that depend on the text. Record with
``--include-text`` for a faithful replay.

``TraceWriter.record`` is called by the relay for every frame; it only appends to a bounded queue
and counts what it drops, so tracing can never slow or block forwarding.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import msgspec

from lspguard import __version__
from lspguard.redact import redact_message
from lspguard.trace.format import (
    DIRECTIONS,
    EntryRecord,
    GapRecord,
    Trace,
    TraceEntry,
    TraceGap,
    TraceHeader,
    workspace_folders_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = ["DIRECTIONS", "Trace", "TraceEntry", "TraceGap", "TraceHeader", "TraceWriter",
           "workspace_folders_of", "write_trace"]

log = logging.getLogger(__name__)

_DIRECTION_SET: Final = frozenset(DIRECTIONS)
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


# ---------------------------------------------------------------------------------- writing


class TraceWriter:
    """Records a session into a trace file without ever blocking the relay.

    `record` (hot path) stamps the time and appends the body to a queue bounded by count and
    bytes; past either bound it drops the message and counts it (`dropped`), and the file gets a
    gap line where the messages are missing. `run` (a task in the session's task group) decodes,
    redacts and writes in batches in a worker thread. `aclose` writes what is left and closes
    the file; call it once, after the last `record`.

    How a session uses it: create it before the loop starts (a bad path fails here, before any
    server runs); `tg.start_soon(writer.run)` in the session's task group; `record("c2s", gen,
    frame.body)` for each editor frame it forwards, `record("s2c", gen, frame.body)` for each
    server frame it reads, `"p2s"` / `"p2c"` for messages lspguard composes itself; and
    `await writer.aclose()` in the shielded finish, after the backend has stopped.
    """

    def __init__(self, path: str | os.PathLike[str], *, server_command: Sequence[str],
                 include_text: bool = False, workspace_folders: Sequence[str] | None = None,
                 max_queue: int = 10_000, max_queue_bytes: int = 64 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        # Opened here, so a bad --out fails before any server starts; 0600: traces hold code.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "wb")
        self.include_text = include_text
        self.server_command = tuple(server_command)
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.dropped = 0
        self.written = 0
        self.invalid = 0
        self._clock = clock
        self._start = clock()
        self._created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._folders = None if workspace_folders is None else tuple(workspace_folders)
        self._queue: deque[tuple[float, str, int, bytes | memoryview]] = deque()
        self._queued_bytes = 0
        self._gap = 0  # messages dropped since the last one queued
        self._wakeup: anyio.Event | None = None
        self._lock: anyio.Lock | None = None
        self._header_written = False
        self._closed = False
        self._failed = False

    @property
    def queued(self) -> int:
        """Messages recorded but not yet taken by the writer."""
        return len(self._queue)

    def record(self, direction: str, generation: int, body: bytes | memoryview) -> None:
        """Queue one message body (not copied); never blocks, never raises on a full queue."""
        if direction not in _DIRECTION_SET:
            raise ValueError(f"unknown trace direction {direction!r}")
        t = self._clock() - self._start
        queue = self._queue
        size = len(body)
        if (len(queue) >= self.max_queue or self._queued_bytes + size > self.max_queue_bytes
                or self._closed):
            self.dropped += 1
            self._gap += 1
            return
        if self._gap:
            queue.append((t, "", self._gap, b""))
            self._gap = 0
        queue.append((t, direction, generation, body))
        self._queued_bytes += size
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(self) -> None:
        """Write queued messages until `aclose`; never raises (a broken trace must not end the
        session)."""
        self._lock = self._lock or anyio.Lock()
        while not self._closed:
            if not self._queue:
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            # Shielded: a batch taken off the queue is written even if the session is being
            # cancelled (run_sync checkpoints before it starts the thread).
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    batch = self._take()
                    try:
                        await anyio.to_thread.run_sync(self._write_batch, batch)
                    except Exception:  # a bug here must cost the trace, never the session
                        log.exception("trace %s: recording stops", self.path)
                        self._failed = True

    async def aclose(self) -> None:
        """Write everything still queued (plus a final gap line if needed) and close the file."""
        with anyio.CancelScope(shield=True):
            self._closed = True
            if self._wakeup is not None:
                self._wakeup.set()
            self._lock = self._lock or anyio.Lock()
            async with self._lock:
                batch = self._take()
                if self._gap:
                    batch.append((self._clock() - self._start, "", self._gap, b""))
                    self._gap = 0
                try:
                    await anyio.to_thread.run_sync(self._write_final, batch)
                except Exception:
                    log.exception("trace %s: cannot finish the file", self.path)

    def _take(self) -> list[tuple[float, str, int, bytes | memoryview]]:
        batch = list(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        return batch

    # The methods below run in a worker thread, one batch at a time (under the lock).

    def _write_final(self, batch: list[tuple[float, str, int, bytes | memoryview]]) -> None:
        self._write_batch(batch)
        try:
            if not self._header_written and not self._failed:
                self._file.write(self._header_line())
            self._file.close()
        except OSError as exc:
            log.error("trace %s: cannot finish the file: %s", self.path, exc)

    def _write_batch(self, batch: list[tuple[float, str, int, bytes | memoryview]]) -> None:
        if self._failed:
            self.dropped += sum(1 for item in batch if item[1])
            return
        lines: list[bytes] = []
        if not self._header_written:
            self._scan_for_folders(batch)
            lines.append(self._header_line())
        for t, direction, gen, body in batch:
            if not direction:  # a gap marker: gen holds the count
                lines.append(_encode(GapRecord(round(t, 6), gen)) + b"\n")
                continue
            try:
                msg = _decode(body)
            except msgspec.DecodeError:
                self.invalid += 1
                continue
            if not isinstance(msg, dict):
                self.invalid += 1
                continue
            if not self.include_text:
                msg = redact_message(msg)
            record = EntryRecord(round(t, 6), direction, gen, msg)  # type: ignore[arg-type]
            lines.append(_encode(record) + b"\n")
            self.written += 1
        try:
            self._file.write(b"".join(lines))
            self._file.flush()
        except OSError as exc:  # disk full, ...: stop tracing, keep the session going
            log.error("trace %s: write failed, tracing stops: %s", self.path, exc)
            self._failed = True
            self.dropped += sum(1 for item in batch if item[1])
            return
        self._header_written = True

    def _scan_for_folders(self, batch: Iterable[tuple[float, str, int, bytes | memoryview]]
                          ) -> None:
        if self._folders is not None:
            return
        for _, direction, _, body in batch:
            if direction == "c2s" and b'"initialize"' in bytes(body[:4096]):
                try:
                    msg = _decode(body)
                except msgspec.DecodeError:
                    continue
                if isinstance(msg, dict) and msg.get("method") == "initialize":
                    self._folders = tuple(workspace_folders_of(msg.get("params")))
                    return

    def _header_line(self) -> bytes:
        header = TraceHeader(lspguard_version=__version__, created=self._created,
                             workspace_folders=self._folders or (),
                             redacted=not self.include_text, server_command=self.server_command)
        return _encode(header.to_json()) + b"\n"


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Write a whole trace (importers, root rewriting) to `path`, mode 0600."""
    lines = [_encode(trace.header.to_json())]
    gaps = sorted(trace.gaps, key=lambda g: g.t)
    for entry in trace.entries:
        while gaps and gaps[0].t <= entry.t:
            lines.append(_encode(gaps.pop(0).record()))
        lines.append(_encode(entry.record()))
    lines.extend(_encode(g.record()) for g in gaps)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")

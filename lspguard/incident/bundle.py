"""Write one incident bundle: a private directory of evidence, complete or not there at all.

The directory is assembled under a hidden temporary name (`.tmp-…`, mode 0700) and renamed into
place once every file is written, so a reader (`lspguard bundles`, the VS Code extension) never
sees half a bundle. Collection is bounded by `budget`: the watchdog calls this before it kills a
hung backend, and recovery waits for it, so a collector that hangs costs its timeout and an
"error" entry, never the editor's language server. Blocking work runs in worker threads so the
relay keeps forwarding meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import msgspec
import psutil

from lspguard import paths
from lspguard.incident.collect import Collector, CollectorResult, Skipped, in_thread, run_collectors
from lspguard.incident.goroutines import fetch_goroutines
from lspguard.incident.host import collect_host, sanitize_env, strip_userinfo
from lspguard.incident.messages import messages_jsonl
from lspguard.incident.proc import collect_process_tree
from lspguard.incident.strace import collect_strace

if TYPE_CHECKING:
    from collections.abc import Callable

    from lspguard.incident.context import IncidentContext

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = ["DEFAULT_KEEP", "DEFAULT_MAX_BYTES", "BundleInfo", "incidents_dir", "list_bundles",
           "prune_bundles", "snapshot_now", "write_bundle"]

DEFAULT_KEEP = 20
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
SESSION_LOG_LINES = 2000
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "AUTH", "CREDENTIAL")
_STALE_TMP_SECONDS = 3600.0
_encoder = msgspec.json.Encoder(enc_hook=str)


def incidents_dir() -> Path:
    """Where bundles go by default: `<state dir>/incidents` (0700)."""
    return paths.ensure_private_dir(paths.state_dir() / "incidents")


async def write_bundle(ctx: IncidentContext, *, root: Path | None = None, budget: float = 5.0,
                       strace_seconds: float = 3.0, keep: int | None = DEFAULT_KEEP,
                       max_bytes: int | None = DEFAULT_MAX_BYTES,
                       hurry: anyio.Event | None = None) -> Path:
    """Collect evidence about `ctx`'s backend and write a bundle; return its directory.

    Takes about `budget` seconds at most (collection gets 80 % of it, writing the rest); once
    `hurry` is set, collection stops and the bundle is written with what it has. Older
    bundles beyond `keep` / `max_bytes` are pruned afterwards (None: no limit). Raises OSError
    only when the bundle directory itself cannot be written.
    """
    started_wall, started = time.time(), time.monotonic()
    root = paths.ensure_private_dir(root) if root is not None else incidents_dir()
    name = bundle_name(ctx, started_wall)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        deadline = started + budget - min(1.0, 0.2 * budget)
        tree: list[dict[str, Any]] = []  # filled process by process: kept on a timeout too
        results = await run_collectors(
            _collectors(ctx, deadline, strace_seconds, tree, hurry), deadline, hurry)
        if results["process"].data is None:
            results["process"].data = list(tree)
        collected = time.monotonic()
        timings = {"budget_s": budget, "collect_s": round(collected - started, 3)}
        await _in_thread_complete(lambda: _write_files(tmp, name, ctx, results, started_wall,
                                                      timings))
        final = _unique(root / name)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None or max_bytes is not None:
        with contextlib.suppress(OSError):  # housekeeping: the bundle is written anyway
            await _in_thread_complete(lambda: prune_bundles(root, keep, max_bytes))
    return final


async def snapshot_now(ctx: IncidentContext, **kwargs: Any) -> Path | None:
    """`write_bundle` for hooks that must not fail (the session's `take_evidence`): any error is
    logged and gives None. Cancellation still propagates."""
    try:
        path = await write_bundle(ctx, **kwargs)
    except Exception:
        log.exception("could not write the incident bundle for %s", ctx.kind)
        return None
    log.info("incident bundle written: %s", path)
    return path


async def _in_thread_complete(func: Callable[[], T]) -> T:
    """Run `func` in a worker thread and wait for it even if cancelled (it writes files)."""
    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(func)
    return result


def bundle_name(ctx: IncidentContext, wall: float) -> str:
    """`20261125T182730.123Z-stopped-4242`: sorts by time, says what and which process."""
    stamp = dt.datetime.fromtimestamp(wall, dt.UTC)
    when = stamp.strftime("%Y%m%dT%H%M%S") + f".{stamp.microsecond // 1000:03d}Z"
    kind = "".join(c if c.isalnum() or c == "_" else "-" for c in ctx.kind)
    return f"{when}-{kind}-{ctx.backend_pid if ctx.backend_pid is not None else os.getpid()}"


def _collectors(ctx: IncidentContext, deadline: float, strace_seconds: float,
                tree: list[dict[str, Any]], hurry: anyio.Event | None) -> list[Collector]:
    pid = ctx.backend_pid

    async def process() -> Any:
        if pid is None:
            raise Skipped("no backend process")
        try:
            return await in_thread(lambda: collect_process_tree(pid, tree))
        except ProcessLookupError:
            raise Skipped(f"process {pid} no longer exists") from None

    async def strace() -> Any:
        if pid is not None and not tree and not psutil.pid_exists(pid):
            raise Skipped(f"process {pid} no longer exists")
        pids = [p["pid"] for p in tree if isinstance(p.get("pid"), int)] or (
            [pid] if pid else [])
        seconds = min(strace_seconds, deadline - time.monotonic() - 1.2)
        if seconds < 0.2:
            raise Skipped("no time left in the bundle's budget for a strace sample")
        return await collect_strace(pids[:16], seconds, until=hurry,
                                    include_text=ctx.include_text)

    async def goroutines() -> Any:
        address = ctx.debug_address
        if not address:
            raise Skipped("no debug address: the backend was not started with -debug "
                          "(or is not gopls)")
        return await in_thread(lambda: fetch_goroutines(address, 2.0))

    async def host() -> Any:
        return await collect_host(ctx, 3.0)

    async def messages() -> Any:
        return await in_thread(lambda: messages_jsonl(ctx.recent_messages,
                                                      include_text=ctx.include_text))

    async def session_log() -> Any:
        log = ctx.session_log
        if not log:
            raise Skipped("no session log")
        return await in_thread(lambda: tail_lines(Path(log), SESSION_LOG_LINES))

    return [
        Collector("process", process, 1.5, when_hurried="wait"),
        Collector("strace", strace, strace_seconds + 2.5, after=("process",),
                  when_hurried="wait"),  # the sample ends early, and is kept
        Collector("goroutines", goroutines, 2.5),
        Collector("host", host, 3.5),
        Collector("messages", messages, 2.0, when_hurried="wait"),
        Collector("session_log", session_log, 1.0, when_hurried="wait"),
    ]


def _write_files(tmp: Path, name: str, ctx: IncidentContext,
                 results: dict[str, CollectorResult], started_wall: float,
                 timings: dict[str, float]) -> None:
    from lspguard.incident.report import render_report

    proc = results["process"]
    tree = proc.data
    files: dict[str, bytes] = {
        "process.json": msgspec.json.format(_encoder.encode(
            {"root_pid": ctx.backend_pid, "processes": tree or [],
             "status": proc.status, "error": proc.error})),
        "strace.txt": _text_or_reason(results["strace"], "strace sample"),
        "goroutines.txt": _text_or_reason(results["goroutines"], "goroutine dump"),
        "stderr.txt": "".join(f"{line}\n" for line in ctx.stderr_tail).encode(),
        "messages.jsonl": results["messages"].data or b"",
        "session.log": _text_or_reason(results["session_log"], "session log"),
    }
    host = dict(results["host"].data) if results["host"].status == "ok" else {}
    env = host.pop("env", None) or sanitize_env({**os.environ, **ctx.backend_env_overlay})
    versions = host.pop("versions", None) or {"lspguard": ctx.lspguard_version}
    incident = {
        "schema": 1,
        "name": name,
        "created_at": started_wall,
        "created_utc": dt.datetime.fromtimestamp(started_wall, dt.UTC).isoformat(),
        "kind": ctx.kind,
        "sentence": ctx.sentence,
        "reason": ctx.reason,
        "verdict": ctx.verdict,
        "cause": _cause(ctx.verdict),  # the verdict's facts["cause"], where tools look first
        "generation": ctx.generation,
        "backend": {"pid": ctx.backend_pid, "argv": ctx.backend_argv,
                    "env_overlay": _safe_overlay(ctx.backend_env_overlay),
                    "debug_address": ctx.debug_address},
        "session": {"started_at": ctx.started_at, "workspace_folders": ctx.workspace_folders,
                    "session_log": ctx.session_log, "include_text": ctx.include_text,
                    "uptime_s": round(started_wall - ctx.started_at, 1)
                    if ctx.started_at else None},
        "handshake": ctx.handshake,
        "pending": ctx.pending,
        "latency": ctx.latency,
        "request_timeline": ctx.request_timeline,
        "thread_states": _thread_states(tree or []),
        "versions": versions,
        "host": host,
        "env": env,
        "collectors": {n: r.as_dict() for n, r in results.items()},
        "timings": timings,
    }
    files["incident.json"] = msgspec.json.format(_encoder.encode(incident))
    for filename, data in files.items():
        _write_private(tmp / filename, data)
    try:
        render_report(tmp)
    except Exception as exc:  # a report is a view of the evidence; the evidence is written
        _write_private(tmp / "report.html", _fallback_report(ctx.sentence, exc))


def _cause(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    facts = (verdict or {}).get("facts")
    cause = facts.get("cause") if isinstance(facts, dict) else None
    return cause if isinstance(cause, dict) else None


def _thread_states(tree: list[dict[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for proc in tree:
        for thread in proc.get("threads") or []:
            counts[str(thread.get("state", "?"))] += 1
    return dict(counts)


def _safe_overlay(overlay: dict[str, str]) -> dict[str, str]:
    return {k: strip_userinfo(v) if not any(w in k.upper() for w in _SECRET_WORDS)
            else "<dropped: secret>" for k, v in overlay.items()}


def _text_or_reason(result: CollectorResult, what: str) -> bytes:
    if result.status == "ok" and isinstance(result.data, str):
        return result.data.encode("utf-8", "replace")
    return f"# no {what}: {result.status}: {result.error}\n".encode()


def _fallback_report(sentence: str, exc: Exception) -> bytes:
    import html

    return (f"<!doctype html><meta charset=utf-8><title>lspguard incident</title>"
            f"<h1>{html.escape(sentence)}</h1><p>The full report could not be rendered "
            f"({html.escape(type(exc).__name__)}: {html.escape(str(exc))}); the evidence is in "
            f"the files next to this one.</p>").encode()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def tail_lines(path: Path, lines: int, *, max_bytes: int = 4 * 1024 * 1024) -> str:
    """The last `lines` lines of `path`, reading at most `max_bytes` from its end."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        data = f.read()
    text = data.decode("utf-8", "replace").splitlines()[-lines:]
    return "".join(f"{line}\n" for line in text)


# ---------------------------------------------------------------------------- listing, pruning


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    name: str
    created_at: float
    kind: str
    sentence: str
    size_bytes: int
    backend_pid: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.name, "created_at": self.created_at,
                "kind": self.kind, "sentence": self.sentence, "size_bytes": self.size_bytes,
                "backend_pid": self.backend_pid}


def list_bundles(root: Path | None = None) -> list[BundleInfo]:
    """The complete bundles under `root` (default: incidents_dir()), newest first."""
    root = root if root is not None else incidents_dir()
    out = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        try:
            doc = msgspec.json.decode((path / "incident.json").read_bytes())
        except (OSError, msgspec.DecodeError):
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        created = doc.get("created_at")
        pid = doc.get("backend", {}).get("pid") if isinstance(doc.get("backend"), dict) else None
        out.append(BundleInfo(
            path=path, name=entry.name,
            created_at=float(created) if isinstance(created, int | float)
            else entry.stat().st_mtime,
            kind=str(doc.get("kind") or "unknown"), sentence=str(doc.get("sentence") or ""),
            size_bytes=_dir_size(path), backend_pid=pid if isinstance(pid, int) else None))
    out.sort(key=lambda b: (b.created_at, b.name), reverse=True)
    return out


def prune_bundles(root: Path, keep: int | None, max_bytes: int | None) -> list[Path]:
    """Delete the oldest bundles beyond `keep` or `max_bytes` in total (the newest always stays),
    and temporary directories abandoned by a crashed writer; return what was deleted."""
    removed: list[Path] = []
    total = 0
    for i, info in enumerate(list_bundles(root)):
        total += info.size_bytes
        over_count = keep is not None and i >= keep
        over_size = max_bytes is not None and total > max_bytes and i > 0
        if over_count or over_size:
            shutil.rmtree(info.path, ignore_errors=True)
            removed.append(info.path)
    now = time.time()
    for entry in os.scandir(root):
        if (entry.name.startswith(".tmp-") and entry.is_dir(follow_symlinks=False)
                and now - entry.stat().st_mtime > _STALE_TMP_SECONDS):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _dir_size(path: Path) -> int:
    size = 0
    for dirpath, _, filenames in os.walk(path):
        for filename in filenames:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, filename)).st_size
    return size

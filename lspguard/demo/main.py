"""`lspguard demo`: the scripted editor session, through lspguard against real gopls, told.

`run_demo` runs `scripted_session.scripted_session` through `python -m lspguard run -- gopls` on
a temporary copy of the sample module (examples/hello) and tells the user what happened, step by
step: handshake times lspguard measured, the hover text, the definition, the planted diagnostic,
the edit; then the main job: the real gopls is made to hang (SIGSTOP of the pid in lspguard's
status file), and the demo shows the verdict, how long detection took, how long until the
editor's next hover was answered by the restarted gopls, and the incident report; then the exit
code and where the session log is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lspguard.demo.client import ScriptedSessionError
from lspguard.demo.sample import BROKEN_FILE, EDIT_ARGUMENT, EDIT_CONST, SAMPLE_MODULE
from lspguard.demo.session import incident_report_path, scripted_session

if TYPE_CHECKING:
    from lspguard.demo.transcript import HangTranscript, SessionTranscript

__all__ = ["DEMO_HOVER_DEADLINE", "run_demo"]

#: The demo's hover deadline (lspguard's default is 10 s): a hang is judged this long after the
#: request, so the demo does not keep the reader waiting.
DEMO_HOVER_DEADLINE = 3.0
DEMO_CONFIG = f"""\
# lspguard demo: a short hover deadline so the hang is noticed quickly (default 10 s), and a
# short strace sample for the incident bundle (default 3 s).
[watchdog.deadlines]
"textDocument/hover" = {DEMO_HOVER_DEADLINE}
[snapshot]
strace_seconds = 1.0
"""


def _find_gopls(explicit: str | None) -> str:
    """The real gopls: `explicit` > $LSPGUARD_GOPLS > PATH > $GOPATH/bin, ~/go/bin (no shims)."""
    from lspguard.gopls.find import find_real_gopls

    if explicit:
        found = shutil.which(explicit) if os.sep not in explicit else explicit
        if not found or not os.access(found, os.X_OK):
            raise ScriptedSessionError(f"--gopls {explicit!r}: not an executable file")
        return os.path.abspath(found)
    return str(find_real_gopls(""))


def _say(text: str = "") -> None:
    print(text, flush=True)


def _indent(text: str, prefix: str = "       ") -> str:
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() or (out and out[-1]):  # collapse runs of blank lines
            out.append(prefix + line if line.strip() else "")
    return "\n".join(out)


def _where(location: Any) -> str:
    if isinstance(location, list):
        location = location[0] if location else None
    if not isinstance(location, dict):
        return "(none)"
    start = location.get("range", {}).get("start", {})
    return f"{location.get('uri')}:{start.get('line', 0) + 1}:{start.get('character', 0) + 1}"


def run_demo(workspace: Path | None = None, gopls: str | None = None) -> int:
    """Run the scripted session through `lspguard run -- gopls` on a copy of `workspace` (default:
    the bundled examples/hello) and print what happened. Returns 0 on success."""
    from lspguard.errors import LspguardError

    source = Path(workspace) if workspace is not None else SAMPLE_MODULE
    if not (source / "main.go").is_file():
        print(f"lspguard demo: {source} has no main.go; pass --workspace with a copy of "
              "examples/hello (the script hovers over its greet.Hello call)", file=sys.stderr)
        return 2
    try:
        real_gopls = _find_gopls(gopls)
    except (LspguardError, ScriptedSessionError) as exc:
        print(f"lspguard demo: {exc}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="lspguard-demo-") as tmp:
        copy = Path(tmp) / source.resolve().name
        shutil.copytree(source, copy)
        config = Path(tmp) / "demo.toml"
        config.write_text(DEMO_CONFIG, encoding="utf-8")
        command = [sys.executable, "-m", "lspguard", "run", "--config", str(config), "--",
                   real_gopls]
        _say("lspguard demo: a scripted editor session through lspguard against real gopls,")
        _say("then a real hang of gopls, to show what lspguard is for")
        _say(f"  gopls:     {real_gopls}")
        _say(f"  workspace: {copy} (a temporary copy of {source})")
        _say(f"  command:   python -m lspguard run --config demo.toml -- {real_gopls}")
        _say(f"  config:    hover deadline {DEMO_HOVER_DEADLINE:g} s (the default is 10 s), "
             "everything else as shipped")
        _say()
        status: dict[str, Any] = {}
        after: dict[str, Any] = {}

        def read_status(pid: int) -> None:
            status.update(_read_status(pid))
            with contextlib.suppress(OSError):  # what ps, pgrep and pkill match
                status["comm"] = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()

        def read_status_after(pid: int) -> None:
            after.update(_read_status(pid))

        try:
            transcript = asyncio.run(scripted_session(
                command, copy, timeout=90, on_ready=read_status, hang=_stop_real_gopls,
                on_recovered=read_status_after))
        except ScriptedSessionError as exc:
            print(f"lspguard demo FAILED: {exc}", file=sys.stderr)
            _print_log_hint(None)
            return 1
    _report(transcript, status)
    hang_ok = transcript.hang is not None and _report_hang(
        transcript.hang, status, after, transcript.progress[len(transcript.initial_progress):])
    _say(f"8. shutdown + exit exit code {transcript.exit_code} "
         f"({transcript.timings_ms.get('total', 0) / 1000:.1f} s in all)")
    log_file = status.get("log_file")
    if log_file:
        _say(f"session log: {log_file}")
    else:
        from lspguard import paths
        _say(f"session logs: {paths.logs_dir()}")
    ok = (transcript.exit_code == 0 and "Hello" in transcript.hover_text
          and bool(transcript.diagnostics) and EDIT_ARGUMENT in transcript.edited_hover_text
          and hang_ok)
    if not ok:
        print("lspguard demo FAILED: the session ran but an answer was not what the script "
              "expects (see above)", file=sys.stderr)
        return 1
    _say()
    _say("demo OK: every request went through lspguard and came back as gopls answered it;")
    _say("when gopls hung, lspguard said why, answered the editor, restarted gopls with the")
    _say("editor's open files and unsaved edits, and kept the evidence.")
    return 0


def _stop_real_gopls(proxy_pid: int) -> int:
    """SIGSTOP the gopls lspguard runs now: its pid from lspguard's status file (never a
    process found by name), checked to be the proxy's child. Returns that pid."""
    import psutil

    backend = _read_status(proxy_pid).get("backend") or {}
    pid = backend.get("pid")
    if not isinstance(pid, int):
        raise ScriptedSessionError("lspguard's status file names no gopls pid")
    try:
        if psutil.Process(pid).ppid() != proxy_pid:
            raise ScriptedSessionError(f"pid {pid} is not lspguard's gopls")
    except psutil.NoSuchProcess:
        raise ScriptedSessionError(f"gopls (pid {pid}) is gone") from None
    os.kill(pid, signal.SIGSTOP)
    return pid


def _read_status(pid: int) -> dict[str, Any]:
    from lspguard import paths

    try:
        doc = json.loads((paths.sessions_dir() / f"{pid}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _print_log_hint(log_file: str | None) -> None:
    from lspguard import paths

    if log_file:
        print(f"session log: {log_file}", file=sys.stderr)
    else:
        print(f"session logs: {paths.logs_dir()}", file=sys.stderr)


def _report(t: SessionTranscript, status: dict[str, Any]) -> None:
    ms = t.timings_ms
    hs = status.get("handshake") or {}
    backend = status.get("backend") or {}
    _say(f"1. initialize      answered in {ms.get('initialize', 0):.0f} ms as the editor sees it "
         f"(includes starting Python and lspguard); lspguard measured "
         f"{hs.get('initialize_ms')} ms to gopls; server {t.server_name} "
         f"{t.server_version or ''}, positions {t.position_encoding}")
    name = f" (named {status['comm']!r}: `pkill gopls` spares it)" if status.get("comm") else ""
    _say(f"   proxy pid {t.server_pid}{name} -> gopls pid {backend.get('pid')}")
    titles = [p.removeprefix("begin: ") for p in t.initial_progress if p.startswith("begin: ")]
    _say(f"2. initial work    {', '.join(repr(x) for x in titles) or '(no progress)'} ended "
         f"{ms.get('initial_work_after_initialized', 0):.0f} ms after initialized "
         f"(lspguard measured {hs.get('first_work_title')!r} {hs.get('first_work_ms')} ms)")
    hp = t.hover_position
    _say(f"3. hover           main.go:{hp['line'] + 1}:{hp['character'] + 1} (greet.Hello) "
         f"in {ms.get('hover', 0):.0f} ms:")
    _say(_indent(t.hover_text.strip()))
    _say(f"4. definition      {_where(t.definition)} in {ms.get('definition', 0):.0f} ms")
    _say(f"5. diagnostics     {BROKEN_FILE} (unsaved buffer) after "
         f"{ms.get('diagnostics', 0):.0f} ms:")
    for d in t.diagnostics if isinstance(t.diagnostics, list) else []:
        start = d.get("range", {}).get("start", {})
        tag = " ".join(str(x) for x in (d.get("source"), d.get("code")) if x)
        _say(f"       {BROKEN_FILE}:{start.get('line', 0) + 1}:{start.get('character', 0) + 1} "
             f"error [{tag}] {d.get('message')}")
    ep = t.edited_hover_position
    _say(f"6. edit + hover    inserted {EDIT_CONST.strip()!r} and used it in the call; hover at "
         f"main.go:{ep['line'] + 1}:{ep['character'] + 1} in {ms.get('edited_hover', 0):.0f} ms:")
    _say(_indent(t.edited_hover_text.strip()))


def _report_hang(h: HangTranscript, before: dict[str, Any], after: dict[str, Any],
                 progress: tuple[str, ...]) -> bool:
    """Step 7: what lspguard did about the hang. False if something is missing."""
    verdict = after.get("last_verdict") or {}
    backend = after.get("backend") or {}
    old_pid = (before.get("backend") or {}).get("pid")
    at = verdict.get("at")
    detect_s = at - h.stopped_at if isinstance(at, int | float) else None
    _say(f"7. a real hang     gopls (pid {h.stopped_pid}, from lspguard's status file) is stopped "
         "with SIGSTOP: alive,")
    _say("                   but it answers nothing, as a hung gopls looks to an editor; the "
         "editor asks for a hover")
    _say(f"   verdict         {verdict.get('kind')}: {verdict.get('summary')}")
    if detect_s is not None:
        _say(f"   time to detect  {detect_s:.1f} s after the hang began (the hover's deadline is "
             f"{DEMO_HOVER_DEADLINE:g} s)")
    _say(f"   pending hover   answered at {h.first_answer_s:.1f} s with {h.first_answer}: no "
         "request is left unanswered (VS Code then asks again)")
    label = str(backend.get("label", ""))
    why = " (restart 1: the same gopls with [restart.hang_env])" if "hang" in label else (
        f" ({label})" if label else "")
    shown = [p.removeprefix("begin: ") for p in progress if p.startswith("begin: Restarting")]
    seen = f"; the editor showed {shown[0]!r}" if shown else ""
    _say(f"   restart         gopls pid {old_pid} -> pid {backend.get('pid')}, generation "
         f"{backend.get('generation')}{why}, given the editor's open files and edits{seen}")
    since = f"{h.recovered_s - detect_s:.1f} s after the verdict, " if detect_s is not None else ""
    _say(f"   recovered in    {since}{h.recovered_s:.1f} s after the hang began: the editor's "
         "next good answer, a hover answered by the new gopls (it sees the unsaved edit):")
    _say(_indent(h.hover_text.strip()))
    _say(f"   the user saw    a warning: {h.told}")
    bundle = verdict.get("bundle") or incident_report_path(h.told)
    report = Path(bundle) / "report.html" if bundle else None
    exists = report is not None and report.is_file()
    size = f", {report.stat().st_size / 1024:.0f} KiB" if report is not None and exists else ""
    _say(f"   incident report {report} ({'written' if exists else 'MISSING'}{size}: process and "
         "thread states, wait channels, the last LSP messages, gopls's stderr, taken from the "
         "stopped gopls before it was killed)")
    return bool(exists and verdict.get("kind") and detect_s is not None
                and backend.get("pid") not in (None, h.stopped_pid)
                and EDIT_ARGUMENT in h.hover_text)

"""`lspguard demo`: the scripted editor session, through lspguard against real gopls, told.

`run_demo` runs `scripted_session.scripted_session` through `python -m lspguard run -- gopls` on
a temporary copy of the sample module (examples/hello) and tells the user what happened, step by
step: handshake times lspguard measured, the hover text, the definition, the planted diagnostic,
the edit, the exit code and where the session log is.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from .scripted_session import (
    BROKEN_FILE,
    EDIT_ARGUMENT,
    EDIT_CONST,
    SAMPLE_MODULE,
    ScriptedSessionError,
    SessionTranscript,
    scripted_session,
)

__all__ = ["run_demo"]


def _find_gopls(explicit: str | None) -> str:
    """The real gopls: `explicit` > $LSPGUARD_GOPLS > PATH > $GOPATH/bin, ~/go/bin (no shims)."""
    from .shim import find_real_gopls

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
    from .errors import LspguardError

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
        command = [sys.executable, "-m", "lspguard", "run", "--", real_gopls]
        _say("lspguard demo: a scripted editor session through lspguard against real gopls")
        _say(f"  gopls:     {real_gopls}")
        _say(f"  workspace: {copy} (a temporary copy of {source})")
        _say(f"  command:   python -m lspguard run -- {real_gopls}")
        _say()
        status: dict[str, Any] = {}

        def read_status(pid: int) -> None:
            status.update(_read_status(pid))

        try:
            transcript = asyncio.run(scripted_session(command, copy, on_ready=read_status))
        except ScriptedSessionError as exc:
            print(f"lspguard demo FAILED: {exc}", file=sys.stderr)
            _print_log_hint(None)
            return 1
    _report(transcript, status)
    ok = (transcript.exit_code == 0 and "Hello" in transcript.hover_text
          and bool(transcript.diagnostics) and EDIT_ARGUMENT in transcript.edited_hover_text)
    if not ok:
        print("lspguard demo FAILED: the session ran but an answer was not what the script "
              "expects (see above)", file=sys.stderr)
        return 1
    _say()
    _say("demo OK: every request went through lspguard and came back as gopls answered it.")
    return 0


def _read_status(pid: int) -> dict[str, Any]:
    from . import paths

    try:
        doc = json.loads((paths.sessions_dir() / f"{pid}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _print_log_hint(log_file: str | None) -> None:
    from . import paths

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
    _say(f"   proxy pid {t.server_pid} -> gopls pid {backend.get('pid')}")
    titles = [p.removeprefix("begin: ") for p in t.progress if p.startswith("begin: ")]
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
    _say(f"7. shutdown + exit exit code {t.exit_code} ({ms.get('total', 0) / 1000:.1f} s in all)")
    log_file = status.get("log_file")
    if log_file:
        _say(f"session log: {log_file}")
    else:
        from . import paths
        _say(f"session logs: {paths.logs_dir()}")

"""Doctor check `special`: FIFOs, sockets and devices in the workspace.

A FIFO named like a Go file is the nastiest hang there is: the go command opens every .go (and
.s/.c/.h, for build constraints) file of a package it loads, and opening a FIFO blocks in the
kernel (`wait_for_partner`) until a writer comes, which never happens. `go list` hangs, so gopls
sits at "Loading packages..." forever, and nothing in the editor says why. The entries come from
the shared workspace walk, which only lstat's them: the doctor never opens one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lspguard.doctor.model import Finding, Severity

if TYPE_CHECKING:
    from lspguard.doctor.context import DoctorContext

__all__ = ["check_special"]

#: Names the go command opens while loading a package or module.
GO_NAMES = (".go", ".s", ".S", ".c", ".h", ".cc", ".cpp", ".hh", ".hpp", ".syso",
            "go.mod", "go.sum", "go.work", "go.work.sum")
_LABEL = {"fifo": "FIFO (named pipe)", "socket": "socket", "char-device": "character device",
          "block-device": "block device"}
_PER_KIND = 10

_WHY = {
    "fifo": "The go command opens every {name_kind} file of a package it loads, and opening a "
            "FIFO blocks in the kernel until some process opens it for writing, which never "
            "happens: `go list` hangs, so gopls shows \"Loading packages...\" forever (and "
            "`go build`/`go test` hang too). The editor's search and file watcher can block on "
            "it the same way.",
    "socket": "The go command opens every {name_kind} file of a package it loads; opening a "
              "socket fails (ENXIO), so every `go list` that gopls runs reports an error for "
              "this package and its importers.",
    "char-device": "The go command opens and reads every {name_kind} file of a package it "
                   "loads; a device yields whatever it yields (a terminal blocks, /dev/zero "
                   "never ends), so `go list` and gopls can hang or read garbage.",
}
_WHY["block-device"] = _WHY["char-device"]


def _fix(path: str) -> str:
    return (f"Remove it (rm '{path}') or move it out of the module. If a tool creates it (a "
            "named pipe or socket of a dev server, a test, a crashed run), point that tool at a "
            "path outside the workspace, e.g. under $XDG_RUNTIME_DIR or /tmp. Then reload the "
            "editor window: a `go list` blocked on it does not finish by itself.")


def _go_named(item: dict[str, Any]) -> bool:
    return os.path.basename(str(item["path"])).endswith(GO_NAMES)


def check_special(ctx: DoctorContext) -> list[Finding]:
    """Report special files from the bounded workspace walk; worst: those named like Go files."""
    summary = ctx.workspace_tree("special")
    ws = summary["root"]
    items: list[dict[str, Any]] = summary["special"]
    findings = []
    go_named = [i for i in items if _go_named(i)]
    for item in go_named[:_PER_KIND]:
        path, kind = item["path"], item["kind"]
        name = os.path.basename(path)
        name_kind = "." + name.rsplit(".", 1)[-1] if "." in name and not name.startswith(
            "go.") else name
        findings.append(Finding(
            "special.go-file", Severity.ERROR, f"A {_LABEL[kind]} named like a Go file",
            found=f"{os.path.relpath(path, ws)} is a {_LABEL[kind]}, not a regular file.",
            why=_WHY[kind].format(name_kind=name_kind), fix=_fix(path), path=path))
    if len(go_named) > _PER_KIND:
        findings.append(Finding(
            "special.go-file", Severity.ERROR,
            f"A special file named like a Go file: {len(go_named) - _PER_KIND} more",
            found=f"{len(go_named)} in total; only the first {_PER_KIND} are listed.",
            why=findings[0].why, fix="Remove them the same way as the ones listed above."))
    fifos = [i for i in items if i["kind"] == "fifo" and not _go_named(i)]
    if fifos:
        shown = "; ".join(os.path.relpath(i["path"], ws) for i in fifos[:3])
        findings.append(Finding(
            "special.fifo", Severity.WARNING, "FIFOs (named pipes) in the workspace",
            found=f"{len(fifos)} FIFO(s) in the workspace, e.g. {shown}.",
            why="The go command leaves them alone unless they are named like Go files or fall "
                "under a //go:embed pattern (\"cannot embed irregular file\"), but tools that "
                "open every file - the editor's search, grep -r, watchers that hash contents - "
                "block on them until a writer comes.",
            fix="Move them out of the workspace (e.g. under $XDG_RUNTIME_DIR), or exclude their "
                "directory in \"files.watcherExclude\" and \"search.exclude\".",
            path=fifos[0]["path"]))
    others = [i for i in items if i["kind"] != "fifo" and not _go_named(i)]
    if others:
        shown = "; ".join(f"{os.path.relpath(i['path'], ws)} ({_LABEL[i['kind']]})"
                          for i in others[:3])
        findings.append(Finding(
            "special.other", Severity.INFO, "Sockets or devices in the workspace",
            found=f"{len(others)} socket(s) or device(s) in the workspace, e.g. {shown}.",
            fix="Harmless to gopls unless named like Go files; keep runtime sockets outside the "
                "workspace anyway (e.g. $XDG_RUNTIME_DIR).", path=others[0]["path"]))
    if not findings:
        findings.append(Finding(
            "special.ok", Severity.OK, "No FIFOs, sockets or devices in the workspace",
            found=f"Checked {summary['visited']} entries under {ws}."))
    return findings

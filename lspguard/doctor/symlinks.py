"""Doctor check `symlinks`: loops, links to an ancestor, and links leaving the workspace.

gopls itself uses the go command (which ignores directory symlinks in `./...`), but the editor's
file watcher, whose events gopls depends on, follows them. A link loop or a link into the module
cache turns "watch the workspace" into "watch forever" or "watch half a million files", and makes
the same source appear under two paths. The walk (shared with the special and latency checks)
runs in a bounded helper and never follows a directory link; links come back with their target.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lspguard.doctor.context import is_within
from lspguard.doctor.hung import NotChecked
from lspguard.doctor.model import Finding, Severity

if TYPE_CHECKING:
    from lspguard.doctor.context import DoctorContext

__all__ = ["check_symlinks"]

_GO_FILES = (".go", "go.mod", "go.sum", "go.work")
_PER_KIND = 10  # individual findings per kind; the rest are summarised

_EXCLUDE_HINT = (
    'If it must stay, hide it from gopls and the editor: add "-{rel}" to gopls\'s '
    '"build.directoryFilters" and "**/{rel}/**" to VS Code\'s "files.watcherExclude".'
)


def _loop(rel: str, raw: str, path: str) -> Finding:
    return Finding(
        "symlinks.loop", Severity.ERROR, "Symlink loop",
        found=f"{rel} -> {raw}: resolving it fails with ELOOP (too many levels of symbolic "
              "links).",
        why="Every tool that resolves this path fails: `go list` (which gopls runs to load "
            "packages) reports an error for it, and file watchers that follow links (VS Code's, "
            "which feeds gopls its file events) can rescan it again and again. Links like this "
            "are a known cause of gopls sitting at \"Loading packages...\".",
        fix=f"Remove the link (rm '{path}') or point it at a real file or directory. "
            + _EXCLUDE_HINT.format(rel=rel),
        path=path,
    )


def _cycle(rel: str, raw: str, target: str, path: str) -> Finding:
    name = os.path.basename(rel)
    return Finding(
        "symlinks.cycle", Severity.ERROR, "Directory symlink to its own ancestor",
        found=f"{rel} -> {raw} points at {target}, which contains the link itself, so following "
              f"links never ends ({rel}/{name}/{name}/...).",
        why="The go command skips directory links in ./..., but the editor's file watcher and "
            "search follow them and descend until path-length limits, flooding gopls with "
            "file events and burning CPU while gopls waits for the editor.",
        fix=f"Remove the link (rm '{path}') or point it at a directory that is not an ancestor. "
            + _EXCLUDE_HINT.format(rel=rel),
        path=path,
    )


def _into_modcache(rel: str, raw: str, target: str, modcache: str, path: str) -> Finding:
    return Finding(
        "symlinks.modcache", Severity.WARNING, "Symlink into the Go module cache",
        found=f"{rel} -> {raw} resolves into the module cache GOMODCACHE={modcache} "
              f"({target}).",
        why="gopls treats files under GOMODCACHE as read-only dependency sources and workspace "
            "files as editable; through the link the same files appear under both, so gopls "
            "may load a package twice or not at all (\"No packages found for open file\"), and "
            "edits land in the read-only cache. The go command ignores directory links in ./..., "
            "so what the editor shows is not what builds, and a watcher that follows the link "
            "watches the (huge) module cache.",
        fix="Don't link into the module cache. To edit a dependency, copy or clone it into the "
            "workspace and add `replace <module> => ./<dir>` to go.mod (or `go work use ./<dir>` "
            "in go.work); to keep dependencies in the tree, use `go mod vendor`. Then "
            f"rm '{path}'.",
        path=path,
    )


def _outside(rel: str, raw: str, target: str, path: str) -> Finding:
    return Finding(
        "symlinks.outside", Severity.WARNING, "Directory symlink leaves the workspace",
        found=f"{rel} -> {raw} leads outside the workspace, to {target}.",
        why="Files reached through the link belong to no module gopls loads (\"file is not part "
            "of the workspace\"), and file watchers that follow links watch the linked tree "
            "too, which delays gopls's start when that tree is large or on a slow filesystem.",
        fix="If it holds Go code you edit, make it a module and add it with `go work use <dir>` "
            "or a replace directive instead of a link. " + _EXCLUDE_HINT.format(rel=rel),
        path=path,
    )


def check_symlinks(ctx: DoctorContext) -> list[Finding]:
    """Walk the workspace (bounded) and report every link that loops or leaves it."""
    summary = ctx.workspace_tree("symlinks")
    ws = summary["root"]
    modcache = None
    if ctx.gomodcache is not None:
        try:
            modcache = ctx.path_info("symlinks", ctx.gomodcache).real
        except NotChecked:
            modcache = os.path.abspath(ctx.gomodcache)
    found: dict[str, list[Finding]] = {}
    outside_files: list[str] = []
    for link in summary["links"]:
        path, raw = link["path"], link["raw"]
        rel = os.path.relpath(path, ws)
        if link.get("hung"):
            continue  # into a mount that does not answer: filesystem.not-answering says it
        if "target" not in link:
            if link.get("error") == "ELOOP":
                found.setdefault("loop", []).append(_loop(rel, raw, path))
            continue  # dangling links are harmless to gopls
        target, is_dir = link["target"], link["is_dir"]
        if is_dir and is_within(os.path.dirname(path), target):
            found.setdefault("cycle", []).append(_cycle(rel, raw, target, path))
        elif modcache and is_within(target, modcache):
            found.setdefault("modcache", []).append(
                _into_modcache(rel, raw, target, modcache, path))
        elif not is_within(target, ws):
            if is_dir:
                found.setdefault("outside", []).append(_outside(rel, raw, target, path))
            elif os.path.basename(path).endswith(_GO_FILES):
                outside_files.append(f"{rel} -> {target}")

    findings: list[Finding] = []
    for items in found.values():
        findings.extend(items[:_PER_KIND])
        if len(items) > _PER_KIND:
            first = items[0]
            findings.append(Finding(
                first.id, first.severity, f"{first.title}: {len(items) - _PER_KIND} more",
                found=f"{len(items)} links of this kind in total; only the first {_PER_KIND} "
                      "are listed.",
                why=first.why, fix="Fix them the same way as the ones listed above."))
    if outside_files:
        findings.append(Finding(
            "symlinks.outside-files", Severity.WARNING, "Go files linked from outside",
            found=f"{len(outside_files)} Go file link(s) point outside the workspace, e.g. "
                  + "; ".join(outside_files[:3]) + ".",
            why="The editor names the file by the link's path, the go command by the target's, "
                "so gopls can attach it to the wrong package or to none: missing or duplicated "
                "diagnostics, \"No packages found for open file\".",
            fix="Replace the links with real files, or make the target a module of its own and "
                "add it with `go work use`."))
    if summary["truncated"]:
        findings.append(Finding(
            "symlinks.truncated", Severity.INFO, "Symlink walk stopped early",
            found=f"The workspace walk {summary['truncated']}; links past that point were not "
                  "checked.",
            why="A workspace this large is slow for gopls and the editor's watcher too.",
            fix="Exclude generated or data trees with gopls's \"build.directoryFilters\", or "
                "rerun with a larger --max-files."))
    if not findings:
        findings.append(Finding(
            "symlinks.ok", Severity.OK, "No symlink loops or links out of the workspace",
            found=f"Checked {summary['visited']} entries under {ws}."))
    return findings

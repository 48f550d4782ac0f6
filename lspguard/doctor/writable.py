"""Doctor check `writable`: can the go command and gopls write their caches?

A read-only or wrongly owned GOCACHE/GOMODCACHE (a volume created by root, HOME=/ in a container,
GOCACHE=off) makes every `go list` gopls runs fail, and gopls shows errors or keeps loading. The
probe does what Go does - create an entry - rather than trusting permission bits, which lie for
root and on read-only mounts. Probe entries are removed at once.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from .model import Finding, Severity

if TYPE_CHECKING:
    from pathlib import Path

    from .context import DoctorContext

__all__ = ["check_writable", "probe_writable"]

_PREFIX = ".lspguard-doctor-"


def probe_writable(path: Path) -> str | None:
    """None if entries can be created in `path` (or `path` can be created); else why not."""
    current = os.path.abspath(path)
    if os.path.isdir(current):
        try:
            fd, probe = tempfile.mkstemp(dir=current, prefix=_PREFIX)
        except OSError as exc:
            return f"cannot create files in it ({exc.strerror or exc})"
        os.close(fd)
        os.unlink(probe)
        return None
    if os.path.lexists(current):
        return "it exists but is not a directory"
    ancestor = os.path.dirname(current)
    while not os.path.lexists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        return f"it does not exist and cannot be created: {ancestor} is not a directory"
    try:
        made = tempfile.mkdtemp(dir=ancestor, prefix=_PREFIX)  # what os.MkdirAll would need
    except OSError as exc:
        return (f"it does not exist and cannot be created: mkdir in {ancestor} fails "
                f"({exc.strerror or exc})")
    os.rmdir(made)
    return None


_WHY = {
    "gocache": "The go command writes build results and export data there on every `go list "
               "-export`, which is how gopls loads packages; when it cannot, every load fails "
               "and gopls shows errors or keeps \"Loading packages...\".",
    "gomodcache": "The go command downloads and unpacks modules there; when it cannot, `go list` "
                  "fails for every package with a dependency not already cached, and gopls "
                  "cannot load the workspace.",
    "goplscache": "gopls keeps its persistent index and analysis facts there; when it cannot "
                  "create it, it falls back to $TMPDIR/gopls or runs without a cache, so every "
                  "start re-type-checks everything.",
}

_FIX = {
    "gocache": "Point GOCACHE at a writable directory (`go env -w GOCACHE=$HOME/.cache/go-build`, "
               "or containerEnv/remoteEnv in devcontainer.json); if it is a mounted volume, give "
               "it to the user gopls runs as: `sudo chown -R $(id -u):$(id -g) {path}`.",
    "gomodcache": "Point GOMODCACHE at a writable directory (`go env -w GOMODCACHE=$HOME/go/pkg/"
                  "mod`, or containerEnv/remoteEnv in devcontainer.json); if it is a mounted "
                  "volume: `sudo chown -R $(id -u):$(id -g) {path}`.",
    "goplscache": "Set GOPLSCACHE to a writable directory, or make sure HOME (or "
                  "XDG_CACHE_HOME) is set to a writable home for the user gopls runs as.",
}


def check_writable(ctx: DoctorContext) -> list[Finding]:
    """Probe GOCACHE, GOMODCACHE and the gopls cache dir."""
    findings = []
    gocache_value = ctx.go_env.get("GOCACHE", "")
    if gocache_value == "off" or (gocache_value and not os.path.isabs(gocache_value)):
        findings.append(Finding(
            "writable.gocache", Severity.ERROR, "The Go build cache is disabled",
            found=f"GOCACHE={gocache_value!r}"
                  + (" (HOME and XDG_CACHE_HOME unset?)" if gocache_value == "off" else ""),
            why="Since Go 1.12 the build cache is required: `go list -export`, which gopls runs "
                "to load packages, fails with \"build cache is disabled by GOCACHE=off, but "
                "required\".",
            fix="Set HOME for the user gopls runs as, or set GOCACHE to an absolute writable "
                "directory (e.g. GOCACHE=$HOME/.cache/go-build)."))
    targets: list[tuple[str, str, Path | None, Severity]] = [
        ("gocache", "GOCACHE", ctx.gocache, Severity.ERROR),
        ("gomodcache", "GOMODCACHE", ctx.gomodcache, Severity.ERROR),
        ("goplscache", "The gopls cache", ctx.goplscache, Severity.WARNING),
    ]
    for key, label, path, severity in targets:
        if path is None:
            continue
        reason = probe_writable(path)
        if reason is None:
            findings.append(Finding(f"writable.{key}", Severity.OK, f"{label} is writable",
                                    found=f"{label} {path} is writable.", path=str(path)))
            continue
        findings.append(Finding(
            f"writable.{key}", severity, f"{label} is not writable",
            found=f"{label} {path}: {reason}.", why=_WHY[key],
            fix=_FIX[key].format(path=path), path=str(path)))
    return findings

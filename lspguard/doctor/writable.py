"""Doctor check `writable`: can the go command and gopls write their caches?

A read-only or wrongly owned GOCACHE/GOMODCACHE (a volume created by root, HOME=/ in a container,
GOCACHE=off) makes every `go list` gopls runs fail, and gopls shows errors or keeps loading. The
probe does what Go does - create an entry - rather than trusting permission bits, which lie for
root and on read-only mounts (probes.writable, run in a bounded helper). Probe entries are
removed at once.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lspguard.doctor.hung import NotChecked
from lspguard.doctor.model import Finding, Severity

if TYPE_CHECKING:
    from pathlib import Path

    from lspguard.doctor.context import DoctorContext

__all__ = ["check_writable"]

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
        try:
            reason = ctx.probe("writable", label if key != "goplscache" else "the gopls cache",
                               "lspguard.doctor.probes:writable", {"path": str(path)},
                               paths=[path], timeout=4 * ctx.limits.probe_seconds)
        except NotChecked as exc:
            findings.append(exc.finding)
            continue
        if reason is None:
            findings.append(Finding(f"writable.{key}", Severity.OK, f"{label} is writable",
                                    found=f"{label} {path} is writable.", path=str(path)))
            continue
        findings.append(Finding(
            f"writable.{key}", severity, f"{label} is not writable",
            found=f"{label} {path}: {reason}.", why=_WHY[key],
            fix=_FIX[key].format(path=path), path=str(path)))
    return findings

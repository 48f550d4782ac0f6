"""Doctor check `devcontainer`: lint devcontainer.json for the mount mistakes behind slow or hung
gopls in Dev Containers, each reported with file and line.

Rules: the module cache (or build cache) on a host bind mount; a cache volume that GOCACHE /
GOMODCACHE does not point into (the volume sits unused while the caches stay cold); bind mounts
without `consistency=cached` (macOS Docker Desktop). The file is JSONC; see `jsonc.py`. The
files are found and read by a bounded probe (probes.devcontainer_configs).
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from lspguard.doctor.context import is_within
from lspguard.doctor.devmounts import MountSpec, container_env, mount_specs, workspace_folder
from lspguard.doctor.jsonc import JsoncError, parse
from lspguard.doctor.model import Finding, Severity

if TYPE_CHECKING:
    from lspguard.doctor.context import DoctorContext
    from lspguard.doctor.devmounts import EnvValue
    from lspguard.doctor.jsonc import Parsed

__all__ = ["check_devcontainer", "lint_devcontainer"]


_BIND_WHY = {
    "GOMODCACHE": "On macOS and Windows, host bind mounts go through Docker Desktop's file "
                  "sharing (gRPC FUSE, VirtioFS), and gopls reads thousands of files in the "
                  "module cache when it loads the workspace and for unimported completions, so "
                  "\"Loading packages...\" takes minutes or never finishes.",
    "GOCACHE": "gopls's package loading (`go list -export`) reads, writes and locks many small "
               "files in the build cache; through host file sharing that is slow and the file "
               "locks can stall.",
}

_UNUSED_WHY = (
    "The volume was meant to keep the {what} across container rebuilds and off host file "
    "sharing, but the go command uses {key}, which is in the container's writable layer: every "
    "rebuild starts cold and gopls's first load re-does all the work, which looks like a hang "
    "on a large module."
)


def _norm(path: str, ws_folder: str) -> str:
    path = path.replace("${containerWorkspaceFolder}", ws_folder)
    return posixpath.normpath(path) if path.startswith("/") else path


def _covering(path: str, mounts: list[MountSpec]) -> MountSpec | None:
    """The mount that holds `path` in the container: the one with the longest target."""
    best = None
    for m in mounts:
        if m.target.startswith("/") and is_within(path, m.target) and (
            best is None or len(m.target) >= len(best.target)
        ):
            best = m
    return best


def _looks_like_modcache(m: MountSpec) -> bool:
    flat = (m.source + " " + m.target).lower().replace("-", "").replace("_", "")
    return m.target.endswith("/pkg/mod") or "modcache" in flat


def _looks_like_gocache(m: MountSpec) -> bool:
    flat = (m.source + " " + m.target).lower().replace("-", "").replace("_", "")
    return not _looks_like_modcache(m) and ("gobuild" in flat or "gocache" in flat
                                            or "cache" in m.target.lower())


def _consistency_fix(m: MountSpec) -> str:
    if m.origin.startswith("runArgs"):
        return "Add the cached option: -v SRC:DST:cached, or consistency=cached in --mount."
    if m.text.startswith("{"):  # the object form has no consistency field
        return ("Write it as a string so it can carry the option: \"source="
                f"{m.source},target={m.target},type=bind,consistency=cached\".")
    return f"Append the option: \"{m.text},consistency=cached\"."


def _cache_paths(env: dict[str, EnvValue]) -> dict[str, tuple[str, EnvValue] | None]:
    modcache: tuple[str, EnvValue] | None = None
    if "GOMODCACHE" in env:
        modcache = (env["GOMODCACHE"].value, env["GOMODCACHE"])
    elif "GOPATH" in env:
        modcache = (env["GOPATH"].value.split(":")[0].rstrip("/") + "/pkg/mod", env["GOPATH"])
    gocache = (env["GOCACHE"].value, env["GOCACHE"]) if "GOCACHE" in env else None
    return {"GOMODCACHE": modcache, "GOCACHE": gocache}


def lint_devcontainer(doc: Parsed, file: str, project_name: str) -> list[Finding]:
    """All findings for one parsed devcontainer.json."""
    config = doc.value if isinstance(doc.value, dict) else {}
    ws_folder = workspace_folder(doc, project_name)
    explicit = [
        MountSpec(m.kind, m.source, _norm(m.target, ws_folder), m.consistency, m.origin,
                  m.line, m.text) for m in mount_specs(doc)]
    mounts = list(explicit)
    if "workspaceMount" not in config and "dockerComposeFile" not in config:
        mounts.insert(0, MountSpec("bind", "${localWorkspaceFolder}", ws_folder, "default",
                                   "the default workspace mount", None, ""))
    env = _cache_paths(container_env(doc))
    findings: list[Finding] = []

    for key, severity in (("GOMODCACHE", Severity.ERROR), ("GOCACHE", Severity.WARNING)):
        known = env[key]
        if known is not None:
            path = _norm(known[0], ws_folder)
            covering = _covering(path, mounts)
            on_bind = [covering] if covering is not None and covering.is_bind else []
        else:  # not set here: judge mounts that are plainly meant for this cache
            path = "the module cache" if key == "GOMODCACHE" else "the build cache"
            wanted = _looks_like_modcache if key == "GOMODCACHE" else _looks_like_gocache
            on_bind = [m for m in explicit if m.is_bind and wanted(m)]
        for m in on_bind:
            setting = f"{key}={known[0]} ({known[1].origin})" if known else path
            volume_target = path if known else m.target
            # The implicit workspace mount has no line: point at the env entry instead.
            line = known[1].line if m.line is None and known else m.line
            findings.append(Finding(
                f"devcontainer.{key.lower()}-bind", severity, f"{key} on a host bind mount",
                found=f"{m.origin} bind-mounts host path {m.source} at {m.target}, which holds "
                      f"{setting}.",
                why=_BIND_WHY[key],
                fix=f"Use a named volume for {key} instead: \"source={key.lower()},"
                    f"target={volume_target},type=volume\" in \"mounts\" (the container fills "
                    "it once), and keep host bind mounts for sources only.",
                path=file, line=line))

    for key, wanted, what in (("GOCACHE", _looks_like_gocache, "build cache"),
                              ("GOMODCACHE", _looks_like_modcache, "module cache")):
        volumes = [m for m in explicit if m.kind == "volume" and wanted(m)]
        known = env[key]
        if not volumes:
            continue
        targets = ", ".join(f"{m.target} ({m.origin})" for m in volumes)
        if known is not None:
            if any(is_within(_norm(known[0], ws_folder), m.target) for m in volumes):
                continue
            found = (f"A {what} volume is mounted at {targets}, but {key}={known[0]} "
                     f"({known[1].origin}) is not inside it.")
            line = known[1].line
        else:
            if key == "GOCACHE" and any(m.target.endswith(("/.cache/go-build", "/.cache"))
                                        for m in volumes):
                continue  # likely the default $HOME/.cache/go-build
            if key == "GOMODCACHE" and any(m.target.endswith("/pkg/mod") for m in volumes):
                continue  # likely $GOPATH/pkg/mod of the image's GOPATH
            found = (f"A {what} volume is mounted at {targets}, but {key} is not set in "
                     "containerEnv or remoteEnv, so the go command uses its default location.")
            line = volumes[0].line
        findings.append(Finding(
            f"devcontainer.{key.lower()}-unmounted", Severity.WARNING,
            f"{key} does not point into its cache volume",
            found=found, why=_UNUSED_WHY.format(what=what, key=key),
            fix=f"Make them agree: set \"{key}\": \"{volumes[0].target}\" in \"containerEnv\", "
                f"or mount the volume at {key}'s path.",
            path=file, line=line))

    for m in explicit:
        if not m.is_bind or m.consistency in ("cached", "delegated"):
            continue
        findings.append(Finding(
            "devcontainer.no-consistency", Severity.WARNING,
            "Bind mount without consistency=cached",
            found=f"{m.origin} bind-mounts {m.source} at {m.target} without "
                  "consistency=cached.",
            why="On macOS, Docker Desktop's osxfs and gRPC FUSE sharing keep host and container "
                "strictly consistent by default, so every stat gopls and its file watcher make "
                "is a synchronous round trip to the host; `cached` lets the container cache "
                "metadata. Linux hosts and VirtioFS ignore the option, so it is harmless.",
            fix=_consistency_fix(m), path=file, line=m.line))

    if "dockerComposeFile" in config:
        findings.append(Finding(
            "devcontainer.compose", Severity.INFO, "Mounts defined by Docker Compose",
            found="This configuration uses dockerComposeFile; the volumes in the compose file "
                  "were not checked.",
            fix="Apply the same rules there: caches on named volumes, `:cached` on bind mounts.",
            path=file, line=doc.line_of("dockerComposeFile")))
    return findings


def check_devcontainer(ctx: DoctorContext) -> list[Finding]:
    """Lint every devcontainer.json of the workspace."""
    found = ctx.probe("devcontainer", "the Dev Container configuration",
                      "lspguard.doctor.probes:devcontainer_configs",
                      {"workspace": str(ctx.workspace)}, paths=[ctx.workspace],
                      timeout=4 * ctx.limits.probe_seconds)
    if not found["configs"]:
        return [Finding("devcontainer.none", Severity.OK, "No devcontainer.json",
                        found="The workspace has no Dev Container configuration.")]
    findings: list[Finding] = []
    for config in found["configs"]:
        file = config["path"]
        try:
            doc = parse(config["text"])
        except JsoncError as exc:
            findings.append(Finding(
                "devcontainer.parse-error", Severity.ERROR, "devcontainer.json does not parse",
                found=f"{posixpath.basename(file)}: {exc}",
                why="VS Code cannot build the container from it; what runs instead is not what "
                    "the file says.",
                fix="Fix the syntax at the reported line (comments and trailing commas are "
                    "allowed, other JSON rules apply).", path=file, line=exc.line))
            continue
        if not isinstance(doc.value, dict):
            continue
        items = lint_devcontainer(doc, file, found["name"])
        findings.extend(items or [Finding(
            "devcontainer.ok", Severity.OK, "devcontainer.json has no cache or mount mistakes",
            found=f"Checked {file}.", path=file)])
    return findings

"""Facts about the machine that explain hangs: kernel, container, filesystems, Go setup.

The usual cause of a gopls that stops answering is not gopls: it is the module cache or the
workspace on a slow or foreign filesystem (grpcfuse, osxfs, virtiofs, 9p, NFS), often inside a
container. So the bundle records which mount each relevant directory is on, as read from the
backend's own `/proc/PID/mounts` (its mount namespace may differ from ours), and whether it is
slow or foreign (lspguard.procfs.fstypes). Paths are matched by text, never stat()ed: a stat on
the hung mount would hang this collector too. `go env` and `gopls version` run as bounded
subprocesses, side by side.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import anyio

from lspguard.incident.collect import in_thread, run_bounded
from lspguard.procfs.fstypes import fs_type
from lspguard.procfs.mounts import mount_for, parse_mounts

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lspguard.incident.context import IncidentContext
    from lspguard.procfs.mounts import Mount

__all__ = ["collect_host", "filesystem_of", "sanitize_env", "strip_userinfo"]

_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "AUTH", "CREDENTIAL")
_ENV_PREFIXES = ("GO", "CGO_")
_ENV_NAMES = ("PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
              "no_proxy", "HOME", "XDG_CACHE_HOME")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s,|]*@")
_GO_ENV_VARS = ("GOVERSION", "GOROOT", "GOPATH", "GOMODCACHE", "GOCACHE", "GOFLAGS", "GOPROXY",
                "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE", "GOOS", "GOARCH",
                "GOENV", "GOTELEMETRY", "CGO_ENABLED",
                "GO111MODULE", "GODEBUG")


async def collect_host(ctx: IncidentContext, within: float) -> dict[str, Any]:
    """Everything above; the subprocesses get `within` seconds minus a margin each."""
    env = {**os.environ, **ctx.backend_env_overlay}
    sub_timeout = max(0.2, within - 0.5)
    facts: dict[str, Any] = await in_thread(lambda: _static_facts(ctx, env))
    tools: dict[str, Any] = {}

    async def go_env() -> None:
        tools["go_env"] = await in_thread(lambda: _go_env(env, sub_timeout))

    async def gopls_version() -> None:
        tools["gopls_version"] = await in_thread(lambda: _gopls_version(ctx, env, sub_timeout))

    async with anyio.create_task_group() as tg:
        tg.start_soon(go_env)
        tg.start_soon(gopls_version)

    go = tools["go_env"]
    facts["go_env"] = go
    facts["versions"] = {
        "lspguard": ctx.lspguard_version,
        "gopls": tools["gopls_version"],
        "go": go.get("GOVERSION") if isinstance(go, dict) else None,
        "python": platform.python_version(),
    }
    paths = dict(facts.pop("_workspace_paths"))
    for var in ("GOMODCACHE", "GOCACHE", "GOROOT"):
        value = go.get(var) if isinstance(go, dict) else None
        value = value or env.get(var)
        if value:
            paths[var] = value
    mounts = facts.pop("_mounts")
    facts["filesystems"] = {label: filesystem_of(path, mounts) for label, path in paths.items()}
    return facts


def _static_facts(ctx: IncidentContext, env: Mapping[str, str]) -> dict[str, Any]:
    uname = os.uname()
    facts: dict[str, Any] = {
        "kernel": {"sysname": uname.sysname, "release": uname.release,
                   "version": uname.version, "machine": uname.machine},
        "hostname": uname.nodename,
        "wsl": "microsoft" in uname.release.lower(),
        "container": _container_facts(env),
        "env": sanitize_env(env),
        "python": sys.version.split()[0],
    }
    mounts_file = f"/proc/{ctx.backend_pid}/mounts" if ctx.backend_pid else "/proc/self/mounts"
    try:
        facts["_mounts"] = _read_mounts(mounts_file)
    except OSError:
        facts["_mounts"] = _read_mounts("/proc/self/mounts")
    workspace: dict[str, str] = {}
    for i, uri in enumerate(ctx.workspace_folders):
        path = _uri_path(uri)
        if path:
            workspace[f"workspace[{i}]"] = path
    facts["_workspace_paths"] = workspace
    return facts


def _container_facts(env: Mapping[str, str]) -> dict[str, Any]:
    markers = [m for m in ("/.dockerenv", "/run/.containerenv") if Path(m).exists()]
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        cgroup = ""
    engines = [w for w in ("docker", "kubepods", "containerd", "libpod", "lxc")
               if w in cgroup]
    hints = [n for n in ("container", "REMOTE_CONTAINERS", "CODESPACES", "DEVCONTAINER")
             if n in env]
    return {"in_container": bool(markers or engines or "container" in env),
            "markers": markers, "cgroup_mentions": engines, "env_hints": hints,
            "container_env": env.get("container")}


def sanitize_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The Go-related variables, secrets dropped (listed by name only), URL userinfo stripped."""
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name in sorted(env):
        if not (name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES):
            continue
        if any(word in name.upper() for word in _SECRET_WORDS):
            dropped.append(name)
            continue
        kept[name] = strip_userinfo(env[name])
    return {"vars": kept, "dropped_secrets": dropped}


def strip_userinfo(value: str) -> str:
    """`https://user:pw@proxy/` -> `https://proxy/`, anywhere in a list such as GOPROXY."""
    return _USERINFO.sub(r"\g<scheme>", value)


def _read_mounts(path: str) -> list[Mount]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_mounts(f.read())


def filesystem_of(path: str, mounts: list[Mount]) -> dict[str, Any]:
    """The mount `path` lives on, as a bundle records it (a relative path: on none)."""
    norm = os.path.normpath(path)
    best = mount_for(norm, mounts) if os.path.isabs(norm) else None
    out: dict[str, Any] = {"path": path}
    if best is not None:
        out.update(mountpoint=best.mount_point, fstype=best.fs_type, device=best.source,
                   options=best.options)
        out["slow_or_foreign"] = fs_type(best.fs_type).slow_or_foreign
    return out


def _uri_path(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return unquote(parts.path) or None
    return uri if uri.startswith("/") else None


def _go_env(env: Mapping[str, str], timeout: float) -> dict[str, Any]:
    go = shutil.which("go", path=env.get("PATH"))
    if go is None:
        return {"error": "go not found on PATH"}
    import json

    # From /, with the local toolchain: a go.mod or GOTOOLCHAIN asking for another Go version
    # would otherwise make `go env` download one (and GOMOD/GOWORK of our cwd mean nothing).
    rc, out, err = run_bounded([go, "env", "-json", *_GO_ENV_VARS], timeout,
                               env={**env, "GOTOOLCHAIN": "local"}, cwd="/")
    if rc is None:
        return {"error": f"`go env` did not finish within {timeout:.1f} s"}
    if rc != 0:
        return {"error": f"`go env` failed ({rc}): {err.strip()[:500]}"}
    try:
        values = json.loads(out)
    except ValueError as exc:
        return {"error": f"`go env -json` printed something else: {exc}"}
    return {k: strip_userinfo(str(v)) for k, v in values.items()
            if not any(word in k for word in _SECRET_WORDS)}


def _gopls_version(ctx: IncidentContext, env: Mapping[str, str], timeout: float) -> str | None:
    if not ctx.backend_argv or "gopls" not in os.path.basename(ctx.backend_argv[0]):
        return None  # `version` means nothing to other servers; they might even start serving
    rc, out, err = run_bounded([ctx.backend_argv[0], "version"], timeout, env=env)
    if rc is None:
        return f"(`gopls version` did not finish within {timeout:.1f} s)"
    text = (out or err).strip()
    return text.splitlines()[0] if text else f"(`gopls version` printed nothing; exit {rc})"

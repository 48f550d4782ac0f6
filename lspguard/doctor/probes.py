"""The doctor's filesystem probes. They run only inside a bounded helper (see bounded.py).

Everything here may block forever on a dead mount, which is why none of it runs in the doctor's
own process: each function takes and returns JSON values and calls `note` before every call that
may block, so that a helper killed on its deadline says which call on which path hung. Each
probe batches a whole job (one walk of a tree does the symlink survey, the special-file search
and the stat latency sample), so a doctor run starts a dozen helpers, not thousands.

Special files are only ever lstat'ed: opening a FIFO blocks until a writer comes, which is what
hangs the go command on a FIFO named x.go.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Any

from lspguard.doctor._probe import note
from lspguard.doctor.walk import WalkStats, walk

__all__ = ["command", "devcontainer_configs", "find_gopls", "paths", "tree", "which",
           "writable"]

_MAX_LINKS = 5000
_MAX_SPECIAL = 500
_MAX_CONFIG_BYTES = 1 << 20
_SPECIAL = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char-device"),
            (stat.S_ISBLK, "block-device"))


def _which(name: str) -> str | None:
    """shutil.which, announcing each candidate (a PATH entry may be on a dead mount)."""
    dirs = [""] if os.sep in name else os.environ.get("PATH", os.defpath).split(os.pathsep)
    for directory in dirs:
        candidate = os.path.join(directory, name) if directory else name
        if not os.path.isabs(candidate):
            continue
        note("stat", candidate)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def which(args: dict[str, Any]) -> str | None:
    """The executable `args["name"]` resolves to on PATH (the helper's environment)."""
    return _which(str(args["name"]))


def command(args: dict[str, Any]) -> str:
    """Resolve argv[0], chdir to cwd and exec the command; returns only if it is not found."""
    argv = [str(a) for a in args["argv"]]
    path = _which(argv[0])
    if path is None:
        return f"{argv[0]} not found on PATH={os.environ.get('PATH', '')!r}"
    note("chdir", str(args["cwd"]))
    os.chdir(str(args["cwd"]))
    note("exec", path, long=True)
    try:
        os.execve(path, argv, os.environ)
    except OSError as exc:  # stdout is the command's now: say it on stderr, as a shell does
        os.write(2, f"cannot run {path}: {exc.strerror or exc}\n".encode())
        os._exit(126)


def _path_info(path: str) -> dict[str, Any]:
    note("stat", path)
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None
    existing = path
    while mode is None and not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
        note("stat", existing)
    note("realpath", path)
    real = os.path.realpath(path)
    return {"exists": mode is not None, "is_dir": mode is not None and stat.S_ISDIR(mode),
            "is_file": mode is not None and stat.S_ISREG(mode), "real": real,
            "real_existing": real if mode is not None else os.path.realpath(existing)}


def paths(args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """exists / is_dir / is_file / realpath of each path, and the realpath of its nearest
    existing ancestor (caches may not be created yet)."""
    return {p: _path_info(p) for p in args["paths"]}


def _within(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _link(path: str, avoid: list[str]) -> dict[str, Any] | None:
    note("readlink", path)
    try:
        raw = os.readlink(path)
    except OSError:
        return None  # replaced or removed while we looked
    lexical = os.path.normpath(os.path.join(os.path.dirname(path), raw))
    if _within(lexical, avoid):  # into a mount already known not to answer: don't follow
        return {"path": path, "raw": raw, "target": lexical, "hung": True}
    note("stat", lexical)  # where the link leads: that filesystem may be the one that hangs
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return {"path": path, "raw": raw, "error": errno.errorcode.get(exc.errno or 0, "")}
    note("realpath", lexical)
    return {"path": path, "raw": raw, "target": os.path.realpath(path),
            "is_dir": stat.S_ISDIR(mode)}


def tree(args: dict[str, Any]) -> dict[str, Any]:
    """Walk `root` (bounded, never following links) once: lstat timings of the first `sample`
    entries, every symlink (if `links`) and every FIFO, socket or device. Nothing under the
    mount points in `avoid` (known not to answer) is touched, not even a link's target."""
    root = str(args["root"])
    avoid = [str(a) for a in args.get("avoid", ())]
    stats = WalkStats()
    durations: list[int] = []
    links: list[dict[str, Any]] = []
    special: list[dict[str, str]] = []
    avoided: list[str] = []
    for entry in walk(root, stats, max_entries=int(args["max_entries"]),
                      seconds=float(args["seconds"]),
                      skip_paths={*args.get("skip", ()), *avoid},
                      before_list=lambda d: note("list", d)):
        path, st = entry.path, None
        if avoid and _within(path, avoid):
            avoided.append(path)
            continue
        if len(durations) < int(args["sample"]):
            note("lstat", path)
            start = time.perf_counter_ns()
            try:
                st = os.lstat(path)
            except OSError:
                pass
            else:
                durations.append(time.perf_counter_ns() - start)
        try:
            if entry.is_symlink():
                if args.get("links") and len(links) < _MAX_LINKS:
                    link = _link(path, avoid)
                    if link is not None:
                        links.append(link)
                continue
            if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                continue
            if st is None:
                note("lstat", path)
                st = os.lstat(path)
        except OSError:
            continue
        kind = next((name for test, name in _SPECIAL if test(st.st_mode)), None)
        if kind and len(special) < _MAX_SPECIAL:
            special.append({"path": path, "kind": kind})
    return {"root": root, "visited": stats.visited, "truncated": stats.truncated,
            "durations": durations, "links": links, "special": special,
            "avoided": avoided[:_MAX_SPECIAL]}


_PREFIX = ".lspguard-doctor-"


def writable(args: dict[str, Any]) -> str | None:
    """None if entries can be created in `path` (or `path` can be created); else why not.
    Does what Go does - create an entry - since permission bits lie for root and on read-only
    mounts; the entry is removed at once."""
    import tempfile

    current = os.path.abspath(str(args["path"]))
    note("stat", current)
    if os.path.isdir(current):
        note("create", current)
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
    note("stat", ancestor)
    while not os.path.lexists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
        note("stat", ancestor)
    if not os.path.isdir(ancestor):
        return f"it does not exist and cannot be created: {ancestor} is not a directory"
    note("create", ancestor)
    try:
        made = tempfile.mkdtemp(dir=ancestor, prefix=_PREFIX)  # what os.MkdirAll would need
    except OSError as exc:
        return (f"it does not exist and cannot be created: mkdir in {ancestor} fails "
                f"({exc.strerror or exc})")
    os.rmdir(made)
    return None


def _regular(path: str) -> bool:
    note("stat", path)
    try:
        return stat.S_ISREG(os.stat(path).st_mode)  # never open a FIFO or a device
    except OSError:
        return False


def devcontainer_configs(args: dict[str, Any]) -> dict[str, Any]:
    """The Dev Container configurations VS Code would offer for the workspace, with their text,
    and the workspace's real name (the default project name)."""
    ws = str(args["workspace"])
    sub = os.path.join(ws, ".devcontainer")
    candidates = [os.path.join(sub, "devcontainer.json"), os.path.join(ws, ".devcontainer.json")]
    note("list", sub)
    try:
        names = sorted(os.listdir(sub))
    except OSError:
        names = []
    candidates += [os.path.join(sub, n, "devcontainer.json") for n in names]
    configs = []
    for path in candidates:
        if not _regular(path):
            continue
        note("read", path)
        with open(path, "rb") as f:
            text = f.read(_MAX_CONFIG_BYTES).decode("utf-8", errors="replace")
        configs.append({"path": path, "text": text})
    note("realpath", ws)
    return {"configs": configs, "name": os.path.basename(os.path.realpath(ws))}


def _alternate_gopls(workspace: str) -> str:
    """go.alternateTools.gopls in the workspace's .vscode/settings.json (what the lspguard
    extension's Enable writes), or ""."""
    from lspguard.doctor import jsonc

    path = os.path.join(workspace, ".vscode", "settings.json")
    if not _regular(path):
        return ""
    note("read", path)
    with open(path, "rb") as f:
        text = f.read(_MAX_CONFIG_BYTES).decode("utf-8", errors="replace")
    try:
        settings = jsonc.parse(text).value
    except jsonc.JsoncError:
        return ""
    tools = settings.get("go.alternateTools") if isinstance(settings, dict) else None
    value = tools.get("gopls") if isinstance(tools, dict) else None
    return os.path.join(workspace, value) if isinstance(value, str) and value else ""


def find_gopls(args: dict[str, Any]) -> dict[str, Any]:
    """The real gopls lspguard would run; the shims VS Code Go may be given (`gopls` on PATH,
    the workspace's go.alternateTools.gopls) and their kind."""
    from pathlib import Path

    from lspguard.errors import BackendError
    from lspguard.gopls.find import find_real_gopls
    from lspguard.gopls.identity import is_native_shim, is_script_shim

    note("search", str(args.get("configured") or "gopls on PATH"))
    try:
        gopls: str | None = str(find_real_gopls(str(args.get("configured", "")),
                                                environ=os.environ))
        error = ""
    except BackendError as exc:
        gopls, error = None, str(exc)
    on_path = _which("gopls")
    candidates = [p for p in (on_path, _alternate_gopls(str(args.get("workspace", ""))))
                  if p and (not gopls or os.path.realpath(p) != os.path.realpath(gopls))]
    shims: dict[str, str] = {}
    for path in dict.fromkeys(candidates):
        note("read", path)
        kind = ("native" if is_native_shim(path) else
                "script" if is_script_shim(Path(path)) else "")
        if kind:
            shims[path] = kind
    return {"gopls": gopls, "error": error, "on_path": on_path,
            "on_path_is_shim": on_path in shims, "shims": shims}

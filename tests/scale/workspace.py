"""The scale fixtures: two real-size Go workspaces, built once and cached outside the repository.

    python -m tests.scale.workspace --ensure      # build what is missing; print the cache dir
    python -m tests.scale.workspace --check       # also `go build` both (slow; for changes here)

Layout under `~/.cache/lspguard-scale/<VERSION>/` (or `$LSPGUARD_SCALE_CACHE/<VERSION>/`):

    modcache/   GOMODCACHE of both workspaces, fully downloaded: tests run with GOPROXY=off
    large/      example.com/scale, generated (gen_large.py): 482 packages (1,500 with their
                dependencies) on client-go, controller-runtime, the AWS SDK (EC2, S3), x/tools,
                gRPC, OpenTelemetry and the Prometheus client
    second/     golang.org/x/tools at a pinned version, a real module opened as a workspace
    *.ready     written last: a fixture without it is rebuilt

Why siblings: the FUSE case mounts this whole directory, so the workspace and its module cache
are both under the slow mount, as a bind-mounted source tree with its GOMODCACHE would be.
Nothing in the tests needs the network: `env()` sets GOPROXY=off and GOFLAGS=-mod=mod.

gopls's own cache (v0.21.1, gopls/internal/filecache `getCacheDir`): `$GOPLSCACHE/gopls/<hash
of the executable>` when GOPLSCACHE is set, else `os.UserCacheDir()` (`$XDG_CACHE_HOME`, else
`~/.cache`) `/gopls/<hash>`; if that cannot be created, `$TMPDIR/gopls/<hash>`. Its budget is
1 GB. "Cold" here means GOPLSCACHE and GOCACHE both fresh empty directories.

Measured here (gopls v0.21.1, 2 cores, quiet): `--ensure` from nothing takes ~11 s (the module
proxy is fast here) and 555 MB; when present, well under a second. Cold, bare gopls on `large`
answers the open file after ~11 s and finishes the workspace (diagnostics, analysis) at ~33 s,
peaking at ~5.4 GB RSS; `second` answers after ~5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import gen_large

VERSION = "v4"
CACHE_ENV = "LSPGUARD_SCALE_CACHE"
SECOND_MODULE = "golang.org/x/tools"
SECOND_VERSION = "v0.53.0"
GO_TIMEOUT = 1800.0  # a cold download of both fixtures takes a few minutes


@dataclass(frozen=True)
class Position:
    """An LSP position (0-based line, UTF-16 character; the fixtures' files are ASCII)."""

    line: int
    character: int

    def lsp(self) -> dict[str, int]:
        return {"line": self.line, "character": self.character}


@dataclass(frozen=True)
class OpenTarget:
    """The file the editor opens, and where it points: `symbol` is a real identifier declared in
    a dependency (hover, definition, references); `completion` is right after its package's
    dot."""

    path: Path
    symbol: Position
    completion: Position


@dataclass(frozen=True)
class Workspace:
    """One fixture: the folder the editor opens, and the module cache it needs."""

    name: str
    root: Path
    modcache: Path
    open_file: str  # relative to root
    needle: str  # the text around `symbol`, e.g. "[]corev1.Pod"
    needle_offset: int  # where in `needle` the symbol starts

    def target(self) -> OpenTarget:
        """Positions found in the file's text, so an edit of the generator cannot skew them."""
        path = self.root / self.open_file
        for number, line in enumerate(path.read_text().splitlines()):
            at = line.find(self.needle)
            if at >= 0:
                symbol = Position(number, at + self.needle_offset)
                return OpenTarget(path, symbol, symbol)
        raise LookupError(f"{self.needle!r} is not in {path}")

    def under(self, base: Path) -> Workspace:
        """The same fixture seen under another copy of the cache dir (e.g. a FUSE mount of it)."""
        top = self.root.parent
        return replace(self, root=base / self.root.relative_to(top),
                       modcache=base / self.modcache.relative_to(top))

    def env(self, *, gocache: Path, goplscache: Path,
            base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment gopls (bare or guarded) runs with: offline, the fixture's module
        cache, and the given build and gopls caches (fresh empty dirs = cold)."""
        env = dict(os.environ if base is None else base)
        env.update(GOMODCACHE=str(self.modcache), GOPROXY="off", GOFLAGS="-mod=mod",
                   GOWORK="off", GOTOOLCHAIN="local", GOCACHE=str(gocache),
                   GOPLSCACHE=str(goplscache), GOSUMDB="off")
        env.pop("GOMEMLIMIT", None)
        env.pop("GOGC", None)
        return env


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "lspguard-scale")
    return Path(base) / VERSION


def large(top: Path | None = None) -> Workspace:
    top = top or cache_dir()
    return Workspace("large", top / "large", top / "modcache", gen_large.OPEN_FILE,
                     "[]corev1.Pod", len("[]corev1."))


def second(top: Path | None = None) -> Workspace:
    top = top or cache_dir()
    return Workspace("x/tools", top / "second", top / "modcache", "go/packages/packages.go",
                     "errgroup.Group", len("errgroup."))


def ready(ws: Workspace) -> bool:
    return (ws.root.parent / f"{ws.root.name}.ready").is_file()


# ------------------------------------------------------------------------------ building


def _go(args: list[str], cwd: Path, modcache: Path, *, offline: bool = False,
        gocache: Path | None = None) -> str:
    env = {**os.environ, "GOMODCACHE": str(modcache), "GOFLAGS": "-mod=mod", "GOWORK": "off",
           "GOTOOLCHAIN": "local"}
    if offline:
        env.update(GOPROXY="off", GOSUMDB="off")
    if gocache is not None:
        env["GOCACHE"] = str(gocache)
    done = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=GO_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} in {cwd} failed ({done.returncode}):\n"
                           f"{done.stderr[-4000:]}")
    return done.stdout


def _writable(tree: Path) -> None:
    """Module cache copies are read-only; the workspace must not be (gopls may write)."""
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in (*dirnames, *filenames):
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
    tree.chmod(tree.stat().st_mode | stat.S_IWUSR)


def _remove(tree: Path) -> None:
    if tree.exists():
        _writable(tree)
        shutil.rmtree(tree)


def _finish(ws: Workspace, started: float, packages: int) -> None:
    """Check the fixture loads offline (every module on disk), then mark it ready."""
    listed = _go(["list", "-e", "-deps", "-test", "-f", "{{if .Error}}{{.ImportPath}}: "
                  "{{.Error}}{{end}}", "./..."], ws.root, ws.modcache, offline=True)
    if listed.strip():
        raise RuntimeError(f"{ws.name}: packages with errors offline:\n{listed[:4000]}")
    info = {"version": VERSION, "packages": packages, "build_s": round(time.time() - started, 1)}
    (ws.root.parent / f"{ws.root.name}.ready").write_text(json.dumps(info) + "\n")


def build_large(ws: Workspace) -> None:
    started = time.time()
    _remove(ws.root)
    ws.root.mkdir(parents=True)
    count = gen_large.write_module(ws.root)
    requires = "".join(f"\t{m} {v}\n" for m, v in sorted(gen_large.REQUIRE.items()))
    (ws.root / "go.mod").write_text(f"module {gen_large.MODULE}\n\ngo 1.25.0\n\n"
                                    f"require (\n{requires})\n")
    _go(["mod", "tidy"], ws.root, ws.modcache)
    _go(["mod", "download"], ws.root, ws.modcache)
    _finish(ws, started, count)


def build_second(ws: Workspace) -> None:
    started = time.time()
    _remove(ws.root)
    ws.root.parent.mkdir(parents=True, exist_ok=True)
    scratch = ws.root.parent / "second-fetch"
    _remove(scratch)
    scratch.mkdir()
    (scratch / "go.mod").write_text("module fetch\n")
    found = json.loads(_go(["mod", "download", "-json", f"{SECOND_MODULE}@{SECOND_VERSION}"],
                           scratch, ws.modcache))
    _remove(scratch)
    shutil.copytree(found["Dir"], ws.root, symlinks=True)
    _writable(ws.root)
    _go(["mod", "download"], ws.root, ws.modcache)
    count = len(_go(["list", "./..."], ws.root, ws.modcache, offline=True).split())
    _finish(ws, started, count)


def ensure(*, check: bool = False) -> Path:
    """Build whichever fixture is missing; the cache dir."""
    top = cache_dir()
    top.mkdir(parents=True, exist_ok=True)
    for ws, build in ((large(top), build_large), (second(top), build_second)):
        if not ready(ws):
            print(f"building {ws.name} under {top} ...", file=sys.stderr, flush=True)
            build(ws)
        if check:
            gocache = top / "gocache-check"
            _go(["build", "./..."], ws.root, ws.modcache, offline=True, gocache=gocache)
            _go(["vet", "./..."], ws.root, ws.modcache, offline=True, gocache=gocache)
    return top


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensure", action="store_true", help="build what is missing")
    parser.add_argument("--check", action="store_true", help="also go build + vet both")
    args = parser.parse_args(argv)
    if not (args.ensure or args.check):
        print(cache_dir())
        return 0
    print(ensure(check=args.check))
    return 0


if __name__ == "__main__":
    sys.exit(main())

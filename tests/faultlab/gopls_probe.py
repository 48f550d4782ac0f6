"""Drive the real gopls into each fault of the lab and print what its process tree waits on.

    .venv/bin/python -m tests.faultlab.gopls_probe [SCENARIO ...]   (from the repo root, as root)

Scenarios: workspace-handler, workspace-stop (the workspace on a hung faultfs mount),
modcache-handler, modcache-stop (GOMODCACHE on it), workspace-golist, modcache-golist (the same,
but only the `go` command's requests hang, so gopls itself gets past its own stats),
fifo-initial, fifo-created (zz_fifo.go planted in the package before gopls starts, or after it
loaded), goproxy (a missing dependency, GOPROXY = a silent peer). Each: initialize,
initialized, didOpen main.go, a hover that must answer (the workspace is loaded), the fault, then
didChangeWatchedFiles (go.mod changed, or the FIFO created) and a second hover; after SETTLE
seconds it prints every thread of gopls and its children (state, wchan, syscall, path), then
SIGKILLs gopls and prints what is left, then cleans up (bounded, like the fixtures).
A measuring tool for people, not a test: nothing runs it in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..polling import wait_until
from ..rawclient import find_gopls
from .fusefs import FuseMount
from .netpeer import silent_peer, socket_inodes, tcp_connections
from .procinfo import ThreadWait, threads, tree
from .special import plant_fifo

GOPLS = Path(find_gopls() or "gopls")  # the lookup every test uses: never a shim
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"
LOCAL_PROXY = Path.home() / "go" / "pkg" / "mod" / "cache" / "download"
SETTLE = float(os.environ.get("PROBE_SETTLE", "6"))
DEP_MAIN = ('package main\n\nimport (\n\t"fmt"\n\n\t"github.com/fatih/camelcase"\n)\n\n'
            'func main() {\n\tfmt.Println(camelcase.Split("HelloWorld"))\n}\n')
DEP_MOD = "module example.com/probe\n\ngo 1.22\n\nrequire github.com/fatih/camelcase v1.0.0\n"
QUIET = {"futex_wait_queue", "futex_do_wait", "do_epoll_wait", "hrtimer_nanosleep",
         "do_nanosleep", "pipe_read", "anon_pipe_read", "do_wait", "ep_poll", "0", ""}


class Lsp:
    """A minimal LSP client over gopls' stdio; answers gopls' own requests with null."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen([str(GOPLS)], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log)
        self._next = 0
        self._cond = threading.Condition()
        self.responses: dict[int, dict[str, Any]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            msg = json.loads(out.read(length))
            if "method" in msg and "id" in msg:  # gopls asks us something
                items = msg.get("params", {}).get("items")
                result = [None] * len(items) if msg["method"] == "workspace/configuration" \
                    and items else None
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
            elif "id" in msg:
                with self._cond:
                    self.responses[msg["id"]] = msg
                    self._cond.notify_all()

    def request(self, method: str, params: Any) -> int:
        self._next += 1
        self._send({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        return self._next

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, rid: int, timeout: float) -> dict[str, Any] | None:
        with self._cond:
            self._cond.wait_for(lambda: rid in self.responses, timeout)
            return self.responses.get(rid)

    def close(self) -> None:
        for pid in reversed(tree(self.proc.pid)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


def uri(path: Path) -> str:
    return path.as_uri()


def hover_at(lsp: Lsp, main_go: Path, text: str, word: str) -> int:
    line = next(i for i, ln in enumerate(text.splitlines()) if word in ln)
    col = text.splitlines()[line].index(word) + 1
    return lsp.request("textDocument/hover", {"textDocument": {"uri": uri(main_go)},
                                              "position": {"line": line, "character": col}})


def open_workspace(lsp: Lsp, root: Path, main_go: Path, text: str) -> None:
    rid = lsp.request("initialize", {
        "processId": os.getpid(), "rootUri": uri(root),
        "workspaceFolders": [{"uri": uri(root), "name": root.name}],
        "capabilities": {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True},
                                       "configuration": True}}})
    lsp.wait(rid, 30)
    lsp.notify("initialized", {})
    lsp.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri(main_go), "languageId": "go", "version": 1, "text": text}})


def describe_tree(root: int, title: str) -> list[ThreadWait]:
    print(f"  -- {title}")
    seen: list[ThreadWait] = []
    for pid in tree(root):
        ts = threads(pid)
        seen += ts
        cmd = _cmdline(pid)
        groups: dict[tuple[str, str | None, str | None], int] = {}
        for t in ts:
            key = (t.state, t.wchan, t.syscall_name)
            groups[key] = groups.get(key, 0) + 1
        summary = ", ".join(f"{n}x {s}/{w}/{c}" for (s, w, c), n in sorted(groups.items(),
                                                                            key=str))
        print(f"     pid {pid} [{cmd[:90]}] {len(ts)} threads: {summary}")
        for t in ts:
            if t.wchan not in QUIET or t.state == "D":
                print(f"        {t.describe()} args={[hex(a) for a in t.args[:3]]}")
    return seen


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def gopls_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOWORK": "off", "GOTELEMETRY": "off"}
    env.update(extra)
    return env


def run(name: str, root: Path, main_go: Path, text: str, word: str, env: dict[str, str],
        fault: Callable[[], None], change: dict[str, Any], preloaded: bool = True,
        after: Callable[[Lsp], None] | None = None, edit: Path | None = None) -> Lsp:
    print(f"\n=== {name}")
    lsp = Lsp(Path("/"), env, Path(tempfile.mkstemp(prefix=f"probe-{name}-")[1]))
    open_workspace(lsp, root, main_go, text)
    if preloaded:
        first = lsp.wait(hover_at(lsp, main_go, text, word), 90)
        print(f"  baseline hover answered: {bool(first and 'result' in first)}")
        fault()
        if edit is not None:  # a real change: gopls reloads only if go.mod's content changed
            with edit.open("a") as fh:
                fh.write("// changed\n")
        lsp.notify("workspace/didChangeWatchedFiles", {"changes": [change]})
    else:
        fault()
    started = time.monotonic()
    rid = hover_at(lsp, main_go, text, word)
    reply = lsp.wait(rid, SETTLE)
    answered = f"after {time.monotonic() - started:.1f}s" if reply else f"no (>{SETTLE}s)"
    print(f"  hover after the fault answered: {answered}"
          + (f" error={reply.get('error')}" if reply and "error" in reply else ""))
    describe_tree(lsp.proc.pid, "while the fault holds")
    if after:
        after(lsp)
    pids = tree(lsp.proc.pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    gone = wait_until(lambda: lsp.proc.poll() is not None, 3.0)
    print(f"  SIGKILLed gopls and its children {pids[1:]}: gopls reaped within 3s: {gone}")
    for pid in pids:
        left = [t for t in threads(pid) if t.state != "Z"]
        if left:
            print(f"     pid {pid} still there: " + "; ".join(t.describe() for t in left))
    return lsp


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="probe-"))
    try:
        yield base
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def on_hung_mount(mount: FuseMount, name: str, mode: str, only: tuple[str, ...], root: Path,
                  text: str, word: str, env: dict[str, str], edit: Path) -> None:
    """`run` in the module at `root`, the fault being `mount` hanging (`mode`, `only`) and
    go.mod changing (`edit` written); the mount is closed on the way out."""
    lsp = None
    try:
        lsp = run(f"{name}-{mode}{'-only-' + '-'.join(only) if only else ''}", root,
                  root / "main.go", text, word, env,
                  lambda: mount.hang(mode, only=only),  # type: ignore[arg-type]
                  {"uri": uri(root / "go.mod"), "type": 2}, edit=edit)
        mount.adopt(lsp.proc)
    finally:
        mount.close()
        if lsp:
            lsp.close()


def workspace(mode: str, only: tuple[str, ...] = ()) -> None:
    with scratch() as base:
        src = Path(shutil.copytree(SAMPLE, base / "hello"))
        text = (src / "main.go").read_text()
        mount = FuseMount(src)
        try:
            on_hung_mount(mount, "workspace", mode, only, mount.mountpoint, text, "Println",
                          gopls_env(GOMODCACHE=str(base / "modcache")), edit=src / "go.mod")
        finally:
            print(f"  teardown: mount gone={mount.entry is None}")


def dep_module(base: Path) -> tuple[Path, str]:
    mod = base / "probe"
    mod.mkdir()
    (mod / "go.mod").write_text(DEP_MOD)
    (mod / "main.go").write_text(DEP_MAIN)
    return mod, DEP_MAIN


def modcache(mode: str, only: tuple[str, ...] = ()) -> None:
    with scratch() as base:
        mod, text = dep_module(base)
        (base / "cache").mkdir()
        mount = FuseMount(base / "cache")
        env = gopls_env(GOMODCACHE=str(mount.mountpoint / "mod"), GOFLAGS="-mod=mod",
                        GOPROXY=LOCAL_PROXY.as_uri(), GOSUMDB="off")
        on_hung_mount(mount, "modcache", mode, only, mod, text, "Split", env, edit=mod / "go.mod")


def fifo(initial: bool) -> None:
    """The FIFO there before gopls starts (its first `go list` opens it), or created later."""
    with scratch() as base:
        ws = Path(shutil.copytree(SAMPLE, base / "hello"))
        text = (ws / "main.go").read_text()
        holder: list[Any] = []

        def plant() -> None:
            holder.append(plant_fifo(ws))

        lsp = None
        try:
            if initial:
                plant()
            lsp = run("fifo-initial" if initial else "fifo-created", ws, ws / "main.go", text,
                      "Println", gopls_env(GOMODCACHE=str(base / "modcache")),
                      (lambda: None) if initial else plant,
                      {"uri": uri(ws / "zz_fifo.go"), "type": 1}, preloaded=not initial)
        finally:
            for f in holder:
                f.remove()
            if lsp:
                lsp.close()


def goproxy() -> None:
    with scratch() as base, silent_peer() as peer:
        mod, text = dep_module(base)
        env = gopls_env(GOMODCACHE=str(base / "modcache"), GOFLAGS="-mod=mod",
                        GOPROXY=peer.url, GOSUMDB="off")

        def sockets(lsp: Lsp) -> None:
            for pid in tree(lsp.proc.pid):
                mine = [c for c in tcp_connections(peer.port) if c["inode"] in socket_inodes(pid)]
                if mine:
                    print(f"     pid {pid} sockets to the peer: {mine}")
            print(f"     peer accepted {peer.accepted} connection(s), read {peer.received} bytes")
            for head in peer.heads:
                print(f"     request: {head.splitlines()[:1]}")

        lsp = run("goproxy", mod, mod / "main.go", text, "Split", env, lambda: None,
                  {}, preloaded=False, after=sockets)
        lsp.close()


SCENARIOS: dict[str, Callable[[], None]] = {
    "workspace-handler": lambda: workspace("handler"),
    "workspace-stop": lambda: workspace("stop"),
    "modcache-handler": lambda: modcache("handler"),
    "modcache-stop": lambda: modcache("stop"),
    "workspace-golist": lambda: workspace("handler", only=("go",)),
    "modcache-golist": lambda: modcache("handler", only=("go",)),
    "fifo-initial": lambda: fifo(initial=True),
    "fifo-created": lambda: fifo(initial=False),
    "goproxy": goproxy,
}


def main(argv: list[str]) -> int:
    print(f"kernel {os.uname().release}, gopls {GOPLS}")
    for name in argv or list(SCENARIOS):
        SCENARIOS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

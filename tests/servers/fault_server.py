"""SCRIPTED FAULT SERVER — a fake LSP server for faults real gopls can't show on demand.

    fault_server.py [--fault KIND] [--on METHOD] [--once-file PATH] [--code N]

Behaves like a small, well-mannered language server (initialize, document sync with its own
view of the text, hover, a file-watcher registration, work-done progress, diagnostics) until it
receives METHOD (or, for `hang-initialize`, `initialize`), then misbehaves:

  hang-initialize   never answers initialize (the loop keeps running)
  hang-method       never answers METHOD; everything else, pings included, still works
  stop-reading      stops reading stdin (sleeps forever)
  half-frame        writes half a frame and stalls
  crash-mid-message writes half a frame and exits with --code
  exit              exits with --code (non-zero)
  garbage           writes bytes that are not LSP framing, then carries on
  busy-spin         spins on the CPU forever
  blocked-in-kernel becomes --vfork-helper (vfork_block.c): stuck in uninterruptible sleep (D)
  oom               allocates (and touches) memory until the kernel's OOM killer ends it; with
                    GOMEMLIMIT set (as the Go runtime would) it stops at half of it and answers,
                    unless --ignore-gomemlimit

With --once-file, the fault fires only if PATH does not exist yet (and creates it), so the
server that lspguard restarts behaves. Test-only requests: `fault/documentText` {uri} -> text
and version as this server sees them; `fault/notes` -> the `seq` of every `fault/note`
notification received, in order; `fault/echo` -> its params; `fault/whoami` -> --name, pid
and GODEBUG; `fault/answerTwice` -> answers twice, then answers id 999999 (never asked).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from lspio import read_message, write_message
from lsprotocol import types
from pygls.workspace import TextDocument

stdout = sys.stdout.buffer  # for the faults that write broken frames


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.docs: dict[str, TextDocument] = {}
        self.notes: list[int] = []
        self.next_id = 1000
        self.hoard: list[bytearray] = []

    def fault_armed(self, method: str) -> bool:
        wanted = "initialize" if self.args.fault == "hang-initialize" else self.args.on
        if not self.args.fault or method != wanted:
            return False
        once = self.args.once_file
        if once is not None:
            if Path(once).exists():
                return False
            Path(once).write_text(str(os.getpid()))
        return True

    def misbehave(self, msg: dict[str, Any]) -> bool:
        """Do the fault; True if the message must not be answered."""
        fault = self.args.fault
        half = b'Content-Length: 100\r\n\r\n{"jsonrpc":"2.0","id":'
        if fault in ("hang-initialize", "hang-method"):
            return True
        if fault == "stop-reading":
            while True:
                time.sleep(3600)
        if fault == "half-frame":
            stdout.write(half)
            stdout.flush()
            while True:
                time.sleep(3600)
        if fault == "crash-mid-message":
            stdout.write(half)
            stdout.flush()
            os._exit(self.args.code)
        if fault == "exit":
            os._exit(self.args.code)
        if fault == "garbage":
            stdout.write(b"\x00\xffthis is not LSP\r\n\r\nContent-Length: zz\r\n\r\n")
            stdout.flush()
            return False
        if fault == "busy-spin":
            while True:
                pass
        if fault == "blocked-in-kernel":
            os.execv(self.args.vfork_helper, [self.args.vfork_helper])
        if fault == "oom":
            return self.allocate()
        raise SystemExit(f"unknown fault {fault}")

    def allocate(self) -> bool:
        """Grow the heap 16 MiB at a time, every page touched, until killed, or (GOMEMLIMIT
        set) up to half of it, then answer as usual."""
        limit = os.environ.get("GOMEMLIMIT", "")
        cap = int(limit.removesuffix("MiB")) << 19 if limit.endswith("MiB") and \
            not self.args.ignore_gomemlimit else None
        while cap is None or len(self.hoard) * (16 << 20) < cap:
            self.hoard.append(bytearray(b"x" * (16 << 20)))
        return False

    def request_client(self, method: str, params: Any) -> None:
        self.next_id += 1
        write_message({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})

    def handle(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params") or {}
        if method is None:
            return  # an answer to one of our requests
        if self.fault_armed(method) and self.misbehave(msg):
            return
        if "id" not in msg:
            self.notification(method, params)
            return
        if method == "fault/answerTwice":  # a buggy server: a second answer, and one to no one
            for req_id in (msg["id"], msg["id"], 999999):
                write_message({"jsonrpc": "2.0", "id": req_id, "result": params})
            return
        try:
            result = self.request(method, params)
        except KeyError:
            write_message({"jsonrpc": "2.0", "id": msg["id"], "error": {
                "code": -32601, "message": f"method not found: {method}"}})
            return
        write_message({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        if method == "initialize":
            return {"capabilities": {"textDocumentSync": 2, "hoverProvider": True},
                    "serverInfo": {"name": self.args.name, "version": str(os.getpid())}}
        if method == "shutdown":
            return None
        if method == "textDocument/hover":
            doc = self.docs[params["textDocument"]["uri"]]
            line = doc.lines[params["position"]["line"]] if doc.lines else ""
            return {"contents": {"kind": "plaintext",
                                 "value": f"v{doc.version}: {line.rstrip()}"}}
        if method == "fault/documentText":
            seen = self.docs.get(params["uri"])
            return None if seen is None else {"text": seen.source, "version": seen.version}
        if method == "fault/notes":
            return self.notes
        if method == "fault/echo":
            return params
        if method == "fault/whoami":
            return {"name": self.args.name, "pid": os.getpid(),
                    "gomemlimit": os.environ.get("GOMEMLIMIT", ""),
                    "godebug": os.environ.get("GODEBUG", "")}
        raise KeyError(method)

    def notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "initialized":
            self.request_client("client/registerCapability", {"registrations": [{
                "id": "workspace/didChangeWatchedFiles-0",
                "method": "workspace/didChangeWatchedFiles",
                "registerOptions": {"watchers": [{"globPattern": "**/*.go"}]}}]})
            self.request_client("window/workDoneProgress/create", {"token": "load"})
            write_message({"jsonrpc": "2.0", "method": "$/progress", "params": {
                "token": "load", "value": {"kind": "begin", "title": "Loading packages"}}})
            if self.args.progress_never_ends:
                return
            write_message({"jsonrpc": "2.0", "method": "$/progress", "params": {
                "token": "load", "value": {"kind": "end"}}})
        elif method == "textDocument/didOpen":
            item = params["textDocument"]
            self.docs[item["uri"]] = TextDocument(item["uri"], item["text"],
                                                  version=item["version"])
            diagnostic = {"range": {"start": {"line": 0, "character": 0},
                                    "end": {"line": 0, "character": 1}},
                          "message": f"opened by server pid {os.getpid()}"}
            write_message({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics",
                           "params": {"uri": item["uri"], "diagnostics": [diagnostic]}})
        elif method == "textDocument/didChange":
            doc = self.docs[params["textDocument"]["uri"]]
            for change in params["contentChanges"]:
                if "range" in change:
                    r = change["range"]
                    doc.apply_change(types.TextDocumentContentChangePartial(
                        range=types.Range(start=types.Position(**r["start"]),
                                          end=types.Position(**r["end"])),
                        text=change["text"]))
                else:
                    doc.apply_change(types.TextDocumentContentChangeWholeDocument(
                        text=change["text"]))
            doc.version = params["textDocument"]["version"]
        elif method == "textDocument/didClose":
            self.docs.pop(params["textDocument"]["uri"], None)
        elif method == "fault/note":
            self.notes.append(params["seq"])
        elif method == "exit":
            raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", default="")
    parser.add_argument("--on", default="textDocument/hover")
    parser.add_argument("--once-file")
    parser.add_argument("--code", type=int, default=3)
    parser.add_argument("--progress-never-ends", action="store_true")
    parser.add_argument("--name", default="fault_server")
    parser.add_argument("--vfork-helper", help="compiled tests/servers/vfork_block.c")
    parser.add_argument("--ignore-gomemlimit", action="store_true")
    server = Server(parser.parse_args())
    while (msg := read_message()) is not None:
        server.handle(msg)


if __name__ == "__main__":
    main()

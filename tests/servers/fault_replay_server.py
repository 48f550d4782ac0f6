"""SCRIPTED FAULT SERVER for replay tests — not a language server, a script that misbehaves on cue.

    fault_replay_server.py [--mode normal|hang-on-method|different-results|crash-on-method]
                           [--method METHOD]

Speaks LSP framing on stdio (stdlib only, so it starts fast). After `initialized` it asks the
client `workspace/configuration` and `window/workDoneProgress/create` and remembers the
configuration it got; every other request gets a deterministic answer that echoes the method,
the request's position/uri and that configuration. Then, for requests of METHOD:

  normal              answers as above
  hang-on-method      never answers (everything else still works)
  different-results   answers with a different result
  crash-on-method     exits with code 3 before answering
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from lspio import read_message, write_message


def send(message: dict[str, Any]) -> None:
    write_message({"jsonrpc": "2.0", **message})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="normal", choices=[
        "normal", "hang-on-method", "different-results", "crash-on-method"])
    parser.add_argument("--method", default="textDocument/hover")
    args = parser.parse_args()
    config: Any = None
    own_ids = {"cfg-1": "configuration", "progress-1": "progress"}
    shutdown = False
    held: list[dict[str, Any]] = []  # like gopls: nothing else is handled until config arrives
    waiting_for_config = False
    while True:
        msg = held.pop(0) if held and not waiting_for_config else read_message()
        if msg is None:
            break
        if waiting_for_config and msg.get("id") != "cfg-1":
            held.append(msg)
            continue
        method = msg.get("method")
        if method is None:  # an answer to one of our requests
            if own_ids.get(str(msg.get("id"))) == "configuration":
                config, waiting_for_config = msg.get("result"), False
            continue
        if method == "initialized":
            send({"id": "cfg-1", "method": "workspace/configuration",
                  "params": {"items": [{"section": "fault"}]}})
            send({"id": "progress-1", "method": "window/workDoneProgress/create",
                  "params": {"token": "load"}})
            send({"method": "window/logMessage", "params": {"type": 3, "message": "ready"}})
            waiting_for_config = True
        if method == "exit":
            return 0 if shutdown else 1
        if "id" not in msg:
            continue
        if method == "initialize":
            result: Any = {"capabilities": {"hoverProvider": True, "definitionProvider": True},
                           "serverInfo": {"name": "fault-replay-server", "version": "1"}}
        elif method == "shutdown":
            shutdown, result = True, None
        else:
            params = msg.get("params") or {}
            result = {"method": method, "position": params.get("position"),
                      "uri": (params.get("textDocument") or {}).get("uri"), "config": config,
                      "data": {"pid": os.getpid()}}  # differs every run: replay ignores `data`
            if method == args.method:
                if args.mode == "hang-on-method":
                    continue
                if args.mode == "crash-on-method":
                    sys.stderr.write(f"fault_replay_server: crashing on {method}\n")
                    return 3
                if args.mode == "different-results":
                    result = {**result, "method": method.upper(), "extra": [1, 2]}
        send({"id": msg["id"], "result": result})
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

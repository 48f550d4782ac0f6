"""The strict redactor of incident bundles: no source-derived string survives, structure does.

One message of each kind that carries source-derived text (as gopls sends them, plus a method
nobody knows) goes through `redact_strict`; the marker must be gone from every string, while
methods, ids, URIs, kinds, ranges, codes and protocol descriptions stay.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lspguard.incident.messages import messages_jsonl
from lspguard.redact import redact_strict

from ..system.test_snapshot import frame

MARK = "zqx_MARKER_7731"


def strings_with(value: Any, needle: str) -> list[str]:
    if isinstance(value, str):
        return [value] if needle in value else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_with(v, needle)]
    if isinstance(value, list):
        return [s for v in value for s in strings_with(v, needle)]
    return []


RANGE = {"start": {"line": 3, "character": 5}, "end": {"line": 3, "character": 20}}
URI = "file:///w/main.go"
EDIT = {"range": RANGE, "newText": f"{MARK}()"}

# One message of each kind that carries source-derived text, as gopls sends them.
SOURCE_CARRYING: dict[str, dict[str, Any]] = {
    "didOpen": {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": URI, "languageId": "go", "version": 1, "text": f"package main // {MARK}"}}},
    "didChange": {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"range": RANGE, "text": MARK}, {"text": f"func {MARK}()"}]}},
    "hover": {"jsonrpc": "2.0", "id": 1, "result": {
        "contents": {"kind": "markdown", "value": f"```go\nfunc {MARK}()\n```"},
        "range": RANGE}},
    "hover-marked-strings": {"jsonrpc": "2.0", "id": 2, "result": {
        "contents": [MARK, {"language": "go", "value": MARK}]}},
    "completion": {"jsonrpc": "2.0", "id": 3, "result": {"isIncomplete": True, "items": [{
        "label": MARK, "kind": 3, "detail": f"func {MARK}() string", "sortText": "00000",
        "filterText": MARK, "insertText": f"{MARK}()", "insertTextFormat": 2,
        "labelDetails": {"detail": "()", "description": MARK},
        "documentation": {"kind": "markdown", "value": f"{MARK} says hello"},
        "textEdit": {"range": RANGE, "newText": MARK},
        "additionalTextEdits": [EDIT], "commitCharacters": ["."],
        "data": {"snippet": MARK}}]}},
    "signatureHelp": {"jsonrpc": "2.0", "id": 4, "result": {"signatures": [{
        "label": f"{MARK}(a int) string", "documentation": MARK,
        "parameters": [{"label": "a int"}, {"label": [5, 10]}]}],
        "activeSignature": 0, "activeParameter": 0}},
    "documentSymbol": {"jsonrpc": "2.0", "id": 5, "result": [{
        "name": MARK, "detail": "func()", "kind": 12, "range": RANGE, "selectionRange": RANGE,
        "children": [{"name": f"{MARK}.x", "kind": 13, "range": RANGE,
                      "selectionRange": RANGE}]}]},
    "workspaceSymbol": {"jsonrpc": "2.0", "id": 6, "result": [{
        "name": MARK, "kind": 12, "containerName": "main",
        "location": {"uri": URI, "range": RANGE}}]},
    "semanticTokens": {"jsonrpc": "2.0", "id": 7, "result": {
        "resultId": "1", "data": [0, 5, 15, 8, 0, 1, 2, 3, 4, 0]}},
    "inlayHint": {"jsonrpc": "2.0", "id": 8, "result": [
        {"position": RANGE["end"], "label": f"{MARK}:", "kind": 2, "paddingRight": True},
        {"position": RANGE["end"], "label": [{"value": MARK, "tooltip": MARK,
                                               "location": {"uri": URI, "range": RANGE}}],
         "tooltip": {"kind": "markdown", "value": MARK}}]},
    "codeAction": {"jsonrpc": "2.0", "id": 9, "result": [{
        "title": f"Rename {MARK}", "kind": "refactor.rewrite", "isPreferred": True,
        "diagnostics": [{"range": RANGE, "message": f"undefined: {MARK}", "severity": 1}],
        "edit": {"documentChanges": [{"textDocument": {"uri": URI, "version": 2},
                                      "edits": [EDIT]}]},
        "command": {"title": MARK, "command": "gopls.apply_fix", "arguments": [
            {"Fix": "fill", "URI": URI, "Range": RANGE, "Name": MARK}]}}]},
    "codeLens": {"jsonrpc": "2.0", "id": 10, "result": [{
        "range": RANGE, "command": {"title": f"run test {MARK}", "command": "gopls.run_tests",
                                    "arguments": [{"URI": URI, "Tests": [f"Test{MARK}"]}]}}]},
    "formatting": {"jsonrpc": "2.0", "id": 11, "result": [EDIT, EDIT]},
    "rename": {"jsonrpc": "2.0", "id": 12, "result": {"changes": {URI: [EDIT]}}},
    "applyEdit": {"jsonrpc": "2.0", "id": 13, "method": "workspace/applyEdit", "params": {
        "label": MARK, "edit": {"documentChanges": [
            {"kind": "create", "uri": "file:///w/new.go"},
            {"textDocument": {"uri": "file:///w/new.go", "version": None}, "edits": [EDIT]}]}}},
    "diagnostics": {"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {
        "uri": URI, "version": 2, "diagnostics": [{
            "range": RANGE, "severity": 1, "code": "UndeclaredName", "source": "compiler",
            "message": f"undefined: {MARK}",
            "codeDescription": {"href": "https://pkg.go.dev/golang.org/x/tools/internal/"
                                        "typesinternal#UndeclaredName"},
            "relatedInformation": [{"location": {"uri": URI, "range": RANGE},
                                    "message": MARK}],
            "data": {"fixes": MARK}}]}},
    "logMessage": {"jsonrpc": "2.0", "method": "window/logMessage", "params": {
        "type": 3, "message": f"go list: {MARK} redeclared"}},
    "showMessage": {"jsonrpc": "2.0", "id": 14, "method": "window/showMessageRequest",
                    "params": {"type": 1, "message": MARK, "actions": [{"title": MARK}]}},
    "error": {"jsonrpc": "2.0", "id": 15, "error": {"code": -32603, "message": f"no {MARK}",
                                                    "data": MARK}},
    "executeCommand": {"jsonrpc": "2.0", "id": 16, "method": "workspace/executeCommand",
                       "params": {"command": "gopls.run_tests",
                                  "arguments": [{"Tests": [MARK]}]}},
    "configuration": {"jsonrpc": "2.0", "id": 17, "result": [{"buildFlags": [f"-tags={MARK}"],
                                                             "env": {"GOFLAGS": MARK}}]},
    "references-context": {"jsonrpc": "2.0", "id": 18, "method": "textDocument/completion",
                           "params": {"textDocument": {"uri": URI}, "position": RANGE["end"],
                                      "context": {"triggerKind": 1}, "partialResultToken": 3}},
    "unknown-method": {"jsonrpc": "2.0", "id": 19, "result": {"whatever": {"deep": [[{
        "field": MARK}]]}, "another": MARK}},
}


@pytest.mark.parametrize("name", list(SOURCE_CARRYING))
def test_strict_redaction_leaves_no_source_text(name: str) -> None:
    message = SOURCE_CARRYING[name]
    before = json.dumps(message)
    out = redact_strict(message)
    assert strings_with(out, MARK) == []
    assert json.dumps(message) == before  # the input is not changed
    for key in ("jsonrpc", "id", "method"):
        if key in message:
            assert out[key] == message[key]


def test_strict_redaction_keeps_the_structure() -> None:
    out = redact_strict(SOURCE_CARRYING["completion"])
    item = out["result"]["items"][0]
    assert item["label"] == f"<redacted {len(MARK)} chars>"
    assert item["kind"] == 3 and item["insertTextFormat"] == 2
    assert item["textEdit"]["range"] == RANGE
    assert item["documentation"]["kind"] == "markdown"
    assert out["result"]["isIncomplete"] is True
    diag = redact_strict(SOURCE_CARRYING["diagnostics"])["params"]
    assert diag["uri"] == URI and diag["version"] == 2
    d = diag["diagnostics"][0]
    assert (d["severity"], d["code"], d["source"]) == (1, "UndeclaredName", "compiler")
    assert d["codeDescription"]["href"].startswith("https://pkg.go.dev/")
    assert d["message"] == f"<redacted {len(f'undefined: {MARK}')} chars>"
    action = redact_strict(SOURCE_CARRYING["codeAction"])["result"][0]
    assert action["kind"] == "refactor.rewrite" and action["command"]["command"] == \
        "gopls.apply_fix"
    assert action["edit"]["documentChanges"][0]["textDocument"] == {"uri": URI, "version": 2}
    tokens = redact_strict(SOURCE_CARRYING["semanticTokens"])["result"]
    assert tokens == {"resultId": "1", "data": "<redacted 10 numbers>"}
    hint = redact_strict(SOURCE_CARRYING["inlayHint"])["result"][1]
    assert hint["label"][0]["location"] == {"uri": URI, "range": RANGE}
    assert redact_strict(SOURCE_CARRYING["error"])["error"]["code"] == -32603
    assert redact_strict(SOURCE_CARRYING["rename"])["result"]["changes"][URI][0]["range"] == RANGE


def test_strict_redaction_keeps_protocol_descriptions() -> None:
    init: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": 7, "rootUri": "file:///w", "clientInfo": {"name": "Code", "version": "1.9"},
        "capabilities": {"textDocument": {"hover": {"contentFormat": ["markdown"]}}},
        "initializationOptions": {"secret": "token-123"},
        "workspaceFolders": [{"uri": "file:///w", "name": "w"}], "trace": "off"}}
    out = redact_strict(init)["params"]
    assert isinstance(out, dict)
    assert out["capabilities"] == init["params"]["capabilities"]
    assert out["clientInfo"] == {"name": "Code", "version": "1.9"}
    assert out["rootUri"] == "file:///w" and out["trace"] == "off"
    assert out["initializationOptions"] == {"secret": "<redacted 9 chars>"}
    assert out["workspaceFolders"] == [{"uri": "file:///w", "name": "<redacted 1 chars>"}]
    progress = {"jsonrpc": "2.0", "method": "$/progress", "params": {"token": "abc", "value": {
        "kind": "begin", "title": "Loading packages", "message": f"{MARK}.go"}}}
    value = redact_strict(progress)["params"]["value"]
    assert value["title"] == "Loading packages" and value["kind"] == "begin"
    assert MARK not in value["message"]
    register = {"jsonrpc": "2.0", "id": "1", "method": "client/registerCapability", "params": {
        "registrations": [{"id": "r1", "method": "workspace/didChangeWatchedFiles",
                           "registerOptions": {"watchers": [{"globPattern": "**/*.go"}]}}]}}
    assert redact_strict(register) == register


def test_messages_jsonl_redacts_strictly_unless_opted_in() -> None:
    ring = [frame(m, "server->client", "response" if "result" in m else "notification")
            for m in SOURCE_CARRYING.values()]
    redacted = messages_jsonl(ring, include_text=False)
    assert MARK.encode() not in redacted
    assert len(redacted.splitlines()) == len(SOURCE_CARRYING)
    assert MARK.encode() in messages_jsonl(ring, include_text=True)

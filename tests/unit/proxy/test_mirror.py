"""The client mirror: documents edited line-wise must end up exactly as pygls TextDocument (the
reference implementation of LSP incremental sync) has them, in every position encoding."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec

from lspguard.proxy.mirror import ClientMirror, LineDocument

text_chars = st.sampled_from([*"ab c\t", "\n", "\r\n", "\r", "é", "✓", "𝄞", "👋"])
texts = st.lists(text_chars, max_size=40).map("".join)


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, list[dict[str, object]]]:
    text = draw(texts)
    changes = []
    for _ in range(draw(st.integers(1, 8))):
        sl = draw(st.integers(0, 6))
        el = draw(st.integers(sl, sl + 2))
        sc = draw(st.integers(0, 6))
        ec = draw(st.integers(0, 6)) if el > sl else draw(st.integers(sc, sc + 4))
        change: dict[str, object] = {"text": draw(texts)}
        if draw(st.integers(0, 9)):  # mostly range edits, sometimes the whole text
            change["range"] = {"start": {"line": sl, "character": sc},
                               "end": {"line": el, "character": ec}}
        changes.append(change)
    return text, changes


def reference(text: str, changes: list[dict[str, object]], encoding: str) -> str:
    doc = TextDocument("file:///x", text, position_codec=PositionCodec(encoding))
    for change in changes:
        rng = change.get("range")
        if rng is None:
            doc.apply_change(types.TextDocumentContentChangeWholeDocument(text=str(change["text"])))
        else:
            assert isinstance(rng, dict)
            doc.apply_change(types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(**rng["start"]),
                                  end=types.Position(**rng["end"])),
                text=str(change["text"])))
    return doc.source


def units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode())
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


def valid(change: dict[str, object], text: str, encoding: str) -> dict[str, object]:
    """Clamp a change's range to positions an editor can send for `text` (gopls rejects
    columns past the end of a line); a column never splits a UTF-16/UTF-8 sequence."""
    rng = change.get("range")
    if rng is None:
        return change
    assert isinstance(rng, dict)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    def clamp(pos: dict[str, int]) -> dict[str, int]:
        line = min(pos["line"], len(lines) - 1)
        content = lines[line]
        chars = min(pos["character"], len(content)) if line == pos["line"] else len(content)
        return {"line": line, "character": units(content[:chars], encoding)}

    start, end = clamp(rng["start"]), clamp(rng["end"])
    if (end["line"], end["character"]) < (start["line"], start["character"]):
        start, end = end, start
    return {"text": change["text"], "range": {"start": start, "end": end}}


@given(edits(), st.sampled_from(["utf-16", "utf-8", "utf-32"]))
@settings(max_examples=400, deadline=None)
def test_line_document_matches_pygls(case: tuple[str, list[dict[str, object]]],
                                     encoding: str) -> None:
    text, changes = case
    doc = LineDocument(text)
    expected = text
    for change in changes:
        change = valid(change, expected, encoding)
        doc.apply(change, encoding)
        expected = reference(expected, [change], encoding)
        assert doc.text == expected


def _frame_body(method: str, params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode()


def test_mirror_replays_open_documents_with_current_text_and_version() -> None:
    mirror = ClientMirror()
    mirror.on_initialize({"capabilities": {}, "workspaceFolders": [{"uri": "file:///a"}]})
    mirror.record("textDocument/didOpen", _frame_body("textDocument/didOpen", {"textDocument": {
        "uri": "file:///a/x.go", "languageId": "go", "version": 1, "text": "package x\n"}}))
    mirror.record("textDocument/didOpen", _frame_body("textDocument/didOpen", {"textDocument": {
        "uri": "file:///a/y.go", "languageId": "go", "version": 1, "text": "gone\n"}}))
    for version in range(2, 1200):  # past the compaction threshold
        mirror.compact_if_due()
        mirror.record("textDocument/didChange", _frame_body("textDocument/didChange", {
            "textDocument": {"uri": "file:///a/x.go", "version": version},
            "contentChanges": [{"range": {"start": {"line": 1, "character": 0},
                                          "end": {"line": 1, "character": 0}}, "text": "z"}]}))
    mirror.record("textDocument/didClose", _frame_body("textDocument/didClose", {
        "textDocument": {"uri": "file:///a/y.go"}}))
    mirror.record("workspace/didChangeWorkspaceFolders", _frame_body(
        "workspace/didChangeWorkspaceFolders",
        {"event": {"added": [{"uri": "file:///b", "name": "b"}], "removed": [{"uri": "file:///a"}]}}))
    (doc,) = mirror.documents()
    assert (doc.uri, doc.version, doc.language_id) == ("file:///a/x.go", 1199, "go")
    assert doc.text == "package x\n" + "z" * 1198
    assert mirror.initialize_params_for_restart()["workspaceFolders"] == [
        {"uri": "file:///b", "name": "b"}]


def test_malformed_notification_does_not_lose_the_rest() -> None:
    mirror = ClientMirror()
    mirror.record("textDocument/didOpen", _frame_body("textDocument/didOpen", {"textDocument": {
        "uri": "file:///x", "languageId": "go", "version": 1, "text": "a"}}))
    mirror.record("textDocument/didChange", b"{not json")
    mirror.record("textDocument/didChange", _frame_body("textDocument/didChange", {
        "textDocument": {"uri": "file:///x", "version": 3},
        "contentChanges": [{"text": "whole"}]}))
    (doc,) = mirror.documents()
    assert (doc.text, doc.version) == ("whole", 3)


def test_a_keystroke_is_applied_at_once_and_a_large_open_waits_for_the_timer() -> None:
    """No batch of keystrokes builds up to stall the loop later; a big didOpen is not decoded
    on the message path (the timer or a restart applies it, and what queued behind it)."""
    mirror = ClientMirror()
    small = _frame_body("textDocument/didOpen", {"textDocument": {
        "uri": "file:///s.go", "languageId": "go", "version": 1, "text": "package s\n"}})
    mirror.record("textDocument/didOpen", small)
    mirror.record("textDocument/didChange", _frame_body("textDocument/didChange", {
        "textDocument": {"uri": "file:///s.go", "version": 2},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 9},
                                      "end": {"line": 0, "character": 9}}, "text": "x"}]}))
    assert not mirror.compaction_due  # applied, nothing pending
    big = "// " + "y" * (1 << 20) + "\npackage b\n"
    mirror.record("textDocument/didOpen", _frame_body("textDocument/didOpen", {"textDocument": {
        "uri": "file:///b.go", "languageId": "go", "version": 1, "text": big}}))
    mirror.record("textDocument/didClose", _frame_body("textDocument/didClose", {
        "textDocument": {"uri": "file:///s.go"}}))
    assert mirror.compaction_due  # both wait, in order
    mirror.compact_if_due()
    assert not mirror.compaction_due
    assert [(d.uri, len(d.text)) for d in mirror.documents()] == [("file:///b.go", len(big))]


def test_workspace_folders_follow_the_editors_changes_and_fall_back_to_root_uri() -> None:
    mirror = ClientMirror()
    assert mirror.workspace_folder_uris() == []
    mirror.on_initialize({"rootUri": "file:///ws"})
    assert mirror.workspace_folder_uris() == ["file:///ws"]
    mirror.on_initialize({"rootUri": "file:///ws", "workspaceFolders": [
        {"uri": "file:///a", "name": "a"}, {"uri": "file:///b", "name": "b"}]})
    assert mirror.workspace_folder_uris() == ["file:///a", "file:///b"]
    change = {"event": {"added": [{"uri": "file:///c", "name": "c"}],
                        "removed": [{"uri": "file:///a", "name": "a"}]}}
    mirror.record("workspace/didChangeWorkspaceFolders", json.dumps(
        {"jsonrpc": "2.0", "method": "workspace/didChangeWorkspaceFolders",
         "params": change}).encode())
    mirror.compact_if_due()
    assert mirror.workspace_folder_uris() == ["file:///b", "file:///c"]

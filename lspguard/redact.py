"""Strip source text out of LSP messages before they are written anywhere (bundles, traces).

What a user's code looks like is not evidence of a hang; what was asked, of which file, where,
and in which order is. So document text, edits, hover and completion contents, and any long
string become `"<redacted N chars>"`, while methods, ids, URIs, ranges, versions and the shape of
every message stay as they were. The rules go by key, not by method, so they also cover messages
lspguard has never seen (and responses, which carry no method).
"""

from __future__ import annotations

from typing import Any

__all__ = ["LONG_STRING", "redact_message"]

LONG_STRING = 256  # any string longer than this is redacted wherever it is

# Strings anywhere below these keys are source text or rendered from it.
_TEXT_KEYS = frozenset({
    "text",            # didOpen textDocument.text, didChange contentChanges[].text
    "newText",         # TextEdit: completion textEdit, formatting, rename, code actions
    "insertText",      # CompletionItem
    "contents",        # Hover
    "documentation",   # CompletionItem, SignatureInformation, ParameterInformation
    "tooltip",         # InlayHint
})
# ...except these, which are enumerations or identifiers, not text.
_KEEP_INSIDE = frozenset({"kind", "language", "uri", "range", "insert", "replace"})
# Never redacted, however long: what lets a reader follow the conversation.
_NEVER = frozenset({"method", "id", "uri", "targetUri", "rootUri", "rootPath", "scheme"})


def redact_message(message: Any) -> Any:
    """A copy of `message` (decoded JSON) with source text replaced; the input is not changed."""
    return _walk(message, None, inside_text=False)


def _walk(value: Any, key: str | None, *, inside_text: bool) -> Any:
    if isinstance(value, str):
        if key in _NEVER:
            return value
        if (inside_text and key not in _KEEP_INSIDE) or len(value) > LONG_STRING:
            return _marker(value)
        return value
    if isinstance(value, dict):
        # MarkupContent ({kind, value}) is rendered text wherever it appears.
        markup = value.get("kind") in ("markdown", "plaintext") and "value" in value
        out: dict[str, Any] = {}
        for k, v in value.items():
            sub_text = inside_text or k in _TEXT_KEYS or (markup and k == "value")
            if inside_text and k in _KEEP_INSIDE:
                sub_text = False
            out[k] = _walk(v, k, inside_text=sub_text)
        return out
    if isinstance(value, list):
        # Items of a list inherit the key of the list ("contents": [MarkedString, ...]).
        return [_walk(item, key, inside_text=inside_text) for item in value]
    return value


def _marker(text: str) -> str:
    return f"<redacted {len(text)} chars>"

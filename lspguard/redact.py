"""Strip source text out of LSP messages before they are written anywhere (bundles, traces).

What a user's code looks like is not evidence of a hang; what was asked, of which file, where,
and in which order is. Two rules, for two uses:

- `redact_strict` (incident bundles) is safe by default: *every* string is replaced by
  `"<redacted N chars>"` unless its key is on a short allow-list of protocol structure (method,
  id, uri, kind, code, severity's siblings, ...) or it sits in a subtree that describes the
  protocol rather than the code (`capabilities`, `registerOptions`, `clientInfo`). So hover
  contents, completion labels and edits, symbol names, signature help, code action titles and
  edits, inlay hints, diagnostic messages, log messages and settings are all gone, including
  fields of messages lspguard has never heard of, while methods, ids, URIs, kinds, ranges,
  positions, versions, counts and sizes stay. Semantic token `data` (positions and lengths of
  every token) becomes its count.
- `redact_message` (traces, which `lspguard replay` sends to a server again) removes what is
  known to be text (document text, edits, hover and completion contents) and any long string,
  and keeps the rest, so a replay still initializes and configures the server as recorded.

Both go by key, not by method, so they also cover responses, which carry no method.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LONG_STRING", "redact_message", "redact_strict"]

LONG_STRING = 256  # any string longer than this is redacted wherever it is

# ---------------------------------------------------------------------------- strict (bundles)

# Strings under these keys are protocol structure or identify a file; kept wherever they are.
STRUCTURAL_KEYS = frozenset({
    "jsonrpc", "method", "id", "command",                # envelope; Command.command ids
    "uri", "targetUri", "oldUri", "newUri", "baseUri",   # which file
    "rootUri", "rootPath", "scheme", "pattern", "globPattern", "href",
    "languageId", "language", "kind", "code", "source",  # enumerations, diagnostic codes
    "version", "resultId", "previousResultId", "section",
    "token", "workDoneToken", "partialResultToken",      # progress tokens
    "triggerCharacter", "trace", "traceValue", "positionEncoding",
})
# Every string below these keys describes the protocol, not the user's code.
PROTOCOL_SUBTREES = frozenset({"capabilities", "registerOptions", "clientInfo", "serverInfo"})
# Per method, keys whose strings are also kept (progress titles are lspguard's or gopls's own).
_METHOD_KEYS: dict[str, frozenset[str]] = {"$/progress": frozenset({"title"})}
# Lists of numbers under these keys encode the source (semantic tokens: every token's place).
_NUMBER_DATA = frozenset({"data"})


def redact_strict(message: Any) -> Any:
    """A copy of `message` (decoded JSON) with every string that is not protocol structure
    replaced by `"<redacted N chars>"`; the input is not changed."""
    method = message.get("method") if isinstance(message, dict) else None
    extra = _METHOD_KEYS.get(method, frozenset()) if isinstance(method, str) else frozenset()
    return _strict(message, None, STRUCTURAL_KEYS | extra, keep_all=False)


def _strict(value: Any, key: str | None, keep: frozenset[str], *, keep_all: bool) -> Any:
    if isinstance(value, str):
        return value if keep_all or key in keep or not value else _marker(value)
    if isinstance(value, dict):
        return {k: _strict(v, k, keep, keep_all=keep_all or k in PROTOCOL_SUBTREES)
                for k, v in value.items()}
    if isinstance(value, list):
        if (not keep_all and key in _NUMBER_DATA and value
                and all(isinstance(v, int | float) for v in value)):
            return f"<redacted {len(value)} numbers>"
        # Items of a list inherit the key of the list ("items": [CompletionItem, ...]).
        return [_strict(item, key, keep, keep_all=keep_all) for item in value]
    return value


# ---------------------------------------------------------------------------- lenient (traces)

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
    """A copy of `message` (decoded JSON) with known source text and long strings replaced;
    the input is not changed. For traces: see the module docstring."""
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

"""How gopls reads its command line: is this an LSP stdio session, or another gopls command?

A copy of the rules of Go's flag package and gopls's own flag tables (v0.21.1, checked against
`gopls help` by tests/system/test_shim.py): `classify` decides whether the shim runs the guarded
proxy or exec's the real gopls; `explain` says why. Standard library only: the shim imports this on
every `gopls version` call vscode-go makes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Classification", "ShimMode", "classify", "explain"]


class ShimMode(enum.Enum):
    """What the shim does with a command line."""

    LSP = "lsp"  # an LSP session on stdin/stdout: run it under the proxy
    PASSTHROUGH = "passthrough"  # anything else: exec the real gopls unchanged


@dataclass(frozen=True, slots=True)
class Classification:
    """`classify`'s verdict plus why, for logs and `lspguard doctor`."""

    mode: ShimMode
    reason: str
    subcommand: str | None = None


# gopls v0.21.1 flags (internal/cmd: Application, Serve; internal/tool: Profile).  `gopls -h`
# lists the app flag set, `gopls serve -h` the serve flag set.  Value kinds matter because Go's
# flag package takes the next argument as the value of a non-bool flag given without `=`.
_STR, _INT, _DUR = "string", "int", "duration"

_SERVE_VALUE_FLAGS: dict[str, str] = {
    "debug": _STR,
    "listen": _STR,
    "listen.timeout": _DUR,
    "logfile": _STR,
    "mcp.listen": _STR,
    "mode": _STR,
    "port": _INT,
    "remote.debug": _STR,
    "remote.listen.timeout": _DUR,
    "remote.logfile": _STR,
}
_SERVE_BOOL_FLAGS = frozenset({"rpc.trace"})

_APP_VALUE_FLAGS: dict[str, str] = {
    **_SERVE_VALUE_FLAGS,
    "remote": _STR,
    "profile.alloc": _STR,
    "profile.block": _STR,
    "profile.cpu": _STR,
    "profile.mem": _STR,
    "profile.trace": _STR,
    "ocagent": _STR,  # removed from gopls in 2023; still parsed so old setups classify right
}
_APP_BOOL_FLAGS = _SERVE_BOOL_FLAGS | {"v", "verbose", "vv", "veryverbose"}
_APP_ONLY_FLAGS = (set(_APP_VALUE_FLAGS) - set(_SERVE_VALUE_FLAGS)) | (
    _APP_BOOL_FLAGS - _SERVE_BOOL_FLAGS
)

# Go's flag package answers -h / -help (any spelling, any value) with usage and exit 0.
_HELP_FLAGS = frozenset({"h", "help"})

# `gopls -v help` (v0.21.1), plus older names; used only to decide whether the word after an
# unknown flag is that flag's value or the subcommand.
_SUBCOMMANDS = frozenset({
    "serve", "version", "bug", "help", "api-json", "licenses", "call_hierarchy", "check",
    "codeaction", "codelens", "definition", "execute", "fix", "folding_ranges", "format", "mcp",
    "highlight", "implementation", "imports", "remote", "inspect", "links", "prepare_rename",
    "references", "rename", "semtok", "signature", "stats", "symbols", "workspace_symbol",
    "vulncheck", "workspace",
})

_GO_BOOLS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false",
                       "False"})
_GO_DURATION = re.compile(
    r"[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)"
)


def _go_int(text: str) -> int | None:
    """Parse like Go's strconv.ParseInt(text, 0, 64); None if Go would reject it."""
    body = text[1:] if text[:1] in "+-" else text
    low = body.lower()
    base = 10
    if low.startswith(("0x", "0o", "0b")):
        base = {"x": 16, "o": 8, "b": 2}[low[1]]
        low = low[2:]
    elif len(low) > 1 and low.startswith("0"):
        base, low = 8, low[1:]
    elif "_" in low:
        return None  # Go allows underscores only after a base prefix
    if not low or low.startswith("_") or low.endswith("_") or "__" in low:
        return None
    try:
        value = int(low.replace("_", ""), base)
    except ValueError:
        return None
    return -value if text.startswith("-") else value


class _Parse:
    """The state of one pass over gopls's command line, mirroring Go's flag.FlagSet.Parse."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.error: str | None = None  # set when gopls itself would reject the command line

    def flags(self, args: Sequence[str], i: int, *, serve: bool) -> int:
        """Consume flags from args[i:]; return the index of the first positional argument."""
        value_flags = _SERVE_VALUE_FLAGS if serve else _APP_VALUE_FLAGS
        bool_flags = _SERVE_BOOL_FLAGS if serve else _APP_BOOL_FLAGS
        while i < len(args):
            arg = args[i]
            if len(arg) < 2 or arg[0] != "-":
                return i  # first positional argument ("-" alone is positional, as in Go)
            dashes = 2 if arg[1] == "-" else 1
            if arg == "--":
                return i + 1  # terminator: the rest is positional
            body = arg[dashes:]
            if not body or body[0] in "-=":
                self.error = f"bad flag syntax: {arg}"
                return i
            i += 1
            name, eq, value = body.partition("=")
            if name in _HELP_FLAGS:
                self.error = f"{arg} asks for help"
                return i
            if name in bool_flags:
                if eq and value not in _GO_BOOLS:
                    self.error = f"invalid boolean value {value!r} for -{name}"
                    return i
                continue
            kind = value_flags.get(name)
            if kind is not None:
                if not eq:
                    if i >= len(args):
                        self.error = f"flag needs an argument: -{name}"
                        return i
                    value = args[i]
                    i += 1
                if (kind == _INT and _go_int(value) is None) or (
                    kind == _DUR and not _GO_DURATION.fullmatch(value)
                ):
                    self.error = f"invalid value {value!r} for flag -{name}"
                    return i
                self.values[name] = value  # Go: the last occurrence wins
                continue
            if serve and name in _APP_ONLY_FLAGS:
                self.error = f"-{name} is a global flag; gopls rejects it after 'serve'"
                return i
            # A flag this table does not know (a newer gopls?).  Go would need to know whether it
            # takes a value; we guess: a following word that is neither a flag nor a known
            # subcommand is its value.  This keeps unknown flags from turning an LSP session
            # into passthrough; only a real subcommand does that.
            if (not eq and i < len(args) and not args[i].startswith("-")
                    and args[i] not in _SUBCOMMANDS):
                i += 1
        return i


def explain(args: Sequence[str]) -> Classification:
    """Classify a gopls command line and say why (see `classify` for the rule)."""
    parse = _Parse()
    i = parse.flags(args, 0, serve=False)
    subcommand: str | None = None
    if parse.error is None and i < len(args):
        subcommand = args[i]
        if subcommand != "serve":
            return Classification(ShimMode.PASSTHROUGH, f"subcommand {subcommand!r}", subcommand)
        i = parse.flags(args, i + 1, serve=True)
        if parse.error is None and i < len(args):
            return Classification(
                ShimMode.PASSTHROUGH, f"'serve' takes no arguments, got {args[i]!r}", subcommand
            )
    if parse.error is not None:
        return Classification(ShimMode.PASSTHROUGH, parse.error, subcommand)
    listen = parse.values.get("listen", "")
    if listen:
        return Classification(
            ShimMode.PASSTHROUGH, f"-listen={listen}: a daemon, not a stdio session", subcommand
        )
    port = _go_int(parse.values.get("port", "0"))
    if port:
        return Classification(
            ShimMode.PASSTHROUGH, f"-port={port}: a daemon, not a stdio session", subcommand
        )
    mode = parse.values.get("mode")
    if mode is not None and mode != "stdio":
        return Classification(ShimMode.PASSTHROUGH, f"-mode={mode} is not stdio", subcommand)
    return Classification(ShimMode.LSP, "LSP session on stdio", subcommand)


def classify(args: Sequence[str]) -> ShimMode:
    """Decide whether `gopls ARGS` is an LSP stdio session (proxy it) or not (exec gopls).

    Rule: gopls's global flags are parsed the way Go's flag package does (`-f`, `--f`, `-f=v`,
    `-f v` for non-bool flags, `--` ends flags).  The command is LSP when the subcommand is
    absent or `serve` (whose own flags are parsed too), no `-listen`/`-port` makes gopls a
    daemon, and `-mode`, if given, is `stdio`.  Passthrough is any other subcommand, `-h`/`-help`,
    and any command line gopls would reject (bad flag syntax, bad values, arguments after
    `serve`, global flags after `serve`) so that gopls prints its own error.  Unknown flags do not
    by themselves make a command passthrough; an unknown bare flag followed by a word that is not
    a gopls subcommand is assumed to take that word as its value.
    """
    return explain(args).mode

"""argparse helpers shared by the subcommands (cli/, and the commands of incident/, doctor/,
replay/): value types, and the `-- CMD...` part of a command line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["int_at_least", "server_command"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum` (a negative `bundles --keep` would
    delete every bundle; `doctor --sample 0` would silently sample the default)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"
    return parse


def server_command(args: argparse.Namespace, usage: str) -> list[str] | None:
    """The `-- CMD...` part of a command line, or None (after saying how) when it is missing."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print(f"give the server command after --, e.g. {usage}", file=sys.stderr)
        return None
    return command

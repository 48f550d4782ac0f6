"""The mounts and environment a devcontainer.json asks for, with the line each one is written on.

Mounts come from `mounts` (Docker `--mount` strings or `{type, source, target}` objects),
`workspaceMount`, and `runArgs` (`--mount`, `-v`/`--volume`). The environment gopls sees in the
container is `containerEnv` overridden by `remoteEnv` (VS Code starts gopls with the latter).
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lspguard.doctor.jsonc import Parsed

__all__ = ["EnvValue", "MountSpec", "container_env", "mount_specs", "parse_mount_string",
           "workspace_folder"]


@dataclass(frozen=True, slots=True)
class MountSpec:
    kind: str  # "bind", "volume", "tmpfs", ...
    source: str
    target: str
    consistency: str  # "" when not given
    origin: str  # where it was written: "mounts[1]", "workspaceMount", "runArgs[3]"
    line: int | None
    text: str  # as written, for messages

    @property
    def is_bind(self) -> bool:
        return self.kind == "bind"


@dataclass(frozen=True, slots=True)
class EnvValue:
    value: str
    origin: str  # "containerEnv" or "remoteEnv"
    line: int | None


_HOST_SOURCE = ("/", "~", ".", "${local", "${env:")


def _kind(explicit: str, source: str) -> str:
    # Docker's --mount defaults to a volume, but a host path as source only makes sense as a
    # bind, so that is what the author meant (and what the Dev Containers CLI rejects otherwise).
    if explicit:
        return explicit.strip().lower()
    if source.startswith(_HOST_SOURCE) or re.match(r"[A-Za-z]:[\\/]", source):
        return "bind"
    return "volume"


def parse_mount_string(text: str, origin: str, line: int | None) -> MountSpec:
    """A Docker `--mount` string: `type=bind,source=...,target=...,consistency=cached`."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        fields[key.strip().lower()] = value.strip()
    source = fields.get("source", fields.get("src", ""))
    target = fields.get("target", fields.get("destination", fields.get("dst", "")))
    return MountSpec(_kind(fields.get("type", ""), source), source, target,
                     fields.get("consistency", ""), origin, line, text)


_VAR = re.compile(r"\$\{[^}]*\}")


def _parse_volume_flag(text: str, origin: str, line: int | None) -> MountSpec:
    """A `-v SRC:DST[:OPTS]` value; `${localEnv:HOME}` style variables may hold colons."""
    hidden: list[str] = []

    def hide(m: re.Match[str]) -> str:
        hidden.append(m.group())
        return f"\0{len(hidden) - 1}\0"

    def show(s: str) -> str:
        return re.sub("\0(\\d+)\0", lambda m: hidden[int(m.group(1))], s)

    parts = [show(p) for p in _VAR.sub(hide, text).split(":")]
    if len(parts) == 1:  # anonymous volume
        return MountSpec("volume", "", parts[0], "", origin, line, text)
    opts = parts[2].split(",") if len(parts) > 2 else []
    consistency = next((o for o in opts if o in ("cached", "delegated", "consistent")), "")
    return MountSpec(_kind("", parts[0]), parts[0], parts[1], consistency, origin, line, text)


def _from_value(value: Any, origin: str, line: int | None) -> MountSpec | None:
    if isinstance(value, str):
        return parse_mount_string(value, origin, line)
    if isinstance(value, dict):
        source = str(value.get("source", ""))
        return MountSpec(_kind(str(value.get("type", "")), source), source,
                         str(value.get("target", "")), str(value.get("consistency", "")),
                         origin, line, json.dumps(value))
    return None


def mount_specs(doc: Parsed) -> list[MountSpec]:
    """Every mount the configuration asks for, in file order."""
    config = doc.value
    specs: list[MountSpec] = []
    mounts = config.get("mounts")
    if isinstance(mounts, list):
        for i, value in enumerate(mounts):
            spec = _from_value(value, f"mounts[{i}]", doc.line_of("mounts", i))
            if spec:
                specs.append(spec)
    if isinstance(config.get("workspaceMount"), str) and config["workspaceMount"]:
        specs.append(parse_mount_string(config["workspaceMount"], "workspaceMount",
                                        doc.line_of("workspaceMount")))
    args = config.get("runArgs")
    if isinstance(args, list):
        for i, arg in enumerate(args):
            if not isinstance(arg, str):
                continue
            flag, eq, inline = arg.partition("=")
            if flag not in ("--mount", "-v", "--volume"):
                continue
            j, value = (i, inline) if eq else (i + 1, args[i + 1] if i + 1 < len(args) else "")
            if not isinstance(value, str) or not value:
                continue
            line = doc.line_of("runArgs", j)
            specs.append(parse_mount_string(value, f"runArgs[{j}]", line) if flag == "--mount"
                         else _parse_volume_flag(value, f"runArgs[{j}]", line))
    return specs


_CONTAINER_ENV_REF = re.compile(r"\$\{containerEnv:([^}:]+)(?::([^}]*))?\}")


def container_env(doc: Parsed) -> dict[str, EnvValue]:
    """containerEnv overridden by remoteEnv, with `${containerEnv:X}` references substituted."""
    config = doc.value
    base = config.get("containerEnv") if isinstance(config.get("containerEnv"), dict) else {}
    env: dict[str, EnvValue] = {}
    for section in ("containerEnv", "remoteEnv"):
        values = config.get(section)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(value, str):
                text = _CONTAINER_ENV_REF.sub(
                    lambda m: str(base.get(m.group(1), m.group(2) or m.group())), value)
                env[key] = EnvValue(text, section, doc.line_of(section, key))
    return env


def workspace_folder(doc: Parsed, project_name: str) -> str:
    """Where the workspace sits in the container (`workspaceFolder`, else the CLI default)."""
    folder = doc.value.get("workspaceFolder")
    if isinstance(folder, str) and folder.startswith("/"):
        return posixpath.normpath(folder)
    return f"/workspaces/{project_name}"

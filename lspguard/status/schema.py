"""The status file's contract, one source for both sides: these msgspec Structs.

The proxy builds a `SessionStatus` (`session_status` in session/status.py) and writes it
(status/file.py); `lspguard status` and the VS Code extension read it. From these types
`python -m lspguard.status.schema` writes the JSON Schema (`lspguard/status/schema.json`) and
the extension's TypeScript types (`vscode-extension/src/statusContract.ts`); a test keeps both
equal to what this module generates, so a field Python does not write cannot be read on the
other side. Readers must tolerate keys they do not know (a newer proxy); `schema` counts
incompatible changes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

__all__ = ["SCHEMA_VERSION", "STATES", "SessionStatus", "json_schema", "typescript"]

SCHEMA_VERSION = 2

State = Literal["starting", "initializing", "running", "slow", "restarting", "waiting",
                "degraded", "stopping", "exited"]
STATES: tuple[str, ...] = get_args(State)
# The rows of causes/kinds.py `KINDS`, and those of them that are cause classes: this module lies
# below causes/ and cannot import the table, so tests/unit/causes/test_verdict_kinds.py keeps them
# equal.
VerdictKind = Literal[
    "crashed", "handshake_timeout", "filesystem_not_answering", "special_file_no_partner",
    "child_never_returns", "network_peer_not_answering", "blocked_in_kernel", "deadlocked",
    "busy_spin", "stopped", "out_of_memory", "protocol_error", "manual"]
CauseClass = Literal[
    "filesystem_not_answering", "special_file_no_partner", "child_never_returns",
    "network_peer_not_answering", "blocked_in_kernel", "stopped", "busy_spin", "deadlocked"]
Direction = Literal["client->server", "server->client"]
ObjectKind = Literal["path", "special_file", "child", "socket", "none"]


class Backend(msgspec.Struct, frozen=True):
    argv: list[str]
    label: str
    pid: int | None
    generation: int
    env_overlay: dict[str, str]


class CauseProcess(msgspec.Struct, frozen=True):
    pid: int
    argv: list[str]
    role: str  # "gopls", "gopls's `go list`"
    tid: int | None = None
    state: str | None = None
    syscall: str | None = None
    wchan: str | None = None


class CauseObject(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: ObjectKind
    path: str | None = None
    mount_point: str | None = None
    fs_type: str | None = None
    source: str | None = None
    file_type: str | None = None
    pid: int | None = None
    argv: list[str] | None = None
    peer: str | None = None
    socket_state: str | None = None


class Cause(msgspec.Struct, frozen=True):
    """What the server waits on (causes/model.py `Cause.as_dict`, plus `since`)."""

    cls: CauseClass = msgspec.field(name="class")
    external: bool
    restart_helps: bool
    sentence: str
    fix: str
    waited_s: float
    process: CauseProcess
    object: CauseObject
    chain: list[CauseProcess] = []
    since: float | None = None  # unix time the session began waiting on it
    answered_at_once: int | None = None  # requests answered at once while waiting


class Slow(msgspec.Struct, frozen=True):
    """A filesystem gopls needs answers, but slowly: a state, not a verdict (nothing is
    restarted, requests wait for gopls). Set while state is "slow"."""

    mount_point: str
    fs_type: str
    source: str | None
    role: str  # what lives there: "the workspace", "GOMODCACHE", "GOCACHE", "a path gopls reads"
    latency_ms: float  # measured per operation (a bounded probe, or the samples)
    sentence: str  # "the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per op..."
    fix: str
    since: float  # unix time the session became slow


class Memory(msgspec.Struct, frozen=True):
    """The server's memory against the limit the kernel enforces on it (its memory cgroup)."""

    rss_bytes: int | None  # the server process tree's resident set, last sample
    peak_rss_bytes: int | None
    limit_bytes: int | None  # the cgroup's memory limit; None: no limit found
    limit_source: str | None  # "cgroup v1 /docker/abc" or "cgroup v2 /user.slice/..."
    oom_kills: int  # OOM kills counted in that cgroup since the session began
    gomemlimit: str | None  # GOMEMLIMIT the current generation runs with, if any
    near_limit: bool  # rss is within 10% of the limit: a warning


class Verdict(msgspec.Struct, frozen=True):
    kind: VerdictKind
    summary: str
    generation: int
    at: float
    facts: dict[str, Any]  # facts.cause has the shape of Cause when the cause is known
    bundle: str | None = None


class Handshake(msgspec.Struct, frozen=True):
    initialize_ms: float | None
    first_work_title: str | None
    first_work_ms: float | None


class Latency(msgspec.Struct, frozen=True):
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class Pending(msgspec.Struct, frozen=True):
    direction: Direction
    id: int | str
    method: str
    age_ms: float
    generation: int


class Counters(msgspec.Struct, frozen=True):
    frames_from_client: int
    bytes_from_client: int
    frames_from_server: int
    protocol_errors: dict[str, int]


class SessionStatus(msgspec.Struct, frozen=True):
    schema: int
    pid: int
    lspguard_version: str
    state: State
    started_at: float
    uptime_s: float
    workspace_folders: list[str]
    cwd: str
    config: str | None
    log_file: str | None
    backend: Backend
    restarts: int
    last_recovery_s: float | None
    degraded: str | None
    cause: Cause | None  # set while state is "waiting"
    slow: Slow | None  # set while state is "slow"
    memory: Memory | None
    last_verdict: Verdict | None
    verdicts: int
    bundles: list[str]
    handshake: Handshake
    watchdog_cpu_percent: float
    pending: list[Pending]
    held_during_restart: int
    latency: dict[str, Latency]
    counters: Counters
    end_reason: str | None


# ------------------------------------------------------------------------- generated files

ROOT = Path(__file__).resolve().parent  # lspguard/status/
SCHEMA_FILE = ROOT / "schema.json"
TS_FILE = ROOT.parents[1] / "vscode-extension" / "src" / "statusContract.ts"


def json_schema() -> str:
    import json  # the generators only: the proxy writes its status with msgspec

    return json.dumps(msgspec.json.schema(SessionStatus), indent=2, sort_keys=True) + "\n"


def _ts_type(node: dict[str, Any]) -> str:
    import json

    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in node:
        return " | ".join(_ts_type(n) for n in node["anyOf"])
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    kind = node.get("type")
    if kind == "array":
        return f"{_ts_type(node.get('items', {}))}[]"
    if kind == "object":
        extra = node.get("additionalProperties")
        return f"Record<string, {_ts_type(extra) if isinstance(extra, dict) else 'unknown'}>"
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean",
            "null": "null"}.get(str(kind), "unknown")


def typescript() -> str:
    """TypeScript interfaces for the schema: what the extension may read, nothing more."""
    import json

    schema = msgspec.json.schema(SessionStatus)
    out = ["// Generated by `python -m lspguard.status.schema` from lspguard/status/schema.py.",
           "// Do not edit: a test fails when this file and the Python schema differ.", "",
           f"export const STATUS_SCHEMA_VERSION = {SCHEMA_VERSION};",
           "// Readers must tolerate keys they do not know: a newer proxy may add some.", ""]
    for const, alias, literal in (("SESSION_STATES", "SessionState", State),
                                  ("VERDICT_KINDS", "VerdictKind", VerdictKind),
                                  ("CAUSE_CLASSES", "CauseClass", CauseClass),
                                  ("CAUSE_OBJECT_KINDS", "CauseObjectKind", ObjectKind)):
        out.append(f"export const {const} = {json.dumps(list(get_args(literal)))} as const;")
        out.append(f"export type {alias} = (typeof {const})[number];")
    out.append("")
    for name, definition in sorted(schema["$defs"].items()):
        required = set(definition.get("required", []))
        out.append(f"export interface {name} {{")
        for field_name, node in definition.get("properties", {}).items():
            optional = "" if field_name in required else "?"
            key = field_name if field_name.isidentifier() else json.dumps(field_name)
            out.append(f"  readonly {key}{optional}: {_ts_type(node)};")
        out.append("}")
        out.append("")
    return "\n".join(out)


def main() -> int:
    SCHEMA_FILE.write_text(json_schema())
    TS_FILE.write_text(typescript())
    print(f"wrote {SCHEMA_FILE} and {TS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

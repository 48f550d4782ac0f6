// Reads the per-session status files lspguard proxies write (`<runtime dir>/sessions/<pid>.json`,
// lspguard/status/file.py) into typed, defensively parsed values. Every read is asynchronous and
// a file that is missing, torn or of an unknown shape is skipped, never thrown.

import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import type * as contract from "./statusContract";
import { CAUSE_CLASSES, CAUSE_OBJECT_KINDS, SESSION_STATES, VERDICT_KINDS } from "./statusContract";
import type { CauseClass, CauseObjectKind, SessionState, VerdictKind } from "./statusContract";
import { EXTERNAL_CLASSES, VERDICT_PHRASE } from "./generated/verdictKinds";

export { CAUSE_CLASSES, CAUSE_OBJECT_KINDS, SESSION_STATES, VERDICT_KINDS };
export type { CauseClass, CauseObjectKind, SessionState, VerdictKind };

export interface LatencyStat {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs?: number;
}

// The state words, cause classes and object kinds come from the status contract
// (statusContract.ts, generated from lspguard/status/schema.py), which classes lie outside gopls
// and the verdicts' phrases from the table of the verdict kinds (generated/verdictKinds.ts, from
// lspguard/causes/kinds.py): nothing here guesses them.

/** A verdict kind in words, after "gopls"; a kind from a newer lspguard is spelled out. */
export function verdictPhrase(kind: string): string {
  const known = oneOf(VERDICT_KINDS, kind);
  return known ? VERDICT_PHRASE[known] : kind.replace(/_/g, " ");
}


/** What the wait is on (`cause.object`); `kind` says which fields are meaningful. */
export interface CauseObject {
  kind: CauseObjectKind;
  /** kind "path" / "special_file". */
  path?: string;
  mountPoint?: string;
  fsType?: string;
  /** kind "special_file": "fifo", "socket", "character device", ... */
  fileType?: string;
  /** kind "socket": "127.0.0.1:8080". */
  peer?: string;
  /** kind "child": the child that never returns. */
  argv: string[];
  pid?: number;
}

/** The process that waits (`cause.process`): gopls itself or one of its descendants. */
export interface CauseProcess {
  pid?: number;
  argv: string[];
  /** "gopls", "gopls's `go list`", ... */
  role?: string;
}

/** Why gopls does not answer (`cause`, and `last_verdict.facts.cause`). */
export interface Cause {
  /** "unknown" for a class this extension does not know (a newer lspguard). */
  class: CauseClass | "unknown";
  external: boolean;
  restartHelps: boolean;
  /** One readable sentence naming the cause. */
  sentence?: string;
  fix?: string;
  /** How long the process had waited when the status file was written. */
  waitedS?: number;
  /** Wall clock (seconds since the epoch) the wait was first seen. */
  since?: number;
  process?: CauseProcess;
  object: CauseObject;
}

export interface Verdict {
  /** One of VERDICT_KINDS (a cause class, "crashed", "out_of_memory", ...), or a newer kind;
   * `verdictPhrase` says it in words. */
  kind: string;
  summary: string;
  /** Wall clock, seconds since the epoch. */
  at?: number;
  generation?: number;
  /** Incident bundle directory. */
  bundle?: string;
  /** `facts.cause`, when the verdict knows it. */
  cause?: Cause;
}

/** A filesystem gopls needs answers, but slowly (`slow`, set while state is "slow"): gopls is
 * working, lspguard lets requests wait for it and restarts nothing. */
export interface SlowFilesystem {
  mountPoint: string;
  fsType?: string;
  /** What is mounted there: "srv:/export", "grpcfuse", ... */
  source?: string;
  /** What lives there: "the workspace", "GOMODCACHE", "GOCACHE", "a path gopls reads". */
  role?: string;
  /** Measured time per filesystem operation. */
  latencyMs?: number;
  /** One readable sentence, e.g. "the workspace at /workspace (fuse.grpcfuse) answers in ...". */
  sentence?: string;
  fix?: string;
  /** Wall clock (seconds since the epoch) the session became slow. */
  since?: number;
}

/** gopls's memory against the limit the kernel enforces on it (`memory`). */
export interface MemoryUse {
  /** The gopls process tree's resident set at the last sample. */
  rssBytes?: number;
  peakRssBytes?: number;
  /** Its memory cgroup's limit; absent: no limit found. */
  limitBytes?: number;
  /** Which cgroup: "cgroup v1 /docker/abc". */
  limitSource?: string;
  /** OOM kills in that cgroup since the session began. */
  oomKills: number;
  /** GOMEMLIMIT the current gopls runs with, if any. */
  gomemlimit?: string;
  /** RSS is close to the limit: the OOM killer may end gopls soon. */
  nearLimit: boolean;
}

export type PendingDirection = "client->server" | "server->client";

export interface PendingRequest {
  /** "unknown" when the document has no (or an unexpected) direction. */
  direction: PendingDirection | "unknown";
  method: string;
  ageMs: number;
}

export interface SessionStatus {
  pid: number;
  /** "unknown" when the document has no state, or one this extension does not know. */
  state: SessionState | "unknown";
  startedAt?: number;
  uptimeS?: number;
  workspaceFolders: string[];
  backend: {
    argv: string[];
    pid?: number;
    generation: number;
    /** What the proxy calls this backend ("primary", "primary + hang overlay", ...). */
    label?: string;
  };
  /** Set when the proxy gave up restarting: why requests are answered with errors. */
  degradedReason?: string;
  /** What gopls is blocked on: set while "waiting" (and possibly while "degraded"). */
  cause?: Cause;
  /** The slow filesystem: set while "slow". */
  slow?: SlowFilesystem;
  memory?: MemoryUse;
  /** Recent incident bundles of this session, oldest first. */
  bundles: string[];
  restarts: number;
  lastVerdict?: Verdict;
  latency: Record<string, LatencyStat>;
  pending: PendingRequest[];
  logFile?: string;
  /** The status file this came from. */
  statusFile: string;
  /** The control socket, when it exists. */
  socket?: string;
}

type Json = Record<string, unknown>;

/** A decoded JSON object seen through contract type `T`: only the keys Python writes can be
 * read (reading another is a compile error), and each value is still checked at run time. */
type Raw<T> = { readonly [K in keyof T]?: unknown };

function obj(value: unknown): Json | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Json : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** A non-empty string, else undefined. */
function text(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value : undefined;
}

function bool(value: unknown): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function oneOf<T extends string>(values: readonly T[], value: unknown): T | undefined {
  return (values as readonly unknown[]).includes(value) ? value as T : undefined;
}

/** `{...(v !== undefined ? { k: v } : {})}`, shorter: the keys of `fields` whose value is set. */
function defined<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as
    Partial<T>;
}

function parseCauseObject(value: unknown): CauseObject {
  const o = (obj(value) as Raw<contract.CauseObject> | undefined) ?? {};
  const path = text(o.path);
  const fileType = text(o.file_type);
  const mountPoint = text(o.mount_point);
  const peer = text(o.peer);
  const argv = strings(o.argv);
  // An unknown or missing kind: guess it from the fields that are there.
  const kind = oneOf(CAUSE_OBJECT_KINDS, o.kind)
    ?? (peer ? "socket" : fileType && path ? "special_file" : (path ?? mountPoint) ? "path"
      : argv.length > 0 ? "child" : "none");
  return {
    kind, argv,
    ...defined({ path, mountPoint, fsType: text(o.fs_type), fileType, peer, pid: num(o.pid) }),
  };
}

/** A `cause` object, or undefined if it is none (null, garbage, or neither class nor sentence). */
export function parseCause(value: unknown): Cause | undefined {
  const c = obj(value) as Raw<contract.Cause> | undefined;
  if (!c) return undefined;
  const cls = oneOf(CAUSE_CLASSES, c.class);
  const sentence = text(c.sentence);
  if (!cls && !sentence) return undefined;
  const external = bool(c.external) ?? (cls !== undefined && EXTERNAL_CLASSES.has(cls));
  const p = obj(c.process) as Raw<contract.CauseProcess> | undefined;
  const process: CauseProcess | undefined = p
    ? { argv: strings(p.argv), ...defined({ pid: num(p.pid), role: text(p.role) }) } : undefined;
  return {
    class: cls ?? "unknown",
    external,
    restartHelps: bool(c.restart_helps) ?? !external,
    ...defined({ sentence, fix: text(c.fix), waitedS: num(c.waited_s), since: num(c.since),
                 process }),
    object: parseCauseObject(c.object),
  };
}

export function parseVerdict(value: unknown): Verdict | undefined {
  const v = obj(value) as Raw<contract.Verdict> | undefined;
  if (!v) return undefined;
  const kind = str(v.kind);
  if (!kind) return undefined;
  return {
    kind,
    summary: str(v.summary) ?? `gopls ${verdictPhrase(kind)}`,
    ...defined({ at: num(v.at), generation: num(v.generation), bundle: text(v.bundle),
                 cause: parseCause(obj(v.facts)?.cause) }),
  };
}

/** A `slow` object, or undefined if it is none (null, garbage, or neither mount nor sentence). */
export function parseSlow(value: unknown): SlowFilesystem | undefined {
  const s = obj(value) as Raw<contract.Slow> | undefined;
  const mountPoint = text(s?.mount_point);
  const sentence = text(s?.sentence);
  if (!s || (!mountPoint && !sentence)) return undefined;
  const latencyMs = num(s.latency_ms);
  return {
    mountPoint: mountPoint ?? "",
    ...defined({ fsType: text(s.fs_type), source: text(s.source), role: text(s.role),
                 latencyMs: latencyMs !== undefined && latencyMs >= 0 ? latencyMs : undefined,
                 sentence, fix: text(s.fix), since: num(s.since) }),
  };
}

/** The share of the limit at which RSS counts as near it when the proxy does not say. */
const NEAR_LIMIT = 0.9;

/** A `memory` object, or undefined if it is none. */
export function parseMemory(value: unknown): MemoryUse | undefined {
  const m = obj(value) as Raw<contract.Memory> | undefined;
  if (!m) return undefined;
  const bytes = (v: unknown): number | undefined => {
    const n = num(v);
    return n !== undefined && n >= 0 ? n : undefined;
  };
  const rssBytes = bytes(m.rss_bytes);
  const limit = bytes(m.limit_bytes);
  const limitBytes = limit !== undefined && limit > 0 ? limit : undefined; // 0: no limit
  const oomKills = num(m.oom_kills);
  return {
    oomKills: oomKills !== undefined && oomKills > 0 ? oomKills : 0,
    nearLimit: bool(m.near_limit) ??
      (rssBytes !== undefined && limitBytes !== undefined && rssBytes >= NEAR_LIMIT * limitBytes),
    ...defined({ rssBytes, peakRssBytes: bytes(m.peak_rss_bytes), limitBytes,
                 limitSource: text(m.limit_source), gomemlimit: text(m.gomemlimit) }),
  };
}

/** A status document (already JSON-decoded) as a SessionStatus, or undefined if it is not one.
 * Reads exactly what `session_status` (lspguard/proxy/session.py) builds; the rest is ignored. */
export function parseStatus(doc: unknown, statusFile: string): SessionStatus | undefined {
  const d = obj(doc) as Raw<contract.SessionStatus> | undefined;
  const pid = num(d?.pid);
  if (!d || pid === undefined) return undefined;
  const backend = (obj(d.backend) as Raw<contract.Backend> | undefined) ?? {};
  const generation = num(backend.generation) ?? 0;
  const latency: Record<string, LatencyStat> = {};
  for (const [method, entry] of Object.entries(obj(d.latency) ?? {})) {
    const l = obj(entry) as Raw<contract.Latency> | undefined;
    const p50 = num(l?.p50_ms);
    const p99 = num(l?.p99_ms);
    if (!l || p50 === undefined || p99 === undefined) continue;
    latency[method] = { count: num(l.count) ?? 0, p50Ms: p50, p99Ms: p99,
                        ...defined({ maxMs: num(l.max_ms) }) };
  }
  const pending: PendingRequest[] = [];
  if (Array.isArray(d.pending)) {
    for (const entry of d.pending) {
      const p = obj(entry) as Raw<contract.Pending> | undefined;
      const method = str(p?.method);
      const ageMs = num(p?.age_ms);
      if (p && method && ageMs !== undefined) {
        const direction = oneOf(["client->server", "server->client"] as const, p.direction);
        pending.push({ direction: direction ?? "unknown", method, ageMs });
      }
    }
  }
  return {
    pid,
    state: oneOf(SESSION_STATES, d.state) ?? "unknown",
    ...defined({ startedAt: num(d.started_at), uptimeS: num(d.uptime_s) }),
    workspaceFolders: strings(d.workspace_folders),
    backend: {
      argv: strings(backend.argv),
      generation,
      ...defined({ pid: num(backend.pid), label: text(backend.label) }),
    },
    ...defined({ degradedReason: text(d.degraded), cause: parseCause(d.cause),
                 slow: parseSlow(d.slow), memory: parseMemory(d.memory) }),
    bundles: strings(d.bundles),
    restarts: num(d.restarts) ?? Math.max(0, generation - 1),
    ...defined({ lastVerdict: parseVerdict(d.last_verdict) }),
    latency,
    pending,
    ...defined({ logFile: text(d.log_file) }),
    statusFile,
  };
}

/** Is process `pid` alive? (EPERM: alive, just not ours.) */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface ReadOptions {
  liveOnly?: boolean;
  isAlive?: (pid: number) => boolean;
}

/** Every session status in `dirs` (missing dirs are fine), live ones only by default. */
export async function readSessions(dirs: readonly string[], options: ReadOptions = {}):
    Promise<SessionStatus[]> {
  const liveOnly = options.liveOnly ?? true;
  const isAlive = options.isAlive ?? pidAlive;
  const out: SessionStatus[] = [];
  const seen = new Set<number>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (!/^\d+\.json$/.test(name)) continue;
      const file = path.join(dir, name);
      let status: SessionStatus | undefined;
      try {
        status = parseStatus(JSON.parse(await fs.readFile(file, "utf8")), file);
      } catch {
        continue; // vanished or (despite the atomic rename) unreadable: next poll
      }
      if (!status || seen.has(status.pid)) continue;
      if (liveOnly && !isAlive(status.pid)) continue;
      const socket = path.join(dir, `${String(status.pid)}.sock`);
      if (await isSocket(socket)) status.socket = socket;
      seen.add(status.pid);
      out.push(status);
    }
  }
  return out;
}

async function isSocket(file: string): Promise<boolean> {
  try {
    return (await fs.lstat(file)).isSocket();
  } catch {
    return false;
  }
}

/** Where lspguard may keep session files, mirroring lspguard/paths.py (runtime_dir): used when
 * `lspguard paths --json` cannot be asked. Reading a dir that does not exist costs nothing. */
export function candidateSessionDirs(env: NodeJS.ProcessEnv = process.env,
                                     platform: NodeJS.Platform = process.platform,
                                     uid: number = process.getuid?.() ?? 0,
                                     tmp: string = os.tmpdir(),
                                     home: string = os.homedir()): string[] {
  if (env.LSPGUARD_RUNTIME_DIR) return [path.join(env.LSPGUARD_RUNTIME_DIR, "sessions")];
  const bases: string[] = [];
  if (platform === "darwin") {
    bases.push(path.join(home, "Library", "Caches", "TemporaryItems", "lspguard"));
  } else {
    if (env.XDG_RUNTIME_DIR) bases.push(path.join(env.XDG_RUNTIME_DIR, "lspguard"));
    bases.push(`/run/user/${String(uid)}/lspguard`,
               path.join(tmp, `runtime-${String(uid)}`, "lspguard"));
  }
  bases.push(path.join(tmp, `lspguard-${String(uid)}`));
  return [...new Set(bases)].map((b) => path.join(b, "sessions"));
}

/** `file:///a/b/` → `/a/b`; anything that is not a file URI → undefined. */
export function uriToPath(uri: string): string | undefined {
  try {
    return path.resolve(fileURLToPath(uri));
  } catch {
    return undefined;
  }
}

/** The sessions serving any of `folders` (file system paths), most recently started first. */
export function sessionsForWorkspace(sessions: readonly SessionStatus[],
                                     folders: readonly string[]): SessionStatus[] {
  const wanted = new Set(folders.map((f) => path.resolve(f)));
  return sessions
    .filter((s) => s.workspaceFolders.some((u) => {
      const p = uriToPath(u);
      return p !== undefined && wanted.has(p);
    }))
    .sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0));
}

/** `lspguard paths --json` → its sessions dir (undefined if lspguard cannot say). */
export async function askSessionsDir(
    host: { exec: (file: string, args: readonly string[], options?: { timeoutMs?: number })
      => Promise<{ code: number | null; stdout: string }> },
    lspguardPath: string): Promise<string | undefined> {
  const result = await host.exec(lspguardPath, ["paths", "--json"], { timeoutMs: 15_000 });
  if (result.code !== 0) return undefined;
  try {
    const doc = JSON.parse(result.stdout) as { sessions_dir?: unknown };
    return typeof doc.sessions_dir === "string" ? doc.sessions_dir : undefined;
  } catch {
    return undefined;
  }
}

// Reads the per-session status files lspguard proxies write (`<runtime dir>/sessions/<pid>.json`,
// see lspguard/status.py) into typed, defensively parsed values. Every read is asynchronous and
// a file that is missing, torn or of an unknown shape is skipped, never thrown.

import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export interface LatencyStat {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs?: number;
}

export interface Verdict {
  kind: string;
  summary: string;
  /** Wall clock, seconds since the epoch. */
  at?: number;
  generation?: number;
  /** Incident bundle directory. */
  bundle?: string;
}

export interface PendingRequest {
  direction: string;
  method: string;
  ageMs: number;
}

export interface SessionStatus {
  pid: number;
  state: string;
  startedAt?: number;
  uptimeS?: number;
  workspaceFolders: string[];
  backend: {
    argv: string[];
    pid?: number;
    generation: number;
    /** gopls version, when the status document carries one. */
    version?: string;
    /** What the proxy calls this backend ("primary", "primary + hang overlay", ...). */
    label?: string;
    /** Name of the fallback backend in use, when degraded. */
    fallback?: string;
  };
  /** Set when the proxy gave up restarting: why requests are answered with errors. */
  degradedReason?: string;
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

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function parseVerdict(value: unknown): Verdict | undefined {
  const v = obj(value);
  if (!v) return undefined;
  const kind = str(v.kind);
  if (!kind) return undefined;
  const at = num(v.at);
  const generation = num(v.generation);
  const bundle = str(v.bundle) ?? str(v.bundle_dir) ?? str(obj(v.bundle)?.path);
  return {
    kind,
    summary: str(v.summary) ?? kind.replace(/_/g, " "),
    ...(at !== undefined ? { at } : {}),
    ...(generation !== undefined ? { generation } : {}),
    ...(bundle ? { bundle } : {}),
  };
}

/** A status document (already JSON-decoded) as a SessionStatus, or undefined if it is not one. */
export function parseStatus(doc: unknown, statusFile: string): SessionStatus | undefined {
  const d = obj(doc);
  const pid = num(d?.pid);
  if (!d || pid === undefined) return undefined;
  const backend = obj(d.backend) ?? {};
  const generation = num(backend.generation) ?? 0;
  const latency: Record<string, LatencyStat> = {};
  for (const [method, raw] of Object.entries(obj(d.latency) ?? {})) {
    const l = obj(raw);
    const p50 = num(l?.p50_ms);
    const p99 = num(l?.p99_ms);
    if (!l || p50 === undefined || p99 === undefined) continue;
    const maxMs = num(l.max_ms);
    latency[method] = { count: num(l.count) ?? 0, p50Ms: p50, p99Ms: p99,
                        ...(maxMs !== undefined ? { maxMs } : {}) };
  }
  const pending: PendingRequest[] = [];
  if (Array.isArray(d.pending)) {
    for (const raw of d.pending) {
      const p = obj(raw);
      const method = str(p?.method);
      const ageMs = num(p?.age_ms);
      if (p && method && ageMs !== undefined) {
        pending.push({ direction: str(p.direction) ?? "", method, ageMs });
      }
    }
  }
  const version = str(backend.version) ?? str(d.gopls_version) ?? str(backend.gopls_version);
  const label = str(backend.label);
  const fallbackRaw = backend.fallback ?? d.fallback;
  const fallback = typeof fallbackRaw === "string" ? fallbackRaw
    : fallbackRaw === true ? "fallback backend" : str(obj(fallbackRaw)?.name)
      ?? (label?.startsWith("fallback") ? label.replace(/^fallback\s*/, "") || label : undefined);
  const degradedReason = typeof d.degraded === "string" && d.degraded ? d.degraded : undefined;
  const backendPid = num(backend.pid);
  const startedAt = num(d.started_at);
  const uptimeS = num(d.uptime_s);
  const lastVerdict = parseVerdict(d.last_verdict);
  const logFile = str(d.log_file);
  return {
    pid,
    state: str(d.state) ?? "unknown",
    ...(startedAt !== undefined ? { startedAt } : {}),
    ...(uptimeS !== undefined ? { uptimeS } : {}),
    workspaceFolders: strings(d.workspace_folders),
    backend: {
      argv: strings(backend.argv),
      generation,
      ...(backendPid !== undefined ? { pid: backendPid } : {}),
      ...(version ? { version } : {}),
      ...(label ? { label } : {}),
      ...(fallback ? { fallback } : {}),
    },
    ...(degradedReason ? { degradedReason } : {}),
    bundles: strings(d.bundles),
    restarts: num(d.restarts) ?? Math.max(0, generation - 1),
    ...(lastVerdict ? { lastVerdict } : {}),
    latency,
    pending,
    ...(logFile ? { logFile } : {}),
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

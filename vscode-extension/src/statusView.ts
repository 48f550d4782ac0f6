// What the status bar shows for the sessions of this workspace: a health word, an icon, and a
// Markdown tooltip (gopls version, generation, restarts, what gopls waits on, the slow filesystem,
// memory against its limit, last verdict, per-method p50/p99). Pure functions of the parsed
// status documents, so the tooltip in the README screenshot is exactly what this code renders
// from a real status file.

import * as path from "node:path";

import { BAR_PHRASE } from "./generated/verdictKinds";
import type { StatusBarView, StatusSeverity } from "./host";
import type {
  Cause, MemoryUse, SessionState, SessionStatus, SlowFilesystem, Verdict,
} from "./statusReader";

export type Health = "healthy" | "busy" | "slow" | "restarting" | "waiting" | "degraded" |
  "stopped";

/** A request this old, with the server otherwise running, counts as "busy". */
export const BUSY_AFTER_MS = 2_000;

/** Every state the proxy writes, and the health it shows as ("running" may also be "busy"). */
const HEALTH_OF_STATE: Record<SessionState, Health> = {
  starting: "busy",
  initializing: "busy",
  running: "healthy",
  // gopls works, on a slow filesystem: requests wait for it. Not a problem lspguard acts on.
  slow: "slow",
  restarting: "restarting",
  waiting: "waiting",
  degraded: "degraded",
  stopping: "stopped",
  exited: "stopped",
};

export function deriveHealth(s: SessionStatus): Health {
  // A state word from a newer lspguard: neither healthy nor a problem we can name.
  if (s.state === "unknown") return "busy";
  const health = HEALTH_OF_STATE[s.state];
  if (health !== "healthy") return health;
  const overdue = s.pending.some((p) => p.direction === "client->server" &&
                                        p.ageMs >= BUSY_AFTER_MS);
  return overdue ? "busy" : "healthy";
}

const ICON: Record<Health, string> = {
  healthy: "$(pass)",
  busy: "$(sync~spin)",
  slow: "$(watch)",
  restarting: "$(sync~spin)",
  waiting: "$(watch)",
  degraded: "$(warning)",
  stopped: "$(circle-slash)",
};

const SEVERITY: Record<Health, StatusSeverity> = {
  healthy: "ok",
  busy: "ok",
  slow: "ok",
  restarting: "warning",
  waiting: "warning",
  degraded: "warning",
  stopped: "ok",
};

/** What a cause class is, when its object names nothing more specific (the table of the verdict
 * kinds, lspguard/causes/kinds.py, words each class; a class it does not word fails to compile). */
const CLASS_PHRASE: Record<Cause["class"], string> = { ...BAR_PHRASE, unknown: "an unknown cause" };

/** At most `max` characters, keeping the end (the informative part of a path). */
function tail(text: string, max = 32): string {
  return text.length <= max ? text : `…${text.slice(text.length - (max - 1))}`;
}

/** `/usr/local/go/bin/go list -e -json ./...` → "go list"; `git -C x fetch` → "git". */
function commandName(argv: readonly string[]): string | undefined {
  const [first, second] = argv;
  if (!first) return undefined;
  const name = path.basename(first);
  return second && /^[A-Za-z][\w.-]*$/.test(second) ? `${name} ${second}` : name;
}

/** A few words naming what gopls waits on, for the status bar: "filesystem /workspace",
 * "FIFO x.go", "`go list`", "network 127.0.0.1:8080". */
export function shortCause(cause: Cause): string {
  const o = cause.object;
  switch (o.kind) {
    case "path": {
      const where = o.mountPoint ?? o.path;
      return where ? `filesystem ${tail(where)}` : CLASS_PHRASE.filesystem_not_answering;
    }
    case "special_file": {
      const type = o.fileType === "fifo" ? "FIFO" : o.fileType ?? "special file";
      return o.path ? `${type} ${tail(path.basename(o.path))}` : `a ${type}`;
    }
    case "child": {
      const name = commandName(o.argv) ?? commandName(cause.process?.argv ?? []);
      return name ? `\`${tail(name)}\`` : CLASS_PHRASE.child_never_returns;
    }
    case "socket":
      return o.peer ? `network ${tail(o.peer)}` : CLASS_PHRASE.network_peer_not_answering;
    case "none":
      return CLASS_PHRASE[cause.class];
  }
}

/** Status bar text is not Markdown, but `$(name)` in it is an icon: escape those from data. */
function plain(text: string): string {
  return text.replace(/\$\(/g, "\\$(");
}

export interface RenderOptions {
  /** gopls version (from `gopls version`: the status document has none). */
  goplsVersion?: string | undefined;
  /** Is lspguard enabled for this workspace (shim set)? */
  enabled: boolean;
  /** Seconds since the epoch, for "3 min ago" and how long a wait has lasted. */
  now: number;
  /** Format a wall-clock time (seconds since the epoch); injectable for tests. */
  formatTime?: (epochSeconds: number) => string;
}

const ACTIONS = "[Restart](command:lspguard.restart) · [Snapshot](command:lspguard.snapshot) · " +
  "[Report](command:lspguard.openLatestReport) · [Doctor](command:lspguard.doctor)";

/** The status bar item for the sessions serving this workspace (newest first). */
export function renderStatus(sessions: readonly SessionStatus[], options: RenderOptions):
    StatusBarView {
  const session = sessions[0];
  if (!session) {
    return {
      text: options.enabled ? "$(shield) gopls" : "$(circle-slash) lspguard off",
      tooltip: options.enabled
        ? "**lspguard** is enabled for this workspace; no guarded gopls session is running " +
          "yet.\n\n[Run doctor](command:lspguard.doctor) · [Disable](command:lspguard.disable)"
        : "**lspguard** is not enabled for this workspace.\n\n" +
          "[Enable for this workspace](command:lspguard.enable)",
      severity: "ok",
      visible: true,
    };
  }
  const health = deriveHealth(session);
  const cause = causeShown(session, health);
  const nearLimit = session.memory?.nearLimit === true;
  let icon = ICON[health];
  let label: string;
  if (health === "healthy" || health === "busy") {
    label = "gopls";
    // Close to the memory limit: the OOM killer may end gopls soon; say so where it shows.
    const use = nearLimit && session.memory ? memoryUse(session.memory) : undefined;
    if (use) {
      icon = "$(warning)";
      label = `gopls: memory ${use}`;
    }
  } else if (health === "slow") {
    label = `gopls: slow${session.slow ? slowDetail(session.slow) : ""}`;
  } else if (health === "waiting") {
    label = `gopls: waiting${cause ? ` on ${shortCause(cause)}` : ""}`;
  } else if (health === "degraded") {
    const why = cause ? shortCause(cause)
      : session.lastVerdict?.kind === "out_of_memory" ? BAR_PHRASE.out_of_memory : undefined;
    label = `gopls degraded${why ? `: ${why}` : ""}`;
  } else {
    label = `gopls ${health}`;
  }
  // Degraded with a reason means restarts were given up and requests are answered with errors.
  let severity = health === "degraded" && session.degradedReason ? "error" : SEVERITY[health];
  if (nearLimit && severity === "ok" && health !== "stopped") severity = "warning";
  return {
    text: `${icon} ${plain(label)}`,
    tooltip: renderTooltip(session, health, sessions.length - 1, options),
    severity,
    visible: true,
  };
}

/** " (fuse.grpcfuse, 20 ms/op)": what the status bar says about a slow filesystem. */
function slowDetail(slow: SlowFilesystem): string {
  const parts = [slow.fsType, slow.latencyMs !== undefined ? perOp(slow.latencyMs) : undefined]
    .filter((p): p is string => p !== undefined);
  return parts.length > 0 ? ` (${tail(parts.join(", "))})` : "";
}

/** A measured per-operation latency: "2.5 ms/op", "20 ms/op", "1.2 s/op". */
export function perOp(latencyMs: number): string {
  if (latencyMs >= 1000) return `${(latencyMs / 1000).toFixed(1)} s/op`;
  return `${latencyMs < 10 ? latencyMs.toFixed(1) : latencyMs.toFixed(0)} ms/op`;
}

/** "2.1 GB", or "3.0 GiB" with `binary`: as lspguard says them (causes/memory.py
 * `format_bytes`), RSS in decimal units and a limit in binary ones, as limits are set ("3g"). */
export function bytes(n: number, binary = false): string {
  const step = binary ? 1024 : 1000;
  const units = binary ? ["KiB", "MiB", "GiB", "TiB"] : ["kB", "MB", "GB", "TB"];
  if (Math.abs(n) < step) return `${n.toFixed(0)} B`;
  let value = n / step;
  let i = 0;
  while (Math.abs(value) >= step && i < units.length - 1) {
    value /= step;
    i += 1;
  }
  return `${value.toFixed(1)} ${units[i] ?? ""}`;
}

/** "2.9 GB of 3.0 GiB", or undefined when RSS or the limit is unknown. */
function memoryUse(m: MemoryUse): string | undefined {
  return m.rssBytes !== undefined && m.limitBytes !== undefined
    ? `${bytes(m.rssBytes)} of ${bytes(m.limitBytes, true)}` : undefined;
}

/** The memory row: "gopls 2.1 GB of a 3.0 GiB limit (65%) · peak ... · GOMEMLIMIT ...". */
function memoryText(m: MemoryUse): string | undefined {
  const parts: string[] = [];
  if (m.rssBytes !== undefined) {
    const share = m.limitBytes !== undefined
      ? ` (${String(Math.round((100 * m.rssBytes) / m.limitBytes))}%)` : "";
    const of = m.limitBytes !== undefined ? ` of a ${bytes(m.limitBytes, true)} limit${share}`
      : ", no memory limit found";
    parts.push(m.nearLimit ? `$(warning) **gopls ${bytes(m.rssBytes)}${of}: near the limit**`
      : `gopls ${bytes(m.rssBytes)}${of}`);
  } else if (m.limitBytes !== undefined) {
    parts.push(`limit ${bytes(m.limitBytes, true)}`);
  }
  if (m.peakRssBytes !== undefined && m.peakRssBytes > (m.rssBytes ?? 0)) {
    parts.push(`peak ${bytes(m.peakRssBytes)}`);
  }
  if (m.oomKills > 0) {
    parts.push(`**${String(m.oomKills)} OOM kill${m.oomKills === 1 ? "" : "s"}**`);
  }
  if (m.gomemlimit) parts.push(`GOMEMLIMIT=${code(m.gomemlimit)}`);
  if (m.limitSource && m.limitBytes !== undefined) parts.push(esc(m.limitSource));
  return parts.length > 0 ? parts.join(" · ") : undefined;
}

/** The slow filesystem, said in the tooltip: sentence, fix, since when, and that nothing is
 * wrong with gopls. */
function slowParagraphs(slow: SlowFilesystem, now: number): string[] {
  const where = `${slow.role ? `${slow.role} at ` : ""}${slow.mountPoint}` +
                (slow.fsType ? ` (${slow.fsType})` : "");
  const out = [prose(slow.sentence ?? `The filesystem of ${where} is slow.`)];
  if (slow.fix) out.push(`**Fix:** ${prose(slow.fix)}`);
  const since = slow.since !== undefined && slow.since <= now
    ? `Slow for **${duration(now - slow.since)}**. ` : "";
  out.push(`${since}gopls is working, only slowly: lspguard lets requests wait for it and ` +
           "restarts nothing.");
  return out.flatMap((p) => [p, ""]);
}

/** The slow row: "`/workspace` · fuse.grpcfuse · grpcfuse · the workspace · **20 ms/op**". */
function slowRow(slow: SlowFilesystem): string {
  const parts = [slow.mountPoint ? code(slow.mountPoint) : undefined,
                 ...[slow.fsType, slow.source, slow.role].map((p) => (p ? esc(p) : undefined)),
                 slow.latencyMs !== undefined ? `**${perOp(slow.latencyMs)}**` : undefined];
  return parts.filter((p): p is string => p !== undefined).join(" · ");
}

/** The cause the item shows: the session's while it waits or is degraded, else none. */
function causeShown(s: SessionStatus, health: Health): Cause | undefined {
  return health === "waiting" || health === "degraded" ? s.cause : undefined;
}

/** Seconds the cause has been waited on, as of `now`. */
export function waitedSeconds(cause: Cause, now: number): number | undefined {
  const sinceStart = cause.since !== undefined && cause.since <= now ? now - cause.since
    : undefined;
  if (sinceStart === undefined) return cause.waitedS;
  return Math.max(sinceStart, cause.waitedS ?? 0);
}

function causeParagraphs(cause: Cause, health: Health, now: number): string[] {
  const out: string[] = [];
  out.push(prose(cause.sentence ?? `gopls is waiting on ${shortCause(cause)}.`));
  if (cause.fix) out.push(`**Fix:** ${prose(cause.fix)}`);
  const waited = waitedSeconds(cause, now);
  const lines: string[] = [];
  if (waited !== undefined) lines.push(`Waiting for **${duration(waited)}**.`);
  if (health === "waiting") {
    lines.push("lspguard will resume by itself when this clears; meanwhile it answers the " +
               "editor at once.");
  }
  if (!cause.restartHelps) lines.push("Restarting gopls will not help: the cause is outside it.");
  if (lines.length > 0) out.push(lines.join(" "));
  return out.flatMap((p) => [p, ""]);
}

export function renderTooltip(s: SessionStatus, health: Health, others: number,
                              options: RenderOptions): string {
  const fmt = options.formatTime ?? formatLocalTime;
  const cause = causeShown(s, health);
  const slow = health === "slow" ? s.slow : undefined;
  const memory = s.memory ? memoryText(s.memory) : undefined;
  const rows: [string, string][] = [
    ["gopls", code(options.goplsVersion ?? "unknown")],
    ["state", `${esc(s.state)} · proxy pid ${String(s.pid)}` +
              (s.backend.pid !== undefined ? ` · gopls pid ${String(s.backend.pid)}` : "")],
  ];
  if (cause) {
    const who = cause.process?.role;
    const pid = cause.process?.pid;
    rows.push(["waiting on", prose(shortCause(cause), true) +
               (who ? ` · ${prose(who, true)}` : "") +
               (pid !== undefined ? ` pid ${String(pid)}` : "") +
               (cause.object.fsType ? ` · ${esc(cause.object.fsType)}` : "")]);
  }
  if (slow) rows.push(["slow filesystem", slowRow(slow)]);
  if (memory) rows.push(["memory", memory]);
  rows.push(
    ["generation", String(s.backend.generation)],
    ["restarts", String(s.restarts)],
    ["last verdict", s.lastVerdict ? verdictText(s.lastVerdict, options.now, fmt) : "none"],
  );
  if (s.backend.label && s.backend.label !== "primary") {
    rows.push(["backend", esc(s.backend.label)]);
  }
  if (s.degradedReason) rows.push(["degraded", esc(s.degradedReason)]);
  if (s.uptimeS !== undefined) rows.push(["uptime", duration(s.uptimeS)]);
  const overdue = s.pending.filter((p) => p.ageMs >= BUSY_AFTER_MS);
  if (overdue.length > 0) {
    const oldest = overdue.reduce((a, b) => (a.ageMs >= b.ageMs ? a : b));
    rows.push(["pending", `${String(overdue.length)} request(s), oldest ` +
                          `${code(oldest.method)} for ${ms(oldest.ageMs)}`]);
  }
  const lines = [
    `**lspguard** · gopls is **${health}**`,
    "",
    ...(cause ? causeParagraphs(cause, health, options.now) : []),
    ...(slow ? slowParagraphs(slow, options.now) : []),
    "| | |",
    "|:--|:--|",
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    "",
  ];
  const methods = Object.entries(s.latency)
    .sort(([, a], [, b]) => b.count - a.count || b.p99Ms - a.p99Ms)
    .slice(0, 6);
  if (methods.length > 0) {
    lines.push("| method | n | p50 | p99 |", "|:--|--:|--:|--:|",
               ...methods.map(([m, l]) => `| ${code(m)} | ${String(l.count)} | ${ms(l.p50Ms)} | ` +
                                          `${ms(l.p99Ms)} |`),
               "");
  } else {
    lines.push("_no request latencies yet_", "");
  }
  if (others > 0) lines.push(`_${String(others)} older session(s) for this workspace_`, "");
  lines.push(ACTIONS);
  return lines.join("\n");
}

function verdictText(v: Verdict, now: number, fmt: (t: number) => string): string {
  const when = v.at !== undefined ? ` (${fmt(v.at)}, ${ago(now - v.at)})` : "";
  return `${code(v.kind)}: ${esc(v.summary)}${when}`;
}

export function ms(value: number): string {
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(1)} ms`;
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${String(h)}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${String(m)}m ${String(r).padStart(2, "0")}s`;
  return `${String(r)}s`;
}

export function ago(seconds: number): string {
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${String(Math.floor(seconds / 60))} min ago`;
  if (seconds < 86_400) return `${String(Math.floor(seconds / 3600))} h ago`;
  return `${String(Math.floor(seconds / 86_400))} d ago`;
}

function formatLocalTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Markdown-escape text from a status document (it goes into a table cell). */
export function esc(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+!|<>~]/g, (c) => `\\${c}`).replace(/\r?\n/g, " ");
}

function code(text: string): string {
  return "`" + text.replace(/`/g, "'").replace(/\|/g, "\\|") + "`";
}

/** Text from lspguard that may quote commands in backticks ("gopls's `go list`"): the quoted
 * parts become code spans, the rest is escaped. Unbalanced backticks: all of it is escaped.
 * `inTable`: it goes into a table cell (where `|` must be escaped, in code spans too). */
export function prose(text: string, inTable = false): string {
  const parts = text.split("`");
  if (parts.length % 2 === 0) return esc(text);
  return parts.map((part, i) => {
    if (i % 2 === 0) return esc(part);
    const flat = part.replace(/\r?\n/g, " ");
    return inTable ? code(flat) : "`" + flat + "`";
  }).join("");
}

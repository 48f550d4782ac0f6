// What the status bar shows for the sessions of this workspace: a health word, an icon, and a
// Markdown tooltip (gopls version, generation, restarts, last verdict, per-method p50/p99).
// Pure functions of the parsed status documents, so the tooltip in the README screenshot is
// exactly what this code renders from a real status file.

import type { StatusBarView, StatusSeverity } from "./host";
import type { SessionStatus, Verdict } from "./statusReader";

export type Health = "healthy" | "busy" | "restarting" | "degraded" | "hung" | "stopped";

/** A client request this old, with the server otherwise running, counts as "busy". */
export const BUSY_AFTER_MS = 2_000;

const RESTARTING = new Set(["restarting", "recovering", "replaying", "respawning"]);
const HUNG = new Set(["hung", "stuck", "deadlocked", "blocked", "exhausted", "failed",
                      "gave_up", "budget_exhausted"]);
const DEGRADED = new Set(["degraded", "fallback"]);
const STARTING = new Set(["starting", "initializing", "busy", "snapshotting"]);
const STOPPED = new Set(["stopping", "exited", "stopped"]);
const HEALTHY = new Set(["running", "ready", "healthy", "idle"]);

export function deriveHealth(s: SessionStatus): Health {
  const state = s.state.toLowerCase();
  if (RESTARTING.has(state)) return "restarting";
  if (HUNG.has(state)) return "hung";
  if (STOPPED.has(state)) return "stopped";
  if (DEGRADED.has(state) || s.degradedReason || s.backend.fallback) return "degraded";
  if (STARTING.has(state) || !HEALTHY.has(state)) return "busy";
  const overdue = s.pending.some((p) => p.direction !== "server->client" &&
                                        p.direction !== "s2c" && p.ageMs >= BUSY_AFTER_MS);
  return overdue ? "busy" : "healthy";
}

const ICON: Record<Health, string> = {
  healthy: "$(pass)",
  busy: "$(sync~spin)",
  restarting: "$(sync~spin)",
  degraded: "$(warning)",
  hung: "$(error)",
  stopped: "$(circle-slash)",
};

const SEVERITY: Record<Health, StatusSeverity> = {
  healthy: "ok",
  busy: "ok",
  restarting: "warning",
  degraded: "warning",
  hung: "error",
  stopped: "ok",
};

const HEALTH_WORDS: Record<Health, string> = {
  healthy: "healthy",
  busy: "busy",
  restarting: "restarting",
  degraded: "degraded",
  hung: "hung",
  stopped: "stopped",
};

export interface RenderOptions {
  /** gopls version learned elsewhere (e.g. `gopls version`), when the status has none. */
  goplsVersion?: string | undefined;
  /** Is lspguard enabled for this workspace (shim set)? */
  enabled: boolean;
  /** Seconds since the epoch, for "3 min ago". */
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
  const label = health === "healthy" || health === "busy" ? "gopls"
    : health === "degraded"
      ? session.backend.fallback ? "gopls (fallback)" : "gopls degraded"
      : `gopls ${health}`;
  // Degraded on a fallback backend still answers; degraded with no backend at all (the restart
  // budget is spent) does not: that is an error.
  const severity = health === "degraded" && session.degradedReason && !session.backend.fallback
    ? "error" : SEVERITY[health];
  return {
    text: `${ICON[health]} ${label}`,
    tooltip: renderTooltip(session, health, sessions.length - 1, options),
    severity,
    visible: true,
  };
}

export function renderTooltip(s: SessionStatus, health: Health, others: number,
                              options: RenderOptions): string {
  const fmt = options.formatTime ?? formatLocalTime;
  const version = s.backend.version ?? options.goplsVersion ?? "unknown";
  const rows: [string, string][] = [
    ["gopls", code(version)],
    ["state", `${esc(s.state)} · proxy pid ${String(s.pid)}` +
              (s.backend.pid !== undefined ? ` · gopls pid ${String(s.backend.pid)}` : "")],
    ["generation", String(s.backend.generation)],
    ["restarts", String(s.restarts)],
    ["last verdict", s.lastVerdict ? verdictText(s.lastVerdict, options.now, fmt) : "none"],
  ];
  if (s.backend.fallback) rows.push(["backend", `fallback: ${esc(s.backend.fallback)}`]);
  else if (s.backend.label && s.backend.label !== "primary") {
    rows.push(["backend", esc(s.backend.label)]);
  }
  if (s.degradedReason) rows.push(["degraded", esc(s.degradedReason)]);
  if (s.uptimeS !== undefined) rows.push(["uptime", duration(s.uptimeS)]);
  const overdue = s.pending.filter((p) => p.ageMs >= BUSY_AFTER_MS);
  if (overdue.length > 0) {
    const oldest = overdue.reduce((a, b) => (a.ageMs >= b.ageMs ? a : b));
    rows.push(["waiting", `${String(overdue.length)} request(s), oldest ` +
                          `${code(oldest.method)} for ${ms(oldest.ageMs)}`]);
  }
  const lines = [
    `**lspguard** · gopls is **${HEALTH_WORDS[health]}**`,
    "",
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

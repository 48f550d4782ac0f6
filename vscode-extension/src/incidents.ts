// Incidents: a new `last_verdict` in a session's status -> one notification ("Open report",
// "Copy bundle path"); and finding the newest report for "Open latest incident report", from the
// status documents and `lspguard bundles --json`. Both sources are parsed defensively: a field
// that is missing or of another type is ignored, not trusted.

import * as path from "node:path";

import type { Host } from "./host";
import type { LspguardSettings } from "./settings";
import type { SessionStatus, Verdict } from "./statusReader";
import { verdictPhrase } from "./statusReader";

export const BASELINE_KEY = "lspguard.incidentBaseline";
export const OPEN_REPORT = "Open report";
export const COPY_BUNDLE = "Copy bundle path";

export interface Incident {
  pid: number;
  verdict: Verdict;
  /** Set when lspguard gave up restarting (e.g. gopls ran out of memory twice): why, and what
   * to fix. */
  degradedReason?: string;
}

/** lspguard publishes a verdict at once and its bundle when it is written (seconds later, while
 * gopls restarts): a verdict without a bundle is held back this long, so that its notification
 * can offer "Open report". */
export const BUNDLE_WAIT_S = 30;

/** One verdict: the same one before and after its bundle is filled in. */
function key(pid: number, v: Verdict): string {
  return `${String(pid)}:${v.kind}:${String(v.at ?? "")}`;
}

/** Remembers which verdicts the user has been told about (newer than a persisted baseline, so
 * reloading the window does not repeat old news). */
export class IncidentWatcher {
  private readonly seen = new Set<string>();
  private baseline: number;

  constructor(private readonly host: Host, now: number,
              private readonly clock: () => number = (): number => Date.now() / 1000) {
    const stored = host.workspaceState.get(BASELINE_KEY);
    this.baseline = typeof stored === "number" ? stored : now;
  }

  /** The verdicts in `sessions` not reported before. */
  newIncidents(sessions: readonly SessionStatus[]): Incident[] {
    const out: Incident[] = [];
    for (const s of sessions) {
      const v = s.lastVerdict;
      if (!v) continue;
      const k = key(s.pid, v);
      if (this.seen.has(k)) continue;
      // A verdict without a time is new if we have not seen it in this window.
      if (v.at !== undefined && v.at <= this.baseline) {
        this.seen.add(k);
        continue;
      }
      // Its bundle is still being written: announce it on a later poll, with "Open report".
      if (!v.bundle && v.at !== undefined && this.clock() - v.at < BUNDLE_WAIT_S) continue;
      this.seen.add(k);
      out.push({ pid: s.pid, verdict: v,
                 ...(s.degradedReason ? { degradedReason: s.degradedReason } : {}) });
    }
    const newest = Math.max(this.baseline, ...out.map((i) => i.verdict.at ?? 0));
    if (newest > this.baseline) {
      this.baseline = newest;
      void this.host.workspaceState.update(BASELINE_KEY, newest);
    }
    return out;
  }
}

export function reportPath(bundle: string): string {
  return bundle.endsWith(".html") ? bundle : path.join(bundle, "report.html");
}

/** Tell the user about an incident; act on the button they choose. */
export async function notifyIncident(host: Host, incident: Incident): Promise<void> {
  const v = incident.verdict;
  const message = `lspguard: gopls ${verdictPhrase(v.kind)}: ${v.summary}` +
    (incident.degradedReason
      ? `${endSentence(v.summary)} ${capitalized(incident.degradedReason)}` : "");
  const actions = v.bundle ? [OPEN_REPORT, COPY_BUNDLE] : [];
  const choice = await host.warn(message, ...actions);
  if (!v.bundle) return;
  if (choice === OPEN_REPORT) await host.openReport(reportPath(v.bundle));
  if (choice === COPY_BUNDLE) await host.copyToClipboard(v.bundle);
}

/** "" when `text` already ends a sentence, else ".". */
export function endSentence(text: string): string {
  return /[.!?]\s*$/.test(text) ? "" : ".";
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export interface BundleInfo {
  path: string;
  /** Seconds since the epoch, when known. */
  at?: number;
  kind?: string;
  summary?: string;
}

function toEpoch(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) {
    return value > 1e12 ? value / 1000 : value; // milliseconds, if it looks like them
  }
  if (typeof value === "string") {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t / 1000;
  }
  return undefined;
}

/** The bundles in `lspguard bundles --json` output: a list (or {"bundles": [...]}) of paths or
 * objects with a path (`path`, `bundle`, `dir`) and maybe a time (`at`, `created`, ...). */
export function parseBundles(output: string): BundleInfo[] {
  let doc: unknown;
  try {
    doc = JSON.parse(output);
  } catch {
    return [];
  }
  const list = Array.isArray(doc) ? doc
    : typeof doc === "object" && doc !== null && Array.isArray((doc as { bundles?: unknown }).bundles)
      ? (doc as { bundles: unknown[] }).bundles : [];
  const out: BundleInfo[] = [];
  for (const item of list) {
    if (typeof item === "string") {
      out.push({ path: item });
      continue;
    }
    if (typeof item !== "object" || item === null) continue;
    const o = item as Record<string, unknown>;
    const verdict = typeof o.verdict === "object" && o.verdict !== null
      ? o.verdict as Record<string, unknown> : {};
    const p = [o.path, o.bundle, o.dir, o.directory].find((x) => typeof x === "string");
    if (typeof p !== "string") continue;
    const at = [o.at, o.created, o.created_at, o.time, o.mtime, verdict.at]
      .map(toEpoch).find((x) => x !== undefined);
    const kind = [o.kind, verdict.kind].find((x) => typeof x === "string");
    const summary = [o.summary, o.sentence, verdict.summary].find((x) => typeof x === "string");
    out.push({ path: p, ...(at !== undefined ? { at } : {}),
               ...(typeof kind === "string" ? { kind } : {}),
               ...(typeof summary === "string" ? { summary } : {}) });
  }
  return out;
}

/** The newest bundle: from the sessions' last verdicts and `lspguard bundles --json`. */
export async function latestBundle(host: Host, settings: LspguardSettings,
                                   sessions: readonly SessionStatus[]):
    Promise<BundleInfo | undefined> {
  const candidates: BundleInfo[] = [];
  for (const s of sessions) {
    // The session's recent bundles (no times: oldest first, so they rank by position), then
    // its last verdict's bundle, which has a time.
    for (const bundle of s.bundles) candidates.push({ path: bundle });
    const v = s.lastVerdict;
    if (v?.bundle) {
      candidates.push({ path: v.bundle, kind: v.kind, summary: v.summary,
                        ...(v.at !== undefined ? { at: v.at } : {}) });
    }
  }
  const listed = await host.exec(settings.path, ["bundles", "--json"], { timeoutMs: 20_000 });
  if (listed.code === 0) {
    candidates.push(...parseBundles(listed.stdout));
  } else {
    host.log(`lspguard bundles --json: ${listed.error ?? listed.stderr.trim()}`);
  }
  if (candidates.length === 0) return undefined;
  // Newest by time; a bundle without a time counts as older than any with one (among those, the
  // later candidate wins: a session's `bundles` list is oldest first).
  return candidates.reduce((best, c) => ((c.at ?? -1) >= (best.at ?? -1) ? c : best));
}

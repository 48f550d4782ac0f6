// Keeps the status bar current: every few seconds (never overlapping, never blocking: all reads
// are async) it reads the status files, picks this workspace's sessions, renders the item,
// announces new incidents, and says once per session that gopls is slow (not hung).

import type { Host } from "./host";
import { IncidentWatcher, notifyIncident } from "./incidents";
import { notifySlow, SlowNotices } from "./slowNotice";
import type { SessionStatus } from "./statusReader";
import { readSessions, sessionsForWorkspace } from "./statusReader";
import { renderStatus } from "./statusView";

export interface MonitorDeps {
  host: Host;
  /** Session dirs to read (may change: `lspguard paths` answers later). */
  dirs: () => readonly string[];
  enabled: () => boolean;
  intervalMs?: number;
  now?: () => number;
  read?: (dirs: readonly string[]) => Promise<SessionStatus[]>;
}

/** `gopls version` output → "v0.21.1". */
export function parseGoplsVersion(output: string): string | undefined {
  for (const line of output.split("\n")) {
    const m = /gopls\S*\s+(v\d+\.\d+\.\d+\S*)/.exec(line) ?? /^\s*(v\d+\.\d+\.\d+\S*)\s*$/.exec(line);
    if (m?.[1]) return m[1];
  }
  return /\b(v\d+\.\d+\.\d+\S*)/.exec(output)?.[1];
}

export class StatusMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private latest: SessionStatus[] = [];
  private readonly versions = new Map<string, Promise<string | undefined>>();
  private readonly incidents: IncidentWatcher;
  private readonly slowNotices: SlowNotices;
  private readonly now: () => number;

  constructor(private readonly deps: MonitorDeps) {
    this.now = deps.now ?? ((): number => Date.now() / 1000);
    this.incidents = new IncidentWatcher(deps.host, this.now(), this.now);
    this.slowNotices = new SlowNotices(deps.host);
  }

  /** The sessions serving this workspace at the last poll, newest first. */
  get sessions(): SessionStatus[] {
    return this.latest;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Poll now (e.g. after a command); a poll already running makes this a no-op. */
  refresh(): void {
    if (this.stopped) return;
    this.schedule(0);
  }

  private schedule(delay: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.tick();
    }, delay);
  }

  private async tick(): Promise<void> {
    try {
      await this.pollOnce();
    } finally {
      if (!this.stopped) this.schedule(this.deps.intervalMs ?? 2_000);
    }
  }

  /** One poll: read, render, announce. Returns this workspace's sessions. */
  async pollOnce(): Promise<SessionStatus[]> {
    if (this.running) return this.latest;
    this.running = true;
    try {
      const { host } = this.deps;
      const read = this.deps.read ?? ((d: readonly string[]) => readSessions(d));
      let all: SessionStatus[] = [];
      try {
        all = await read(this.deps.dirs());
      } catch (err) {
        host.log(`cannot read lspguard status files: ${String(err)}`);
      }
      const mine = sessionsForWorkspace(all, host.workspaceFolders());
      this.latest = mine;
      const first = mine[0];
      // The status document has no gopls version: ask the binary (once per binary).
      const goplsVersion = first ? await this.goplsVersion(first.backend.argv[0]) : undefined;
      host.setStatus(renderStatus(mine, { enabled: this.deps.enabled(), now: this.now(),
                                          goplsVersion }));
      for (const incident of this.incidents.newIncidents(mine)) {
        void notifyIncident(host, incident);
      }
      for (const slow of this.slowNotices.newlySlow(mine)) void notifySlow(host, slow);
      return mine;
    } finally {
      this.running = false;
    }
  }

  /** `<gopls> version`, once per binary; undefined if it cannot be run. */
  private goplsVersion(binary: string | undefined): Promise<string | undefined> {
    if (!binary) return Promise.resolve(undefined);
    let version = this.versions.get(binary);
    if (!version) {
      version = this.deps.host.exec(binary, ["version"], { timeoutMs: 10_000 })
        .then((r) => (r.code === 0 ? parseGoplsVersion(r.stdout) : undefined));
      this.versions.set(binary, version);
    }
    return version;
  }
}

import { describe, expect, it } from "vitest";

import {
  BASELINE_KEY, BUNDLE_WAIT_S, COPY_BUNDLE, IncidentWatcher, notifyIncident, OPEN_REPORT,
  parseBundles, reportPath,
} from "../src/incidents";
import type { SessionStatus, Verdict } from "../src/statusReader";
import { FakeHost } from "./fakeHost";

function withVerdict(pid: number, verdict?: Verdict): SessionStatus {
  return { pid, state: "running", workspaceFolders: [], backend: { argv: [], generation: 1 },
           restarts: 0, latency: {}, pending: [], statusFile: "", bundles: [],
           ...(verdict ? { lastVerdict: verdict } : {}) };
}

describe("IncidentWatcher", () => {
  it("announces each new verdict once, never old ones, and remembers across reloads", () => {
    const host = new FakeHost();
    const w = new IncidentWatcher(host, 1000);
    const old = { kind: "crashed", summary: "old", at: 900 };
    const fresh = { kind: "deadlocked", summary: "new", at: 1100, bundle: "/b/1" };
    expect(w.newIncidents([withVerdict(1, old)])).toEqual([]);
    expect(w.newIncidents([withVerdict(1, fresh), withVerdict(2)])).toEqual(
      [{ pid: 1, verdict: fresh }]);
    expect(w.newIncidents([withVerdict(1, fresh)])).toEqual([]);
    expect(host.state.get(BASELINE_KEY)).toBe(1100);
    const reloaded = new IncidentWatcher(host, 5000); // stored baseline wins over "now"
    expect(reloaded.newIncidents([withVerdict(1, fresh)])).toEqual([]);
    const later = { kind: "stopped", summary: "SIGSTOP", at: 1200 };
    expect(reloaded.newIncidents([withVerdict(1, later)])).toHaveLength(1);
  });

  it("holds a verdict back until its bundle is written, then announces it once", () => {
    let now = 1100;
    const w = new IncidentWatcher(new FakeHost(), 1000, () => now);
    const pending = { kind: "stopped", summary: "SIGSTOP", at: 1100 };
    expect(w.newIncidents([withVerdict(1, pending)])).toEqual([]); // bundle still being written
    now = 1103;
    const written = { ...pending, bundle: "/b/stopped" };
    expect(w.newIncidents([withVerdict(1, written)])).toEqual([{ pid: 1, verdict: written }]);
    expect(w.newIncidents([withVerdict(1, written)])).toEqual([]);
    const never = { kind: "crashed", summary: "exit 2", at: 1110 }; // no bundle ever comes
    now = 1111;
    expect(w.newIncidents([withVerdict(1, never)])).toEqual([]);
    now = 1110 + BUNDLE_WAIT_S;
    expect(w.newIncidents([withVerdict(1, never)])).toEqual([{ pid: 1, verdict: never }]);
  });

  it("a verdict without a time is announced once per window", () => {
    const w = new IncidentWatcher(new FakeHost(), 1000);
    const v = { kind: "protocol_error", summary: "bad frame" };
    expect(w.newIncidents([withVerdict(3, v)])).toHaveLength(1);
    expect(w.newIncidents([withVerdict(3, v)])).toHaveLength(0);
  });
});

describe("notifyIncident", () => {
  it("offers Open report and Copy bundle path", async () => {
    const host = new FakeHost();
    host.answer = OPEN_REPORT;
    const verdict = { kind: "blocked_in_kernel", summary: "gopls is blocked in read(2)",
                      at: 1, bundle: "/state/bundles/x" };
    await notifyIncident(host, { pid: 1, verdict });
    expect(host.messages[0]).toEqual({
      level: "warn",
      message: "lspguard: gopls is blocked in the kernel: gopls is blocked in read(2)",
      actions: [OPEN_REPORT, COPY_BUNDLE] });
    expect(host.reportsOpened).toEqual(["/state/bundles/x/report.html"]);
    host.answer = COPY_BUNDLE;
    await notifyIncident(host, { pid: 1, verdict });
    expect(host.clipboard).toBe("/state/bundles/x");
  });

  it("out of memory: in words; when restarts were given up, with the fix", async () => {
    const host = new FakeHost();
    const verdict = { kind: "out_of_memory", at: 1, bundle: "/b/oom",
                      summary: "the kernel's OOM killer ended gopls at 3.0 GiB; the " +
                               "container's memory limit is 3.0 GiB" };
    await notifyIncident(host, { pid: 1, verdict });
    expect(host.messages[0]?.message).toBe(
      "lspguard: gopls ran out of memory: the kernel's OOM killer ended gopls at 3.0 GiB; the " +
      "container's memory limit is 3.0 GiB");
    const w = new IncidentWatcher(host, 0, () => 100);
    const degraded = { ...withVerdict(1, verdict), state: "degraded" as const,
                       degradedReason: "the kernel's OOM killer ended gopls again. Fix: " +
                                       "raise the container's memory, or narrow the " +
                                       "workspace." };
    const [incident] = w.newIncidents([degraded]);
    expect(incident?.degradedReason).toBe(degraded.degradedReason);
    if (incident) await notifyIncident(host, incident);
    expect(host.messages[1]).toMatchObject({
      level: "warn",
      message: "lspguard: gopls ran out of memory: the kernel's OOM killer ended gopls at 3.0 " +
               "GiB; the container's memory limit is 3.0 GiB. The kernel's OOM killer ended " +
               "gopls again. Fix: raise the container's memory, or narrow the workspace." });
  });

  it("without a bundle there is nothing to open", async () => {
    const host = new FakeHost();
    await notifyIncident(host, { pid: 1, verdict: { kind: "crashed", summary: "exit 2" } });
    expect(host.messages[0]?.actions).toEqual([]);
  });
});

describe("parseBundles", () => {
  it("reads the shapes `lspguard bundles --json` may print", () => {
    expect(parseBundles("not json")).toEqual([]);
    expect(parseBundles('{"other": 1}')).toEqual([]);
    expect(parseBundles('["/a", 5, null]')).toEqual([{ path: "/a" }]);
    expect(parseBundles(JSON.stringify({ bundles: [
      { path: "/b", at: 1_700_000_000, kind: "crashed", summary: "s" },
      { path: "/b2", name: "x", created_at: 1_700_000_001, kind: "manual", sentence: "S.",
        size_bytes: 5, backend_pid: 7 },  // what `lspguard bundles --json` prints
      { bundle: "/c", created: "2024-01-02T03:04:05Z" },
      { dir: "/d", mtime: 1_700_000_000_123 },
      { directory: "/e", verdict: { kind: "stopped", summary: "T", at: 7 } },
      { nothing: "here" },
    ] }))).toEqual([
      { path: "/b", at: 1_700_000_000, kind: "crashed", summary: "s" },
      { path: "/b2", at: 1_700_000_001, kind: "manual", summary: "S." },
      { path: "/c", at: Date.parse("2024-01-02T03:04:05Z") / 1000 },
      { path: "/d", at: 1_700_000_000.123 },
      { path: "/e", at: 7, kind: "stopped", summary: "T" },
    ]);
  });

  it("reportPath", () => {
    expect(reportPath("/b")).toBe("/b/report.html");
    expect(reportPath("/b/report.html")).toBe("/b/report.html");
  });
});

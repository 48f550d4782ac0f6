import { describe, expect, it } from "vitest";

import type { SessionStatus } from "../src/statusReader";
import { ago, deriveHealth, duration, esc, ms, renderStatus } from "../src/statusView";

function session(overrides: Partial<SessionStatus> = {}): SessionStatus {
  return {
    pid: 4242, state: "running", startedAt: 1_700_000_000, uptimeS: 3725,
    workspaceFolders: ["file:///ws/project"],
    backend: { argv: ["/usr/bin/gopls"], pid: 4243, generation: 2 },
    restarts: 1,
    latency: {
      "textDocument/hover": { count: 40, p50Ms: 3.21, p99Ms: 48.5, maxMs: 60 },
      initialize: { count: 1, p50Ms: 312.4, p99Ms: 312.4 },
      "textDocument/completion": { count: 12, p50Ms: 21, p99Ms: 15_400 },
    },
    pending: [],
    bundles: [],
    statusFile: "/run/sessions/4242.json",
    ...overrides,
  };
}

const opts = { enabled: true, now: 1_700_000_600, formatTime: () => "12:00:00" };

describe("deriveHealth", () => {
  const cases: [Partial<SessionStatus>, string][] = [
    [{ state: "running" }, "healthy"],
    [{ state: "starting" }, "busy"],
    [{ state: "initializing" }, "busy"],
    [{ state: "running", pending: [{ direction: "client->server", method: "x", ageMs: 2500 }] },
     "busy"],
    [{ state: "running", pending: [{ direction: "server->client", method: "x", ageMs: 9e6 }] },
     "healthy"],
    [{ state: "restarting" }, "restarting"],
    [{ state: "degraded" }, "degraded"],
    [{ state: "running", backend: { argv: [], generation: 3, fallback: "gopls-v0.15" } },
     "degraded"],
    [{ state: "degraded", degradedReason: "budget spent" }, "degraded"],
    [{ state: "hung" }, "hung"],
    [{ state: "exhausted" }, "hung"],
    [{ state: "exited" }, "stopped"],
    [{ state: "something-new" }, "busy"],
  ];
  for (const [overrides, health] of cases) {
    it(`${JSON.stringify(overrides)} -> ${health}`, () => {
      expect(deriveHealth(session(overrides))).toBe(health);
    });
  }
});

describe("renderStatus", () => {
  it("healthy: icon, tooltip with version, generation, restarts, verdict, latencies", () => {
    const view = renderStatus([session({
      lastVerdict: { kind: "deadlocked", summary: "no answer to lspguard/ping in 5 s | *x*",
                     at: 1_700_000_300, bundle: "/b" },
    })], { ...opts, goplsVersion: "v0.21.1" });
    expect(view.text).toBe("$(pass) gopls");
    expect(view.severity).toBe("ok");
    const t = view.tooltip;
    expect(t).toContain("gopls is **healthy**");
    expect(t).toContain("| gopls | `v0.21.1` |");
    expect(t).toContain("| generation | 2 |");
    expect(t).toContain("| restarts | 1 |");
    expect(t).toContain("| last verdict | `deadlocked`: no answer to lspguard/ping in 5 s " +
                        "\\| \\*x\\* (12:00:00, 5 min ago) |");
    expect(t).toContain("| uptime | 1h 02m |");
    // most used first
    expect(t.indexOf("textDocument/hover")).toBeLessThan(t.indexOf("textDocument/completion"));
    expect(t).toContain("| `textDocument/hover` | 40 | 3.2 ms | 48.5 ms |");
    expect(t).toContain("| `textDocument/completion` | 12 | 21.0 ms | 15.4 s |");
    expect(t).toContain("[Restart](command:lspguard.restart)");
  });

  it("degraded: on a fallback backend a warning, with no backend left an error", () => {
    const fallback = renderStatus([session({ backend: { argv: [], generation: 3,
                                                        label: "fallback gopls-0.15",
                                                        fallback: "gopls-0.15" } })], opts);
    expect(fallback).toMatchObject({ text: "$(warning) gopls (fallback)", severity: "warning" });
    expect(fallback.tooltip).toContain("| backend | fallback: gopls-0.15 |");
    const spent = renderStatus([session({ state: "degraded",
                                          degradedReason: "gopls is not running: it failed 3 " +
                                                          "times within 300 s" })], opts);
    expect(spent).toMatchObject({ text: "$(warning) gopls degraded", severity: "error" });
    expect(spent.tooltip).toContain("| degraded | gopls is not running: it failed 3 times " +
                                    "within 300 s |");
    expect(renderStatus([session({ backend: { argv: [], generation: 2,
                                              label: "primary + hang overlay" } })], opts)
      .tooltip).toContain("| backend | primary \\+ hang overlay |");
  });

  it("status version wins; unknown when neither", () => {
    expect(renderStatus([session({ backend: { argv: [], generation: 1, version: "v1.2.3" } })],
                        { ...opts, goplsVersion: "v9" }).tooltip).toContain("`v1.2.3`");
    expect(renderStatus([session()], opts).tooltip).toContain("| gopls | `unknown` |");
  });

  it("hung is an error, degraded a warning, restarting spins", () => {
    expect(renderStatus([session({ state: "hung" })], opts)).toMatchObject(
      { text: "$(error) gopls hung", severity: "error" });
    expect(renderStatus([session({ state: "degraded" })], opts)).toMatchObject(
      { text: "$(warning) gopls degraded", severity: "warning" });
    expect(renderStatus([session({ state: "restarting" })], opts)).toMatchObject(
      { text: "$(sync~spin) gopls restarting", severity: "warning" });
    const busy = renderStatus([session({ pending: [
      { direction: "client->server", method: "textDocument/codeAction", ageMs: 4200 }] })], opts);
    expect(busy.text).toBe("$(sync~spin) gopls");
    expect(busy.tooltip).toContain("| waiting | 1 request(s), oldest `textDocument/codeAction` " +
                                   "for 4200 ms |");
  });

  it("no session: enabled vs off", () => {
    expect(renderStatus([], opts).text).toBe("$(shield) gopls");
    const off = renderStatus([], { ...opts, enabled: false });
    expect(off.text).toBe("$(circle-slash) lspguard off");
    expect(off.tooltip).toContain("command:lspguard.enable");
  });

  it("mentions older sessions and missing latencies", () => {
    const t = renderStatus([session({ latency: {} }), session({ pid: 1 })], opts).tooltip;
    expect(t).toContain("_no request latencies yet_");
    expect(t).toContain("_1 older session(s) for this workspace_");
  });
});

describe("formatting", () => {
  it("ms, duration, ago, esc", () => {
    expect([ms(0.42), ms(250), ms(12_345)]).toEqual(["0.4 ms", "250 ms", "12.3 s"]);
    expect([duration(5), duration(65), duration(7322)]).toEqual(["5s", "1m 05s", "2h 02m"]);
    expect([ago(5), ago(130), ago(7300), ago(200_000)])
      .toEqual(["just now", "2 min ago", "2 h ago", "2 d ago"]);
    expect(esc("a|b*c\nd")).toBe("a\\|b\\*c d");
  });
});

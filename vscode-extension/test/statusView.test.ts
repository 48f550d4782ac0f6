import { describe, expect, it } from "vitest";

import type { Cause, MemoryUse, SessionStatus, SlowFilesystem } from "../src/statusReader";
import { SESSION_STATES } from "../src/statusReader";
import {
  ago, bytes, deriveHealth, duration, esc, ms, perOp, prose, renderStatus, shortCause,
  waitedSeconds,
} from "../src/statusView";

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

/** The cause lspguard writes for a filesystem that stopped answering. */
function nfsCause(overrides: Partial<Cause> = {}): Cause {
  return {
    class: "filesystem_not_answering", external: true, restartHelps: false,
    sentence: "gopls's `go list` has waited 125 s on /workspace/go.mod: the nfs filesystem " +
              "at /workspace stopped answering.",
    fix: "Check the NFS server behind /workspace (mount_point: /workspace).",
    waitedS: 125, since: 1_700_000_600 - 125,
    process: { pid: 77, argv: ["/usr/local/go/bin/go", "list", "-e", "-json"],
               role: "gopls's `go list`" },
    object: { kind: "path", path: "/workspace/go.mod", mountPoint: "/workspace", fsType: "nfs",
              argv: [] },
    ...overrides,
  };
}

describe("deriveHealth", () => {
  const cases: [Partial<SessionStatus>, string][] = [
    [{ state: "running" }, "healthy"],
    [{ state: "starting" }, "busy"],
    [{ state: "initializing" }, "busy"],
    [{ state: "running", pending: [{ direction: "client->server", method: "x", ageMs: 2500 }] },
     "busy"],
    [{ state: "running", pending: [{ direction: "server->client", method: "x", ageMs: 9e6 }] },
     "healthy"],
    [{ state: "slow" }, "slow"],
    [{ state: "slow", pending: [{ direction: "client->server", method: "x", ageMs: 60_000 }] },
     "slow"],
    [{ state: "restarting" }, "restarting"],
    [{ state: "waiting" }, "waiting"],
    [{ state: "waiting", cause: nfsCause() }, "waiting"],
    [{ state: "degraded" }, "degraded"],
    [{ state: "degraded", degradedReason: "budget spent" }, "degraded"],
    [{ state: "stopping" }, "stopped"],
    [{ state: "exited" }, "stopped"],
    [{ state: "unknown" }, "busy"],
  ];
  it("covers every state the proxy writes", () => {
    const covered = new Set(cases.map(([o]) => o.state));
    for (const state of SESSION_STATES) expect(covered).toContain(state);
  });
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

  it("degraded: a warning; with restarts given up an error", () => {
    expect(renderStatus([session({ state: "degraded" })], opts)).toMatchObject(
      { text: "$(warning) gopls degraded", severity: "warning" });
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

  it("degraded with a cause names it, without promising to resume", () => {
    const view = renderStatus([session({ state: "degraded", cause: nfsCause(),
                                         degradedReason: "gopls is not running" })], opts);
    expect(view).toMatchObject({ text: "$(warning) gopls degraded: filesystem /workspace",
                                 severity: "error" });
    expect(view.tooltip).toContain("the nfs filesystem at /workspace stopped answering.");
    expect(view.tooltip).toContain("**Fix:** Check the NFS server");
    expect(view.tooltip).not.toContain("resume by itself");
  });

  it("the gopls version comes from the options; unknown without", () => {
    expect(renderStatus([session()], { ...opts, goplsVersion: "v9" }).tooltip)
      .toContain("| gopls | `v9` |");
    expect(renderStatus([session()], opts).tooltip).toContain("| gopls | `unknown` |");
  });

  it("degraded a warning, restarting spins, stopped is quiet, busy lists the pending", () => {
    expect(renderStatus([session({ state: "degraded" })], opts)).toMatchObject(
      { text: "$(warning) gopls degraded", severity: "warning" });
    expect(renderStatus([session({ state: "restarting" })], opts)).toMatchObject(
      { text: "$(sync~spin) gopls restarting", severity: "warning" });
    expect(renderStatus([session({ state: "exited" })], opts)).toMatchObject(
      { text: "$(circle-slash) gopls stopped", severity: "ok" });
    const busy = renderStatus([session({ pending: [
      { direction: "client->server", method: "textDocument/codeAction", ageMs: 4200 }] })], opts);
    expect(busy.text).toBe("$(sync~spin) gopls");
    expect(busy.tooltip).toContain("| pending | 1 request(s), oldest `textDocument/codeAction` " +
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

describe("waiting on a cause outside gopls", () => {
  it("a watch, the short cause, a warning background", () => {
    const view = renderStatus([session({ state: "waiting", cause: nfsCause() })], opts);
    expect(view).toMatchObject({ text: "$(watch) gopls: waiting on filesystem /workspace",
                                 severity: "warning", visible: true });
  });

  it("the tooltip: sentence, fix, how long, resumes by itself, what waits", () => {
    const t = renderStatus([session({ state: "waiting", cause: nfsCause() })], opts).tooltip;
    expect(t).toContain("gopls is **waiting**");
    // the sentence's backticks stay a code span; the rest is escaped
    expect(t).toContain("gopls's `go list` has waited 125 s on /workspace/go.mod: the nfs " +
                        "filesystem at /workspace stopped answering.");
    expect(t).toContain("**Fix:** Check the NFS server behind /workspace \\(mount\\_point: " +
                        "/workspace\\).");
    expect(t).toContain("Waiting for **2m 05s**.");
    expect(t).toContain("lspguard will resume by itself when this clears");
    expect(t).toContain("Restarting gopls will not help");
    expect(t).toContain("| waiting on | filesystem /workspace · gopls's `go list` pid 77 · " +
                        "nfs |");
    expect(t.indexOf("stopped answering")).toBeLessThan(t.indexOf("| generation |"));
  });

  it("without a cause (or with a bare one) it still says waiting", () => {
    expect(renderStatus([session({ state: "waiting" })], opts)).toMatchObject(
      { text: "$(watch) gopls: waiting", severity: "warning" });
    const bare = renderStatus([session({ state: "waiting", cause: {
      class: "network_peer_not_answering", external: true, restartHelps: false,
      object: { kind: "socket", peer: "127.0.0.1:8080", argv: [] } } })], opts);
    expect(bare.text).toBe("$(watch) gopls: waiting on network 127.0.0.1:8080");
    expect(bare.tooltip).toContain("gopls is waiting on network 127.0.0.1:8080.");
    expect(bare.tooltip).not.toContain("Waiting for");
    expect(bare.tooltip).not.toContain("**Fix:**");
  });

  it("a running session's stale cause is not shown", () => {
    const view = renderStatus([session({ state: "running", cause: nfsCause() })], opts);
    expect(view.text).toBe("$(pass) gopls");
    expect(view.tooltip).not.toContain("waiting on");
  });

  it("short causes from class and object", () => {
    const none = { kind: "none" as const, argv: [] };
    expect(shortCause(nfsCause())).toBe("filesystem /workspace");
    expect(shortCause(nfsCause({ object: { kind: "path", path: "/mnt/x/go.mod", argv: [] } })))
      .toBe("filesystem /mnt/x/go.mod");
    expect(shortCause(nfsCause({ object: { kind: "path", argv: [] } }))).toBe("a filesystem");
    expect(shortCause(nfsCause({ object: { kind: "path", mountPoint: `/${"d".repeat(60)}`,
                                           argv: [] } })))
      .toBe(`filesystem …${"d".repeat(31)}`);
    expect(shortCause(nfsCause({ class: "special_file_no_partner",
                                 object: { kind: "special_file", path: "/ws/pkg/x.go",
                                           fileType: "fifo", argv: [] } })))
      .toBe("FIFO x.go");
    expect(shortCause(nfsCause({ class: "special_file_no_partner",
                                 object: { kind: "special_file", path: "/ws/tty.go",
                                           fileType: "character device", argv: [] } })))
      .toBe("character device tty.go");
    expect(shortCause(nfsCause({ class: "child_never_returns",
                                 object: { kind: "child", pid: 9, argv: [
                                   "/usr/local/go/bin/go", "list", "-e", "-json", "./..."] } })))
      .toBe("`go list`");
    expect(shortCause(nfsCause({ class: "child_never_returns",
                                 object: { kind: "child", argv: ["git", "-C", "/ws", "fetch"] } })))
      .toBe("`git`");
    // no argv on the object: the waiting process's
    expect(shortCause(nfsCause({ class: "child_never_returns",
                                 object: { kind: "child", argv: [] } }))).toBe("`go list`");
    expect(shortCause(nfsCause({ class: "child_never_returns", object: { kind: "child", argv: [] },
                                 process: { argv: [] } }))).toBe("a child process");
    expect(shortCause(nfsCause({ class: "network_peer_not_answering",
                                 object: { kind: "socket", peer: "127.0.0.1:8080", argv: [] } })))
      .toBe("network 127.0.0.1:8080");
    expect(shortCause(nfsCause({ class: "blocked_in_kernel", object: none }))).toBe("the kernel");
    expect(shortCause(nfsCause({ class: "deadlocked", object: none }))).toBe("a deadlock");
    expect(shortCause(nfsCause({ class: "unknown", object: none }))).toBe("an unknown cause");
  });

  it("icons in data are escaped in the status bar text", () => {
    const view = renderStatus([session({ state: "waiting", cause: nfsCause({
      object: { kind: "path", mountPoint: "/mnt/$(zap)", argv: [] } }) })], opts);
    expect(view.text).toBe("$(watch) gopls: waiting on filesystem /mnt/\\$(zap)");
  });

  it("how long: from `since` when it is later than the file, else waited_s", () => {
    expect(waitedSeconds(nfsCause({ waitedS: 100, since: 1000 }), 1200)).toBe(200);
    expect(waitedSeconds(nfsCause({ waitedS: 100, since: 1150 }), 1200)).toBe(100);
    expect(waitedSeconds(nfsCause({ waitedS: 100, since: 5000 }), 1200)).toBe(100);
    expect(waitedSeconds(nfsCause({ waitedS: undefined, since: undefined }), 1200))
      .toBeUndefined();
  });
});

const GiB = 2 ** 30;
const GB = 1e9;

/** The slow filesystem lspguard writes while a working gopls reads a slow bind mount. */
function grpcfuse(overrides: Partial<SlowFilesystem> = {}): SlowFilesystem {
  return {
    mountPoint: "/workspace", fsType: "fuse.grpcfuse", source: "grpcfuse", role: "the workspace",
    latencyMs: 20.4,
    sentence: "the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per operation: " +
              "gopls's first load will be slow.",
    fix: "Put GOMODCACHE and GOCACHE on a volume, not the bind mount.",
    since: 1_700_000_600 - 90,
    ...overrides,
  };
}

describe("slow: gopls works on a slow filesystem", () => {
  it("a watch, the fs type and the latency, and not a warning", () => {
    const view = renderStatus([session({ state: "slow", slow: grpcfuse() })], opts);
    expect(view).toMatchObject({ text: "$(watch) gopls: slow (fuse.grpcfuse, 20 ms/op)",
                                 severity: "ok", visible: true });
    expect(renderStatus([session({ state: "slow" })], opts).text).toBe("$(watch) gopls: slow");
    expect(renderStatus([session({ state: "slow", slow: grpcfuse({ fsType: undefined,
                                                                   latencyMs: 2.46 }) })], opts)
      .text).toBe("$(watch) gopls: slow (2.5 ms/op)");
  });

  it("the tooltip: sentence, fix, mount, fs type, latency, and that nothing is restarted", () => {
    const t = renderStatus([session({ state: "slow", slow: grpcfuse() })], opts).tooltip;
    expect(t).toContain("gopls is **slow**");
    expect(t).toContain("the workspace at /workspace \\(fuse.grpcfuse\\) answers in 20 ms per " +
                        "operation: gopls's first load will be slow.");
    expect(t).toContain("**Fix:** Put GOMODCACHE and GOCACHE on a volume, not the bind mount.");
    expect(t).toContain("Slow for **1m 30s**.");
    expect(t).toContain("restarts nothing");
    expect(t).toContain("| slow filesystem | `/workspace` · fuse.grpcfuse · grpcfuse · the " +
                        "workspace · **20 ms/op** |");
    expect(t).not.toContain("Restarting gopls will not help");
    expect(t.indexOf("answers in 20 ms")).toBeLessThan(t.indexOf("| generation |"));
  });

  it("a slow filesystem left in a running session's status is not shown", () => {
    const view = renderStatus([session({ state: "running", slow: grpcfuse() })], opts);
    expect(view.text).toBe("$(pass) gopls");
    expect(view.tooltip).not.toContain("slow filesystem");
  });

  it("per-operation latency", () => {
    expect([perOp(0.42), perOp(20.4), perOp(250), perOp(1234)])
      .toEqual(["0.4 ms/op", "20 ms/op", "250 ms/op", "1.2 s/op"]);
  });
});

describe("memory against its limit", () => {
  const memory = (overrides: Partial<MemoryUse> = {}): MemoryUse => ({
    rssBytes: 2.1 * GB, peakRssBytes: 2.5 * GB, limitBytes: 3 * GiB,
    limitSource: "cgroup v1 /docker/abc", oomKills: 0, nearLimit: false, ...overrides });

  it("the tooltip names RSS, the limit, the peak, OOM kills and GOMEMLIMIT", () => {
    const view = renderStatus([session({ memory: memory({ oomKills: 1,
                                                          gomemlimit: "2457MiB" }) })], opts);
    expect(view).toMatchObject({ text: "$(pass) gopls", severity: "ok" });
    expect(view.tooltip).toContain("| memory | gopls 2.1 GB of a 3.0 GiB limit (65%) · " +
                                   "peak 2.5 GB · **1 OOM kill** · GOMEMLIMIT=`2457MiB` · " +
                                   "cgroup v1 /docker/abc |");
    expect(renderStatus([session({ memory: memory({ limitBytes: undefined,
                                                    peakRssBytes: undefined }) })], opts)
      .tooltip).toContain("| memory | gopls 2.1 GB, no memory limit found |");
    expect(renderStatus([session()], opts).tooltip).not.toContain("| memory |");
  });

  it("near the limit: a warning in the tooltip and on the status bar", () => {
    const near = memory({ rssBytes: 3.1 * GB, nearLimit: true });
    const view = renderStatus([session({ memory: near })], opts);
    expect(view).toMatchObject({ text: "$(warning) gopls: memory 3.1 GB of 3.0 GiB",
                                 severity: "warning" });
    expect(view.tooltip).toContain("| memory | $(warning) **gopls 3.1 GB of a 3.0 GiB limit " +
                                   "(96%): near the limit** ·");
    // another state keeps its words; the background still warns
    expect(renderStatus([session({ state: "slow", slow: grpcfuse(), memory: near })], opts))
      .toMatchObject({ text: "$(watch) gopls: slow (fuse.grpcfuse, 20 ms/op)",
                       severity: "warning" });
    expect(renderStatus([session({ state: "exited", memory: near })], opts).severity).toBe("ok");
  });

  it("degraded after gopls ran out of memory says so", () => {
    const view = renderStatus([session({
      state: "degraded", memory: memory({ oomKills: 2, rssBytes: undefined }),
      degradedReason: "gopls was killed for memory twice: raise the container's memory or " +
                      "narrow the workspace (build.directoryFilters).",
      lastVerdict: { kind: "out_of_memory", at: 1_700_000_500,
                     summary: "the kernel's OOM killer ended gopls at 3.0 GiB; the " +
                              "container's memory limit is 3.0 GiB" } })], opts);
    expect(view).toMatchObject({ text: "$(warning) gopls degraded: out of memory",
                                 severity: "error" });
    expect(view.tooltip).toContain("| memory | limit 3.0 GiB · peak 2.5 GB · **2 OOM kills** ·");
    expect(view.tooltip).toContain("| last verdict | `out_of_memory`: the kernel's OOM killer");
  });

  it("bytes as lspguard says them: RSS in decimal units, limits in binary ones", () => {
    expect([bytes(512), bytes(300e6), bytes(2.1e9), bytes(3 * GiB, true), bytes(2e12 * 1024)])
      .toEqual(["512 B", "300.0 MB", "2.1 GB", "3.0 GiB", "2048.0 TB"]);
  });
});

describe("formatting", () => {
  it("ms, duration, ago, esc", () => {
    expect([ms(0.42), ms(250), ms(12_345)]).toEqual(["0.4 ms", "250 ms", "12.3 s"]);
    expect([duration(5), duration(65), duration(7322)]).toEqual(["5s", "1m 05s", "2h 02m"]);
    expect([ago(5), ago(130), ago(7300), ago(200_000)])
      .toEqual(["just now", "2 min ago", "2 h ago", "2 d ago"]);
    expect(esc("a|b*c\nd")).toBe("a\\|b\\*c d");
    expect(prose("run `go_list | x` on a_b")).toBe("run `go_list | x` on a\\_b");
    expect(prose("run `go|x`", true)).toBe("run `go\\|x`");
    expect(prose("odd ` tick_")).toBe("odd \\` tick\\_");
  });
});

import { describe, expect, it } from "vitest";

import { parseGoplsVersion, StatusMonitor } from "../src/monitor";
import type { SessionStatus } from "../src/statusReader";
import { FakeHost } from "./fakeHost";

function status(pid: number, folder: string, extra: Partial<SessionStatus> = {}): SessionStatus {
  return { pid, state: "running", startedAt: pid, workspaceFolders: [`file://${folder}`],
           backend: { argv: ["/go/bin/gopls"], generation: 1 }, restarts: 0, latency: {},
           pending: [], statusFile: "", bundles: [], ...extra };
}

describe("StatusMonitor", () => {
  it("shows this workspace's newest session, probes the gopls version once, announces " +
     "incidents once", async () => {
    const host = new FakeHost();
    host.execHandler = (file, args) => ({
      code: 0, stderr: "",
      stdout: file === "/go/bin/gopls" && args[0] === "version"
        ? "golang.org/x/tools/gopls v0.21.1\n" : "" });
    let sessions = [status(1, "/ws/project"), status(2, "/ws/elsewhere"),
                    status(3, "/ws/project", { state: "waiting", cause: {
                      class: "filesystem_not_answering", external: true, restartHelps: false,
                      sentence: "gopls waits on /workspace (nfs), which stopped answering.",
                      object: { kind: "path", path: "/workspace/go.mod",
                                mountPoint: "/workspace", fsType: "nfs", argv: [] } } })];
    let now = 100;
    const dirsAsked: (readonly string[])[] = [];
    const monitor = new StatusMonitor({
      host, dirs: () => ["/run/sessions"], enabled: () => true, now: () => now,
      read: (dirs) => { dirsAsked.push(dirs); return Promise.resolve(sessions); },
    });
    expect((await monitor.pollOnce()).map((s) => s.pid)).toEqual([3, 1]);
    expect(dirsAsked).toEqual([["/run/sessions"]]);
    expect(host.status?.text).toBe("$(watch) gopls: waiting on filesystem /workspace");
    expect(host.status?.severity).toBe("warning");
    expect(host.status?.tooltip).toContain("`v0.21.1`");
    sessions = [status(3, "/ws/project", { lastVerdict: { kind: "deadlocked", summary: "x",
                                                            at: 150, bundle: "/b" } })];
    now = 200;
    await monitor.pollOnce();
    await monitor.pollOnce();
    expect(host.messages.filter((m) => m.level === "warn")).toHaveLength(1);
    expect(host.execCalls.filter((c) => c.args[0] === "version")).toHaveLength(1);
    expect(monitor.sessions.map((s) => s.pid)).toEqual([3]);
  });

  it("slow is no incident: no warning, one quiet information message with the fix", async () => {
    const host = new FakeHost();
    const slow = status(5, "/ws/project", {
      state: "slow",
      slow: { mountPoint: "/workspace", fsType: "fuse.grpcfuse", latencyMs: 20,
              sentence: "the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per " +
                        "operation.", fix: "Put GOMODCACHE on a volume." } });
    const monitor = new StatusMonitor({ host, dirs: () => [], enabled: () => true,
                                        now: () => 100,
                                        read: () => Promise.resolve([slow]) });
    await monitor.pollOnce();
    await monitor.pollOnce();
    expect(host.status).toMatchObject({ text: "$(watch) gopls: slow (fuse.grpcfuse, 20 ms/op)",
                                        severity: "ok" });
    expect(host.messages.map((m) => m.level)).toEqual(["info"]);
    expect(host.messages[0]?.message).toContain("Fix: Put GOMODCACHE on a volume.");
    expect(host.messages[0]?.actions).toEqual([]);
  });

  it("a failing read shows 'no session' and logs, it does not throw", async () => {
    const host = new FakeHost();
    const monitor = new StatusMonitor({
      host, dirs: () => [], enabled: () => false,
      read: () => Promise.reject(new Error("EACCES")),
    });
    expect(await monitor.pollOnce()).toEqual([]);
    expect(host.status?.text).toBe("$(circle-slash) lspguard off");
    expect(host.logLines[0]).toContain("EACCES");
  });

  it("start/stop poll on a timer without overlapping", async () => {
    const host = new FakeHost();
    let reads = 0;
    const monitor = new StatusMonitor({
      host, dirs: () => [], enabled: () => true, intervalMs: 10,
      read: () => { reads += 1; return Promise.resolve([]); },
    });
    monitor.start();
    const deadline = Date.now() + 5_000;
    while (reads < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    monitor.stop();
    const after = reads;
    expect(after).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 50));
    expect(reads).toBe(after);
  });

  it("parses gopls version output", () => {
    expect(parseGoplsVersion("golang.org/x/tools/gopls v0.21.1\n")).toBe("v0.21.1");
    expect(parseGoplsVersion("Build info\n----------\ngolang.org/x/tools/gopls v0.16.2-pre.1\n" +
                             "    golang.org/x/tools/gopls@v0.16.2 h1:abc=\n"))
      .toBe("v0.16.2-pre.1");
    expect(parseGoplsVersion("(devel)")).toBeUndefined();
  });
});

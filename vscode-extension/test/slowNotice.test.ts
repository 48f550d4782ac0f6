import { describe, expect, it } from "vitest";

import { SLOW_NOTICED_KEY, slowMessage, SlowNotices } from "../src/slowNotice";
import type { SessionStatus, SlowFilesystem } from "../src/statusReader";
import { FakeHost } from "./fakeHost";

const SLOW: SlowFilesystem = {
  mountPoint: "/workspace", fsType: "fuse.grpcfuse", role: "the workspace", latencyMs: 20,
  sentence: "the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per operation: " +
            "gopls's first load will be slow.",
  fix: "Put GOMODCACHE and GOCACHE on a volume.",
};

function session(pid: number, extra: Partial<SessionStatus> = {}): SessionStatus {
  return { pid, state: "slow", startedAt: 50, workspaceFolders: [],
           backend: { argv: [], generation: 1 }, restarts: 0, latency: {}, pending: [],
           statusFile: "", bundles: [], slow: SLOW, ...extra };
}

describe("SlowNotices", () => {
  it("tells each slow session once, across reloads; not running ones, not bare ones", () => {
    const host = new FakeHost();
    const notices = new SlowNotices(host);
    expect(notices.newlySlow([session(1), session(2, { state: "running" }),
                              session(3, { slow: undefined })]).map((s) => s.pid))
      .toEqual([1]);
    expect(notices.newlySlow([session(1)])).toEqual([]);
    expect(host.state.get(SLOW_NOTICED_KEY)).toEqual(["1@50"]);
    expect(new SlowNotices(host).newlySlow([session(1)])).toEqual([]); // a window reload
    // the same pid, a later session: told again
    expect(notices.newlySlow([session(1, { startedAt: 60 })])).toHaveLength(1);
  });

  it("the message names the slow filesystem and the fix", () => {
    expect(slowMessage(session(1))).toBe(
      "lspguard: slow filesystem: the workspace at /workspace (fuse.grpcfuse) answers in 20 ms " +
      "per operation: gopls's first load will be slow. Fix: Put GOMODCACHE and GOCACHE on a " +
      "volume. gopls is working, not hung: lspguard lets requests wait for it and restarts " +
      "nothing.");
    expect(slowMessage(session(1, { slow: { mountPoint: "/m", fix: "Use a volume" } })))
      .toBe("lspguard: slow filesystem: a filesystem gopls reads answers slowly. Fix: Use a " +
            "volume. gopls is working, not hung: lspguard lets requests wait for it and " +
            "restarts nothing.");
  });
});

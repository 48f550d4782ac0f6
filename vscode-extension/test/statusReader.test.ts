import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import type { SessionStatus } from "../src/statusReader";
import {
  candidateSessionDirs, parseCause, parseMemory, parseSlow, parseStatus, parseVerdict,
  readSessions, SESSION_STATES, sessionsForWorkspace, uriToPath, VERDICT_KINDS, verdictPhrase,
} from "../src/statusReader";

/** A cause as lspguard/causes/model.py `Cause.as_dict` writes it. */
const NFS_CAUSE = {
  class: "filesystem_not_answering", external: true, restart_helps: false,
  sentence: "gopls has waited 40 s on /workspace/go.mod: the nfs filesystem at /workspace " +
            "stopped answering.",
  fix: "Check the NFS server.", waited_s: 40.2, since: 1.7e9,
  process: { pid: 11, argv: ["gopls"], role: "gopls", tid: 12, state: "D",
             syscall: "openat", wchan: "rpc_wait_bit_killable" },
  object: { kind: "path", path: "/workspace/go.mod", mount_point: "/workspace", fs_type: "nfs",
            source: "srv:/export" },
  chain: [],
};

describe("parseStatus", () => {
  it("reads the fields the proxy writes (lspguard/proxy/session.py session_status)", () => {
    const s = parseStatus({
      schema: 1, pid: 10, lspguard_version: "0.1.0", state: "running", started_at: 1.5e9,
      uptime_s: 12.5, workspace_folders: ["file:///ws"], cwd: "/ws", config: "defaults",
      log_file: "/log", backend: { argv: ["gopls"], pid: 11, generation: 1, env_overlay: {} },
      restarts: 0, last_verdict: null, handshake: {},
      pending: [{ direction: "client->server", id: 3, method: "textDocument/hover",
                  age_ms: 12.5 }],
      latency: { initialize: { count: 1, p50_ms: 300.1, p99_ms: 300.1, max_ms: 300.1 } },
      counters: {}, end_reason: null, degraded: null, cause: null, slow: null, memory: null,
      bundles: [],
      last_recovery_s: null, verdicts: 0, held_during_restart: 0, watchdog_cpu_percent: 0.1,
    }, "/run/10.json");
    expect(s).toEqual({
      pid: 10, state: "running", startedAt: 1.5e9, uptimeS: 12.5, workspaceFolders: ["file:///ws"],
      backend: { argv: ["gopls"], pid: 11, generation: 1 }, restarts: 0,
      latency: { initialize: { count: 1, p50Ms: 300.1, p99Ms: 300.1, maxMs: 300.1 } },
      pending: [{ direction: "client->server", method: "textDocument/hover", ageMs: 12.5 }],
      logFile: "/log", statusFile: "/run/10.json", bundles: [],
    });
  });

  it("survives missing and mistyped fields", () => {
    expect(parseStatus(null, "f")).toBeUndefined();
    expect(parseStatus([], "f")).toBeUndefined();
    expect(parseStatus({ pid: "10" }, "f")).toBeUndefined();
    expect(parseStatus({ pid: 10 }, "f")).toEqual({
      pid: 10, state: "unknown", workspaceFolders: [], backend: { argv: [], generation: 0 },
      restarts: 0, latency: {}, pending: [], statusFile: "f", bundles: [] });
    const s = parseStatus({ pid: 1, state: 5, workspace_folders: ["file:///a", 7],
                            backend: { generation: 3, argv: "gopls", label: 4 },
                            latency: { a: { p50_ms: 1 }, b: "x" }, pending: [null, {}],
                            last_verdict: { summary: "no kind" }, cause: "garbage",
                            degraded: "" }, "f");
    expect(s?.state).toBe("unknown");
    expect(s?.workspaceFolders).toEqual(["file:///a"]);
    expect(s?.backend).toEqual({ argv: [], generation: 3 });
    expect(s?.restarts).toBe(2);
    expect(s?.latency).toEqual({});
    expect(s?.pending).toEqual([]);
    expect(s?.lastVerdict).toBeUndefined();
    expect(s?.cause).toBeUndefined();
    expect(s?.degradedReason).toBeUndefined();
  });

  it("knows exactly the states the proxy writes; any other word is unknown", () => {
    expect([...SESSION_STATES].sort()).toEqual(["degraded", "exited", "initializing", "restarting",
                                                "running", "slow", "starting", "stopping",
                                                "waiting"]);
    for (const state of SESSION_STATES) {
      expect(parseStatus({ pid: 1, state }, "f")?.state).toBe(state);
    }
    for (const state of ["hung", "recovering", "gave_up", "fallback", "RUNNING"]) {
      expect(parseStatus({ pid: 1, state }, "f")?.state).toBe("unknown");
    }
  });

  it("ignores keys the proxy does not write (backend.version, gopls_version, fallback)", () => {
    const s = parseStatus({ pid: 1, state: "running", gopls_version: "v1", fallback: "x",
                            backend: { argv: ["gopls"], generation: 1, version: "v1",
                                       fallback: true, label: "primary" } }, "f");
    expect(s?.backend).toEqual({ argv: ["gopls"], generation: 1, label: "primary" });
    expect(Object.keys(s ?? {})).not.toContain("fallback");
  });

  it("reads the pending directions the proxy writes", () => {
    const s = parseStatus({ pid: 1, pending: [
      { direction: "client->server", method: "a", age_ms: 1 },
      { direction: "server->client", method: "b", age_ms: 2 },
      { direction: "s2c", method: "c", age_ms: 3 },
      { method: "d", age_ms: 4 }] }, "f");
    expect(s?.pending.map((p) => p.direction))
      .toEqual(["client->server", "server->client", "unknown", "unknown"]);
  });

  it("reads the recovery fields: backend label, degraded, bundles", () => {
    const s = parseStatus({ pid: 1, state: "running", degraded: null, bundles: ["/b1", "/b2"],
                            backend: { argv: ["/opt/gopls"], generation: 3,
                                       label: "primary + hang overlay" } }, "f");
    expect(s?.backend).toMatchObject({ label: "primary + hang overlay" });
    expect(s?.bundles).toEqual(["/b1", "/b2"]);
    expect(s?.degradedReason).toBeUndefined();
    const d = parseStatus({ pid: 1, state: "degraded", degraded: "gopls is not running: ...",
                            backend: { argv: [], generation: 4, label: "primary" } }, "f");
    expect(d?.degradedReason).toBe("gopls is not running: ...");
  });

  it("reads a waiting session's cause", () => {
    const s = parseStatus({ pid: 1, state: "waiting", cause: NFS_CAUSE }, "f");
    expect(s?.state).toBe("waiting");
    expect(s?.cause).toEqual({
      class: "filesystem_not_answering", external: true, restartHelps: false,
      sentence: NFS_CAUSE.sentence, fix: "Check the NFS server.", waitedS: 40.2, since: 1.7e9,
      process: { pid: 11, argv: ["gopls"], role: "gopls" },
      object: { kind: "path", path: "/workspace/go.mod", mountPoint: "/workspace",
                fsType: "nfs", argv: [] },
    });
    expect(parseStatus({ pid: 1, state: "running", cause: null }, "f")?.cause).toBeUndefined();
  });

  it("reads every object kind", () => {
    const object = (o: unknown): unknown => parseCause({ class: "stopped", object: o })?.object;
    expect(object({ kind: "special_file", path: "/ws/x.go", file_type: "fifo" }))
      .toEqual({ kind: "special_file", path: "/ws/x.go", fileType: "fifo", argv: [] });
    expect(object({ kind: "child", pid: 5, argv: ["go", "list", 3] }))
      .toEqual({ kind: "child", pid: 5, argv: ["go", "list"] });
    expect(object({ kind: "socket", peer: "127.0.0.1:8080", socket_state: "ESTABLISHED" }))
      .toEqual({ kind: "socket", peer: "127.0.0.1:8080", argv: [] });
    expect(object({ kind: "none" })).toEqual({ kind: "none", argv: [] });
    // a missing or unknown kind is guessed from the fields
    expect(object(undefined)).toEqual({ kind: "none", argv: [] });
    expect(object({ kind: "pipe", peer: "h:1" })).toMatchObject({ kind: "socket" });
    expect(object({ path: "/p", file_type: "fifo" })).toMatchObject({ kind: "special_file" });
    expect(object({ mount_point: "/m" })).toMatchObject({ kind: "path" });
    expect(object({ argv: ["go"] })).toMatchObject({ kind: "child" });
  });

  it("a cause survives garbage: defaults from its class, none without class or sentence", () => {
    expect(parseCause(null)).toBeUndefined();
    expect(parseCause([NFS_CAUSE])).toBeUndefined();
    expect(parseCause({ class: "no_such_class" })).toBeUndefined();
    expect(parseCause({ external: true, waited_s: 3 })).toBeUndefined();
    expect(parseCause({ class: "child_never_returns", external: "yes", restart_helps: 1,
                        sentence: 7, fix: "", waited_s: "3", process: "gopls",
                        object: "x" })).toEqual({
      class: "child_never_returns", external: true, restartHelps: false,
      object: { kind: "none", argv: [] } });
    expect(parseCause({ class: "deadlocked" })).toMatchObject(
      { class: "deadlocked", external: false, restartHelps: true });
    expect(parseCause({ class: "from_the_future", sentence: "gopls waits on X." })).toMatchObject(
      { class: "unknown", sentence: "gopls waits on X.", external: false });
    expect(parseCause({ class: "busy_spin", process: { pid: "1", argv: null, role: "" } })
      ?.process).toEqual({ argv: [] });
  });

  it("reads a verdict with or without the optional fields", () => {
    expect(parseVerdict({ kind: "blocked_in_kernel" })).toEqual(
      { kind: "blocked_in_kernel", summary: "gopls is blocked in the kernel" });
    expect(parseVerdict({ kind: "crashed", summary: "exit 2", at: 5, generation: 1,
                          bundle: "/b", facts: {} }))
      .toEqual({ kind: "crashed", summary: "exit 2", at: 5, generation: 1, bundle: "/b" });
    expect(parseVerdict({ kind: "crashed", bundle: null })?.bundle).toBeUndefined();
    expect(parseVerdict({ kind: "crashed", facts: { cause: "x" } })?.cause).toBeUndefined();
  });

  it("says every verdict kind in words, out_of_memory too", () => {
    expect(verdictPhrase("out_of_memory")).toBe("ran out of memory");
    expect(verdictPhrase("manual")).toBe("was restarted on request");
    expect(verdictPhrase("from_the_future")).toBe("from the future");
    for (const kind of VERDICT_KINDS) expect(verdictPhrase(kind)).not.toContain("_");
    expect(parseVerdict({ kind: "out_of_memory" })?.summary).toBe("gopls ran out of memory");
  });

  it("reads a verdict's facts.cause", () => {
    const v = parseVerdict({ kind: "filesystem_not_answering", summary: "s", generation: 2,
                             at: 5, facts: { cause: NFS_CAUSE, rss: 1 }, bundle: "/b" });
    expect(v).toMatchObject({ kind: "filesystem_not_answering", bundle: "/b",
                              cause: { class: "filesystem_not_answering",
                                       object: { mountPoint: "/workspace" } } });
  });
});

/** `slow` and `memory` as lspguard/status/schema.py `Slow` and `Memory` write them. */
const SLOW = {
  mount_point: "/workspace", fs_type: "fuse.grpcfuse", source: "grpcfuse", role: "the workspace",
  latency_ms: 20.4,
  sentence: "the workspace at /workspace (fuse.grpcfuse) answers in 20 ms per operation: " +
            "gopls's first load will be slow.",
  fix: "Keep the module cache and GOCACHE in a volume.", since: 1.7e9,
};
const MEMORY = {
  rss_bytes: 2.1 * 2 ** 30, peak_rss_bytes: 2.5 * 2 ** 30, limit_bytes: 3 * 2 ** 30,
  limit_source: "cgroup v1 /docker/abc", oom_kills: 1, gomemlimit: "2457MiB", near_limit: false,
};

describe("slow and memory", () => {
  it("reads a slow session's filesystem and its memory", () => {
    const s = parseStatus({ pid: 1, state: "slow", slow: SLOW, memory: MEMORY }, "f");
    expect(s?.state).toBe("slow");
    expect(s?.slow).toEqual({
      mountPoint: "/workspace", fsType: "fuse.grpcfuse", source: "grpcfuse",
      role: "the workspace", latencyMs: 20.4, sentence: SLOW.sentence, fix: SLOW.fix,
      since: 1.7e9 });
    expect(s?.memory).toEqual({
      rssBytes: 2.1 * 2 ** 30, peakRssBytes: 2.5 * 2 ** 30, limitBytes: 3 * 2 ** 30,
      limitSource: "cgroup v1 /docker/abc", oomKills: 1, gomemlimit: "2457MiB",
      nearLimit: false });
    const running = parseStatus({ pid: 1, state: "running", slow: null, memory: null }, "f");
    expect(running?.slow).toBeUndefined();
    expect(running?.memory).toBeUndefined();
  });

  it("survives garbage: no slow without mount or sentence; memory defaults", () => {
    expect(parseSlow("slow")).toBeUndefined();
    expect(parseSlow({ fs_type: "nfs", latency_ms: 3 })).toBeUndefined();
    expect(parseSlow({ mount_point: "/m", latency_ms: -1, fs_type: 7, since: "x" }))
      .toEqual({ mountPoint: "/m" });
    expect(parseSlow({ sentence: "slow." })).toEqual({ mountPoint: "", sentence: "slow." });
    expect(parseMemory([])).toBeUndefined();
    expect(parseMemory({})).toEqual({ oomKills: 0, nearLimit: false });
    expect(parseMemory({ rss_bytes: -5, limit_bytes: 0, oom_kills: "2", gomemlimit: "" }))
      .toEqual({ oomKills: 0, nearLimit: false });
    // near_limit missing: judged from rss and limit
    expect(parseMemory({ rss_bytes: 95, limit_bytes: 100 })?.nearLimit).toBe(true);
    expect(parseMemory({ rss_bytes: 95, limit_bytes: 100, near_limit: false })?.nearLimit)
      .toBe(false);
  });
});

describe("readSessions", () => {
  let dir: string;
  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), "lspguard-sr-")); });
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }); });

  it("skips dead pids, torn files and strangers; finds sockets", async () => {
    const live = process.pid;
    await fs.writeFile(path.join(dir, `${String(live)}.json`),
                       JSON.stringify({ pid: live, state: "running" }));
    await fs.writeFile(path.join(dir, "99999999.json"),
                       JSON.stringify({ pid: 99999999, state: "running" }));
    await fs.writeFile(path.join(dir, "5.json"), '{"pid": 5, "sta');
    await fs.writeFile(path.join(dir, "notes.json"), JSON.stringify({ pid: live }));
    await fs.writeFile(path.join(dir, `.${String(live)}.json.tmp`), "{}");
    const server = net.createServer();
    await new Promise<void>((resolve) => {
      server.listen(path.join(dir, `${String(live)}.sock`), resolve);
    });
    try {
      const sessions = await readSessions([dir, path.join(dir, "missing")]);
      expect(sessions.map((s) => s.pid)).toEqual([live]);
      expect(sessions[0]?.socket).toBe(path.join(dir, `${String(live)}.sock`));
      const all = await readSessions([dir], { liveOnly: false });
      expect(all.map((s) => s.pid).sort()).toEqual([live, 99999999].sort());
      expect(all.find((s) => s.pid === 99999999)?.socket).toBeUndefined();
    } finally {
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    }
  });
});

describe("session dirs and workspace matching", () => {
  it("mirrors lspguard/paths.py", () => {
    expect(candidateSessionDirs({ LSPGUARD_RUNTIME_DIR: "/x" }, "linux", 1000, "/tmp", "/h"))
      .toEqual(["/x/sessions"]);
    expect(candidateSessionDirs({ XDG_RUNTIME_DIR: "/run/user/1000" }, "linux", 1000, "/tmp",
                                "/h")).toEqual([
      "/run/user/1000/lspguard/sessions", "/tmp/runtime-1000/lspguard/sessions",
      "/tmp/lspguard-1000/sessions"]);
    expect(candidateSessionDirs({}, "darwin", 501, "/var/folders/x/T", "/Users/u")).toEqual([
      "/Users/u/Library/Caches/TemporaryItems/lspguard/sessions",
      "/var/folders/x/T/lspguard-501/sessions"]);
  });

  it("matches sessions by workspace folder URI, newest first", () => {
    const base: Omit<SessionStatus, "pid" | "workspaceFolders"> = {
      state: "running", backend: { argv: [], generation: 1 }, restarts: 0,
                   latency: {}, pending: [], statusFile: "", bundles: [] };
    const a = { ...base, pid: 1, startedAt: 1, workspaceFolders: ["file:///ws/a/"] };
    const b = { ...base, pid: 2, startedAt: 2, workspaceFolders: ["file:///ws/other",
                                                                 "file:///ws/a"] };
    const c = { ...base, pid: 3, startedAt: 3, workspaceFolders: ["file:///ws/ab"] };
    const d = { ...base, pid: 4, startedAt: 4, workspaceFolders: ["untitled:x"] };
    expect(sessionsForWorkspace([a, b, c, d], ["/ws/a"]).map((s) => s.pid)).toEqual([2, 1]);
    expect(uriToPath("file:///ws/with%20space")).toBe("/ws/with space");
    expect(uriToPath("https://x")).toBeUndefined();
  });
});

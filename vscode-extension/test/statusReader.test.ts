import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  candidateSessionDirs, parseStatus, parseVerdict, readSessions, sessionsForWorkspace, uriToPath,
} from "../src/statusReader";

describe("parseStatus", () => {
  it("reads the fields the proxy writes (lspguard/session.py status_snapshot)", () => {
    const s = parseStatus({
      schema: 1, pid: 10, lspguard_version: "0.1.0", state: "running", started_at: 1.5e9,
      uptime_s: 12.5, workspace_folders: ["file:///ws"], cwd: "/ws", config: "defaults",
      log_file: "/log", backend: { argv: ["gopls"], pid: 11, generation: 1, env_overlay: {} },
      restarts: 0, last_verdict: null, handshake: {},
      pending: [{ direction: "client->server", id: 3, method: "textDocument/hover",
                  age_ms: 12.5 }],
      latency: { initialize: { count: 1, p50_ms: 300.1, p99_ms: 300.1, max_ms: 300.1 } },
      counters: {}, end_reason: null,
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
                            backend: { generation: 3, argv: "gopls", version: "v0.21.1",
                                       fallback: true },
                            latency: { a: { p50_ms: 1 }, b: "x" }, pending: [null, {}],
                            last_verdict: { summary: "no kind" } }, "f");
    expect(s?.state).toBe("unknown");
    expect(s?.workspaceFolders).toEqual(["file:///a"]);
    expect(s?.backend).toEqual({ argv: [], generation: 3, version: "v0.21.1",
                                 fallback: "fallback backend" });
    expect(s?.restarts).toBe(2);
    expect(s?.latency).toEqual({});
    expect(s?.pending).toEqual([]);
    expect(s?.lastVerdict).toBeUndefined();
  });

  it("reads the recovery fields: backend label, fallback, degraded, bundles", () => {
    const s = parseStatus({ pid: 1, state: "running", degraded: null, bundles: ["/b1", "/b2"],
                            backend: { argv: ["/opt/gopls-0.15"], generation: 3,
                                       label: "fallback gopls-0.15" } }, "f");
    expect(s?.backend).toMatchObject({ label: "fallback gopls-0.15", fallback: "gopls-0.15" });
    expect(s?.bundles).toEqual(["/b1", "/b2"]);
    expect(s?.degradedReason).toBeUndefined();
    const d = parseStatus({ pid: 1, state: "degraded", degraded: "gopls is not running: ...",
                            backend: { argv: [], generation: 4, label: "primary" } }, "f");
    expect(d?.degradedReason).toBe("gopls is not running: ...");
    expect(d?.backend.fallback).toBeUndefined();
  });

  it("reads a verdict with or without the optional fields", () => {
    expect(parseVerdict({ kind: "blocked_in_kernel" })).toEqual(
      { kind: "blocked_in_kernel", summary: "blocked in kernel" });
    expect(parseVerdict({ kind: "crashed", summary: "exit 2", at: 5, generation: 1,
                          bundle: "/b", facts: {} }))
      .toEqual({ kind: "crashed", summary: "exit 2", at: 5, generation: 1, bundle: "/b" });
    expect(parseVerdict({ kind: "crashed", bundle: { path: "/p" } })?.bundle).toBe("/p");
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
    const base = { state: "running", backend: { argv: [], generation: 1 }, restarts: 0,
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

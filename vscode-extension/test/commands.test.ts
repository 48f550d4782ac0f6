import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  Commands, GO_RESTART_COMMAND, NEVER, OFFERED_KEY, OWN_CLIENT_KEY, RESTART_GO_SERVER,
  START_GOPLS, bundleOf,
} from "../src/commands";
import type { ExecResult } from "../src/host";
import type { SessionStatus } from "../src/statusReader";
import { FakeHost } from "./fakeHost";

const ALT = "go.alternateTools";

function shimOf(host: FakeHost): string {
  return path.join(host.globalStoragePath, "shim", "default", "gopls");
}

/** `lspguard install-shim DIR` as the real CLI answers it. */
function installShimOk(host: FakeHost): void {
  host.execHandler = (_file, args): ExecResult => {
    if (args[0] === "install-shim") {
      const dir = args[args.length - 1] ?? "";
      return { code: 0, stdout: `wrote ${dir}/gopls\nIn VS Code settings ...\n`, stderr: "" };
    }
    return { code: 2, stdout: "", stderr: "unexpected" };
  };
}

function session(overrides: Partial<SessionStatus> = {}): SessionStatus {
  return {
    pid: 1234, state: "running", workspaceFolders: ["file:///ws/project"],
    backend: { argv: ["/usr/bin/gopls"], generation: 1 }, restarts: 0, latency: {}, pending: [],
    bundles: [],
    statusFile: "/run/lspguard/sessions/1234.json", ...overrides,
  };
}

interface Harness {
  host: FakeHost;
  commands: Commands;
  sessions: SessionStatus[];
  own: string[];
  refreshes: number;
}

function harness(): Harness {
  const host = new FakeHost();
  installShimOk(host);
  const h: Harness = { host, sessions: [], own: [], refreshes: 0, commands: undefined as never };
  h.commands = new Commands({
    host,
    sessions: () => Promise.resolve(h.sessions),
    startOwnClient: (shim) => { h.own.push(`start ${shim}`); return Promise.resolve(); },
    stopOwnClient: () => { h.own.push("stop"); return Promise.resolve(); },
    refresh: () => { h.refreshes += 1; },
    controlTimeoutMs: 3_000,
  });
  return h;
}

describe("enable / disable", () => {
  const before: [string, unknown][] = [
    ["unset", undefined],
    ["set with gopls", { gopls: "/usr/local/bin/gopls", dlv: "/usr/bin/dlv" }],
    ["set without gopls", { dlv: "/usr/bin/dlv" }],
    ["set to an empty object", {}],
  ];
  for (const [name, value] of before) {
    it(`round trip leaves go.alternateTools exactly as before (${name})`, async () => {
      const { host, commands } = harness();
      if (value !== undefined) host.workspaceSettings.set(ALT, structuredClone(value));
      host.userSettings.set(ALT, { gopls: "/user/level/gopls" }); // never touched
      const snapshot = new Map(host.workspaceSettings);

      expect(await commands.enable()).toBe(true);
      expect(host.workspaceSettings.get(ALT)).toEqual({ ...(value as object | undefined),
                                                       gopls: shimOf(host) });
      expect(commands.isEnabled()).toBe(true);

      expect(await commands.disable()).toBe(true);
      expect(host.workspaceSettings.has(ALT)).toBe(value !== undefined);
      expect(host.workspaceSettings).toEqual(snapshot);
      expect(host.userSettings.get(ALT)).toEqual({ gopls: "/user/level/gopls" });
      expect(host.configWrites.at(-1)).toEqual({ section: "go", key: "alternateTools", value });
      expect(commands.isEnabled()).toBe(false);
      expect(host.state.size).toBe(0); // nothing left behind in workspaceState
    });
  }

  it("shows what will change before writing, and runs install-shim into global storage",
     async () => {
    const { host, commands } = harness();
    host.workspaceSettings.set(ALT, { gopls: "/usr/local/bin/gopls" });
    host.userSettings.set("lspguard.configFile", "/etc/lspguard.toml");
    await commands.enable();
    const [confirm] = host.confirms;
    expect(confirm?.action).toBe("Enable");
    expect(confirm?.detail).toMatch(/Run: lspguard install-shim --config \/etc\/lspguard.toml \S+\/shim\/config-[0-9a-f]{12}$/m);
    expect(confirm?.detail).toContain('go.alternateTools.gopls (workspace settings): ' +
                                      '"/usr/local/bin/gopls" -> "');
    const call = host.execCalls[0];
    expect(call?.file).toBe("lspguard");
    expect(call?.args.slice(0, 3)).toEqual(["install-shim", "--config", "/etc/lspguard.toml"]);
    expect(call?.args[3]?.startsWith(path.join(host.globalStoragePath, "shim"))).toBe(true);
  });

  it("changes nothing when the user cancels", async () => {
    const { host, commands } = harness();
    host.confirmAnswer = false;
    expect(await commands.enable()).toBe(false);
    expect(host.execCalls).toEqual([]);
    expect(host.configWrites).toEqual([]);
    expect(host.state.size).toBe(0);
  });

  it("changes nothing and says why when install-shim fails", async () => {
    const { host, commands } = harness();
    host.execHandler = () => ({ code: null, stdout: "", stderr: "",
                                error: "lspguard: command not found" });
    expect(await commands.enable()).toBe(false);
    expect(host.configWrites).toEqual([]);
    expect(host.messages.at(-1)?.level).toBe("error");
    expect(host.messages.at(-1)?.message).toContain("lspguard.path");
  });

  it("offers to restart the Go language server", async () => {
    const { host, commands } = harness();
    host.answer = RESTART_GO_SERVER;
    await commands.enable();
    expect(host.commandsRun).toEqual([{ command: GO_RESTART_COMMAND, args: [] }]);
    host.answer = undefined;
    await commands.disable();
    expect(host.commandsRun).toHaveLength(1);
  });

  it("enable twice, disable once: the original value comes back", async () => {
    const { host, commands } = harness();
    host.workspaceSettings.set(ALT, { gopls: "/usr/local/bin/gopls" });
    await commands.enable();
    await commands.enable();
    await commands.disable();
    expect(host.workspaceSettings.get(ALT)).toEqual({ gopls: "/usr/local/bin/gopls" });
  });

  it("disable without a prior enable says so and writes nothing", async () => {
    const { host, commands } = harness();
    host.workspaceSettings.set(ALT, { gopls: "/usr/local/bin/gopls" });
    expect(await commands.disable()).toBe(false);
    expect(host.configWrites).toEqual([]);
    expect(host.messages.at(-1)?.message).toContain("not enabled");
  });

  it("autoEnable at startup enables without asking", async () => {
    const { host, commands } = harness();
    host.userSettings.set("lspguard.autoEnable", true);
    await commands.startup();
    expect(host.confirms).toEqual([]);
    expect(host.workspaceSettings.get(ALT)).toEqual({ gopls: shimOf(host) });
  });

  it("startup without autoEnable changes nothing", async () => {
    const { host, commands } = harness();
    await commands.startup();
    expect(host.configWrites).toEqual([]);
    expect(host.messages).toEqual([]);
  });

  it("startup in an enabled workspace installs the shim again (a new Go or lspguard)", async () => {
    const { host, commands } = harness();
    installShimOk(host);
    host.workspaceSettings.set(ALT, { gopls: shimOf(host) });
    await commands.startup();
    expect(host.execCalls.map((c) => c.args[0])).toEqual(["install-shim"]);
    expect(host.configWrites).toEqual([]);
    expect(host.messages).toEqual([]);
  });

  it("a failed refresh at startup is logged and keeps the shim", async () => {
    const { host, commands } = harness();
    host.execHandler = () => ({ code: 1, stdout: "", stderr: "go build failed" });
    host.workspaceSettings.set(ALT, { gopls: shimOf(host) });
    await commands.startup();
    expect(host.workspaceSettings.get(ALT)).toEqual({ gopls: shimOf(host) });
    expect(host.messages).toEqual([]);
    expect(host.logLines.join("\n")).toContain("could not refresh the gopls shim");
  });
});

describe("without the Go extension", () => {
  it("offers its own language client, starts it through the shim, and stops it", async () => {
    const h = harness();
    h.host.installedExtensions.clear();
    h.host.answer = START_GOPLS;
    await h.commands.startup();
    expect(h.own).toEqual([`start ${shimOf(h.host)}`]);
    expect(h.host.state.get(OWN_CLIENT_KEY)).toBe(true);
    expect(h.host.configWrites).toEqual([]); // go.alternateTools is not registered without Go
    expect(h.commands.isEnabled()).toBe(true);
    await h.commands.disable();
    expect(h.own.at(-1)).toBe("stop");
    expect(h.commands.isEnabled()).toBe(false);
  });

  it("restarts its client at the next startup without asking", async () => {
    const h = harness();
    h.host.installedExtensions.clear();
    h.host.state.set(OWN_CLIENT_KEY, true);
    await h.commands.startup();
    expect(h.host.messages).toEqual([]);
    expect(h.own).toEqual([`start ${shimOf(h.host)}`]);
  });

  it("does not ask again after \"Don't ask again\"", async () => {
    const h = harness();
    h.host.installedExtensions.clear();
    h.host.answer = NEVER;
    await h.commands.startup();
    expect(h.host.state.get(OFFERED_KEY)).toBe(true);
    await h.commands.startup();
    expect(h.host.messages).toHaveLength(1);
    expect(h.own).toEqual([]);
  });

  it("the start command asks, then starts", async () => {
    const h = harness();
    h.host.installedExtensions.clear();
    expect(await h.commands.startOwnClientCommand()).toBe(true);
    expect(h.host.confirms[0]?.action).toBe("Start gopls");
    h.host.installedExtensions.add("golang.go");
    expect(await h.commands.startOwnClientCommand()).toBe(false);
  });
});

/** A control socket speaking the protocol, in-process. */
async function fakeControl(dir: string, answers: Record<string, unknown>):
    Promise<{ socket: string; requests: unknown[]; close: () => Promise<void> }> {
  const socket = path.join(dir, "1234.sock");
  const requests: unknown[] = [];
  const server = net.createServer((conn) => {
    let buf = "";
    conn.on("data", (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const req = JSON.parse(buf.slice(0, i)) as { command: string };
        buf = buf.slice(i + 1);
        requests.push(req);
        const answer = answers[req.command];
        conn.write(JSON.stringify(answer ?? { ok: false, error: `unknown command '${req.command}'` }) + "\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket, requests,
    close: () => new Promise<void>((resolve) => { server.close(() => { resolve(); }); }),
  };
}

describe("restart / snapshot / reports / doctor", () => {
  let dir: string;
  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), "lspguard-cmd-")); });
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }); });

  it("restart asks the session over its socket", async () => {
    const h = harness();
    const ctl = await fakeControl(dir, { restart: { ok: true, result: { generation: 3 } } });
    h.sessions = [session({ socket: ctl.socket })];
    expect(await h.commands.restart()).toEqual({ generation: 3 });
    expect(ctl.requests).toEqual([{ command: "restart", args: {} }]);
    expect(h.host.messages.at(-1)?.message).toBe("lspguard: gopls restarted (generation 3).");
    expect(h.refreshes).toBe(1);
    await ctl.close();
  });

  it("restart: the proxy's asynchronous answer is reported as such", async () => {
    const h = harness();
    const ctl = await fakeControl(dir, {
      restart: { ok: true, result: { restarting: true, generation: 1 } } });
    h.sessions = [session({ socket: ctl.socket })];
    await h.commands.restart();
    expect(h.host.messages.at(-1)?.message)
      .toBe("lspguard: restarting gopls (replacing generation 1).");
    await ctl.close();
  });

  it("restart reports the session's error", async () => {
    const h = harness();
    const ctl = await fakeControl(dir, { restart: { ok: false, error: "restart budget spent" } });
    h.sessions = [session({ socket: ctl.socket })];
    expect(await h.commands.restart()).toBeUndefined();
    expect(h.host.messages.at(-1)).toMatchObject({
      level: "error", message: "lspguard: restart: restart budget spent" });
    await ctl.close();
  });

  it("restart with no session says so; with several asks which", async () => {
    const h = harness();
    expect(await h.commands.restart()).toBeUndefined();
    expect(h.host.messages.at(-1)?.message).toContain("no guarded gopls session");
    const ctl = await fakeControl(dir, { restart: { ok: true, result: null } });
    h.sessions = [session({ pid: 1, socket: ctl.socket }),
                  session({ pid: 2, socket: ctl.socket, state: "waiting" })];
    const offered: string[] = [];
    h.host.pickAnswer = (items) => { offered.push(...items.map((i) => i.label)); return items[1]; };
    await h.commands.restart();
    expect(offered).toEqual(["pid 1", "pid 2"]);
    expect(ctl.requests).toHaveLength(1);
    await ctl.close();
  });

  it("snapshot shows the bundle and opens its report", async () => {
    const h = harness();
    const ctl = await fakeControl(dir, { snapshot: { ok: true, result: {
      bundle: "/state/bundles/b1", report: "/state/bundles/b1/report.html" } } });
    h.sessions = [session({ socket: ctl.socket })];
    h.host.answer = "Open report";
    expect(await h.commands.snapshot()).toBe("/state/bundles/b1");
    expect(h.host.reportsOpened).toEqual(["/state/bundles/b1/report.html"]);
    h.host.answer = "Copy bundle path";
    await h.commands.snapshot();
    expect(h.host.clipboard).toBe("/state/bundles/b1");
    await ctl.close();
  });

  it("bundleOf reads strings and objects", () => {
    expect(bundleOf("/b")).toBe("/b");
    expect(bundleOf({ bundle: "/b" })).toBe("/b");
    expect(bundleOf({ path: "/p" })).toBe("/p");
    expect(bundleOf({ nothing: 1 })).toBeUndefined();
    expect(bundleOf(null)).toBeUndefined();
  });

  it("open latest report: newest of the status verdicts and `lspguard bundles --json`",
     async () => {
    const h = harness();
    h.sessions = [session({ lastVerdict: { kind: "deadlocked", summary: "s", at: 1000,
                                           bundle: "/b/from-status" } })];
    h.host.execHandler = (_f, args) => args[0] === "bundles"
      ? { code: 0, stderr: "", stdout: JSON.stringify([
          { path: "/b/old", at: 500 }, { path: "/b/newest", created: "2100-01-01T00:00:00Z" }]) }
      : { code: 1, stdout: "", stderr: "" };
    expect(await h.commands.openLatestReport()).toBe("/b/newest/report.html");
    expect(h.host.reportsOpened).toEqual(["/b/newest/report.html"]);
  });

  it("open latest report without any says so (and survives a missing bundles command)",
     async () => {
    const h = harness();
    h.host.execHandler = () => ({ code: 2, stdout: "", stderr: "invalid choice: 'bundles'" });
    expect(await h.commands.openLatestReport()).toBeUndefined();
    expect(h.host.messages.at(-1)?.message).toBe("lspguard: no incident reports yet.");
    h.sessions = [session({ lastVerdict: { kind: "crashed", summary: "s", bundle: "/b/x" } })];
    expect(await h.commands.openLatestReport()).toBe("/b/x/report.html");
  });

  it("doctor: output channel and problems (non-zero exit is a report, not a failure)",
     async () => {
    const h = harness();
    h.host.execHandler = (_f, args) => ({
      code: 2, stderr: "", stdout: JSON.stringify({
        version: 1, workspace: "/ws/project", worst: "error",
        findings: [
          { id: "devcontainer.gomodcache-host-mount", severity: "error",
            title: "GOMODCACHE on a host mount", found: "/go/pkg/mod is a bind mount",
            why: "gopls stats every file", fix: "use a volume",
            path: ".devcontainer/devcontainer.json", line: 12 },
          { id: "gocache.writable", severity: "ok", title: "GOCACHE writable", found: "yes",
            why: "", fix: "", path: "/root/.cache/go-build", line: null },
          { id: "symlink.loop", severity: "warning", title: "symlink loop", found: "a -> a",
            why: "ELOOP", fix: "remove it", path: "/ws/project/a" },
          { id: "versions", severity: "info", title: "gopls v0.21.1", found: "", why: "",
            fix: "", path: null, line: null },
        ] }),
      ...(args[0] === "doctor" ? {} : { code: 9 }),
    });
    expect(await h.commands.doctor()).toBe(3);
    expect(h.host.execCalls[0]?.args).toEqual(["doctor", "--json", "/ws/project"]);
    expect(h.host.logLines).toContain("[error] GOMODCACHE on a host mount " +
                                      "(devcontainer.gomodcache-host-mount)");
    expect(h.host.diagnostics.map((d) => [d.path, d.line, d.severity, d.code])).toEqual([
      ["/ws/project/.devcontainer/devcontainer.json", 11, "error",
       "devcontainer.gomodcache-host-mount"],
      ["/ws/project/a", 0, "warning", "symlink.loop"],
    ]);
    expect(h.host.messages.at(-1)?.message).toContain("3 finding(s)");
  });

  it("doctor that prints no JSON is an error", async () => {
    const h = harness();
    h.host.execHandler = () => ({ code: 2, stdout: "", stderr: "invalid choice: 'doctor'" });
    expect(await h.commands.doctor()).toBe(-1);
    expect(h.host.messages.at(-1)?.level).toBe("error");
    expect(h.host.logLines).toContain("invalid choice: 'doctor'");
  });

  it("the status bar menu runs the picked action", async () => {
    const h = harness();
    h.host.pickAnswer = (items) => items.find((i) => i.label.includes("Enable"));
    expect(await h.commands.showActions()).toContain("Enable for this workspace");
    expect(h.commands.isEnabled()).toBe(true);
    h.host.pickAnswer = (items) => items.find((i) => i.label.includes("Disable"));
    expect(await h.commands.showActions()).toContain("Disable");
    expect(h.commands.isEnabled()).toBe(false);
  });
});

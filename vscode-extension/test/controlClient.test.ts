// The TypeScript control client against the real Python server
// (lspguard.control.server.serve_control with stub handlers: test/fixtures/control_server.py).

import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { callControl, ControlError } from "../src/controlClient";
import { EXTENSION_ROOT, missing, PYTHON } from "./helpers";

const skip = missing({ python: PYTHON });

describe.skipIf(skip)("controlClient against lspguard.control.server.serve_control", () => {
  let dir: string;
  let socket: string;
  let server: ChildProcessWithoutNullStreams;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "lspguard-cc-"));
    socket = path.join(dir, "sessions", "4242.sock");
    server = spawn(PYTHON ?? "", [path.join(EXTENSION_ROOT, "test", "fixtures",
                                            "control_server.py"), socket]);
    let stderr = "";
    server.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      server.stdout.on("data", (d: Buffer) => { if (d.toString().includes("ready")) resolve(); });
      server.on("exit", (code) => { reject(new Error(`control server exited ${String(code)}: ${stderr}`)); });
    });
  });

  afterAll(async () => {
    server.stdin.end();
    await new Promise((resolve) => { server.on("exit", resolve); setTimeout(resolve, 5000); });
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("round trips status, restart and snapshot", async () => {
    const status = await callControl(socket, "status", { verbose: true });
    expect(status).toMatchObject({ state: "running", echo: { verbose: true } });
    expect(await callControl(socket, "restart", { reason: "test" }))
      .toEqual({ generation: 2, reason: "test" });
    expect(await callControl(socket, "snapshot")).toBe("/state/bundles/20250101-000000-manual");
  });

  it("the socket is 0600 in a 0700 dir", async () => {
    expect((await fs.lstat(socket)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(socket))).mode & 0o777).toBe(0o700);
  });

  it("turns error answers into ControlError with the server's message", async () => {
    await expect(callControl(socket, "broken")).rejects.toThrow(
      new ControlError("broken: broken failed: RuntimeError: the watchdog is not running"));
    await expect(callControl(socket, "stats")).rejects.toThrow(
      "stats: unknown command 'stats'; known commands: broken, restart, slow, snapshot, status");
  });

  it("times out with a clear message", async () => {
    await expect(callControl(socket, "slow", {}, 300)).rejects.toThrow(
      /no answer to "slow" from .* within 0.3 s/);
  });

  it("explains a missing socket and a dead one", async () => {
    await expect(callControl(path.join(dir, "nope.sock"), "status")).rejects.toThrow(
      /no lspguard control socket at .*nope.sock/);
    // A path that is no listening socket any more (libuv unlinks on close; a killed proxy
    // leaves its socket file behind, which connect() also refuses).
    const stale = path.join(dir, "stale.sock");
    await fs.writeFile(stale, "");
    await expect(callControl(stale, "status")).rejects.toThrow(
      /nothing is listening on .*stale.sock/);
  });

  it("the same raw connection survives a malformed line", async () => {
    const answers = await new Promise<string[]>((resolve, reject) => {
      const lines: string[] = [];
      let buf = "";
      const c = net.createConnection({ path: socket }, () => {
        c.write("this is not json\n");
        c.write('{"command": "status"}\n');
      });
      c.on("data", (d) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        if (lines.length === 2) { c.end(); resolve(lines); }
      });
      c.on("error", reject);
    });
    expect(JSON.parse(answers[0] ?? "")).toMatchObject({ ok: false });
    expect(JSON.parse(answers[1] ?? "")).toMatchObject({ ok: true,
                                                          result: { state: "running" } });
  });
});

// extension.ts wiring: activation registers exactly the commands package.json contributes and
// shows the status bar item, with "vscode" stubbed (test/vscodeStub.ts via vitest's alias).

import { readFileSync } from "node:fs";
import * as path from "node:path";

import { describe, expect, it } from "vitest";

import { activate, deactivate, ownClient } from "../src/extension";
import { EXTENSION_ROOT } from "./helpers";
import { registered, statusItems } from "./vscodeStub";

interface Manifest {
  contributes: { commands: { command: string; title: string; category: string }[];
                 configuration: { properties: Record<string, unknown> } };
  activationEvents: string[];
  extensionKind: string[];
}

const manifest = JSON.parse(readFileSync(path.join(EXTENSION_ROOT, "package.json"), "utf8")) as
  Manifest;

describe("activation", () => {
  it("registers every contributed command, and only those; shows the status item", async () => {
    const subscriptions: { dispose(): void }[] = [];
    activate({
      subscriptions,
      globalStorageUri: { fsPath: "/nonexistent/storage" },
      workspaceState: { get: () => undefined, update: () => Promise.resolve() },
    } as never);
    expect([...registered].sort())
      .toEqual(manifest.contributes.commands.map((c) => c.command).sort());
    await new Promise((r) => setTimeout(r, 200)); // first poll
    expect(statusItems).toHaveLength(1);
    expect(statusItems[0]?.command).toBe("lspguard.showActions");
    expect(statusItems[0]?.shown).toBe(true);
    for (const s of subscriptions) s.dispose();
    await expect(deactivate()).resolves.toBeUndefined(); // no own client: nothing to wait for
  });

  it("deactivate returns the own language client's stop promise", async () => {
    let finish = (): void => undefined;
    const stopPromise = new Promise<void>((resolve) => { finish = resolve; });
    let stops = 0;
    const client = { stop: () => { stops += 1; return stopPromise; } };
    await ownClient.replace(() => Promise.resolve(client), () => undefined);
    const result = deactivate();
    expect(result).toBe(stopPromise);
    expect(stops).toBe(1);
    let done = false;
    void result.then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false); // VS Code keeps waiting until gopls has shut down and exited
    finish();
    await result;
    expect(done).toBe(true);
    await deactivate(); // a second deactivate does not stop it again
    expect(stops).toBe(1);
  });

  it("the manifest: Go activation, workspace side, the three settings, titled commands", () => {
    expect(manifest.activationEvents).toEqual(["workspaceContains:**/go.mod", "onLanguage:go"]);
    expect(manifest.extensionKind).toEqual(["workspace"]);
    expect(Object.keys(manifest.contributes.configuration.properties).sort())
      .toEqual(["lspguard.autoEnable", "lspguard.configFile", "lspguard.path"]);
    const titles = manifest.contributes.commands.map((c) => `${c.category}: ${c.title}`);
    expect(titles).toEqual(expect.arrayContaining([
      "lspguard: Enable for this workspace", "lspguard: Disable", "lspguard: Restart gopls",
      "lspguard: Take snapshot", "lspguard: Open latest incident report",
      "lspguard: Run doctor"]));
  });
});

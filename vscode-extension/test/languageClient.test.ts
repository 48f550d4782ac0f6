import { describe, expect, it } from "vitest";

import type { ClientLike } from "../src/languageClient";
import {
  buildClientOptions, buildServerOptions, ClientSlot, startLanguageClient,
} from "../src/languageClient";

/** A stand-in LanguageClient whose stop() is a promise the test settles. */
function fakeClient(): ClientLike & { stops: number; starts: number; finish: () => void;
                                      fail: (err: Error) => void; stopPromise?: Promise<void> } {
  let finish = (): void => undefined;
  let fail: (err: Error) => void = () => undefined;
  const c = {
    starts: 0, stops: 0,
    stopPromise: undefined as Promise<void> | undefined,
    start: () => { c.starts += 1; return Promise.resolve(); },
    stop: () => {
      c.stops += 1;
      c.stopPromise = new Promise<void>((resolve, reject) => { finish = resolve; fail = reject; });
      return c.stopPromise;
    },
    finish: () => { finish(); },
    fail: (err: Error) => { fail(err); },
  };
  return c;
}

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => { done = true; }, () => { done = true; });
  await new Promise((r) => setTimeout(r, 10));
  return done;
}

describe("no-Go-extension LanguageClient options", () => {
  const shim = "/storage/shim/default/gopls";

  it("runs the shim on stdio with no transport flag, keeping the environment", () => {
    const server = buildServerOptions({ shim, configFile: "" });
    expect(server.command).toBe(shim);
    expect(server.args).toEqual([]);
    expect(server.transport).toBeUndefined(); // TransportKind.stdio would append --stdio
    expect(server.options?.env).toMatchObject({ PATH: process.env.PATH });
    expect((server.options?.env as Record<string, string>).LSPGUARD_CONFIG).toBeUndefined();
  });

  it("passes the config file and go.languageServerFlags", () => {
    const server = buildServerOptions({ shim, configFile: "/etc/lspguard.toml",
                                        flags: ["-rpc.trace", 5, "serve"] });
    expect(server.args).toEqual(["-rpc.trace", "serve"]);
    expect(server.options?.env).toMatchObject({ LSPGUARD_CONFIG: "/etc/lspguard.toml" });
  });

  it("covers Go files and go.mod/go.work, sends the gopls settings", () => {
    const client = buildClientOptions({ shim, configFile: "",
                                        goplsSettings: { "ui.semanticTokens": true } });
    expect(client.documentSelector).toEqual([
      { language: "go", scheme: "file" },
      { language: "go", scheme: "untitled" },
      { language: "go.mod", scheme: "file" },
      { language: "go.work", scheme: "file" },
      { language: "go.sum", scheme: "file" },
      { language: "gotmpl", scheme: "file" },
    ]);
    expect(client.initializationOptions).toEqual({ "ui.semanticTokens": true });
    expect(client.outputChannelName).toBe("gopls (lspguard)");
    expect(client.synchronize).toEqual({ configurationSection: "gopls" });
    expect("initializationOptions" in buildClientOptions({ shim, configFile: "" })).toBe(false);
  });
});

describe("stopping the language client", () => {
  it("stop() is the client's own stop promise, not fire-and-forget", async () => {
    const client = fakeClient();
    const seen: unknown[] = [];
    const handle = await startLanguageClient({ shim: "/shim", configFile: "" },
                                             (id, name, server, options) => {
      seen.push(id, name, server.command, options.outputChannelName);
      return Promise.resolve(client);
    });
    expect(seen).toEqual(["lspguard-gopls", "gopls (lspguard)", "/shim", "gopls (lspguard)"]);
    expect(client.starts).toBe(1);
    const stopping = handle.stop();
    expect(stopping).toBe(client.stopPromise);
    expect(await settled(stopping)).toBe(false); // still waiting for shutdown/exit
    client.finish();
    await expect(stopping).resolves.toBeUndefined();
  });

  it("the slot: stop waits for the client, replace stops the old one first", async () => {
    const slot = new ClientSlot();
    await expect(slot.stop()).resolves.toBeUndefined(); // nothing running
    const first = fakeClient();
    await slot.replace(() => startLanguageClient({ shim: "s", configFile: "" },
                                                 () => Promise.resolve(first)),
                       () => undefined);
    const second = fakeClient();
    const replacing = slot.replace(() => startLanguageClient({ shim: "s", configFile: "" },
                                                             () => Promise.resolve(second)),
                                   () => undefined);
    await new Promise((r) => setTimeout(r, 10));
    expect(first.stops).toBe(1);
    expect(second.starts).toBe(0); // not before the first has stopped
    first.finish();
    await replacing;
    expect(second.starts).toBe(1);
    const stopping = slot.stop();
    expect(stopping).toBe(second.stopPromise);
    second.finish();
    await stopping;
    await slot.stop();
    expect(second.stops).toBe(1); // stopped once: the slot forgets it
  });

  it("a failed stop is reported and the new client starts anyway", async () => {
    const slot = new ClientSlot();
    const first = fakeClient();
    await slot.replace(() => Promise.resolve({ stop: () => first.stop() }), () => undefined);
    const errors: unknown[] = [];
    const next = fakeClient();
    const replacing = slot.replace(async () => {
      await next.start();
      return { stop: () => next.stop() };
    }, (err) => errors.push(err));
    await new Promise((r) => setTimeout(r, 10));
    first.fail(new Error("Stopping the server timed out"));
    await replacing;
    expect(errors.map(String)).toEqual(["Error: Stopping the server timed out"]);
    expect(next.starts).toBe(1);
  });
});

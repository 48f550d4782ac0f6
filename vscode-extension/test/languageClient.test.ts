import { describe, expect, it } from "vitest";

import { buildClientOptions, buildServerOptions } from "../src/languageClient";

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

// No-Go-extension mode: without golang.go installed, the extension can start its own
// vscode-languageclient LanguageClient for Go files, running gopls through the lspguard shim.
// The options are built by pure functions (tested); vscode-languageclient itself is loaded only
// when a client is started, so nothing here needs VS Code to be imported.

import type { Executable, LanguageClientOptions } from "vscode-languageclient/node";

export const GO_EXTENSION_ID = "golang.go";
export const CLIENT_ID = "lspguard-gopls";
export const CLIENT_NAME = "gopls (lspguard)";

export interface ClientInputs {
  /** The lspguard gopls shim. */
  shim: string;
  /** lspguard.configFile ("" for none). */
  configFile: string;
  /** The `gopls` settings section (as vscode-go sends it): initializationOptions. */
  goplsSettings?: unknown;
  /** `go.languageServerFlags`, if the user has them. */
  flags?: unknown;
}

export function buildServerOptions(inputs: ClientInputs): Executable {
  const flags = Array.isArray(inputs.flags)
    ? inputs.flags.filter((f): f is string => typeof f === "string") : [];
  const env: Record<string, string> = {};
  if (inputs.configFile) env.LSPGUARD_CONFIG = inputs.configFile;
  return {
    command: inputs.shim,
    args: flags,
    // The shim is a gopls look-alike on stdio: no transport flags (vscode-languageclient would
    // add --stdio, which gopls does not take).
    options: { env: { ...process.env, ...env } },
  };
}

export function buildClientOptions(inputs: ClientInputs): LanguageClientOptions {
  const init = typeof inputs.goplsSettings === "object" && inputs.goplsSettings !== null
    ? inputs.goplsSettings : undefined;
  return {
    documentSelector: [
      { language: "go", scheme: "file" },
      { language: "go", scheme: "untitled" },
      { language: "go.mod", scheme: "file" },
      { language: "go.work", scheme: "file" },
      { language: "go.sum", scheme: "file" },
      { language: "gotmpl", scheme: "file" },
    ],
    ...(init !== undefined ? { initializationOptions: init } : {}),
    outputChannelName: CLIENT_NAME,
    // gopls asks for its "gopls" section with workspace/configuration; vscode-languageclient
    // answers that from VS Code settings by default.
    synchronize: { configurationSection: "gopls" },
  };
}

export interface Stoppable {
  dispose(): void;
}

/** Start the client; dispose the result to stop it. */
export async function startLanguageClient(inputs: ClientInputs): Promise<Stoppable> {
  const lc = await import("vscode-languageclient/node");
  const client = new lc.LanguageClient(CLIENT_ID, CLIENT_NAME, buildServerOptions(inputs),
                                       buildClientOptions(inputs));
  await client.start();
  return { dispose: () => { void client.stop(); } };
}

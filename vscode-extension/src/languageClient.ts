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

/** A running client. `stop()` is the client's own stop promise: it settles once gopls (here:
 * the lspguard shim) has answered `shutdown` and been sent `exit`, or the stop timed out. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** The part of vscode-languageclient's LanguageClient this module uses. */
export interface ClientLike {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type ClientFactory = (id: string, name: string, server: Executable,
                             client: LanguageClientOptions) => Promise<ClientLike>;

/** vscode-languageclient, loaded only now (it needs the real "vscode" module). As vscode-go
 * does, a request that gopls fails goes to the output channel, not into an error notification:
 * gopls answers some cancelled requests with "context canceled" (code 0, not
 * RequestCancelled), and a hover next to a multi-byte rune with "rune error". */
const newLanguageClient: ClientFactory = async (id, name, server, client) => {
  const lc = await import("vscode-languageclient/node");
  return new lc.LanguageClient(id, name, server,
                               { revealOutputChannelOn: lc.RevealOutputChannelOn.Never, ...client });
};

/** Start the client; `stop()` the result to stop it (and wait for that). */
export async function startLanguageClient(inputs: ClientInputs,
                                          create: ClientFactory = newLanguageClient):
    Promise<Stoppable> {
  const client = await create(CLIENT_ID, CLIENT_NAME, buildServerOptions(inputs),
                              buildClientOptions(inputs));
  await client.start();
  return { stop: () => client.stop() };
}

/** The one language client the extension runs itself (no-Go-extension mode), if any. */
export class ClientSlot {
  private client: Stoppable | undefined;

  /** Stop the current client and wait for it, then start another. A failed stop (it timed out,
   * say) goes to `onStopError` and does not keep the new client from starting. */
  async replace(start: () => Promise<Stoppable>,
                onStopError: (err: unknown) => void): Promise<void> {
    try {
      await this.stop();
    } catch (err) {
      onStopError(err);
    }
    this.client = await start();
  }

  /** Stop the current client: its own stop promise, so a caller (deactivate) can wait for the
   * shutdown/exit; resolved at once when there is no client. */
  stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    return client ? client.stop() : Promise.resolve();
  }
}

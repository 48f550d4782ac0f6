// Entry point: create the output channel, problems collection and status bar item, wire the
// commands (commands.ts) and the status monitor (monitor.ts). No logic lives here.

import * as vscode from "vscode";

import { Commands } from "./commands";
import type { Host } from "./host";
import { buildClientOptions, ClientSlot, startLanguageClient } from "./languageClient";
import { StatusMonitor } from "./monitor";
import { readSettings } from "./settings";
import { askSessionsDir, candidateSessionDirs } from "./statusReader";
import { VscodeHost } from "./vscodeHost";

/** The language client of no-Go-extension mode (exported for the tests). */
export const ownClient = new ClientSlot();

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("lspguard");
  const diagnostics = vscode.languages.createDiagnosticCollection("lspguard");
  const item = vscode.window.createStatusBarItem("lspguard.status",
                                                 vscode.StatusBarAlignment.Right, 100);
  item.name = "lspguard";
  item.command = "lspguard.showActions";
  context.subscriptions.push(output, diagnostics, item);
  const host: Host = new VscodeHost(context, output, diagnostics, item);

  let dirs = candidateSessionDirs();
  const monitor: StatusMonitor = new StatusMonitor({
    host, dirs: () => dirs, enabled: () => commands.isEnabled(),
  });
  const commands: Commands = new Commands({
    host,
    sessions: () => monitor.pollOnce(),
    startOwnClient: async (shim) => {
      const inputs = {
        shim,
        configFile: readSettings(host).configFile,
        goplsSettings: host.getConfig("", "gopls"),
        flags: host.getConfig("go", "languageServerFlags"),
      };
      host.log(`starting gopls through ${shim} for ${JSON.stringify(
        buildClientOptions(inputs).documentSelector)}`);
      await ownClient.replace(() => startLanguageClient(inputs), (err: unknown) => {
        host.log(`stopping the previous gopls language client failed: ${String(err)}`);
      });
    },
    // Disable: the client is gone either way; a stop that failed (timed out) is only logged.
    stopOwnClient: () => ownClient.stop().catch((err: unknown) => {
      host.log(`stopping the gopls language client failed: ${String(err)}`);
    }),
    refresh: () => { monitor.refresh(); },
  });

  const register = (id: string, fn: () => Promise<unknown>): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  };
  register("lspguard.enable", () => commands.enable());
  register("lspguard.disable", () => commands.disable());
  register("lspguard.restart", () => commands.restart());
  register("lspguard.snapshot", () => commands.snapshot());
  register("lspguard.openLatestReport", () => commands.openLatestReport());
  register("lspguard.doctor", () => commands.doctor());
  register("lspguard.showActions", () => commands.showActions());
  register("lspguard.startLanguageClient", () => commands.startOwnClientCommand());

  monitor.start();
  context.subscriptions.push({ dispose: () => { monitor.stop(); } });
  // Ask lspguard itself where its session files are (exact, unlike the platform guesses).
  void askSessionsDir(host, readSettings(host).path).then((dir) => {
    if (dir && !dirs.includes(dir)) {
      dirs = [dir, ...dirs];
      monitor.refresh();
    }
  });
  void commands.startup();
}

/** VS Code waits for the returned promise: our own language client's stop (shutdown, exit). */
export function deactivate(): Promise<void> {
  return ownClient.stop();
}

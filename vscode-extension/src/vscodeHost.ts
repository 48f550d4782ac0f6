// Host (host.ts) implemented with the real VS Code API: the only module besides extension.ts
// that imports "vscode".

import { promises as fs } from "node:fs";
import * as path from "node:path";

import * as vscode from "vscode";

import { run } from "./exec";
import type {
  ConfigInspection, ExecOptions, ExecResult, Host, HostDiagnostic, Memento, PickItem,
  StatusBarView,
} from "./host";

const SEVERITY: Record<HostDiagnostic["severity"], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

const COMMANDS_IN_TOOLTIP = ["lspguard.restart", "lspguard.snapshot", "lspguard.openLatestReport",
                             "lspguard.doctor", "lspguard.enable", "lspguard.disable"];

export class VscodeHost implements Host {
  readonly globalStoragePath: string;
  readonly workspaceState: Memento;

  constructor(context: vscode.ExtensionContext,
              private readonly output: vscode.OutputChannel,
              private readonly diagnostics: vscode.DiagnosticCollection,
              private readonly item: vscode.StatusBarItem) {
    this.globalStoragePath = context.globalStorageUri.fsPath;
    this.workspaceState = {
      get: (key: string): unknown => context.workspaceState.get<unknown>(key),
      update: async (key: string, value: unknown): Promise<void> => {
        await context.workspaceState.update(key, value);
      },
    };
  }

  workspaceFolders(): string[] {
    return (vscode.workspace.workspaceFolders ?? [])
      .filter((f) => f.uri.scheme === "file")
      .map((f) => f.uri.fsPath);
  }

  getConfig(section: string, key: string): unknown {
    return vscode.workspace.getConfiguration(section || undefined).get<unknown>(key);
  }

  inspectConfig(section: string, key: string): ConfigInspection<unknown> | undefined {
    return vscode.workspace.getConfiguration(section).inspect<unknown>(key);
  }

  async updateWorkspaceConfig(section: string, key: string, value: unknown): Promise<void> {
    await vscode.workspace.getConfiguration(section)
      .update(key, value, vscode.ConfigurationTarget.Workspace);
  }

  async info(message: string, ...actions: string[]): Promise<string | undefined> {
    return vscode.window.showInformationMessage(message, ...actions);
  }

  async warn(message: string, ...actions: string[]): Promise<string | undefined> {
    return vscode.window.showWarningMessage(message, ...actions);
  }

  async error(message: string, ...actions: string[]): Promise<string | undefined> {
    return vscode.window.showErrorMessage(message, ...actions);
  }

  async confirm(message: string, detail: string, action: string): Promise<boolean> {
    return (await vscode.window.showInformationMessage(message, { modal: true, detail },
                                                       action)) === action;
  }

  async pick<T extends PickItem>(items: readonly T[], placeholder: string):
      Promise<T | undefined> {
    return vscode.window.showQuickPick(items, { placeHolder: placeholder });
  }

  exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return run(file, args, options);
  }

  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    return vscode.commands.executeCommand(command, ...args);
  }

  isExtensionInstalled(id: string): boolean {
    return vscode.extensions.getExtension(id) !== undefined;
  }

  async openReport(file: string): Promise<void> {
    let html: string;
    try {
      html = await fs.readFile(file, "utf8");
    } catch (err) {
      await this.error(`lspguard: cannot read the report ${file}: ${String(err)}`);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      "lspguard.report", `lspguard: ${path.basename(path.dirname(file))}`,
      vscode.ViewColumn.Active,
      // The report is self-contained (no network); its inline scripts draw the timeline.
      { enableScripts: true, localResourceRoots: [vscode.Uri.file(path.dirname(file))] });
    panel.webview.html = html;
  }

  async openFile(file: string): Promise<void> {
    await vscode.window.showTextDocument(vscode.Uri.file(file));
  }

  async copyToClipboard(text: string): Promise<void> {
    await vscode.env.clipboard.writeText(text);
  }

  log(line: string): void {
    this.output.appendLine(line);
  }

  showLog(): void {
    this.output.show(true);
  }

  setDiagnostics(items: readonly HostDiagnostic[]): void {
    this.diagnostics.clear();
    const byFile = new Map<string, vscode.Diagnostic[]>();
    for (const d of items) {
      const diagnostic = new vscode.Diagnostic(new vscode.Range(d.line, 0, d.line, 1000),
                                               d.message, SEVERITY[d.severity]);
      diagnostic.source = d.source;
      if (d.code) diagnostic.code = d.code;
      const list = byFile.get(d.path) ?? [];
      list.push(diagnostic);
      byFile.set(d.path, list);
    }
    for (const [file, list] of byFile) this.diagnostics.set(vscode.Uri.file(file), list);
  }

  setStatus(view: StatusBarView): void {
    const tooltip = new vscode.MarkdownString(view.tooltip, true);
    tooltip.isTrusted = { enabledCommands: COMMANDS_IN_TOOLTIP };
    this.item.text = view.text;
    this.item.tooltip = tooltip;
    this.item.backgroundColor = view.severity === "error"
      ? new vscode.ThemeColor("statusBarItem.errorBackground")
      : view.severity === "warning"
        ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    if (view.visible) this.item.show();
    else this.item.hide();
  }
}

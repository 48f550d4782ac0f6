// A Host (src/host.ts) that records everything and answers from scripts: the editor, faked.

import type {
  ConfigInspection, ExecOptions, ExecResult, Host, HostDiagnostic, PickItem, StatusBarView,
} from "../src/host";

export interface ExecCall {
  file: string;
  args: readonly string[];
  options: ExecOptions | undefined;
}

export type Answer = string | undefined | ((message: string, actions: string[]) => string | undefined);

export class FakeHost implements Host {
  globalStoragePath = "/home/u/.vscode-server/data/User/globalStorage/lspguard.lspguard";
  folders: string[] = ["/ws/project"];
  /** Workspace-level settings, "section.key" → value (absent = unset). */
  workspaceSettings = new Map<string, unknown>();
  /** User-level settings, "section.key" → value. */
  userSettings = new Map<string, unknown>();
  defaults = new Map<string, unknown>([["lspguard.path", "lspguard"], ["lspguard.configFile", ""],
                                       ["lspguard.autoEnable", false]]);
  state = new Map<string, unknown>();
  workspaceState = {
    get: (key: string): unknown => structuredClone(this.state.get(key)),
    update: (key: string, value: unknown): Promise<void> => {
      if (value === undefined) this.state.delete(key);
      else this.state.set(key, JSON.parse(JSON.stringify(value)) as unknown);
      return Promise.resolve();
    },
  };

  messages: { level: "info" | "warn" | "error"; message: string; actions: string[] }[] = [];
  confirms: { message: string; detail: string; action: string }[] = [];
  /** What the user clicks: by default nothing (dismiss). */
  answer: Answer = undefined;
  confirmAnswer = true;
  pickAnswer: (items: readonly PickItem[]) => PickItem | undefined = () => undefined;
  execCalls: ExecCall[] = [];
  execHandler: (file: string, args: readonly string[], options?: ExecOptions) =>
    ExecResult | Promise<ExecResult> = () => ({ code: 127, stdout: "", stderr: "",
                                                 error: "not scripted" });
  commandsRun: { command: string; args: unknown[] }[] = [];
  installedExtensions = new Set<string>(["golang.go"]);
  reportsOpened: string[] = [];
  filesOpened: string[] = [];
  clipboard = "";
  logLines: string[] = [];
  logShown = 0;
  diagnostics: HostDiagnostic[] = [];
  status: StatusBarView | undefined;
  configWrites: { section: string; key: string; value: unknown }[] = [];

  workspaceFolders(): string[] {
    return [...this.folders];
  }

  getConfig(section: string, key: string): unknown {
    const k = section ? `${section}.${key}` : key;
    for (const store of [this.workspaceSettings, this.userSettings, this.defaults]) {
      if (store.has(k)) return structuredClone(store.get(k));
    }
    return undefined;
  }

  inspectConfig(section: string, key: string): ConfigInspection<unknown> | undefined {
    const k = `${section}.${key}`;
    const out: ConfigInspection<unknown> = {};
    if (this.defaults.has(k)) out.defaultValue = structuredClone(this.defaults.get(k));
    if (this.userSettings.has(k)) out.globalValue = structuredClone(this.userSettings.get(k));
    if (this.workspaceSettings.has(k)) {
      out.workspaceValue = structuredClone(this.workspaceSettings.get(k));
    }
    return out;
  }

  updateWorkspaceConfig(section: string, key: string, value: unknown): Promise<void> {
    this.configWrites.push({ section, key, value: structuredClone(value) });
    const k = `${section}.${key}`;
    if (value === undefined) this.workspaceSettings.delete(k);
    else this.workspaceSettings.set(k, structuredClone(value));
    return Promise.resolve();
  }

  private respond(level: "info" | "warn" | "error", message: string, actions: string[]):
      Promise<string | undefined> {
    this.messages.push({ level, message, actions });
    const a = this.answer;
    const choice = typeof a === "function" ? a(message, actions) : a;
    return Promise.resolve(choice !== undefined && actions.includes(choice) ? choice : undefined);
  }

  info(message: string, ...actions: string[]): Promise<string | undefined> {
    return this.respond("info", message, actions);
  }

  warn(message: string, ...actions: string[]): Promise<string | undefined> {
    return this.respond("warn", message, actions);
  }

  error(message: string, ...actions: string[]): Promise<string | undefined> {
    return this.respond("error", message, actions);
  }

  confirm(message: string, detail: string, action: string): Promise<boolean> {
    this.confirms.push({ message, detail, action });
    return Promise.resolve(this.confirmAnswer);
  }

  pick<T extends PickItem>(items: readonly T[]): Promise<T | undefined> {
    return Promise.resolve(this.pickAnswer(items) as T | undefined);
  }

  async exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.execCalls.push({ file, args: [...args], options });
    return this.execHandler(file, args, options);
  }

  executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    this.commandsRun.push({ command, args });
    return Promise.resolve(undefined);
  }

  isExtensionInstalled(id: string): boolean {
    return this.installedExtensions.has(id);
  }

  openReport(path: string): Promise<void> {
    this.reportsOpened.push(path);
    return Promise.resolve();
  }

  openFile(path: string): Promise<void> {
    this.filesOpened.push(path);
    return Promise.resolve();
  }

  copyToClipboard(text: string): Promise<void> {
    this.clipboard = text;
    return Promise.resolve();
  }

  log(line: string): void {
    this.logLines.push(line);
  }

  showLog(): void {
    this.logShown += 1;
  }

  setDiagnostics(items: readonly HostDiagnostic[]): void {
    this.diagnostics = [...items];
  }

  setStatus(view: StatusBarView): void {
    this.status = view;
  }
}

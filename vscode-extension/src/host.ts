// The small slice of the VS Code API the extension's logic uses. Everything behind it is
// implemented by vscodeHost.ts in the editor and by a fake in the tests, so every command's
// logic runs (and is tested) without starting VS Code.

export interface ConfigInspection<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

export interface ExecOptions {
  cwd?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface ExecResult {
  /** Exit code; null when the process could not be started or was killed. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why the process could not be run at all (ENOENT, timeout, ...), if so. */
  error?: string;
}

export type DiagnosticSeverity = "error" | "warning" | "information" | "hint";

export interface HostDiagnostic {
  /** Absolute file path. */
  path: string;
  /** 0-based line. */
  line: number;
  message: string;
  severity: DiagnosticSeverity;
  code?: string;
  source: string;
}

export interface Memento {
  get(key: string): unknown;
  update(key: string, value: unknown): Promise<void>;
}

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
}

export type StatusSeverity = "ok" | "warning" | "error";

export interface StatusBarView {
  text: string;
  /** Markdown; command links (command:lspguard.*) are allowed. */
  tooltip: string;
  severity: StatusSeverity;
  visible: boolean;
}

export interface Host {
  readonly globalStoragePath: string;
  readonly workspaceState: Memento;
  /** File system paths of the workspace folders (file: scheme only). */
  workspaceFolders(): string[];

  /** The effective value of `section.key`. */
  getConfig(section: string, key: string): unknown;
  inspectConfig(section: string, key: string): ConfigInspection<unknown> | undefined;
  /** Write `section.key` in the workspace settings; `undefined` removes the key. */
  updateWorkspaceConfig(section: string, key: string, value: unknown): Promise<void>;

  info(message: string, ...actions: string[]): Promise<string | undefined>;
  warn(message: string, ...actions: string[]): Promise<string | undefined>;
  error(message: string, ...actions: string[]): Promise<string | undefined>;
  /** A modal question; true only if the user chose `action`. */
  confirm(message: string, detail: string, action: string): Promise<boolean>;
  pick<T extends PickItem>(items: readonly T[], placeholder: string): Promise<T | undefined>;

  exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  executeCommand(command: string, ...args: unknown[]): Promise<unknown>;
  isExtensionInstalled(id: string): boolean;

  /** Show an incident report (an HTML file on the workspace side). */
  openReport(path: string): Promise<void>;
  openFile(path: string): Promise<void>;
  copyToClipboard(text: string): Promise<void>;

  /** The "lspguard" output channel. */
  log(line: string): void;
  showLog(): void;
  /** Replace the doctor's problems with `items`. */
  setDiagnostics(items: readonly HostDiagnostic[]): void;
  setStatus(view: StatusBarView): void;
}

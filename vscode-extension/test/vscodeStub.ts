// Just enough of the "vscode" module for extension.ts to activate in a test (vitest aliases
// "vscode" to this file). Records what activation registers.

export const registered: string[] = [];
export const statusItems: { text: string; shown: boolean; command?: string }[] = [];

class Disposable {
  dispose(): void { /* nothing */ }
}

export const DiagnosticSeverity = { Error: 0, Warning: 1, Information: 2, Hint: 3 };
export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 };
export const ViewColumn = { Active: -1 };

export class ThemeColor { constructor(readonly id: string) {} }
export class MarkdownString {
  isTrusted: unknown;
  constructor(readonly value: string, readonly supportThemeIcons = false) {}
}
export class Range { constructor(readonly a: number, readonly b: number, readonly c: number,
                                 readonly d: number) {} }
export class Diagnostic {
  source?: string;
  code?: string;
  constructor(readonly range: Range, readonly message: string, readonly severity: number) {}
}
export const Uri = { file: (p: string) => ({ scheme: "file", fsPath: p }) };

export const window = {
  createOutputChannel: () => ({ appendLine: () => undefined, show: () => undefined,
                                dispose: () => undefined }),
  createStatusBarItem: () => {
    const item = { text: "", shown: false, command: undefined as string | undefined,
                   name: "", tooltip: undefined as unknown, backgroundColor: undefined as unknown,
                   show() { item.shown = true; }, hide() { item.shown = false; },
                   dispose: () => undefined };
    statusItems.push(item);
    return item;
  },
  showInformationMessage: () => Promise.resolve(undefined),
  showWarningMessage: () => Promise.resolve(undefined),
  showErrorMessage: () => Promise.resolve(undefined),
  showQuickPick: () => Promise.resolve(undefined),
};
export const languages = {
  createDiagnosticCollection: () => ({ clear: () => undefined, set: () => undefined,
                                       dispose: () => undefined }),
};
export const commands = {
  registerCommand: (id: string) => { registered.push(id); return new Disposable(); },
  executeCommand: () => Promise.resolve(undefined),
};
export const workspace = {
  workspaceFolders: [{ uri: { scheme: "file", fsPath: "/nonexistent/ws" } }],
  getConfiguration: () => ({ get: () => undefined, inspect: () => ({}),
                             update: () => Promise.resolve() }),
};
export const extensions = { getExtension: (id: string) => (id === "golang.go" ? {} : undefined) };
export const env = { clipboard: { writeText: () => Promise.resolve() } };

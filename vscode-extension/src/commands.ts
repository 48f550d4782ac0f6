// The logic of every command, written against Host (host.ts) so the tests can run each one with
// a fake editor. extension.ts only registers these methods.

import { callControl, ControlError } from "./controlClient";
import { DoctorError, runDoctor } from "./doctor";
import type { Host, PickItem } from "./host";
import { latestBundle, reportPath } from "./incidents";
import { GO_EXTENSION_ID } from "./languageClient";
import {
  ALTERNATE_TOOLS, clone, GO_SECTION, loadSaved, planDisable, planEnable, readSettings, SAVED_KEY,
  workspaceAlternateTools,
} from "./settings";
import {
  installShim, installShimArgs, isOurShim, LspguardCommandError, shimDir, shimPath,
} from "./shim";
import type { SessionStatus } from "./statusReader";

export const RESTART_GO_SERVER = "Restart Go language server";
export const GO_RESTART_COMMAND = "go.languageserver.restart";
/** workspaceState: lspguard enabled in no-Go-extension mode (own LanguageClient). */
export const OWN_CLIENT_KEY = "lspguard.ownClient";
/** workspaceState: the no-Go-extension offer was answered (do not ask on every start). */
export const OFFERED_KEY = "lspguard.offeredOwnClient";
export const START_GOPLS = "Start gopls";
export const NOT_NOW = "Not now";
export const NEVER = "Don't ask again";

export interface CommandDeps {
  host: Host;
  /** Live sessions serving this workspace, newest first (fresh read). */
  sessions: () => Promise<SessionStatus[]>;
  /** Start the own LanguageClient for the given shim (no-Go-extension mode). */
  startOwnClient: (shim: string) => Promise<void>;
  stopOwnClient: () => Promise<void>;
  /** Something changed (enabled/disabled, restarted): refresh the status bar now. */
  refresh: () => void;
  controlTimeoutMs?: number;
}

interface SessionPick extends PickItem {
  session: SessionStatus;
}

export class Commands {
  constructor(private readonly deps: CommandDeps) {}

  private get host(): Host {
    return this.deps.host;
  }

  goExtensionInstalled(): boolean {
    return this.host.isExtensionInstalled(GO_EXTENSION_ID);
  }

  /** Is lspguard on for this workspace (shim in go.alternateTools, or our own client)? */
  isEnabled(): boolean {
    if (!this.goExtensionInstalled()) return this.host.workspaceState.get(OWN_CLIENT_KEY) === true;
    const current = workspaceAlternateTools(this.host);
    const gopls = typeof current === "object" && current !== null
      ? (current as Record<string, unknown>).gopls : undefined;
    return isOurShim(gopls, this.host.globalStoragePath);
  }

  /** At activation: auto-enable, restart our own client, or offer it when Go is missing. */
  async startup(): Promise<void> {
    const host = this.host;
    const settings = readSettings(host);
    if (this.goExtensionInstalled()) {
      if (this.isEnabled()) await this.refreshShim();
      else if (settings.autoEnable) await this.enable({ confirm: false });
      return;
    }
    if (host.workspaceState.get(OWN_CLIENT_KEY) === true || settings.autoEnable) {
      await this.enableOwnClient(false);
      return;
    }
    if (host.workspaceState.get(OFFERED_KEY) === true) return;
    const choice = await host.info(
      "lspguard: the Go extension (golang.go) is not installed. Run gopls through lspguard for " +
      "Go files in this workspace?", START_GOPLS, NOT_NOW, NEVER);
    if (choice === NEVER) await host.workspaceState.update(OFFERED_KEY, true);
    if (choice === START_GOPLS) await this.enableOwnClient(false);
  }

  /** Install the shim again where go.alternateTools.gopls already points: a no-op from
   * lspguard's build cache, unless Go or lspguard changed since it was built (then VS Code Go
   * would warn "Tools (gopls) need recompiling"). A failure is logged; the old shim stays. */
  private async refreshShim(): Promise<void> {
    try {
      await installShim(this.host, readSettings(this.host));
    } catch (err) {
      this.host.log(`could not refresh the gopls shim: ${String(err)}`);
    }
  }

  /** The status bar item's menu. */
  async showActions(): Promise<string | undefined> {
    const enabled = this.isEnabled();
    const items: (PickItem & { command: () => Promise<unknown> })[] = [
      { label: "$(debug-restart) Restart gopls", command: () => this.restart() },
      { label: "$(device-camera) Take snapshot", command: () => this.snapshot() },
      { label: "$(report) Open latest incident report", command: () => this.openLatestReport() },
      { label: "$(checklist) Run doctor", command: () => this.doctor() },
      enabled
        ? { label: "$(circle-slash) Disable for this workspace", command: () => this.disable() }
        : { label: "$(shield) Enable for this workspace", command: () => this.enable() },
      { label: "$(output) Show lspguard output",
        command: () => { this.host.showLog(); return Promise.resolve(); } },
    ];
    const picked = await this.host.pick(items, "lspguard");
    if (!picked) return undefined;
    await picked.command();
    return picked.label;
  }

  /** Enable: install the shim, show the change, set go.alternateTools.gopls, offer a restart. */
  async enable(options: { confirm?: boolean } = {}): Promise<boolean> {
    const host = this.host;
    const settings = readSettings(host);
    if (!this.goExtensionInstalled()) return this.enableOwnClient(options.confirm ?? true);
    const current = clone(workspaceAlternateTools(host));
    const saved = loadSaved(host);
    if (options.confirm ?? true) {
      // Show the plan, with the shim's path, before anything is written.
      const dir = shimDir(host.globalStoragePath, settings.configFile);
      const preview = planEnable(current, shimPath(host.globalStoragePath, settings.configFile),
                                 saved);
      const detail = [
        `1. Run: ${[settings.path, ...installShimArgs(settings, dir)].join(" ")}`,
        ...preview.changes.map((c) => `2. Set ${c}`),
        "Disable puts the previous value back exactly.",
      ].join("\n");
      const ok = await host.confirm("Guard gopls with lspguard in this workspace?", detail,
                                    "Enable");
      if (!ok) return false;
    }
    let shim: string;
    try {
      shim = await installShim(host, settings);
    } catch (err) {
      await this.fail(err);
      return false;
    }
    const plan = planEnable(current, shim, saved);
    await host.workspaceState.update(SAVED_KEY, plan.save);
    await host.updateWorkspaceConfig(GO_SECTION, ALTERNATE_TOOLS, plan.next);
    for (const change of plan.changes) host.log(`enabled: ${change}`);
    this.deps.refresh();
    const choice = await host.info(
      `lspguard enabled: gopls now runs through ${shim}. Restart the Go language server to ` +
      "use it.", RESTART_GO_SERVER);
    if (choice === RESTART_GO_SERVER) await host.executeCommand(GO_RESTART_COMMAND);
    return true;
  }

  /** "Start gopls through lspguard (without the Go extension)". */
  async startOwnClientCommand(): Promise<boolean> {
    if (this.goExtensionInstalled()) {
      await this.host.info("lspguard: the Go extension is installed and runs gopls; use " +
                           "\"lspguard: Enable for this workspace\" to guard it.");
      return false;
    }
    return this.enableOwnClient(true);
  }

  private async enableOwnClient(confirm: boolean): Promise<boolean> {
    const host = this.host;
    if (confirm) {
      const ok = await host.confirm(
        "The Go extension (golang.go) is not installed. Start gopls through lspguard for Go " +
        "files in this workspace?",
        "lspguard will install its gopls shim (lspguard install-shim) and run it with its own " +
        "language client. Install the Go extension to get the full Go experience instead.",
        "Start gopls");
      if (!ok) return false;
    }
    let shim: string;
    try {
      shim = await installShim(host, readSettings(host));
    } catch (err) {
      await this.fail(err);
      return false;
    }
    await host.workspaceState.update(OWN_CLIENT_KEY, true);
    try {
      await this.deps.startOwnClient(shim);
    } catch (err) {
      await this.fail(err);
      return false;
    }
    this.deps.refresh();
    return true;
  }

  /** Disable: put go.alternateTools back exactly as it was before Enable. */
  async disable(): Promise<boolean> {
    const host = this.host;
    if (!this.goExtensionInstalled()) {
      await host.workspaceState.update(OWN_CLIENT_KEY, undefined);
      await this.deps.stopOwnClient();
      this.deps.refresh();
      await host.info("lspguard disabled: its gopls language client is stopped.");
      return true;
    }
    const saved = loadSaved(host);
    const current = workspaceAlternateTools(host);
    let next: unknown;
    if (saved) {
      next = planDisable(current, saved);
    } else if (this.isEnabled()) {
      // Enabled by hand or by another window without our memory of the old value: remove ours.
      const rest = { ...(current as Record<string, unknown>) };
      delete rest.gopls;
      next = Object.keys(rest).length > 0 ? rest : undefined;
    } else {
      await host.info("lspguard is not enabled for this workspace.");
      return false;
    }
    await host.updateWorkspaceConfig(GO_SECTION, ALTERNATE_TOOLS, next);
    await host.workspaceState.update(SAVED_KEY, undefined);
    host.log("disabled: go.alternateTools (workspace settings) restored to " +
             (next === undefined ? "(unset)" : JSON.stringify(next)));
    this.deps.refresh();
    const choice = await host.info("lspguard disabled: go.alternateTools is back to its " +
                                   "previous value.", RESTART_GO_SERVER);
    if (choice === RESTART_GO_SERVER) await host.executeCommand(GO_RESTART_COMMAND);
    return true;
  }

  /** The session to act on: the only one, or the user's pick. */
  private async pickSession(action: string): Promise<SessionStatus | undefined> {
    const sessions = (await this.deps.sessions()).filter((s) => s.socket);
    if (sessions.length === 0) {
      await this.host.warn(`lspguard: no guarded gopls session with a control socket for this ` +
                           `workspace to ${action}. Is lspguard enabled and gopls running?`);
      return undefined;
    }
    if (sessions.length === 1) return sessions[0];
    const picked = await this.host.pick<SessionPick>(
      sessions.map((s) => ({
        label: `pid ${String(s.pid)}`,
        description: `${s.state}, generation ${String(s.backend.generation)}`,
        detail: s.workspaceFolders.join(", "),
        session: s,
      })),
      `Which lspguard session should ${action}?`);
    return picked?.session;
  }

  async restart(): Promise<unknown> {
    const session = await this.pickSession("restart");
    if (!session?.socket) return undefined;
    try {
      const result = await callControl(session.socket, "restart", {},
                                       this.deps.controlTimeoutMs ?? 60_000);
      this.deps.refresh();
      const r = typeof result === "object" && result !== null
        ? result as Record<string, unknown> : {};
      const generation = typeof r.generation === "number" ? r.generation : undefined;
      // The proxy answers at once and restarts in the background ({"restarting": true,
      // "generation": <the one being replaced>}); the status bar shows the new generation.
      await this.host.info(r.restarting === true
        ? "lspguard: restarting gopls" +
          (generation !== undefined ? ` (replacing generation ${String(generation)}).` : ".")
        : "lspguard: gopls restarted" +
          (generation !== undefined ? ` (generation ${String(generation)}).` : "."));
      return result;
    } catch (err) {
      await this.fail(err);
      return undefined;
    }
  }

  async snapshot(): Promise<string | undefined> {
    const session = await this.pickSession("take a snapshot");
    if (!session?.socket) return undefined;
    let result: unknown;
    try {
      result = await callControl(session.socket, "snapshot", {},
                                 this.deps.controlTimeoutMs ?? 60_000);
    } catch (err) {
      await this.fail(err);
      return undefined;
    }
    const bundle = bundleOf(result);
    if (!bundle) {
      await this.host.info(`lspguard: snapshot taken (${JSON.stringify(result)}).`);
      return undefined;
    }
    const choice = await this.host.info(`lspguard: snapshot written to ${bundle}`,
                                        "Open report", "Copy bundle path");
    if (choice === "Open report") await this.host.openReport(reportPath(bundle));
    if (choice === "Copy bundle path") await this.host.copyToClipboard(bundle);
    return bundle;
  }

  async openLatestReport(): Promise<string | undefined> {
    const latest = await latestBundle(this.host, readSettings(this.host),
                                      await this.deps.sessions());
    if (!latest) {
      await this.host.info("lspguard: no incident reports yet.");
      return undefined;
    }
    const report = reportPath(latest.path);
    await this.host.openReport(report);
    return report;
  }

  async doctor(): Promise<number> {
    const folders = this.host.workspaceFolders();
    if (folders.length === 0) {
      await this.host.info("lspguard doctor needs an open folder.");
      return 0;
    }
    this.host.showLog();
    try {
      const reports = await runDoctor(this.host, readSettings(this.host), folders);
      const findings = reports.flatMap((r) => r.findings)
        .filter((f) => !["ok", "pass", "passed", "skip", "skipped"].includes(f.severity));
      await this.host.info(findings.length === 0
        ? "lspguard doctor: nothing found."
        : `lspguard doctor: ${String(findings.length)} finding(s); see the lspguard output ` +
          "and Problems.");
      return findings.length;
    } catch (err) {
      await this.fail(err);
      return -1;
    }
  }

  private async fail(err: unknown): Promise<void> {
    const known = err instanceof ControlError || err instanceof DoctorError ||
                  err instanceof LspguardCommandError;
    const message = err instanceof Error ? err.message : String(err);
    this.host.log(`error: ${message}`);
    await this.host.error(known ? `lspguard: ${message}` : `lspguard failed: ${message}`);
  }
}

/** The bundle directory in a snapshot result: a string, or an object with a path field. */
export function bundleOf(result: unknown): string | undefined {
  if (typeof result === "string" && result) return result;
  if (typeof result === "object" && result !== null) {
    const r = result as Record<string, unknown>;
    for (const key of ["bundle", "path", "dir", "bundle_dir"]) {
      const v = r[key];
      if (typeof v === "string" && v) return v;
    }
  }
  return undefined;
}

// The gopls shim the extension points go.alternateTools.gopls at: written by
// `lspguard install-shim DIR` into the extension's global storage, one per config file.

import { createHash } from "node:crypto";
import * as path from "node:path";

import type { Host } from "./host";
import type { LspguardSettings } from "./settings";

export class LspguardCommandError extends Error {}

/** DIR for `lspguard install-shim DIR`: a shim bakes its --config in, so one dir per config. */
export function shimDir(globalStoragePath: string, configFile: string): string {
  const name = configFile
    ? `config-${createHash("sha256").update(configFile).digest("hex").slice(0, 12)}`
    : "default";
  return path.join(globalStoragePath, "shim", name);
}

export function shimPath(globalStoragePath: string, configFile: string): string {
  return path.join(shimDir(globalStoragePath, configFile), "gopls");
}

/** Is `value` (a go.alternateTools.gopls value) one of our shims? */
export function isOurShim(value: unknown, globalStoragePath: string): boolean {
  if (typeof value !== "string") return false;
  const root = path.join(globalStoragePath, "shim") + path.sep;
  return path.resolve(value).startsWith(root) && path.basename(value) === "gopls";
}

export function installShimArgs(settings: LspguardSettings, dir: string): string[] {
  return ["install-shim", ...(settings.configFile ? ["--config", settings.configFile] : []), dir];
}

/** Run `lspguard install-shim` and return the shim's path (from its "wrote PATH" line). */
export async function installShim(host: Host, settings: LspguardSettings): Promise<string> {
  const dir = shimDir(host.globalStoragePath, settings.configFile);
  const args = installShimArgs(settings, dir);
  host.log(`$ ${settings.path} ${args.join(" ")}`);
  const result = await host.exec(settings.path, args, { timeoutMs: 30_000 });
  if (result.stdout) host.log(result.stdout.trimEnd());
  if (result.stderr) host.log(result.stderr.trimEnd());
  if (result.code !== 0) {
    const why = result.error ?? (result.stderr.trim() || `exit code ${String(result.code)}`);
    throw new LspguardCommandError(
      `lspguard install-shim failed: ${why}. Is lspguard installed? Set "lspguard.path" to ` +
      "the lspguard executable (e.g. ~/.local/bin/lspguard).");
  }
  const wrote = /^wrote (.+)$/m.exec(result.stdout);
  return wrote?.[1]?.trim() ?? path.join(dir, "gopls");
}

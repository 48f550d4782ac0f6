// lspguard's own settings (one typed reader) and the go.alternateTools edit that Enable makes
// and Disable undoes exactly.

import type { Host } from "./host";

export interface LspguardSettings {
  /** The lspguard executable. */
  path: string;
  /** A config file for the shim, or "" for lspguard's own lookup. */
  configFile: string;
  autoEnable: boolean;
}

export function readSettings(host: Host): LspguardSettings {
  const path = host.getConfig("lspguard", "path");
  const configFile = host.getConfig("lspguard", "configFile");
  const autoEnable = host.getConfig("lspguard", "autoEnable");
  return {
    path: typeof path === "string" && path.trim() !== "" ? path.trim() : "lspguard",
    configFile: typeof configFile === "string" ? configFile.trim() : "",
    autoEnable: autoEnable === true,
  };
}

export const GO_SECTION = "go";
export const ALTERNATE_TOOLS = "alternateTools";
/** workspaceState key: what go.alternateTools looked like before Enable. */
export const SAVED_KEY = "lspguard.savedAlternateTools";

/** The workspace-level go.alternateTools before Enable touched it. JSON-safe (workspaceState
 * cannot hold `undefined`), so "unset" is spelled out. */
export interface SavedAlternateTools {
  version: 1;
  /** Was go.alternateTools set at all in the workspace settings, and to what? */
  objectSet: boolean;
  objectValue?: unknown;
  /** The shim Enable pointed gopls at. */
  shim: string;
  /** The whole go.alternateTools value Enable wrote. */
  written: unknown;
}

type ToolMap = Record<string, unknown>;

function isToolMap(value: unknown): value is ToolMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hasOwn(object: ToolMap, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

export function workspaceAlternateTools(host: Host): unknown {
  return host.inspectConfig(GO_SECTION, ALTERNATE_TOOLS)?.workspaceValue;
}

export interface EnablePlan {
  /** The new workspace value of go.alternateTools. */
  next: ToolMap;
  /** What to remember (the first Enable's original is kept when Enable runs again). */
  save: SavedAlternateTools;
  /** One line each: what will change. */
  changes: string[];
}

/** What Enable will write, given the current workspace value of go.alternateTools. */
export function planEnable(current: unknown, shim: string,
                           alreadySaved: SavedAlternateTools | undefined): EnablePlan {
  const object = isToolMap(current) ? current : undefined;
  const before = object && hasOwn(object, "gopls") ? JSON.stringify(object.gopls) : "(unset)";
  const next: ToolMap = { ...(object ?? {}), gopls: shim };
  const original = alreadySaved
    ? { objectSet: alreadySaved.objectSet,
        ...(alreadySaved.objectSet ? { objectValue: alreadySaved.objectValue } : {}) }
    : { objectSet: current !== undefined,
        ...(current !== undefined ? { objectValue: clone(current) } : {}) };
  return {
    next,
    save: { version: 1, ...original, shim, written: clone(next) },
    changes: [
      `go.alternateTools.gopls (workspace settings): ${before} -> ${JSON.stringify(shim)}`,
    ],
  };
}

/** The workspace value of go.alternateTools that undoes Enable (`undefined` = unset it).
 * Untouched since Enable: exactly the saved value. Edited since: only the gopls entry is put
 * back (or removed if it was unset), the user's other edits are kept. */
export function planDisable(current: unknown, saved: SavedAlternateTools): unknown {
  if (current === undefined || deepEqual(current, saved.written)) {
    return saved.objectSet ? clone(saved.objectValue) : undefined;
  }
  if (!isToolMap(current)) return current; // not ours any more: leave it alone
  const original = isToolMap(saved.objectValue) ? saved.objectValue : {};
  const next: ToolMap = { ...current };
  if (hasOwn(original, "gopls")) {
    next.gopls = clone(original.gopls);
  } else {
    delete next.gopls;
  }
  if (!saved.objectSet && Object.keys(next).length === 0) return undefined;
  return next;
}

export function clone<T>(value: T): T {
  return value === undefined ? value : JSON.parse(JSON.stringify(value)) as T;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => hasOwn(b as ToolMap, k) &&
                         deepEqual((a as ToolMap)[k], (b as ToolMap)[k]));
}

export function loadSaved(host: Host): SavedAlternateTools | undefined {
  const saved = host.workspaceState.get(SAVED_KEY);
  if (isToolMap(saved) && saved.version === 1 && typeof saved.shim === "string" &&
      typeof saved.objectSet === "boolean") {
    return saved as unknown as SavedAlternateTools;
  }
  return undefined;
}

// Where the real things are: the repository's Python venv (lspguard) and gopls. Tests that need
// them skip when they are missing, unless LSPGUARD_REQUIRE_INTEGRATION=1 (CI) turns that into a
// failure.

import { existsSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const EXTENSION_ROOT = path.resolve(__dirname, "..");
export const REPO_ROOT = path.resolve(EXTENSION_ROOT, "..");

function firstExisting(candidates: (string | undefined)[]): string | undefined {
  return candidates.find((c): c is string => !!c && existsSync(c));
}

export const PYTHON = firstExisting([process.env.LSPGUARD_PYTHON,
                                     path.join(REPO_ROOT, ".venv", "bin", "python")]);
export const LSPGUARD = firstExisting([process.env.LSPGUARD_BIN,
                                       path.join(REPO_ROOT, ".venv", "bin", "lspguard")]);
export const GOPLS = firstExisting([
  process.env.LSPGUARD_GOPLS,
  ...(process.env.PATH ?? "").split(path.delimiter).map((d) => path.join(d, "gopls")),
  path.join(process.env.GOPATH ?? path.join(os.homedir(), "go"), "bin", "gopls"),
]);

export const REQUIRE_INTEGRATION = process.env.LSPGUARD_REQUIRE_INTEGRATION === "1";

/** Reason to skip, or undefined; throws instead when integration tests are required. */
export function missing(what: Record<string, string | undefined>): string | undefined {
  const absent = Object.entries(what).filter(([, v]) => !v).map(([k]) => k);
  if (absent.length === 0) return undefined;
  const reason = `not found: ${absent.join(", ")} (set LSPGUARD_PYTHON / LSPGUARD_BIN / ` +
                 "LSPGUARD_GOPLS, or create the repository's .venv)";
  if (REQUIRE_INTEGRATION) throw new Error(reason);
  return reason;
}

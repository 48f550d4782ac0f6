// Run a program without a shell and without blocking the extension host: execFile with a
// timeout, output collected as text, and every failure turned into a value, never a throw.

import { execFile } from "node:child_process";

import type { ExecOptions, ExecResult } from "./host";

const MAX_OUTPUT = 16 * 1024 * 1024;

export function run(file: string, args: readonly string[], options: ExecOptions = {}):
    Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: options.env ? { ...process.env, ...options.env } : process.env,
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: MAX_OUTPUT,
        encoding: "utf8",
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
        if (typeof e.code === "number") {
          resolve({ code: e.code, stdout, stderr });
        } else if (e.killed) {
          resolve({ code: null, stdout, stderr,
                    error: `${file} did not finish within ${(options.timeoutMs ?? 60_000) / 1000} s` });
        } else if (e.code === "ENOENT") {
          resolve({ code: null, stdout, stderr, error: `${file}: command not found` });
        } else {
          resolve({ code: null, stdout, stderr, error: `${file}: ${e.message}` });
        }
      },
    );
  });
}

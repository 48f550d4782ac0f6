// Client for a proxy's control socket (lspguard/control/): newline-delimited JSON over a
// Unix socket, one request line `{"command", "args"}` -> one response line
// `{"ok": true, "result"}` or `{"ok": false, "error"}`. Asynchronous, with a deadline.

import * as net from "node:net";

export class ControlError extends Error {}

export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export function callControl(socketPath: string, command: string,
                            args: Record<string, unknown> = {},
                            timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const socket = net.createConnection({ path: socketPath });
    const finish = (error: ControlError | undefined, result?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(result);
    };
    const timer = setTimeout(() => {
      finish(new ControlError(`no answer to "${command}" from ${socketPath} within ` +
                              `${String(timeoutMs / 1000)} s; the session may be busy`));
    }, timeoutMs);
    socket.on("connect", () => {
      socket.write(JSON.stringify({ command, args }) + "\n");
    });
    socket.on("data", (chunk: Buffer) => {
      const newline = chunk.indexOf(0x0a);
      chunks.push(newline >= 0 ? chunk.subarray(0, newline) : chunk);
      size += chunk.length;
      if (newline >= 0) {
        finish(...decodeResponse(Buffer.concat(chunks).toString("utf8"), command, socketPath));
      } else if (size > MAX_RESPONSE_BYTES) {
        finish(new ControlError(`the answer from ${socketPath} is larger than ` +
                                `${String(MAX_RESPONSE_BYTES)} bytes`));
      }
    });
    socket.on("end", () => {
      finish(new ControlError(`${socketPath} closed the connection without answering ` +
                              `"${command}"`));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      finish(new ControlError(connectError(err, socketPath)));
    });
  });
}

function decodeResponse(line: string, command: string, socketPath: string):
    [ControlError | undefined, unknown?] {
  let response: unknown;
  try {
    response = JSON.parse(line);
  } catch {
    return [new ControlError(`malformed answer from ${socketPath}: ${line.slice(0, 200)}`)];
  }
  if (typeof response !== "object" || response === null || Array.isArray(response)) {
    return [new ControlError(`malformed answer from ${socketPath}: ${line.slice(0, 200)}`)];
  }
  const r = response as { ok?: unknown; result?: unknown; error?: unknown };
  if (r.ok === true) return [undefined, r.result];
  if (r.ok === false) {
    const why = typeof r.error === "string" && r.error ? r.error : "failed (no reason given)";
    return [new ControlError(`${command}: ${why}`)];
  }
  return [new ControlError(`malformed answer from ${socketPath}: ${line.slice(0, 200)}`)];
}

function connectError(err: NodeJS.ErrnoException, socketPath: string): string {
  switch (err.code) {
    case "ENOENT":
      return `no lspguard control socket at ${socketPath}; is that session still running?`;
    case "ECONNREFUSED":
      return `nothing is listening on ${socketPath}: the lspguard session that created it ` +
             "has exited";
    case "EACCES":
    case "EPERM":
      return `permission denied connecting to ${socketPath}: it belongs to another user`;
    case "EPIPE":
    case "ECONNRESET":
      return `${socketPath} closed the connection: ${err.message}`;
    default:
      return `cannot talk to ${socketPath}: ${err.message}`;
  }
}

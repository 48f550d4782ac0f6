// A minimal LSP client over a child's stdio (Content-Length framing), enough to drive a real
// proxy through initialize, a request or two, and shutdown/exit.

import type { ChildProcessWithoutNullStreams } from "node:child_process";

interface Message {
  id?: number | string;
  method?: string;
  result?: unknown;
  error?: unknown;
  params?: unknown;
}

export class LspClient {
  private buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly waiters = new Map<number | string, (m: Message) => void>();
  readonly notifications: Message[] = [];

  constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    proc.stdout.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
  }

  private drain(): void {
    for (;;) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const header = this.buffer.subarray(0, end).toString("ascii");
      const m = /content-length:\s*(\d+)/i.exec(header);
      if (!m?.[1]) throw new Error(`bad header: ${header}`);
      const length = Number(m[1]);
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.subarray(end + 4, end + 4 + length).toString("utf8");
      this.buffer = this.buffer.subarray(end + 4 + length);
      this.dispatch(JSON.parse(body) as Message);
    }
  }

  private dispatch(msg: Message): void {
    if (msg.id !== undefined && msg.method === undefined) {
      this.waiters.get(msg.id)?.(msg);
      this.waiters.delete(msg.id);
    } else if (msg.id !== undefined && msg.method !== undefined) {
      // A server->client request (window/workDoneProgress/create, client/registerCapability,
      // workspace/configuration): answer like a minimal editor would.
      const result = msg.method === "workspace/configuration" ? [{}] : null;
      this.write({ jsonrpc: "2.0", id: msg.id, result });
    } else {
      this.notifications.push(msg);
    }
  }

  private write(message: object): void {
    const body = Buffer.from(JSON.stringify(message), "utf8");
    this.proc.stdin.write(`Content-Length: ${String(body.length)}\r\n\r\n`);
    this.proc.stdin.write(body);
  }

  request(method: string, params: unknown, timeoutMs = 30_000): Promise<Message> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no answer to ${method} within ${String(timeoutMs)} ms`));
      }, timeoutMs);
      this.waiters.set(id, (m) => { clearTimeout(timer); resolve(m); });
      this.write({ jsonrpc: "2.0", id, method, params });
    });
  }

  notify(method: string, params: unknown): void {
    this.write({ jsonrpc: "2.0", method, params });
  }
}

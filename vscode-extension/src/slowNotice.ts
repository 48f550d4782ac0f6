// A slow filesystem under gopls is a state of the session, not an incident: gopls works, lspguard
// lets requests wait and restarts nothing. So no warning and no report; once per session, one
// quiet information message that names the slow filesystem and says the fix.

import type { Host } from "./host";
import { endSentence } from "./incidents";
import type { SessionStatus } from "./statusReader";

export const SLOW_NOTICED_KEY = "lspguard.slowNoticed";

/** Sessions remembered as told (across window reloads); older ones are long gone. */
const REMEMBERED = 20;

/** One session: its pid and start time (pids are reused). */
function sessionKey(s: SessionStatus): string {
  return `${String(s.pid)}@${String(s.startedAt ?? "")}`;
}

/** Remembers which sessions the user has been told are slow. */
export class SlowNotices {
  constructor(private readonly host: Host) {}

  /** The sessions in `sessions` that are slow, with something to say, and not told before. */
  newlySlow(sessions: readonly SessionStatus[]): SessionStatus[] {
    const stored = this.host.workspaceState.get(SLOW_NOTICED_KEY);
    const told = Array.isArray(stored)
      ? stored.filter((k): k is string => typeof k === "string") : [];
    const out = sessions.filter((s) => s.state === "slow" && (s.slow?.sentence ?? s.slow?.fix) &&
                                       !told.includes(sessionKey(s)));
    if (out.length > 0) {
      void this.host.workspaceState.update(
        SLOW_NOTICED_KEY, [...told, ...out.map(sessionKey)].slice(-REMEMBERED));
    }
    return out;
  }
}

/** "lspguard: slow filesystem: <sentence>. Fix: <fix>. gopls is working, not hung: ...". (Not
 * "lspguard: gopls ...", which is how incidents begin.) */
export function slowMessage(s: SessionStatus): string {
  const sentence = s.slow?.sentence ?? "a filesystem gopls reads answers slowly.";
  const fix = s.slow?.fix;
  return `lspguard: slow filesystem: ${sentence}${endSentence(sentence)}` +
    (fix ? ` Fix: ${fix}${endSentence(fix)}` : "") +
    " gopls is working, not hung: lspguard lets requests wait for it and restarts nothing.";
}

export async function notifySlow(host: Host, s: SessionStatus): Promise<void> {
  await host.info(slowMessage(s));
}

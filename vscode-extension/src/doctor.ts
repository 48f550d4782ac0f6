// `lspguard doctor --json WORKSPACE`: findings into the output channel, and those that name a
// file (devcontainer.json, a symlink, ...) as Problems. The exit code only says how bad the worst
// finding is, so success is "printed a report", not "exit code 0".

import * as path from "node:path";

import type { DiagnosticSeverity, Host, HostDiagnostic } from "./host";
import type { LspguardSettings } from "./settings";

export interface Finding {
  id: string;
  severity: string;
  title: string;
  found: string;
  why: string;
  fix: string;
  path?: string;
  /** 1-based, as people count lines. */
  line?: number;
}

export interface DoctorReport {
  version: number;
  workspace: string;
  worst: string;
  findings: Finding[];
}

export class DoctorError extends Error {}

function text(value: unknown): string {
  return typeof value === "string" ? value : value === undefined || value === null ? ""
    : JSON.stringify(value);
}

export function parseDoctor(output: string): DoctorReport {
  let doc: unknown;
  try {
    doc = JSON.parse(output);
  } catch {
    throw new DoctorError(`lspguard doctor did not print JSON: ${output.slice(0, 200)}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new DoctorError("lspguard doctor printed JSON that is not an object");
  }
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) {
    throw new DoctorError(`unsupported lspguard doctor report version ${text(d.version)} ` +
                          "(this extension reads version 1); update the extension or lspguard");
  }
  const findings: Finding[] = [];
  for (const raw of Array.isArray(d.findings) ? d.findings : []) {
    if (typeof raw !== "object" || raw === null) continue;
    const f = raw as Record<string, unknown>;
    const line = typeof f.line === "number" && Number.isInteger(f.line) && f.line > 0
      ? f.line : undefined;
    findings.push({
      id: text(f.id) || "unknown",
      severity: text(f.severity).toLowerCase() || "info",
      title: text(f.title) || text(f.id) || "finding",
      found: text(f.found),
      why: text(f.why),
      fix: text(f.fix),
      ...(typeof f.path === "string" && f.path ? { path: f.path } : {}),
      ...(line !== undefined ? { line } : {}),
    });
  }
  return { version: 1, workspace: text(d.workspace), worst: text(d.worst) || "ok", findings };
}

/** Problems severity for a finding, or undefined for passing checks (no Problem for those). */
export function problemSeverity(severity: string): DiagnosticSeverity | undefined {
  switch (severity) {
    case "error": case "fail": case "failed": case "critical": case "fatal":
      return "error";
    case "warning": case "warn":
      return "warning";
    case "info": case "note": case "notice":
      return "information";
    default:
      return undefined; // ok, pass, skip, ...
  }
}

export function doctorDiagnostics(report: DoctorReport, workspace: string): HostDiagnostic[] {
  const out: HostDiagnostic[] = [];
  for (const f of report.findings) {
    const severity = problemSeverity(f.severity);
    if (!f.path || !severity) continue;
    const parts = [f.title, f.found && `Found: ${f.found}`, f.why && `Why: ${f.why}`,
                   f.fix && `Fix: ${f.fix}`].filter(Boolean);
    out.push({
      path: path.resolve(report.workspace || workspace, f.path),
      line: f.line !== undefined ? f.line - 1 : 0,
      message: parts.join("\n"),
      severity,
      code: f.id,
      source: "lspguard doctor",
    });
  }
  return out;
}

export function formatDoctor(report: DoctorReport): string[] {
  const lines = [`lspguard doctor: ${report.workspace} (worst: ${report.worst})`];
  for (const f of report.findings) {
    lines.push(`[${f.severity}] ${f.title} (${f.id})`);
    if (f.found) lines.push(`    found: ${f.found}`);
    if (f.why) lines.push(`    why:   ${f.why}`);
    if (f.fix) lines.push(`    fix:   ${f.fix}`);
    if (f.path) lines.push(`    at:    ${f.path}${f.line !== undefined ? `:${String(f.line)}` : ""}`);
  }
  if (report.findings.length === 0) lines.push("    no findings");
  return lines;
}

/** Run the doctor on each folder; log every report; publish the problems. */
export async function runDoctor(host: Host, settings: LspguardSettings,
                                folders: readonly string[]): Promise<DoctorReport[]> {
  const reports: DoctorReport[] = [];
  const problems: HostDiagnostic[] = [];
  for (const folder of folders) {
    const args = ["doctor", "--json", folder];
    host.log(`$ ${settings.path} ${args.join(" ")}`);
    const result = await host.exec(settings.path, args, { cwd: folder, timeoutMs: 120_000 });
    if (result.code === null) {
      throw new DoctorError(`lspguard doctor could not run: ${result.error ?? "unknown error"}`);
    }
    let report: DoctorReport;
    try {
      report = parseDoctor(result.stdout);
    } catch (err) {
      if (result.stderr.trim()) host.log(result.stderr.trimEnd());
      throw err;
    }
    for (const line of formatDoctor(report)) host.log(line);
    reports.push(report);
    problems.push(...doctorDiagnostics(report, folder));
  }
  host.setDiagnostics(problems);
  return reports;
}

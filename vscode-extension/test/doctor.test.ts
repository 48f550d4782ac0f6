import { describe, expect, it } from "vitest";

import { DoctorError, doctorDiagnostics, formatDoctor, parseDoctor, problemSeverity }
  from "../src/doctor";

const REPORT = {
  version: 1, workspace: "/ws", worst: "warning",
  findings: [
    { id: "fs.slow", severity: "warning", title: "GOMODCACHE on grpcfuse",
      found: "/go/pkg/mod is grpcfuse", why: "every stat crosses the VM", fix: "use a volume",
      path: null, line: null },
    { id: "dc.consistency", severity: "warning", title: "bind mount without consistency=cached",
      found: "mounts[0]", why: "slow on macOS", fix: "add consistency=cached",
      path: ".devcontainer/devcontainer.json", line: 7 },
  ],
};

describe("doctor", () => {
  it("parses the version 1 schema and makes problems only for findings with a path", () => {
    const report = parseDoctor(JSON.stringify(REPORT));
    expect(report.findings).toHaveLength(2);
    const diags = doctorDiagnostics(report, "/elsewhere");
    expect(diags).toEqual([{
      path: "/ws/.devcontainer/devcontainer.json", line: 6, severity: "warning",
      code: "dc.consistency", source: "lspguard doctor",
      message: "bind mount without consistency=cached\nFound: mounts[0]\nWhy: slow on macOS\n" +
               "Fix: add consistency=cached",
    }]);
  });

  it("formats every finding with found / why / fix", () => {
    expect(formatDoctor(parseDoctor(JSON.stringify(REPORT)))).toEqual([
      "lspguard doctor: /ws (worst: warning)",
      "[warning] GOMODCACHE on grpcfuse (fs.slow)",
      "    found: /go/pkg/mod is grpcfuse",
      "    why:   every stat crosses the VM",
      "    fix:   use a volume",
      "[warning] bind mount without consistency=cached (dc.consistency)",
      "    found: mounts[0]",
      "    why:   slow on macOS",
      "    fix:   add consistency=cached",
      "    at:    .devcontainer/devcontainer.json:7",
    ]);
  });

  it("tolerates odd findings, refuses other versions and non-JSON", () => {
    const r = parseDoctor(JSON.stringify({ version: 1, findings: [null, { line: "x" }, 5] }));
    expect(r.findings).toEqual([{ id: "unknown", severity: "info", title: "finding", found: "",
                                  why: "", fix: "" }]);
    expect(() => parseDoctor(JSON.stringify({ version: 2 }))).toThrow(DoctorError);
    expect(() => parseDoctor("Traceback ...")).toThrow(/did not print JSON/);
    expect(() => parseDoctor("[]")).toThrow(/not an object/);
  });

  it("maps severities", () => {
    expect(["error", "critical", "warning", "warn", "info", "ok", "pass", "skip"]
      .map(problemSeverity))
      .toEqual(["error", "error", "warning", "warning", "information", undefined, undefined,
                undefined]);
  });
});

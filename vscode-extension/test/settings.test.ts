import { describe, expect, it } from "vitest";

import { planDisable, planEnable, readSettings } from "../src/settings";
import { FakeHost } from "./fakeHost";

const SHIM = "/storage/shim/default/gopls";

describe("readSettings", () => {
  it("gives defaults and ignores values of the wrong type", () => {
    const host = new FakeHost();
    expect(readSettings(host)).toEqual({ path: "lspguard", configFile: "", autoEnable: false });
    host.userSettings.set("lspguard.path", 42);
    host.userSettings.set("lspguard.autoEnable", "yes");
    expect(readSettings(host)).toEqual({ path: "lspguard", configFile: "", autoEnable: false });
    host.userSettings.set("lspguard.path", " /opt/bin/lspguard ");
    host.userSettings.set("lspguard.configFile", "/etc/lspguard.toml");
    host.userSettings.set("lspguard.autoEnable", true);
    expect(readSettings(host)).toEqual({ path: "/opt/bin/lspguard",
                                         configFile: "/etc/lspguard.toml", autoEnable: true });
  });
});

describe("planEnable / planDisable", () => {
  const cases: [string, unknown][] = [
    ["unset", undefined],
    ["empty object", {}],
    ["other tools only", { dlv: "/usr/bin/dlv" }],
    ["gopls set", { gopls: "/usr/local/bin/gopls" }],
    ["gopls and others", { go: "/opt/go/bin/go", gopls: "/usr/local/bin/gopls" }],
    ["gopls set to null", { gopls: null }],
    ["not an object", "weird"],
  ];
  for (const [name, before] of cases) {
    it(`round trip restores ${name} exactly`, () => {
      const plan = planEnable(before, SHIM, undefined);
      expect(plan.next.gopls).toBe(SHIM);
      const after = planDisable(structuredClone(plan.next), plan.save);
      expect(after).toEqual(before);
      if (before === undefined) expect(after).toBeUndefined();
    });
  }

  it("keeps the first original when Enable runs twice", () => {
    const before = { gopls: "/usr/local/bin/gopls" };
    const first = planEnable(before, SHIM, undefined);
    const second = planEnable(first.next, "/storage/shim/config-abc/gopls", first.save);
    expect(second.save.objectValue).toEqual(before);
    expect(planDisable(second.next, second.save)).toEqual(before);
  });

  it("keeps the user's later edits to other tools, puts gopls back", () => {
    const plan = planEnable({ gopls: "/old/gopls" }, SHIM, undefined);
    const edited = { ...plan.next, dlv: "/new/dlv" };
    expect(planDisable(edited, plan.save)).toEqual({ gopls: "/old/gopls", dlv: "/new/dlv" });
    const fromUnset = planEnable(undefined, SHIM, undefined);
    expect(planDisable({ gopls: SHIM, dlv: "/d" }, fromUnset.save)).toEqual({ dlv: "/d" });
  });

  it("describes the change", () => {
    expect(planEnable(undefined, SHIM, undefined).changes).toEqual([
      `go.alternateTools.gopls (workspace settings): (unset) -> "${SHIM}"`]);
    expect(planEnable({ gopls: "/x" }, SHIM, undefined).changes[0]).toContain('"/x" -> ');
  });
});

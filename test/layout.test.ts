// The folders follow the data (scripts/layout.ts): runtime ← src ← codegen ← check ← cli, and
// generated code imports the runtime alone. An import against that flow fails here.
import { describe, expect, it } from "vitest";
import { ALLOWED, folderOf, imports, violations } from "../scripts/layout.ts";

describe("layout", () => {
  it("no import goes against the data flow", () => {
    expect(violations()).toEqual([]);
  });
  it("generated kernels import the runtime and nothing else", () => {
    const targets = new Set(imports().filter(([a]) => a.startsWith("generated/")).map(([, b]) => b.split("/")[0]));
    expect([...targets]).toEqual(["runtime"]);
  });
  it("the runtime imports nothing outside itself", () => {
    expect(imports().filter(([a, b]) => a.startsWith("runtime/") && !b.startsWith("runtime/"))).toEqual([]);
    expect(ALLOWED.runtime).toEqual([]);
  });
  it("sees a real import (the scan is not empty)", () => {
    expect(imports()).toContainEqual(["cli/main.ts", "src/cell.ts"]);
    expect(folderOf("src/interop/forms.ts")).toBe("src/interop");
  });
});

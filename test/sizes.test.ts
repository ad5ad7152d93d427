// The one grammar for sizes on a command line (cli/sizes.ts), and the one rule for a size's value.
import { describe, expect, it } from "vitest";
import { parseSizes } from "../cli/sizes.ts";
import { isSize } from "../runtime/checks.ts";

const fail = (m: string): never => { throw new Error(m); };

describe("--sizes", () => {
  it("reads NAME=n pairs, spaces allowed, into a table without a prototype", () => {
    const s = parseSizes(" H = 64, D=3 ", ["D", "H"], fail);
    expect({ ...s }).toEqual({ H: 64, D: 3 });
    expect(Object.getPrototypeOf(s)).toBeNull();
    expect(parseSizes("toString=2", ["toString"], fail).toString).toBe(2);
  });
  it.each([
    ["H", /"H" is not SIZE=n/],
    ["H=0", /"H=0" is not SIZE=n.*positive integer/],
    ["H=1.5", /is not SIZE=n/],
    ["H=-2", /is not SIZE=n/],
    ["H=2,", /"" is not SIZE=n/],
    ["Q=2", /"Q" is not a size of the cell \(D, H\)/],
    ["H=2,H=3", /H is given twice/],
    ["1H=2", /is not SIZE=n/],
  ])("refuses %s", (text, message) => {
    expect(() => parseSizes(text, ["D", "H"], fail)).toThrow(message);
  });
  it("takes any name without the cell's sizes (train checks them against the cell later)", () => {
    expect({ ...parseSizes("K=4", undefined, fail) }).toEqual({ K: 4 });
  });
});

describe("a size's value", () => {
  it.each([[1, true], [4096, true], [0, false], [-1, false], [1.5, false], [NaN, false], [Infinity, false], ["3", false], [null, false]])("%s: %s", (v, ok) => {
    expect(isSize(v)).toBe(ok);
  });
});

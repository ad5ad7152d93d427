// The naming authority: any user name works in any role, including the kernels' own variables,
// JavaScript's words and globals and Object.prototype's keys; the few words the equation language
// keeps are refused with their reason.
import { describe, expect, it } from "vitest";
import { compileCell, type CellSpec } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { FUNCTIONS, RESERVED_WORDS } from "../src/lang.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels } from "../check/kernelcheck.ts";
import { KERNEL_WORDS, Namer, sizeIdent } from "../codegen/names.ts";

const PROTOTYPE_KEYS = ["constructor", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString"];
// names the emitter once made up on the spot (scratch, rows, tapes, initial states) and the globals kernels call
const EMITTED = ["s0", "s1", "s2", "xp0", "xp0Row", "rowH", "slotRowH", "tRowH", "gx0", "t1", "u_mul", "tape_s1", "seed_h", "carry_h", "hPrev", "hPrev0", "hPrevAt", "hOut", "dhUp", "o_W", "rng", "o"];
const WORDS = [...new Set([...KERNEL_WORDS, ...PROTOTYPE_KEYS, ...EMITTED, "e", "pi", "i", "E", "PI"])]
  .filter((w) => /^[A-Za-z][A-Za-z0-9_]*$/.test(w) && !w.includes("__") && !Object.hasOwn(RESERVED_WORDS, w) && !Object.hasOwn(FUNCTIONS, w));

/** A gated cell whose every name (sizes, inputs, states, output, parameters, constant, equations, activation) is from `names`. */
function cellOf(names: readonly string[], k: number): CellSpec {
  const n = (j: number) => names[(k + j) % names.length]!;
  const [D, H, x, h, y, W, U, b, c, z, act, v] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map(n);
  return {
    name: `names-${k}`, doc: "every name is one the emitter or JavaScript also uses",
    sizes: [D!, H!], inputs: { [x!]: D! }, state: { [h!]: H! }, outputs: { [y!]: H! },
    params: { [W!]: [H!, D!], [U!]: [H!, H!], [b!]: H! }, constants: { [c!]: 0.5 },
    activations: { [act!]: "x / (1 + abs(x))" },
    equations: [`${z} = sigmoid(${W}*${x} + ${U}*${h} + ${b})`, `${v} = ${act}(${U}*(${z} .* ${h}) - ${c} * ${W}*${x})`, `${h}' = (1 - ${z}) .* ${h} + ${z} .* ${v}`, `${y} = 2 * ${h}' + ${D} * ${z}`],
  };
}

describe("names", () => {
  it("every kernel word, JavaScript word, global and prototype key works in every role", async () => {
    // 12 names a cell, shifted by 7 each time, so each word takes one role or two
    for (let k = 0; k < WORDS.length; k += 7) {
      const spec = cellOf(WORDS, k);
      const cell = compileCell(spec);
      const rows = await checkKernels(cell, randomCase(cell, { B: 2, T: 3, seed: k }));
      for (const r of rows) expect(r.pass, `${JSON.stringify(spec)}: ${r.what} ${r.maxErr}`).toBe(true);
    }
  }, 600_000);

  it("the equation language's own words are refused with their reason, and nothing else is", () => {
    for (const [w, why] of Object.entries(RESERVED_WORDS)) {
      const spec = { ...cellOf(["D", "H", "x", "h", "y", "W", "U", "b", "c", "z", "act", "v"], 0), params: { W: ["H", "D"], U: ["H", "H"], b: "H", [w]: "H" } };
      expect(() => compileCell(spec as CellSpec)).toThrow(CellError);
      expect(() => compileCell(spec as CellSpec)).toThrow(why);
    }
  });

  it("a size that is a kernel word is spelled $name; others keep their name", () => {
    expect(sizeIdent("H")).toBe("H");
    expect(sizeIdent("Math")).toBe("$Math");
    expect(sizeIdent("k")).toBe("$k");
  });

  it("a namer never hands out a kernel word or a name twice", () => {
    const namer = new Namer();
    const got = ["Math", "z0", "z0", "class", "s0", "x", "x_1", "x"].map((w) => namer.fresh(w));
    expect(got).toEqual(["Math_1", "z0", "z0_1", "class_1", "s0_1", "x", "x_1", "x_2"]);
  });
});

describe("the README", () => {
  it("lists exactly the reserved words", async () => {
    const { readFileSync } = await import("node:fs");
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const table = readme.slice(readme.indexOf("| reserved | why |"), readme.indexOf("\n\n", readme.indexOf("| reserved | why |")));
    const listed = [...table.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]).sort();
    expect(listed).toEqual(Object.keys(RESERVED_WORDS).sort());
  });
});

// Scalar and size-1 inputs, and size equalities (issue #18, items 3 and 4): how the spec declares
// them, the errors (each at its line and column), the sizes every path accepts or refuses (the
// reference evaluator, `check`, eval cases, converters), and the gradients against finite
// differences. The kernels of the same cells on both backends: test/scalars-constraints-kernels.test.ts.
import { describe, expect, it, vi } from "vitest";
import { type Cell, type CellSpec, type CompileOptions, compileCell, resolveSizes } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { loadCell } from "../src/load.ts";
import { shapeStr } from "../src/ir.ts";
import { deriveBackward } from "../src/backward.ts";
import { gradients, randomCase } from "../src/sequence.ts";
import { checkGradients } from "../check/gradcheck.ts";
import { CaseError, caseToJson, readCase, writeResult } from "../cli/evalcase.ts";
import { InteropError, readCellParams, readWeights, writeCellParams, writeWeights } from "../src/interop/convert.ts";
import { recognize } from "../src/interop/match.ts";
import { main } from "../cli/main.ts";

const FIXTURES = ["scalar-input-cfc", "scalar-input-unit", "constraint-skip"] as const;
const fixture = (n: (typeof FIXTURES)[number]) => loadCell(`test/fixtures/cells/${n}.ts`);

const base = {
  name: "mini",
  doc: "a test cell",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
  equations: "h' = tanh(W*x + U*h + b)",
};
const spec = (over: Record<string, unknown>) => ({ ...base, ...over }) as unknown as CellSpec;

/** The cell as a file, so that errors have the file's lines and columns. */
function file(over: { constraints?: string; inputs?: string; equations?: string; defaults?: string }): { spec: CellSpec; opts: CompileOptions; lines: string[] } {
  const lines = [
    'import { defineCell } from "cellforge";',
    "export default defineCell({",
    '  name: "mini",',
    '  doc: "a test cell",',
    '  sizes: { D: "input size", H: "hidden size" },',
    ...(over.defaults ? [`  defaults: ${over.defaults},`] : []),
    ...(over.constraints ? [`  constraints: ${over.constraints},`] : []),
    `  inputs: ${over.inputs ?? '{ x: "D" }'},`,
    '  state: { h: "H" },',
    '  params: { W: ["H", "D"], U: ["H", "H"], b: "H" },',
    `  equations: \`${over.equations ?? "h' = tanh(W*x + U*h + b)"}\`,`,
    "});",
  ];
  const js = (text: string | undefined) => (text === undefined ? undefined : (Function(`return (${text})`)() as unknown));
  const fields = { constraints: js(over.constraints), inputs: js(over.inputs), defaults: js(over.defaults), equations: over.equations };
  const s = spec(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)));
  return { spec: s, opts: { file: "cells/x.ts", source: lines.join("\n") }, lines };
}

function errorOf(s: CellSpec, opts?: CompileOptions): CellError {
  try {
    compileCell(s, opts);
  } catch (e) {
    if (e instanceof CellError) return e;
    throw e;
  }
  throw new Error("expected a CellError, but the cell compiled");
}

/** The error's first line, and the text under its caret. */
function located(e: CellError): { first: string; under: string } {
  const lines = e.message.split("\n");
  const i = lines.findIndex((l) => /^\s*\^+$/.test(l));
  const start = lines[i]!.indexOf("^");
  return { first: lines[0]!, under: lines[i - 1]!.slice(start, lines[i]!.length) };
}

describe("scalar inputs", () => {
  it("a scalar input ([]) is a vector of 1 in kernels and cases, read as a scalar per example in the equations", async () => {
    const cell = await fixture("scalar-input-cfc");
    const dt = cell.inputs.find((x) => x.attrs.name === "dt")!;
    expect(shapeStr(dt.type)).toBe("[1]");
    expect(cell.scalarInputs).toEqual(["dt"]);
    // h' = f .* h + dt .* (1 - f) .* n: dt is sum(dt), a scalar that scales a vector
    expect(cell.equations.find((e) => e.lhs === "h'")!.node.type.shape.map((d) => d.key)).toEqual(["H"]);
  });

  it("dt * v, v / dt and dt .* v all broadcast, as a scalar constant does", () => {
    const c = compileCell(spec({ inputs: { x: "D", dt: [] }, equations: "a = tanh(W*x + U*h + b)\nh' = h + dt * a + a / (1 + dt^2) + dt .* a - dt" }));
    expect(shapeStr(c.next[0]!.type)).toBe("[H]");
  });

  it("a state or an output stays a vector: a scalar one is refused, with a hint", () => {
    const e = errorOf(spec({ state: { h: [] } }));
    expect(e.problem).toBe("state h must be a vector, but its shape has 0 dimensions");
    expect(e.hint).toBe("a scalar per step is an input: declare it under inputs");
  });
});

describe("size-1 vectors broadcast", () => {
  const withT = (t: unknown, equations: string) => compileCell(spec({ inputs: { x: "D", t }, params: { ...base.params, ta: "H" }, equations }));
  it.each([
    ["ta .* t", "h' = h + ta .* t"],
    ["t .* ta", "h' = h + t .* ta"],
    ["t * v", "h' = t * tanh(W*x + U*h + b)"],
    ["v / t", "h' = h / (1 + t .* t)"],
    ["h - t", "h' = h - t"],
    ["max(t, v)", "h' = max(t, h)"],
    ["clip(v, -t, t)", "h' = clip(h, -t, t)"],
  ])("%s with t of size 1", (_name, eq) => {
    for (const t of ["1", 1]) expect(shapeStr(withT(t, eq).next[0]!.type)).toBe("[H]");
  });

  it("is read as sum(t), whose gradient puts g back in the one element", () => {
    const c = withT(1, "h' = h + ta .* t");
    expect(c.next[0]!.args[1]!.args.map((a) => a.op)).toEqual(["input", "sum"]);
  });

  it("a vector of 1 beside another vector of 1 stays a vector; concat and sum do not broadcast", () => {
    const c = compileCell(spec({ inputs: { x: "D", t: 1, u: 1 }, equations: "v = t .* u + t\nh' = slice(concat(v, h), 1, H) + sum(v)" }));
    expect(c.equations.map((e) => shapeStr(e.node.type))).toEqual(["[1]", "[H]"]);
  });

  it("a vector of 2 does not broadcast: the shape mismatch names both", () => {
    const e = errorOf(spec({ inputs: { x: "D", t: 2 }, params: { ...base.params, ta: "H" }, equations: "h' = h + ta .* t" }));
    expect(e.problem).toBe("shape mismatch in ta .* t: ta is [H] but t is [2]");
  });

  it("gradients of ta .* t and max(t, h) against finite differences", () => {
    const c = withT(1, "h' = tanh(ta .* t + U*h) + max(t, h)");
    const r = checkGradients(c, randomCase(c, { seed: 3 }));
    expect(r.rows.find((w) => w.name === "t")!.checked).toBeGreaterThan(0);
    expect(r.pass).toBe(true);
  });
});

describe("size equalities", () => {
  it("D = H unifies [D] with [H]: h' = tanh(W*x + U*h + b) + x", async () => {
    const cell = await fixture("constraint-skip");
    expect(cell.constraints.map((c) => [c.text, c.size, c.value.key])).toEqual([["D = H", "D", "H"]]);
    expect(shapeStr(cell.inputs[0]!.type)).toBe("[H]");
    expect(cell.defaults).toEqual({ H: 4 });
  });

  it("solves for the first size written with coefficient 1, and substitutes into the earlier ones", () => {
    const c = compileCell(spec({ sizes: ["D", "H", "E", "K"], constraints: ["E = 2*H", "D + 1 = K", "K = E"], params: { W: ["H", "D"], U: ["H", "H"], b: "H", V: ["E", "K"] }, equations: "h' = tanh(W*x + U*h + b) + sum(V*concat(h, h))" }));
    expect(c.constraints.map((k) => `${k.size} = ${k.value.key}`)).toEqual(["E = 2*H", "D = 2*H - 1", "K = 2*H"]);
    expect(resolveSizes(c, { H: 3 })).toEqual({ D: 5, H: 3, E: 6, K: 6 });
  });

  it("sizes: a determined size follows, or gives the free one; sizes that break a constraint are refused at it", () => {
    const { spec: s, opts } = file({ constraints: '["D = H"]' });
    const c = compileCell(s, opts);
    expect(resolveSizes(c, { H: 5 })).toEqual({ D: 5, H: 5 });
    expect(resolveSizes(c, { D: 6 })).toEqual({ D: 6, H: 6 });
    const e = (() => { try { resolveSizes(c, { D: 3, H: 4 }); } catch (x) { return x as CellError; } throw new Error("accepted"); })();
    expect(e).toBeInstanceOf(CellError);
    expect(located(e)).toEqual({ first: 'cells/x.ts:6:18: error in cell "mini": the sizes D=3, H=4 break the constraint D = H: D is H = 4, not 3', under: "D = H" });
    expect(e.hint).toBe("give H, and D follows");
  });

  it("a size name as an argument of slice or eye is the constrained size: slice(x, 0, D) is [H] under D = H", () => {
    const c = compileCell(spec({ constraints: ["D = H"], equations: "h' = tanh(U*h + b) + slice(concat(x, h), 0, D) + eye(D)*x" }));
    expect(shapeStr(c.next[0]!.type)).toBe("[H]");
    const r = checkGradients(c, randomCase(c, { seed: 4 }));
    expect(r.pass).toBe(true);
  });

  it("a constraint that makes a size 0 at the given sizes is refused", () => {
    const c = compileCell(spec({ constraints: ["D = H - 2"], equations: "h' = tanh(U*h + b)" }));
    expect(() => resolveSizes(c, { H: 2 })).toThrow("the constraint D = H - 2 makes D = H - 2 = 0 at H=2, not a positive integer");
  });

  it("defaults follow the constraints: D from H, or H from D; contradicting defaults are refused", () => {
    expect(compileCell(spec({ constraints: ["D = H"], defaults: { D: 8 } })).defaults).toEqual({ H: 8 });
    expect(compileCell(spec({ constraints: ["D = H"], defaults: { H: 8 } })).defaults).toEqual({ H: 8 });
    const { spec: s, opts } = file({ constraints: '["D = H"]', defaults: "{ D: 3, H: 4 }" });
    expect(located(errorOf(s, opts)).first).toBe('cells/x.ts:6:15: error in cell "mini": defaults: the sizes D=3, H=4 break the constraint D = H: D is H = 4, not 3');
  });

  describe("errors, each at its line and column in the file", () => {
    it.each([
      ["an unknown size", '["D = K"]', 'cells/x.ts:6:22: error in cell "mini": constraint "D = K": unknown size "K"', "K"],
      ["a size misspelt", '["D = Hh"]', 'cells/x.ts:6:22: error in cell "mini": constraint "D = Hh": unknown size "Hh" (did you mean H?)', "Hh"],
      ["not an equality", '["D <= H"]', 'cells/x.ts:6:20: error in cell "mini": constraint "D <= H" is not an equality: a constraint says that two sizes are equal, like "D = H" or "E = 2*H"', "<="],
      ["no equals sign", '["D + H"]', 'cells/x.ts:6:18: error in cell "mini": constraint "D + H" is not an equality: a constraint says that two sizes are equal, like "D = H" or "E = 2*H"', "D + H"],
      ["contradictory", '["D = H", "D = H + 1"]', 'cells/x.ts:6:27: error in cell "mini": constraint "D = H + 1" contradicts "D = H": together they say H = H + 1', "D = H + 1"],
      ["never true", '["H = H + 1"]', 'cells/x.ts:6:18: error in cell "mini": constraint "H = H + 1" never holds: it says H = H + 1', "H = H + 1"],
      ["no size to solve for", '["2*D = 4*H"]', 'cells/x.ts:6:18: error in cell "mini": constraint "2*D = 4*H" cannot be solved for a size: in 2*D = 4*H, every size has a coefficient other than 1', "2*D = 4*H"],
      ["a size made negative", '["D + H = 1"]', 'cells/x.ts:6:18: error in cell "mini": constraint "D + H = 1" makes D = -1*H + 1, which is not positive at any sizes', "D + H = 1"],
    ])("%s", (_what, constraints, first, under) => {
      const { spec: s, opts } = file({ constraints });
      expect(located(errorOf(s, opts))).toEqual({ first, under });
    });

    it("constraints must be a list of strings", () => {
      expect(errorOf(spec({ constraints: "D = H" })).problem).toBe('"constraints" must be a list of size equalities, like ["D = H"], not the string "D = H"');
      expect(errorOf(spec({ constraints: [3] })).problem).toBe('constraints[0] must be a size equality, like "D = H", not the number 3');
    });

    it("one that follows from the others is a warning", () => {
      const c = compileCell(spec({ constraints: ["D = H", "H = D"] }));
      expect(c.warnings.map((w) => w.split("\n")[0])).toEqual(['cell "mini": constraint "H = D" says nothing new: it follows from "D = H"']);
    });

    it("without D = H, x + h is the shape mismatch it always was", () => {
      expect(errorOf(spec({ equations: "h' = tanh(W*x + U*h + b) + x" })).problem).toBe("shape mismatch in tanh(W*x + U*h + b) + x: tanh(W*x + U*h + b) is [H] but x is [D]");
    });
  });
});

describe("every fixture cell's gradients against finite differences", () => {
  it.each(FIXTURES)("%s", async (name) => {
    const cell = await fixture(name);
    for (const [i, c] of [randomCase(cell, { seed: 1 }), randomCase(cell, { sizes: { ...cell.defaults, H: 6 }, B: 3, T: 4, seed: 2 })].entries()) {
      const r = checkGradients(cell, c, { mode: i === 0 ? "full" : "fast" });
      expect(r.rows.filter((w) => !w.pass), name).toEqual([]);
      expect(r.pass).toBe(true);
    }
  });

  it("check --sizes D=3,H=4 refuses, naming the constraint at its line (exit 1, no stack trace)", async () => {
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
    try {
      expect(await main(["check", "test/fixtures/cells/constraint-skip.ts", "--sizes", "D=3,H=4"])).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(err.join("")).toBe([
      'test/fixtures/cells/constraint-skip.ts:8:18: error in cell "constraint-skip": the sizes D=3, H=4 break the constraint D = H: D is H = 4, not 3',
      '    constraints: ["D = H"],',
      "                   ^^^^^",
      "  hint: give H, and D follows",
      "",
    ].join("\n"));
  });

  it("the reference evaluator refuses a case whose sizes break a constraint", async () => {
    const cell = await fixture("constraint-skip");
    const c = randomCase(cell, { sizes: { H: 4 } });
    expect(() => gradients(deriveBackward(cell), { ...c, sizes: { D: 3, H: 4 } })).toThrow(/break the constraint D = H/);
  });
});

describe("eval cases", () => {
  it("a scalar input is [T][B] in a case and in the result", async () => {
    const cell = await fixture("scalar-input-cfc");
    const c = randomCase(cell, { B: 2, T: 3 });
    const json = JSON.parse(JSON.stringify(caseToJson(cell, c))) as { inputs: { dt: number[][] } };
    expect([json.inputs.dt.length, json.inputs.dt[0]!.length, typeof json.inputs.dt[0]![0]]).toEqual([3, 2, "number"]);
    const back = readCase(cell, json);
    expect(back.inputs.dt).toEqual(c.inputs.dt);
    const { forward, grads } = gradients(deriveBackward(cell), back);
    const out = writeResult(cell, back, { outputs: forward.outputs, ...grads }) as { grads: { inputs: { dt: number[][] } } };
    expect(typeof out.grads.inputs.dt[2]![1]).toBe("number");
    expect(() => readCase(cell, { ...json, inputs: { ...json.inputs, dt: json.inputs.dt.map((r) => r.map((v) => [v])) } })).toThrow("inputs.dt[0][0]: expected a finite number, got [");
  });

  it("sizes: a determined one may be left out; sizes that break a constraint are refused", async () => {
    const cell = await fixture("constraint-skip");
    const json = JSON.parse(JSON.stringify(caseToJson(cell, randomCase(cell)))) as { sizes: Record<string, number> };
    expect(json.sizes).toEqual({ D: 4, H: 4 });
    expect(readCase(cell, { ...json, sizes: { H: 4 } }).sizes).toEqual({ D: 4, H: 4 });
    const bad = () => readCase(cell, { ...json, sizes: { D: 3, H: 4 } });
    expect(bad).toThrow(CaseError);
    expect(bad).toThrow("sizes: the sizes D=3, H=4 break the constraint D = H: D is H = 4, not 3 (test/fixtures/cells/constraint-skip.ts:8); give H, and D follows");
  });
});

describe("converters", () => {
  const gruSpec = (constraints?: string[]): CellSpec => ({
    name: constraints ? "gru-square" : "gru-plain",
    doc: "PyTorch nn.GRU (torch/nn/modules/rnn.py)",
    sizes: { D: "input size", H: "hidden size" },
    ...(constraints ? { constraints } : {}),
    inputs: { x: "D" },
    state: { h: "H" },
    params: { Wir: ["H", "D"], Wiz: ["H", "D"], Win: ["H", "D"], Uhr: ["H", "H"], Uhz: ["H", "H"], Uhn: ["H", "H"], bir: "H", biz: "H", bin: "H", bhr: "H", bhz: "H", bhn: "H" },
    equations: `
      r  = sigmoid(Wir*x + bir + Uhr*h + bhr)
      z  = sigmoid(Wiz*x + biz + Uhz*h + bhz)
      n  = tanh(Win*x + bin + r .* (Uhn*h + bhn))
      h' = (1 - z) .* n + z .* h
    `,
  });
  const plain = compileCell(gruSpec()), square: Cell = compileCell(gruSpec(["D = H"]));

  it("a GRU with D = H is still PyTorch's GRU (the form under the same constraint)", () => {
    expect(recognize(square).map((r) => r.form.id)).toEqual(recognize(plain).map((r) => r.form.id));
  });

  it("reads weights whose sizes keep the constraint, and refuses the others, naming it", () => {
    const ok = writeWeights(plain, "pytorch", { sizes: { D: 4, H: 4 }, params: randomCase(plain, { sizes: { D: 4, H: 4 } }).params });
    expect(readWeights(square, "pytorch", JSON.parse(JSON.stringify(ok.json))).sizes).toEqual({ D: 4, H: 4 });
    const wide = writeWeights(plain, "pytorch", { sizes: { D: 3, H: 4 }, params: randomCase(plain, { sizes: { D: 3, H: 4 } }).params });
    expect(() => readWeights(square, "pytorch", JSON.parse(JSON.stringify(wide.json)))).toThrow(InteropError);
    expect(() => readWeights(square, "pytorch", JSON.parse(JSON.stringify(wide.json)))).toThrow('cell "gru-square": the sizes D=3, H=4 break the constraint D = H: D is H = 4, not 3');
  });

  it("cellforge's own parameter files: sizes are checked against the constraint", () => {
    const cp = { sizes: { D: 4, H: 4 }, params: randomCase(square, { sizes: { H: 4 } }).params };
    const json = JSON.parse(JSON.stringify(writeCellParams(square, cp))) as { sizes: Record<string, number> };
    expect(readCellParams(square, json).sizes).toEqual({ D: 4, H: 4 });
    expect(() => readCellParams(square, { ...json, sizes: { D: 3, H: 4 } })).toThrow(/break the constraint D = H/);
    expect(() => writeCellParams(square, { ...cp, sizes: { D: 3, H: 4 } })).toThrow(/break the constraint D = H/);
  });
});

// Heads (issue #18, item 7): a matrix parameter declared with heads is block-diagonal, stored as its
// blocks, and its products are the block-diagonal ops of the op table (bdmatvec, bdmatvecT, bdouter).
// Checked here: the types and storage, the printing, the derived gradients against finite differences
// and against the same cell with the dense block-diagonal matrix written out, the errors (each at its
// line and column), sizes the heads do not divide on every path that takes sizes, and the kernel
// plan (every block-diagonal product is one GEMM per head, of cost H²/heads). The kernels themselves:
// test/heads-kernels.test.ts.
import { describe, expect, it } from "vitest";
import { type CellSpec, type CompileOptions, compileCell, resolveSizes } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { loadCell } from "../src/load.ts";
import { type Node, shapeStr, topo } from "../src/ir.ts";
import { formatLines, forwardLines } from "../src/print.ts";
import { deriveBackward } from "../src/backward.ts";
import { gradients, randomCase } from "../src/sequence.ts";
import { cellStats, paramCount, paramFormula } from "../src/stats.ts";
import { checkGradients } from "../check/gradcheck.ts";
import { buildPlan } from "../codegen/plan.ts";
import type { Program, Stage } from "../codegen/schedule.ts";

const base = {
  name: "hd", doc: "a test cell with heads (test/heads.test.ts)",
  sizes: { D: "input size", H: "hidden size" }, defaults: { D: 3, H: 8 },
  inputs: { x: "D" }, state: { h: "H" },
  params: { W: ["H", "D"], R: { shape: ["H", "H"], heads: 4 }, U: ["H", "H"], b: "H" },
} as const;
const cell = (equations: string, over: Record<string, unknown> = {}) => compileCell({ ...base, ...over, equations } as unknown as CellSpec);
const param = (c: ReturnType<typeof cell>, name: string): Node => c.params.find((q) => q.name === name)!.node;

describe("a matrix declared with heads", () => {
  it("is stored as its blocks, [H, H/4], and counts H²/4 parameters", () => {
    const c = cell("h' = tanh(W*x + R*h + b)");
    const R = param(c, "R");
    expect(shapeStr(R.type)).toBe("[H,H/4]");
    expect(R.attrs.heads).toBe(4);
    expect(c.params.find((q) => q.name === "R")!.heads!.count).toBe(4);
    expect(paramFormula(c)).toBe("D*H + 5*H^2/4 + H"); // W, R's H^2/4, U's H^2, b
    expect(paramCount(c, { D: 3, H: 8 })).toBe(8 * 3 + 16 + 64 + 8);
  });

  it("R*h is the block-diagonal product, R'*h its transpose; both print as written", () => {
    const c = cell("h' = tanh(W*x + R*h + R'*h + b)");
    const ops = topo(c.next).map((n) => n.op);
    expect(ops).toContain("bdmatvec");
    expect(ops).toContain("bdmatvecT");
    expect(ops).not.toContain("matvec" + "T");
    expect(formatLines(forwardLines(c))).toContain("R*h + R'*h");
    expect(shapeStr(c.next[0]!.type)).toBe("[H]");
  });

  it("its gradient is a per-head outer product, dh a per-head transposed product", () => {
    const c = cell("h' = tanh(W*x + R*h + b)");
    const bw = deriveBackward(c);
    const dR = bw.dParams[c.params.findIndex((q) => q.name === "R")]!;
    expect(dR.op).toBe("bdouter");
    expect(dR.attrs.heads).toBe(4);
    expect(shapeStr(dR.type)).toBe("[H,H/4]");
    expect(topo(bw.dStates).some((n) => n.op === "bdmatvecT")).toBe(true);
  });

  it("in a matrix expression, (R + U)*h and (2*R - R')*h are distributed over their terms", () => {
    expect(topo(cell("h' = tanh((R + U)*h + W*x)").next).map((n) => n.op)).toEqual(expect.arrayContaining(["bdmatvec", "matvec"]));
    const ops = topo(cell("h' = tanh((2*R - R')*h + W*x)").next).map((n) => n.op);
    expect(ops).toEqual(expect.arrayContaining(["bdmatvec", "bdmatvecT"]));
  });

  it("a non-square matrix in heads: [2*H, D] in 2 heads multiplies x of D, each block (H)×(D/2)", () => {
    const c = cell("h' = tanh(slice(V*x, 0, H) + R*h)", { params: { R: { shape: ["H", "H"], heads: 4 }, V: { shape: ["2*H", "D"], heads: 2 } }, defaults: { D: 4, H: 8 } });
    expect(shapeStr(param(c, "V").type)).toBe("[2*H,D/2]");
  });
});

// ------------------------------------------------------------------------------------ numbers

/** The block-diagonal matrix written out: heads blocks of the stored [R, C/heads] on a dense [R, C]. */
function dense(blocks: Float64Array, R: number, C: number, heads: number): Float64Array {
  const Rb = R / heads, Cb = C / heads, w = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let j = 0; j < Cb; j++) w[r * C + Math.floor(r / Rb) * Cb + j] = blocks[r * Cb + j]!;
  return w;
}

describe("the reference evaluator and the derived gradients", () => {
  const FORMS = [
    "h' = tanh(W*x + R*h + b)",
    "h' = tanh(W*x + R'*h + b)",
    "h' = tanh(W*x + (R - R')*h + U*h/2 + b)",
    "a = R*h\nh' = tanh(W*x + R'*a .* a + b)",
  ];
  for (const eq of FORMS)
    it(`against finite differences: ${eq.replace(/\n/g, "; ")}`, () => {
      const c = cell(eq);
      for (const cs of [randomCase(c, { seed: 3 }), randomCase(c, { sizes: { D: 2, H: 12 }, B: 3, T: 4, seed: 4 })]) {
        const r = checkGradients(c, cs);
        expect(r.rows.filter((w) => !w.pass)).toEqual([]);
        expect(r.rows.find((w) => w.name === "R")!.checked).toBeGreaterThan(0);
      }
    });

  it("equal the same cell with the dense block-diagonal matrix (outputs, and dR the blocks of dU)", () => {
    const headed = cell("h' = tanh(W*x + R*h + R'*tanh(h) + b)");
    const full = cell("h' = tanh(W*x + U*h + U'*tanh(h) + b)", { params: { W: ["H", "D"], U: ["H", "H"], b: "H" } });
    const sizes = { D: 3, H: 12 };
    const c = randomCase(headed, { sizes, B: 2, T: 4, seed: 11 });
    const U = dense(c.params.R!, 12, 12, 4);
    const g1 = gradients(deriveBackward(headed), c);
    const g2 = gradients(deriveBackward(full), { ...c, params: { W: c.params.W!, U, b: c.params.b! } });
    const close = (a: ArrayLike<number>, b: ArrayLike<number>) => { expect(a.length).toBe(b.length); for (let k = 0; k < a.length; k++) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(1e-12); };
    close(g1.forward.outputs.h!, g2.forward.outputs.h!);
    // dU restricted to the blocks is dR; dU has entries off the blocks too, which R has no parameter for
    const dU = g2.grads.params.U!, dR = g1.grads.params.R!;
    const onBlocks = new Float64Array(dR.length);
    for (let r = 0; r < 12; r++) for (let j = 0; j < 3; j++) onBlocks[r * 3 + j] = dU[r * 12 + Math.floor(r / 3) * 3 + j]!;
    close(dR, onBlocks);
    close(g1.grads.params.W!, g2.grads.params.W!);
  });
});

// ------------------------------------------------------------------------------------ errors

/** The cell as a file, so that errors have the file's lines and columns. */
function file(params: string, defaults = "{ D: 3, H: 8 }"): { spec: CellSpec; opts: CompileOptions; lines: string[] } {
  const lines = [
    'import { defineCell } from "cellforge";',
    "export default defineCell({",
    '  name: "hd",',
    '  doc: "a test cell",',
    '  sizes: { D: "input size", H: "hidden size" },',
    `  defaults: ${defaults},`,
    '  inputs: { x: "D" },',
    '  state: { h: "H" },',
    `  params: ${params},`,
    "  equations: `h' = tanh(W*x + R*h)`,",
    "});",
  ];
  const spec = { ...base, defaults: Function(`return (${defaults})`)() as unknown, params: Function(`return (${params})`)() as unknown, equations: "h' = tanh(W*x + R*h)" } as unknown as CellSpec;
  return { spec, opts: { file: "cells/x.ts", source: lines.join("\n") }, lines };
}
function errorOf(f: () => unknown): CellError {
  try {
    f();
  } catch (e) {
    if (e instanceof CellError) return e;
    throw e;
  }
  throw new Error("no error");
}
/** The message's first line and the text the caret underlines. */
function located(e: CellError, lines: readonly string[]): { first: string; under: string } {
  const { line, column, width } = e.where;
  return { first: e.message.split("\n")[0]!, under: lines[line! - 1]!.slice(column! - 1, column! - 1 + (width ?? 1)) };
}

describe("errors, at the declaration", () => {
  it.each([
    ["heads not a whole number", '{ W: ["H", "D"], R: { shape: ["H", "H"], heads: 2.5 } }', 'cells/x.ts:9:#: error in cell "hd": parameter R: heads must be a positive integer, not the number 2.5'],
    ["heads as a string", '{ W: ["H", "D"], R: { shape: ["H", "H"], heads: "4" } }', 'cells/x.ts:9:#: error in cell "hd": parameter R: heads must be a positive integer, not the string "4"'],
    ["heads of a vector", '{ W: ["H", "D"], R: { shape: "H", heads: 4 } }', 'cells/x.ts:9:#: error in cell "hd": parameter R: only a matrix has heads, but its shape has 1 dimension'],
    ["heads that never divide a fixed size", '{ W: ["H", "D"], R: { shape: [6, "H"], heads: 4 } }', 'cells/x.ts:9:#: error in cell "hd": parameter R: 4 heads do not divide its size 6'],
  ])("%s", (_name, params, first) => {
    const f = file(params);
    const e = errorOf(() => compileCell(f.spec, f.opts));
    // at the word heads of the declaration (its column in line 9)
    expect(located(e, f.lines)).toEqual({ first: first.replace("#", String(f.lines[8]!.indexOf("heads") + 1)), under: "heads" });
  });

  it("default sizes the heads do not divide are refused, naming the parameter", () => {
    const f = file('{ W: ["H", "D"], R: { shape: ["H", "H"], heads: 4 } }', "{ D: 3, H: 6 }");
    const e = errorOf(() => compileCell(f.spec, f.opts));
    expect(located(e, f.lines)).toEqual({ first: 'cells/x.ts:9:52: error in cell "hd": the sizes D=3, H=6 do not fit: parameter R has 4 heads, so its size H = 6 must be divisible by 4', under: "heads" });
    expect(e.hint).toBe("give sizes that 4 divides, or declare R with heads that divide 6");
  });

  it("a product with a vector of the wrong size names the blocks", () => {
    const e = errorOf(() => cell("h' = tanh(R*x + h)"));
    expect(e.problem).toMatch(/shape mismatch in R\*x: R is \[H,H\] but x is \[D\]|R has H columns/); // the matrix it stands for, not its stored blocks
  });

  it("a block-diagonal matrix and a dense one are not added entry by entry as stored", () => {
    expect(() => cell("h' = tanh(W*x + sum(R .* U) + h)")).toThrow(CellError);
  });

  // found by the fuzzer's heads grammar: these once computed on the stored blocks as if they were the matrix
  it("a matrix expression of it on a line of its own is refused by name, never formed from the blocks", () => {
    for (const eq of ["M = -R\nh' = tanh(M*h + W*x)", "M = R .- b[0]\nh' = tanh(M*h)", "M = 2*R\nh' = tanh(M*h)", "M = R + U\nh' = tanh(M*h)"]) {
      const e = errorOf(() => cell(eq.replace("b[0]", "1")));
      expect(e.problem, eq).toMatch(/is a block-diagonal matrix \(declared with heads\), or an expression of one: it can only multiply a vector/);
    }
  });

  it("-R*h is -(R*h), as for a dense matrix", () => {
    const ops = topo(cell("h' = tanh(-R*h + W*x)").next).map((n) => n.op);
    expect(ops).toEqual(expect.arrayContaining(["neg", "bdmatvec"]));
  });
});

describe("sizes the heads do not divide, wherever sizes are given", () => {
  const c = cell("h' = tanh(W*x + R*h + b)");
  it("resolveSizes (check --sizes, eval cases, converters) refuses them at the declaration", () => {
    expect(() => resolveSizes(c, { D: 3, H: 6 })).toThrow("the sizes D=3, H=6 do not fit: parameter R has 4 heads, so its size H = 6 must be divisible by 4");
    expect(resolveSizes(c, { D: 3, H: 12 })).toEqual({ D: 3, H: 12 });
  });
  it("the reference evaluator refuses them", () => {
    const cs = randomCase(c, { seed: 1 });
    expect(() => gradients(deriveBackward(c), { ...cs, sizes: { D: 3, H: 6 } })).toThrow(/parameter R has 4 heads/);
  });
});

// ------------------------------------------------------------------------------------ the plan

const gemms = (p: Program) => p.stages.filter((s): s is Extract<Stage, { kind: "gemm" }> => s.kind === "gemm");
const programs = (plan: ReturnType<typeof buildPlan>) => [plan.fwdSetup, plan.prologue, plan.fwdStep, plan.bwdSetup, plan.bwdStep, plan.epilogue];

describe("the kernel plan: every block-diagonal product is one GEMM per head", () => {
  it("sLSTM (dsl/slstm.ts): 4 recurrent matrices in 4 heads, forward NT, dh NN, dR TN, each (H/4)×(H/4)", async () => {
    const c = await loadCell("slstm");
    const plan = buildPlan(c, deriveBackward(c));
    // no block-diagonal product is left to a loop
    expect(programs(plan).flatMap((pr) => pr.stages.flatMap((s) => (s.kind === "op" && /^bd/.test(s.node.op) ? [s.node.op] : [])))).toEqual([]);
    const perHead = (pr: Program, form: string) => gemms(pr).filter((s) => s.form === form && /^head \d of 4: /.test(s.note));
    for (const [pr, form] of [[plan.fwdStep, "NT"], [plan.bwdStep, "NN"], [plan.bwdStep, "TN"]] as const) {
      const gs = perHead(pr, form);
      expect(gs.length, `${pr.name} ${form}`).toBe(16); // 4 matrices × 4 heads
      for (const s of gs) expect([String(s.M), String(s.K)], `${pr.name} ${form}: ${s.note}`).toEqual(["(H / 4)", "(H / 4)"]);
    }
    // each head's block of R is at its own offset in the parameters: k·(H/4)², a head's rows of the product at k·H/4
    const ri = perHead(plan.fwdStep, "NT").filter((s) => s.note.endsWith("Ri times h"));
    expect(ri.map((s) => String(s.b.start))).toEqual(["o_Ri", "o_Ri + (H / 4) * (H / 4)", "o_Ri + 2 * (H / 4) * (H / 4)", "o_Ri + 3 * (H / 4) * (H / 4)"]);
    expect(ri.map((s) => String(s.a.start).replace(/^.* \+ /, "+ ")).slice(1)).toEqual(["+ (H / 4)", "+ 2 * (H / 4)", "+ 3 * (H / 4)"]);
    // dh is the sum of the four R'*g: their per-head NN products write, then add, straight into dh's place
    const nn = perHead(plan.bwdStep, "NN");
    expect(new Set(nn.map((s) => s.c.buf)).size).toBe(1);
    expect(nn.map((s) => s.accumulate)).toEqual([...Array(4).fill(false), ...Array(12).fill(true)]);
    // the weight gradients accumulate into dp, at the same offsets
    for (const s of perHead(plan.bwdStep, "TN")) expect([s.c.buf, s.accumulate]).toEqual(["dp", true]);
  });

  it("the products' FLOPs are H²/heads per example: the stats count 4 blocks, not the full matrix", () => {
    const headed = cell("h' = tanh(R*h)"), full = cell("h' = tanh(U*h)");
    const f = (c: ReturnType<typeof cell>) => cellStats(deriveBackward(c), { D: 3, H: 128 }).forwardFlops;
    expect(f(full) - f(headed)).toBe(2 * 128 * 128 - 2 * 128 * 32);
  });
});

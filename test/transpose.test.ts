// A weight's transpose and matrix expressions in the equations (issue #18, items 1 and 2): W'*h and
// transpose(W)*h are the transposed product; (W - W')*h, (W + gamma*eye(H))*h, (2*W - U')*h and
// (A + B)*x are distributed over their terms, so no matrix is formed, every product is a GEMM, and a
// matrix used plain and transposed gets both contributions in its gradient. Checked here: the IR and
// its printing, the derived gradients against finite differences and against two untied matrices, the
// kernel plan's products, and the refusals. (The kernels themselves: test/transpose-kernels.test.ts.)
import { describe, expect, it } from "vitest";
import { type CellSpec, compileCell } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { loadCell } from "../src/load.ts";
import { type Node, topo } from "../src/ir.ts";
import { apply, konst } from "../src/ops.ts";
import { forwardLines } from "../src/print.ts";
import { deriveBackward } from "../src/backward.ts";
import { gradients, randomCase } from "../src/sequence.ts";
import { checkGradients, formatReport } from "../check/gradcheck.ts";
import { buildPlan } from "../codegen/plan.ts";

const base = {
  name: "tr", doc: "a test cell with transposes",
  sizes: { D: "input size", H: "hidden size" }, inputs: { x: "D" }, state: { h: "H" },
  params: { W: ["H", "H"], U: ["H", "H"], V: ["H", "D"], A: ["H", "D"], b: "H", gamma: [] },
  constants: { eps: 0.5 },
} as const;
const cell = (equations: string, over: Record<string, unknown> = {}) => compileCell({ ...base, ...over, equations } as unknown as CellSpec);
const p = (c: ReturnType<typeof cell>, name: string): Node => c.params.find((q) => q.name === name)!.node;
const state = (c: ReturnType<typeof cell>): Node => c.states[0]!;
const input = (c: ReturnType<typeof cell>): Node => c.inputs[0]!;
const mv = (w: Node, v: Node) => apply("matvec", [w, v]);
const mvT = (w: Node, v: Node) => apply("matvecT", [w, v]);

/** The forms a user writes, each with what it is, and the cells the numeric tests run. */
const FORMS: readonly { eq: string; printed: string }[] = [
  { eq: "h' = tanh(W'*h + V*x + b)", printed: "tanh(W'*h + V*x + b)" },
  { eq: "h' = tanh(transpose(W)*h + V*x + b)", printed: "tanh(W'*h + V*x + b)" },
  { eq: "h' = h + eps * tanh((W - W')*h - gamma*h + V*x + b)", printed: "h + 0.5 * tanh(W*h - W'*h - gamma * h + V*x + b)" },
  { eq: "h' = tanh((W + gamma*eye(H))*h + V*x)", printed: "tanh(W*h + gamma * h + V*x)" },
  { eq: "h' = tanh((2*W - U')*h + V*x)", printed: "tanh(2 * (W*h) - U'*h + V*x)" },
  { eq: "h' = tanh((V + A)*x + W*h)", printed: "tanh(V*x + A*x + W*h)" },
  { eq: "h' = tanh((W - W')'*h + (V - A)/2*x)", printed: "tanh(W'*h - W*h + (V*x - A*x) / 2)" },
  { eq: "h' = tanh(W*h + W'*h + V*x)", printed: "tanh(W*h + W'*h + V*x)" },
  { eq: "h' = tanh(-W'*h + gamma*(eye(H) - U)*h + V*x)", printed: "tanh(-(W'*h) + gamma * (h - U*h) + V*x)" },
  { eq: "a = V'*h\nh' = tanh(W*h + V*a + b)", printed: "V'*h" },
];

describe("a transpose and matrix expressions lower to products of the matrices themselves", () => {
  it("W'*h and transpose(W)*h are the transposed product, the very same node", () => {
    const c1 = cell("h' = tanh(W'*h + V*x + b)"), c2 = cell("h' = tanh(transpose(W)*h + V*x + b)");
    expect(c1.next[0]).toBe(c2.next[0]);
    expect(topo(c1.next)).toContain(mvT(p(c1, "W"), state(c1)));
  });

  it("(Σ cᵢ Mᵢ)*v is Σ cᵢ (Mᵢ*v), and eye(n)*v is v: no matrix is formed", () => {
    const c = cell("h' = (W - W')*h + (2*U + gamma*eye(H))*h + (V - A)/2*x");
    const [W, U, V, A, gamma, h, x] = [p(c, "W"), p(c, "U"), p(c, "V"), p(c, "A"), p(c, "gamma"), state(c), input(c)];
    const want = apply("add", [
      apply("add", [apply("sub", [mv(W, h), mvT(W, h)]), apply("add", [apply("mul", [konst(2), mv(U, h)]), apply("mul", [gamma, h])])]),
      apply("div", [apply("sub", [mv(V, x), mv(A, x)]), konst(2)]),
    ]);
    expect(c.next[0]).toBe(want);
    // every node is a vector or a scalar, but for the parameters themselves
    expect(topo(c.next).filter((n) => n.type.shape.length === 2 && n.op !== "input")).toEqual([]);
  });

  it("a state's prime is still its next value; a matrix's is its transpose", () => {
    const c = cell("c = tanh(W*h + V*x)\nh' = c .* h\ny = tanh(U'*h')", { outputs: { y: "H" } });
    const y = c.outputs[0]!.node;
    expect(y).toBe(apply("tanh", [mvT(p(c, "U"), c.next[0]!)]));
  });

  it("a matrix defined by an equation has a transpose too, and one of elementwise ops is formed as before", () => {
    const c = cell("M = W .- gamma\nN = W + U\nh' = tanh(M'*h + N*h + V*x)");
    const M = apply("sub", [p(c, "W"), p(c, "gamma")]), N = apply("add", [p(c, "W"), p(c, "U")]);
    expect(c.next[0]).toBe(apply("tanh", [apply("add", [apply("add", [mvT(M, state(c)), mv(N, state(c))]), mv(p(c, "V"), input(c))])]));
  });

  it("a matrix defined below its transposed read is ordered first, and counts as used", () => {
    const c = cell("h' = tanh(M'*h + V*x)\nM = W .- gamma");
    const M = apply("sub", [p(c, "W"), p(c, "gamma")]);
    expect(c.next[0]).toBe(apply("tanh", [apply("add", [mvT(M, state(c)), mv(p(c, "V"), input(c))])]));
    expect(c.equations.map((e) => e.lhs)).toEqual(["M", "h'"]);
    expect(c.warnings.filter((w) => /never used/.test(w) && !/parameter (U|A|b)\b/.test(w))).toEqual([]);
    expect(cell("M = W .- gamma\nh' = tanh(M'*h + V*x)").warnings.join("\n")).not.toMatch(/M is defined but never used/);
  });

  it("a matrix and a scalar elementwise print as W .- g and W .+ g, and the printed equation reads back as the same cell", () => {
    const c = cell("h' = tanh((W .- gamma)'*h + (U .+ 2)*h + V*x)");
    const rhs = forwardLines(c)[0]!.rhs;
    expect(rhs).toBe("tanh((W .- gamma)'*h + (U .+ 2)*h + V*x)");
    expect(cell(`h' = ${rhs}`).next[0]).toBe(c.next[0]);
  });

  for (const f of FORMS)
    it(`show prints ${f.eq.replace(/\n/g, "; ")}`, () => {
      const lines = forwardLines(cell(f.eq));
      expect(lines.map((l) => l.rhs)).toContain(f.printed);
    });

  it("show prints the antisymmetric cell's derivation: dW sums its plain and its transposed use", async () => {
    const c = await loadCell("test/fixtures/cells/antisymmetric.ts");
    expect(forwardLines(c)).toEqual([{ lhs: "h'", rhs: "h + 0.1 * tanh(W*h - W'*h - 0.01 * h + V*x + b)" }]);
    const bw = deriveBackward(c);
    const names = new Map([...bw.names].map(([n, s]) => [s, n]));
    const dW = names.get("dW")!;
    expect(dW.op).toBe("add");
    expect(dW.args.map((a) => a.op)).toEqual(["outer", "outer"]);
  });
});

// ------------------------------------------------------------------------------------ gradients

describe("gradients", () => {
  const CONFIGS = [{ sizes: { D: 3, H: 4 }, B: 1, T: 1 }, { sizes: { D: 2, H: 3 }, B: 3, T: 4 }];
  for (const f of FORMS)
    for (const cf of CONFIGS)
      it(`${f.eq.replace(/\n/g, "; ")}: against central finite differences (B=${cf.B}, T=${cf.T})`, () => {
        const c = cell(f.eq);
        const r = checkGradients(c, randomCase(c, { ...cf, seed: 5 }), { mode: "full" });
        expect(r.pass, formatReport(r)).toBe(true);
        for (const row of r.rows) expect(row.maxAbs, `${row.group} ${row.name}`).toBeLessThan(1e-7);
      });

  it("a matrix used plain and transposed gets dW + dWtᵀ, where Wt is an untied matrix holding Wᵀ", () => {
    const tied = cell("h' = tanh(W*h - 2*W'*h + V*x + b)");
    const untied = compileCell({ ...base, params: { ...base.params, Wt: ["H", "H"] }, equations: "h' = tanh(W*h - 2*Wt*h + V*x + b)" } as unknown as CellSpec);
    const c = randomCase(tied, { sizes: { D: 3, H: 4 }, B: 2, T: 3, seed: 9 });
    const H = 4, W = c.params.W!, Wt = new Float64Array(H * H);
    for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) Wt[j * H + i] = W[i * H + j]!;
    const gt = gradients(deriveBackward(tied), c).grads.params;
    const gu = gradients(deriveBackward(untied), { ...c, params: { ...c.params, Wt } }).grads.params;
    expect(Math.max(...gu.Wt!.map(Math.abs))).toBeGreaterThan(1e-3);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < H; j++) expect(gt.W![i * H + j]).toBeCloseTo(gu.W![i * H + j]! + gu.Wt![j * H + i]!, 12);
  });

  it("the antisymmetric cell's dW is antisymmetric, so training keeps W - W' antisymmetric", async () => {
    const c = await loadCell("test/fixtures/cells/antisymmetric.ts");
    const cs = randomCase(c, { sizes: { D: 3, H: 5 }, B: 2, T: 4, seed: 3 });
    const dW = gradients(deriveBackward(c), cs).grads.params.W!;
    const H = 5;
    let scale = 0;
    for (const v of dW) scale = Math.max(scale, Math.abs(v));
    expect(scale).toBeGreaterThan(1e-3);
    for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) expect(Math.abs(dW[i * H + j]! + dW[j * H + i]!)).toBeLessThan(1e-14);
  });
});

// ------------------------------------------------------------------------------------ the plan

describe("the kernel plan keeps every product on the GEMM paths", () => {
  for (const f of FORMS)
    it(`${f.eq.replace(/\n/g, "; ")}: W*v is an NT product, W'*v an NN one, none a loop`, () => {
      const c = cell(f.eq);
      const plan = buildPlan(c, deriveBackward(c));
      const programs = [plan.fwdSetup, plan.prologue, plan.fwdStep, plan.bwdSetup, plan.bwdStep, plan.epilogue];
      const loops = programs.flatMap((pr) => pr.stages.flatMap((s) => (s.kind === "op" && /^matvec/.test(s.node.op) ? [`${pr.name}: ${s.node.op}`] : [])));
      expect(loops).toEqual([]);
      // the forward's transposed products are NN products in the step
      const fwdT = topo(c.next).filter((n) => n.op === "matvecT").length;
      const nn = plan.fwdStep.stages.filter((s) => s.kind === "gemm" && s.form === "NN");
      expect(nn.length).toBe(fwdT);
      for (const s of nn) expect(s.kind === "gemm" && s.note).toMatch(/^\w+' times /);
    });
});

// ------------------------------------------------------------------------------------ refusals

function errorOf(spec: unknown): CellError {
  try {
    compileCell(spec as CellSpec);
  } catch (e) {
    if (e instanceof CellError) return e;
    throw new Error(`expected a CellError, got ${String(e)}`);
  }
  throw new Error("expected a CellError, but the cell compiled");
}
/** The first line of the message, where the caret is, and the hint. */
function refusal(equations: string, over: Record<string, unknown> = {}): { problem: string; column: number; line: number; hint: string | undefined } {
  const e = errorOf({ ...base, ...over, equations });
  return { problem: e.problem, column: e.where.column!, line: e.where.line!, hint: e.hint };
}

describe("refusals name the spot and the shapes", () => {
  it("a matrix expression with a transpose or an identity, outside a product", () => {
    expect(refusal("M = W - W'\nh' = tanh(M*h)")).toEqual({ line: 1, column: 5,
      problem: '"W - W\'" is a matrix expression with a transpose or an identity: it can only multiply a vector',
      hint: "write (W - W')*v: the product is computed term by term (W'*v, eye(n)*v = v), and the matrix is never formed" });
    expect(refusal("h' = tanh(eye(H) + h)")).toMatchObject({ line: 1, column: 11, problem: '"eye(H)" is the identity: it can only multiply a vector',
      hint: "write eye(H)*v: the product is computed term by term (W'*v, eye(n)*v = v), and the matrix is never formed" });
    expect(refusal("h' = tanh(W' .* U)")).toMatchObject({ column: 11, problem: `"W'" is a transpose: it can only multiply a vector` });
  });

  it("matrices of different shapes, eye of the wrong size", () => {
    expect(refusal("h' = tanh((V + W)*h)")).toMatchObject({ column: 12, problem: "shape mismatch in V + W: V is [H,D] but W is [H,H]", hint: '"+" between matrices works entry by entry: they need the same shape' });
    expect(refusal("h' = tanh((W - eye(D))*h)")).toMatchObject({ column: 12, problem: "shape mismatch in W - eye(D): W is [H,H] but eye(D) is [D,D]" });
    expect(refusal("h' = tanh(eye(D)*h)")).toMatchObject({ column: 11, problem: "shape mismatch in eye(D)*h: eye(D) is [D,D] but h is [H]", hint: "eye(D) has D columns, so it multiplies a vector of D" });
    expect(refusal("h' = tanh(V'*x + h)")).toMatchObject({ column: 11, problem: "shape mismatch in V'*x: V' is [D,H] but x is [D]", hint: "V' has H columns, so it multiplies a vector of H" });
    expect(refusal("h' = tanh((W - W')*x + h)", { inputs: { x: "D" } })).toMatchObject({ column: 11, problem: "shape mismatch in (W - W')*x: (W - W') is [H,H] but x is [D]" });
  });

  it("a prime on a vector is neither a next value nor a transpose", () => {
    expect(refusal("h' = tanh(x' + h)")).toEqual({ line: 1, column: 11, problem: `"x'": only a state has a next value, and x is an input`,
      hint: "a prime is the next value of a state (h') or the transpose of a matrix (W'*v), but x is [D]" });
    expect(refusal("h' = tanh(b' + h)").problem).toBe(`"b'": only a state has a next value, and b is a parameter`);
    expect(refusal("h' = tanh(transpose(h))")).toMatchObject({ column: 11, problem: "transpose expects a matrix, but h is [H]" });
    expect(refusal("h' = tanh((h + b)'*h)")).toMatchObject({ column: 11, problem: "a transpose needs a matrix, but (h + b) is [H]" });
  });

  it("products of matrices, a matrix on the right, eye of a non-size", () => {
    expect(refusal("h' = tanh(W'*U*h)")).toMatchObject({ column: 11, problem: "shape mismatch in W'*U: W' is [H,H] but U is [H,H]", hint: '"*" multiplies a matrix by a vector; there are no matrix-matrix products' });
    expect(refusal("h' = tanh(h*W')")).toMatchObject({ column: 11, problem: `"*" multiplies a matrix by a vector, but h is [H] and W' is [H,H]`, hint: "the matrix goes on the left: W'*h" });
    expect(refusal("h' = tanh(eye(gamma)*h)")).toMatchObject({ column: 15, problem: '"gamma" is not a size' });
    expect(refusal("h' = tanh(eye(H, H)*h)")).toMatchObject({ column: 11, problem: "eye takes 1 argument, but 2 are given", hint: "write eye(n)" });
  });

  it("a scalar added to a matrix points to gamma*eye(H); a declared name eye hides the function", () => {
    const r = refusal("h' = tanh((W - gamma)*h)");
    expect(r).toMatchObject({ column: 12, problem: '"W - gamma" subtracts the scalar gamma from every entry of the matrix W' });
    expect(r.hint).toBe("for gamma times the identity, write (W - gamma*eye(H))*v; to subtract it from every entry, write W .- gamma");
    expect(refusal("h' = tanh((V + 1)*x)").hint).toBe("to add it to every entry, write V .+ 1"); // not square: no identity
    expect(() => cell("h' = tanh(W*h + eye)", { params: { ...base.params, eye: "H" } })).not.toThrow();
  });
});

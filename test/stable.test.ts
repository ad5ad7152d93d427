// Stable forms of the composites that overflow as written (src/simplify.ts, STABLE_RULES): each
// law's form and meaning, and a cell that writes them run at inputs of ±1000 (where sigmoid(x)
// underflows to 0 and exp(x) overflows) through the reference and the generated kernels, which
// must all be finite and agree with the closed forms.
import { describe, expect, it } from "vitest";
import { dimSize } from "../src/dims.ts";
import { leaf } from "../src/ops.ts";
import { add, apply, konst, sub } from "../src/ops.ts";
import { vec } from "../src/ir.ts";
import { STABLE_RULES, type SimplifyStats, simplify } from "../src/simplify.ts";
import { printExpr } from "../src/print.ts";
import { compileCell } from "../src/cell.ts";
import { deriveBackward } from "../src/backward.ts";
import { type SequenceCase, gradients } from "../src/sequence.ts";
import { checkKernels } from "../check/kernelcheck.ts";
import { loadCell, ROOT } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";
import { evaluate } from "../src/eval.ts";
import { join } from "node:path";

const x = leaf("x", "input", vec(dimSize("H")));
const sig = (v: typeof x) => apply("sigmoid", [v]);
const CASES: Readonly<Record<string, { from: () => typeof x; to: string }>> = {
  "log(sigmoid(x)) -> -softplus(-x)": { from: () => apply("log", [sig(x)]), to: "-softplus(-x)" },
  "log(1 - sigmoid(x)) -> -softplus(x)": { from: () => apply("log", [sub(konst(1), sig(x))]), to: "-softplus(x)" },
  "log(1 + exp(x)) -> softplus(x),  log(exp(x) + 1) -> softplus(x)": { from: () => apply("log", [add(apply("exp", [x]), konst(1))]), to: "softplus(x)" },
  "log(exp(x)) -> x": { from: () => apply("log", [apply("exp", [x])]), to: "x" },
  "--x -> x": { from: () => apply("log", [apply("sigmoid", [apply("neg", [x])])]), to: "-softplus(x)" },
};

describe("stable forms", () => {
  it("every law has a case, fires on it and prints the stable form", () => {
    expect(STABLE_RULES.map((r) => r.law).sort()).toEqual(Object.keys(CASES).sort());
    for (const [law, c] of Object.entries(CASES)) {
      const stats: SimplifyStats = { fired: new Map() };
      const [r] = simplify([c.from()], STABLE_RULES, stats);
      expect(stats.fired.get(law) ?? 0, law).toBeGreaterThan(0);
      expect(printExpr(r!, new Map()), law).toBe(c.to);
    }
  });

  // log(sigmoid(a·x)), log(1 - sigmoid(x)), log(1 + exp(x)) and log(exp(x)), written as a paper would
  const cell = compileCell({
    name: "logsig", doc: "stable composites at ±1000", sizes: { H: "hidden size" }, inputs: { x: "H" }, state: { h: "H" },
    params: { a: { shape: "H", init: "ones" } },
    equations: `
      p  = log(sigmoid(a .* x))
      q  = log(1 - sigmoid(x))
      h' = p + q + log(1 + exp(x)) + log(exp(h)) * 0.5
    `,
  });
  const B = 2, T = 3, H = 4;
  const xs = Float64Array.from({ length: T * B * H }, (_, i) => (i % 2 ? 1000 : -1000) * (1 + (i % 3) / 10));
  const kase: SequenceCase = {
    sizes: { H }, B, T,
    params: { a: Float64Array.from({ length: H }, (_, i) => 1 - 0.25 * i) },
    inputs: { x: xs }, initial: { h: new Float64Array(B * H).fill(0.5) },
    upstream: { h: new Float64Array(T * B * H).fill(1) },
  };
  // the closed forms, with softplus(v) = max(v, 0) + log1p(exp(-|v|))
  const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
  const sigmoid = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

  it("the reference is finite at ±1000 and equals the closed forms, values and gradients", () => {
    const { forward, grads } = gradients(deriveBackward(cell), kase);
    const h = forward.outputs.h!, dx = grads.inputs.x!;
    for (let t = 0; t < T; t++)
      for (let k = 0; k < B * H; k++) {
        const i = t * B * H + k, v = xs[i]!, a = kase.params.a![k % H]!;
        const prev = t === 0 ? kase.initial.h![k]! : h[i - B * H]!;
        expect(h[i]).toBeCloseTo(-softplus(-a * v) - softplus(v) + softplus(v) + 0.5 * prev, 9);
        // d/dx of the step: a·sigmoid(-a x) - sigmoid(x) + sigmoid(x); the upstream reaching h at step t
        // is 1 + 0.5 + … (every later step's 1, through h' = … + 0.5 h)
        const reaching = (1 - 0.5 ** (T - t)) / 0.5;
        expect(dx[i]).toBeCloseTo(a * sigmoid(-a * v) * reaching, 9);
      }
    for (const v of [...h, ...dx, ...Object.values(grads.params).flatMap((g) => [...g])]) expect(Number.isFinite(v)).toBe(true);
  });

  it("the kernels are finite at ±1000 and agree with the reference on both backends", async () => {
    const rows = await checkKernels(cell, kase);
    expect(new Set(rows.map((r) => r.backend))).toEqual(new Set(["ts", "wasm"]));
    for (const r of rows) expect(r.pass, `${r.backend} ${r.what}: ${r.maxErr} (${r.rule}) ${r.detail ?? ""}`).toBe(true);
  }, 120_000);

  it("a float32 LSTM from c = ±1e30 is finite on the wasm path wherever it is on the ts path, and agrees", async () => {
    const lstm = await loadCell(join(ROOT, "dsl", "lstm.ts"));
    const c = randomCase(lstm, { B: 2, T: 3, sizes: { D: 3, H: 4 }, seed: 3 });
    const rows = await checkKernels(lstm, { ...c, initial: { ...c.initial, c: Float64Array.from(c.initial.c!, (_, i) => (i % 2 ? 1e30 : -1e30)) } });
    expect(rows.some((r) => r.backend === "wasm" && r.what.includes("f32"))).toBe(true);
    for (const r of rows) expect(r.pass, `${r.backend} ${r.what}: ${r.maxErr} (${r.rule}) ${r.detail ?? ""}`).toBe(true);
  }, 120_000);

  it("the reference propagates NaN through relu, max and min as the kernels' Math.max and f64x2.max do", () => {
    const y = leaf("y", "input", vec(dimSize("H")));
    const env = new Map([[x, Float64Array.of(Number.NaN, -2, 3)], [y, Float64Array.of(1, Number.NaN, 0)]]);
    const [r, mx, mn] = evaluate([apply("relu", [x]), apply("max", [x, y]), apply("min", [x, y])], env, 1, { H: 3 });
    expect([...r!]).toEqual([Number.NaN, 0, 3]);
    expect([...mx!]).toEqual([Number.NaN, Number.NaN, 3]);
    expect([...mn!]).toEqual([Number.NaN, Number.NaN, 0]);
  });
});

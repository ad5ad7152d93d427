// The lowering of products into GEMM stages, on cells outside dsl/ that once got wrong kernels:
// a product inside a sum with a coefficient, a sign or a divisor, a matrix used by two products,
// terms multiplied by zero. Each runs every kernel path against the reference evaluator and
// finite differences.
import { describe, expect, it } from "vitest";
import { compileCell, type CellSpec } from "../src/cell.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels } from "../check/kernelcheck.ts";

const rnn = (name: string, equations: string): CellSpec => ({
  name, doc: "a regression case of the lowering", sizes: ["D", "H"], inputs: { x: "D" }, state: { h: "H" },
  params: { W: ["H", "D"], U: ["H", "H"], b: "H" }, equations,
});

const CASES: readonly CellSpec[] = [
  rnn("scaled", "h' = tanh(W*x + 2 * U*h + b)"),
  rnn("negated", "h' = tanh(-U*h + W*x + b)"),
  rnn("halved", "h' = tanh(W*x + U/2*h + b)"),
  rnn("scaled-after", "h' = tanh(W*x + U*h*2 + b)"),
  rnn("scaled-input", "h' = tanh(2*W*x - 3 * (U*h) + b)"),
  rnn("divided", "h' = tanh((W*x)/3 + U*h + b)"),
  rnn("tied", "g = sigmoid(W*x + b)\nh' = tanh(U*g + U*h)"),
  rnn("tied-scaled", "g = sigmoid(W*x + b)\nh' = tanh(U*g - 2*U*h)"),
  rnn("times-zero", "a = W*x + U*h\nh' = tanh(b - 0 .* a)"),
  { ...rnn("shared-gradient", "h' = tanh(W*x + V*x + U*h + U2*h + b + c)"), params: { W: ["H", "D"], V: ["H", "D"], U: ["H", "H"], U2: ["H", "H"], b: "H", c: "H" } },
  { ...rnn("tied-input-and-state", "h' = tanh(U*x + U*h - U*(2*x) + b)"), inputs: { x: "H" }, params: { U: ["H", "H"], b: "H" } },
  rnn("zero-product", "h' = tanh(b + 0 * (U*h) + W*x)"),
];

describe("products in any sum, scaled, negated, divided, tied or zeroed", () => {
  for (const spec of CASES)
    for (const c of [{ B: 2, T: 3 }, { B: 1, T: 1 }, { B: 3, T: 4, sizes: { D: 6, H: 9 } }])
      it(`${spec.name}: ${String(spec.equations).replace(/\n/g, "; ")} (B=${c.B}, T=${c.T})`, async () => {
        const cell = compileCell(spec);
        const rows = await checkKernels(cell, randomCase(cell, { ...c, seed: 7 }));
        for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr} (${r.rule})`).toBe(true);
      }, 60_000);
});

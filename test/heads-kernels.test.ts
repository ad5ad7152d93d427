// The kernels of cells with parameters declared with heads (block-diagonal matrices, issue #18 item
// 7), on both backends: equal to the reference evaluator, float32 close to float64, the same bits on
// two threads, and against finite differences (check/kernelcheck.ts); and a kernel created at sizes
// the heads do not divide is refused, naming the parameter. Types, gradients and the plan's per-head
// GEMMs: test/heads.test.ts.
import { describe, expect, it } from "vitest";
import { type CellSpec, compileCell } from "../src/cell.ts";
import { loadCell } from "../src/load.ts";
import { loadKernels } from "../check/kernelcheck.ts";
import { expectKernelsPass } from "./kernels.ts";

const rnn = (name: string, equations: string, params: Record<string, unknown> = {}): CellSpec => ({
  name, doc: "a cell with heads (test/heads-kernels.test.ts)", sizes: ["D", "H"], defaults: { D: 3, H: 8 }, inputs: { x: "D" }, state: { h: "H" },
  params: { W: ["H", "D"], R: { shape: ["H", "H"], heads: 4 }, U: ["H", "H"], b: "H", ...params }, equations,
} as unknown as CellSpec);

const CASES: readonly CellSpec[] = [
  rnn("heads", "h' = tanh(W*x + R*h + b)"),
  rnn("heads-transposed", "h' = tanh(W*x + R'*h + (R + U)*h/2 + b)"),
  rnn("heads-twice", "a = R*h\nh' = tanh(W*x + R*tanh(a) + b)"),
  // an input weight in 2 heads (D/2 columns a block): its dx and dV are per-head products too
  { ...rnn("heads-input", "h' = tanh(slice(V*x, 0, H) + R*h + b)", { V: { shape: ["2*H", "D"], heads: 2 } }), defaults: { D: 4, H: 8 } } as CellSpec,
];

describe("kernels of cells with heads, on the ts and wasm backends", () => {
  it("sLSTM (dsl/slstm.ts)", async () => {
    const cell = await loadCell("slstm");
    await expectKernelsPass(cell, [{ B: 2, T: 3 }, { B: 3, T: 4, sizes: { D: 5, H: 12 } }]);
  }, 120_000);
  for (const spec of CASES)
    it(`${spec.name}: ${String(spec.equations).replace(/\n/g, "; ")}`, async () => {
      const cell = compileCell(spec);
      await expectKernelsPass(cell, [{ B: 1, T: 1, sizes: { D: 4, H: 8 } }, { B: 3, T: 4, sizes: { D: 6, H: 12 } }]);
    }, 120_000);

  it("a kernel created at sizes the heads do not divide is refused, naming the parameter", async () => {
    const cell = compileCell(CASES[0]!);
    const mod = await loadKernels(cell);
    expect(() => mod.createKernel64({ D: 3, H: 6 }, 2, 3, { backend: "ts" })).toThrow("heads: parameter R has 4 heads, so its size H must be divisible by 4, got 6");
    expect(() => mod.createKernel32({ D: 3, H: 12 }, 2, 3, { backend: "ts" }).dispose()).not.toThrow();
  }, 120_000);
});

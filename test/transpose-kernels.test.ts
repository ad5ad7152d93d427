// The kernels of cells with a weight's transpose and matrix expressions (W'*h, (W - W')*h, eye),
// on both backends: equal to the reference evaluator, float32 close to float64, the same bits on two
// threads, and against finite differences (check/kernelcheck.ts). Their lowering and gradients:
// test/transpose.test.ts.
import { describe, expect, it } from "vitest";
import { type CellSpec, compileCell } from "../src/cell.ts";
import { loadCell } from "../src/load.ts";
import { expectKernelsPass } from "./kernels.ts";

const rnn = (name: string, equations: string): CellSpec => ({
  name, doc: "a cell with a transpose (test/transpose-kernels.test.ts)", sizes: ["D", "H"], inputs: { x: "D" }, state: { h: "H" },
  params: { W: ["H", "H"], U: ["H", "H"], V: ["H", "D"], b: "H", gamma: [] }, equations,
});

const CASES: readonly CellSpec[] = [
  rnn("transposed", "h' = tanh(W'*h + V*x + b)"),
  rnn("plain-and-transposed", "h' = tanh(W*h - 2*W'*h + V*x + b)"),
  rnn("transposed-input", "a = V'*h\nh' = tanh(W*h + V*a + b)"),
  rnn("with-eye", "h' = tanh((W + gamma*eye(H))*h - (U' - eye(H))*h/2 + V*x)"),
  { ...rnn("input-transposed", "h' = tanh(W*h + U'*x + b)"), inputs: { x: "H" } },
];

describe("kernels of cells with W', W - W' and eye, on the ts and wasm backends", () => {
  it("the antisymmetric RNN (test/fixtures/cells/antisymmetric.ts)", async () => {
    const cell = await loadCell("test/fixtures/cells/antisymmetric.ts");
    await expectKernelsPass(cell, [{ B: 2, T: 3 }, { B: 3, T: 4, sizes: { D: 6, H: 9 } }]);
  }, 120_000);
  for (const spec of CASES)
    it(`${spec.name}: ${String(spec.equations).replace(/\n/g, "; ")}`, async () => {
      const cell = compileCell(spec);
      await expectKernelsPass(cell, [{ B: 1, T: 1 }, { B: 3, T: 4, sizes: { D: 6, H: 9 } }]);
    }, 120_000);
});

// Checkpointed backpropagation through time (KernelOptions.checkpoint): the kernel keeps the saved
// values of one segment of steps, and the backward recomputes each earlier segment's from the state
// before it. The gradients must be the same bits as the whole backward's, for every segment length
// (one step, a length that does not divide T, √T, T, more than T), on both backends and precisions.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import type { KernelModule, KernelOptions } from "../runtime/index.ts";
import { segmentSteps } from "../runtime/index.ts";
import { type KernelRun, loadKernels, proveKernelText, runKernel } from "../check/kernelcheck.ts";
import { compileCell } from "../src/cell.ts";
import { KernelRefusedError } from "../check/kernelerror.ts";
import { randomCase } from "../src/sequence.ts";
import { loadCell } from "../src/load.ts";
import * as gru from "../generated/gru.ts";
import * as lstmLayernorm from "../generated/lstm-layernorm.ts";
import * as sru from "../generated/sru.ts";
import * as indrnn from "../generated/indrnn-relu.ts";
import * as rnn from "../generated/rnn.ts";

const MODULES: Record<string, KernelModule> = { gru, "lstm-layernorm": lstmLayernorm, sru, "indrnn-relu": indrnn, rnn };

/** Every value of a run, flattened, in a fixed order: the forward's outputs, then each gradient. */
const values = (r: KernelRun): number[] =>
  [...Object.values(r.outputs), r.params, ...Object.values(r.inputs), ...Object.values(r.initial)].flatMap((a) => [...a]);

/** Values that differ in any bit (NaN equals NaN). */
function differing(a: KernelRun, b: KernelRun): number {
  const x = values(a), y = values(b);
  expect(x.length).toBe(y.length);
  return x.filter((v, i) => !Object.is(v, y[i])).length;
}

describe("checkpointed BPTT gives the same bits as the whole backward", () => {
  for (const [name, mod] of Object.entries(MODULES))
    it(`${name}: segments of 1, 2, 3, √T, T and 100 steps at T = 7, ts and wasm, f64 and f32`, async () => {
      const cell = await loadCell(name);
      const c = randomCase(cell, { B: 3, T: 7, seed: 5, sizes: Object.fromEntries(cell.sizes.map((s, i) => [s, 4 + i])) });
      for (const backend of ["ts", "wasm"] as const)
        for (const bits of [64, 32] as const) {
          const whole = runKernel(mod, c, bits, { backend });
          // a kernel that reads stale slots would differ; make sure the case is not degenerate
          expect(values(whole).some((v) => v !== 0)).toBe(true);
          for (const checkpoint of [1, 2, 3, "sqrt", 7, 100] as const) {
            const options: KernelOptions = { backend, checkpoint };
            expect(differing(runKernel(mod, c, bits, options), whole), `${backend} f${bits} checkpoint ${checkpoint}`).toBe(0);
          }
        }
    }, 60_000);
});

describe("checkpointed BPTT with work in the prologue (its scratch sized for a segment, its rows those of one)", () => {
  it("g = sigmoid(W*x + b); h' = tanh(U*g + U*h): segments of 1, 2, 3 and √T at T = 7, ts and wasm", async () => {
    const cell = compileCell({
      name: "tied-prologue", doc: "a product of a computed input value, in the prologue", sizes: ["D", "H"], inputs: { x: "D" }, state: { h: "H" },
      params: { W: ["H", "D"], U: ["H", "H"], b: "H" }, equations: "g = sigmoid(W*x + b)\nh' = tanh(U*g + U*h)",
    });
    const mod = await loadKernels(cell, { committed: false });
    const c = randomCase(cell, { B: 3, T: 7, seed: 5, sizes: { D: 4, H: 4 } });
    for (const backend of ["ts", "wasm"] as const)
      for (const bits of [64, 32] as const) {
        const whole = runKernel(mod, c, bits, { backend });
        for (const checkpoint of [1, 2, 3, "sqrt"] as const)
          expect(differing(runKernel(mod, c, bits, { backend, checkpoint }), whole), `${backend} f${bits} checkpoint ${checkpoint}`).toBe(0);
      }
  }, 60_000);
});

describe("segmentSteps", () => {
  it("is T by default, k up to T, ⌈√T⌉ for sqrt", () => {
    expect(segmentSteps("c", 50, undefined)).toBe(50);
    expect(segmentSteps("c", 50, 8)).toBe(8);
    expect(segmentSteps("c", 5, 8)).toBe(5);
    expect(segmentSteps("c", 1000, "sqrt")).toBe(32);
    expect(segmentSteps("c", 1, "sqrt")).toBe(1);
  });
  it("refuses a segment that is not a positive integer, naming the cell and the option", () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, "8", "auto"] as unknown[])
      expect(() => segmentSteps("gru", 10, bad as number)).toThrow(/^gru: options\.checkpoint must be a positive integer \(steps per segment\) or "sqrt", got /);
    expect(() => gru.createKernel64({ D: 2, H: 3 }, 1, 4, { checkpoint: 0 })).toThrow(/options\.checkpoint/);
  });
});

describe("the gate refuses a kernel whose checkpointed backward differs", () => {
  it("a backward that skips the recompute (reads the slots later steps overwrote) is refused by name", async () => {
    const cell = await loadCell("gru");
    const text = readFileSync(new URL("../generated/gru.ts", import.meta.url), "utf8");
    expect(() => proveKernelText(cell, text)).not.toThrow();
    const planted = text.replace("if (t < onTape) {", "if (t < onTape && false) {");
    expect(planted).not.toBe(text);
    let err: unknown;
    try {
      proveKernelText(cell, planted);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelRefusedError);
    expect((err as Error).message).toMatch(/checkpointed \(options\.checkpoint: 2\) on .* differs from the whole backward in \d+ values/);
  }, 60_000);
});

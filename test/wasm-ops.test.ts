// Every elementwise op through the generated WebAssembly loops: cells written for the purpose,
// checked like any cell (ts f64 = reference, wasm f64 = ts f64, f32 ≈ f64, 2 threads = 1 thread,
// finite differences), at sizes that leave remainders after the vectors of 4 floats and 2 doubles.
import { describe, expect, it } from "vitest";
import { compileCell } from "../src/cell.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels, loadKernels } from "../check/kernelcheck.ts";
import { simdAvailable } from "../runtime/memory.ts";

const base = {
  doc: "a test cell for the WebAssembly loops (test/wasm-ops.test.ts)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wa: ["H", "D"], Ua: ["H", "H"], ba: "H", Wb: ["H", "D"], Ub: ["H", "H"], bb: "H" },
} as const;

const CELLS = {
  // every op with a WebAssembly form, in domains where each is smooth enough to check
  "every-op": {
    ...base,
    equations: `
      a = Wa*x + Ua*h + ba
      b = Wb*x + Ub*h + bb
      u = softplus(a) + sqrt(square(b) + 1) + log(1 + sigmoid(b)) .* exp(-square(a) / 4)
      w = (1 + sigmoid(a))^1.5 - (2 + tanh(b))^-2 + (0.5 * b)^3 + (1 + sigmoid(b))^-0.5 + 0.01 * (1 + sigmoid(a))^10 - 0.1 * (0.5 + sigmoid(b))^-9 + b^0
      q = max(a, b) - min(a, relu(b)) + abs(a) ./ (1 + abs(b))
      k = hardSigmoid(a) .* hardSigmoidKeras(b) + clip(b, -0.5, 0.5) - a ./ (2 + sigmoid(b))
      h' = tanh(0.1 * (u + w + q + k)) + 0.5 * h
    `,
  },
  // a user-defined activation: its loop stays in TypeScript, the others go to WebAssembly
  "mixed": {
    ...base,
    activations: { softsign: "x / (1 + abs(x))" },
    equations: `
      a = Wa*x + Ua*h + ba
      g = sigmoid(Wb*x + Ub*h + bb)
      m = mean(a)
      n = (a - m) ./ sqrt(var(a) + 1)
      h' = (1 - g) .* softsign(n) + g .* h
    `,
  },
} as const;

describe.runIf(simdAvailable())("every elementwise op on the wasm path", () => {
  for (const [name, spec] of Object.entries(CELLS))
    for (const [sizes, B, T] of [[{ D: 3, H: 7 }, 3, 4], [{ D: 5, H: 9 }, 1, 3], [{ D: 6, H: 2 }, 5, 2]] as const)
      it(`${name} D=${sizes.D} H=${sizes.H} B=${B} T=${T}`, async () => {
        const cell = compileCell({ name, ...spec } as Parameters<typeof compileCell>[0]);
        const rows = await checkKernels(cell, randomCase(cell, { sizes, B, T, seed: 11 }));
        for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr} (${r.rule})`).toBe(true);
        expect(rows.map((r) => r.what)).toEqual(expect.arrayContaining(["wasm f64 = ts f64", "wasm 2 threads = 1 thread"]));
      });

  it("a cell whose every loop stays in TypeScript, and values named like the kernel's own variables", async () => {
    const cells = [
      compileCell({ name: "no-wasm-loop", ...base, activations: { softsign: "x / (1 + abs(x))" }, equations: "h' = softsign(Wa*x + Ua*h + ba)" } as Parameters<typeof compileCell>[0]),
      compileCell({ name: "names", ...base, inputs: { at: "D" }, params: { Wa: ["H", "D"], Ua: ["H", "H"], wl: "H", mem: "H", Wb: ["H", "D"], Ub: ["H", "H"], bb: "H" }, equations: "h' = tanh(Wa*at + Ua*h + wl) .* sigmoid(Wb*at + Ub*h + bb + mem)" } as Parameters<typeof compileCell>[0]),
    ];
    for (const cell of cells) {
      const rows = await checkKernels(cell, randomCase(cell, { sizes: { D: 3, H: 5 }, B: 2, T: 3, seed: 5 }));
      for (const r of rows) expect(r.pass, `${cell.name}: ${r.what}: ${r.maxErr}`).toBe(true);
    }
  });

  it("the user activation's loop is the one left in TypeScript", async () => {
    const cell = compileCell({ name: "mixed", ...CELLS.mixed } as Parameters<typeof compileCell>[0]);
    const mod = await loadKernels(cell);
    const src = (mod as unknown as { createKernel64: { toString(): string } }).createKernel64.toString();
    expect(src).toMatch(/wl\(\d+,/); // some loops in WebAssembly
    expect(src).toContain("Math.abs"); // the softsign loop in TypeScript only
  });
});

// The generated kernels of the cells with a scalar input, a size-1 input and a size equality
// (test/fixtures/cells/scalar-input-*.ts, constraint-*.ts), on both backends: float64 against the
// reference evaluator and the other backend, float32 against float64, threads, finite differences.
// It generates and runs kernels (about 10 s a cell): an e2e file (vitest.config.ts's E2E list).
import { describe, expect, it } from "vitest";
import { loadCell } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels, loadKernels } from "../check/kernelcheck.ts";

const FIXTURES = ["scalar-input-cfc", "scalar-input-unit", "constraint-skip"] as const;

describe("kernels of scalar inputs and size equalities, on both backends", () => {
  for (const name of FIXTURES)
    it(name, async () => {
      const cell = await loadCell(`test/fixtures/cells/${name}.ts`);
      for (const c of [{ B: 2, T: 3 }, { B: 3, T: 5, sizes: { ...cell.defaults, H: 7 } }]) {
        const rows = await checkKernels(cell, randomCase(cell, { ...c, seed: 5 }));
        expect(new Set(rows.map((r) => r.backend))).toEqual(new Set(["ts", "wasm"]));
        for (const r of rows) expect(r.pass, `${name}: ${r.what}: ${r.maxErr} (${r.rule}) ${r.detail}`).toBe(true);
      }
    }, 120_000);

  it("a scalar input is a vector of 1 in the kernel's spec; a size a constraint determines is still a size of the kernel", async () => {
    const cfc = await loadKernels(await loadCell("test/fixtures/cells/scalar-input-cfc.ts"));
    expect(cfc.spec.inputs).toEqual([{ name: "x", size: "D" }, { name: "dt", size: "1" }]);
    const skip = await loadKernels(await loadCell("test/fixtures/cells/constraint-skip.ts"));
    expect([skip.spec.sizes, skip.spec.inputs]).toEqual([["D", "H"], [{ name: "x", size: "H" }]]);
  }, 120_000);
});

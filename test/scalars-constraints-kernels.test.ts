// The generated kernels of the cells with a scalar input, a size-1 input and a size equality
// (test/fixtures/cells/scalar-input-*.ts, constraint-*.ts), on both backends: float64 against the
// reference evaluator and the other backend, float32 against float64, threads, finite differences.
// It generates and runs kernels (about 10 s a cell): an e2e file (vitest.config.ts's E2E list).
import { describe, expect, it, vi } from "vitest";
import { main } from "../cli/main.ts";
import { loadCell } from "../src/load.ts";
import { loadKernels } from "../check/kernelcheck.ts";
import { expectKernelsPass } from "./kernels.ts";

const FIXTURES = ["scalar-input-cfc", "scalar-input-unit", "constraint-skip"] as const;

describe("kernels of scalar inputs and size equalities, on both backends", () => {
  for (const name of FIXTURES)
    it(name, async () => {
      const cell = await loadCell(`test/fixtures/cells/${name}.ts`);
      await expectKernelsPass(cell, [{ B: 2, T: 3 }, { B: 3, T: 5, sizes: { ...cell.defaults, H: 7 } }], 5);
    }, 120_000);

  it("a scalar input is a vector of 1 in the kernel's spec; a size a constraint determines is still a size of the kernel", async () => {
    const cfc = await loadKernels(await loadCell("test/fixtures/cells/scalar-input-cfc.ts"));
    expect(cfc.spec.inputs).toEqual([{ name: "x", size: "D" }, { name: "dt", size: "1" }]);
    const skip = await loadKernels(await loadCell("test/fixtures/cells/constraint-skip.ts"));
    expect([skip.spec.sizes, skip.spec.inputs]).toEqual([["D", "H"], [{ name: "x", size: "H" }]]);
  }, 120_000);

  it("a kernel refuses sizes that break the cell's constraint, naming it; one without constraints imports no check", async () => {
    const skip = await loadKernels(await loadCell("test/fixtures/cells/constraint-skip.ts"));
    expect((skip.spec as { constraints?: unknown }).constraints).toEqual([{ text: "D = H", size: "D", value: "H" }]);
    const refused = "constraint-skip: the sizes break the constraint D = H: D must be 4, got 3";
    expect(() => skip.createKernel64({ D: 3, H: 4 }, 2, 3)).toThrow(new RangeError(refused));
    expect(() => skip.createKernel32({ D: 3, H: 4 }, 2, 3)).toThrow(RangeError);
    expect(() => skip.initParams({ D: 3, H: 4 }, 1)).toThrow(refused);
    expect(() => skip.paramLayout({ D: 3, H: 4 })).toThrow(refused);
    const k = skip.createKernel64({ D: 4, H: 4 }, 2, 3, { backend: "ts" });
    k.dispose();
    const cfc = await loadKernels(await loadCell("test/fixtures/cells/scalar-input-cfc.ts"));
    expect((cfc.spec as { constraints?: unknown }).constraints).toBeUndefined();
  }, 120_000);

  it("check without --sizes gives a constrained cell sizes that keep its constraint, and others the sizes they always had", async () => {
    const sizesOf = async (file: string) => {
      const out: string[] = [];
      const spy = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
      try {
        expect(await main(["check", file, "--json"])).toBe(0);
      } finally {
        spy.mockRestore();
      }
      return (JSON.parse(out.join("")) as { sizes: Record<string, number> }[]).map((r) => ({ ...r.sizes }));
    };
    expect(await sizesOf("test/fixtures/cells/constraint-skip.ts")).toEqual([{ D: 4, H: 4 }, { D: 4, H: 4 }, { D: 7, H: 7 }]);
    expect(await sizesOf("test/fixtures/cells/scalar-input-cfc.ts")).toEqual([{ D: 3, H: 4 }, { D: 3, H: 4 }, { D: 5, H: 7 }]);
  }, 180_000);
});

// A cell's generated kernels checked on every backend this engine runs (check/kernelcheck.ts): each
// configuration a random case of its own, every row required to pass, and both the ts and the wasm
// paths required to have run (so a backend that silently stayed out cannot pass a test).
import { expect } from "vitest";
import type { Cell } from "../src/cell.ts";
import type { Sizes } from "../src/eval.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels } from "../check/kernelcheck.ts";

export async function expectKernelsPass(cell: Cell, configs: readonly { B: number; T: number; sizes?: Sizes }[], seed = 7): Promise<void> {
  for (const c of configs) {
    const rows = await checkKernels(cell, randomCase(cell, { ...c, seed }));
    expect(new Set(rows.map((r) => r.backend)), cell.name).toEqual(new Set(["ts", "wasm"]));
    for (const r of rows) expect(r.pass, `${cell.name} B${c.B} T${c.T}: ${r.what}: ${r.maxErr} (${r.rule}) ${r.detail ?? ""}`).toBe(true);
  }
}

// Every cell at GEMM speed (issue #14), asserted on the kernel plan: for every cell in dsl/, no
// stage of any program is a scalar product (the products are GEMM stages), and every loop, copy
// and whole-vector op has a WebAssembly function, so on the wasm path only the orchestration (the
// calls, and the per-step seeds of the backward) stays in TypeScript; but for the loops of a
// user-defined activation (rnn-softsign's), a mathjs expression with no WebAssembly form (its block
// in src/ops.ts says so). The kernels of those functions are checked against the TypeScript loops
// in test/wasm-ops.test.ts.
import { describe, expect, it } from "vitest";
import { builtinCellFiles, loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { buildPlan } from "../codegen/plan.ts";
import { wasmStage } from "../codegen/emit.ts";
import type { Operand, Stage } from "../codegen/schedule.ts";

const SCALAR_PRODUCTS = new Set(["matvec", "matvecT", "outer"]);

/** What a stage is, for a message: its kind, and an op stage's op. */
const label = (st: Stage) => (st.kind === "op" ? `op ${st.node.op}` : st.kind);

/** Whether an operand tree applies a user-defined activation. */
const appliesAct = (o: Operand): boolean => o.kind === "node" && (o.node.op === "act" || o.args.some(appliesAct));
const userActivation = (st: Stage) => (st.kind === "loop" && st.items.some((it) => appliesAct(it.value))) || (st.kind === "copy" && appliesAct(st.from));

describe("every cell in dsl/ on the GEMM paths, the rest in WebAssembly", () => {
  const files = builtinCellFiles();

  it("finds the cells", () => {
    expect(files.length).toBeGreaterThanOrEqual(28);
  });

  for (const file of files)
    it(file, async () => {
      const cell = await loadCell(file);
      const plan = buildPlan(cell, deriveBackward(cell));
      const programs = [plan.fwdSetup, plan.prologue, plan.fwdStep, plan.bwdSetup, plan.bwdStep, plan.epilogue];
      const stages = programs.flatMap((pr) => pr.stages.map((st) => ({ program: pr.name, st })));
      const scalarProducts = stages.filter(({ st }) => st.kind === "op" && SCALAR_PRODUCTS.has(st.node.op));
      expect(scalarProducts.map(({ program, st }) => `${program}: ${label(st)}`), "scalar products").toEqual([]);
      const inTypeScript = stages.filter(({ st }) => st.kind !== "gemm" && wasmStage(st, 0) === null && !userActivation(st));
      expect(inTypeScript.map(({ program, st }) => `${program}: ${label(st)}`), "stages without a WebAssembly form").toEqual([]);
    });

  it("the layer-norm cells' sums, broadcasts, slices and pads are among them", async () => {
    const ops = new Set<string>();
    for (const name of ["lstm-layernorm", "gru-layernorm"]) {
      const cell = await loadCell(`dsl/${name}.ts`);
      const plan = buildPlan(cell, deriveBackward(cell));
      for (const pr of [plan.fwdStep, plan.bwdStep]) for (const st of pr.stages) if (st.kind === "op") ops.add(st.node.op);
    }
    expect([...ops].sort()).toEqual(["bcast", "pad", "slice", "sum", "sumb"]);
  });
});

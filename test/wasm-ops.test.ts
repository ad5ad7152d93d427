// Every elementwise op through the generated WebAssembly loops, generated from the op table: for each
// op with a WebAssembly form (its block's `wasm`), and each variant of its attributes, a small cell
// applies it to operands in its domain. Its plan must put every loop with the op in WebAssembly (the
// loops of the module the emitter makes), and the kernels must pass every check (ts f64 = reference,
// wasm f64 = ts f64, f32 ≈ f64, 2 threads = 1 thread, finite differences), at sizes that leave
// remainders after the vectors of 4 floats and 2 doubles.
import { describe, expect, it } from "vitest";
import { type Cell, compileCell } from "../src/cell.ts";
import { buildCell, add, matmul, mul, sigmoid, tanh } from "../src/builder.ts";
import { deriveBackward } from "../src/backward.ts";
import type { Node } from "../src/ir.ts";
import { type OpName, OPS, apply, domainsOf, wasmForm } from "../src/ops.ts";
import { randomCase } from "../src/sequence.ts";
import { buildPlan } from "../codegen/plan.ts";
import { cellWasm } from "../codegen/emit.ts";
import type { Operand, Stage } from "../codegen/schedule.ts";
import { checkKernels } from "../check/kernelcheck.ts";
import { simdAvailable } from "../runtime/memory.ts";
import { loadCell } from "../src/load.ts";
import { wasmStage } from "../codegen/emit.ts";
import { expectKernelsPass } from "./kernels.ts";

const base = {
  doc: "a test cell for the WebAssembly loops (test/wasm-ops.test.ts)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wa: ["H", "D"], Ua: ["H", "H"], ba: "H", Wb: ["H", "D"], Ub: ["H", "H"], bb: "H" },
} as const;

/** The ops in an operand tree. */
function opsIn(o: Operand, out: Set<string>): Set<string> {
  if (o.kind === "node") { out.add(o.node.op); o.args.forEach((a) => opsIn(a, out)); }
  return out;
}

/** Every loop (and copy) of a cell's plan: the ops it computes, and whether it runs in WebAssembly. */
async function loopsOf(cell: Cell): Promise<{ ops: Set<string>; wasm: boolean }[]> {
  const plan = buildPlan(cell, deriveBackward(cell));
  const { loops } = await cellWasm(plan, `cell "${cell.name}"`);
  const stages: Stage[] = [plan.fwdSetup, plan.prologue, plan.fwdStep, plan.bwdSetup, plan.bwdStep, plan.epilogue].flatMap((p) => [...p.stages]);
  return stages.flatMap((st) => {
    if (st.kind === "loop") return [{ ops: st.items.reduce((s, it) => opsIn(it.value, s.add(it.node.op)), new Set<string>()), wasm: loops.has(st) }];
    if (st.kind === "copy") return [{ ops: opsIn(st.from, new Set()), wasm: loops.has(st) }];
    return [];
  });
}

/** A cell that applies `op` (with `attrs`) to two pre-activations moved into its operands' domains. */
function cellFor(op: OpName, attrs: Node["attrs"], operands: readonly string[], name: string): Cell {
  return buildCell({ ...base, name }, ({ x, h, Wa, Ua, ba, Wb, Ub, bb }) => {
    const pre = [add(matmul(Wa, x), matmul(Ua, h), ba), add(matmul(Wb, x), matmul(Ub, h), bb)];
    // positive and nonzero: in (0.9, 1.1), where even x^66 and x^-66 stay moderate
    const args = operands.map((d, i) => (d === "real" ? pre[i % 2]! : add(0.9, mul(0.2, sigmoid(pre[i % 2]!)))));
    const u = apply(op, args, attrs);
    return { u, "h'": add(tanh(mul(0.1, u)), mul(0.5, h)) };
  });
}

const CASES = (Object.keys(OPS) as OpName[]).flatMap((op) => {
  const def = OPS[op];
  if (def.kind !== "elementwise" || !wasmForm(op)) return [];
  return domainsOf(def).map((d) => ({ op, attrs: d.attrs, operands: d.operands, label: `${op}${Object.keys(d.attrs).length ? ` ${JSON.stringify(d.attrs)}` : ""}` }));
});

describe.runIf(simdAvailable())("every elementwise op on the wasm path", () => {
  it("covers every elementwise op but the user's activation, whose block says why it has no form", () => {
    const ops = new Set(CASES.map((c) => c.op));
    const without = (Object.keys(OPS) as OpName[]).filter((op) => OPS[op].kind === "elementwise" && !ops.has(op));
    expect(without).toEqual(["act"]);
    const act = OPS.act;
    expect(act.kind === "elementwise" && typeof act.wasm !== "function" && act.wasm.notOnWasm).toMatch(/mathjs/);
  });

  for (const c of CASES)
    it(`${c.label}: its loops are WebAssembly, and the kernels agree`, async () => {
      const cell = cellFor(c.op, c.attrs, c.operands, `wasm-${c.op}`);
      const withOp = (await loopsOf(cell)).filter((l) => l.ops.has(c.op));
      expect(withOp.length, `no loop computes ${c.op}`).toBeGreaterThan(0);
      expect(withOp.filter((l) => !l.wasm).map((l) => [...l.ops].join(" ")), "loops with the op left in TypeScript").toEqual([]);
      const rows = await checkKernels(cell, randomCase(cell, { sizes: { D: 3, H: 7 }, B: 3, T: 3, seed: 11 }), { typecheck: false });
      for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr} (${r.rule}) ${r.detail}`).toBe(true);
      expect(rows.map((r) => r.what)).toEqual(expect.arrayContaining(["wasm f64 = ts f64", "wasm f32 ≈ ts f64", "wasm 2 threads = 1 thread"]));
    });

  // a user-defined activation: its loop stays in TypeScript, the others go to WebAssembly
  const mixed = {
    ...base,
    name: "mixed",
    activations: { softsign: "x / (1 + abs(x))" },
    equations: `
      a = Wa*x + Ua*h + ba
      g = sigmoid(Wb*x + Ub*h + bb)
      m = mean(a)
      n = (a - m) ./ sqrt(var(a) + 1)
      h' = (1 - g) .* softsign(n) + g .* h
    `,
  };

  it("the user activation's loops are the ones left in TypeScript", async () => {
    const loops = await loopsOf(compileCell(mixed as Parameters<typeof compileCell>[0]));
    expect(loops.filter((l) => l.ops.has("act")).length).toBeGreaterThan(0);
    for (const l of loops) expect(l.wasm, [...l.ops].join(" ")).toBe(!l.ops.has("act"));
  });

  for (const [sizes, B, T] of [[{ D: 3, H: 7 }, 3, 4], [{ D: 6, H: 2 }, 5, 2]] as const)
    it(`a cell with loops on both paths D=${sizes.D} H=${sizes.H} B=${B} T=${T}`, async () => {
      const cell = compileCell(mixed as Parameters<typeof compileCell>[0]);
      const rows = await checkKernels(cell, randomCase(cell, { sizes, B, T, seed: 11 }));
      for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr} (${r.rule})`).toBe(true);
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
});

// The whole-vector ops (codegen/wasmops.ts): sums over a row and over the batch, broadcasts, slices,
// pads and concatenations, on the wasm path against the TypeScript loops (expectKernelsPass: wasm f64
// = ts f64 = the reference, f32 close, 2 threads = 1 thread bit for bit, finite differences), at sizes
// that leave remainders after the vectors.
describe.runIf(simdAvailable())("every whole-vector op on the wasm path", () => {
  const ops = compileCell({
    ...base,
    name: "wasm-vector-ops",
    equations: `
      z = concat(x, h)
      u = Wa*x + Ua*h + concat(ba, bb)
      n = (u - mean(u)) ./ sqrt(var(u) + 1)
      a = slice(n, 0, H)
      g = sigmoid(slice(n, H, H) + sum(z) / 8)
      h' = tanh(a) .* g + 0.1 * sum(a .* g)
    `,
    params: { Wa: ["2*H", "D"], Ua: ["2*H", "H"], ba: "H", bb: "H" },
  } as unknown as Parameters<typeof compileCell>[0]);

  it("a cell with sum, mean, var, slice and concat: every op stage has its WebAssembly function", () => {
    const plan = buildPlan(ops, deriveBackward(ops));
    const stages = [plan.fwdSetup, plan.prologue, plan.fwdStep, plan.bwdSetup, plan.bwdStep, plan.epilogue].flatMap((p) => [...p.stages]);
    const opStages = stages.filter((st) => st.kind === "op");
    expect(new Set(opStages.map((st) => st.kind === "op" && st.node.op))).toEqual(new Set(["sum", "sumb", "bcast", "slice", "pad", "concat"]));
    for (const st of opStages) expect(wasmStage(st, 0), st.kind === "op" ? st.node.op : "").not.toBeNull();
  });

  it("a cell with sum, mean, var, slice and concat: the kernels agree", async () => {
    await expectKernelsPass(ops, [{ B: 1, T: 1, sizes: { D: 3, H: 7 } }, { B: 3, T: 3, sizes: { D: 3, H: 7 } }, { B: 5, T: 2, sizes: { D: 6, H: 2 } }]);
  }, 120_000);

  it("lstm-layernorm: the kernels agree", async () => {
    await expectKernelsPass(await loadCell("dsl/lstm-layernorm.ts"), [{ B: 3, T: 3, sizes: { D: 5, H: 7 } }, { B: 4, T: 2, sizes: { D: 4, H: 8 } }]);
  }, 120_000);
});

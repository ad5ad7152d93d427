// cellforge's layers (nn/) against PyTorch: test/fixtures/nn-torch/*.json (scripts/nn-torch-fixtures.py,
// torch.autograd in float64) for nn.GRU and nn.LSTM with num_layers=2, bidirectional=True,
// batch_first=True: a full batch, a padded batch through pack_padded_sequence with mixed lengths,
// and a few torch.optim.AdamW steps. PyTorch's weights reach the layer through the converters
// (src/interop, one layer and direction at a time: weight_ih_l1_reverse is layer 1's reverse
// direction), the generated float64 kernels run it, and every output, final state and gradient must
// agree to 1e-9 relative (with an absolute floor of 1e-12 for values that are zero in PyTorch).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KernelModule } from "../runtime/kernel.ts";
import { loadCell, ROOT } from "../src/load.ts";
import { type Nested, readWeights } from "../src/interop/convert.ts";
import { Recurrent } from "../nn/recurrent.ts";
import { adamw, makeOptimizer } from "../nn/optim.ts";
import * as gruKernels from "../generated/gru.ts";
import * as lstmKernels from "../generated/lstm.ts";

const REL = 1e-9, ABS = 1e-12;

interface Case { lengths: number[] | null; outputs: Record<string, Nested>; grads: Record<string, Nested>; loss: number }
interface Fixture {
  module: string;
  sizes: { D: number; H: number; B: number; T: number; layers: number };
  state_dict: Record<string, Nested>;
  inputs: Record<string, Nested>;
  full: Case;
  packed: Case;
  adamw: { lengths: number[]; config: { lr: number; betas: [number, number]; eps: number; weight_decay: number }; steps: { loss: number; state_dict: Record<string, Nested> }[] };
}

const flat = (v: Nested | undefined): Float64Array => {
  const out: number[] = [];
  const walk = (x: Nested | undefined) => (Array.isArray(x) ? x.forEach(walk) : out.push(x as number));
  walk(v);
  return Float64Array.from(out);
};

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) - REL * Math.abs(want[i]!);
    if (err > worst) (worst = err), (at = i);
  }
  expect(worst <= ABS, `${what}: element ${at} is ${got[at]} but PyTorch has ${want[at]}`).toBe(true);
}

const CELLS = [
  { name: "gru", mod: gruKernels as unknown as KernelModule, states: ["h"], cell: await loadCell(join(ROOT, "dsl", "gru.ts")) },
  { name: "lstm", mod: lstmKernels as unknown as KernelModule, states: ["h", "c"], cell: await loadCell(join(ROOT, "dsl", "lstm.ts")) },
];

describe.each(CELLS)("nn.$name, 2 layers, bidirectional, batch_first", ({ name, mod, states, cell }) => {
  const fx = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "nn-torch", `${name}.json`), "utf8")) as Fixture;
  const { D, H, B, T, layers } = fx.sizes;
  const suffixes = Array.from({ length: layers }, (_, l) => [`_l${l}`, `_l${l}_reverse`]).flat();

  /** PyTorch's tensors (or their gradients: same names and shapes) by the layer's parameter names. */
  function fromTorch(tensors: Record<string, Nested>): Map<string, Float64Array> {
    const out = new Map<string, Float64Array>();
    for (const suffix of suffixes) {
      const one = Object.fromEntries(Object.entries(tensors).filter(([k]) => k.endsWith(suffix)).map(([k, v]) => [k.slice(0, -suffix.length) + "_l0", v]));
      for (const [p, v] of Object.entries(readWeights(cell, "pytorch", one).params)) out.set(`${suffix.slice(1)}.${p}`, v);
    }
    return out;
  }

  function layer(): Recurrent {
    const r = new Recurrent(mod, { hidden: H, inputSize: D, layers, bidirectional: true, batchFirst: true, precision: 64, backend: "ts" });
    const weights = fromTorch(fx.state_dict);
    expect(r.parameters.map((p) => p.name).sort()).toEqual([...weights.keys()].sort());
    for (const p of r.parameters) r.params.set(weights.get(p.name)!, p.offset);
    return r;
  }

  const initial = () => Object.fromEntries(states.map((s) => [s, flat(fx.inputs[`${s}0`])]));
  const upstream = () => Object.fromEntries(states.map((s) => [s, flat(fx.inputs[`d${s}_n`])]));

  function check(r: Recurrent, c: Case): void {
    const x = flat(fx.inputs.x);
    const { output, final } = r.forward(x, { batch: B, steps: T, initial: initial(), ...(c.lengths ? { lengths: c.lengths } : {}) });
    expectClose(output, flat(c.outputs.y), "output y");
    for (const s of states) expectClose(final[s]!, flat(c.outputs[`${s}_n`]), `final ${s}_n`);
    r.zeroGrad();
    const { dInput, dInitial } = r.backward(flat(fx.inputs.dy), upstream());
    expectClose(dInput, flat(c.grads.x), "dx");
    for (const s of states) expectClose(dInitial[s]!, flat(c.grads[`${s}0`]), `d${s}0`);
    const want = fromTorch(Object.fromEntries(Object.entries(c.grads).filter(([k]) => k.startsWith("weight") || k.startsWith("bias"))));
    for (const p of r.parameters) expectClose(r.grads.subarray(p.offset, p.offset + p.length), want.get(p.name)!, `gradient of ${p.name}`);
  }

  it("a full batch: outputs, final states and every gradient equal PyTorch's", () => check(layer(), fx.full));
  it("a padded batch of mixed lengths equals pack_padded_sequence", () => check(layer(), fx.packed));

  it(`${fx.adamw.steps.length} AdamW steps take the parameters where torch.optim.AdamW takes them`, () => {
    const r = layer(), { config } = fx.adamw;
    const opt = makeOptimizer(adamw({ lr: config.lr, betas: config.betas, eps: config.eps, weightDecay: config.weight_decay }), r.params.length);
    for (const [i, step] of fx.adamw.steps.entries()) {
      r.zeroGrad();
      r.forward(flat(fx.inputs.x), { batch: B, steps: T, initial: initial(), lengths: fx.adamw.lengths });
      r.backward(flat(fx.inputs.dy), upstream());
      opt.step(r.params, r.grads);
      const want = fromTorch(step.state_dict);
      for (const p of r.parameters) expectClose(r.params.subarray(p.offset, p.offset + p.length), want.get(p.name)!, `step ${i + 1}: ${p.name}`);
    }
  });
});

// PyTorch as the outside reference: test/fixtures/torch/*.json (written by scripts/torch-fixtures.py
// with torch.autograd in float64; no Python here) loaded into the built-in PyTorch-layout cells
// rnn, gru and lstm THROUGH the converters (src/interop), run by the generated float64 kernels and by
// the reference evaluator's BPTT (src/sequence.ts). Every output at every step, every parameter
// gradient (converted back to torch's layout), the input gradient and the initial-state gradients
// must agree to 1e-9 relative. Then the same fixtures through Keras's layout into gru-keras and
// lstm-keras: PyTorch's GRU is Keras's reset_after GRU, and its LSTM Keras's, under the converters.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Cell } from "../src/cell.ts";
import { loadCell, ROOT } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { type SequenceCase, gradients } from "../src/sequence.ts";
import { loadKernels, runKernel } from "../check/kernelcheck.ts";
import { type CellParams, type Nested, type Params, readWeights, writeWeights } from "../src/interop/convert.ts";

/** Agreement rule, elementwise: |a - b| <= REL * |b| (measured: at most ~2e-12, see the table printed at the end). */
const REL = 1e-9;

interface TorchCase {
  name: string; D: number; H: number; B: number; T: number; seed: number;
  state_dict: Record<string, Nested>;
  inputs: Record<string, Nested>;
  upstream: Record<string, Nested>;
  outputs: Record<string, Nested>;
  grads: Record<string, Nested>;
}
interface Fixture { torch: string; module: string; dtype: string; cases: TorchCase[] }

const FILES = [
  { file: "rnn", cell: "rnn", kind: "module" },
  { file: "gru", cell: "gru", kind: "module" },
  { file: "lstm", cell: "lstm", kind: "module" },
  { file: "grucell", cell: "gru", kind: "cell" },
  { file: "lstmcell", cell: "lstm", kind: "cell" },
] as const;

const load = (f: string): Fixture => JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "torch", `${f}.json`), "utf8")) as Fixture;
/** A nested array's numbers, row-major. */
const flat = (v: Nested | undefined): Float64Array => {
  const out: number[] = [];
  const walk = (x: Nested | undefined) => (Array.isArray(x) ? x.forEach(walk) : out.push(x as number));
  walk(v);
  return Float64Array.from(out);
};

/** The fixture as a cellforge case: the loss is the same sum of <upstream, output>. */
function toCase(c: TorchCase, kind: "module" | "cell", cp: CellParams, lstm: boolean): SequenceCase {
  const { B, T, H } = c;
  const upstream: Record<string, Float64Array> = {};
  if (kind === "cell") {
    upstream.h = flat(c.upstream.dh);
    if (lstm) upstream.c = flat(c.upstream.dc);
  } else {
    // y is every h_t; h_n (and c_n) add to the last step
    const last = (T - 1) * B * H;
    upstream.h = flat(c.upstream.dy);
    flat(c.upstream.dh_n).forEach((v, k) => (upstream.h![last + k]! += v));
    if (lstm) {
      upstream.c = new Float64Array(T * B * H);
      upstream.c.set(flat(c.upstream.dc_n), last);
    }
  }
  return {
    sizes: cp.sizes, B, T, params: cp.params, inputs: { x: flat(c.inputs.x) },
    initial: { h: flat(c.inputs.h0), ...(lstm ? { c: flat(c.inputs.c0) } : {}) }, upstream,
  };
}

/** Torch's outputs in cellforge's terms: h (and c) at every step where torch has them. */
function torchOutputs(c: TorchCase, kind: "module" | "cell", lstm: boolean): { name: string; state: "h" | "c"; steps: "all" | "last"; want: Float64Array }[] {
  if (kind === "cell") return [{ name: "h", state: "h", steps: "all", want: flat(c.outputs.h) }, ...(lstm ? [{ name: "c", state: "c" as const, steps: "all" as const, want: flat(c.outputs.c) }] : [])];
  return [
    { name: "y", state: "h", steps: "all", want: flat(c.outputs.y) },
    { name: "h_n", state: "h", steps: "last", want: flat(c.outputs.h_n) },
    ...(lstm ? [{ name: "c_n", state: "c" as const, steps: "last" as const, want: flat(c.outputs.c_n) }] : []),
  ];
}

/** The worst elementwise relative error |a - b| / |b| (an exact zero must be matched exactly), and it over REL (≤ 1 passes). */
function compare(a: Float64Array, b: Float64Array): { ratio: number; rel: number } {
  expect(a.length).toBe(b.length);
  let rel = 0;
  for (let k = 0; k < b.length; k++) {
    const d = Math.abs(a[k]! - b[k]!);
    rel = Math.max(rel, d === 0 ? 0 : b[k] === 0 ? Infinity : d / Math.abs(b[k]!));
  }
  return { ratio: rel / REL, rel };
}

/** Max relative error per engine and file, printed at the end (the numbers the report quotes). */
const worst = new Map<string, number>();
const note = (key: string, rel: number) => worst.set(key, Math.max(worst.get(key) ?? 0, rel));
afterAll(() => {
  const lines = [...worst].map(([k, v]) => `  ${k.padEnd(44)} ${v.toExponential(2)}`);
  console.log(`max elementwise relative error against PyTorch float64 (rule |a-b| <= ${REL} * |b|):\n${lines.join("\n")}`);
});

interface Result { outputs: Record<string, Float64Array>; params: Params; x: Float64Array; initial: Record<string, Float64Array> }

async function runBoth(cell: Cell, sc: SequenceCase): Promise<Record<"kernel f64" | "reference", Result>> {
  const mod = await loadKernels(cell);
  const k = runKernel(mod, sc, 64);
  const params = Object.fromEntries(mod.paramLayout(sc.sizes).params.map((q) => [q.name, k.params.slice(q.offset, q.offset + q.length)]));
  const ref = gradients(deriveBackward(cell), sc);
  return {
    "kernel f64": { outputs: k.outputs, params, x: k.inputs.x!, initial: k.initial },
    reference: { outputs: ref.forward.outputs, params: ref.grads.params, x: ref.grads.inputs.x!, initial: ref.grads.initial },
  };
}

/** Check one engine's result against torch: outputs, parameter gradients in torch's layout, dx, dh0 (dc0). */
function checkAgainstTorch(label: string, cell: Cell, c: TorchCase, kind: "module" | "cell", r: Result, framework: "pytorch" | "keras", torchGradsAs: Record<string, Float64Array>) {
  const { B, T, H } = c, lstm = cell.states.length === 2;
  const check = (what: string, a: Float64Array, b: Float64Array) => {
    const { ratio, rel } = compare(a, b);
    note(label, rel);
    expect(ratio, `${label} ${c.name}: ${what} (max relative error ${rel.toExponential(2)})`).toBeLessThanOrEqual(1);
  };
  for (const o of torchOutputs(c, kind, lstm)) {
    const all = r.outputs[o.state]!;
    check(`output ${o.name}`, o.steps === "all" ? all : all.subarray((T - 1) * B * H), o.want);
  }
  const sizes = { D: c.D, H: c.H };
  const grads = writeWeights(cell, framework, { sizes, params: r.params }, { torchSuffix: kind === "module" ? "_l0" : "" }).tensors;
  expect(Object.keys(grads).sort()).toEqual(Object.keys(torchGradsAs).sort());
  for (const [n, g] of Object.entries(grads)) check(`d${n}`, g.data, torchGradsAs[n]!);
  check("dx", r.x, flat(c.grads.x));
  check("dh0", r.initial.h!, flat(c.grads.h0));
  if (lstm) check("dc0", r.initial.c!, flat(c.grads.c0));
}

const cells = new Map<string, Cell>();
const cellOf = async (n: string) => cells.get(n) ?? (cells.set(n, await loadCell(n)), cells.get(n)!);

describe("PyTorch fixtures: the fixtures themselves", () => {
  for (const { file } of FILES)
    it(`${file}.json: float64, torch version recorded, B = 1 and B > 1, T = 1 and T > 1, D != H, small`, () => {
      const fx = load(file);
      expect(fx.dtype).toBe("float64");
      expect(fx.torch).toMatch(/^\d+\.\d+/);
      expect(fx.cases.some((c) => c.B === 1) && fx.cases.some((c) => c.B > 1)).toBe(true);
      expect(fx.cases.some((c) => c.T === 1) && fx.cases.some((c) => c.T > 1)).toBe(true);
      expect(fx.cases.every((c) => c.D !== c.H)).toBe(true);
      expect(readFileSync(join(ROOT, "test", "fixtures", "torch", `${file}.json`)).length).toBeLessThan(100_000);
    });
});

describe("PyTorch fixtures through the PyTorch converter into rnn, gru, lstm: generated f64 kernels and the reference evaluator agree with torch.autograd to 1e-9", () => {
  for (const { file, cell: name, kind } of FILES) {
    const fx = load(file);
    for (const c of fx.cases)
      it(`${fx.module} ${c.name} -> ${name}`, async () => {
        const cell = await cellOf(name);
        const read = readWeights(cell, "pytorch", c.state_dict);
        expect(read.sizes).toEqual({ D: c.D, H: c.H });
        expect(read.form.builtin).toBe(name);
        const sc = toCase(c, kind, read, cell.states.length === 2);
        const torchGrads = Object.fromEntries(Object.keys(c.state_dict).map((k) => [k, flat(c.grads[k])]));
        for (const [engine, r] of Object.entries(await runBoth(cell, sc))) checkAgainstTorch(`${engine}: ${file} -> ${name}`, cell, c, kind, r, "pytorch", torchGrads);
      });
  }
});

describe("PyTorch fixtures through Keras's layout: nn.GRU = gru-keras (reset_after=True), nn.LSTM = lstm-keras (one bias = bias_ih + bias_hh)", () => {
  for (const { file, cell: torchName, kind } of FILES.filter((f) => f.cell !== "rnn")) {
    const fx = load(file);
    const kerasName = torchName === "gru" ? "gru-keras" : "lstm-keras";
    for (const c of fx.cases)
      it(`${fx.module} ${c.name} -> PyTorch layout -> ${torchName} -> Keras layout -> ${kerasName}`, async () => {
        const torchCell = await cellOf(torchName), kerasCell = await cellOf(kerasName);
        const asTorch = readWeights(torchCell, "pytorch", c.state_dict);
        const keras = writeWeights(torchCell, "keras", asTorch);
        expect(keras.form.framework).toBe("keras");
        const read = readWeights(kerasCell, "keras", keras.json);
        expect(read.form.builtin).toBe(kerasName);
        const sc = toCase(c, kind, read, torchCell.states.length === 2);
        // torch's gradients in Keras's layout, through the converters (for the LSTM, d bias = d bias_ih = d bias_hh)
        const torchGrads = readWeights(torchCell, "pytorch", Object.fromEntries(Object.keys(c.state_dict).map((k) => [k, c.grads[k]])));
        const kerasGrads = Object.fromEntries(Object.entries(writeWeights(torchCell, "keras", torchGrads).tensors).map(([k, v]) => [k, v.data]));
        if (torchName === "lstm") {
          // the bridge sums the two bias gradients; torch's are equal, so the sum is twice the one Keras gets
          kerasGrads.bias = kerasGrads.bias!.map((v) => v / 2);
          const [bi, bh] = [flat(c.grads.bias_ih_l0 ?? c.grads.bias_ih), flat(c.grads.bias_hh_l0 ?? c.grads.bias_hh)];
          expect(compare(bi, bh).ratio, "torch: d bias_ih = d bias_hh").toBeLessThanOrEqual(1);
        }
        for (const [engine, r] of Object.entries(await runBoth(kerasCell, sc))) checkAgainstTorch(`${engine}: ${file} -> ${kerasName} (Keras layout)`, kerasCell, c, kind, r, "keras", kerasGrads);
      });
  }
});

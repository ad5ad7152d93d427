// TensorFlow.js parity, in process: tf.layers.gru and tf.layers.lstm (@tensorflow/tfjs-layers on the
// plain-JS cpu backend, float32) against the cells tfjs runs, gru-tfjs (reset before the recurrent
// product, one bias, [z|r|h], hardSigmoid gates: tfjs's default), gru-keras-reset-before (the same
// with recurrentActivation 'sigmoid'), lstm-keras ('sigmoid') and lstm-keras with hardSigmoid gates
// (tfjs's default LSTM; built here from lstm-keras's spec). The weights go into tfjs through the
// Keras converter (src/interop) and tfjs's weight gradients come back through it.
//
// Tolerance. tfjs computes in float32 (unit roundoff u = 2^-24 = 6.0e-8). Every value is made of
// dot products of K = D + H + 1 terms (Higham: error <= K·u·Σ|terms|), a few correctly rounded-ish
// elementwise functions, and T steps of recurrence whose Jacobians have norm about 1 or less (gates
// in [0, 1], tanh' <= 1); the weight gradients add sums over B·T steps and examples. At the sizes
// here (K <= 11, B·T <= 12, |terms| summing to a few units) that bounds the error by about
// (K + B·T)·u·5 = 7e-6 relative to the values' scale; typical errors are its square root's order
// (1e-7). TOL = 2e-5, relative to max(1, max|b|) per array as `cellforge check` measures f32 kernels:
// 3x the worst-case bound and 100x what is measured (printed at the end, next to cellforge's own
// float32 kernels on the same case), and 1000x smaller than any real discrepancy (a wrong gate order,
// bias or activation gives errors of order 1e-2 to 1). Inputs are rounded to float32 first so both
// sides see the same numbers, and cellforge's float64 kernel is the reference.
//
// hardSigmoid has kinks at ±2.5; weights are scaled so some gates saturate (its flat part, where
// its derivative is 0, is exercised) and the cases are checked to keep every pre-activation 1e-3
// away from a kink, so float32 rounding cannot move one across it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import type { Cell, CellSpec } from "../src/cell.ts";
import { compileCell } from "../src/cell.ts";
import { loadCell } from "../src/load.ts";
import { topo } from "../src/ir.ts";
import { type SequenceCase, forwardSequence, randomCase } from "../src/sequence.ts";
import { loadKernels, runKernel } from "../check/kernelcheck.ts";
import { type Nested, readWeights, writeWeights } from "../src/interop/convert.ts";
import lstmKerasSpec from "../dsl/lstm-keras.ts";

const TOL = 2e-5;

type Act = "hardSigmoid" | "sigmoid";
interface Variant {
  readonly layer: "gru" | "lstm";
  /** undefined: tfjs's default, which must be hardSigmoid. */
  readonly recurrentActivation?: "sigmoid";
  readonly act: Act;
  readonly cell: () => Promise<Cell>;
}

/** tfjs's default LSTM: lstm-keras with hardSigmoid gates (i, f, o; the candidate keeps tanh). */
const lstmHardSigmoid = (): Cell => {
  const spec = lstmKerasSpec as CellSpec;
  const equations = String(spec.equations).replaceAll("sigmoid(", "hardSigmoid(");
  expect(equations.match(/hardSigmoid\(/g)?.length).toBe(3);
  return compileCell({ ...spec, name: "lstm-keras-hard-sigmoid", equations });
};

const VARIANTS: readonly Variant[] = [
  { layer: "gru", act: "hardSigmoid", cell: () => loadCell("gru-tfjs") },
  { layer: "gru", recurrentActivation: "sigmoid", act: "sigmoid", cell: () => loadCell("gru-keras-reset-before") },
  { layer: "lstm", act: "hardSigmoid", cell: async () => lstmHardSigmoid() },
  { layer: "lstm", recurrentActivation: "sigmoid", act: "sigmoid", cell: () => loadCell("lstm-keras") },
];

const SIZES = [
  { D: 5, H: 4, B: 3, T: 4, seed: 11 },
  { D: 3, H: 6, B: 1, T: 1, seed: 12 },
  { D: 2, H: 3, B: 2, T: 6, seed: 13 },
] as const;

/** Weight scale: gates must leave hardSigmoid's linear part [-2.5, 2.5] sometimes. */
const GAIN = 3;

beforeAll(async () => {
  expect(await tf.setBackend("cpu")).toBe(true);
  await tf.ready();
  tf.enableProdMode();
});

const measured: string[] = [];
afterAll(() => console.log(`tfjs ${tf.version_core} (cpu backend, float32) against cellforge float64 kernels; error = max|a-b| / max(1, max|b|) per array, tolerance ${TOL}:\n${measured.join("\n")}`));

const f32 = (a: Float64Array) => a.map((v) => Math.fround(v));
/** tfjs takes Float32Array, not Float64Array (the values are float32-exact already). */
const F32 = (a: ArrayLike<number>) => Float32Array.from(a);
const mapValues = (r: Readonly<Record<string, Float64Array>>, f: (v: Float64Array) => Float64Array) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, f(v)]));

/** [T][B][n] (time-major, cellforge) ↔ [B][T][n] (batch-major, tfjs). */
function swapTB(a: ArrayLike<number>, first: number, second: number, n: number): Float64Array {
  const out = new Float64Array(first * second * n);
  for (let i = 0; i < first; i++) for (let j = 0; j < second; j++) for (let k = 0; k < n; k++) out[(j * first + i) * n + k] = a[(i * second + j) * n + k]!;
  return out;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0, s = 1;
  for (let i = 0; i < b.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); s = Math.max(s, Math.abs(b[i]!)); }
  return m / s;
}

/** A random float32-exact case with weights scaled by GAIN; in layer mode the LSTM's c has an upstream gradient only at the last step (the layer returns c_T only). */
function makeCase(cell: Cell, s: (typeof SIZES)[number], mode: "layer" | "cell"): SequenceCase {
  const c = randomCase(cell, { sizes: { D: s.D, H: s.H }, B: s.B, T: s.T, seed: s.seed });
  const params = mapValues(c.params, (v) => f32(v.map((x) => x * GAIN)));
  const upstream = mapValues(c.upstream, f32);
  if (upstream.c && mode === "layer") upstream.c.fill(0, 0, (s.T - 1) * s.B * s.H);
  return { ...c, params, inputs: mapValues(c.inputs, f32), initial: mapValues(c.initial, f32), upstream };
}

/** Every hardSigmoid pre-activation of the case, from the reference evaluator. */
function gatePreactivations(cell: Cell, c: SequenceCase): number[] {
  const pre = topo(cell.next).filter((n) => n.op === "hardSigmoid").map((n) => n.args[0]!);
  const fwd = forwardSequence(cell, c, pre);
  return fwd.tape.flatMap((env) => pre.flatMap((p) => [...env.get(p)!]));
}

interface TfjsRun {
  readonly h: Float64Array; // [T][B][H]
  /** The LSTM's c: at every step (cell mode, [T][B][H]) or the last (layer mode, [B][H]). */
  readonly c?: Float64Array;
  readonly grads: Record<string, Float64Array>; // x [T][B][D], h0, c0, and the cell's parameters by name
  readonly activation: string;
}

/**
 * "layer": tf.layers.gru / lstm over the sequence (returnSequences; the LSTM also returnState for
 * c_T), the upstream gradient on every h_t and on c_T. "cell": tf.layers.gruCell / lstmCell called
 * once a step, so the LSTM's c is seen (and has an upstream gradient) at every step, and T = 1 works:
 * the layer cannot differentiate a one-step sequence (tfjs-core 4.22 Unpack_grad calls stack(dy) with
 * the single gradient tensor, not a list, and throws).
 */
function runTfjs(v: Variant, cell: Cell, c: SequenceCase, mode: "layer" | "cell"): TfjsRun {
  const { B, T } = c, { D, H } = c.sizes as { D: number; H: number };
  const lstm = v.layer === "lstm";
  const options = {
    units: H,
    ...(v.recurrentActivation ? { recurrentActivation: v.recurrentActivation } : {}),
    // tfjs's default orthogonal initializer needs ops only the union package registers; the weights are set below
    kernelInitializer: "glorotUniform" as const,
    recurrentInitializer: "glorotUniform" as const,
  };
  const layer = mode === "cell"
    ? (lstm ? tfl.layers.lstmCell(options) : tfl.layers.gruCell(options))
    : (lstm ? tfl.layers.lstm({ ...options, returnSequences: true, returnState: true }) : tfl.layers.gru({ ...options, returnSequences: true }));
  // the input as one [B, T, D] variable (layer), or one [B, D] variable a step (cell)
  const xs = mode === "layer"
    ? [tf.variable(tf.tensor3d(F32(swapTB(c.inputs.x!, T, B, D)), [B, T, D]), true, "x")]
    : Array.from({ length: T }, (_, t) => tf.variable(tf.tensor2d(F32(c.inputs.x!.subarray(t * B * D, (t + 1) * B * D)), [B, D]), true, `x${t}`));
  const h0 = tf.variable(tf.tensor2d(F32(c.initial.h!), [B, H]), true, "h0");
  const c0 = lstm ? tf.variable(tf.tensor2d(F32(c.initial.c!), [B, H]), true, "c0") : undefined;
  const initialState = c0 ? [h0, c0] : [h0];
  const dh = tf.tensor3d(F32(c.upstream.h!), [T, B, H]);
  const dc = lstm ? tf.tensor3d(F32(c.upstream.c!), [T, B, H]) : undefined;
  const stepOf = (u: tf.Tensor3D, t: number) => tf.reshape(tf.slice(u, [t, 0, 0], [1, B, H]), [B, H]);
  /** h at every step [T][B][H] (time-major), and c: every step, or the last. */
  const outputs = (): { h: tf.Tensor; c?: tf.Tensor } => {
    if (mode === "layer") {
      const o = layer.apply(xs[0]!, { initialState }) as tf.Tensor | tf.Tensor[];
      const y = Array.isArray(o) ? o[0]! : o;
      return { h: tf.transpose(y, [1, 0, 2]), ...(Array.isArray(o) ? { c: o[2]! } : {}) };
    }
    let state: tf.Tensor[] = initialState;
    const hs: tf.Tensor[] = [], cs: tf.Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const o = (layer as unknown as { call(i: tf.Tensor[], k: object): tf.Tensor[] }).call([xs[t]!, ...state], {});
      state = o.slice(1);
      hs.push(o[1]!);
      if (lstm) cs.push(o[2]!);
    }
    return { h: tf.stack(hs), ...(lstm ? { c: tf.stack(cs) } : {}) };
  };
  const loss = () => {
    const o = outputs();
    let l = tf.sum(tf.mul(o.h, dh));
    if (o.c && dc) l = tf.add(l, tf.sum(tf.mul(o.c, mode === "layer" ? stepOf(dc, T - 1) : dc)));
    return l as tf.Scalar;
  };
  try {
    if (mode === "layer") tf.dispose(layer.apply(xs[0]!, { initialState }) as tf.Tensor | tf.Tensor[]); // builds the weights
    else layer.build([B, D]);
    const gates = (mode === "cell" ? layer : (layer as unknown as { cell: unknown }).cell) as { recurrentActivation: { getClassName(): string } };
    // the cell's parameters in Keras's layout, through the converter
    const written = writeWeights(cell, "keras", { sizes: { D, H }, params: c.params });
    expect(written.json.config).toMatchObject({ units: H, recurrent_activation: v.act, ...(lstm ? {} : { reset_after: false }) });
    const names = layer.getWeights().map((_, i) => ["kernel", "recurrent_kernel", "bias"][i]!);
    expect(layer.getWeights().map((w) => w.shape)).toEqual(names.map((n) => written.tensors[n]!.shape));
    const weights = names.map((n) => tf.tensor(F32(written.tensors[n]!.data), written.tensors[n]!.shape as number[]));
    layer.setWeights(weights);
    tf.dispose(weights);

    let h = new Float64Array(0), cOut: Float64Array | undefined;
    tf.tidy(() => {
      const o = outputs();
      h = Float64Array.from(o.h.dataSync());
      if (o.c) cOut = Float64Array.from(o.c.dataSync());
    });
    const weightVars = layer.trainableWeights.map((w) => (w as unknown as { read(): tf.Variable }).read());
    const { value, grads } = tf.variableGrads(loss, [...xs, h0, ...(c0 ? [c0] : []), ...weightVars]);
    value.dispose();
    const data = (t: tf.Tensor) => Float64Array.from(t.dataSync());
    // tfjs's weight gradients, in Keras's layout, back into the cell's parameters through the converter
    const kerasGrads: Record<string, Nested> = Object.fromEntries(weightVars.map((w, i) => [names[i]!, grads[w.name]!.arraySync() as Nested]));
    const paramGrads = readWeights(cell, "keras", kerasGrads).params;
    const dx = mode === "layer" ? swapTB(data(grads.x!), B, T, D) : Float64Array.from(xs.flatMap((x) => [...data(grads[x.name]!)]));
    const out: Record<string, Float64Array> = { ...paramGrads, x: dx, h0: data(grads.h0!), ...(c0 ? { c0: data(grads.c0!) } : {}) };
    tf.dispose(Object.values(grads));
    return { h, ...(cOut ? { c: cOut } : {}), grads: out, activation: gates.recurrentActivation.getClassName() };
  } finally {
    tf.dispose([...xs, h0, ...(c0 ? [c0] : []), dh, ...(dc ? [dc] : [])]);
    // a cell that was built but never apply()'d cannot be disposed as a layer: dispose its weights
    if (mode === "layer") layer.dispose();
    else for (const w of layer.weights) (w as unknown as { dispose(): void }).dispose();
  }
}

describe("tfjs-layers GRU and LSTM (cpu backend, float32) = cellforge's cells, forward and gradients, within float32 rounding", () => {
  for (const mode of ["layer", "cell"] as const)
    for (const v of VARIANTS)
      for (const s of SIZES.filter((z) => mode === "cell" || z.T > 1))
        it(`tf.layers.${v.layer}${mode === "cell" ? "Cell" : ""}(${v.recurrentActivation ? `recurrentActivation: '${v.recurrentActivation}'` : "default recurrentActivation = hardSigmoid"}) D=${s.D} H=${s.H} B=${s.B} T=${s.T}`, async () => {
          const cell = await v.cell();
          const c = makeCase(cell, s, mode);
          if (v.act === "hardSigmoid") {
            const pre = gatePreactivations(cell, c);
            expect(pre.some((p) => Math.abs(p) > 2.5), "some gate saturates").toBe(true);
            expect(pre.some((p) => Math.abs(p) < 2.5), "some gate is in the linear part").toBe(true);
            expect(Math.min(...pre.map((p) => Math.abs(Math.abs(p) - 2.5))), "distance of a pre-activation from a kink").toBeGreaterThan(1e-3);
          }
          const mod = await loadKernels(cell);
          const k64 = runKernel(mod, c, 64), k32 = runKernel(mod, c, 32);
          const tfr = runTfjs(v, cell, c, mode);
          expect(tfr.activation).toBe(v.act);

          const { B, T } = c, H = c.sizes.H!;
          const layout = mod.paramLayout(c.sizes);
          const paramOf = (flat: Float64Array, name: string) => { const q = layout.params.find((p) => p.name === name)!; return flat.subarray(q.offset, q.offset + q.length); };
          const lastC = (a: Float64Array) => (mode === "layer" ? a.subarray((T - 1) * B * H) : a);
          type Row = [what: string, tfjs: Float64Array, f64: Float64Array, f32: Float64Array];
          const rows: Row[] = [
            ["h at every step", tfr.h, k64.outputs.h!, k32.outputs.h!],
            ...(tfr.c ? [[mode === "layer" ? "c_T" : "c at every step", tfr.c, lastC(k64.outputs.c!), lastC(k32.outputs.c!)] as Row] : []),
            ["dx", tfr.grads.x!, k64.inputs.x!, k32.inputs.x!],
            ["dh0", tfr.grads.h0!, k64.initial.h!, k32.initial.h!],
            ...(v.layer === "lstm" ? [["dc0", tfr.grads.c0!, k64.initial.c!, k32.initial.c!] as Row] : []),
            ...cell.params.map((p): Row => [`d${p.name}`, tfr.grads[p.name]!, paramOf(k64.params, p.name), paramOf(k32.params, p.name)]),
          ];
          let worstTf = 0, worstCf32 = 0;
          for (const [what, got, want, cf32] of rows) {
            const e = relErr(got, want);
            worstTf = Math.max(worstTf, e);
            worstCf32 = Math.max(worstCf32, relErr(cf32, want));
            expect(e, `${cell.name}: ${what}`).toBeLessThanOrEqual(TOL);
          }
          measured.push(`  ${`${mode} ${v.layer} ${v.act} (${cell.name}) D=${s.D} H=${s.H} B=${s.B} T=${s.T}`.padEnd(64)} tfjs ${worstTf.toExponential(2)}   cellforge f32 kernel ${worstCf32.toExponential(2)}`);
        });
});

describe("the tolerance tells a wrong cell apart", () => {
  it("gru-keras-reset-before (sigmoid gates) against tfjs's default GRU (hardSigmoid gates) misses by far more than the tolerance", async () => {
    const cell = await loadCell("gru-keras-reset-before");
    const c = makeCase(cell, SIZES[0], "cell");
    const tfr = runTfjs({ layer: "gru", act: "sigmoid", cell: async () => cell }, cell, c, "cell");
    expect(tfr.activation).toBe("hardSigmoid");
    const k64 = runKernel(await loadKernels(cell), c, 64);
    expect(relErr(tfr.h, k64.outputs.h!)).toBeGreaterThan(1000 * TOL);
  });
});

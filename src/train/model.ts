// A sequence model: a stack of any cell's generated kernels and a linear readout, all parameters in
// ONE flat buffer (each layer's kernel gets a view of its slice), so an optimizer is one loop.
//
//   [input projection, only when the cell's input size is its hidden size (SRU) and the task's differs]
//   layer 1 … layer n: the cell's kernels; layer k + 1 reads layer k's exposed value at every step
//   readout: y = W·h + b on the top layer's exposed value, at the last step or at every step
//
// A cell's exposed value is its first declared output if it has one (SRU's h), else the state h,
// else its first state. The other states (the LSTM's c) pass nothing up and get zero upstream.
import type { Rng } from "../../runtime/rng.ts";
import type { FloatArray, Kernel, KernelModule, Precision } from "../../runtime/kernel.ts";
import { deriveSeed, streamRng } from "./seeds.ts";

export type { FloatArray, Precision };

/** What the training runtime needs of a generated kernel module (generated/<cell>.ts, or check/kernelcheck.ts loadKernels). */
export type CellKernels = KernelModule;

export interface ModelConfig {
  readonly layers: number;
  readonly hidden: number;
  readonly inputSize: number;
  readonly outputSize: number;
  /** The readout runs at the last step only, or at every step. */
  readonly at: "last" | "every";
  /** Sizes of the cell besides its input and hidden sizes. */
  readonly sizes?: Readonly<Record<string, number>>;
}

/** A named slice of the flat parameter buffer. */
export interface ParamSlice { readonly name: string; readonly offset: number; readonly length: number }

export interface ModelPlan {
  readonly cell: string;
  readonly config: ModelConfig;
  /** The cell's input, exposed value and their sizes. */
  readonly input: string;
  readonly exposed: string;
  readonly exposedSize: string;
  readonly layers: readonly { readonly sizes: Readonly<Record<string, number>>; readonly offset: number; readonly length: number }[];
  readonly inputProjection: { readonly W: ParamSlice; readonly b: ParamSlice } | null;
  readonly readout: { readonly W: ParamSlice; readonly b: ParamSlice };
  /** Every parameter, in buffer order: layer1.Wir, …, readout.W, readout.b. */
  readonly params: readonly ParamSlice[];
  readonly total: number;
}

export class ModelError extends Error {}

/** The value a layer passes up: the first output, else state h, else the first state. */
function exposedOf(spec: CellKernels["spec"]): { readonly name: string; readonly size: string } {
  const e = spec.outputs[0] ?? spec.states.find((s) => s.name === "h") ?? spec.states[0];
  if (!e) throw new ModelError(`cell "${spec.name}" has no state or output to read`);
  return e;
}

/** Where every parameter of the model sits in the flat buffer. */
export function planModel(mod: CellKernels, cfg: ModelConfig): ModelPlan {
  const spec = mod.spec, name = spec.name;
  if (spec.inputs.length !== 1) throw new ModelError(`cell "${name}" has ${spec.inputs.length} inputs (${spec.inputs.map((x) => x.name).join(", ")}); a sequence model feeds exactly one`);
  const input = spec.inputs[0]!, exposed = exposedOf(spec);
  for (const [what, s] of [["input " + input.name, input.size], ["value " + exposed.name, exposed.size]] as const)
    if (!spec.sizes.includes(s)) throw new ModelError(`cell "${name}": the ${what} has size ${s}, not a single size name; a sequence model cannot set it`);
  if (!Number.isInteger(cfg.layers) || cfg.layers < 1) throw new ModelError(`layers must be a positive integer, got ${cfg.layers}`);
  if (!Number.isInteger(cfg.hidden) || cfg.hidden < 1) throw new ModelError(`hidden size must be a positive integer, got ${cfg.hidden}`);
  const params: ParamSlice[] = [];
  let offset = 0;
  const take = (n: string, length: number): ParamSlice => {
    const s = { name: n, offset, length };
    params.push(s);
    offset += length;
    return s;
  };
  const H = cfg.hidden;
  const projected = input.size === exposed.size && cfg.inputSize !== H;
  const inputProjection = projected ? { W: take("input.W", H * cfg.inputSize), b: take("input.b", H) } : null;
  const layers = [];
  for (let l = 0; l < cfg.layers; l++) {
    const sizes: Record<string, number> = { ...cfg.sizes, [exposed.size]: H };
    if (input.size !== exposed.size) sizes[input.size] = l === 0 ? cfg.inputSize : H;
    const missing = spec.sizes.filter((s) => sizes[s] === undefined);
    if (missing.length) throw new ModelError(`cell "${name}" has size${missing.length > 1 ? "s" : ""} ${missing.join(", ")} besides its input and hidden sizes: give ${missing.map((m) => `${m}=n`).join(",")} with --sizes`);
    const layout = mod.paramLayout(sizes);
    const start = offset;
    for (const q of layout.params) take(`layer${l + 1}.${q.name}`, q.length);
    if (offset - start !== layout.total) throw new ModelError(`cell "${name}": its parameter layout is not contiguous`);
    layers.push({ sizes, offset: start, length: layout.total });
  }
  const readout = { W: take("readout.W", cfg.outputSize * H), b: take("readout.b", cfg.outputSize) };
  return { cell: name, config: cfg, input: input.name, exposed: exposed.name, exposedSize: exposed.size, layers, inputProjection, readout, params, total: offset };
}

/** Fill `p` with the model's initial parameters: each layer by its cell's init rules, linear maps U(±1/sqrt(fan-in)) as PyTorch's nn.Linear. */
export function initModelParams(mod: CellKernels, plan: ModelPlan, seed: number, p: FloatArray): void {
  plan.layers.forEach((l, i) => p.set(mod.initParams(l.sizes, deriveSeed(seed, "init.layer", i)), l.offset));
  const linear = (W: ParamSlice, b: ParamSlice, fanIn: number, rng: Rng) => {
    const k = 1 / Math.sqrt(fanIn);
    for (const s of [W, b]) for (let i = 0; i < s.length; i++) p[s.offset + i] = rng.uniform(-k, k);
  };
  if (plan.inputProjection) linear(plan.inputProjection.W, plan.inputProjection.b, plan.config.inputSize, streamRng(seed, "init.input"));
  linear(plan.readout.W, plan.readout.b, plan.config.hidden, streamRng(seed, "init.readout"));
}

// ---- linear maps over rows: Y = X·Wᵀ + b, and the gradients ------------------------------------

function linearForward(X: FloatArray, W: FloatArray, b: FloatArray, Y: FloatArray, rows: number, nIn: number, nOut: number): void {
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < nOut; o++) {
      let s = b[o]!;
      for (let i = 0; i < nIn; i++) s += X[r * nIn + i]! * W[o * nIn + i]!;
      Y[r * nOut + o] = s;
    }
}

/** dW = dYᵀ·X, db = Σ_rows dY (written, not added); dX = dY·W when asked. */
function linearBackward(X: FloatArray, W: FloatArray, dY: FloatArray, dW: FloatArray, db: FloatArray, dX: FloatArray | null, rows: number, nIn: number, nOut: number): void {
  for (let o = 0; o < nOut; o++) {
    let sb = 0;
    for (let r = 0; r < rows; r++) sb += dY[r * nOut + o]!;
    db[o] = sb;
    for (let i = 0; i < nIn; i++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += dY[r * nOut + o]! * X[r * nIn + i]!;
      dW[o * nIn + i] = s;
    }
  }
  if (dX)
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < nIn; i++) {
        let s = 0;
        for (let o = 0; o < nOut; o++) s += dY[r * nOut + o]! * W[o * nIn + i]!;
        dX[r * nIn + i] = s;
      }
}

// ---- running the model -------------------------------------------------------------------------

interface LayerRun {
  readonly kernel: Kernel<FloatArray>;
  readonly p: FloatArray;
  readonly inputs: Record<string, FloatArray>;
  readonly initial: Record<string, FloatArray>;
  readonly out: Record<string, FloatArray>;
  readonly upstream: Record<string, FloatArray>;
  readonly grads: { params: FloatArray; inputs: Record<string, FloatArray>; initial: Record<string, FloatArray> };
}

/**
 * The model for batch B and T steps in one precision. Kernels and every buffer are allocated here,
 * once. Several models (a training batch, an evaluation batch) can share one parameter buffer.
 */
export class SequenceModel {
  readonly params: FloatArray;
  readonly grads: FloatArray;
  /** The readout's output: B×O (at the last step) or T×B×O (at every step). */
  readonly pred: FloatArray;
  /** Inputs for the next forward, T×B×inputSize. */
  readonly x: FloatArray;
  private readonly runs: LayerRun[] = [];
  private readonly projected: FloatArray | null;

  constructor(mod: CellKernels, readonly plan: ModelPlan, readonly precision: Precision, readonly B: number, readonly T: number, params?: FloatArray) {
    const F = precision === 32 ? Float32Array : Float64Array;
    if (params && (!(params instanceof F) || params.length !== plan.total)) throw new ModelError(`shared parameters must be a Float${precision}Array of length ${plan.total}`);
    this.params = params ?? new F(plan.total);
    this.grads = new F(plan.total);
    const cfg = plan.config, H = cfg.hidden, spec = mod.spec;
    this.x = new F(T * B * cfg.inputSize);
    this.projected = plan.inputProjection ? new F(T * B * H) : null;
    this.pred = new F((cfg.at === "last" ? B : T * B) * cfg.outputSize);
    let below: FloatArray = this.projected ?? this.x;
    for (const l of plan.layers) {
      const kernel = (precision === 32 ? mod.createKernel32(l.sizes, B, T) : mod.createKernel64(l.sizes, B, T)) as Kernel<FloatArray>;
      const size = (s: string) => l.sizes[s]!;
      const values = [...spec.states, ...spec.outputs];
      const initial = Object.fromEntries(spec.states.map((s) => [s.name, new F(B * size(s.size))]));
      const run: LayerRun = {
        kernel,
        p: this.params.subarray(l.offset, l.offset + l.length),
        inputs: { [plan.input]: below },
        initial,
        out: Object.fromEntries(values.map((v) => [v.name, new F(T * B * size(v.size))])),
        upstream: Object.fromEntries(values.map((v) => [v.name, new F(T * B * size(v.size))])),
        grads: {
          params: this.grads.subarray(l.offset, l.offset + l.length),
          inputs: { [plan.input]: new F(below.length) },
          initial: Object.fromEntries(spec.states.map((s) => [s.name, new F(B * size(s.size))])),
        },
      };
      // the gradient of the layer below's exposed value is this layer's input gradient
      const prev = this.runs.at(-1);
      if (prev) prev.upstream[plan.exposed] = run.grads.inputs[plan.input]!;
      this.runs.push(run);
      below = run.out[plan.exposed]!;
    }
  }

  private view(s: ParamSlice, a: FloatArray): FloatArray {
    return a.subarray(s.offset, s.offset + s.length);
  }

  /** The top layer's exposed value where the readout reads it, and how many rows. */
  private top(): { h: FloatArray; rows: number } {
    const h = this.runs.at(-1)!.out[this.plan.exposed]!, H = this.plan.config.hidden, B = this.B;
    return this.plan.config.at === "last" ? { h: h.subarray((this.T - 1) * B * H), rows: B } : { h, rows: this.T * B };
  }

  /** Run the model on `this.x`; the result is in `this.pred`. */
  forward(): FloatArray {
    const cfg = this.plan.config, ip = this.plan.inputProjection;
    if (ip && this.projected) linearForward(this.x, this.view(ip.W, this.params), this.view(ip.b, this.params), this.projected, this.T * this.B, cfg.inputSize, cfg.hidden);
    for (const r of this.runs) r.kernel.forward(r.p, r.inputs, r.initial, r.out);
    const { h, rows } = this.top(), ro = this.plan.readout;
    linearForward(h, this.view(ro.W, this.params), this.view(ro.b, this.params), this.pred, rows, cfg.hidden, cfg.outputSize);
    return this.pred;
  }

  /** Backpropagate `dPred` (the loss's gradient for `this.pred`) through the last forward; writes `this.grads`. */
  backward(dPred: FloatArray): void {
    const cfg = this.plan.config, H = cfg.hidden, ro = this.plan.readout;
    const topRun = this.runs.at(-1)!, up = topRun.upstream[this.plan.exposed]!;
    const { h, rows } = this.top();
    if (cfg.at === "last") up.fill(0, 0, (this.T - 1) * this.B * H);
    const dh = cfg.at === "last" ? up.subarray((this.T - 1) * this.B * H) : up;
    linearBackward(h, this.view(ro.W, this.params), dPred, this.view(ro.W, this.grads), this.view(ro.b, this.grads), dh, rows, H, cfg.outputSize);
    for (let l = this.runs.length - 1; l >= 0; l--) {
      const r = this.runs[l]!;
      r.kernel.backward(r.p, r.inputs, r.initial, r.out, r.upstream, r.grads);
    }
    const ip = this.plan.inputProjection;
    if (ip) linearBackward(this.x, this.view(ip.W, this.params), this.runs[0]!.grads.inputs[this.plan.input]!, this.view(ip.W, this.grads), this.view(ip.b, this.grads), null, this.T * this.B, cfg.inputSize, H);
  }
}

// A recurrent layer over any generated kernel module, as PyTorch's nn.GRU / nn.LSTM
// (torch/nn/modules/rnn.py): stacked layers, bidirectional, batch-first, dropout between layers,
// per-example lengths, initial states and final states in h_n's order; parameters in ONE flat buffer.
//
// Variable lengths, as pack_padded_sequence's batch_sizes: the examples are sorted longest first and
// the steps are cut into segments at each distinct length. In a segment the examples still running
// are a prefix of that order, so a segment is one kernel call on a contiguous batch that shrinks,
// starting from the state the previous segment ended in. The reverse direction reads each example
// backwards within its own length (torch/nn/utils/rnn.py: a packed sequence is reversed per example).
//
// A cell's exposed value (what a layer passes up and outputs) is its first output, else its state h,
// else its first state, as src/train/model.ts. A cell whose input size IS its hidden size (SRU) gets
// an input projection l{k}.proj (a linear map, as nn.Linear) where the incoming feature size differs.
import type { FloatArray, Kernel, KernelModule, NamedSize } from "../runtime/kernel.ts";
import type { KernelOptions } from "../runtime/memory.ts";
import { Rng } from "../runtime/rng.ts";

export interface RecurrentOptions {
  /** Size of the exposed value (H). */
  readonly hidden: number;
  /** Features per step. */
  readonly inputSize: number;
  readonly layers?: number;
  readonly bidirectional?: boolean;
  /** x is B×T×inputSize (else T×B×inputSize), and the output likewise. */
  readonly batchFirst?: boolean;
  /** Inverted dropout on each layer's output except the last's, in training mode only (as nn.GRU). */
  readonly dropout?: number;
  /** The cell's sizes besides its input and hidden sizes. */
  readonly sizes?: Readonly<Record<string, number>>;
  readonly precision?: 32 | 64;
  readonly backend?: "wasm" | "ts";
  readonly threads?: number;
  /** Seeds the initialisation and the dropout masks. */
  readonly seed?: number;
  /** Buffers of length Recurrent.size(…) to hold the parameters and gradients (views of a larger one); the layer initialises `params`. */
  readonly params?: FloatArray;
  readonly grads?: FloatArray;
}

/** The options with their defaults, without the buffers: what a model file saves to rebuild the layer. */
export type RecurrentConfig = Required<Omit<RecurrentOptions, "params" | "grads" | "backend" | "threads">> & Pick<RecurrentOptions, "backend" | "threads">;

/** A named slice of the flat parameter buffer. */
export interface Parameter {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
  readonly shape: readonly number[];
}

/** A mistake in a layer's options or in what it is given: the message names what was wrong. */
export class LayerError extends Error {
  override name = "LayerError";
}

type Arrays = Record<string, FloatArray>;
/** One layer and direction of the cell: its sizes and its slice of the buffer. */
interface Slot { readonly sizes: Record<string, number>; readonly offset: number; readonly length: number }
/** A layer's input projection Y = X·Wᵀ + b from nIn features to H. */
interface Projection { readonly W: Parameter; readonly b: Parameter; readonly nIn: number }
interface Plan {
  readonly input: NamedSize;
  readonly exposed: NamedSize;
  readonly layers: readonly { readonly proj: Projection | null; readonly dirs: readonly Slot[] }[];
  readonly parameters: readonly Parameter[];
  readonly total: number;
}
/** A kernel for one layer, direction, batch and steps, with the buffers of its calls. */
interface Run {
  readonly kernel: Kernel<FloatArray>;
  readonly inputs: Arrays;
  readonly initial: Arrays;
  readonly out: Arrays;
  readonly upstream: Arrays;
  readonly grads: { readonly params: FloatArray; readonly inputs: Arrays; readonly initial: Arrays };
  used: number;
}
/**
 * One kernel call: the steps [start, end) that `b` examples (the first b of `order`) run, on a kernel
 * of batch `bb` ≥ b; `next` of them go on to the next call. rows[d][r]: the row t·B+e of kernel row r,
 * or -1 - (the row it copies) for the bb - b padding rows (see batchOf). idx: the example of each
 * kernel row at its first step (-1 for padding); `use`: how many earlier calls had this (bb, steps).
 */
interface Segment {
  readonly start: number; readonly end: number; readonly b: number; readonly bb: number; readonly next: number;
  readonly rows: readonly Int32Array[]; readonly idx: Int32Array; readonly use: number;
}
interface Batch { readonly B: number; readonly T: number; readonly order: Int32Array; readonly segments: readonly Segment[] }
/** What a backward needs of the last forward. */
interface Saved { readonly batch: Batch; readonly below: FloatArray[]; readonly masks: (FloatArray | null)[]; readonly runs: Run[][][] }

/** Kernels kept besides those of the last forward: each holds its buffers, so an unbounded cache over many (batch, steps) would grow without end. */
const KEEP_KERNELS = 256;

/** A 32-bit seed for one stream of a layer: murmur3's finaliser over each part (as src/train/seeds.ts). */
function seedFor(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = (h ^ p) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

function count(what: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new LayerError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function resolve(o: RecurrentOptions): RecurrentConfig {
  const dropout = o.dropout ?? 0;
  if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) throw new LayerError(`dropout must be a probability in [0, 1), got ${String(dropout)}`);
  const precision = o.precision ?? 32;
  if (precision !== 32 && precision !== 64) throw new LayerError(`precision must be 32 or 64, got ${String(precision)}`);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LayerError(`seed must be an integer, got ${String(seed)}`);
  const layers = count("layers", o.layers ?? 1);
  return {
    hidden: count("hidden", o.hidden), inputSize: count("inputSize", o.inputSize), layers, bidirectional: o.bidirectional ?? false,
    batchFirst: o.batchFirst ?? false, dropout, sizes: { ...o.sizes }, precision, seed,
    ...(o.backend !== undefined && { backend: o.backend }), ...(o.threads !== undefined && { threads: o.threads }),
  };
}

/** Where every parameter sits: per layer its projection (if any), then l{k}, then l{k}_reverse. */
function planOf(mod: KernelModule, o: RecurrentConfig): Plan {
  const spec = mod.spec, cell = `cell "${spec.name}"`;
  if (spec.inputs.length !== 1) throw new LayerError(`${cell} has ${spec.inputs.length} inputs (${spec.inputs.map((x) => x.name).join(", ")}); a recurrent layer feeds exactly one`);
  const input = spec.inputs[0]!, exposed = spec.outputs[0] ?? spec.states.find((s) => s.name === "h") ?? spec.states[0];
  if (!exposed) throw new LayerError(`${cell} has no state or output to pass up`);
  for (const [what, s] of [[`input ${input.name}`, input.size], [`value ${exposed.name}`, exposed.size]] as const)
    if (!spec.sizes.includes(s)) throw new LayerError(`${cell}: the ${what} has size ${s}, not a single size name; a recurrent layer cannot set it`);
  for (const s of Object.keys(o.sizes)) {
    if (!spec.sizes.includes(s)) throw new LayerError(`${cell} has no size ${s} (its sizes: ${spec.sizes.join(", ")})`);
    if (s === input.size || s === exposed.size) throw new LayerError(`${cell}: size ${s} is set by ${s === exposed.size ? "hidden" : "inputSize"}, not by sizes`);
  }
  const H = o.hidden, dirs = o.bidirectional ? 2 : 1, parameters: Parameter[] = [];
  let offset = 0;
  const take = (name: string, shape: number[]): Parameter => {
    const p = { name, offset, length: shape.reduce((a, b) => a * b, 1), shape };
    parameters.push(p);
    offset += p.length;
    return p;
  };
  const layers = [];
  for (let l = 0; l < o.layers; l++) {
    const nIn = l === 0 ? o.inputSize : dirs * H;
    const sizes: Record<string, number> = { ...o.sizes, [exposed.size]: H };
    if (input.size !== exposed.size) sizes[input.size] = nIn;
    const missing = spec.sizes.filter((s) => sizes[s] === undefined);
    if (missing.length) throw new LayerError(`${cell} has size${missing.length > 1 ? "s" : ""} ${missing.join(", ")} besides its input and hidden sizes: give them in sizes, e.g. { ${missing.map((m) => `${m}: 4`).join(", ")} }`);
    const proj = sizes[input.size] === nIn ? null : { W: take(`l${l}.proj.W`, [H, nIn]), b: take(`l${l}.proj.b`, [H]), nIn };
    let layout;
    try {
      layout = mod.paramLayout(sizes);
    } catch (e) {
      throw new LayerError(e instanceof Error ? e.message : String(e));
    }
    const slots = [];
    for (let d = 0; d < dirs; d++) {
      const start = offset;
      for (const [i, q] of layout.params.entries()) take(`l${l}${d ? "_reverse" : ""}.${q.name}`, spec.params[i]!.shape.map((n) => sizes[n]!));
      if (offset - start !== layout.total) throw new LayerError(`${cell}: its parameter layout is not contiguous`);
      slots.push({ sizes, offset: start, length: layout.total });
    }
    const first = layers[0]?.dirs[0]!.sizes;
    for (const st of spec.states)
      if (first && sizes[st.size] !== first[st.size]) throw new LayerError(`${cell}: its state ${st.name} has size ${st.size}, which differs between layers (${first[st.size]} and ${sizes[st.size]}); initial and final states need one size`);
    layers.push({ proj, dirs: slots });
  }
  return { input, exposed, layers, parameters, total: offset };
}

/** The segments of a batch with these lengths (all `T` when absent or null). */
function batchOf(B: number, T: number, lengths: ArrayLike<number> | null | undefined, dirs: number): Batch {
  if (lengths != null) {
    if (typeof lengths !== "object" || lengths.length !== B) throw new LayerError(`lengths must hold one length per example (${B}), got ${lengths.length ?? String(lengths)}`);
    for (let e = 0; e < B; e++) {
      const n = lengths[e];
      if (!Number.isInteger(n) || n! < 1 || n! > T) throw new LayerError(`lengths[${e}] must be an integer in [1, ${T}] (steps), got ${String(n)}`);
    }
  }
  const len = Int32Array.from({ length: B }, (_, e) => lengths?.[e] ?? T);
  const order = Int32Array.from({ length: B }, (_, e) => e).sort((a, b) => len[b]! - len[a]! || a - b);
  // Between two distinct lengths the active batch is constant. With lengths that differ, each such
  // stretch runs as calls of 2^k steps (13 = 8 + 4 + 1) on kernels of a power-of-two batch, the
  // extra rows copies of the first example with zero upstream (so they add exactly nothing): the
  // kernels then come from a few (batch, steps) shapes that recur from batch to batch, where exact
  // shapes made a new kernel (WebAssembly memory and all) for nearly every batch.
  const ends = [...new Set(len)].sort((a, b) => a - b), varied = ends.length > 1;
  const segments: Segment[] = [], uses = new Map<string, number>();
  let start = 0;
  for (const [i, end] of ends.entries()) {
    const b = len.reduce((n, l) => n + (l >= end ? 1 : 0), 0), bb = varied ? Math.min(B, 2 ** Math.ceil(Math.log2(b))) : b;
    const after = i + 1 < ends.length ? len.reduce((n, l) => n + (l >= ends[i + 1]! ? 1 : 0), 0) : 0;
    while (start < end) {
      const steps = varied ? 2 ** Math.floor(Math.log2(end - start)) : end - start, stop = start + steps, rows = [];
      for (let d = 0; d < dirs; d++) {
        const r = new Int32Array(steps * bb);
        for (let t = start; t < stop; t++)
          for (let j = 0; j < bb; j++) {
            const e = order[j < b ? j : 0]!, row = (d === 0 ? t : len[e]! - 1 - t) * B + e;
            r[(t - start) * bb + j] = j < b ? row : -1 - row;
          }
        rows.push(r);
      }
      const key = `${bb}/${steps}`, use = uses.get(key) ?? 0;
      uses.set(key, use + 1);
      segments.push({ start, end: stop, b, bb, next: stop === end ? after : b, rows, idx: Int32Array.from({ length: bb }, (_, j) => (j < b ? order[j]! : -1)), use });
      start = stop;
    }
  }
  return { B, T, order, segments };
}

/**
 * dst row r (of `width`) = or += src row idx[r] at column `off` of rows of `stride`. A padding row
 * (idx -1 - i) copies row i, or is zero when `pad` is "zero" (an upstream gradient).
 */
function gather(src: FloatArray, stride: number, off: number, idx: ArrayLike<number>, dst: FloatArray, width: number, add = false, pad: "copy" | "zero" = "copy"): void {
  for (let r = 0; r < dst.length / width; r++) {
    const i = idx[r]!;
    if (i < 0 && pad === "zero") {
      if (!add) dst.fill(0, r * width, (r + 1) * width);
      continue;
    }
    for (let k = 0, s = (i < 0 ? -1 - i : i) * stride + off; k < width; k++) dst[r * width + k] = (add ? dst[r * width + k]! : 0) + src[s + k]!;
  }
}

/** dst row idx[r] at column `off` (rows of `stride`) = or += src row r (of `width`); padding rows (idx < 0) are left out. */
function scatter(src: FloatArray, width: number, idx: ArrayLike<number>, dst: FloatArray, stride: number, off: number, add = false): void {
  for (let r = 0; r < src.length / width; r++) {
    if (idx[r]! < 0) continue;
    for (let k = 0, s = idx[r]! * stride + off; k < width; k++) dst[s + k] = (add ? dst[s + k]! : 0) + src[r * width + k]!;
  }
}

/** An n1×n2×w array as n2×n1×w: batch-first to time-major and back. */
function swap(a: FloatArray, n1: number, n2: number, w: number): FloatArray {
  const out = new (a.constructor as Float64ArrayConstructor)(a.length);
  for (let i = 0; i < n1; i++) for (let j = 0; j < n2; j++) out.set(a.subarray((i * n2 + j) * w, (i * n2 + j + 1) * w), (j * n1 + i) * w);
  return out;
}

export class Recurrent {
  readonly cell: string;
  readonly options: RecurrentConfig;
  readonly params: FloatArray;
  readonly grads: FloatArray;
  readonly parameters: readonly Parameter[];
  /** Dropout runs only in training mode. */
  training = true;
  private readonly plan: Plan;
  private readonly F: Float32ArrayConstructor | Float64ArrayConstructor;
  private readonly kernels = new Map<string, Run>();
  private readonly dropoutRng: Rng;
  private calls = 0;
  private last: Saved | null = null;

  /** The length of the flat parameter buffer, before construction. */
  static size(mod: KernelModule, options: RecurrentOptions): number {
    return planOf(mod, resolve(options)).total;
  }

  constructor(private readonly mod: KernelModule, options: RecurrentOptions) {
    const o = (this.options = resolve(options));
    this.cell = mod.spec.name;
    this.plan = planOf(mod, o);
    this.parameters = this.plan.parameters;
    this.F = o.precision === 32 ? Float32Array : Float64Array;
    const buffer = (what: string, a: FloatArray | undefined) => (a === undefined ? new this.F(this.plan.total) : this.check(what, a, this.plan.total, "Recurrent.size(…)"));
    this.params = buffer("params", options.params);
    this.grads = buffer("grads", options.grads);
    // each layer and direction by its cell's init rules; a projection U(±1/sqrt(fan-in)) as nn.Linear (torch/nn/modules/linear.py)
    this.plan.layers.forEach(({ proj, dirs }, l) => {
      dirs.forEach((s, d) => this.params.set(mod.initParams(s.sizes, seedFor(o.seed, 1, l, d)), s.offset));
      if (!proj) return;
      const rng = new Rng(seedFor(o.seed, 2, l)), k = 1 / Math.sqrt(proj.nIn);
      for (let i = proj.W.offset; i < proj.b.offset + proj.b.length; i++) this.params[i] = rng.uniform(-k, k);
    });
    this.dropoutRng = new Rng(seedFor(o.seed, 3));
  }

  /**
   * Run the layer on x (T×B×inputSize, or B×T×inputSize when batchFirst). output: every step's exposed
   * value, T×B×(directions·hidden) (B×T×… when batchFirst), the reverse direction in [hidden, 2·hidden),
   * zero past an example's length. final[state]: (layers·directions)×B×size at each example's last step.
   */
  forward(x: FloatArray, opts: { batch: number; steps: number; lengths?: ArrayLike<number> | null; initial?: Readonly<Arrays> }): { output: FloatArray; final: Arrays } {
    const o = this.options, F = this.F, H = o.hidden, dirs = o.bidirectional ? 2 : 1, spec = this.mod.spec, { input, exposed } = this.plan;
    const B = count("forward: batch", opts?.batch), T = count("forward: steps", opts?.steps);
    this.check("x", x, T * B * o.inputSize, `${o.batchFirst ? "batch×steps" : "steps×batch"}×inputSize = ${o.batchFirst ? `${B}×${T}` : `${T}×${B}`}×${o.inputSize}`);
    const batch = batchOf(B, T, opts.lengths, dirs), { order, segments } = batch;
    const initial = this.states("initial", opts.initial, B), final = this.states("final", undefined, B);
    const saved: Saved = { batch, below: [], masks: [], runs: [] };
    const call = ++this.calls;
    this.last = null; // a forward that fails part way leaves no backward to run
    let below = o.batchFirst ? swap(x, B, T, o.inputSize) : x;
    this.plan.layers.forEach(({ proj, dirs: slots }, l) => {
      saved.below.push(below);
      if (proj) below = this.project(below, proj, T * B);
      const out = new F(T * B * dirs * H), runs: Run[][] = [];
      slots.forEach((slot, d) => {
        const p = this.params.subarray(slot.offset, slot.offset + slot.length), slab = (l * dirs + d) * B;
        const dirRuns: Run[] = [];
        runs.push(dirRuns);
        segments.forEach((seg, s) => {
          const steps = seg.end - seg.start, run = this.kernel(l, d, seg.bb, steps, seg.use, call), next = seg.next;
          gather(below, slot.sizes[input.size]!, 0, seg.rows[d]!, run.inputs[input.name]!, slot.sizes[input.size]!);
          for (const st of spec.states) {
            const n = slot.sizes[st.size]!, init = run.initial[st.name]!;
            if (s === 0) gather(initial[st.name]!, n, slab * n, seg.idx.map((e) => (e < 0 ? -1 - order[0]! : e)), init, n);
            else {
              // the state the previous call ended in, for the examples still running (a prefix of its batch); padding rows copy the first
              const prev = segments[s - 1]!, from = (prev.end - prev.start - 1) * prev.bb * n;
              init.set(dirRuns[s - 1]!.out[st.name]!.subarray(from, from + seg.b * n));
              for (let j = seg.b; j < seg.bb; j++) init.copyWithin(j * n, 0, n);
            }
          }
          run.kernel.forward(p, run.inputs, run.initial, run.out);
          scatter(run.out[exposed.name]!, H, seg.rows[d]!, out, dirs * H, d * H);
          // the examples whose last step this is: their final state
          for (const st of spec.states) {
            const n = slot.sizes[st.size]!, lastStep = (steps - 1) * seg.bb * n;
            scatter(run.out[st.name]!.subarray(lastStep + next * n, lastStep + seg.b * n), n, order.subarray(next, seg.b), final[st.name]!, n, slab * n);
          }
          dirRuns.push(run);
        });
      });
      saved.runs.push(runs);
      // inverted dropout (torch/nn/functional.py dropout): kept values scaled by 1/(1 - p), so evaluation needs no scaling
      let mask: FloatArray | null = null;
      if (l < o.layers - 1 && this.training && o.dropout > 0) {
        mask = new F(out.length);
        for (let i = 0; i < out.length; i++) out[i]! *= mask[i] = this.dropoutRng.next() < o.dropout ? 0 : 1 / (1 - o.dropout);
      }
      saved.masks.push(mask);
      below = out;
    });
    this.evict(call);
    this.last = saved;
    return { output: o.batchFirst ? swap(below, T, B, dirs * H) : below, final };
  }

  /**
   * Backpropagate through the last forward: dOutput has the output's layout, dFinal[state] the final's.
   * ADDS the parameter gradients into `grads`; dInput has x's layout, dInitial[state] the initial's.
   */
  backward(dOutput: FloatArray, dFinal?: Readonly<Arrays>): { dInput: FloatArray; dInitial: Arrays } {
    const saved = this.last;
    if (!saved) throw new LayerError("backward needs a forward first: it backpropagates through the last forward");
    const o = this.options, F = this.F, H = o.hidden, dirs = o.bidirectional ? 2 : 1, spec = this.mod.spec, { input, exposed } = this.plan;
    const { B, T, order, segments } = saved.batch;
    this.check("dOutput", dOutput, T * B * dirs * H, `the output's shape, ${o.batchFirst ? `${B}×${T}` : `${T}×${B}`}×${dirs * H}`);
    const dF = this.states("dFinal", dFinal, B), dInitial = this.states("dInitial", undefined, B);
    let dY = o.batchFirst ? swap(dOutput, B, T, dirs * H) : dOutput;
    for (let l = o.layers - 1; l >= 0; l--) {
      const { proj, dirs: slots } = this.plan.layers[l]!, width = slots[0]!.sizes[input.size]!, mask = saved.masks[l];
      if (mask) dY = dY.map((v, i) => v * mask[i]!);
      const dIn = new F(T * B * width);
      slots.forEach((slot, d) => {
        const slab = (l * dirs + d) * B;
        let later: Run | null = null;
        for (let s = segments.length - 1; s >= 0; s--) {
          const seg = segments[s]!, run = saved.runs[l]![d]![s]!, next = seg.next;
          for (const u of Object.values(run.upstream)) u.fill(0);
          gather(dY, dirs * H, d * H, seg.rows[d]!, run.upstream[exposed.name]!, H, false, "zero");
          for (const st of spec.states) {
            // at the segment's last step: the gradient of the next segment's initial state, and dFinal for the examples that end here
            const n = slot.sizes[st.size]!, up = run.upstream[st.name]!, lastStep = (seg.end - seg.start - 1) * seg.bb * n;
            if (later) for (let i = 0; i < next * n; i++) up[lastStep + i]! += later.grads.initial[st.name]![i]!;
            gather(dF[st.name]!, n, slab * n, order.subarray(next, seg.b), up.subarray(lastStep + next * n, lastStep + seg.b * n), n, true);
          }
          run.kernel.backward(this.params.subarray(slot.offset, slot.offset + slot.length), run.inputs, run.initial, run.out, run.upstream, run.grads);
          for (let i = 0; i < slot.length; i++) this.grads[slot.offset + i]! += run.grads.params[i]!;
          scatter(run.grads.inputs[input.name]!, width, seg.rows[d]!, dIn, width, 0, true);
          later = run;
        }
        for (const st of spec.states) scatter(later!.grads.initial[st.name]!, slot.sizes[st.size]!, segments[0]!.idx, dInitial[st.name]!, slot.sizes[st.size]!, slab * slot.sizes[st.size]!);
      });
      dY = proj ? this.projectBack(saved.below[l]!, dIn, proj, T * B) : dIn;
    }
    return { dInput: o.batchFirst ? swap(dY, T, B, o.inputSize) : dY, dInitial };
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /** Release every cached kernel (and its worker threads' memory); a later forward creates them again. */
  dispose(): void {
    for (const r of this.kernels.values()) r.kernel.dispose();
    this.kernels.clear();
    this.last = null;
  }

  /** The kernel of layer l, direction d for batch b and T steps (the use-th of that shape in one forward): cached, most recently used last. */
  private kernel(l: number, d: number, b: number, T: number, use: number, call: number): Run {
    const key = `${l}/${d}/${b}/${T}/${use}`, cached = this.kernels.get(key);
    if (cached) {
      this.kernels.delete(key);
      this.kernels.set(key, cached);
      cached.used = call;
      return cached;
    }
    const { sizes, length } = this.plan.layers[l]!.dirs[d]!, spec = this.mod.spec, F = this.F, o = this.options;
    const options: KernelOptions = { ...(o.backend && { backend: o.backend }), ...(o.threads && { threads: o.threads }) };
    const kernel = (o.precision === 32 ? this.mod.createKernel32(sizes, b, T, options) : this.mod.createKernel64(sizes, b, T, options)) as Kernel<FloatArray>;
    const arrays = (vs: readonly NamedSize[], rows: number): Arrays => Object.fromEntries(vs.map((v) => [v.name, new F(rows * sizes[v.size]!)]));
    const values = [...spec.states, ...spec.outputs];
    const run: Run = {
      kernel, inputs: arrays(spec.inputs, T * b), initial: arrays(spec.states, b), out: arrays(values, T * b), upstream: arrays(values, T * b),
      grads: { params: new F(length), inputs: arrays(spec.inputs, T * b), initial: arrays(spec.states, b) }, used: call,
    };
    this.kernels.set(key, run);
    return run;
  }

  /** Dispose the least recently used kernels past KEEP_KERNELS, never one the last forward used (its backward needs them). */
  private evict(call: number): void {
    for (const [key, r] of this.kernels) {
      if (this.kernels.size <= KEEP_KERNELS || r.used === call) break;
      r.kernel.dispose();
      this.kernels.delete(key);
    }
  }

  /** Y = X·Wᵀ + b over `rows` rows (nn.Linear). */
  private project(X: FloatArray, proj: Projection, rows: number): FloatArray {
    return dense(X, this.params, proj.W, proj.b, rows, proj.nIn, this.options.hidden, new this.F(rows * this.options.hidden));
  }


  /** Adds dW = dYᵀ·X and db = Σ_rows dY into grads; returns dX = dY·W. */
  private projectBack(X: FloatArray, dY: FloatArray, proj: Projection, rows: number): FloatArray {
    return denseBack(X, dY, this.params, this.grads, proj.W, proj.b, rows, proj.nIn, this.options.hidden, new this.F(rows * proj.nIn));
  }


  /** Per state, (layers·directions)×B×size: the given arrays checked, zeros for absent ones. */
  private states(what: string, given: Readonly<Arrays> | undefined = {}, B: number): Arrays {
    const spec = this.mod.spec, n = this.options.layers * (this.options.bidirectional ? 2 : 1);
    if (given === null || typeof given !== "object") throw new LayerError(`${what} must be an object of arrays by state name (${spec.states.map((s) => s.name).join(", ")})`);
    for (const k of Object.keys(given))
      if (!spec.states.some((s) => s.name === k)) throw new LayerError(`${what}: "${k}" is not a state of cell "${this.cell}" (its states: ${spec.states.map((s) => s.name).join(", ")})`);
    return Object.fromEntries(spec.states.map((s) => {
      const size = this.plan.layers[0]!.dirs[0]!.sizes[s.size]!, length = n * B * size, a = given[s.name];
      return [s.name, a === undefined ? new this.F(length) : this.check(`${what}.${s.name}`, a, length, `(layers·directions)×batch×${s.size} = ${n}×${B}×${size}`)];
    }));
  }

  private check(what: string, a: unknown, length: number, shape: string): FloatArray {
    if (!(a instanceof this.F)) {
      const got = a === undefined || a === null ? String(a) : (a as object).constructor?.name ?? typeof a;
      throw new LayerError(`${what} must be a ${this.F.name} (precision ${this.options.precision}), got ${got}`);
    }
    if (a.length !== length) throw new LayerError(`${what} must have length ${length} (${shape}), got ${a.length}`);
    return a;
  }
}

/**
 * A dense layer over `rows` rows, Y = X·Wᵀ + b (X rows×nIn; W nOut×nIn and b nOut in `p` at their
 * offsets), written into Y. The input projection here and Model's readout are this layer.
 */
export function dense(X: FloatArray, p: FloatArray, W: Parameter, b: Parameter, rows: number, nIn: number, nOut: number, Y: FloatArray): FloatArray {
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < nOut; o++) {
      let s = p[b.offset + o]!;
      for (let i = 0; i < nIn; i++) s += X[r * nIn + i]! * p[W.offset + o * nIn + i]!;
      Y[r * nOut + o] = s;
    }
  return Y;
}

/** dense's backward: ADDS dW = dYᵀ·X and db = Σ_rows dY into `g`, and dY·W into dX (zeros on entry); returns dX. */
export function denseBack(X: FloatArray, dY: FloatArray, p: FloatArray, g: FloatArray, W: Parameter, b: Parameter, rows: number, nIn: number, nOut: number, dX: FloatArray): FloatArray {
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < nOut; o++) {
      const d = dY[r * nOut + o]!;
      if (d === 0) continue;
      g[b.offset + o]! += d;
      for (let i = 0; i < nIn; i++) {
        g[W.offset + o * nIn + i]! += d * X[r * nIn + i]!;
        dX[r * nIn + i]! += d * p[W.offset + o * nIn + i]!;
      }
    }
  return dX;
}

// Training a Model as Keras's fit / evaluate / predict do, over the loop PyTorch users write by hand:
// per batch zero the grads, forward, loss, backward, clip by global norm, set the scheduled learning
// rate, optimizer step; per epoch score the validation data, stop early when it stops improving.
//
// Data is either a Dataset (nn/data.ts: one sequence and target per example, any lengths), which is
// checked once, shuffled from the seed every epoch and cut into padded batches with their lengths,
// or an iterable (sync or async) of ready Batches, iterated again each epoch.
import type { FloatArray } from "../runtime/kernel.ts";
import { Rng } from "../runtime/rng.ts";
import type { Dataset, Sequence } from "./data.ts";
import { type LossName, correct, lossAndGrad, stepWeights } from "./loss.ts";
import type { Model } from "./model.ts";
import { type Optimizer, type OptimizerConfig, adam, clipFactor, makeOptimizer } from "./optim.ts";
import type { Schedule } from "./schedule.ts";

/** Data or settings that cannot train (a user's mistake), or a run whose loss went non-finite. */
export class FitError extends Error {}

/** A ready batch, in the model's layouts. */
export interface Batch {
  /** steps×batch×features, or batch×steps×features when the model is batchFirst. */
  readonly x: FloatArray;
  readonly batch: number;
  readonly steps: number;
  /** Each example's length in [1, steps]; absent: all run every step. */
  readonly lengths?: ArrayLike<number>;
  /** Per row of the model's output (an example at "last", a step at "every"): a class index (crossEntropy) or `outputs` numbers (mse). */
  readonly y: ArrayLike<number>;
}

export type Data = Dataset | Iterable<Batch> | AsyncIterable<Batch>;

export interface FitOptions {
  /** Passes over the data; default 10. */
  readonly epochs?: number;
  /** Examples per batch (Dataset only); default 32. */
  readonly batchSize?: number;
  /** Default: "crossEntropy" when the targets are class indices and the model has several outputs, else "mse". */
  readonly loss?: LossName;
  /** A config (nn/optim.ts sgd, adam, adamw) or an optimizer whose state carries on; default adam(). */
  readonly optimizer?: OptimizerConfig | Optimizer;
  /** The learning rate of each update, by the optimizer's update count (nn/schedule.ts). */
  readonly schedule?: Schedule;
  /** Clip the gradient to this global norm; default 0, no clipping. */
  readonly clip?: number;
  /** Shuffle a Dataset each epoch; default true. */
  readonly shuffle?: boolean;
  readonly seed?: number;
  /** Scored after every epoch: its loss, and accuracy for crossEntropy. */
  readonly validation?: Data;
  /** Stop after this many epochs in a row without a lower validation loss (training loss without validation), as Keras's EarlyStopping. */
  readonly patience?: number;
  /** At the end, put back the parameters of the best epoch; default true when patience is set. */
  readonly restoreBest?: boolean;
  readonly onProgress?: (p: Progress) => void;
}

/** One epoch's record. */
export interface Progress {
  readonly epoch: number;
  /** Optimizer updates so far. */
  readonly step: number;
  /** Mean training loss over the epoch's batches. */
  readonly loss: number;
  readonly valLoss: number | null;
  /** Validation accuracy for crossEntropy, else null. */
  readonly metric: number | null;
}

export interface FitResult {
  readonly history: readonly Progress[];
  readonly bestEpoch: number;
  readonly stoppedEarly: boolean;
  readonly optimizer: Optimizer;
}

const isDataset = (d: Data): d is Dataset => "x" in d && "y" in d && Array.isArray((d as Dataset).x);
const isList = (v: unknown): v is ArrayLike<unknown> => Array.isArray(v) || ArrayBuffer.isView(v);
const count = (what: string, v: unknown, min: number): number => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new FitError(`${what} must be an integer >= ${min}, got ${String(v)}`);
  return v;
};

/** The loss for `data` when none is given: class indices (a number per example or step) with several outputs mean crossEntropy. */
function lossOf(model: Model, data: Dataset, given?: LossName): LossName {
  if (given !== undefined) {
    if (given !== "mse" && given !== "crossEntropy") throw new FitError(`loss must be "mse" or "crossEntropy", got ${JSON.stringify(given)}`);
    return given;
  }
  const y0 = data.y[0], scalar = model.at === "last" ? typeof y0 === "number" : isList(y0) && typeof y0[0] === "number";
  return scalar && model.options.outputs > 1 ? "crossEntropy" : "mse";
}

interface Example {
  readonly x: Float64Array;
  readonly steps: number;
  /** Target values per row: 1 (a class index) or outputs numbers, per step at "every". */
  readonly y: Float64Array;
}

/** Every example checked and flattened (targets too unless loss is null); the first fault is a FitError naming its index. */
function examples(model: Model, data: Dataset, loss: LossName | null, name: string): Example[] {
  const I = model.recurrent.options.inputSize, O = model.options.outputs, every = model.at === "every";
  if (!Array.isArray(data.x) || !Array.isArray(data.y)) throw new FitError(`${name}: x and y must be lists, one item per example`);
  if (loss && data.x.length !== data.y.length) throw new FitError(`${name}: y has ${data.y.length} items, x ${data.x.length}: one target per example`);
  if (data.x.length === 0) throw new FitError(`${name}: there are no examples`);
  if (loss === "mse" && O === 1 && data.y.some((t) => typeof t === "number")) data = { ...data, y: data.y.map((t) => (typeof t === "number" ? [t] : t)) };
  return data.x.map((seq: Sequence, n) => {
    const at = `${name}: x[${n}]`;
    let x: Float64Array;
    if (ArrayBuffer.isView(seq)) {
      if (seq.length === 0 || seq.length % I) throw new FitError(`${at} has ${seq.length} numbers, not a positive multiple of the model's ${I} features`);
      x = Float64Array.from(seq);
    } else {
      if (!Array.isArray(seq) || seq.length === 0) throw new FitError(`${at} has no steps (its length is 0); every sequence needs at least one`);
      x = new Float64Array(seq.length * I);
      seq.forEach((s: unknown, t) => {
        if (!isList(s) || s.length !== I) throw new FitError(`${at}[${t}] has ${isList(s) ? s.length : "no list of"} features; the model takes ${I}`);
        x.set(s as ArrayLike<number>, t * I);
      });
    }
    const bad = x.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new FitError(`${at}, step ${Math.floor(bad / I)}, feature ${bad % I} is ${x[bad]} (not a finite number)`);
    const steps = x.length / I, yt = data.y[n], yAt = `${name}: y[${n}]`;
    if (!loss) return { x, steps, y: new Float64Array(0) };
    const row = (v: unknown, where: string): number[] => {
      if (loss === "crossEntropy") {
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= O) throw new FitError(`${where} is ${typeof v === "number" ? v : JSON.stringify(v)}: a class must be an integer in [0, ${O})`);
        return [v];
      }
      if (!isList(v) || v.length !== O) throw new FitError(`${where} must be a list of ${O} numbers (the model's outputs), got ${isList(v) ? `${v.length} numbers` : JSON.stringify(v)}`);
      const k = Array.from(v as ArrayLike<unknown>).findIndex((u) => typeof u !== "number" || !Number.isFinite(u));
      if (k >= 0) throw new FitError(`${where}[${k}] is ${String((v as ArrayLike<unknown>)[k])} (not a finite number)`);
      return Array.from(v as ArrayLike<number>);
    };
    if (!every) return { x, steps, y: Float64Array.from(row(yt, yAt)) };
    const perStep = loss === "mse" && O === 1 && isList(yt) && typeof yt[0] === "number" ? Array.from(yt as ArrayLike<number>, (v) => [v]) : yt;
    if (!isList(perStep) || perStep.length !== steps) throw new FitError(`${yAt} must have one target per step: x[${n}] has ${steps} steps, y[${n}] ${isList(perStep) ? perStep.length : "is not a list"}`);
    return { x, steps, y: Float64Array.from(Array.from(perStep as ArrayLike<unknown>, (v, t) => row(v, `${yAt}[${t}]`)).flat()) };
  });
}

/** Examples `ids` as one padded batch in the model's layouts. */
function batchOf(model: Model, ex: readonly Example[], ids: ArrayLike<number>): Batch {
  const I = model.recurrent.options.inputSize, bf = model.recurrent.options.batchFirst, B = ids.length;
  let T = 0;
  for (let b = 0; b < B; b++) T = Math.max(T, ex[ids[b]!]!.steps);
  const k = ex[ids[0]!]!.y.length / (model.at === "every" ? ex[ids[0]!]!.steps : 1); // 0 when predicting
  const x = new (model.params instanceof Float32Array ? Float32Array : Float64Array)(T * B * I), lengths = new Int32Array(B);
  const y = new Float64Array((model.at === "every" ? T * B : B) * k);
  for (let b = 0; b < B; b++) {
    const e = ex[ids[b]!]!;
    lengths[b] = e.steps;
    for (let t = 0; t < e.steps; t++) {
      const r = bf ? b * T + t : t * B + b;
      x.set(e.x.subarray(t * I, (t + 1) * I), r * I);
      if (model.at === "every") y.set(e.y.subarray(t * k, (t + 1) * k), r * k);
    }
    if (model.at === "last") y.set(e.y, b * k);
  }
  return { x, batch: B, steps: T, lengths, y };
}

/** A ready batch checked against the model: sizes, lengths and finite numbers. */
function checkBatch(model: Model, b: Batch, loss: LossName, at: string): void {
  const I = model.recurrent.options.inputSize, O = model.options.outputs;
  const B = count(`${at}: batch`, b?.batch, 1), T = count(`${at}: steps`, b.steps, 1);
  if (!isList(b.x) || b.x.length !== B * T * I) throw new FitError(`${at}: x must hold batch×steps×features = ${B}×${T}×${I} numbers, got ${isList(b.x) ? b.x.length : "no array"}`);
  if (b.lengths) for (let i = 0; i < B; i++) if (!Number.isInteger(b.lengths[i]) || b.lengths[i]! < 1 || b.lengths[i]! > T) throw new FitError(`${at}: lengths[${i}] is ${b.lengths[i]}; a length is an integer in [1, ${T}]`);
  const rows = model.at === "every" ? B * T : B, per = loss === "crossEntropy" ? 1 : O;
  if (!isList(b.y) || b.y.length !== rows * per) throw new FitError(`${at}: y must hold ${rows} rows × ${per} = ${rows * per} numbers for ${loss} at "${model.at}", got ${isList(b.y) ? b.y.length : "no array"}`);
  const bad = Array.prototype.findIndex.call(b.x, (v: number) => !Number.isFinite(v));
  if (bad >= 0) throw new FitError(`${at}: x[${bad}] is ${b.x[bad]} (not a finite number)`);
  const w = model.at === "every" ? stepWeights(B, T, b.lengths, model.recurrent.options.batchFirst) : null;
  for (let i = 0; i < b.y.length; i++) {
    const v = b.y[i]!, counted = !w || w[Math.floor(i / per)] !== 0; // padding rows may hold anything (an ignore index)
    if (counted && (loss === "crossEntropy" ? !(Number.isInteger(v) && v >= 0 && v < O) : !Number.isFinite(v))) throw new FitError(`${at}: y[${i}] is ${v}; ${loss === "crossEntropy" ? `a class is an integer in [0, ${O})` : "targets must be finite numbers"}`);
  }
}

/** Each epoch's batches: a Dataset shuffled and cut, or the iterable iterated again. */
async function* batches(model: Model, data: Data, lossFor: (b: Batch) => LossName, ex: Example[] | null, size: number, rng: Rng | null, name: string): AsyncGenerator<Batch> {
  if (ex) {
    const ids = Int32Array.from(ex.keys());
    if (rng)
      for (let i = ids.length - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
    for (let s = 0; s < ids.length; s += size) yield batchOf(model, ex, ids.subarray(s, s + size));
    return;
  }
  let n = 0;
  for await (const b of data as AsyncIterable<Batch>) {
    checkBatch(model, b, lossFor(b), `${name}, batch ${n++}`);
    yield b;
  }
}

/** The loss on one batch and its gradient dPred. */
function batchLoss(model: Model, b: Batch, loss: LossName): { pred: FloatArray; dPred: FloatArray; value: number; w: Float64Array | null } {
  const pred = model.forward(b.x, b), dPred = pred.slice();
  const w = model.at === "every" ? stepWeights(b.batch, b.steps, b.lengths, model.recurrent.options.batchFirst) : null;
  return { pred, dPred, w, value: lossAndGrad(loss, pred, b.y, w, model.options.outputs, dPred) };
}

/** The first batch's y length tells class indices from vectors when no loss is given. */
const guessLoss = (model: Model, b: Batch): LossName => (model.options.outputs > 1 && b?.y?.length === (model.at === "every" ? b.batch * b.steps : b.batch) ? "crossEntropy" : "mse");

export async function fit(model: Model, data: Data, options: FitOptions = {}): Promise<FitResult> {
  const o = options, epochs = count("epochs", o.epochs ?? 10, 1), size = count("batchSize", o.batchSize ?? 32, 1);
  const patience = o.patience === undefined ? null : count("patience", o.patience, 0), restoreBest = o.restoreBest ?? patience !== null;
  if (!((o.clip ?? 0) >= 0)) throw new FitError(`clip must be a number >= 0, got ${String(o.clip)}`);
  let loss: LossName | null = o.loss ?? null;
  const ex = isDataset(data) ? examples(model, data, (loss = lossOf(model, data, o.loss)), "data") : null;
  const val = o.validation;
  if (val && isDataset(val)) loss ??= lossOf(model, val, o.loss);
  const valEx = val && isDataset(val) ? examples(model, val, loss, "validation") : null;
  const opt = o.optimizer && "step" in o.optimizer ? o.optimizer : makeOptimizer(o.optimizer ?? adam(), model.params.length);
  if (opt.state && Object.values(opt.state).some((a) => a.length !== model.params.length)) throw new FitError(`the optimizer's state is for ${Object.values(opt.state)[0]!.length} parameters; the model has ${model.params.length}`);
  const history: Progress[] = [], wasTraining = model.training;
  let best = Infinity, bestEpoch = 0, bestParams: FloatArray | null = null, waited = 0, stoppedEarly = false;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    model.training = true;
    let sum = 0, n = 0;
    const rng = o.shuffle === false ? null : new Rng(Math.imul((o.seed ?? 0) ^ 0x66697400, 0x9e3779b1) + epoch);
    for await (const b of batches(model, data, (b) => (loss ??= guessLoss(model, b)), ex, size, rng, "data")) {
      if (o.schedule) opt.lr = o.schedule(opt.t);
      model.zeroGrad();
      const { value, dPred } = batchLoss(model, b, loss!);
      if (!Number.isFinite(value)) throw new FitError(`training diverged: epoch ${epoch}, batch ${n}: the loss is ${value}`);
      model.backward(dPred);
      const { norm, scale } = clipFactor(model.grads, o.clip ?? 0);
      if (!Number.isFinite(norm)) throw new FitError(`training diverged: epoch ${epoch}, batch ${n}: the gradient's norm is ${norm} (the loss was ${value})`);
      opt.step(model.params, model.grads, scale);
      sum += value;
      n++;
    }
    if (n === 0) throw new FitError(`epoch ${epoch} had no batches${epoch > 1 ? ": an iterator is used up after one pass; pass an iterable that starts again (an array, or an object with [Symbol.asyncIterator]), or epochs: 1" : ""}`);
    const v = val ? await score(model, val, loss!, valEx, size, "validation") : null;
    const p: Progress = { epoch, step: opt.t, loss: sum / n, valLoss: v?.loss ?? null, metric: v?.accuracy ?? null };
    history.push(p);
    const monitored = v ? v.loss : p.loss;
    if (monitored < best) (best = monitored), (bestEpoch = epoch), (bestParams = restoreBest ? model.params.slice() : null), (waited = 0);
    else waited++;
    o.onProgress?.(p);
    if (patience !== null && waited >= patience) {
      stoppedEarly = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 0)); // let a page or a signal handler run between epochs
  }
  if (restoreBest && bestParams) model.params.set(bestParams);
  model.training = wasTraining;
  return { history, bestEpoch, stoppedEarly, optimizer: opt };
}

async function score(model: Model, data: Data, given: LossName | null, ex: Example[] | null, size: number, name: string): Promise<{ loss: number; accuracy: number | null }> {
  const was = model.training;
  model.training = false;
  let sum = 0, rows = 0, right = 0, loss = given;
  try {
    for await (const b of batches(model, data, (b) => (loss ??= guessLoss(model, b)), ex, size, null, name)) {
      const { pred, value, w } = batchLoss(model, b, loss!);
      const c = correct(pred, loss === "crossEntropy" ? b.y : [], w, model.options.outputs);
      sum += value * c.count;
      rows += c.count;
      right += c.correct;
    }
  } finally {
    model.training = was;
  }
  if (rows === 0) throw new FitError(`${name} has no examples`);
  return { loss: sum / rows, accuracy: (loss as LossName) === "crossEntropy" ? right / rows : null };
}

/** Mean loss over `data` (weighted by the examples, or steps, each batch holds), and accuracy for crossEntropy. */
export async function evaluate(model: Model, data: Data, o: { loss?: LossName; batchSize?: number } = {}): Promise<{ loss: number; accuracy: number | null }> {
  const size = count("batchSize", o.batchSize ?? 32, 1);
  if (isDataset(data)) {
    const loss = lossOf(model, data, o.loss);
    return score(model, data, loss, examples(model, data, loss, "data"), size, "data");
  }
  return score(model, data, o.loss ?? null, null, size, "data");
}

/** The readout's raw output (logits for crossEntropy) per sequence: outputs numbers at "last", one row per own step at "every". */
export function predict(model: Model, x: readonly Sequence[], o: { batchSize?: number } = {}): number[][] | number[][][] {
  const size = count("batchSize", o.batchSize ?? 32, 1), O = model.options.outputs, every = model.at === "every";
  const ex = examples(model, { x, y: [] }, null, "x");
  const was = model.training, bf = model.recurrent.options.batchFirst, out: unknown[] = [];
  model.training = false;
  try {
    for (let s = 0; s < ex.length; s += size) {
      const ids = Int32Array.from({ length: Math.min(size, ex.length - s) }, (_, i) => s + i), b = batchOf(model, ex, ids), pred = model.forward(b.x, b);
      for (let i = 0; i < b.batch; i++) {
        const row = (r: number) => Array.from(pred.subarray(r * O, (r + 1) * O));
        out.push(every ? Array.from({ length: ex[s + i]!.steps }, (_, t) => row(bf ? i * b.steps + t : t * b.batch + i)) : row(i));
      }
    }
  } finally {
    model.training = was;
  }
  return out as number[][] | number[][][];
}

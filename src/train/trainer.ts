// The training loop of the tasks: a task's batches through the library's Model (nn/model.ts), a loss,
// clipping by global norm and an optimizer (nn/optim.ts), as fit() runs them on a user's data; a
// fixed evaluation set scored every `evalEvery` steps; checkpoints.
//
// Everything random comes from the run's seed: each layer's initialisation, the evaluation set, and
// the batch of step s (drawn from (seed, s) alone). A checkpoint holds the parameters and the
// optimizer's state bit for bit and the loop's counters, so a resumed run continues exactly as an
// uninterrupted one (same batches, same float operations in the same order).
//
// A step whose loss, gradient or updated parameters are not finite stops the run with a
// DivergedError naming the step and the first bad number; such parameters are never saved. So does
// a loss that runs away while staying finite (see DIVERGENCE).
import { type Checkpoint, CheckpointError, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { lossAndGrad } from "./loss.ts";
import { checkTrainMeta } from "./meta.ts";
import { type CellKernels, type FloatArray, type Model, ModelError, type Parameter, type Precision, buildModel } from "./model.ts";
import { type Optimizer, type OptimizerConfig, clipFactor, makeOptimizer } from "./optim.ts";
import { streamRng } from "./seeds.ts";
import type { Batch, Task, TaskOptions } from "./task.ts";
import { makeTask } from "./tasks.ts";

export interface TrainConfig {
  /** The cell as the user named it: a name in dsl/ or a path. */
  readonly cell: string;
  readonly task: TaskOptions;
  readonly hidden: number;
  readonly layers: number;
  /** Sizes of the cell besides its input and hidden sizes. */
  readonly sizes?: Readonly<Record<string, number>>;
  readonly B: number;
  /** Train until this step. */
  readonly steps: number;
  readonly seed: number;
  readonly precision: Precision;
  readonly optimizer: OptimizerConfig;
  /** Clip the gradient to this global norm (0: no clipping). */
  readonly clip: number;
  readonly evalEvery: number;
  /** Examples in the fixed evaluation set (rounded up to whole evaluation batches). */
  readonly evalSize: number;
  /** The metric's value that counts as solved, for "steps to reach the threshold". */
  readonly threshold: number;
  /** The parameter file layer 1 started from (`train --init`), for the record; absent: from the seed. */
  readonly init?: string;
}

/** One line of the log, at each evaluation. */
export interface LogRow {
  readonly step: number;
  /** Seconds spent in training steps so far (evaluation and checkpoints not counted). */
  readonly seconds: number;
  /** Mean training loss over the steps since the previous row (null at step 0). */
  readonly trainLoss: number | null;
  readonly evalLoss: number;
  readonly metric: number;
}

/** What a checkpoint's header holds besides the arrays. */
export interface TrainMeta {
  readonly config: TrainConfig;
  readonly cellName: string;
  /** Every parameter's name and length, to refuse a checkpoint of another model. */
  readonly params: readonly (readonly [string, number])[];
  readonly step: number;
  readonly seconds: number;
  readonly history: readonly LogRow[];
  readonly lossSum: number;
  readonly lossCount: number;
  readonly reachedAt: number | null;
  readonly optimizerSteps: number;
}

const EVAL_BATCH = 128;

/**
 * When a run whose numbers are all finite has diverged. Adam's step is normalised (about lr per
 * parameter whatever the gradient's size: torch/optim/adam.py, Kingma & Ba 2015, section 2.1), so
 * `--lr 1e6 --clip 0` keeps every parameter finite while the loss climbs to 1e13 and wanders there;
 * non-finite numbers alone never stop it. The rule: the evaluation loss (on the fixed evaluation
 * set, so it does not vary with the batch) is above `factor` times the reference at `evaluations`
 * evaluations in a row. The reference is the larger of the loss at step 0 (the model as initialised,
 * or as --init gave it) and the loss of a model that outputs zeros (for MSE the targets' mean
 * square, for cross-entropy uniform guessing: the log of the number of classes), so neither a good
 * start nor a bad one moves the bar below what outputting nothing scores. A model a hundred times
 * worse than both for three evaluations running is not learning slowly: its updates are running away.
 * While the last evaluation is above the bar, periodic checkpoints are not written, so the last one
 * kept is the last good one.
 */
export const DIVERGENCE = { factor: 100, evaluations: 3 } as const;

/** A checkpoint of a model laid out as before the tasks ran on nn/model.ts: it cannot be continued. */
export class OldLayoutError extends CheckpointError {}

/** A run that stopped because a number went non-finite: at which step, and what. */
export class DivergedError extends Error {
  constructor(readonly step: number, readonly what: string) {
    super(`training diverged at step ${step}: ${what}`);
  }
}

/** The first non-finite element of `a` as "name[i] = NaN", naming the parameter slice it falls in. */
function firstNonFinite(a: ArrayLike<number>, slices: readonly Parameter[] | null, name: string): string | null {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (Number.isFinite(v)) continue;
    const s = slices?.find((q) => i >= q.offset && i < q.offset + q.length);
    return s ? `${s.name}[${i - s.offset}] = ${v}` : `${name}[${i}] = ${v}`;
  }
  return null;
}

/** What differs between the parameter arrays a checkpoint lists and the ones the model has now. */
function paramsDiff(saved: readonly (readonly [string, number])[], now: readonly Parameter[]): string {
  const had = new Map(saved), has = new Map(now.map((p) => [p.name, p.length]));
  const d: string[] = [];
  for (const [n, l] of saved) if (!has.has(n)) d.push(`${n} (${l} numbers) is gone`);
  for (const [n, l] of has) if (!had.has(n)) d.push(`${n} (${l} numbers) is new`);
  for (const [n, l] of saved) if (has.has(n) && has.get(n) !== l) d.push(`${n} has ${l} numbers in the checkpoint, ${has.get(n)} now`);
  return d.length > 4 ? `${d.slice(0, 4).join("; ")}; and ${d.length - 4} more` : d.join("; ") || "the arrays are in another order";
}

export class Trainer {
  readonly task: Task;
  readonly model: Model;
  readonly optimizer: Optimizer;
  step = 0;
  seconds = 0;
  history: LogRow[] = [];
  /** First evaluated step whose metric met the threshold. */
  reachedAt: number | null = null;
  private lossSum = 0;
  private lossCount = 0;
  /** Set when an update left a non-finite number: such a state is never saved. */
  private diverged = false;
  private readonly evalSet: Batch[];
  /** The evaluation loss of a model that outputs zeros (see DIVERGENCE). */
  private readonly zeroLoss: number;

  constructor(readonly mod: CellKernels, readonly config: TrainConfig) {
    this.task = makeTask(config.task);
    const t = this.task;
    this.model = buildModel(mod, { layers: config.layers, hidden: config.hidden, inputSize: t.inputSize, outputSize: t.outputSize, at: t.at, sizes: config.sizes, precision: config.precision, seed: config.seed });
    const eb = Math.min(EVAL_BATCH, config.evalSize);
    this.evalSet = Array.from({ length: Math.ceil(config.evalSize / eb) }, (_, i) => t.batch(streamRng(config.seed, "eval", i), eb));
    this.optimizer = makeOptimizer(config.optimizer, this.model.params.length);
    this.zeroLoss = this.evalLossOf((batch) => new Float64Array(batch.y.length)).loss;
  }

  /** The model's output on a task's batch (T×B×features, as the model runs time-major). */
  private forward(batch: Batch): FloatArray {
    const x = this.model.params instanceof Float32Array ? Float32Array.from(batch.x) : batch.x;
    return this.model.forward(x, { batch: batch.B, steps: this.task.length });
  }

  /** The evaluation set's loss, and its metric's sum and count, for the outputs `predict` gives for each batch. */
  private evalLossOf(predict: (batch: Batch) => FloatArray): { loss: number; sum: number; count: number } {
    const task = this.task;
    let lossSum = 0, weight = 0, sum = 0, count = 0;
    for (const batch of this.evalSet) {
      const pred = predict(batch), grad = new Float64Array(pred.length);
      const w = batch.w ? batch.w.reduce((a, b) => a + b, 0) : batch.B;
      lossSum += lossAndGrad(task.loss, pred, batch.y, batch.w, task.outputSize, grad) * w;
      weight += w;
      const s = task.metric.score(pred, batch);
      sum += s.sum;
      count += s.count;
    }
    return { loss: lossSum / weight, sum, count };
  }

  /** The bar of DIVERGENCE: `factor` times the larger of the loss at step 0 and a zero output's. */
  divergenceBar(): number {
    const first = this.history[0];
    return DIVERGENCE.factor * Math.max(this.zeroLoss, first?.step === 0 ? first.evalLoss : 0);
  }

  get evalExamples(): number {
    return this.evalSet.length * this.evalSet[0]!.B;
  }

  /** One update on the batch of the current step; returns its loss. */
  trainStep(): number {
    const t0 = performance.now();
    const { model, task, config } = this;
    const batch = task.batch(streamRng(config.seed, "batch", this.step), config.B);
    model.zeroGrad(); // backward adds into the gradient
    const pred = this.forward(batch), dPred = pred.slice();
    const loss = lossAndGrad(task.loss, pred, batch.y, batch.w, task.outputSize, dPred);
    const at = this.step + 1;
    if (!Number.isFinite(loss)) throw new DivergedError(at, `the training loss is ${loss} (the parameters were still finite)`);
    model.backward(dPred);
    const { norm, scale } = clipFactor(model.grads, config.clip);
    const badGrad = Number.isFinite(norm) ? null : firstNonFinite(model.grads, model.parameters, "gradient");
    if (badGrad) throw new DivergedError(at, `the gradient is not finite: ${badGrad} (the loss was ${loss})`);
    this.optimizer.step(model.params, model.grads, scale);
    const badParam = firstNonFinite(model.params, model.parameters, "params") ?? Object.entries(this.optimizer.state).reduce<string | null>((b, [k, v]) => b ?? firstNonFinite(v, null, `optimizer.${k}`), null);
    if (badParam) {
      this.diverged = true;
      throw new DivergedError(at, `the update made ${badParam} (the loss was ${loss}, the gradient's norm ${norm})`);
    }
    this.step++;
    this.lossSum += loss;
    this.lossCount++;
    this.seconds += (performance.now() - t0) / 1000;
    return loss;
  }

  /** Loss and metric over the fixed evaluation set. */
  evaluate(): { loss: number; metric: number } {
    const { model, task } = this;
    model.training = false;
    let e;
    try {
      e = this.evalLossOf((batch) => this.forward(batch));
    } finally {
      model.training = true;
    }
    const r = { loss: e.loss, metric: e.sum / e.count };
    if (!Number.isFinite(r.loss) || !Number.isFinite(r.metric)) throw new DivergedError(this.step, `the evaluation's loss is ${r.loss} and its ${task.metric.name} ${r.metric} (the training loss was finite)`);
    return r;
  }

  /** Evaluate and append a row to the history. */
  logEval(): LogRow {
    const e = this.evaluate();
    const row: LogRow = { step: this.step, seconds: this.seconds, trainLoss: this.lossCount ? this.lossSum / this.lossCount : null, evalLoss: e.loss, metric: e.metric };
    this.history.push(row);
    this.lossSum = 0;
    this.lossCount = 0;
    const m = this.task.metric, met = m.better === "lower" ? e.metric <= this.config.threshold : e.metric >= this.config.threshold;
    if (met && this.reachedAt === null) this.reachedAt = this.step;
    this.checkRunaway();
    return row;
  }

  /** Whether the last evaluation is above the bar of DIVERGENCE. */
  private aboveBar(): boolean {
    const last = this.history.at(-1);
    return last !== undefined && last.evalLoss > this.divergenceBar();
  }

  /** Stop with a DivergedError when the last DIVERGENCE.evaluations evaluations were all above its bar. */
  private checkRunaway(): void {
    const { factor, evaluations } = DIVERGENCE;
    const bar = this.divergenceBar(), rows = this.history.slice(-evaluations);
    if (rows.length < evaluations || rows.some((r) => r.step === 0 || !(r.evalLoss > bar))) return;
    this.diverged = true; // finite, but not worth keeping: the last checkpoint stays the last good one
    const g = (x: number) => x.toPrecision(3);
    throw new DivergedError(rows[0]!.step, `the evaluation loss rose above ${factor} × ${g(bar / factor)} = ${g(bar)} (${factor} times the larger of the loss at step 0 and that of a model that outputs zeros) and stayed there for ${evaluations} evaluations: ${rows.map((r) => `${g(r.evalLoss)} at step ${r.step}`).join(", ")}; stopped at step ${this.step}`);
  }

  /**
   * Train until `config.steps`, evaluating every `evalEvery` steps (and at step 0 and the last).
   * Yields to the event loop every few milliseconds so a signal handler can ask it to stop; then it
   * returns "stopped" after a whole step.
   */
  async run(o: { shouldStop?: () => boolean; onStep?: (loss: number) => void; onEval?: (row: LogRow) => void; checkpoint?: { path: string; every: number } } = {}): Promise<"done" | "stopped"> {
    const evaluate = () => {
      const row = this.logEval();
      o.onEval?.(row);
    };
    if (this.history.length === 0) evaluate();
    let yielded = performance.now();
    while (this.step < this.config.steps) {
      if (o.shouldStop?.()) return "stopped";
      const loss = this.trainStep();
      o.onStep?.(loss);
      if (this.step % this.config.evalEvery === 0 || this.step === this.config.steps) evaluate();
      if (o.checkpoint && o.checkpoint.every > 0 && this.step % o.checkpoint.every === 0 && !this.aboveBar()) this.save(o.checkpoint.path);
      if (performance.now() - yielded > 20) {
        await new Promise((r) => setImmediate(r));
        yielded = performance.now();
      }
    }
    return "done";
  }

  // ---- checkpoints -----------------------------------------------------------------------------

  meta(): TrainMeta {
    return {
      config: this.config, cellName: this.model.cell, params: this.model.parameters.map((p) => [p.name, p.length] as const),
      step: this.step, seconds: this.seconds, history: this.history, lossSum: this.lossSum, lossCount: this.lossCount,
      reachedAt: this.reachedAt, optimizerSteps: this.optimizer.t,
    };
  }

  /** The cell's parameters in layer 1 ("l0.Wir", …; not its input projection "l0.proj.*"), by the cell's own names. */
  layer1(): { name: string; p: Parameter }[] {
    return this.model.parameters.filter((p) => p.name.startsWith("l0.") && !p.name.startsWith("l0.proj.")).map((p) => ({ name: p.name.slice("l0.".length), p }));
  }

  /** Start layer 1 from given parameters (a converted cell's, by the cell's own names); every array must have its length in this model. */
  initLayer1(params: Readonly<Record<string, ArrayLike<number>>>, from: string): void {
    const mine = this.layer1(), names = mine.map((q) => q.name);
    for (const n of Object.keys(params)) if (!names.includes(n)) throw new ModelError(`${from}: cell "${this.model.cell}" has no parameter ${n} (it has ${names.join(", ")})`);
    for (const { name: n, p } of mine) {
      const v = params[n];
      if (!v) throw new ModelError(`${from}: parameter ${n} is missing`);
      if (v.length !== p.length) throw new ModelError(`${from}: parameter ${n} has ${v.length} numbers; this run's layer 1 needs ${p.length}`);
      const bad = firstNonFinite(v, null, n);
      if (bad) throw new ModelError(`${from}: ${bad} is not finite`);
      this.model.params.set(v, p.offset);
    }
  }

  save(path: string): void {
    if (this.diverged) throw new CheckpointError(`${path}: not saved: the parameters are not finite (the run diverged)`);
    const sections: Record<string, FloatArray> = { params: this.model.params };
    for (const [k, v] of Object.entries(this.optimizer.state)) sections[`optimizer.${k}`] = v;
    writeCheckpoint(path, this.meta(), sections);
  }

  /** The trainer as a checkpoint left it; `steps` may extend the run. */
  /** `override.cell`: where the cell is now (the path the user gave), recorded in later checkpoints. */
  static restore(mod: CellKernels, ckpt: Checkpoint<TrainMeta>, path: string, override: { steps?: number; cell?: string } = {}): Trainer {
    const m = checkTrainMeta(path, ckpt.header.meta);
    if (override.steps !== undefined && override.steps < m.step) throw new CheckpointError(`${path}: the checkpoint is at step ${m.step}, past --steps ${override.steps}`);
    // Until the tasks ran on nn/model.ts, a model named its arrays layer1.Wir, …, input.W (for an input
    // projection); its parameters are laid out and initialised otherwise, so such a run cannot continue.
    if (m.params.some(([n]) => /^(layer\d+|input)\./.test(n)))
      throw new OldLayoutError(`${path}: written by an older cellforge, whose models laid out their parameters otherwise (layer1.Wir, … where models now have l0.Wir, …, as PyTorch names them); it cannot be continued by this one. Train afresh, or finish the run with the cellforge that wrote it`);
    let tr: Trainer;
    try {
      tr = new Trainer(mod, { ...m.config, cell: override.cell ?? m.config.cell, steps: override.steps ?? m.config.steps });
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      const c = m.config;
      throw new CheckpointError(`${path}: its run (cell "${m.cellName}", hidden ${c.hidden}, ${c.layers} layer${c.layers > 1 ? "s" : ""}, batch ${c.B}) needs more memory than this process can allocate (${e.message})`);
    }
    const now = tr.model.parameters, want = now.map((p) => `${p.name}:${p.length}`).join(" "), got = m.params.map(([n, l]) => `${n}:${l}`).join(" ");
    if (want !== got) {
      const c = m.config;
      throw new CheckpointError(`${path}: the checkpoint's model (cell "${m.cellName}", hidden ${c.hidden}, ${c.layers} layer${c.layers > 1 ? "s" : ""}, ${m.params.length} arrays) does not fit cell "${tr.model.cell}" as it is now (${now.length} arrays): ${paramsDiff(m.params, now)}. Was the cell changed since? Train afresh, or restore the cell as it was`);
    }
    const put = (name: string, into: FloatArray) => {
      const a = ckpt.sections.get(name);
      const kind = (x: FloatArray) => (x instanceof Float32Array ? "f32" : "f64");
      if (!a) throw new CheckpointError(`${path}: section ${name} is missing`);
      if (a.length !== into.length || a.constructor !== into.constructor) throw new CheckpointError(`${path}: section ${name} holds ${a.length} ${kind(a)} numbers; the model needs ${into.length} ${kind(into)}`);
      const bad = firstNonFinite(a, name === "params" ? tr.model.parameters : null, name);
      if (bad) throw new CheckpointError(`${path}: section ${name} is not finite: ${bad}; a checkpoint of a diverged run cannot be continued`);
      into.set(a);
    };
    put("params", tr.model.params);
    for (const [k, v] of Object.entries(tr.optimizer.state)) put(`optimizer.${k}`, v);
    tr.optimizer.t = m.optimizerSteps;
    tr.step = m.step;
    tr.seconds = m.seconds;
    tr.history = [...m.history];
    tr.lossSum = m.lossSum;
    tr.lossCount = m.lossCount;
    tr.reachedAt = m.reachedAt;
    return tr;
  }

  static read(path: string): Checkpoint<TrainMeta> {
    const c = readCheckpoint<unknown>(path);
    return { ...c, header: { ...c.header, meta: checkTrainMeta(path, c.header.meta) } };
  }
}

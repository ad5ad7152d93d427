// The training loop: a task's batches through a sequence model, a loss, clipping by global norm and
// an optimizer; a fixed evaluation set scored every `evalEvery` steps; checkpoints.
//
// Everything random comes from the run's seed: each layer's initialisation, the evaluation set, and
// the batch of step s (drawn from (seed, s) alone). A checkpoint holds the parameters and the
// optimizer's state bit for bit and the loop's counters, so a resumed run continues exactly as an
// uninterrupted one (same batches, same float operations in the same order).
//
// A step whose loss, gradient or updated parameters are not finite stops the run with a
// DivergedError naming the step and the first bad number; such parameters are never saved.
import { type Checkpoint, CheckpointError, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { lossAndGrad } from "./loss.ts";
import { checkTrainMeta } from "./meta.ts";
import { type CellKernels, type FloatArray, ModelError, type ModelPlan, type ParamSlice, type Precision, SequenceModel, initModelParams, planModel } from "./model.ts";
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

/** A run that stopped because a number went non-finite: at which step, and what. */
export class DivergedError extends Error {
  constructor(readonly step: number, readonly what: string) {
    super(`training diverged at step ${step}: ${what}`);
  }
}

/** The first non-finite element of `a` as "name[i] = NaN", naming the parameter slice it falls in. */
function firstNonFinite(a: ArrayLike<number>, slices: readonly ParamSlice[] | null, name: string): string | null {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (Number.isFinite(v)) continue;
    const s = slices?.find((q) => i >= q.offset && i < q.offset + q.length);
    return s ? `${s.name}[${i - s.offset}] = ${v}` : `${name}[${i}] = ${v}`;
  }
  return null;
}

/** What differs between the parameter arrays a checkpoint lists and the ones the model has now. */
function paramsDiff(saved: readonly (readonly [string, number])[], now: readonly ParamSlice[]): string {
  const had = new Map(saved), has = new Map(now.map((p) => [p.name, p.length]));
  const d: string[] = [];
  for (const [n, l] of saved) if (!has.has(n)) d.push(`${n} (${l} numbers) is gone`);
  for (const [n, l] of has) if (!had.has(n)) d.push(`${n} (${l} numbers) is new`);
  for (const [n, l] of saved) if (has.has(n) && has.get(n) !== l) d.push(`${n} has ${l} numbers in the checkpoint, ${has.get(n)} now`);
  return d.length > 4 ? `${d.slice(0, 4).join("; ")}; and ${d.length - 4} more` : d.join("; ") || "the arrays are in another order";
}

export class Trainer {
  readonly task: Task;
  readonly plan: ModelPlan;
  readonly model: SequenceModel;
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
  private readonly dPred: FloatArray;
  private readonly evalModel: SequenceModel;
  private readonly evalSet: Batch[];

  constructor(readonly mod: CellKernels, readonly config: TrainConfig) {
    this.task = makeTask(config.task);
    const t = this.task;
    this.plan = planModel(mod, { layers: config.layers, hidden: config.hidden, inputSize: t.inputSize, outputSize: t.outputSize, at: t.at, sizes: config.sizes });
    this.model = new SequenceModel(mod, this.plan, config.precision, config.B, t.length);
    initModelParams(mod, this.plan, config.seed, this.model.params);
    this.dPred = new (config.precision === 32 ? Float32Array : Float64Array)(this.model.pred.length);
    const eb = Math.min(EVAL_BATCH, config.evalSize);
    this.evalModel = new SequenceModel(mod, this.plan, config.precision, eb, t.length, this.model.params);
    this.evalSet = Array.from({ length: Math.ceil(config.evalSize / eb) }, (_, i) => t.batch(streamRng(config.seed, "eval", i), eb));
    this.optimizer = makeOptimizer(config.optimizer, this.plan.total);
  }

  get evalExamples(): number {
    return this.evalSet.length * this.evalModel.B;
  }

  /** One update on the batch of the current step; returns its loss. */
  trainStep(): number {
    const t0 = performance.now();
    const { model, task, config } = this;
    const batch = task.batch(streamRng(config.seed, "batch", this.step), config.B);
    model.x.set(batch.x);
    const pred = model.forward();
    const loss = lossAndGrad(task.loss, pred, batch.y, batch.w, task.outputSize, this.dPred);
    const at = this.step + 1;
    if (!Number.isFinite(loss)) throw new DivergedError(at, `the training loss is ${loss} (the parameters were still finite)`);
    model.backward(this.dPred);
    const { norm, scale } = clipFactor(model.grads, config.clip);
    const badGrad = Number.isFinite(norm) ? null : firstNonFinite(model.grads, this.plan.params, "gradient");
    if (badGrad) throw new DivergedError(at, `the gradient is not finite: ${badGrad} (the loss was ${loss})`);
    this.optimizer.step(model.params, model.grads, scale);
    const badParam = firstNonFinite(model.params, this.plan.params, "params") ?? Object.entries(this.optimizer.state).reduce<string | null>((b, [k, v]) => b ?? firstNonFinite(v, null, `optimizer.${k}`), null);
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
    const { evalModel: m, task } = this;
    const grad = new (this.config.precision === 32 ? Float32Array : Float64Array)(m.pred.length);
    let lossSum = 0, weight = 0, sum = 0, count = 0;
    for (const batch of this.evalSet) {
      m.x.set(batch.x);
      const pred = m.forward();
      const w = batch.w ? batch.w.reduce((a, b) => a + b, 0) : batch.B;
      lossSum += lossAndGrad(task.loss, pred, batch.y, batch.w, task.outputSize, grad) * w;
      weight += w;
      const s = task.metric.score(pred, batch);
      sum += s.sum;
      count += s.count;
    }
    const r = { loss: lossSum / weight, metric: sum / count };
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
    return row;
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
      if (o.checkpoint && o.checkpoint.every > 0 && this.step % o.checkpoint.every === 0) this.save(o.checkpoint.path);
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
      config: this.config, cellName: this.plan.cell, params: this.plan.params.map((p) => [p.name, p.length] as const),
      step: this.step, seconds: this.seconds, history: this.history, lossSum: this.lossSum, lossCount: this.lossCount,
      reachedAt: this.reachedAt, optimizerSteps: this.optimizer.t,
    };
  }

  /** Start layer 1 from given parameters (a converted cell's, by the cell's own names); every array must have its length in this model. */
  initLayer1(params: Readonly<Record<string, ArrayLike<number>>>, from: string): void {
    const mine = this.plan.params.filter((p) => p.name.startsWith("layer1."));
    const names = mine.map((p) => p.name.slice("layer1.".length));
    for (const n of Object.keys(params)) if (!names.includes(n)) throw new ModelError(`${from}: cell "${this.plan.cell}" has no parameter ${n} (it has ${names.join(", ")})`);
    for (const p of mine) {
      const n = p.name.slice("layer1.".length), v = params[n];
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
  static restore(mod: CellKernels, ckpt: Checkpoint<TrainMeta>, path: string, override: { steps?: number } = {}): Trainer {
    const m = checkTrainMeta(path, ckpt.header.meta);
    if (override.steps !== undefined && override.steps < m.step) throw new CheckpointError(`${path}: the checkpoint is at step ${m.step}, past --steps ${override.steps}`);
    const tr = new Trainer(mod, { ...m.config, steps: override.steps ?? m.config.steps });
    const want = tr.plan.params.map((p) => `${p.name}:${p.length}`).join(" "), got = m.params.map(([n, l]) => `${n}:${l}`).join(" ");
    if (want !== got) {
      const c = m.config;
      throw new CheckpointError(`${path}: the checkpoint's model (cell "${m.cellName}", hidden ${c.hidden}, ${c.layers} layer${c.layers > 1 ? "s" : ""}, ${m.params.length} arrays) does not fit cell "${tr.plan.cell}" as it is now (${tr.plan.params.length} arrays): ${paramsDiff(m.params, tr.plan.params)}. Was the cell changed since? Train afresh, or restore the cell as it was`);
    }
    const put = (name: string, into: FloatArray) => {
      const a = ckpt.sections.get(name);
      const kind = (x: FloatArray) => (x instanceof Float32Array ? "f32" : "f64");
      if (!a) throw new CheckpointError(`${path}: section ${name} is missing`);
      if (a.length !== into.length || a.constructor !== into.constructor) throw new CheckpointError(`${path}: section ${name} holds ${a.length} ${kind(a)} numbers; the model needs ${into.length} ${kind(into)}`);
      const bad = firstNonFinite(a, name === "params" ? tr.plan.params : null, name);
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

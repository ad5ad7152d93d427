// The training loop: a task's batches through a sequence model, a loss, clipping by global norm and
// an optimizer; a fixed evaluation set scored every `evalEvery` steps; checkpoints.
//
// Everything random comes from the run's seed: each layer's initialisation, the evaluation set, and
// the batch of step s (drawn from (seed, s) alone). A checkpoint holds the parameters and the
// optimizer's state bit for bit and the loop's counters, so a resumed run continues exactly as an
// uninterrupted one (same batches, same float operations in the same order).
import { type Checkpoint, CheckpointError, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { lossAndGrad } from "./loss.ts";
import { type CellKernels, type FloatArray, type ModelPlan, type Precision, SequenceModel, initModelParams, planModel } from "./model.ts";
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
    model.backward(this.dPred);
    const { scale } = clipFactor(model.grads, config.clip);
    this.optimizer.step(model.params, model.grads, scale);
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
    return { loss: lossSum / weight, metric: sum / count };
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

  save(path: string): void {
    const sections: Record<string, FloatArray> = { params: this.model.params };
    for (const [k, v] of Object.entries(this.optimizer.state)) sections[`optimizer.${k}`] = v;
    writeCheckpoint(path, this.meta(), sections);
  }

  /** The trainer as a checkpoint left it; `steps` may extend the run. */
  static restore(mod: CellKernels, ckpt: Checkpoint<TrainMeta>, path: string, override: { steps?: number } = {}): Trainer {
    const m = ckpt.header.meta;
    const tr = new Trainer(mod, { ...m.config, steps: override.steps ?? m.config.steps });
    const want = tr.plan.params.map((p) => `${p.name}:${p.length}`).join(" "), got = m.params.map(([n, l]) => `${n}:${l}`).join(" ");
    if (want !== got) throw new CheckpointError(`${path}: the checkpoint's parameters (${m.cellName}, ${m.params.length} arrays) do not match cell "${tr.plan.cell}" now (${tr.plan.params.length} arrays): was the cell changed?`);
    const put = (name: string, into: FloatArray) => {
      const a = ckpt.sections.get(name);
      if (!a || a.length !== into.length || a.constructor !== into.constructor) throw new CheckpointError(`${path}: section ${name} is missing or has the wrong type or length`);
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
    return readCheckpoint<TrainMeta>(path);
  }
}

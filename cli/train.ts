// `cellforge train` and `cellforge compare`: train sequence models built from any cell's generated
// kernels on procedurally generated tasks, with a progress bar, logs (CSV and JSON), learning-curve
// plots (SVG, drawn by Vega-Lite) and checkpoints (Ctrl-C saves one; --resume continues bit for bit);
// and `train --data`: a user's dataset through the library's fit() (src/train/datarun.ts).
import { existsSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { CellError } from "../src/errors.ts";
import { UsageError, parseSizes, shellWord } from "./sizes.ts";
export { UsageError };
import { LoadError, builtinCellFiles, loadCell } from "../src/load.ts";
import { CheckpointError } from "../src/train/checkpoint.ts";
import { type CellKernels, ModelError, type Precision } from "../src/train/model.ts";
import type { OptimizerConfig } from "../src/train/optim.ts";
import { type Panel, type Rule, chartSvg } from "../src/train/plot.ts";
import { Progress } from "../src/train/progress.ts";
import { TaskError, type TaskOptions } from "../src/train/task.ts";
import { TASKS, isTaskName } from "../src/train/tasks.ts";
import { timeTrainingSteps } from "../src/train/timing.ts";
import { RunError, checkResumeFlags, divergedMessage, initFrom, outFolder, resumeCell } from "../src/train/runs.ts";
import { DivergedError, type LogRow, OldLayoutError, type TrainConfig, Trainer } from "../src/train/trainer.ts";
import { DataError } from "../nn/data.ts";
import { FitError } from "../nn/fit.ts";
import { saveModel } from "../nn/file.ts";
import { OptimizerError, adam, adamw, sgd } from "../nn/optim.ts";
import { ScheduleError } from "../nn/schedule.ts";
import { type DataRunConfig, type ScheduleName, planDataRun, runDataCommand, setUpDataRun } from "../src/train/datarun.ts";

const S = { type: "string" } as const, F = { type: "boolean" } as const;
/** The options of train --task and compare (cli/main.ts parses each command's options strictly: any other is refused). */
export const TRAIN_OPTIONS = {
  task: S, T: S, L: S, K: S, steps: S, seed: S, hidden: S, layers: S, B: S, sizes: S, optimizer: S, lr: S, momentum: S, clip: S,
  "eval-every": S, "eval-size": S, threshold: S, precision: S, out: S, "checkpoint-every": S, json: F,
} as const;
/** The options train takes besides those: --resume and --init, and the ones of a --data run. */
export const TRAIN_ONLY_OPTIONS = {
  resume: S, init: S,
  data: S, format: S, at: S, loss: S, val: S, "val-split": S, epochs: S, batch: S, "weight-decay": S, schedule: S, patience: S, bidirectional: F, dropout: S,
} as const;
/** Options of a --data run only, and of a task run only: one given in the other mode is refused. */
const DATA_ONLY = ["data", "format", "at", "loss", "val", "val-split", "epochs", "batch", "weight-decay", "schedule", "patience", "bidirectional", "dropout"] as const;
const TASK_ONLY = ["task", "T", "L", "K", "steps", "B", "eval-every", "eval-size", "threshold", "checkpoint-every", "resume", "init"] as const;

type Flags = Record<string, string | boolean | undefined>;

export const TRAIN_USAGE = `  cellforge train <cell> --task adding|copy|reber [--T n] [--steps n] [--seed n] [options]
                                       train a sequence model (a stack of the cell's kernels and a linear readout);
                                       a progress bar, a CSV and JSON log, a learning-curve plot, a checkpoint
  cellforge train <cell> --init params.json [options]
                                       start layer 1 from a cell's parameters (cellforge convert --to cellforge writes them)
  cellforge train <cell> --data train.json|train.csv [--val file | --val-split x] [--epochs n] [options]
                                       train on your own sequences (a fit() run): a model file, its history, a learning-curve plot
  cellforge train --resume <file.ckpt> [<cell file>] [--steps n]
                                       continue a run exactly where its checkpoint left it (Ctrl-C saves one)
  cellforge compare <cell> <cell>… --task adding [--T n] [--steps n] [--seed n] [options]
                                       train each cell with the same budget, data and seed: a table and one plot`;

export const TRAIN_OPTIONS_USAGE = `train and compare options:
  --task adding|copy|reber  adding problem (MSE at the last step; predicting the mean scores 0.167), copy task
                     (recall L symbols after T steps), embedded Reber grammar (next-symbol prediction)
  --T n              adding: sequence length (100); copy: the delay (20); reber: steps, strings of <= T+1 symbols (30)
  --L n  --K n       copy: symbols to recall (10) and alphabet size (8)
  --steps n          training steps (per task: adding 1500, copy 1500, reber 1000)
  --seed n           seed of everything random: initialisation, batches, the evaluation set (1)
  --hidden n --layers n --B n
                     hidden size (adding 32, copy 64, reber 16), stacked layers (1), batch size (32)
  --sizes P=n,…      other sizes of the cell
  --optimizer adam|sgd --lr x --momentum x --clip x
                     Adam (default; lr per task, 0.01) or SGD with momentum (0.9); clip to a global norm (1; 0: off)
  --eval-every n --eval-size n --threshold x
                     evaluate on a fixed set of eval-size examples (256) every n steps (steps/25);
                     the metric's value that counts as solved (adding MSE 0.01, copy accuracy 0.99, reber 0.99)
  --precision 32|64  float32 kernels (default) or float64
  --out dir          where logs, plots and checkpoints go (runs/<command>-<cell>-<task>-T<T>-seed<seed>)
  --checkpoint-every n  also save a checkpoint every n steps (0: only at the end and on Ctrl-C)
  --init params.json train only: layer 1 starts from this file (what cellforge convert --to cellforge writes,
                     JSON or .safetensors; or layer 1 of a model file or checkpoint of the cell);
                     its sizes must be the run's (D the task's input size, H --hidden), --layers 1
  --resume file.ckpt train only: continue that run (its cell, task and options; --steps may extend it); a run of a cell file, not of dsl/, names the file again after it
  --json             print the summary as JSON
A run whose loss, gradient or parameters turn NaN or infinite stops there (exit 1, naming the step) and saves nothing.

train --data options (the file format: README, "Dataset files"):
  --data file        the training data, JSON or CSV; --format json|csv (default: by the extension)
  --at last|every    the readout and targets at each sequence's last step (default), or at every step
  --loss mse|crossEntropy  default from the targets: class indices (integers 0, 1, …) mean crossEntropy
                     with one output per class, anything else mse
  --val file | --val-split x  validation data: another file, or a share of the data held out (seeded; default: none)
  --epochs n --batch n  passes over the data (20), sequences per batch (32)
  --optimizer sgd|adam|adamw --lr x --weight-decay x --momentum x
                     Adam (default; lr 0.01), AdamW (weight decay 0.01) or SGD (lr 0.1, momentum 0.9); weight decay (0, AdamW 0.01)
  --schedule constant|step|cosine  the learning rate over the run: fixed (default), a tenth at each third, cosine to 0
  --clip x           clip the gradient to this global norm (1; 0: off)
  --patience n       stop after n epochs without a lower validation loss and keep the best epoch's parameters
  --layers n --hidden n --bidirectional --dropout x --sizes P=n,…
                     the model: stacked layers (1), hidden size (32), both directions, dropout between layers (0)
  --precision 32|64 --seed n --json
  --out dir          model.cfm (nn/file.ts's loadModel reads it), history.json, history.csv, curve.svg
                     (default runs/data-<cell>-<file>-seed<seed>)
A malformed file is refused naming its line and column (exit 1).`;


const say = (s = "") => process.stdout.write(s + "\n");

// ---- flags -------------------------------------------------------------------------------------

function intFlag(f: Flags, name: string, d: number, min = 1): number {
  const v = f[name];
  if (v === undefined) return d;
  if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} takes an integer >= ${min}, not ${String(v)}`);
  return Number(v);
}

function numFlag(f: Flags, name: string, d: number): number {
  const v = f[name];
  if (v === undefined) return d;
  const x = typeof v === "string" ? Number(v) : NaN;
  if (!Number.isFinite(x) || x < 0) throw new UsageError(`--${name} takes a number >= 0, not ${String(v)}`);
  return x;
}

function sizesFlag(f: Flags): Record<string, number> | undefined {
  if (typeof f.sizes !== "string") return undefined;
  return parseSizes(f.sizes, undefined, (m) => { throw new UsageError(m); });
}

/** The run's configuration from the flags and the task's defaults. */
export function configFromFlags(cell: string, f: Flags): TrainConfig {
  const taskName = typeof f.task === "string" ? f.task : "adding";
  if (!isTaskName(taskName)) throw new UsageError(`--task is one of ${Object.keys(TASKS).join(", ")}, not ${taskName}`);
  const def = TASKS[taskName];
  const task: TaskOptions = taskName === "copy" ? { name: taskName, T: intFlag(f, "T", def.T), L: intFlag(f, "L", 10), K: intFlag(f, "K", 8, 2) } : { name: taskName, T: intFlag(f, "T", def.T) };
  const steps = intFlag(f, "steps", def.defaults.steps);
  const kind = f.optimizer ?? "adam";
  if (kind !== "adam" && kind !== "sgd") throw new UsageError(`--optimizer is adam or sgd, not ${String(kind)}`);
  const lr = numFlag(f, "lr", kind === "adam" ? def.defaults.lr : 0.1);
  const optimizer: OptimizerConfig = kind === "adam" ? { kind, lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 } : { kind, lr, momentum: numFlag(f, "momentum", 0.9) };
  const precision = intFlag(f, "precision", 32);
  if (precision !== 32 && precision !== 64) throw new UsageError(`--precision is 32 or 64, not ${precision}`);
  const metric = def.make(task).metric;
  return {
    cell, task, hidden: intFlag(f, "hidden", def.defaults.hidden), layers: intFlag(f, "layers", 1), sizes: sizesFlag(f),
    B: intFlag(f, "B", def.defaults.B), steps, seed: intFlag(f, "seed", 1, 0), precision: precision as Precision, optimizer,
    clip: numFlag(f, "clip", 1), evalEvery: intFlag(f, "eval-every", Math.max(1, Math.round(steps / 25))),
    evalSize: intFlag(f, "eval-size", 256), threshold: numFlag(f, "threshold", metric.threshold),
  };
}

// ---- loading, running, writing -----------------------------------------------------------------

/** A cell's kernels, generated fresh from its equations (a name in dsl/ or a path), proven against the reference evaluator. */
async function kernelsFor(ref: string, cell?: Awaited<ReturnType<typeof loadCell>>): Promise<CellKernels> {
  const { loadKernels } = await import("../check/kernelcheck.ts");
  const mod: CellKernels = await loadKernels(cell ?? (await loadCell(ref)));
  if (!mod.spec) throw new LoadError(`the kernels of ${ref} have no spec: regenerate them`);
  return mod;
}

const cellLabel = (ref: string) => basename(ref, extname(ref));
const taskLabel = (t: TaskOptions) => `${t.name}-T${t.T}`;

function describeRun(tr: Trainer): string {
  const c = tr.config, o = c.optimizer;
  const opt = o.kind === "sgd" ? `SGD lr ${o.lr} momentum ${o.momentum}` : `Adam lr ${o.lr}`;
  return `${tr.model.cell} on the ${tr.task.title}: ${tr.model.params.length.toLocaleString("en-US")} parameters (${c.layers} layer${c.layers > 1 ? "s" : ""}, hidden ${c.hidden}, float${c.precision}), ${c.steps} steps of batch ${c.B}, ${opt}, clip ${c.clip || "off"}, seed ${c.seed}${c.init ? `, layer 1 from ${c.init}` : ""}`;
}

interface Outcome {
  readonly status: "done" | "stopped" | "diverged";
  readonly trainer: Trainer;
  readonly diverged?: DivergedError;
}

/** Run a trainer with a progress bar; Ctrl-C (SIGINT) stops it after the current step and saves a checkpoint; a diverged run saves none. */
async function runWithProgress(tr: Trainer, label: string, ckpt: string, every: number): Promise<Outcome> {
  const progress = new Progress(label, tr.config.steps, tr.step, tr.task.metric.name);
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSigint);
  let status: "done" | "stopped";
  try {
    status = await tr.run({
      shouldStop: () => interrupted,
      onStep: (loss) => progress.onStep(tr.step, loss),
      onEval: (row) => progress.onEval(row.step, row.metric),
      checkpoint: every > 0 ? { path: ckpt, every } : undefined,
    });
  } catch (e) {
    if (e instanceof DivergedError) return { status: "diverged", trainer: tr, diverged: e };
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
    progress.done();
  }
  tr.save(ckpt);
  return { status, trainer: tr };
}

const csvNum = (x: number | null) => (x === null || !Number.isFinite(x) ? "" : String(x));

function logCsv(tr: Trainer): string {
  const metric = tr.task.metric.name.replace(/\s+/g, "_");
  return ["step,seconds,train_loss,eval_loss," + metric, ...tr.history.map((r) => [r.step, r.seconds.toFixed(3), csvNum(r.trainLoss), csvNum(r.evalLoss), csvNum(r.metric)].join(","))].join("\n") + "\n";
}

function summaryOf(tr: Trainer) {
  const last = tr.history.at(-1);
  const m = tr.task.metric;
  return {
    cell: tr.model.cell, task: tr.task.title, params: tr.model.params.length, steps: tr.step, msPerStep: tr.step ? (1000 * tr.seconds) / tr.step : null,
    metric: m.name, better: m.better, final: last?.metric ?? null, finalEvalLoss: last?.evalLoss ?? null,
    best: tr.history.length ? (m.better === "lower" ? Math.min : Math.max)(...tr.history.map((r) => r.metric)) : null,
    threshold: tr.config.threshold, reachedAt: tr.reachedAt, baseline: m.baseline, baselineText: m.baselineText, evalExamples: tr.evalExamples,
  };
}

function logJson(tr: Trainer, diverged?: DivergedError): string {
  return JSON.stringify({ config: tr.config, summary: summaryOf(tr), history: tr.history, ...(diverged ? { diverged: { step: diverged.step, what: diverged.what } } : {}) }, null, 1) + "\n";
}

function rulesOf(tr: Trainer): Rule[] {
  const m = tr.task.metric, cmp = m.better === "lower" ? "<=" : ">=";
  return [
    ...(m.baseline > 0 ? [{ y: m.baseline, label: `baseline ${fmt(m.baseline)}` }] : []),
    { y: tr.config.threshold, label: `threshold ${cmp} ${fmt(tr.config.threshold)}` },
  ];
}

const pts = (rows: readonly LogRow[], x: (r: LogRow) => number, y: (r: LogRow) => number | null) => rows.flatMap((r) => (y(r) === null ? [] : [{ x: x(r), y: y(r)! }]));

async function trainPlot(tr: Trainer, diverged?: DivergedError): Promise<string> {
  const m = tr.task.metric, h = tr.history;
  const loss: Panel = {
    title: "loss", xTitle: "step", yTitle: `${tr.task.loss === "mse" ? "MSE" : "cross-entropy"} (log scale)`, logY: true,
    series: [
      { label: "training", points: pts(h, (r) => r.step, (r) => r.trainLoss) },
      { label: `evaluation`, points: pts(h, (r) => r.step, (r) => r.evalLoss) },
    ],
  };
  const metric: Panel = { title: m.name, xTitle: "step", yTitle: m.name + (m.better === "lower" ? " (log scale)" : ""), logY: m.better === "lower", rules: rulesOf(tr), series: [{ label: tr.model.cell, points: pts(h, (r) => r.step, (r) => r.metric) }] };
  const marks = diverged ? [{ x: diverged.step, label: `diverged at step ${diverged.step}` }] : [];
  return chartSvg(`${tr.model.cell} on the ${tr.task.title}`, [{ ...loss, marks }, { ...metric, marks }], [describeRun(tr).replace(/^[^:]*: /, "")]);
}

function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  if (x === 0) return "0";
  return Math.abs(x) >= 0.1 ? x.toFixed(3) : Math.abs(x) >= 0.001 ? x.toFixed(4) : x.toExponential(2);
}

/** Known user mistakes print as one message; anything else is a bug and keeps its stack. */
async function guarded(f: () => Promise<number>): Promise<number> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UsageError || e instanceof LoadError || e instanceof CellError || e instanceof ModelError || e instanceof CheckpointError || e instanceof TaskError || e instanceof RunError ||
      e instanceof DataError || e instanceof FitError || e instanceof OptimizerError || e instanceof ScheduleError) {
      process.stderr.write(`${e.message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}

// ---- train -------------------------------------------------------------------------------------

export async function trainCmd(args: string[], flags: Flags): Promise<number> {
  if (flags.data !== undefined) return guarded(() => dataCmd(args, flags));
  return guarded(async () => {
    const stray = DATA_ONLY.find((k) => flags[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} goes with --data <file> (a run on your own data), not with a task run`);
    let tr: Trainer, out: string;
    if (typeof flags.resume === "string") {
      const ckpt = Trainer.read(flags.resume), cell = resumeCell(flags.resume, ckpt.header.meta.config.cell, args);
      const steps = flags.steps === undefined ? undefined : intFlag(flags, "steps", 1);
      tr = Trainer.restore(await kernelsFor(cell), ckpt, flags.resume, { steps, cell });
      checkResumeFlags(flags.resume, tr, flags);
      out = typeof flags.out === "string" ? flags.out : dirname(flags.resume);
      say(`resuming at step ${tr.step} of ${tr.config.steps} from ${flags.resume}`);
    } else {
      if (args.length !== 1) throw new UsageError(`usage:\n${TRAIN_USAGE}`);
      const init = typeof flags.init === "string" ? flags.init : undefined;
      const config = { ...configFromFlags(args[0]!, flags), ...(init !== undefined ? { init } : {}) };
      const cell = await loadCell(config.cell);
      tr = new Trainer(await kernelsFor(config.cell, cell), config);
      if (init !== undefined) initFrom(tr, cell, init);
      out = typeof flags.out === "string" ? flags.out : join("runs", `train-${cellLabel(config.cell)}-${taskLabel(config.task)}-seed${config.seed}`);
    }
    outFolder(out);
    const ckpt = join(out, "checkpoint.ckpt");
    if (!flags.json) say(describeRun(tr));
    const r = await runWithProgress(tr, tr.model.cell, ckpt, intFlag(flags, "checkpoint-every", 0, 0));
    writeFileSync(join(out, "log.csv"), logCsv(tr));
    writeFileSync(join(out, "log.json"), logJson(tr, r.diverged));
    writeFileSync(join(out, "curve.svg"), await trainPlot(tr, r.diverged));
    if (!r.diverged) writeFileSync(join(out, "model.cfm"), saveModel(tr.model)); // the trained model, as nn/file.ts's loadModel reads it
    if (r.diverged) {
      if (flags.json) say(JSON.stringify({ ...summaryOf(tr), status: r.status, diverged: { step: r.diverged.step, what: r.diverged.what }, out }, null, 1));
      process.stderr.write(`${divergedMessage(r.diverged, tr, ckpt)}\n`);
      return 1;
    }
    const s = summaryOf(tr);
    if (flags.json) say(JSON.stringify({ ...s, status: r.status, out }, null, 1));
    else {
      const cmp = s.better === "lower" ? "<=" : ">=";
      say(`evaluation at step ${tr.history.at(-1)?.step ?? 0}: ${s.metric} ${fmt(s.final)} over ${s.evalExamples} examples (baseline ${fmt(s.baseline)}: ${s.baselineText})`);
      say(`${s.metric} ${cmp} ${fmt(s.threshold)} ${s.reachedAt === null ? "not reached" : `first at step ${s.reachedAt}`}; ${fmt(s.msPerStep)} ms per training step`);
      say(`wrote ${join(out, "log.csv")}, log.json, curve.svg, checkpoint.ckpt, model.cfm`);
    }
    if (r.status === "stopped") {
      // a cell file is named again: a resumed run loads no file its checkpoint names (src/train/runs.ts, resumeCell)
      const builtin = builtinCellFiles().some((f) => basename(f, extname(f)) === tr.config.cell);
      say(`interrupted at step ${tr.step}: checkpoint saved; continue with\n  cellforge train --resume ${shellWord(ckpt)}${builtin ? "" : ` ${shellWord(tr.config.cell)}`}`);
      return 130;
    }
    return 0;
  });
}

// ---- train --data -------------------------------------------------------------------------------

function choice<T extends string>(f: Flags, name: string, options: readonly T[], d: T): T {
  const v = f[name];
  if (v === undefined) return d;
  if (typeof v !== "string" || !options.includes(v as T)) throw new UsageError(`--${name} is ${options.join(", ").replace(/, ([^,]*)$/, " or $1")}, not ${String(v)}`);
  return v as T;
}

/** A --data run's configuration from the flags; a task run's flag is refused by name. */
export function dataConfigFromFlags(cell: string, f: Flags): DataRunConfig {
  const stray = TASK_ONLY.find((k) => f[k] !== undefined);
  if (stray) throw new UsageError(`--${stray} is for the task runs, not a --data run${stray === "steps" ? " (--epochs counts passes over the data)" : stray === "B" ? " (--batch is the batch size)" : ""}`);
  if (typeof f.data !== "string" || f.data === "") throw new UsageError("--data names a dataset file (JSON or CSV)");
  const kind = choice(f, "optimizer", ["adam", "adamw", "sgd"] as const, "adam");
  const lr = numFlag(f, "lr", kind === "sgd" ? 0.1 : 0.01), weightDecay = numFlag(f, "weight-decay", kind === "adamw" ? 0.01 : 0);
  if (f.momentum !== undefined && kind !== "sgd") throw new UsageError(`--momentum is SGD's; --optimizer ${kind} does not take it`);
  const optimizer = kind === "sgd" ? sgd({ lr, momentum: numFlag(f, "momentum", 0.9), weightDecay }) : (kind === "adam" ? adam : adamw)({ lr, weightDecay });
  if (f.val !== undefined && f["val-split"] !== undefined) throw new UsageError("--val and --val-split both give validation data: give one");
  const valSplit = numFlag(f, "val-split", 0), dropout = numFlag(f, "dropout", 0), precision = intFlag(f, "precision", 32);
  if (valSplit >= 1) throw new UsageError(`--val-split is the share of the data held out, in [0, 1), not ${valSplit}`);
  if (dropout >= 1) throw new UsageError(`--dropout is a probability in [0, 1), not ${dropout}`);
  if (precision !== 32 && precision !== 64) throw new UsageError(`--precision is 32 or 64, not ${precision}`);
  return {
    cell, data: f.data, ...(f.format !== undefined ? { format: choice(f, "format", ["json", "csv"] as const, "json") } : {}), at: choice(f, "at", ["last", "every"] as const, "last"),
    ...(f.loss !== undefined ? { loss: choice(f, "loss", ["mse", "crossEntropy"] as const, "mse") } : {}), ...(typeof f.val === "string" ? { val: f.val } : {}), valSplit,
    epochs: intFlag(f, "epochs", 20), batch: intFlag(f, "batch", 32), optimizer, schedule: choice<ScheduleName>(f, "schedule", ["constant", "step", "cosine"], "constant"),
    clip: numFlag(f, "clip", 1), ...(f.patience !== undefined ? { patience: intFlag(f, "patience", 1, 0) } : {}), layers: intFlag(f, "layers", 1), hidden: intFlag(f, "hidden", 32),
    bidirectional: f.bidirectional === true, dropout, ...(f.sizes !== undefined ? { sizes: sizesFlag(f)! } : {}), precision: precision as Precision, seed: intFlag(f, "seed", 1, 0),
  };
}

async function dataCmd(args: string[], flags: Flags): Promise<number> {
  if (args.length !== 1) throw new UsageError(`usage:\n${TRAIN_USAGE}`);
  const c = dataConfigFromFlags(args[0]!, flags);
  const plan = planDataRun(c); // the data first: a malformed file is refused before the kernels are generated
  const mod = await kernelsFor(c.cell);
  const out = typeof flags.out === "string" ? flags.out : join("runs", `data-${cellLabel(c.cell)}-${basename(c.data, extname(c.data))}-seed${c.seed}`);
  outFolder(out);
  await runDataCommand(setUpDataRun(mod, c, plan), c, out, flags.json === true, say);
  return 0;
}

// ---- compare -----------------------------------------------------------------------------------

interface CompareRow {
  readonly cell: string;
  readonly params: number;
  /** Median of interleaved timed rounds after training (see src/train/timing.ts). */
  readonly msPerStep: number;
  /** Training time over steps as the run measured it, with whatever else the machine was doing. */
  readonly msPerStepDuringTraining: number | null;
  readonly final: number | null;
  readonly best: number | null;
  readonly reachedAt: number | null;
  readonly secondsToThreshold: number | null;
}

function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((s, i) => (right[i] ? s.padStart(w[i]!) : s.padEnd(w[i]!))).join("  ").trimEnd();
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)];
}

export async function compareCmd(args: string[], flags: Flags): Promise<number> {
  return guarded(async () => {
    if (args.length < 1) throw new UsageError(`usage:\n${TRAIN_USAGE}`);
    if (new Set(args).size !== args.length) throw new UsageError("compare: a cell is named twice");
    const base = configFromFlags(args[0]!, flags);
    // every cell's kernels first, each proven: a refused one stops the comparison before anything trains
    const mods: CellKernels[] = [];
    for (const ref of args) mods.push(await kernelsFor(ref));
    const out = typeof flags.out === "string" ? flags.out : join("runs", `compare-${taskLabel(base.task)}-seed${base.seed}`);
    outFolder(out);
    const every = intFlag(flags, "checkpoint-every", 0, 0);
    const trainers: Trainer[] = [];
    for (const [i, ref] of args.entries()) {
      const config = { ...base, cell: ref };
      const mod = mods[i]!;
      const name = cellLabel(ref), ckpt = join(out, `${name}.ckpt`);
      // A checkpoint of this very configuration in the output folder is continued (or reused when finished).
      let tr: Trainer | null = null;
      if (existsSync(ckpt)) {
        const c = Trainer.read(ckpt);
        if (JSON.stringify(c.header.meta.config) !== JSON.stringify(config)) say(`${ckpt} holds another configuration: training ${name} afresh`);
        else
          try {
            tr = Trainer.restore(mod, c, ckpt);
          } catch (e) {
            if (!(e instanceof OldLayoutError)) throw e;
            say(`${ckpt} was written by an older cellforge, whose models were laid out otherwise: training ${name} afresh`);
          }
      }
      tr ??= new Trainer(mod, config);
      if (!flags.json) say(tr.step ? `${describeRun(tr)}; continuing from step ${tr.step}` : describeRun(tr));
      const r = await runWithProgress(tr, name.padEnd(Math.max(...args.map((a) => cellLabel(a).length))), ckpt, every);
      writeFileSync(join(out, `${name}.log.csv`), logCsv(tr));
      writeFileSync(join(out, `${name}.log.json`), logJson(tr, r.diverged));
      if (r.diverged) {
        process.stderr.write(`${divergedMessage(r.diverged, tr, ckpt, `${name}: `)}\nThe comparison stopped.\n`);
        return 1;
      }
      if (r.status === "stopped") {
        say(`interrupted at step ${tr.step} of ${name}: checkpoint saved; the same command continues the comparison`);
        return 130;
      }
      trainers.push(tr);
    }
    const first = trainers[0]!, m = first.task.metric, cmp = m.better === "lower" ? "<=" : ">=";
    if (!flags.json) say("timing a training step of each cell, in interleaved rounds …");
    const timed = timeTrainingSteps(trainers);
    const rows: CompareRow[] = trainers.map((tr, i) => {
      const s = summaryOf(tr);
      return { cell: s.cell, params: s.params, msPerStep: timed[i]!, msPerStepDuringTraining: s.msPerStep, final: s.final, best: s.best, reachedAt: s.reachedAt, secondsToThreshold: s.reachedAt === null ? null : (s.reachedAt * timed[i]!) / 1000 };
    });
    const head = ["cell", "parameters", "ms/step", `final ${m.name}`, `best ${m.name}`, `steps to ${cmp} ${fmt(base.threshold)}`, "seconds to it"];
    const body = rows.map((r) => [r.cell, r.params.toLocaleString("en-US"), r.msPerStep.toFixed(2), fmt(r.final), fmt(r.best), r.reachedAt === null ? "not reached" : String(r.reachedAt), r.secondsToThreshold === null ? "-" : r.secondsToThreshold.toFixed(1)]);
    const right = [false, true, true, true, true, true, true];
    const caption = `${first.task.title}: ${base.steps} steps of batch ${base.B}, hidden ${base.hidden}, ${base.layers} layer${base.layers > 1 ? "s" : ""}, ${base.optimizer.kind === "adam" ? "Adam" : "SGD"} lr ${base.optimizer.lr}, clip ${base.clip || "off"}, seed ${base.seed}, float${base.precision}; ${m.name} on ${first.evalExamples} fixed examples every ${base.evalEvery} steps (baseline ${fmt(m.baseline)}: ${m.baselineText}). ms/step: one training step (forward, backward, update), the median of 7 rounds timed after training, the cells interleaved; seconds to it: steps × ms/step.`;
    const md = [`${caption}`, "", `| ${head.join(" | ")} |`, `|${right.map((r) => (r ? "---:" : ":---")).join("|")}|`, ...body.map((b) => `| ${b.join(" | ")} |`)].join("\n") + "\n";
    writeFileSync(join(out, "table.md"), md);
    writeFileSync(join(out, "results.csv"), ["cell,parameters,ms_per_step,ms_per_step_during_training,final,best,steps_to_threshold,seconds_to_threshold", ...rows.map((r) => [r.cell, r.params, csvNum(r.msPerStep), csvNum(r.msPerStepDuringTraining), csvNum(r.final), csvNum(r.best), r.reachedAt ?? "", csvNum(r.secondsToThreshold)].join(","))].join("\n") + "\n");
    writeFileSync(join(out, "results.json"), JSON.stringify({ config: { ...base, cell: undefined, cells: args }, metric: { name: m.name, better: m.better, threshold: base.threshold, baseline: m.baseline, baselineText: m.baselineText }, rows }, null, 1) + "\n");
    const series = (x: (r: LogRow, i: number) => number) => trainers.map((tr, i) => ({ label: tr.model.cell, points: pts(tr.history, (r) => x(r, i), (r) => r.metric) }));
    const logY = m.better === "lower";
    const yTitle = m.name + (logY ? " (log scale)" : "");
    const sub = [
      `${m.name} on ${first.evalExamples} fixed evaluation examples; the same data and seed (${base.seed}) for every cell`,
      `${base.steps} steps of batch ${base.B}, hidden ${base.hidden}, ${base.layers} layer${base.layers > 1 ? "s" : ""}, ${base.optimizer.kind === "adam" ? "Adam" : "SGD"} lr ${base.optimizer.lr}, clip ${base.clip || "off"}, float${base.precision}`,
      `baseline ${fmt(m.baseline)}: ${m.baselineText}`,
    ];
    writeFileSync(join(out, "curves.svg"), await chartSvg(first.task.title, [
      { title: "by training step", xTitle: "step", yTitle, logY, rules: rulesOf(first), series: series((r) => r.step) },
      { title: "by training time", xTitle: "seconds of training (steps × timed ms/step, this machine)", yTitle, logY, rules: rulesOf(first), series: series((r, i) => (r.step * timed[i]!) / 1000) },
    ], sub));
    if (flags.json) say(JSON.stringify({ rows, out }, null, 1));
    else {
      say();
      say(caption);
      for (const l of table(head, body, right)) say(l);
      say(`wrote ${join(out, "curves.svg")}, table.md, results.csv, results.json and each cell's log`);
    }
    return 0;
  });
}

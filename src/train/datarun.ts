// `cellforge train <cell> --data <file>`: a user's dataset (nn/data.ts's JSON or CSV format) through
// the library's fit() (nn/fit.ts), the loop the tasks' runs also use (a Model, an optimizer, a loss).
// This module turns the run's settings into the library's calls: the files read and split, the loss
// and readout size chosen from the targets, the schedule over the run's updates, and what a run
// writes: the model file (nn/file.ts), its history (JSON and CSV) and the learning-curve plot.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataError, type Dataset, type ParsedDataset, type Target, parseDataset } from "../../nn/data.ts";
import { type FitResult, type Progress, evaluate, fit } from "../../nn/fit.ts";
import { saveModel } from "../../nn/file.ts";
import type { LossName } from "../../nn/loss.ts";
import type { OptimizerConfig } from "../../nn/optim.ts";
import { type Schedule, constant, cosine, stepLR } from "../../nn/schedule.ts";
import { plotFit } from "./fitplot.ts";
import { Progress as ProgressLine } from "./progress.ts";
import { type CellKernels, type Model, type Precision, buildModel } from "./model.ts";
import { RunError } from "./runs.ts";
import { streamRng } from "./seeds.ts";

export type ScheduleName = "constant" | "step" | "cosine";

export interface DataRunConfig {
  /** The cell as the user named it: a name in dsl/ or a path. */
  readonly cell: string;
  readonly data: string;
  /** By the file's extension when absent (.json, .csv), else by its first character. */
  readonly format?: "json" | "csv";
  readonly at: "last" | "every";
  /** Absent: from the targets (see lossFor). */
  readonly loss?: LossName;
  /** A validation file, or the share of the data held out for validation (0: none). */
  readonly val?: string;
  readonly valSplit: number;
  readonly epochs: number;
  readonly batch: number;
  readonly optimizer: OptimizerConfig;
  readonly schedule: ScheduleName;
  readonly clip: number;
  readonly patience?: number;
  readonly layers: number;
  readonly hidden: number;
  readonly bidirectional: boolean;
  readonly dropout: number;
  readonly sizes?: Readonly<Record<string, number>>;
  readonly precision: Precision;
  readonly seed: number;
}

/** A dataset file, parsed; a file that cannot be read is a RunError, a malformed one nn/data.ts's DataError (line and column). */
export function readDataset(path: string, flag: string, at: "last" | "every", format?: "json" | "csv"): ParsedDataset {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunError(`--${flag} ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a dataset file" : (e as Error).message}`);
  }
  const ext = /\.(json|csv)$/i.exec(path)?.[1]?.toLowerCase() as "json" | "csv" | undefined;
  try {
    return parseDataset(text, { at, format: format ?? ext, name: path });
  } catch (e) {
    // lists of targets that differ in length are, most likely, one target per step of sequences of different lengths
    if (e instanceof DataError && at === "last" && / target values, the ones before it /.test(e.message)) throw new DataError(`${e.message} (one target per step? give --at every)`);
    throw e;
  }
}

/** The training and validation sets: the --val file, or a seeded random share of the data held out. */
export function splitData(c: DataRunConfig, all: ParsedDataset): { train: ParsedDataset; val: ParsedDataset | null; valFrom: string } {
  if (c.val !== undefined) {
    const val = readDataset(c.val, "val", c.at, c.format);
    if (val.features !== all.features) throw new RunError(`--val ${c.val}: its steps have ${val.features} features, the training data's (${c.data}) ${all.features}`);
    if (val.targetSize !== all.targetSize) throw new RunError(`--val ${c.val}: its targets have ${val.targetSize} values, the training data's (${c.data}) ${all.targetSize}`);
    return { train: all, val, valFrom: c.val };
  }
  if (c.valSplit === 0) return { train: all, val: null, valFrom: "none" };
  const n = all.x.length, k = Math.round(n * c.valSplit);
  if (k < 1 || k > n - 1) throw new RunError(`--val-split ${c.valSplit}: holds out ${k} of the ${n} sequences of ${c.data}; at least one must be held out and one kept for training (give a larger share, more data, or --val file)`);
  // a seeded shuffle (Fisher-Yates), so the same seed holds out the same sequences
  const ids = Array.from({ length: n }, (_, i) => i), rng = streamRng(c.seed, "val-split");
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const pick = (s: number[]): ParsedDataset => ({ ...all, x: s.map((i) => all.x[i]!), y: s.map((i) => all.y[i]!) });
  return { train: pick(ids.slice(k).sort((a, b) => a - b)), val: pick(ids.slice(0, k).sort((a, b) => a - b)), valFrom: `${k} of ${n} sequences held out (--val-split ${c.valSplit})` };
}

/** Every target value (a class index, a number, or a vector's), flat, over the sets given. */
const values = (sets: readonly Dataset[], at: "last" | "every"): number[] =>
  sets.flatMap((d) => d.y.flatMap((t: Target) => (at === "every" ? (t as readonly (number | readonly number[])[]).flat() : typeof t === "number" ? [t] : [...(t as readonly number[])])));

/**
 * The loss and the readout's size. By default the targets decide: single values that are all
 * integers >= 0, with at least two classes, are class indices (crossEntropy, one output per class);
 * anything else is regression (mse, one output per target value). --loss overrides the choice.
 */
export function lossFor(c: DataRunConfig, sets: readonly ParsedDataset[]): { loss: LossName; outputs: number; classes: number | null; why: string } {
  const v = values(sets, c.at), size = sets[0]!.targetSize;
  const isClass = (x: number) => Number.isInteger(x) && x >= 0;
  const classes = size === 1 && v.every(isClass) ? Math.max(...v) + 1 : 0;
  if (c.loss === "crossEntropy") {
    if (size !== 1) throw new RunError(`--loss crossEntropy takes one class index per target; the targets of ${c.data} are vectors of ${size} numbers (use --loss mse)`);
    const bad = v.find((x) => !isClass(x));
    if (bad !== undefined) throw new RunError(`--loss crossEntropy takes class indices (integers 0, 1, …); ${c.data} has the target ${bad} (use --loss mse for regression)`);
    return { loss: "crossEntropy", outputs: Math.max(2, classes), classes: Math.max(2, classes), why: "--loss crossEntropy" };
  }
  if (c.loss === undefined && classes >= 2) return { loss: "crossEntropy", outputs: classes, classes, why: `the targets are class indices 0…${classes - 1}; --loss mse for regression` };
  return { loss: "mse", outputs: size, classes: null, why: c.loss === "mse" ? "--loss mse" : `the targets are ${size > 1 ? `vectors of ${size} numbers` : "numbers, not class indices"}` };
}

/** The learning rate of each update over `updates` updates. */
export function scheduleOf(name: ScheduleName, lr: number, updates: number): Schedule {
  // step: a tenth of the rate at each third of the run, as StepLR(step_size = updates/3, gamma = 0.1)
  return name === "constant" ? constant(lr) : name === "step" ? stepLR({ lr, stepSize: Math.max(1, Math.round(updates / 3)) }) : cosine({ lr, steps: updates });
}

export interface DataRun {
  readonly model: Model;
  readonly result: FitResult;
  readonly loss: LossName;
  readonly classes: number | null;
  /** The final model scored on the validation set (the training set without one). */
  readonly final: { readonly on: "validation" | "training"; readonly loss: number; readonly accuracy: number | null; readonly sequences: number };
}

/** A --data run's data and what it decides, read before any kernel is loaded (a malformed file fails fast). */
export interface DataPlan {
  readonly train: ParsedDataset;
  readonly val: ParsedDataset | null;
  readonly valFrom: string;
  readonly loss: LossName;
  readonly outputs: number;
  readonly classes: number | null;
  readonly why: string;
  /** Optimizer updates in the whole run: epochs × batches per epoch (the schedule's length). */
  readonly updates: number;
}

export interface DataRunSetup extends DataPlan {
  readonly model: Model;
}

/** The data read and split, and the loss chosen. */
export function planDataRun(c: DataRunConfig): DataPlan {
  const all = readDataset(c.data, "data", c.at, c.format);
  const { train, val, valFrom } = splitData(c, all);
  const { loss, outputs, classes, why } = lossFor(c, val ? [train, val] : [train]);
  return { train, val, valFrom, loss, outputs, classes, why, updates: c.epochs * Math.ceil(train.x.length / c.batch) };
}

/** The plan and its model, built from the run's seed. */
export function setUpDataRun(mod: CellKernels, c: DataRunConfig, plan: DataPlan = planDataRun(c)): DataRunSetup {
  const model = buildModel(mod, { layers: c.layers, hidden: c.hidden, inputSize: plan.train.features, outputSize: plan.outputs, at: c.at, sizes: c.sizes, precision: c.precision, seed: c.seed, bidirectional: c.bidirectional, dropout: c.dropout });
  return { ...plan, model };
}

/** fit() over the set-up run, then the final model scored. */
export async function runData(c: DataRunConfig, s: DataRunSetup, onProgress: (p: Progress) => void): Promise<DataRun> {
  const result = await fit(s.model, s.train, {
    epochs: c.epochs, batchSize: c.batch, loss: s.loss, optimizer: c.optimizer, schedule: scheduleOf(c.schedule, c.optimizer.lr, s.updates),
    clip: c.clip, seed: c.seed, ...(s.val ? { validation: s.val } : {}), ...(c.patience !== undefined ? { patience: c.patience } : {}), onProgress,
  });
  const on = s.val ?? s.train, e = await evaluate(s.model, on, { loss: s.loss, batchSize: c.batch });
  return { model: s.model, result, loss: s.loss, classes: s.classes, final: { on: s.val ? "validation" : "training", loss: e.loss, accuracy: e.accuracy, sequences: on.x.length } };
}

const csvNum = (x: number | null) => (x === null || !Number.isFinite(x) ? "" : String(x));

/** model.cfm, history.json, history.csv and curve.svg in `out`; returns their paths. */
export async function writeDataRun(out: string, c: DataRunConfig, s: DataRunSetup, r: DataRun, describe: string): Promise<string[]> {
  const files = ["model.cfm", "history.json", "history.csv", "curve.svg"].map((f) => join(out, f));
  writeFileSync(files[0]!, saveModel(r.model));
  const { history, bestEpoch, stoppedEarly } = r.result;
  writeFileSync(files[1]!, JSON.stringify({ config: c, loss: r.loss, outputs: s.outputs, classes: r.classes, validation: s.valFrom, history, bestEpoch, stoppedEarly, final: r.final }, null, 1) + "\n");
  writeFileSync(files[2]!, ["epoch,step,loss,val_loss,val_accuracy", ...history.map((p) => [p.epoch, p.step, csvNum(p.loss), csvNum(p.valLoss), csvNum(p.metric)].join(","))].join("\n") + "\n");
  writeFileSync(files[3]!, await plotFit(r.result, { title: `${r.model.cell} on ${c.data}`, subtitle: [describe], ...(r.classes ? { classes: r.classes } : {}) }));
  return files;
}

const fmt = (x: number) => (x === 0 ? "0" : Math.abs(x) >= 0.001 ? x.toFixed(4) : x.toExponential(2));

/** The run as `cellforge train --data` runs it: a line saying what trains, one progress line per epoch on stderr, the files, a summary (or JSON). */
export async function runDataCommand(s: DataRunSetup, c: DataRunConfig, out: string, json: boolean, say: (line: string) => void): Promise<void> {
  const o = c.optimizer, wd = o.weightDecay ? ` weight decay ${o.weightDecay}` : "";
  const opt = o.kind === "sgd" ? `SGD lr ${o.lr} momentum ${o.momentum}${wd}` : `${o.kind === "adam" ? "Adam" : "AdamW"} lr ${o.lr}${wd}`;
  const describe = `${s.model.params.length.toLocaleString("en-US")} parameters (${c.layers} layer${c.layers > 1 ? "s" : ""}${c.bidirectional ? ", bidirectional" : ""}, hidden ${c.hidden}${c.dropout ? `, dropout ${c.dropout}` : ""}, float${c.precision}); ${s.train.x.length} training sequences, validation: ${s.valFrom}; ${s.loss} over ${s.outputs} output${s.outputs > 1 ? "s" : ""} at ${c.at === "last" ? "the last step" : "every step"} (${s.why}); ${c.epochs} epochs of batch ${c.batch}, ${opt}, ${c.schedule} schedule, clip ${c.clip || "off"}, seed ${c.seed}`;
  if (!json) say(`${s.model.cell} on ${c.data}: ${describe}`);
  const progress = new ProgressLine(s.model.cell, c.epochs, 0, s.val ? (s.loss === "crossEntropy" ? "val accuracy" : "val loss") : "loss", process.stderr, "epoch");
  let r: DataRun;
  try {
    r = await runData(c, s, (p) => {
      progress.onStep(p.epoch, p.loss, false);
      progress.onEval(p.epoch, p.metric ?? p.valLoss ?? p.loss);
    });
  } finally {
    progress.done();
  }
  const files = await writeDataRun(out, c, s, r, describe);
  s.model.dispose();
  const { history, bestEpoch, stoppedEarly } = r.result, f = r.final;
  if (json) return say(JSON.stringify({ cell: s.model.cell, loss: r.loss, outputs: s.outputs, classes: r.classes, epochs: history.length, bestEpoch, stoppedEarly, final: f, out, files }, null, 1));
  const acc = f.accuracy === null ? "" : `, accuracy ${f.accuracy.toFixed(3)} (chance ${(1 / r.classes!).toFixed(3)}: one of ${r.classes} classes)`;
  say(`${f.on} data (${f.sequences} sequences): loss ${fmt(f.loss)}${acc}`);
  say(`${history.length} epochs${stoppedEarly ? ` (stopped early, --patience ${c.patience})` : ""}; best epoch ${bestEpoch}${c.patience !== undefined ? ", whose parameters the model keeps" : ""}`);
  say(`wrote ${files[0]}, history.json, history.csv, curve.svg`);
}

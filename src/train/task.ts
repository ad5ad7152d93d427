// What a task is: batches of inputs and targets, a loss, and a metric with its baseline. The tasks
// themselves are in tasks.ts (adding, copy) and reber.ts.
import type { Rng } from "../../runtime/rng.ts";

export type LossKind = "mse" | "xent";

/** One batch of B examples. Arrays are flat and row-major, time first, as the kernels take them. */
export interface Batch {
  readonly B: number;
  /** Inputs, T×B×inputSize. */
  readonly x: Float64Array;
  /** Targets: B×outputSize when scored at the last step, T×B×outputSize at every step (a probability vector for xent). */
  readonly y: Float64Array;
  /** Weight of each step, T×B, for tasks scored at every step (0 where a step is not scored); null when the task is scored at the last step. */
  readonly w: Float64Array | null;
}

export interface Metric {
  readonly name: string;
  readonly better: "lower" | "higher";
  /** Default threshold for "steps to reach the threshold". */
  readonly threshold: number;
  /** What a model that learned nothing useful scores, and how that number comes about. */
  readonly baseline: number;
  readonly baselineText: string;
  /** The metric's sum and count over one batch; `pred` is the model's output (B×O or T×B×O; logits for xent). */
  score(pred: ArrayLike<number>, batch: Batch): { sum: number; count: number };
}

export type TaskName = "adding" | "copy" | "reber";

export interface Task {
  readonly name: TaskName;
  /** For titles and tables: "adding problem, T = 100". */
  readonly title: string;
  readonly options: TaskOptions;
  /** Time steps the model runs. */
  readonly length: number;
  readonly inputSize: number;
  readonly outputSize: number;
  readonly loss: LossKind;
  /** Scored at the last step only, or at every (weighted) step. */
  readonly at: "last" | "every";
  readonly metric: Metric;
  /** A batch of B examples drawn from `rng`. */
  batch(rng: Rng, B: number): Batch;
}

/** Everything that defines a task; recorded in logs and checkpoints. */
export interface TaskOptions {
  readonly name: TaskName;
  readonly T: number;
  /** copy: symbols to recall. */
  readonly L?: number;
  /** copy: alphabet size. */
  readonly K?: number;
}

/** Training settings that suit a task, used where the command line gives none. */
export interface TaskDefaults {
  readonly hidden: number;
  readonly B: number;
  readonly steps: number;
  readonly lr: number;
}

/** A task asked for with settings it cannot have (a user's mistake). */
export class TaskError extends Error {}

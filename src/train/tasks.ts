// Sequence tasks, generated procedurally from a seeded generator: nothing is downloaded.
//
//   adding  Hochreiter & Schmidhuber 1997 (exp. 4), in the form of Le et al. 2015 (arXiv 1504.00941)
//           and Arjovsky et al. 2016: at each of T steps a value U(0,1) and a marker; exactly two
//           markers, one in each half; the target at the last step is the sum of the two marked
//           values. Predicting the mean (1) scores MSE = Var(u1 + u2) = 2/12 = 0.167.
//   copy    the copy (recall) task of Hochreiter & Schmidhuber 1997 and Arjovsky et al. 2016: L
//           symbols of K, T - 1 blanks, a delimiter, then the L symbols must be recalled, one a step
//           (T + 2L steps). Only the L recall steps are scored; guessing scores accuracy 1/K.
//   reber   embedded Reber grammar (see reber.ts): next-symbol prediction; a string counts when
//           every step of it is predicted right.
import { REBER_SYMBOLS, reberTask } from "./reber.ts";
import { type Task, TaskError, type TaskDefaults, type TaskName, type TaskOptions } from "./task.ts";

interface TaskDef {
  readonly summary: string;
  readonly T: number;
  /** What --T means for this task. */
  readonly meaningOfT: string;
  readonly defaults: TaskDefaults;
  make(o: TaskOptions): Task;
}

const int = (v: number, what: string, min: number): number => {
  if (!Number.isInteger(v) || v < min) throw new TaskError(`${what} must be an integer >= ${min}, got ${v}`);
  return v;
};

// ---- adding ------------------------------------------------------------------------------------

function addingTask(o: TaskOptions): Task {
  const T = int(o.T, "adding: T", 2), half = T >> 1;
  return {
    name: "adding", title: `adding problem, T = ${T}`, options: { name: "adding", T }, length: T,
    inputSize: 2, outputSize: 1, loss: "mse", at: "last",
    metric: {
      name: "MSE", better: "lower", threshold: 0.01, baseline: 1 / 6,
      baselineText: "always predicting the mean 1: Var(u1 + u2) = 2/12 = 0.167",
      score(pred, batch) {
        let s = 0;
        for (let b = 0; b < batch.B; b++) s += (pred[b]! - batch.y[b]!) ** 2;
        return { sum: s, count: batch.B };
      },
    },
    batch(rng, B) {
      const x = new Float64Array(T * B * 2), y = new Float64Array(B);
      for (let b = 0; b < B; b++) {
        const i1 = Math.floor(rng.next() * half), i2 = half + Math.floor(rng.next() * (T - half));
        for (let t = 0; t < T; t++) x[(t * B + b) * 2] = rng.next();
        x[(i1 * B + b) * 2 + 1] = 1;
        x[(i2 * B + b) * 2 + 1] = 1;
        y[b] = x[(i1 * B + b) * 2]! + x[(i2 * B + b) * 2]!;
      }
      return { B, x, y, w: null };
    },
  };
}

// ---- copy --------------------------------------------------------------------------------------

/** Index of the largest of `n` values of `a` from `off`. */
export function argmax(a: ArrayLike<number>, off: number, n: number): number {
  let k = 0;
  for (let j = 1; j < n; j++) if (a[off + j]! > a[off + k]!) k = j;
  return k;
}

function copyTask(o: TaskOptions): Task {
  const T = int(o.T, "copy: T", 1), L = int(o.L ?? 10, "copy: L", 1), K = int(o.K ?? 8, "copy: K", 2);
  const n = T + 2 * L, BLANK = K, DELIM = K + 1, I = K + 2;
  return {
    name: "copy", title: `copy task, T = ${T} (recall ${L} of ${K} symbols, ${n} steps)`, options: { name: "copy", T, L, K }, length: n,
    inputSize: I, outputSize: K, loss: "xent", at: "every",
    metric: {
      name: "symbol accuracy", better: "higher", threshold: 0.99, baseline: 1 / K,
      baselineText: `guessing one of ${K} symbols: 1/${K} = ${(1 / K).toFixed(3)}`,
      score(pred, batch) {
        let s = 0, c = 0;
        for (let r = 0; r < n * batch.B; r++) {
          if (!batch.w![r]) continue;
          c++;
          if (argmax(pred, r * K, K) === argmax(batch.y, r * K, K)) s++;
        }
        return { sum: s, count: c };
      },
    },
    batch(rng, B) {
      const x = new Float64Array(n * B * I), y = new Float64Array(n * B * K), w = new Float64Array(n * B);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < n; t++) {
          const r = t * B + b;
          if (t < L) {
            const s = Math.floor(rng.next() * K);
            x[r * I + s] = 1;
            const rr = (T + L + t) * B + b; // recalled T + L steps later
            y[rr * K + s] = 1;
            w[rr] = 1;
          } else x[r * I + (t === T + L - 1 ? DELIM : BLANK)] = 1;
        }
      }
      return { B, x, y, w };
    },
  };
}

export const TASKS = {
  adding: {
    summary: "adding problem: sum the two marked values of a long sequence (MSE at the last step)",
    T: 100, meaningOfT: "sequence length",
    defaults: { hidden: 32, B: 32, steps: 1500, lr: 0.01 },
    make: addingTask,
  },
  copy: {
    summary: "copy task: recall L symbols after a delay of T steps (cross-entropy at the recall steps)",
    T: 20, meaningOfT: "delay: T - 1 blanks and a delimiter between the symbols and their recall",
    defaults: { hidden: 64, B: 32, steps: 1500, lr: 0.01 },
    make: copyTask,
  },
  reber: {
    summary: `embedded Reber grammar: predict the possible next symbols (${REBER_SYMBOLS.join("")}) of each string`,
    T: 30, meaningOfT: "steps: strings of at most T + 1 symbols",
    defaults: { hidden: 16, B: 32, steps: 1000, lr: 0.01 },
    make: reberTask,
  },
} as const satisfies Record<TaskName, TaskDef>;

export function isTaskName(s: string): s is TaskName {
  return Object.hasOwn(TASKS, s);
}

export function makeTask(o: TaskOptions): Task {
  return TASKS[o.name].make(o);
}

// The embedded Reber grammar (Cleeremans, Servan-Schreiber & McClelland 1989; Hochreiter &
// Schmidhuber 1997, exp. 1): B, then T or P, then a string of Reber's grammar, then the same T or P
// again, then E. Predicting that second-to-last symbol needs the second one, remembered across the
// whole inner string: the long-term dependency.
//
// The task is next-symbol prediction: at each step the input is the current symbol (one-hot) and the
// target is the set of symbols the grammar allows next, as a uniform distribution over them (soft
// cross-entropy). A step is predicted right when the |S| most probable symbols are exactly the
// allowed set S; a string is predicted right when all of its steps are. A model that learned the
// inner grammar but not the dependency gets about half the strings right (it must guess T or P).
import type { Rng } from "../../runtime/rng.ts";
import { type Task, TaskError, type TaskOptions } from "./task.ts";

export const REBER_SYMBOLS = ["B", "T", "P", "S", "X", "V", "E"] as const;
type Sym = (typeof REBER_SYMBOLS)[number];
const INDEX = Object.fromEntries(REBER_SYMBOLS.map((s, i) => [s, i])) as Record<Sym, number>;

/** Reber's grammar as a transition table: in state s, emit a symbol and go to its state (-1: done); each edge with probability 1/2. */
const GRAPH: readonly (readonly (readonly [Sym, number])[])[] = [
  [["T", 1], ["P", 2]], // 0: after the inner B
  [["S", 1], ["X", 3]], // 1
  [["T", 2], ["V", 4]], // 2
  [["X", 2], ["S", 5]], // 3
  [["P", 3], ["V", 5]], // 4
  [["E", -1]], //          5
];

export interface ReberString {
  readonly symbols: string;
  /** legal[i]: the symbols the grammar allows after symbols[0..i] (empty after the final E). */
  readonly legal: readonly string[];
}

/** One embedded Reber string, drawn with every choice 1/2. */
export function embeddedReber(rng: Rng): ReberString {
  const c: Sym = rng.next() < 0.5 ? "T" : "P";
  const syms: Sym[] = ["B", c, "B"];
  const legal: string[] = ["TP", "B", "TP"];
  for (let s = 0; s !== -1; ) {
    const edges = GRAPH[s]!;
    const [sym, next] = edges.length === 1 || rng.next() < 0.5 ? edges[0]! : edges[1]!;
    syms.push(sym);
    s = next;
    legal.push(s === -1 ? c : GRAPH[s]!.map((e) => e[0]).join(""));
  }
  syms.push(c, "E");
  legal.push("E", "");
  return { symbols: syms.join(""), legal };
}

/** The allowed next symbols after each prefix of `s`, or null when `s` is not an embedded Reber string. */
export function parseEmbeddedReber(s: string): string[] | null {
  const c = s[1];
  if (s[0] !== "B" || (c !== "T" && c !== "P") || s[2] !== "B") return null;
  const legal = ["TP", "B", "TP"];
  let state = 0, i = 3;
  for (; state !== -1; i++) {
    const e = GRAPH[state]!.find((x) => x[0] === s[i]);
    if (!e) return null;
    state = e[1];
    legal.push(state === -1 ? c : GRAPH[state]!.map((x) => x[0]).join(""));
  }
  if (s[i] !== c || s[i + 1] !== "E" || s.length !== i + 2) return null;
  legal.push("E", "");
  return legal;
}

const K = REBER_SYMBOLS.length;

export function reberTask(o: TaskOptions): Task {
  const T = o.T;
  if (!Number.isInteger(T) || T < 8) throw new TaskError(`reber: T must be an integer >= 8 (the shortest string has 9 symbols), got ${T}`);
  return {
    name: "reber", title: `embedded Reber grammar, strings of at most ${T + 1} symbols`, options: { name: "reber", T }, length: T,
    inputSize: K, outputSize: K, loss: "xent", at: "every",
    metric: {
      name: "strings fully correct", better: "higher", threshold: 0.99, baseline: 0.5,
      baselineText: "learning all but the long-range dependency, and so guessing the T or P before the last E: 0.5",
      score(pred, batch) {
        let right = 0;
        for (let b = 0; b < batch.B; b++) {
          let ok = true;
          for (let t = 0; t < T && ok; t++) {
            const r = t * batch.B + b;
            if (!batch.w![r]) break;
            ok = topSetMatches(pred, batch.y, r * K);
          }
          if (ok) right++;
        }
        return { sum: right, count: batch.B };
      },
    },
    batch(rng, B) {
      const x = new Float64Array(T * B * K), y = new Float64Array(T * B * K), w = new Float64Array(T * B);
      for (let b = 0; b < B; b++) {
        let s: ReberString;
        do s = embeddedReber(rng);
        while (s.symbols.length > T + 1); // the rare longer string is drawn again
        for (let t = 0; t + 1 < s.symbols.length; t++) {
          const r = t * B + b, next = s.legal[t]!;
          x[r * K + INDEX[s.symbols[t] as Sym]] = 1;
          for (const n of next) y[r * K + INDEX[n as Sym]] = 1 / next.length;
          w[r] = 1;
        }
      }
      return { B, x, y, w };
    },
  };
}

/** The |S| largest of pred[off..off+K) are exactly S = {k : target[off+k] > 0}. */
function topSetMatches(pred: ArrayLike<number>, target: ArrayLike<number>, off: number): boolean {
  let minIn = Infinity, maxOut = -Infinity;
  for (let k = 0; k < K; k++) {
    const v = pred[off + k]!;
    if (target[off + k]! > 0) minIn = Math.min(minIn, v);
    else maxOut = Math.max(maxOut, v);
  }
  return minIn > maxOut;
}

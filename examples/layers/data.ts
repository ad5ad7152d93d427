// The data: "two events in noise", the temporal order problem of Hochreiter & Schmidhuber (1997,
// experiment 6a) on continuous signals. A sequence of 8 to 40 steps of two noisy channels holds two
// events, one in its first half and one in its second; an event is X (1, 1) or Y (1, -1) on top of the
// noise. The class is the pair in order: 0 = X…X, 1 = X…Y, 2 = Y…X, 3 = Y…Y. A forward reader must
// carry the first event to the end; read in both directions, each event is the later one of a direction.
// Deterministic from the seed; no `node:` module, so the browser page makes its own examples too.
import type { Batch } from "cellforge/nn";
import { Rng } from "cellforge/runtime";

export const CLASSES = ["X…X", "X…Y", "Y…X", "Y…Y"] as const;
export const FEATURES = 2;

export interface Examples {
  /** Each sequence as its steps, each step [channel 0, channel 1]. */
  readonly x: number[][][];
  /** Each sequence's class, an index into CLASSES. */
  readonly y: number[];
}

export function twoEvents(count: number, seed: number, noise = 0.25): Examples {
  const rng = new Rng(seed), x: number[][][] = [], y: number[] = [];
  for (let n = 0; n < count; n++) {
    const length = 8 + Math.floor(rng.next() * 33), half = Math.floor(length / 2);
    const seq = Array.from({ length }, () => [noise * rng.normal(), noise * rng.normal()]);
    const first = rng.next() < 0.5 ? 0 : 1, second = rng.next() < 0.5 ? 0 : 1; // 0: X, 1: Y
    const at = [Math.floor(rng.next() * half), half + Math.floor(rng.next() * (length - half))];
    [first, second].forEach((event, k) => {
      const step = seq[at[k]!]!;
      step[0]! += 1;
      step[1]! += event === 0 ? 1 : -1;
    });
    x.push(seq);
    y.push(2 * first + second);
  }
  return { x, y };
}

/** The examples in cellforge's dataset JSON ({ "inputs": [...], "targets": [...] }: nn/data.ts), 4 decimals. */
export function toJson(d: Examples): string {
  const steps = (s: number[][]) => `[${s.map((v) => `[${v.map((u) => +u.toFixed(4)).join(",")}]`).join(",")}]`;
  return `{"inputs":[\n${d.x.map(steps).join(",\n")}\n],\n"targets":[${d.y.join(",")}]}\n`;
}

/**
 * The examples as padded float32 batches (batch-first: batch×steps×features, zeros past each length)
 * of similar lengths, in a new order each pass when `seed` is given. A batch runs one kernel call per
 * distinct length it holds (nn/recurrent.ts cuts its steps where an example ends), so batches sorted
 * by length, as torchtext's BucketIterator and tf.data's bucket_by_sequence_length make them, train
 * several times faster than batches of random lengths.
 */
export function byLength(d: Examples, batchSize: number, seed?: number): Iterable<Batch> {
  const ids = d.y.map((_, n) => n).sort((a, b) => d.x[a]!.length - d.x[b]!.length), batches: Batch[] = [];
  for (let s = 0; s < ids.length; s += batchSize) {
    const part = ids.slice(s, s + batchSize), steps = d.x[part.at(-1)!]!.length, x = new Float32Array(part.length * steps * FEATURES);
    part.forEach((n, b) => d.x[n]!.forEach((step, t) => x.set(step, (b * steps + t) * FEATURES)));
    batches.push({ x, batch: part.length, steps, lengths: part.map((n) => d.x[n]!.length), y: part.map((n) => d.y[n]!) });
  }
  const rng = seed === undefined ? null : new Rng(seed);
  return {
    *[Symbol.iterator]() {
      const order = batches.slice();
      for (let i = order.length - 1; rng && i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      yield* order;
    },
  };
}

// Seeds for independent random streams: initialisation of each layer, the training batch of each
// step, the evaluation set. A batch's data depends only on (seed, step), so a run resumed from a
// checkpoint draws exactly the batches it would have drawn without stopping: no generator state
// needs saving.
import { Rng } from "../../runtime/rng.ts";

/** FNV-1a over the characters of `s`. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The murmur3 finaliser: every input bit affects every output bit. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit seed for stream `stream`, item `index`, of a run seeded with `seed`. */
export function deriveSeed(seed: number, stream: string, index = 0): number {
  return mix(mix(mix(seed >>> 0) ^ hashString(stream)) ^ (index >>> 0));
}

/** A generator for stream `stream`, item `index`. */
export function streamRng(seed: number, stream: string, index = 0): Rng {
  return new Rng(deriveSeed(seed, stream, index));
}

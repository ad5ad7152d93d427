// A small seeded generator (SplitMix64 over BigInt-free 32-bit halves: mulberry32), so checks and
// initialisations are reproducible from a seed and never touch Math.random.

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) ^ 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const hi = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return hi;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  fill(a: Float64Array, lo = -1, hi = 1): Float64Array {
    for (let i = 0; i < a.length; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
}

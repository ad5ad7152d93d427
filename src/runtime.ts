// The small runtime the generated kernels import: argument checks and parameter initialisation.
// Nothing here runs inside a kernel's loops.
import { Rng } from "./rng.ts";

export type FloatArray = Float32Array | Float64Array;

/** Sizes must be positive integers; returns them for destructuring. */
export function checkSizes<S extends Readonly<Record<string, number>>>(cell: string, sizes: S, names: readonly string[]): S {
  if (!sizes || typeof sizes !== "object") throw new TypeError(`${cell}: sizes must be an object with ${names.join(", ")}`);
  for (const n of names) {
    const v = Object.hasOwn(sizes, n) ? sizes[n] : undefined; // a size named toString is not Object.prototype's
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new RangeError(`${cell}: size ${n} must be a positive integer, got ${String(v)}`);
  }
  return sizes;
}

export function checkCount(cell: string, what: string, v: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new RangeError(`${cell}: ${what} must be a positive integer, got ${String(v)}`);
  return v;
}

/** A kernel argument must be the right kind of array with exactly the right length. */
export function checkArray(cell: string, name: string, a: unknown, ctor: Float32ArrayConstructor | Float64ArrayConstructor, length: number, shape: string): void {
  if (!(a instanceof ctor)) {
    const got = a === undefined ? "undefined" : a === null ? "null" : (a as object).constructor?.name ?? typeof a;
    throw new TypeError(`${cell}: ${name} must be a ${ctor.name} of length ${length} (${shape}), got ${got}`);
  }
  if (a.length !== length) throw new RangeError(`${cell}: ${name} must have length ${length} (${shape}), got ${a.length}`);
}

export type Init = "uniform" | "zeros" | "ones" | { readonly constant: number } | { readonly uniform: number };

/** Fill `a[off, off+n)` by an init rule; `k` is the default uniform bound 1/sqrt(H). */
export function initSlice(a: Float64Array, off: number, n: number, init: Init, k: number, rng: Rng): void {
  if (init === "zeros") a.fill(0, off, off + n);
  else if (init === "ones") a.fill(1, off, off + n);
  else if (typeof init === "object" && "constant" in init) a.fill(init.constant, off, off + n);
  else {
    const r = typeof init === "object" && "uniform" in init ? init.uniform : k;
    for (let i = 0; i < n; i++) a[off + i] = rng.uniform(-r, r);
  }
}

export { Rng };

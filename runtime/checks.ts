// The small runtime the generated kernels import: argument checks and parameter initialisation.
// Nothing here runs inside a kernel's loops.
import { Rng } from "./rng.ts";

export type FloatArray = Float32Array | Float64Array;

/** Sizes must be positive integers; returns them for destructuring. */
/** A size's value, wherever sizes are given (a kernel's sizes, a cell's defaults, a case, `--sizes`): a positive integer. */
export const isSize = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1;

export function checkSizes<S extends Readonly<Record<string, number>>>(cell: string, sizes: S, names: readonly string[]): S {
  if (!sizes || typeof sizes !== "object") throw new TypeError(`${cell}: sizes must be an object with ${names.join(", ")}`);
  for (const n of names) {
    const v = Object.hasOwn(sizes, n) ? sizes[n] : undefined; // a size named toString is not Object.prototype's
    if (!isSize(v)) throw new RangeError(`${cell}: size ${n} must be a positive integer, got ${String(v)}`);
  }
  return sizes;
}

/** A size equality of the cell (`D = H`): the size it determines must have the value the others give it. */
export function checkConstraint(cell: string, text: string, size: string, got: number, want: number): void {
  if (got !== want) throw new RangeError(`${cell}: the sizes break the constraint ${text}: ${size} must be ${want}, got ${String(got)}`);
}

/** A parameter declared with heads (a block-diagonal matrix): each of its sizes must be divisible by them. */
export function checkHeads(cell: string, param: string, heads: number, size: string, got: number): void {
  if (got % heads !== 0) throw new RangeError(`${cell}: parameter ${param} has ${heads} heads, so its size ${size} must be divisible by ${heads}, got ${String(got)}`);
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

/**
 * The most bytes of buffers one kernel, one case or one run of the reference evaluator may take:
 * 4 GiB, the largest WebAssembly memory, on the ts path too. Work past it is refused up front.
 */
export const MAX_BUFFER_BYTES = 2 ** 32;

/** Work that cannot fit in memory, refused before anything is allocated; the message states the bytes. */
export class LimitError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "LimitError";
  }
}

/** `512 bytes`, `3.9 MB`, `240.0 GB` (powers of 1000), and past exabytes `1.2e+24 bytes`. */
export function formatBytes(n: number): string {
  if (!(n < 1e21)) return Number.isFinite(n) ? `${n.toExponential(1)} bytes` : "more bytes than a number holds";
  if (n < 1000) return `${n} bytes`;
  const units = ["kB", "MB", "GB", "TB", "PB", "EB"];
  let u = -1;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return `${n.toFixed(1)} ${units[u]}`;
}

/** `D=3, H=100000, B=2, T=3`: the sizes, then B and T when given. */
export function sizesText(sizes: Readonly<Record<string, number>>, B?: number, T?: number): string {
  return [...Object.entries(sizes), ...(B === undefined ? [] : [["B", B]]), ...(T === undefined ? [] : [["T", T]])].map(([k, v]) => `${k}=${v}`).join(", ");
}

/**
 * Refuse work whose buffers would pass MAX_BUFFER_BYTES, before any is allocated: `floats` values
 * of `bits`-bit floats for `what` ("kernel for gru at D=3, H=100000, B=2, T=3"), one `unit` of work.
 * A count past 2^53 (sizes whose product no double holds exactly) is refused as well.
 */
export function checkMemory(what: string, floats: number, bits: 32 | 64, unit: "kernel" | "case" | "run"): void {
  const bytes = floats * (bits / 8);
  if (Number.isSafeInteger(floats) && floats >= 0 && bytes <= MAX_BUFFER_BYTES) return;
  throw new LimitError(`${what} needs ${formatBytes(bytes)} of buffers (float${bits}); the limit is 4 GiB per ${unit}`);
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

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

/**
 * The steps whose saved values a kernel keeps at once (KernelOptions.checkpoint): all T by default;
 * k steps, or ⌈√T⌉ for "sqrt", when the backward is to recompute each earlier segment of k steps
 * from the state before it. More than T is T.
 */
export function segmentSteps(cell: string, T: number, checkpoint: number | "sqrt" | undefined): number {
  if (checkpoint === undefined) return T;
  if (checkpoint === "sqrt") return Math.ceil(Math.sqrt(T));
  if (typeof checkpoint !== "number" || !Number.isInteger(checkpoint) || checkpoint < 1)
    throw new RangeError(`${cell}: options.checkpoint must be a positive integer (steps per segment) or "sqrt", got ${typeof checkpoint === "string" ? JSON.stringify(checkpoint) : String(checkpoint)}`);
  return Math.min(checkpoint, T);
}

/** The largest seed: runtime/rng.ts keeps 32 bits of it, so each integer from 0 to this one starts its own stream. */
export const MAX_SEED = 2 ** 32 - 1;

/** initParams's seed: an integer from 0 to MAX_SEED (a larger, negative or fractional one would be wrapped or cut by the Rng, silently). */
export function checkSeed(cell: string, seed: unknown): number {
  const want = `an integer from 0 to ${MAX_SEED}`;
  if (typeof seed !== "number") throw new TypeError(`${cell}: initParams: the seed must be ${want}, got ${seed === null ? "null" : typeof seed === "string" ? `the string ${JSON.stringify(seed)}` : typeof seed}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`${cell}: initParams: the seed must be ${want}, got ${String(seed)}`);
  return seed;
}

/** A kernel called out of order: `backward` before any `forward` has finished. */
export class KernelOrderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KernelOrderError";
  }
}

/** `backward` reads the values the last `forward` saved: without a finished forward it would read zeros or a half-written tape. */
export function checkForwarded(cell: string, forwarded: boolean): void {
  if (!forwarded)
    throw new KernelOrderError(`${cell}: backward needs a forward first: call kernel.forward(params, inputs, initial, out) and let it finish, then backward with the same arguments`);
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

export type Init = "uniform" | "zeros" | "ones" | "glorot" | "orthogonal" | { readonly constant: number } | { readonly uniform: number };

/** A matrix rule (glorot, orthogonal) asked of a slice whose row count is unknown or does not divide it. */
export class InitError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "InitError";
  }
}

/**
 * Fill `a[off, off+n)` by an init rule; `k` is the default uniform bound 1/sqrt(H). `rows` is the
 * parameter's row count (its matrix is rows × n/rows, row-major), which only "glorot" and
 * "orthogonal" read: kernels generated before those rules existed do not pass it, and their rules
 * draw exactly what they always drew.
 */
export function initSlice(a: Float64Array, off: number, n: number, init: Init, k: number, rng: Rng, rows?: number): void {
  if (init === "zeros") a.fill(0, off, off + n);
  else if (init === "ones") a.fill(1, off, off + n);
  else if (typeof init === "object" && "constant" in init) a.fill(init.constant, off, off + n);
  else if (init === "glorot" || init === "orthogonal") {
    if (rows === undefined || !Number.isInteger(rows) || rows < 1 || n % rows !== 0)
      throw new InitError(`init "${init}" needs the parameter's row count, a divisor of its ${n} numbers, got ${String(rows)}`);
    if (init === "glorot") glorot(a, off, rows, n / rows, rng);
    else orthogonal(a, off, rows, n / rows, rng);
  } else {
    const r = typeof init === "object" && "uniform" in init ? init.uniform : k;
    for (let i = 0; i < n; i++) a[off + i] = rng.uniform(-r, r);
  }
}

/**
 * Xavier/Glorot uniform (Glorot & Bengio 2010; torch.nn.init.xavier_uniform_): U(±sqrt(6/(fan_in +
 * fan_out))) with fan_in = cols and fan_out = rows, the fans torch takes of a 2-D weight as stored.
 */
function glorot(a: Float64Array, off: number, rows: number, cols: number, rng: Rng): void {
  const r = Math.sqrt(6 / (rows + cols));
  for (let i = 0; i < rows * cols; i++) a[off + i] = rng.uniform(-r, r);
}

/**
 * Orthogonal (Saxe et al. 2014; torch.nn.init.orthogonal_, Keras's Orthogonal): the Q of a Gaussian
 * matrix's QR, its columns times the signs of R's diagonal (so Q is Haar-distributed). A matrix whose
 * rows are a whole multiple k of its columns (a stacked [k·H, H] recurrent matrix, or a parameter
 * with heads, stored [H, H/heads]) gets k square blocks, each orthogonal on its own, drawn top to
 * bottom; any other tall matrix has orthonormal columns, a wide one orthonormal rows.
 */
function orthogonal(a: Float64Array, off: number, rows: number, cols: number, rng: Rng): void {
  if (rows % cols === 0) {
    for (let b = 0; b < rows / cols; b++) orthonormalColumns(a, off + b * cols * cols, cols, cols, false, rng);
  } else if (rows > cols) orthonormalColumns(a, off, rows, cols, false, rng);
  else orthonormalColumns(a, off, cols, rows, true, rng); // as torch: the transpose of a tall one
}

/**
 * An m×n (m >= n) Gaussian matrix's Q with R's diagonal made positive, written row-major at `off`
 * (transposed, n×m, when `wide`). Gram-Schmidt computes exactly that Q (its R has a positive
 * diagonal); each column is orthogonalised twice against the ones before it ("twice is enough",
 * Giraud et al. 2005), so QᵀQ = I to rounding whatever the matrix's condition.
 */
function orthonormalColumns(a: Float64Array, off: number, m: number, n: number, wide: boolean, rng: Rng): void {
  const g = new Float64Array(m * n);
  for (let i = 0; i < m * n; i++) g[i] = rng.normal(); // row-major m×n
  const q = new Float64Array(m * n); // column-major: column j at j*m
  for (let j = 0; j < n; j++) {
    const v = q.subarray(j * m, (j + 1) * m);
    for (let i = 0; i < m; i++) v[i] = g[i * n + j]!;
    for (let pass = 0; pass < 2; pass++)
      for (let c = 0; c < j; c++) {
        const u = q.subarray(c * m, (c + 1) * m);
        let d = 0;
        for (let i = 0; i < m; i++) d += u[i]! * v[i]!;
        for (let i = 0; i < m; i++) v[i] = v[i]! - d * u[i]!;
      }
    let s = 0;
    for (let i = 0; i < m; i++) s += v[i]! * v[i]!;
    const norm = Math.sqrt(s);
    for (let i = 0; i < m; i++) v[i] = v[i]! / norm;
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[off + (wide ? j * m + i : i * n + j)] = q[j * m + i]!;
}

export { Rng };

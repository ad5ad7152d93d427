// Where a kernel's buffers live and how its products and loops run: the registry of backends, and
// `kernelMemory`, which a generated kernel calls once when it is created.
//
// A generated kernel asks `kernelMemory` for its buffers, its three products (codegen/gemm.ts's
// NT, NN and TN) and its loops; `kernelMemory` picks a backend from BACKENDS (KernelOptions.backend,
// or the first available one for "auto"), checks the threads and the memory it may take, and hands
// the request to the backend (runtime/backend.ts says what a backend is). The two built in:
// runtime/backend-ts.ts (typed arrays, TypeScript products and loops) and runtime/backend-wasm.ts
// (one WebAssembly memory, SIMD products and loops, optionally on worker threads).
//
// The check (check/kernelcheck.ts), `check`'s columns and the bench walk BACKENDS: a backend added
// there is checked and timed like the others.
import type { BackendMemory, KernelBackend, LoopsModuleSource, MemoryNeed, Products, WasmModuleSource } from "./backend.ts";
import { tsBackend } from "./backend-ts.ts";
import { reportSimd, simdAvailable, wasmBackend } from "./backend-wasm.ts";
import { type FloatArray, LimitError, checkArray, checkForwarded, checkMemory, formatBytes } from "./checks.ts";
import { workerPool } from "./pool.ts";
import { gemmNN32, gemmNN64, gemmNT32, gemmNT64, gemmTN32, gemmTN64 } from "./gemm.ts";

export type { Availability, BackendMemory, KernelBackend, LoopsModuleSource, MemoryNeed, MemoryRequest, Products, WasmModuleSource } from "./backend.ts";
export { reportSimd, simdAvailable, tsBackend, wasmBackend, workerPool };

/**
 * The built-in backends' names. A generated kernel declares its `backend` as one of these (the
 * emitter's `Kernel` interface); a backend added to BACKENDS reports its own name all the same.
 */
export type Backend = "wasm" | "ts";
/** A backend's name: a built-in one, or one added to BACKENDS. */
export type BackendName = Backend | (string & {});

export interface KernelOptions {
  /** a backend of BACKENDS by name, or "auto" (the default): "wasm" where WebAssembly SIMD is available, else "ts" */
  readonly backend?: BackendName | "auto";
  /** threads for a parallel backend's (wasm's) products and loops: 1 (default), 2, … or "auto" (the machine's cores) */
  readonly threads?: number | "auto";
  /**
   * Work below which a product or a loop stays on the calling thread: products of fewer flops
   * (default 2^18), loops over fewer elements (default 2^12). Tests set 0 to split everything.
   */
  readonly minSplitFlops?: number;
  /**
   * Checkpointed backpropagation through time: keep the values the backward reads for segments of
   * this many steps (or ⌈√T⌉ for "sqrt") instead of all T, and have the backward recompute each
   * earlier segment's from the state before it (every state is in `out` already). The saved values
   * then take k/T of their memory, for one more forward pass over all but the last segment; the
   * gradients are the same bits. Default: keep all T steps.
   */
  readonly checkpoint?: number | "sqrt";
}

/**
 * An argument of a kernel's calls: what it must be (its length, and its name and shape for the
 * error that refuses it), and the kernel's own copy of it on a backend that keeps one (wasm), else null.
 */
export interface Region<A extends FloatArray> {
  readonly copy: A | null;
  readonly length: number;
  readonly name: string;
  readonly shape: string;
}

/** A kernel's memory on the backend it runs on: the backend's buffers, products and loops, its name and threads. */
export interface KernelMemory<A extends FloatArray> extends Omit<BackendMemory<A>, "region" | "input" | "output" | "flush"> {
  /** Where the argument `name` (of `length` floats, `shape` in words: "T×B×D") goes. */
  region(length: number, name: string, shape: string): Region<A>;
  /** An argument the kernel reads: checked (its type and length), then copied into its region, if any. */
  input(region: Region<A>, given: A): A;
  /** An argument the kernel writes: checked, then its region, or the caller's array. */
  output(region: Region<A>, given: A): A;
  /** After a call: results copied from the region to the caller's array. */
  flush(region: Region<A>, given: A): void;
  readonly backend: Backend;
  readonly threads: number;
  /**
   * At the start of each call. A `backward` (pass "backward") is refused unless a forward has
   * finished since the last forward began. Kernels generated before the order was checked call it
   * without a pass, and run as they did.
   */
  begin(pass?: "forward" | "backward"): void;
  /** At the end of a forward: its saved values are whole, for backward. */
  forwarded(): void;
}

// ------------------------------------------------------------------------ the registry

/**
 * Every backend, in the order "auto" prefers them (the first available one is the default). Add a
 * backend here (or with `registerBackend`) and the check, `check`'s columns and the bench take it up.
 */
export const BACKENDS: KernelBackend[] = [wasmBackend, tsBackend];

/**
 * The backend whose float64 kernels the check compares with the reference evaluator; every other
 * backend's kernels are compared with its kernels. It must run everywhere.
 */
export const REFERENCE_BACKEND: KernelBackend = tsBackend;

/** Add a backend to BACKENDS (after the others: "auto" does not pick it while they run); returns its removal. */
export function registerBackend(backend: KernelBackend): () => void {
  if (backend.name === "auto" || BACKENDS.some((b) => b.name === backend.name)) throw new Error(`a backend named ${JSON.stringify(backend.name)} is already registered, or the name is "auto"`);
  BACKENDS.push(backend);
  return () => {
    const i = BACKENDS.indexOf(backend);
    if (i >= 0) BACKENDS.splice(i, 1);
  };
}

/** The backends this engine runs, the reference one first, then the others in registry order. */
export function availableBackends(): KernelBackend[] {
  return [REFERENCE_BACKEND, ...BACKENDS.filter((b) => b !== REFERENCE_BACKEND)].filter((b) => b.available().ok);
}

/** `"wasm", "ts" or "auto"`: names as a user gives them. */
const choices = (names: readonly string[], last: string) => [...names.map((n) => JSON.stringify(n)), last].join(", ").replace(/, ([^,]*)$/, " or $1");

/** The backend `options.backend` names, or "auto"'s choice; refuses an unknown or unavailable one, naming the choices. */
export function resolveBackend(cell: string, options: KernelOptions): KernelBackend {
  const b = options.backend ?? "auto";
  if (b === "auto") {
    const first = BACKENDS.find((x) => x.available().ok);
    if (!first) throw new Error(`${cell}: no backend runs on this engine`);
    return first;
  }
  const found = BACKENDS.find((x) => x.name === b);
  if (!found) throw new TypeError(`${cell}: backend must be ${choices(BACKENDS.map((x) => x.name), '"auto"')}, got ${JSON.stringify(b)}`);
  const a = found.available();
  if (!a.ok) {
    const others = BACKENDS.filter((x) => x !== found && x.available().ok).map((x) => x.name);
    throw new Error(`${cell}: backend "${found.name}" needs ${a.missing}, which this engine does not have (use backend ${choices(others, '"auto"')})`);
  }
  return found;
}

/** Whether `backend` can run a kernel on `threads` threads here. */
export function runsOnThreads(backend: KernelBackend, threads: number): boolean {
  return threads === 1 || (backend.parallel && workerPool.available());
}

function resolveThreads(cell: string, options: KernelOptions, backend: KernelBackend): number {
  const t = options.threads ?? 1;
  // in a browser, "auto" is the workers started (workerPool.start) and the page's thread
  if (t === "auto") return !backend.parallel ? 1 : workerPool.onDemand() ? workerPool.cores() : workerPool.size() + 1;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > 64) throw new RangeError(`${cell}: threads must be 1, 2, … or "auto", got ${JSON.stringify(t)}`);
  if (t > 1 && !backend.parallel) {
    const parallel = BACKENDS.filter((b) => b.parallel).map((b) => b.name);
    throw new Error(`${cell}: threads > 1 needs ${parallel.length ? `the ${parallel.join(" or ")} backend` : "a backend that runs on worker threads"} (the ${backend.name} kernels run on one thread)`);
  }
  const browser = "window" in globalThis || !workerPool.onDemand();
  const todo = `await workerPool.start(${t}) before making the kernel (or use threads: 1)`;
  if (t > 1 && !workerPool.available())
    throw new Error(browser
      ? `${cell}: threads > 1 in a browser runs on Web Workers over a SharedArrayBuffer, which needs a cross-origin-isolated page: serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, then ${todo}`
      : `${cell}: threads > 1 runs the products on Node's worker threads (node:worker_threads and SharedArrayBuffer), which this engine does not have`);
  if (t > 1 && !workerPool.onDemand() && workerPool.size() < t - 1)
    throw new Error(`${cell}: threads: ${t} in a browser runs on ${t - 1} Web Worker${t > 2 ? "s" : ""} started ahead (${workerPool.size()} started): ${todo}`);
  return t;
}

// ------------------------------------------------------------------------ the kernel's memory

/** A precision a kernel runs in: its bits, and the TypeScript products over its arrays (runtime/gemm.ts). */
export interface Floats<A extends FloatArray> {
  readonly bits: 32 | 64;
  readonly products: Products<A>;
}
export const FLOAT64: Floats<Float64Array> = { bits: 64, products: { NT: gemmNT64, NN: gemmNN64, TN: gemmTN64 } };
export const FLOAT32: Floats<Float32Array> = { bits: 32, products: { NT: gemmNT32, NN: gemmNN32, TN: gemmTN32 } };

/**
 * Buffers and products for one kernel in the precision `floats`, on the backend `options` picks. `need` is what every buffer
 * the kernel will allocate takes (saved values, scratch, argument regions, transposed weights): the
 * memory is sized once. `wasm` and `loops` are the kernel's products and loops in WebAssembly, and
 * `floats.products` its products in TypeScript; the backend takes the ones it runs.
 */
export function kernelMemory<A extends FloatArray>(
  floats: Floats<A>, cell: string, options: KernelOptions, need: MemoryNeed, wasm: WasmModuleSource, loops: LoopsModuleSource | null,
): KernelMemory<A> {
  const { bits, products: ts } = floats;
  const backend = resolveBackend(cell, options);
  const threads = resolveThreads(cell, options, backend);
  // refused up front, on every backend, with the bytes it would take
  const what = `${cell}: the kernel for these sizes, B and T`;
  checkMemory(what, need.floats, bits, "kernel");
  const F = bits === 32 ? Float32Array : Float64Array;
  const checked = (r: Region<A>, given: A) => checkArray(cell, r.name, given, F, r.length, r.shape);
  /** An allocation the engine refuses below the limit (a machine with less memory) says so too. */
  const outOfMemory = (bytes: number) => new LimitError(`${what} could not get ${formatBytes(bytes)} of memory for its buffers (float${bits}): this machine has less to give`);
  const m = backend.memory<A>({ bits, cell, threads, minSplitFlops: options.minSplitFlops, need, wasm, loops, ts, what, outOfMemory });
  let disposed = false, forwarded = false;
  return {
    ...m,
    region: (length, name, shape) => ({ copy: m.region(length), length, name, shape }),
    input(r, given) {
      checked(r, given);
      return m.input(r.copy, given);
    },
    output(r, given) {
      checked(r, given);
      return m.output(r.copy, given);
    },
    flush: (r, given) => m.flush(r.copy, given),
    // a registered backend's name is outside the built-in union the generated `Kernel` declares
    backend: backend.name as Backend,
    threads,
    begin(pass) {
      if (disposed) throw new Error(`${cell}: this kernel was disposed`);
      // a forward that stops part way (a refused argument) may leave the saved values half written
      if (pass === "forward") forwarded = false;
      if (pass === "backward") checkForwarded(cell, forwarded);
      m.begin();
    },
    forwarded() {
      forwarded = true;
    },
    dispose() {
      disposed = true;
      m.dispose();
    },
  };
}

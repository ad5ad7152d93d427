// The runtime of the WebAssembly path: where a kernel's buffers live, and how its products run.
//
// A generated kernel asks `kernelMemory` for its buffers, its three products (codegen/gemm.ts's
// NT, NN and TN) and its loops. On the ts backend the buffers are ordinary typed arrays, the
// products the generated TypeScript ones, and the loops run in TypeScript. On the wasm backend every
// buffer — parameters, saved values, scratch, and the kernel's own copy of each argument — is a view
// into one WebAssembly memory, made once when the kernel is created; the products
// (runtime/gemm.wat) and the loops with a WebAssembly form (generated/<cell>.wat) run there, on
// the same bytes, and the few whole-vector ops left (sums over the batch, copies) in JavaScript on
// the views. A call copies its arguments in once and its results out once; nothing is copied per step.
//
// With threads > 1 the memory is shared with worker threads (runtime/pool.ts) and every product is
// split by rows (or columns) of its result, never along its sum, so each number is computed by the
// same instructions in the same order whatever the thread count: results are bit-identical.
import { type Pool, type Job, MAX_ARGS, workerPool } from "./pool.ts";
import { type FloatArray, LimitError, checkMemory, formatBytes } from "./checks.ts";

export type Backend = "wasm" | "ts";

export interface KernelOptions {
  /** "wasm" where WebAssembly SIMD is available, else "ts" (the default, "auto") */
  readonly backend?: Backend | "auto";
  /** threads for the wasm path's products and loops: 1 (default), 2, … or "auto" (the machine's cores) */
  readonly threads?: number | "auto";
  /**
   * Work below which a product or a loop stays on the calling thread: products of fewer flops
   * (default 2^18), loops over fewer elements (default 2^12). Tests set 0 to split everything.
   */
  readonly minSplitFlops?: number;
}

/** The generated products' signature (codegen/gemm.ts): arrays and element offsets. */
export interface Products<A extends FloatArray> {
  NT(rows: number, m: number, k: number, a: A, aOff: number, aStride: number, w: A, bOff: number, c: A, cOff: number, cStride: number, acc: boolean): void;
  NN(rows: number, m: number, k: number, a: A, aOff: number, aStride: number, w: A, bOff: number, c: A, cOff: number, cStride: number, acc: boolean): void;
  TN(m: number, k: number, rows: number, a: A, aOff: number, aStride: number, w: A, bOff: number, bStride: number, c: A, cOff: number, acc: boolean): void;
}

/** The generated products (runtime/gemm-wasm.ts): the base64 binary and the tile it was made for. */
export interface WasmModuleSource {
  readonly tile: { readonly rows: number; readonly vectors: number };
  /** floats of work area each thread's product needs (packed panels) */
  readonly workFloats: number;
  /** its memory is imported shared; `unshared` makes the variant for one thread */
  readonly binary: string;
}

/** A cell's elementwise loops (embedded in generated/<cell>.ts): per loop, its shape, and the base64 binary. */
export interface LoopsModuleSource {
  readonly loops: readonly { readonly vector: boolean; readonly splittable: boolean }[];
  readonly binary: string;
}

export interface KernelMemory<A extends FloatArray> {
  readonly backend: Backend;
  readonly threads: number;
  readonly mm: Products<A>;
  /** Run loop `id` of the cell's module over `rows` rows (wasm), or null (ts: the loops run in TypeScript). */
  readonly wl: ((id: number, rows: number, args: readonly number[]) => void) | null;
  /** The byte address of element `off` of a buffer in the module's memory. */
  readonly at: (a: A, off: number) => number;
  /** A buffer for the kernel's lifetime: a view into the module's memory, or a new array. */
  alloc(n: number): A;
  /** The kernel's own copy of an argument (wasm), or null (ts: the caller's array is used). */
  region(n: number): A | null;
  /** An argument read by the kernel: copied into its region unless it is that region. */
  input(region: A | null, given: A): A;
  /** An argument the kernel writes: its region, or the caller's array. */
  output(region: A | null, given: A): A;
  /** After a call: results copied from the region to the caller's array. */
  flush(region: A | null, given: A): void;
  /** At the start of each call: weights transposed in an earlier call are stale. Throws once disposed. */
  begin(): void;
  /** Let the worker threads forget this kernel's memory; the kernel refuses to run afterwards. */
  dispose(): void;
}

// ------------------------------------------------------------------------ SIMD detection

// (module (func (result v128) (v128.const i64x2 0 0))): valid only where SIMD is.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);

let simdOverride: boolean | undefined;

/** Whether this engine runs WebAssembly SIMD. `CELLFORGE_NO_SIMD=1` (or `reportSimd(false)`) says it does not. */
export function simdAvailable(): boolean {
  if (simdOverride !== undefined) return simdOverride;
  if (typeof process !== "undefined" && process.env?.CELLFORGE_NO_SIMD === "1") return false;
  return (simdDetected ??= detectSimd());
}

let simdDetected: boolean | undefined;

function detectSimd(): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** For tests: pretend SIMD is (or is not) available; undefined to detect again. */
export function reportSimd(available: boolean | undefined): void {
  simdOverride = available;
}

export function resolveBackend(cell: string, options: KernelOptions): Backend {
  const b = options.backend ?? "auto";
  if (b === "ts") return "ts";
  if (b === "auto") return simdAvailable() ? "wasm" : "ts";
  if (b === "wasm") {
    if (!simdAvailable()) throw new Error(`${cell}: backend "wasm" needs WebAssembly SIMD, which this engine does not have (use backend "ts" or "auto")`);
    return "wasm";
  }
  throw new TypeError(`${cell}: backend must be "wasm", "ts" or "auto", got ${JSON.stringify(b)}`);
}

function resolveThreads(cell: string, options: KernelOptions, backend: Backend): number {
  const t = options.threads ?? 1;
  if (t === "auto") return backend === "wasm" ? workerPool.cores() : 1;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > 64) throw new RangeError(`${cell}: threads must be 1, 2, … or "auto", got ${JSON.stringify(t)}`);
  if (t > 1 && backend !== "wasm") throw new Error(`${cell}: threads > 1 needs the wasm backend (the ts kernels run on one thread)`);
  if (t > 1 && !workerPool.available()) throw new Error(`${cell}: threads > 1 needs worker_threads and SharedArrayBuffer, which this engine does not have`);
  return t;
}

// ------------------------------------------------------------------------ modules

const compiled = new Map<string, WebAssembly.Module>();

function decode(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * The generated modules import their memory as shared with a maximum (limits flag 3). For one thread
 * (no SharedArrayBuffer needed, as in a browser page that is not cross-origin isolated) the same
 * module with the flag cleared to 1 takes an ordinary memory. The import is found by its bytes:
 * "\x03env\x06memory", kind 2 (memory), flags 3.
 */
function unshared(bytes: Uint8Array): Uint8Array {
  const pattern = [3, 101, 110, 118, 6, 109, 101, 109, 111, 114, 121, 2, 3];
  const at: number[] = [];
  for (let i = 0; i + pattern.length <= bytes.length; i++) if (pattern.every((b, k) => bytes[i + k] === b)) at.push(i);
  if (at.length !== 1) throw new Error(`internal: the generated module's memory import was not found once (${at.length})`);
  const out = bytes.slice();
  out[at[0]! + pattern.length - 1] = 1;
  return out;
}

function moduleOf(b64: string, shared: boolean): WebAssembly.Module {
  const key = `${shared ? "s" : "u"}${b64}`;
  let m = compiled.get(key);
  if (!m) {
    const bytes = decode(b64);
    m = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    // a module with nothing to do in memory (a cell whose loops all stay in TypeScript) imports none
    const importsMemory = WebAssembly.Module.imports(m).some((i) => i.kind === "memory");
    if (!shared && importsMemory) m = new WebAssembly.Module(unshared(bytes) as Uint8Array<ArrayBuffer>);
    compiled.set(key, m);
  }
  return m;
}

interface Exports {
  mm32(I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number, work: number): void;
  mm64(I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number, work: number): void;
  transpose32(rows: number, cols: number, src: number, srcRS: number, dst: number): void;
  transpose64(rows: number, cols: number, src: number, srcRS: number, dst: number): void;
}

const PAGE = 65536;

// ------------------------------------------------------------------------ the kernel's memory

/**
 * Buffers and products for one kernel. `need` lists the floats of every buffer the kernel will
 * allocate (saved values, scratch, argument regions, transposed weights): the memory is sized once.
 */
export function kernelMemory<A extends FloatArray>(
  bits: 32 | 64, cell: string, options: KernelOptions, need: readonly number[], wasm: WasmModuleSource, loops: LoopsModuleSource | null, ts: Products<A>,
): KernelMemory<A> {
  const backend = resolveBackend(cell, options);
  const threads = resolveThreads(cell, options, backend);
  // refused up front, on both paths, with the bytes it would take
  const what = `${cell}: the kernel for these sizes, B and T`;
  checkMemory(what, need.reduce((s, n) => s + n, 0), bits, "kernel");
  /** An allocation the engine refuses below the limit (a machine with less memory) says so too. */
  const outOfMemory = (bytes: number) => new LimitError(`${what} could not get ${formatBytes(bytes)} of memory for its buffers (float${bits}): this machine has less to give`);
  const Ctor = (bits === 32 ? Float32Array : Float64Array) as unknown as { new (n: number): A; new (b: ArrayBufferLike, off: number, n: number): A };
  let disposed = false;
  const refuseDisposed = () => {
    if (disposed) throw new Error(`${cell}: this kernel was disposed`);
  };
  if (backend === "ts") {
    return {
      backend, threads: 1, mm: ts, wl: null,
      at: () => { throw new Error("internal: addresses exist on the wasm backend only"); },
      alloc: (n) => {
        try {
          return new Ctor(n);
        } catch (e) {
          throw e instanceof RangeError ? outOfMemory(n * (bits / 8)) : e;
        }
      },
      region: () => null,
      input: (_r, given) => given,
      output: (_r, given) => given,
      flush: () => {},
      begin: refuseDisposed,
      dispose: () => { disposed = true; },
    };
  }
  const bytes = bits / 8;
  const align = 16 / bytes; // every buffer starts on a 16-byte boundary
  // and a work area per thread for the products' packed panels
  const works = Array<number>(threads).fill(wasm.workFloats);
  const floats = [...need, ...works].reduce((s, n) => s + Math.ceil(n / align) * align, 0);
  checkMemory(what, floats, bits, "kernel"); // with the work areas and the alignment, at most 4 GiB = 65536 pages
  const pages = Math.max(1, Math.ceil((floats * bytes) / PAGE));
  const shared = threads > 1;
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  } catch (e) {
    throw e instanceof RangeError ? outOfMemory(pages * PAGE) : e;
  }
  const module = moduleOf(wasm.binary, shared);
  const loopSource = loops ?? { loops: [], binary: "" };
  const loopModule = loops ? moduleOf(loops.binary, shared) : null;
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Exports;
  const loopEx = (loopModule ? new WebAssembly.Instance(loopModule, { env: { memory } }).exports : {}) as Record<string, (...args: number[]) => void>;
  const buffer = memory.buffer;
  let top = 0;
  const alloc = (n: number): A => {
    const a = new Ctor(buffer, top * bytes, n);
    top += Math.ceil(n / align) * align;
    if (top > floats) throw new Error(`internal: ${cell} allocated more than the ${floats} floats it declared`);
    return a;
  };
  const work = works.map((n) => alloc(n).byteOffset);
  const addr = (a: A, off: number) => {
    if (a.buffer !== buffer) throw new Error(`internal: ${cell} passed an array outside its memory to a product`);
    return a.byteOffset + off * bytes;
  };

  // NT runs as NN on Wᵀ, transposed once per call (the weights do not change within a call)
  let generation = 0;
  const transposed = new Map<string, { at: A; generation: number }>();
  const mmFn = bits === 32 ? ex.mm32 : ex.mm64;
  const trFn = bits === 32 ? ex.transpose32 : ex.transpose64;
  const pool: Pool | null = threads > 1 ? workerPool.attach(memory, loopModule ? [module, loopModule] : [module], threads) : null;
  const names = (m: WebAssembly.Module) => WebAssembly.Module.exports(m).map((e) => e.name);
  const gemmNames = names(module), loopNames = loopModule ? names(loopModule) : [];
  const mmIndex = gemmNames.indexOf(`mm${bits}`);
  const W = wasm.tile.vectors * (16 / bytes), R = wasm.tile.rows;
  const minSplit = options.minSplitFlops ?? MIN_SPLIT_FLOPS;
  const mm = (I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number) => {
    if (pool && 2 * I * J * P >= minSplit) {
      const jobs = split(I, J, P, a, aRS, aPS, b, bPS, c, cRS, acc, threads, R, W, bytes, mmIndex, work);
      if (jobs.length > 1) return pool.run(jobs, (j) => (mmFn as (...x: number[]) => void)(...j.args));
    }
    mmFn(I, J, P, a, aRS, aPS, b, bPS, c, cRS, acc, work[0]!);
  };
  const mmProducts: Products<A> = {
    NT(rows, m, k, a, aOff, aStride, w, bOff, c, cOff, cStride, acc) {
      const key = `${addr(w, bOff)}:${m}:${k}`;
      let t = transposed.get(key);
      if (!t) transposed.set(key, (t = { at: alloc(m * k), generation: -1 }));
      if (t.generation !== generation) {
        trFn(m, k, addr(w, bOff), k, addr(t.at, 0));
        t.generation = generation;
      }
      mm(rows, m, k, addr(a, aOff), aStride, 1, addr(t.at, 0), m, addr(c, cOff), cStride, acc ? 1 : 0);
    },
    NN(rows, m, k, a, aOff, aStride, w, bOff, c, cOff, cStride, acc) {
      mm(rows, k, m, addr(a, aOff), aStride, 1, addr(w, bOff), k, addr(c, cOff), cStride, acc ? 1 : 0);
    },
    TN(m, k, rows, a, aOff, aStride, w, bOff, bStride, c, cOff, acc) {
      mm(m, k, rows, addr(a, aOff), 1, aStride, addr(w, bOff), bStride, addr(c, cOff), k, acc ? 1 : 0);
    },
  };
  // the cell's loops: rows split between threads where the loop allows it and there is enough work
  const loopFns = loopSource.loops.map((_, id) => loopEx[`f${bits}_${id}`]!);
  const loopIndex = loopSource.loops.map((_, id) => loopNames.indexOf(`f${bits}_${id}`));
  const wl = (id: number, rows: number, args: readonly number[]) => {
    const meta = loopSource.loops[id]!;
    const n = meta.vector ? args[0]! : 1;
    if (pool && meta.splittable && rows >= threads && rows * n >= minLoopSplit && args.length + 2 <= MAX_ARGS) {
      const jobs: Job[] = [];
      const per = Math.ceil(rows / threads);
      for (let b0 = 0; b0 < rows; b0 += per) jobs.push({ module: 1, fn: loopIndex[id]!, args: [b0, Math.min(rows, b0 + per), ...args] });
      return pool.run(jobs, (j) => loopFns[id]!(...j.args));
    }
    loopFns[id]!(0, rows, ...args);
  };
  const minLoopSplit = options.minSplitFlops ?? MIN_SPLIT_ELEMENTS;
  return {
    backend, threads, mm: mmProducts, alloc, wl,
    at: (a, off) => addr(a, off),
    region: (n) => alloc(n),
    input(region, given) {
      if (!region) return given;
      if (region !== given) region.set(given);
      return region;
    },
    output: (region, given) => region ?? given,
    flush(region, given) {
      if (region && region !== given) given.set(region);
    },
    begin() {
      refuseDisposed();
      generation++;
    },
    dispose() {
      disposed = true;
      pool?.detach();
    },
  };
}

/** Products smaller than this run on the calling thread: waking a worker costs more. */
const MIN_SPLIT_FLOPS = 1 << 18;
/** Loops over fewer elements than this run on the calling thread. */
const MIN_SPLIT_ELEMENTS = 1 << 12;

/**
 * Cut one product into `n` jobs along the rows of C (in whole tiles of R rows), or, when there are
 * too few rows, along its columns (in whole vectors of W). Never along P: each element's sum stays whole.
 */
function split(I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number, n: number, R: number, W: number, bytes: number, fn: number, work: readonly number[]): Job[] {
  const jobs: Job[] = [];
  const mm = (I: number, J: number, a: number, b: number, c: number, work: number): Job => ({ module: 0, fn, args: [I, J, P, a, aRS, aPS, b, bPS, c, cRS, acc, work] });
  if (I >= n * R) {
    const per = Math.ceil(I / n / R) * R;
    for (let i0 = 0; i0 < I; i0 += per) {
      const rows = Math.min(per, I - i0);
      jobs.push(mm(rows, J, a + i0 * aRS * bytes, b, c + i0 * cRS * bytes, work[jobs.length]!));
    }
  } else if (J >= n * W) {
    const per = Math.ceil(J / n / W) * W;
    for (let j0 = 0; j0 < J; j0 += per) {
      const cols = Math.min(per, J - j0);
      jobs.push(mm(I, cols, a, b + j0 * bytes, c + j0 * bytes, work[jobs.length]!));
    }
  } else jobs.push(mm(I, J, a, b, c, work[0]!));
  return jobs;
}

export { workerPool };

// The runtime of the WebAssembly path: where a kernel's buffers live, and how its products run.
//
// A generated kernel asks `kernelMemory` for its buffers and its three products (codegen/gemm.ts's
// NT, NN and TN). On the ts backend the buffers are ordinary typed arrays and the products the
// generated TypeScript ones. On the wasm backend every buffer — parameters, saved values, scratch,
// and the kernel's own copy of each argument — is a view into one WebAssembly memory, made once
// when the kernel is created; the elementwise loops run in JavaScript on those views and the
// products in WebAssembly SIMD (codegen/wasm.ts) on the same bytes. A call copies its arguments in
// once and its results out once; nothing is copied per step.
//
// With threads > 1 the memory is shared with worker threads (src/pool.ts) and every product is
// split by rows (or columns) of its result, never along its sum, so each number is computed by the
// same instructions in the same order whatever the thread count: results are bit-identical.
import { type Pool, type Job, workerPool } from "./pool.ts";
import type { FloatArray } from "./runtime.ts";

export type Backend = "wasm" | "ts";

export interface KernelOptions {
  /** "wasm" where WebAssembly SIMD is available, else "ts" (the default, "auto") */
  readonly backend?: Backend | "auto";
  /** threads for the wasm products: 1 (default), 2, or "auto" (the machine's cores) */
  readonly threads?: number | "auto";
  /** products smaller than this many flops stay on the calling thread (default 2^18); tests set 0 */
  readonly minSplitFlops?: number;
}

/** The generated products' signature (codegen/gemm.ts): arrays and element offsets. */
export interface Products<A extends FloatArray> {
  NT(rows: number, m: number, k: number, a: A, aOff: number, aStride: number, w: A, bOff: number, c: A, cOff: number, cStride: number, acc: boolean): void;
  NN(rows: number, m: number, k: number, a: A, aOff: number, aStride: number, w: A, bOff: number, c: A, cOff: number, cStride: number, acc: boolean): void;
  TN(m: number, k: number, rows: number, a: A, aOff: number, aStride: number, w: A, bOff: number, bStride: number, c: A, cOff: number): void;
}

/** The generated WebAssembly (generated/gemm-wasm.ts): base64 binaries and the tile they were made for. */
export interface WasmModuleSource {
  readonly tile: { readonly rows: number; readonly vectors: number };
  readonly binary: string;
  readonly sharedBinary: string;
}

export interface KernelMemory<A extends FloatArray> {
  readonly backend: Backend;
  readonly threads: number;
  readonly mm: Products<A>;
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
  /** At the start of each call: weights transposed in an earlier call are stale. */
  begin(): void;
  /** Let the worker threads forget this kernel's memory. */
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

function moduleOf(b64: string): WebAssembly.Module {
  let m = compiled.get(b64);
  if (!m) compiled.set(b64, (m = new WebAssembly.Module(decode(b64) as Uint8Array<ArrayBuffer>)));
  return m;
}

interface Exports {
  mm32(I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number): void;
  mm64(I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number): void;
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
  bits: 32 | 64, cell: string, options: KernelOptions, need: readonly number[], wasm: WasmModuleSource, ts: Products<A>,
): KernelMemory<A> {
  const backend = resolveBackend(cell, options);
  const threads = resolveThreads(cell, options, backend);
  const Ctor = (bits === 32 ? Float32Array : Float64Array) as unknown as { new (n: number): A; new (b: ArrayBufferLike, off: number, n: number): A };
  if (backend === "ts") {
    return {
      backend, threads: 1, mm: ts,
      alloc: (n) => new Ctor(n),
      region: () => null,
      input: (_r, given) => given,
      output: (_r, given) => given,
      flush: () => {},
      begin: () => {},
      dispose: () => {},
    };
  }
  const bytes = bits / 8;
  const align = 16 / bytes; // every buffer starts on a 16-byte boundary
  const floats = need.reduce((s, n) => s + Math.ceil(n / align) * align, 0);
  const pages = Math.max(1, Math.ceil((floats * bytes) / PAGE));
  if (pages > 65536) throw new RangeError(`${cell}: the kernel needs ${floats * bytes} bytes, more than WebAssembly's 4 GiB`);
  const shared = threads > 1;
  const memory = new WebAssembly.Memory(shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages });
  const module = moduleOf(shared ? wasm.sharedBinary : wasm.binary);
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Exports;
  const buffer = memory.buffer;
  let top = 0;
  const alloc = (n: number): A => {
    const a = new Ctor(buffer, top * bytes, n);
    top += Math.ceil(n / align) * align;
    if (top > floats) throw new Error(`internal: ${cell} allocated more than the ${floats} floats it declared`);
    return a;
  };
  const addr = (a: A, off: number) => {
    if (a.buffer !== buffer) throw new Error(`internal: ${cell} passed an array outside its memory to a product`);
    return a.byteOffset + off * bytes;
  };

  // NT runs as NN on Wᵀ, transposed once per call (the weights do not change within a call)
  let generation = 0;
  const transposed = new Map<string, { at: A; generation: number }>();
  const mmFn = bits === 32 ? ex.mm32 : ex.mm64;
  const trFn = bits === 32 ? ex.transpose32 : ex.transpose64;
  const pool: Pool | null = threads > 1 ? workerPool.attach(memory, module, threads) : null;
  const W = wasm.tile.vectors * (16 / bytes), R = wasm.tile.rows;
  const fn = bits === 32 ? 0 : 1;
  const minSplit = options.minSplitFlops ?? MIN_SPLIT_FLOPS;
  const mm = (I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number) => {
    if (pool && 2 * I * J * P >= minSplit) {
      const jobs = split(I, J, P, a, aRS, aPS, b, bPS, c, cRS, acc, threads, R, W, bytes, fn);
      if (jobs.length > 1) return pool.run(jobs, (j) => mmFn(j.I, j.J, j.P, j.a, j.aRS, j.aPS, j.b, j.bPS, j.c, j.cRS, j.acc));
    }
    mmFn(I, J, P, a, aRS, aPS, b, bPS, c, cRS, acc);
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
    TN(m, k, rows, a, aOff, aStride, w, bOff, bStride, c, cOff) {
      mm(m, k, rows, addr(a, aOff), 1, aStride, addr(w, bOff), bStride, addr(c, cOff), k, 1);
    },
  };
  return {
    backend, threads, mm: mmProducts, alloc,
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
      generation++;
    },
    dispose() {
      pool?.detach();
    },
  };
}

/** Products smaller than this run on the calling thread: waking a worker costs more. */
const MIN_SPLIT_FLOPS = 1 << 18;

/**
 * Cut one product into `n` jobs along the rows of C (in whole tiles of R rows), or, when there are
 * too few rows, along its columns (in whole vectors of W). Never along P: each element's sum stays whole.
 */
function split(I: number, J: number, P: number, a: number, aRS: number, aPS: number, b: number, bPS: number, c: number, cRS: number, acc: number, n: number, R: number, W: number, bytes: number, fn: number): Job[] {
  const jobs: Job[] = [];
  if (I >= n * R) {
    const per = Math.ceil(I / n / R) * R;
    for (let i0 = 0; i0 < I; i0 += per) {
      const rows = Math.min(per, I - i0);
      jobs.push({ fn, I: rows, J, P, a: a + i0 * aRS * bytes, aRS, aPS, b, bPS, c: c + i0 * cRS * bytes, cRS, acc });
    }
  } else if (J >= n * W) {
    const per = Math.ceil(J / n / W) * W;
    for (let j0 = 0; j0 < J; j0 += per) {
      const cols = Math.min(per, J - j0);
      jobs.push({ fn, I, J: cols, P, a, aRS, aPS, b: b + j0 * bytes, bPS, c: c + j0 * bytes, cRS, acc });
    }
  } else jobs.push({ fn, I, J, P, a, aRS, aPS, b, bPS, c, cRS, acc });
  return jobs;
}

export { workerPool };

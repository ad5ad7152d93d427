// The wasm backend: every buffer of a kernel (parameters, saved values, scratch, and the kernel's
// own copy of each argument) is a view into one WebAssembly memory, made once when the kernel is
// created; the products (runtime/gemm.wat) and the loops and whole-vector ops with a WebAssembly
// form (generated/<cell>.wat) run there, on the same bytes, and what has none (a user's activation,
// a product with a folded constant) in JavaScript on the views. A call copies its arguments in once
// and its results out once; nothing is copied per step.
//
// With threads > 1 the memory is shared with worker threads (runtime/pool.ts) and every product is
// split by rows (or columns) of its result, never along its sum, so each number is computed by the
// same instructions in the same order whatever the thread count: results are bit-identical.
import { type BackendMemory, type KernelBackend, type MemoryRequest, type Products, floatArray } from "./backend.ts";
import { type FloatArray, checkMemory } from "./checks.ts";
import { type Pool, type Job, MAX_ARGS, workerPool } from "./pool.ts";

// ------------------------------------------------------------------------ SIMD detection

// (module (func (result v128) (v128.const i64x2 0 0))): valid only where SIMD is.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);

let simdOverride: boolean | undefined;

/** Whether this engine runs WebAssembly SIMD. `CELLFORGE_NO_SIMD=1` (or `reportSimd(false)`) says it does not. */
export function simdAvailable(): boolean {
  if (simdOverride !== undefined) return simdOverride;
  if ((globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.CELLFORGE_NO_SIMD === "1") return false;
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

// ------------------------------------------------------------------------ the backend

export const wasmBackend: KernelBackend = {
  name: "wasm",
  description: "the products of runtime/gemm.wat and the loops of generated/<cell>.wat, WebAssembly SIMD",
  available: () => (simdAvailable() ? { ok: true } : { ok: false, missing: "WebAssembly SIMD" }),
  parallel: true,
  memory<A extends FloatArray>(req: MemoryRequest<A>): BackendMemory<A> {
    const { bits, cell, threads, what } = req;
    const Ctor = floatArray<A>(bits);
    const bytes = bits / 8;
    const align = 16 / bytes; // every buffer starts on a 16-byte boundary
    // and a work area per thread for the products' packed panels
    const works = Array<number>(threads).fill(req.wasm.workFloats);
    // each buffer's start rounded up to the alignment: at most align - 1 floats more per buffer
    const floats = req.need.floats + req.need.buffers * (align - 1) + works.reduce((s, n) => s + Math.ceil(n / align) * align, 0);
    checkMemory(what, floats, bits, "kernel"); // with the work areas and the alignment, at most 4 GiB = 65536 pages
    const pages = Math.max(1, Math.ceil((floats * bytes) / PAGE));
    const shared = threads > 1;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    } catch (e) {
      throw e instanceof RangeError ? req.outOfMemory(pages * PAGE) : e;
    }
    const module = moduleOf(req.wasm.binary, shared);
    const loops = req.loops;
    const loopSource = loops ?? { count: 0, splittable: [], scalar: [], binary: "" };
    const ids = Array.from({ length: loopSource.count }, (_, id) => id);
    const splittable = new Set(loopSource.splittable), scalar = new Set(loopSource.scalar);
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
    const W = req.wasm.tile.vectors * (16 / bytes), R = req.wasm.tile.rows;
    const minSplit = req.minSplitFlops ?? MIN_SPLIT_FLOPS;
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
    const loopFns = ids.map((id) => loopEx[`f${bits}_${id}`]!);
    const loopIndex = ids.map((id) => loopNames.indexOf(`f${bits}_${id}`));
    const wl = (id: number, rows: number, args: readonly number[]) => {
      const n = scalar.has(id) ? 1 : args[0]!;
      if (pool && splittable.has(id) && rows >= threads && rows * n >= minLoopSplit && args.length + 2 <= MAX_ARGS) {
        const jobs: Job[] = [];
        const per = Math.ceil(rows / threads);
        for (let b0 = 0; b0 < rows; b0 += per) jobs.push({ module: 1, fn: loopIndex[id]!, args: [b0, Math.min(rows, b0 + per), ...args] });
        return pool.run(jobs, (j) => loopFns[id]!(...j.args));
      }
      loopFns[id]!(0, rows, ...args);
    };
    const minLoopSplit = req.minSplitFlops ?? MIN_SPLIT_ELEMENTS;
    return {
      mm: mmProducts, alloc, wl,
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
        generation++;
      },
      dispose() {
        pool?.detach();
      },
    };
  },
};

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

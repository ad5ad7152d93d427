// What a backend is: where a kernel's buffers live, how its three products run and how its loops
// run. The generated kernels see a backend only through `kernelMemory` (runtime/memory.ts), which
// picks one from the registry there (BACKENDS); the check, `check`'s columns and the bench walk the
// same registry. Two implement it: runtime/backend-ts.ts and runtime/backend-wasm.ts.
//
// Types only, and one helper: nothing here imports a `node:` module.
import type { FloatArray } from "./checks.ts";

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

/**
 * A cell's elementwise loops and whole-vector ops (embedded in generated/<cell>.ts): functions
 * f32_k and f64_k for k = 0 … count - 1, which of them may split their rows between threads, which
 * walk scalars (the rest take the elements of a row, n, as their first argument), and the base64 binary.
 */
export interface LoopsModuleSource {
  readonly count: number;
  readonly splittable: readonly number[];
  readonly scalar: readonly number[];
  readonly binary: string;
}

/** Whether a backend runs on this engine; when not, what the engine lacks ("WebAssembly SIMD"). */
export type Availability = { readonly ok: true } | { readonly ok: false; readonly missing: string };

/**
 * What a kernel's buffers take: their floats in all (the emitter sums their sizes in closed form)
 * and how many there are (a backend that aligns each buffer's start adds room for that).
 */
export interface MemoryNeed {
  readonly floats: number;
  readonly buffers: number;
}

/** What a kernel asks its backend for, once, when it is created (the arguments of `kernelMemory`, resolved). */
export interface MemoryRequest<A extends FloatArray> {
  readonly bits: 32 | 64;
  readonly cell: string;
  /** 1, or more on a backend that is `parallel` */
  readonly threads: number;
  /** KernelOptions.minSplitFlops: work below which a product or a loop stays on the calling thread */
  readonly minSplitFlops: number | undefined;
  /** what the buffers the kernel will allocate take, so the memory can be sized once */
  readonly need: MemoryNeed;
  /** the kernel's products as WebAssembly, and its loops (null: a module without any) */
  readonly wasm: WasmModuleSource;
  readonly loops: LoopsModuleSource | null;
  /** the kernel's products as TypeScript */
  readonly ts: Products<A>;
  /** Who asks, for LimitErrors: "<cell>: the kernel for these sizes, B and T". */
  readonly what: string;
  /** The error for an allocation the engine refuses below the limit (a machine with less memory). */
  outOfMemory(bytes: number): Error;
}

/**
 * A kernel's buffers, products and loops on one backend: what the generated code calls. A kernel
 * runs its loops in TypeScript on the arrays `alloc` gives when `wl` is null, and calls `wl` with
 * the byte addresses `at` gives when it is not (the calling convention of generated/<cell>.wat).
 * Its functions must not use `this`: `kernelMemory` copies them onto the kernel's memory object.
 */
export interface BackendMemory<A extends FloatArray> {
  readonly mm: Products<A>;
  /** Run loop `id` of the cell's module over `rows` rows, or null (the loops run in TypeScript). */
  readonly wl: ((id: number, rows: number, args: readonly number[]) => void) | null;
  /** The byte address of element `off` of a buffer in the module's memory (where `wl` is not null). */
  readonly at: (a: A, off: number) => number;
  /** A buffer for the kernel's lifetime. */
  alloc(n: number): A;
  /** The kernel's own copy of an argument, or null (the caller's array is used). */
  region(n: number): A | null;
  /** An argument read by the kernel: copied into its region unless it is that region. */
  input(region: A | null, given: A): A;
  /** An argument the kernel writes: its region, or the caller's array. */
  output(region: A | null, given: A): A;
  /** After a call: results copied from the region to the caller's array. */
  flush(region: A | null, given: A): void;
  /** At the start of each call (the dispatcher has already refused a disposed kernel). */
  begin(): void;
  /** Release what the kernel holds (worker threads forget its memory). */
  dispose(): void;
}

export interface KernelBackend {
  /** What KernelOptions.backend names it by, and what check rows, columns and bench lines print. */
  readonly name: string;
  /** One line: what runs where, for `check`'s legend and the bench. */
  readonly description: string;
  /** Whether this engine runs it. */
  available(): Availability;
  /** Whether it splits products and loops across the worker threads of runtime/pool.ts (threads > 1). */
  readonly parallel: boolean;
  /** Buffers, products and loops for one kernel; called only when `available()`. */
  memory<A extends FloatArray>(request: MemoryRequest<A>): BackendMemory<A>;
}

/** Float32Array or Float64Array, as a constructor of `A`. */
export function floatArray<A extends FloatArray>(bits: 32 | 64): { new (n: number): A; new (b: ArrayBufferLike, off: number, n: number): A } {
  return (bits === 32 ? Float32Array : Float64Array) as unknown as { new (n: number): A; new (b: ArrayBufferLike, off: number, n: number): A };
}

// What every generated kernel module is, whatever its cell: the one definition of a kernel that the
// training runtime, the kernel check and the layers program against. A generated module
// (generated/<cell>.ts) has these members with types of its own cell (named inputs, states and
// sizes), and is assignable to `KernelModule`.
import { type FloatArray, type Init, checkSeed, initSlice } from "./checks.ts";
import { Rng } from "./rng.ts";
import type { BackendName, KernelOptions } from "./memory.ts";

export type { FloatArray };
export type Precision = 32 | 64;

/** Every state and output after each step, or the inputs of each step: T×B×size arrays by name. */
export type Arrays<A extends FloatArray> = Record<string, A>;

/** The gradients a backward writes: the flat parameter buffer, every input, every initial state. */
export interface Grads<A extends FloatArray, I = Arrays<A>, S = Arrays<A>> {
  readonly params: A;
  readonly inputs: I;
  readonly initial: S;
}

/**
 * A kernel for one cell at fixed sizes, batch B and T steps. A generated module's `Kernel<A>` is
 * this with its own cell's names (`Sizes`, `Inputs<A>`, `States<A>`, `Outputs<A>`); the defaults
 * key them by any name, as the training runtime, the check and the layers see every cell.
 */
export interface Kernel<A extends FloatArray, Z = Readonly<Record<string, number>>, I = Arrays<A>, S = Arrays<A>, O = Arrays<A>> {
  readonly sizes: Z;
  readonly B: number;
  readonly T: number;
  readonly nParams: number;
  /** Where the products run: "wasm" (WebAssembly SIMD), "ts" (plain TypeScript), or a backend added to BACKENDS. */
  readonly backend: BackendName;
  /** Threads the products and loops are split across (wasm only). */
  readonly threads: number;
  /** Run T steps from `initial`, writing every state and output to `out` and saving what the backward needs. */
  forward(p: A, inputs: I, initial: S, out: O): void;
  /**
   * Backpropagate through the T steps of the last forward. `upstream` is dLoss/d(value) for every
   * state and output after each step; gradients are written (not added) to `grads`.
   */
  backward(p: A, inputs: I, initial: S, out: O, upstream: O, grads: Grads<A, I, S>): void;
  /** Let the worker threads forget this kernel's memory (threads > 1). The kernel cannot run afterwards. */
  dispose(): void;
}

/** A value the cell is given or computes, and its size's name. */
export interface NamedSize {
  readonly name: string;
  readonly size: string;
}

/** A generated module's description of its cell. */
export interface KernelSpec {
  readonly name: string;
  readonly sizes: readonly string[];
  readonly inputs: readonly NamedSize[];
  readonly states: readonly NamedSize[];
  readonly outputs: readonly NamedSize[];
  readonly params: readonly { readonly name: string; readonly shape: readonly string[]; readonly init: Init }[];
}

/** Offset and length of every parameter in the flat buffer. */
export interface ParamLayout {
  total: number;
  params: { name: string; offset: number; length: number }[];
}

/**
 * A generated module's `paramLayout`, from its offsets: each parameter's offset in buffer order
 * (the order of spec.params), then the total, so each parameter runs to the next one.
 */
export function layoutOf(spec: KernelSpec, offsets: Readonly<Record<string, number>>): ParamLayout {
  const o = Object.values(offsets);
  return { total: o[o.length - 1]!, params: spec.params.map(({ name }, k) => ({ name, offset: o[k]!, length: o[k + 1]! - o[k]! })) };
}

/**
 * A generated module's `initParams`: every parameter by its init rule, from `seed`. `k` is the
 * bound of the default rule (uniform ±k), `rows` each parameter's row count (the matrix rules,
 * glorot and orthogonal, see rows × length/rows), and `order` the order the cell declares them in,
 * which is the order the random numbers are drawn in (buffer order unless given).
 */
export function initAll(spec: KernelSpec, layout: ParamLayout, seed: number, k: number, rows: readonly number[], order?: readonly number[]): Float64Array {
  const p = new Float64Array(layout.total);
  const rng = new Rng(checkSeed(spec.name, seed));
  for (const i of order ?? layout.params.keys()) initSlice(p, layout.params[i]!.offset, layout.params[i]!.length, spec.params[i]!.init, k, rng, rows[i]!);
  return p;
}

/** A generated kernel module, as the runtime, the check and the layers see it. */
export interface KernelModule {
  readonly spec: KernelSpec;
  paramLayout(sizes: Record<string, number>): ParamLayout;
  initParams(sizes: Record<string, number>, seed: number): Float64Array;
  createKernel64(sizes: Record<string, number>, B: number, T: number, options?: KernelOptions): Kernel<Float64Array>;
  createKernel32(sizes: Record<string, number>, B: number, T: number, options?: KernelOptions): Kernel<Float32Array>;
}

// What every generated kernel module is, whatever its cell: the one definition of a kernel that the
// training runtime, the kernel check and the layers program against. A generated module
// (generated/<cell>.ts) has these members with types of its own cell (named inputs, states and
// sizes), and is assignable to `KernelModule`.
import type { FloatArray, Init } from "./checks.ts";
import type { BackendName, KernelOptions } from "./memory.ts";

export type { FloatArray };
export type Precision = 32 | 64;

/** Every state and output after each step, or the inputs of each step: T×B×size arrays by name. */
export type Arrays<A extends FloatArray> = Record<string, A>;

/** The gradients a backward writes: the flat parameter buffer, every input, every initial state. */
export interface Grads<A extends FloatArray> {
  readonly params: A;
  readonly inputs: Arrays<A>;
  readonly initial: Arrays<A>;
}

/** A kernel for one cell at fixed sizes, batch B and T steps. */
export interface Kernel<A extends FloatArray> {
  readonly nParams: number;
  /** Where the products run. */
  readonly backend: BackendName;
  /** Threads the products and loops are split across. */
  readonly threads: number;
  /** Run T steps from `initial`, writing every state and output to `out` and saving what the backward needs. */
  forward(p: A, inputs: Arrays<A>, initial: Arrays<A>, out: Arrays<A>): void;
  /** Backpropagate through the T steps of the last forward; gradients are written, not added. */
  backward(p: A, inputs: Arrays<A>, initial: Arrays<A>, out: Arrays<A>, upstream: Arrays<A>, grads: Grads<A>): void;
  /** Let the worker threads forget this kernel's memory. The kernel cannot run afterwards. */
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

/** A generated kernel module, as the runtime, the check and the layers see it. */
export interface KernelModule {
  readonly spec: KernelSpec;
  paramLayout(sizes: Record<string, number>): ParamLayout;
  initParams(sizes: Record<string, number>, seed: number): Float64Array;
  createKernel64(sizes: Record<string, number>, B: number, T: number, options?: KernelOptions): Kernel<Float64Array>;
  createKernel32(sizes: Record<string, number>, B: number, T: number, options?: KernelOptions): Kernel<Float32Array>;
}

// Types for a cell's kernel imported through cellforge's bundler plugin (cellforge/plugin):
//
//   import { createKernel32, initParams, spec } from "./mycell.cell.ts?kernel";
//
// Add `"types": ["cellforge/kernel"]` to tsconfig.json's compilerOptions, or
// `/// <reference types="cellforge/kernel" />` to a file of the project.
//
// One declaration serves every cell, so sizes, inputs and states are keyed by any name here; a
// kernel written by `cellforge generate` (its .ts, or .js with .d.ts) is typed with its own cell's
// names. Either is assignable to `KernelModule` (cellforge/runtime), which training and the layers take.
declare module "*?kernel" {
  import type { Arrays, Grads, Kernel as RuntimeKernel, KernelOptions, KernelSpec, ParamLayout } from "cellforge/runtime";

  /** The cell: its sizes, inputs, states, outputs and parameters, by name. */
  export const spec: KernelSpec;
  /** A value for each of `spec.sizes`. */
  export type Sizes = Readonly<Record<string, number>>;
  /** Inputs, states and outputs by name (T×B×size), and the gradients a backward writes. */
  export type { Arrays, Grads };

  /** A kernel for the cell at fixed sizes, batch B and T steps (1 for a step): the runtime's one Kernel type. */
  export type Kernel<A extends Float32Array | Float64Array> = RuntimeKernel<A>;

  /** Offset and length of every parameter in the flat buffer, and the buffer's length. */
  export function paramLayout(sizes: Sizes): ParamLayout;
  /** Parameters by their init rules, from a seed. */
  export function initParams(sizes: Sizes, seed: number): Float64Array;
  /** T steps forward and their backward, in float64 or float32. */
  export function createKernel64(sizes: Sizes, B: number, T: number, options?: KernelOptions): Kernel<Float64Array>;
  export function createKernel32(sizes: Sizes, B: number, T: number, options?: KernelOptions): Kernel<Float32Array>;
  /** One step (T = 1): forward from a state to the next, backward from the next state's gradient. */
  export function createStep64(sizes: Sizes, B: number, options?: KernelOptions): Kernel<Float64Array>;
  export function createStep32(sizes: Sizes, B: number, options?: KernelOptions): Kernel<Float32Array>;
}

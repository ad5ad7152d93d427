// Running a cell over T steps and backpropagating through time, with the reference evaluator.
// The forward keeps only what the derived backward needs (the saved set) per step.
import { type Cell, initBoundSize, resolveSizes, stepRoots } from "./cell.ts";
import type { BackwardStep } from "./backward.ts";
import { type Node, topo } from "./ir.ts";
import { type Env, type Sizes, evaluate, numel } from "./eval.ts";
import { dimValue } from "./dims.ts";
import { Rng } from "../runtime/rng.ts";
import { checkMemory, initSlice, sizesText } from "../runtime/checks.ts";

/** One sequence problem, all flat row-major Float64Arrays: inputs and upstream are T×B×n, initial B×n. */
export interface SequenceCase {
  readonly sizes: Sizes;
  readonly B: number;
  readonly T: number;
  readonly params: Readonly<Record<string, Float64Array>>;
  readonly inputs: Readonly<Record<string, Float64Array>>;
  readonly initial: Readonly<Record<string, Float64Array>>;
  /** dLoss/d(value) for every state and output after each step; loss = Σ_t Σ_name <upstream, value>. */
  readonly upstream: Readonly<Record<string, Float64Array>>;
}

export interface ForwardResult {
  /** Every state and output after each step, T×B×n. */
  readonly outputs: Record<string, Float64Array>;
  /** Per step: the values the backward reads (saved set) and the step's inputs and previous states. */
  readonly tape: readonly Env[];
  readonly loss: number;
}

export interface Gradients {
  readonly params: Record<string, Float64Array>;
  readonly inputs: Record<string, Float64Array>;
  readonly initial: Record<string, Float64Array>;
}

const vecLen = (n: Node, sizes: Sizes) => dimValue(n.type.shape[0]!, sizes);
const stepSlice = (a: Float64Array, t: number, B: number, n: number) => a.subarray(t * B * n, (t + 1) * B * n);

export function forwardSequence(cell: Cell, c: SequenceCase, keep: readonly Node[] = []): ForwardResult {
  const { B, T, sizes } = c;
  const roots = stepRoots(cell);
  const rootNames = [...cell.states.map((s) => s.attrs.name!), ...cell.outputs.map((o) => o.name)];
  const outputs: Record<string, Float64Array> = {};
  roots.forEach((r, i) => (outputs[rootNames[i]!] = new Float64Array(T * B * vecLen(r, sizes))));
  const paramEnv = new Map<Node, Float64Array>(cell.params.map((p) => [p.node, c.params[p.name]!]));
  let states = cell.states.map((s) => c.initial[s.attrs.name!]!);
  const tape: Env[] = [];
  let loss = 0;
  for (let t = 0; t < T; t++) {
    const env: Env = new Map(paramEnv);
    cell.inputs.forEach((x) => env.set(x, stepSlice(c.inputs[x.attrs.name!]!, t, B, vecLen(x, sizes))));
    cell.states.forEach((s, i) => env.set(s, states[i]!));
    const vals = evaluate(roots, env, B, sizes);
    vals.forEach((v, i) => {
      outputs[rootNames[i]!]!.set(v, t * v.length);
      const up = c.upstream[rootNames[i]!];
      if (up) for (let k = 0; k < v.length; k++) loss += up[t * v.length + k]! * v[k]!;
    });
    const saved: Env = new Map();
    for (const n of [...cell.inputs, ...cell.states, ...keep]) saved.set(n, env.get(n)!);
    tape.push(saved);
    states = vals.slice(0, cell.states.length);
  }
  return { outputs, tape, loss };
}

/** Backpropagation through time with the derived step backward. */
export function backwardSequence(bw: BackwardStep, c: SequenceCase, fwd: ForwardResult): Gradients {
  const { cell } = bw;
  const { B, T, sizes } = c;
  const rootNames = [...cell.states.map((s) => s.attrs.name!), ...cell.outputs.map((o) => o.name)];
  const params: Record<string, Float64Array> = {};
  for (const p of cell.params) params[p.name] = new Float64Array(c.params[p.name]!.length);
  const inputs: Record<string, Float64Array> = {};
  for (const x of cell.inputs) inputs[x.attrs.name!] = new Float64Array(T * B * vecLen(x, sizes));
  let carry: Float64Array[] = cell.states.map((s) => new Float64Array(B * vecLen(s, sizes)));
  const paramEnv = cell.params.map((p) => [p.node, c.params[p.name]!] as const);
  for (let t = T - 1; t >= 0; t--) {
    const env: Env = new Map(fwd.tape[t]!);
    for (const [n, v] of paramEnv) env.set(n, v);
    bw.seeds.forEach((s, i) => {
      const n = numel(s.type, B, sizes);
      const up = c.upstream[rootNames[i]!];
      const g = new Float64Array(n);
      if (up) g.set(up.subarray(t * n, (t + 1) * n));
      if (i < carry.length) for (let k = 0; k < n; k++) g[k]! += carry[i]![k]!;
      env.set(s, g);
    });
    const vals = evaluate(bw.outputs, env, B, sizes);
    let k = 0;
    for (const x of cell.inputs) inputs[x.attrs.name!]!.set(vals[k++]!, t * vals[k - 1]!.length);
    carry = cell.states.map(() => vals[k++]!);
    for (const p of cell.params) {
      const g = vals[k++]!, acc = params[p.name]!;
      for (let j = 0; j < acc.length; j++) acc[j]! += g[j]!;
    }
  }
  const initial: Record<string, Float64Array> = {};
  cell.states.forEach((s, i) => (initial[s.attrs.name!] = carry[i]!));
  return { params, inputs, initial };
}

/** Floats of a case: parameters, and per sequence its inputs, initial states and upstream gradients. */
function caseFloats(cell: Cell, sizes: Sizes, B: number, T: number): number {
  const per = (ns: readonly Node[]) => ns.reduce((s, n) => s + numel(n.type, B, sizes), 0);
  return per(cell.params.map((p) => p.node)) + T * per(cell.inputs) + per(cell.states) + T * per(stepRoots(cell));
}

/** Refuse a case too big for memory before it is made (a random one, or one read from JSON). */
export function checkCase(cell: Cell, sizes: Sizes, B: number, T: number): void {
  checkMemory(`a case of ${cell.name} at ${sizesText(sizes, B, T)}`, caseFloats(cell, sizes, B, T), 64, "case");
}

/**
 * Refuse a reference run too big for memory, before it starts. It holds the case, every state and
 * output at every step, the saved values of every step, the gradients, and one step's values.
 */
export function checkReference(bw: BackwardStep, c: Pick<SequenceCase, "sizes" | "B" | "T">): void {
  const { cell } = bw, { sizes, B, T } = c;
  const per = (ns: Iterable<Node>) => { let s = 0; for (const n of ns) s += numel(n.type, B, sizes); return s; };
  const roots = stepRoots(cell);
  const floats = 2 * caseFloats(cell, sizes, B, T) + T * per(new Set([...bw.saved, ...cell.states])) + per(topo(roots)) + per(topo(bw.outputs));
  checkMemory(`the reference evaluator for ${cell.name} at ${sizesText(sizes, B, T)}`, floats, 64, "run");
}

/** Forward and BPTT in one call, keeping only the saved set between them. Sizes that break a constraint of the cell are refused. */
export function gradients(bw: BackwardStep, c: SequenceCase): { forward: ForwardResult; grads: Gradients } {
  resolveSizes(bw.cell, c.sizes);
  checkReference(bw, c);
  const forward = forwardSequence(bw.cell, c, bw.saved);
  return { forward, grads: backwardSequence(bw, c, forward) };
}

/** Initial parameter values from each parameter's init rule. */
export function initParams(cell: Cell, sizes: Sizes, seed: number): Record<string, Float64Array> {
  const rng = new Rng(seed);
  const hidden = dimValue(initBoundSize(cell), sizes);
  const out: Record<string, Float64Array> = {};
  for (const p of cell.params) {
    const a = new Float64Array(numel(p.node.type, 1, sizes));
    // the rule the generated initParams uses, with the row count the matrix rules (glorot, orthogonal) read
    initSlice(a, 0, a.length, p.init, 1 / Math.sqrt(hidden), rng, p.node.type.shape.length === 0 ? 1 : vecLen(p.node, sizes));
    out[p.name] = a;
  }
  return out;
}

/**
 * A random case: parameters from their init rules, inputs, states and upstream gradients in ±1. The
 * sizes are the cell's defaults, or as given; a size a constraint determines follows from the others
 * (sizes that break a constraint are refused, naming it).
 */
export function randomCase(cell: Cell, opts: { sizes?: Sizes; B?: number; T?: number; seed?: number } = {}): SequenceCase {
  const sizes = resolveSizes(cell, opts.sizes ?? cell.defaults);
  const B = opts.B ?? 2, T = opts.T ?? 3, seed = opts.seed ?? 1;
  checkCase(cell, sizes, B, T);
  const rng = new Rng(seed * 7919 + 17);
  const params = initParams(cell, sizes, seed);
  // Random (not init-rule) values for parameters that start constant, so every path is exercised.
  for (const p of cell.params) if (p.init !== "uniform" && !(typeof p.init === "object" && "uniform" in p.init)) rng.fill(params[p.name]!, -0.5, 0.5);
  const inputs: Record<string, Float64Array> = {};
  for (const x of cell.inputs) inputs[x.attrs.name!] = rng.fill(new Float64Array(T * B * vecLen(x, sizes)));
  const initial: Record<string, Float64Array> = {};
  for (const s of cell.states) initial[s.attrs.name!] = rng.fill(new Float64Array(B * vecLen(s, sizes)));
  const upstream: Record<string, Float64Array> = {};
  for (const s of cell.states) upstream[s.attrs.name!] = rng.fill(new Float64Array(T * B * vecLen(s, sizes)));
  for (const o of cell.outputs) upstream[o.name] = rng.fill(new Float64Array(T * B * vecLen(o.node, sizes)));
  return { sizes, B, T, params, inputs, initial, upstream };
}



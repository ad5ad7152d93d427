// Timing a cell's generated float32 kernels: the median of repeated runs after warm-up.
import type { Cell } from "../src/cell.ts";
import { randomCase } from "../src/sequence.ts";
import type { BackendName, KernelOptions } from "../runtime/memory.ts";
import { kernelArgs, loadKernels } from "../check/kernelcheck.ts";

export interface CellTiming {
  readonly B: number;
  readonly T: number;
  readonly sizes: Readonly<Record<string, number>>;
  readonly runs: number;
  /** the backend the kernels ran on (a name of BACKENDS), and their threads */
  readonly backend: BackendName;
  readonly threads: number;
  /** Median milliseconds for the whole sequence. */
  readonly forwardMs: number;
  readonly forwardBackwardMs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Median time of `f` over repeated runs, after warm-up, within about `budgetMs`. */
export function timeIt(f: () => void, budgetMs: number, minRuns = 5, warmups = 3): { ms: number; runs: number } {
  for (let i = 0; i < warmups; i++) f();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < minRuns || (performance.now() - start < budgetMs && ts.length < 200)) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  return { ms: median(ts), runs: ts.length };
}

export async function timeCell(cell: Cell, opts: { B?: number; T?: number; size?: number; budgetMs?: number; committed?: boolean; quick?: boolean; options?: KernelOptions } = {}): Promise<CellTiming> {
  const B = opts.B ?? 32, T = opts.T ?? 50, n = opts.size ?? 128;
  const sizes = Object.fromEntries(cell.sizes.map((s) => [s, n]));
  const mod = await loadKernels(cell, { committed: opts.committed ?? false });
  const c = randomCase(cell, { sizes, B, T, seed: 1 });
  const k = mod.createKernel32(sizes, B, T, opts.options ?? {});
  const { p, inputs, initial, upstream, out, grads } = kernelArgs(mod, c, Float32Array);
  const budget = opts.budgetMs ?? 400;
  const [minRuns, warmups] = opts.quick ? [3, 1] : [5, 3];
  const fwd = timeIt(() => k.forward(p, inputs, initial, out), budget, minRuns, warmups);
  const both = timeIt(() => { k.forward(p, inputs, initial, out); k.backward(p, inputs, initial, out, upstream, grads); }, budget, minRuns, warmups);
  k.dispose();
  return { B, T, sizes, runs: Math.min(fwd.runs, both.runs), forwardMs: fwd.ms, forwardBackwardMs: both.ms, backend: k.backend, threads: k.threads };
}

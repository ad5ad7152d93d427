// The plain-JS ceiling: the hand-tuned gemm timed at the two product shapes of
// each workload's forward pass, and a bound on a whole cell derived from them.

import { gemm, gemmReference } from "./jsgemm.ts";
import { GEMM_WASM } from "../runtime/gemm-wasm.ts";
import { FLOAT32, REFERENCE_BACKEND, availableBackends, kernelMemory } from "../runtime/memory.ts";
import { measure, type Budget, type Timing } from "./timing.ts";
import { gates, type Cell, type Workload } from "./workloads.ts";

export interface GemmShape {
  workload: string;
  cell: Cell;
  /** "input" (hoisted over the sequence) or "step" (one recurrent step) */
  role: "input" | "step";
  M: number;
  K: number;
  N: number;
}

export interface GemmResult extends GemmShape {
  timing: Timing;
  gflops: number;
  /**
   * cellforge's generated products at the same shape on the reference backend (ts: runtime/gemm.ts),
   * GFLOP/s: the forward x·Wᵀ (NT), and the backward's g·W (NN, gradient to the vector) and gᵀ·x
   * (TN, weight gradient summed over rows).
   */
  cellforge: Rates;
  /** the same products on every other backend this engine runs (wasm: runtime/gemm.wat), one thread, by name */
  backends: Record<string, Rates>;
  /** numpy.matmul at the same shape (BLAS sgemm, one thread; peers/torch.ts), when Python and numpy are there */
  numpy?: { timing: Timing; gflops: number };
  /** each cellforge product's rate over numpy's at the same shape (1 = as fast as the measured sgemm) */
  cellforgeOfSgemm?: Rates;
  backendsOfSgemm?: Record<string, Rates>;
}

export interface Rates { NT: number; NN: number; TN: number }

/** Fills in `numpy` and `cellforgeOfSgemm` from sgemm timings at the same shapes. */
export function attachSgemm(
  results: GemmResult[],
  sgemm: { M: number; K: number; N: number; timing: Timing; gflops: number }[],
): void {
  for (const r of results) {
    const s = sgemm.find((q) => q.M === r.M && q.K === r.K && q.N === r.N);
    if (!s) continue;
    r.numpy = { timing: s.timing, gflops: s.gflops };
    r.cellforgeOfSgemm = {
      NT: r.cellforge.NT / s.gflops,
      NN: r.cellforge.NN / s.gflops,
      TN: r.cellforge.TN / s.gflops,
    };
    r.backendsOfSgemm = Object.fromEntries(Object.entries(r.backends).map(([name, x]) => [name, { NT: x.NT / s.gflops, NN: x.NN / s.gflops, TN: x.TN / s.gflops }]));
  }
}

/** The forward products: (T·B)×D×G·H once, and B×H×G·H at each of T steps. */
export function gemmShapes(w: Workload, cell: Cell): GemmShape[] {
  const N = gates(cell) * w.H;
  return [
    { workload: w.name, cell, role: "input", M: w.T * w.B, K: w.D, N },
    { workload: w.name, cell, role: "step", M: w.B, K: w.H, N },
  ];
}

export async function benchGemm(shape: GemmShape, budget: Budget): Promise<GemmResult> {
  const { M, K, N } = shape;
  const a = filled(M * K, 1);
  const b = filled(K * N, 2);
  const c = new Float32Array(M * N);
  const timing = await measure(() => gemm(a, b, c, M, K, N), budget);
  const flop = 2 * M * K * N;
  const rate = (t: Timing) => flop / t.medianMs / 1e6;
  // the same product in cellforge's layout: rows M, stacked weights N×K (row-major), as the kernels call them,
  // on each backend's products and buffers (on wasm, in a module's memory as the kernels have them;
  // NT runs on Wᵀ, transposed once per kernel call: not timed here, as in a kernel it is once per T steps)
  const w = filled(N * K, 5), g = filled(M * N, 6);
  const ratesOn = async (backend: string): Promise<Rates> => {
    const mem = kernelMemory(FLOAT32, "bench", { backend }, { floats: M * K + N * K + M * N + M * N + M * K + N * K + N * K, buffers: 7 }, GEMM_WASM, null);
    try {
      const put = (x: Float32Array) => { const v = mem.alloc(x.length); v.set(x); return v; };
      const ba = put(a), bw = put(w), bc = mem.alloc(M * N), bg = put(g), bdx = mem.alloc(M * K), bdw = mem.alloc(N * K);
      mem.begin();
      const nt = await measure(() => mem.mm.NT(M, N, K, ba, 0, K, bw, 0, bc, 0, N, false), budget);
      const nn = await measure(() => mem.mm.NN(M, N, K, bg, 0, N, bw, 0, bdx, 0, K, false), budget);
      const tn = await measure(() => mem.mm.TN(N, K, M, bg, 0, N, ba, 0, K, bdw, 0, true), budget);
      return { NT: rate(nt), NN: rate(nn), TN: rate(tn) };
    } finally {
      mem.dispose();
    }
  };
  const backends: Record<string, Rates> = {};
  for (const b of availableBackends()) if (b !== REFERENCE_BACKEND) backends[b.name] = await ratesOn(b.name);
  return { ...shape, timing, gflops: rate(timing), cellforge: await ratesOn(REFERENCE_BACKEND.name), backends };
}

/**
 * Estimated fwd+bwd time of a cell at the plain-JS gemm rate: the forward's
 * products (one input product, T step products) at their measured times, and
 * the backward as twice that. Elementwise work is left out, so a real kernel
 * is slower; it is a bound, not a measurement.
 */
export function gemmBoundMs(w: Workload, results: GemmResult[]): { forward: number; forwardBackward: number } {
  const input = results.find((r) => r.role === "input")!;
  const step = results.find((r) => r.role === "step")!;
  const forward = input.timing.medianMs + w.T * step.timing.medianMs;
  return { forward, forwardBackward: 3 * forward };
}

/** Throws if gemm disagrees with the triple loop on shapes that exercise every edge case. */
export function checkGemm(): void {
  for (const [M, K, N] of [
    [1, 32, 96],
    [7, 5, 9],
    [13, 301, 262],
    [64, 37, 517],
  ] as const) {
    const a = filled(M * K, 3);
    const b = filled(K * N, 4);
    const got = new Float32Array(M * N);
    const want = new Float32Array(M * N);
    gemm(a, b, got, M, K, N);
    gemmReference(a, b, want, M, K, N);
    for (let i = 0; i < M * N; i++) {
      if (Math.abs(got[i]! - want[i]!) > 1e-4 * Math.sqrt(K)) {
        throw new Error(`jsgemm wrong at ${M}x${K}x${N}, element ${i}: ${got[i]} vs ${want[i]}`);
      }
    }
  }
}

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.7 + seed);
  return a;
}

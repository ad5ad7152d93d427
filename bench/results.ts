// The numbers one run produces: what the table shows and the JSON holds.

import type { Budget, Timing } from "./timing.ts";
import type { Cell, Inputs, Skip, Workload } from "./workloads.ts";

export interface Measured {
  medianMs: number;
  gflops: number;
  runs: number;
  warmups: number;
  firstMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

export interface ContenderResult {
  name: string;
  status: "ok" | "skipped" | "failed";
  /** why it was skipped or how it failed */
  reason?: string;
  variant?: string;
  loss?: number;
  forwardBackward?: Measured;
  forward?: Measured;
  /** why forward alone was not measured */
  forwardNote?: string;
  /**
   * For a peer (a contender whose name does not start with "cellforge"): its time over each
   * cellforge contender's, keyed by that contender's name. Above 1, that cellforge is faster.
   */
  speedups?: Record<string, Speedup>;
  /** the same as speedups.cellforge (the contender named exactly "cellforge"), kept for older readers */
  cellforgeSpeedup?: Speedup;
}

export interface Speedup {
  forwardBackward?: number;
  forward?: number;
}

export interface BlockResult {
  workload: Workload;
  cell: Cell;
  flops: { forward: number; forwardBackward: number };
  contenders: ContenderResult[];
  /** the loss of the PyTorch-form cell in float64 (reference.ts) */
  referenceLoss: number;
  /** the plain-JS gemm bound (estimate), ms */
  gemmBoundMs?: { forward: number; forwardBackward: number };
}

export function measured(t: Timing, flopCount: number): Measured {
  return {
    medianMs: t.medianMs,
    gflops: flopCount / t.medianMs / 1e6,
    runs: t.runs,
    warmups: t.warmups,
    firstMs: t.firstMs,
    minMs: t.minMs,
    maxMs: t.maxMs,
    samplesMs: t.samplesMs,
  };
}

/** cellforge's own contenders ("cellforge", "cellforge-wasm", …) are compared with every other row. */
export function isCellforge(name: string): boolean {
  return name.startsWith("cellforge");
}

/** Each peer row's time over each cellforge row's, for the cellforge contenders that ran. */
export function addSpeedups(block: BlockResult): void {
  const cfs = block.contenders.filter((c) => isCellforge(c.name) && c.status === "ok");
  if (cfs.length === 0) return;
  for (const c of block.contenders) {
    if (isCellforge(c.name) || c.status !== "ok") continue;
    c.speedups = Object.fromEntries(
      cfs.map((cf) => [
        cf.name,
        { forwardBackward: ratio(c.forwardBackward, cf.forwardBackward), forward: ratio(c.forward, cf.forward) },
      ]),
    );
    if (c.speedups.cellforge) c.cellforgeSpeedup = c.speedups.cellforge;
  }
}

function ratio(peer?: Measured, cf?: Measured): number | undefined {
  return peer && cf ? peer.medianMs / cf.medianMs : undefined;
}

// ── contenders timed in another process ─────────────────────────────────────

/**
 * A contender timed outside this process (PyTorch, in Python): it runs timing.ts's loop itself
 * (the same rules, the budget passed on) and hands back the timings, which run.ts turns into a row
 * like any in-process contender's. An in-process contender (workloads.ts's Contender) has `setup`;
 * an external one has `measure`.
 */
export interface ExternalContender {
  name: string;
  /** one line: library, version, backend */
  describe?: string;
  /** printed under the list of contenders, e.g. that its BLAS is the slow reference one */
  warnings?: string[];
  /** facts kept in the JSON (versions, BLAS) */
  info?: unknown;
  measure(
    w: Workload,
    cell: Cell,
    inputs: Inputs,
    budget: Budget,
    forwardCutoffMs: number,
  ): Promise<ExternalMeasurement | Skip>;
}

export interface ExternalMeasurement {
  variant?: string;
  /** the loss on the shared inputs, for the loss check */
  loss?: number;
  forwardBackward: Timing;
  forward?: Timing;
  /** why forward alone was not measured */
  forwardNote?: string;
}

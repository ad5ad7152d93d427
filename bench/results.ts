// The numbers one run produces: what the table shows and the JSON holds.

import type { Timing } from "./timing.ts";
import type { Cell, Workload } from "./workloads.ts";

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
  /** this contender's time over cellforge's: above 1, cellforge is faster */
  cellforgeSpeedup?: { forwardBackward?: number; forward?: number };
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

export function addSpeedups(block: BlockResult): void {
  const cf = block.contenders.find((c) => c.name === "cellforge" && c.status === "ok");
  if (!cf) return;
  for (const c of block.contenders) {
    if (c === cf || c.status !== "ok") continue;
    c.cellforgeSpeedup = {
      forwardBackward: ratio(c.forwardBackward, cf.forwardBackward),
      forward: ratio(c.forward, cf.forward),
    };
  }
}

function ratio(peer?: Measured, cf?: Measured): number | undefined {
  return peer && cf ? peer.medianMs / cf.medianMs : undefined;
}

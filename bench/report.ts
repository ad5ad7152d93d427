// The text report: one table per workload and cell, with the loss check.

import { fmtGflop, fmtMs, fmtRate, fmtRatio, formatTable, type Row } from "./table.ts";
import type { BlockResult, ContenderResult } from "./results.ts";
import type { GemmResult } from "./gemmbench.ts";
import type { Budget } from "./timing.ts";

export interface Environment {
  node: string;
  cpu: string;
  cores: number;
  platform: string;
  /** 1, 5 and 15 minute load averages when the run started */
  loadAverage: number[];
  packages: Record<string, string>;
  budget: Budget;
  forwardCutoffMs: number;
}

export function headerText(env: Environment, budget: Budget): string {
  const lines = [
    `cellforge bench: float32, one thread, one process`,
    `  ${env.cpu} (${env.cores} cores), Node ${env.node}`,
    `  ${Object.entries(env.packages).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `  fwd+bwd: loss = Σ_t Σ h_t·dy_t and its gradient w.r.t. x and every weight, state from 0;`,
    `  fwd: the loss alone. GFLOP/s counts matrix products only: fwd = 2·T·B·(D+H)·G·H`,
    `  (G = 3 for GRU, 4 for LSTM), fwd+bwd = 3 × fwd.`,
    `  Times are medians of the runs shown, made after warm-up: as many as fit in ${budget.measureMs / 1000} s,`,
    `  at least ${budget.minRuns}, but a single one when a run takes over ${budget.slowRunMs / 1000} s.`,
    `  range: (slowest − fastest) / median of the fwd+bwd runs.`,
    `  1st call: the first fwd+bwd call alone (with any compilation).`,
    `  cf×: the row's time over cellforge's (above 1, cellforge is faster).`,
  ];
  if (env.loadAverage[0]! > 1.2) {
    lines.push(
      `  WARNING: load average ${env.loadAverage.map((l) => l.toFixed(2)).join(" ")} before starting:`,
      `  other processes are using this machine's ${env.cores} cores, so times will be noisy.`,
    );
  }
  return lines.join("\n");
}

export function formatGemm(results: GemmResult[]): string {
  const rows: Row[] = results.map((r) => [
    `${r.workload} ${r.cell.toUpperCase()} ${r.role === "input" ? "input (T·B)×D×GH" : "step B×H×GH"}`,
    `${r.M}×${r.K}×${r.N}`,
    fmtMs(r.timing.medianMs),
    fmtRate(r.gflops),
    String(r.timing.runs),
    fmtRate(r.cellforge.NT),
    fmtRate(r.cellforge.NN),
    fmtRate(r.cellforge.TN),
    `${Math.round((100 * Math.min(r.cellforge.NT, r.cellforge.NN, r.cellforge.TN)) / r.gflops)}%`,
  ]);
  return [
    `Plain-JS gemm (Float32Array, 4×4 register block, 16 accumulators, k unrolled by 2, B packed),`,
    `and cellforge's generated products (generated/gemm.ts) at the same shapes, GFLOP/s:`,
    `x·Wᵀ forward, g·W backward to the vector, gᵀ·x weight gradient; "worst/plain" is the slowest of the three over the plain-JS rate`,
    formatTable(["product", "M×K×N", "ms", "GFLOP/s", "runs", "cf x·Wᵀ", "cf g·W", "cf gᵀ·x", "worst/plain"], rows),
  ].join("\n");
}

export function formatBlock(b: BlockResult): string {
  const { name, B, D, H, T } = b.workload;
  const title =
    `${name} ${b.cell.toUpperCase()}  B=${B} D=${D} H=${H} T=${T}` +
    `   fwd ${fmtGflop(b.flops.forward)}, fwd+bwd ${fmtGflop(b.flops.forwardBackward)}`;
  const cf = b.contenders.find((c) => c.name === "cellforge" && c.status === "ok");
  const header = ["", "fwd+bwd ms", "GFLOP/s", "runs", "range", "1st call ms", "fwd ms", "GFLOP/s", "runs"];
  if (cf) header.push("cf× fwd+bwd", "cf× fwd");
  const rows: Row[] = [];
  const dash = "–";
  for (const c of b.contenders) {
    if (c.status !== "ok") {
      rows.push({ label: c.name, note: c.status === "skipped" ? c.reason ?? "skipped" : `FAILED: ${c.reason}` });
      continue;
    }
    const fb = c.forwardBackward!;
    const fw = c.forward;
    const sp = c.cellforgeSpeedup;
    const row = [
      c.name,
      fmtMs(fb.medianMs),
      fmtRate(fb.gflops),
      String(fb.runs),
      fb.runs > 1 ? `${(((fb.maxMs - fb.minMs) / fb.medianMs) * 100).toFixed(0)}%` : dash,
      fmtMs(fb.firstMs),
      fw ? fmtMs(fw.medianMs) : dash,
      fw ? fmtRate(fw.gflops) : dash,
      fw ? String(fw.runs) : dash,
    ];
    if (cf) {
      row.push(
        c === cf ? "" : sp?.forwardBackward !== undefined ? fmtRatio(sp.forwardBackward) : dash,
        c === cf ? "" : sp?.forward !== undefined ? fmtRatio(sp.forward) : dash,
      );
    }
    rows.push(row);
  }
  if (b.gemmBoundMs) {
    const g = b.gemmBoundMs;
    const row = [
      "plain-JS gemm bound (est.)",
      fmtMs(g.forwardBackward),
      fmtRate(b.flops.forwardBackward / g.forwardBackward / 1e6),
      dash,
      dash,
      dash,
      fmtMs(g.forward),
      fmtRate(b.flops.forward / g.forward / 1e6),
      dash,
    ];
    if (cf) {
      row.push(
        fmtRatio(g.forwardBackward / cf.forwardBackward!.medianMs),
        cf.forward ? fmtRatio(g.forward / cf.forward.medianMs) : dash,
      );
    }
    rows.push(row);
  }
  const lines = [title, formatTable(header, rows)];
  const notes = b.contenders.filter((c) => c.forwardNote && c.forwardNote !== "not provided");
  for (const c of notes) lines.push(`  ${c.name}: fwd ${c.forwardNote}`);
  lines.push(...lossCheck(b));
  return lines.join("\n");
}

/**
 * Contenders computing the same variant of the cell must report the same loss;
 * those of variant "torch" must match the float64 reference.
 */
function lossCheck(b: BlockResult): string[] {
  const byVariant = new Map<string, { name: string; loss: number }[]>([
    ["torch", [{ name: "reference (f64)", loss: b.referenceLoss }]],
  ]);
  for (const c of b.contenders) {
    if (c.status !== "ok" || c.loss === undefined) continue;
    const v = c.variant ?? "unnamed";
    byVariant.set(v, [...(byVariant.get(v) ?? []), { name: c.name, loss: c.loss }]);
  }
  const { B, H, T } = b.workload;
  // float32 sums of T·B·H terms: an error growing like √(T·B·H), plus a relative part
  const tol = (x: number) => 2e-5 * Math.sqrt(T * B * H) + 1e-4 * Math.abs(x);
  const lines: string[] = [];
  for (const [variant, cs] of byVariant) {
    const ref = cs[0]!.loss;
    const agree = cs.every((c) => Math.abs(c.loss - ref) <= tol(ref));
    const values = cs.map((c) => `${c.name} ${c.loss.toPrecision(7)}`).join(", ");
    const verdict = cs.length < 2 ? "" : agree ? " (agree)" : " (DISAGREE)";
    lines.push(`  loss check, ${variant} ${b.cell.toUpperCase()}: ${values}${verdict}`);
  }
  return lines;
}

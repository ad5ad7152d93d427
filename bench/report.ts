// The text report: one table per workload and cell, with the loss check.

import { fmtGflop, fmtMs, fmtRate, fmtRatio, formatTable, type Row } from "./table.ts";
import { isCellforge, type BlockResult } from "./results.ts";
import type { GemmResult } from "./gemmbench.ts";
import { BACKENDS } from "../runtime/memory.ts";
import type { PythonInfo } from "./peers/torch.ts";
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
  /** the Python side (pytorch row, numpy sgemm): versions and BLAS, or why it is not there */
  python?: { info: PythonInfo } | { missing: string };
}

/** numpy's sgemm beside the plain-JS gemm table (peers/torch.ts). */
export interface SgemmSummary {
  /** why numpy did not run: "not installed: no Python at …", or "FAILED: …" */
  note?: string;
  /** the BLAS numpy calls, e.g. "OpenBLAS (/usr/lib/…/libblas.so.3)" */
  blas?: string;
  warnings?: string[];
  /** a large square product, n×n×n, GFLOP/s: the most this machine's BLAS does on one thread */
  peak?: { n: number; numpy: number; torch?: number };
}

/** "cellforge" → "cf", "cellforge-wasm" → "cf-wasm": the prefix of a ratio column's header. */
export function cfLabel(name: string): string {
  return name.replace(/^cellforge/, "cf");
}

export function headerText(env: Environment, budget: Budget): string {
  const lines = [
    `cellforge bench: float32, one thread (cellforge-wasm-2t: two); pytorch and numpy in a Python subprocess, the rest in this process`,
    `  ${env.cpu} (${env.cores} cores), Node ${env.node}`,
    `  ${Object.entries(env.packages).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `  fwd+bwd: loss = Σ_t Σ h_t·dy_t and its gradient w.r.t. x and every weight, state from 0;`,
    `  fwd: the loss alone. GFLOP/s counts matrix products only: fwd = 2·T·B·(D+H)·G·H`,
    `  (G = 3 for GRU, 4 for LSTM), fwd+bwd = 3 × fwd.`,
    `  Times are medians of the runs shown, made after warm-up: as many as fit in ${budget.measureMs / 1000} s,`,
    `  at least ${budget.minRuns}, but a single one when a run takes over ${budget.slowRunMs / 1000} s.`,
    `  range: (slowest − fastest) / median of the fwd+bwd runs.`,
    `  1st call: the first fwd+bwd call alone (with any compilation).`,
    `  cf×: the row's time over cellforge's (above 1, cellforge is faster); cf-NAME×: over cellforge-NAME's.`,
  ];
  if (env.loadAverage[0]! > 1.2) {
    lines.push(
      `  WARNING: load average ${env.loadAverage.map((l) => l.toFixed(2)).join(" ")} before starting:`,
      `  other processes are using this machine's ${env.cores} cores, so times will be noisy.`,
    );
  }
  return lines.join("\n");
}

export function formatGemm(results: GemmResult[], sgemm?: SgemmSummary): string {
  const withNumpy = results.some((r) => r.numpy);
  const pct = (f: number) => `${Math.round(100 * f)}%`;
  // a cellforge product: its rate, and with numpy its fraction of numpy's sgemm at the same shape
  const cf = (r: GemmResult, k: "NT" | "NN" | "TN") =>
    fmtRate(r.cellforge[k]) + (r.cellforgeOfSgemm ? ` ${pct(r.cellforgeOfSgemm[k]).padStart(4)}` : "");
  // a column of each product per other backend that ran (wasm where the engine has SIMD)
  const others = [...new Set(results.flatMap((r) => Object.keys(r.backends)))];
  const other = (r: GemmResult, name: string, k: "NT" | "NN" | "TN") => {
    const x = r.backends[name], of = r.backendsOfSgemm?.[name];
    return x ? fmtRate(x[k]) + (of ? ` ${pct(of[k]).padStart(4)}` : "") : "–";
  };
  const dash = "–";
  const rows: Row[] = results.map((r) => {
    const row = [
      `${r.workload} ${r.cell.toUpperCase()} ${r.role === "input" ? "input (T·B)×D×GH" : "step B×H×GH"}`,
      `${r.M}×${r.K}×${r.N}`,
      fmtMs(r.timing.medianMs),
      fmtRate(r.gflops),
      String(r.timing.runs),
      cf(r, "NT"),
      cf(r, "NN"),
      cf(r, "TN"),
      pct(Math.min(r.cellforge.NT, r.cellforge.NN, r.cellforge.TN) / r.gflops),
    ];
    for (const name of others) row.push(other(r, name, "NT"), other(r, name, "NN"), other(r, name, "TN"));
    if (withNumpy) row.push(r.numpy ? fmtMs(r.numpy.timing.medianMs) : dash, r.numpy ? fmtRate(r.numpy.gflops) : dash);
    return row;
  });
  const header = ["product", "M×K×N", "ms", "GFLOP/s", "runs", "cf x·Wᵀ", "cf g·W", "cf gᵀ·x", "worst/plain"];
  for (const name of others) header.push(`${name} x·Wᵀ`, `${name} g·W`, `${name} gᵀ·x`);
  if (withNumpy) header.push("numpy ms", "numpy GFLOP/s");
  const lines = [
    `Plain-JS gemm (Float32Array, 4×4 register block, 16 accumulators, k unrolled by 2, B packed),`,
    `and cellforge's generated products (runtime/gemm.ts) at the same shapes, GFLOP/s:`,
    `x·Wᵀ forward, g·W backward to the vector, gᵀ·x weight gradient; "worst/plain" is the slowest of the three over the plain-JS rate`,
  ];
  for (const name of others) lines.push(`${name}: the same three products on the ${name} backend (${BACKENDS.find((b) => b.name === name)?.description ?? "not registered in this process"}), one thread`);
  if (withNumpy) {
    lines.push(
      `numpy: numpy.matmul in float32 (BLAS sgemm, one thread${sgemm?.blas ? `, ${sgemm.blas}` : ""}), timed from Python;`,
      `the % beside each cellforge rate is its fraction of numpy's sgemm at the same shape`,
    );
  }
  lines.push(formatTable(header, rows));
  if (sgemm?.peak) {
    const { n, numpy, torch } = sgemm.peak;
    lines.push(
      `  sgemm ${n}×${n}×${n}: numpy ${fmtRate(numpy)} GFLOP/s` +
        (torch !== undefined ? `, torch.mm ${fmtRate(torch)} GFLOP/s` : "") +
        `:` +
        ` the most this machine's BLAS does on one thread`,
    );
  }
  if (sgemm?.note) lines.push(`  numpy sgemm: ${sgemm.note}`);
  for (const w of sgemm?.warnings ?? []) lines.push(`  WARNING: ${w}`);
  return lines.join("\n");
}

export function formatBlock(b: BlockResult): string {
  const { name, B, D, H, T } = b.workload;
  const title =
    `${name} ${b.cell.toUpperCase()}  B=${B} D=${D} H=${H} T=${T}` +
    `   fwd ${fmtGflop(b.flops.forward)}, fwd+bwd ${fmtGflop(b.flops.forwardBackward)}`;
  const cfs = b.contenders.filter((c) => isCellforge(c.name) && c.status === "ok");
  const header = ["", "fwd+bwd ms", "GFLOP/s", "runs", "range", "1st call ms", "fwd ms", "GFLOP/s", "runs"];
  for (const cf of cfs) header.push(`${cfLabel(cf.name)}× fwd+bwd`, `${cfLabel(cf.name)}× fwd`);
  const rows: Row[] = [];
  const dash = "–";
  for (const c of b.contenders) {
    if (c.status !== "ok") {
      rows.push({ label: c.name, note: c.status === "skipped" ? c.reason ?? "skipped" : `FAILED: ${c.reason}` });
      continue;
    }
    const fb = c.forwardBackward!;
    const fw = c.forward;
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
    for (const cf of cfs) {
      // cellforge rows are compared with the peers, not with each other
      const sp = c.speedups?.[cf.name];
      if (isCellforge(c.name)) row.push("", "");
      else {
        row.push(
          sp?.forwardBackward !== undefined ? fmtRatio(sp.forwardBackward) : dash,
          sp?.forward !== undefined ? fmtRatio(sp.forward) : dash,
        );
      }
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
    for (const cf of cfs) {
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

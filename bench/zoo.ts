// npm run bench -- --zoo: every cell in dsl/ at W1 and W2 on the wasm backend, float32, one thread
// (and two for the layer-norm cells at W1): fwd, fwd+bwd, their ratio, GFLOP/s counted from the IR
// (src/stats.ts's cellStats, as `cellforge bench`) and the floats the forward keeps per step for the
// backward (the plan's saved buffers, codegen/plan.ts's floatsPerStep). Beside the custom cells, their peers
// (zoo-peers.ts): PyTorch eager and TorchScript, jax-js for lstm-layernorm, each first shown to
// compute the same cell (the loss check), then timed in the same run.

import os from "node:os";
import path from "node:path";
import type { Cell } from "../src/cell.ts";
import { builtinCellFiles, loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { cellStats } from "../src/stats.ts";
import { randomCase, type SequenceCase } from "../src/sequence.ts";
import { buildPlan, floatsPerStep } from "../codegen/plan.ts";
import { kernelArgs, loadKernels } from "../check/kernelcheck.ts";
import type { FloatArray, Kernel, KernelModule } from "../runtime/kernel.ts";
import { segmentSteps } from "../runtime/checks.ts";
import { measure, type Budget, type Timing } from "./timing.ts";
import { measured, type Measured } from "./results.ts";
import { fmtMs, fmtRate, fmtRatio, formatTable, type Row } from "./table.ts";
import type { Workload } from "./workloads.ts";
import { type CheckNumbers, type PeerRun, type ZooCase, JAX_CELLS, hasTorchPeer, jaxZoo, torchZoo } from "./zoo-peers.ts";

/** The workloads of the zoo (bench/workloads.ts's shapes). */
export const ZOO_WORKLOADS = ["W1", "W2"];
/** Cells also timed on two threads, at W1. */
export const TWO_THREAD_CELLS = ["lstm-layernorm", "gru-layernorm"];
const BACKEND = "wasm";
/**
 * Warm-up calls before any timing, at least (timing.ts's minWarmups, also in the Python peers): the
 * layer-norm cells' fwd+bwd took 4-5 calls to reach their steady speed on the loaded 2-core machine
 * (1209, 1061, 319, 212 ms … then 53), and TorchScript specialises over its first calls.
 */
export const ZOO_MIN_WARMUPS = 8;
/** The seed of every cell's case (parameters, inputs, initial states, upstream). */
const SEED = 14;

/**
 * Sizes other than D (the workload's input size) and H (its hidden size), by name: none of the
 * cells in dsl/ has one today (sru has H alone, its input size being H; slstm's 4 heads divide both
 * workloads' H). A cell with a size not here is refused, naming it.
 */
export const EXTRA_SIZES: Readonly<Record<string, (w: Workload) => number>> = {};

/** Every cell in dsl/, by name, sorted. */
export function zooCells(): string[] {
  return builtinCellFiles().map((f) => path.basename(f, path.extname(f)));
}

/** A cell's sizes at a workload, and what to say about them when they are not the workload's D and H. */
export function zooSizes(cell: Cell, w: Workload): { sizes: Record<string, number>; note?: string } {
  const sizes: Record<string, number> = {};
  for (const s of cell.sizes) {
    if (s === "D") sizes.D = w.D;
    else if (s === "H") sizes.H = w.H;
    else if (EXTRA_SIZES[s]) sizes[s] = EXTRA_SIZES[s](w);
    else throw new Error(`bench/zoo.ts: ${cell.name} has a size ${s}; give it a value at each workload in EXTRA_SIZES`);
  }
  const extra = cell.sizes.filter((s) => s !== "D" && s !== "H");
  const notes = [];
  if (!cell.sizes.includes("D")) notes.push(`no D: the input size is ${cell.sizes.includes("H") ? "H" : "fixed by the cell"}`);
  if (extra.length) notes.push(extra.map((s) => `${s}=${sizes[s]}`).join(" "));
  return notes.length ? { sizes, note: notes.join("; ") } : { sizes };
}

// ── results ──────────────────────────────────────────────────────────────────

export interface ZooPeer {
  /** "pytorch eager", "torchscript", "jax-js" */
  name: string;
  status: "ok" | "skipped" | "failed";
  reason?: string;
  forwardBackward?: Measured;
  forward?: Measured;
  forwardNote?: string;
  /** its fwd+bwd time over cellforge's in this run (above 1, cellforge is faster) */
  speedup?: number;
}

export interface ZooCheck {
  /** cellforge against this peer */
  peer: string;
  precision: "float64" | "float32";
  cellforge: CheckNumbers;
  other: CheckNumbers;
  /** the largest difference, each over its tolerance: at most 1 passes */
  worst: number;
  rule: string;
  pass: boolean;
}

export interface ZooRow {
  cell: string;
  workload: string;
  B: number;
  T: number;
  sizes: Record<string, number>;
  sizesNote?: string;
  threads: number;
  /** FLOPs of the whole sequence, counted from the IR */
  flops: { forward: number; forwardBackward: number };
  /** floats per example per step the forward keeps on its tapes for the backward */
  savedFloats: number;
  forward?: Measured;
  forwardBackward?: Measured;
  error?: string;
  peers: ZooPeer[];
  checks: ZooCheck[];
}

export interface ZooOptions {
  cells: string[];
  workloads: Workload[];
  budget: Budget;
  forwardCutoffMs: number;
  /** which peers to run: "pytorch" (eager and TorchScript), "jax-js" */
  peers: { pytorch: boolean; jaxjs: boolean };
  /** one progress line per piece of work */
  progress: (what: string) => void;
  /** each row as it is done (the table comes at the end) */
  onRow?: (row: ZooRow) => void;
}

// ── the run ──────────────────────────────────────────────────────────────────

export async function runZoo(o: ZooOptions): Promise<ZooRow[]> {
  const jobs: { cell: string; w: Workload; threads: number }[] = [];
  for (const cell of o.cells)
    for (const w of o.workloads) {
      jobs.push({ cell, w, threads: 1 });
      if (w.name === "W1" && TWO_THREAD_CELLS.includes(cell)) jobs.push({ cell, w, threads: 2 });
    }
  const rows: ZooRow[] = [];
  const loaded = new Map<string, { cell: Cell; mod: KernelModule; stats: (s: Record<string, number>) => { forward: number; backward: number; saved: number } }>();
  for (const [i, job] of jobs.entries()) {
    const step = (what: string) => o.progress(`[${i + 1}/${jobs.length}] ${job.cell} ${job.w.name}${job.threads > 1 ? ` ${job.threads} threads` : ""}: ${what}`);
    step("loading");
    let l = loaded.get(job.cell);
    if (!l) {
      const cell = await loadCell(job.cell);
      const bw = deriveBackward(cell);
      const plan = buildPlan(cell, bw);
      const mod = await loadKernels(cell, { committed: true });
      l = {
        cell,
        mod,
        stats: (s) => {
          const st = cellStats(bw, s);
          return { forward: st.forwardFlops, backward: st.backwardFlops, saved: floatsPerStep(plan, "saved", s) };
        },
      };
      loaded.set(job.cell, l);
    }
    const row = await runJob(l.cell, l.mod, l.stats, job.w, job.threads, o, step);
    rows.push(row);
    o.onRow?.(row);
  }
  return rows;
}

async function runJob(
  cell: Cell,
  mod: KernelModule,
  stats: (s: Record<string, number>) => { forward: number; backward: number; saved: number },
  w: Workload,
  threads: number,
  o: ZooOptions,
  step: (what: string) => void,
): Promise<ZooRow> {
  const { B, T } = w;
  const { sizes, note } = zooSizes(cell, w);
  const st = stats(sizes);
  const row: ZooRow = {
    cell: cell.name,
    workload: w.name,
    B,
    T,
    sizes,
    ...(note ? { sizesNote: note } : {}),
    threads,
    flops: { forward: st.forward * B * T, forwardBackward: (st.forward + st.backward) * B * T },
    savedFloats: st.saved,
    peers: [],
    checks: [],
  };
  const c = randomCase(cell, { sizes, B, T, seed: SEED });
  let cf32: CheckNumbers | undefined;
  try {
    step(`cellforge ${BACKEND} fwd, fwd+bwd`);
    const k = mod.createKernel32(sizes, B, T, { backend: BACKEND, threads });
    try {
      const a = kernelArgs(mod, c, Float32Array);
      const fwd = () => k.forward(a.p, a.inputs, a.initial, a.out);
      const both = () => {
        k.forward(a.p, a.inputs, a.initial, a.out);
        k.backward(a.p, a.inputs, a.initial, a.out, a.upstream, a.grads);
      };
      row.forwardBackward = measured(await measure(both, o.budget), row.flops.forwardBackward);
      row.forward = measured(await measure(fwd, o.budget), row.flops.forward);
      cf32 = checkNumbers(k, a);
    } finally {
      k.dispose();
    }
  } catch (err) {
    row.error = message(err);
    return row;
  }
  if (threads !== 1) return row;

  const wantTorch = o.peers.pytorch && hasTorchPeer(cell.name);
  const wantJax = o.peers.jaxjs && JAX_CELLS.includes(cell.name);
  if (!wantTorch && !wantJax) return row;
  // the check's numbers of cellforge's float64 kernels, on the same backend
  step(`cellforge ${BACKEND} float64 (the check)`);
  const k64 = mod.createKernel64(sizes, B, T, { backend: BACKEND });
  let cf64: CheckNumbers;
  try {
    cf64 = checkNumbers(k64, kernelArgs(mod, c, Float64Array));
  } finally {
    k64.dispose();
  }
  const zc = zooCase(cell, mod, c);
  const cfMs = row.forwardBackward!.medianMs;
  const peerRow = (name: string, r: Omit<PeerRun, "check">): ZooPeer => ({
    name,
    status: "ok",
    forwardBackward: measured(r.forwardBackward, row.flops.forwardBackward),
    ...(r.forward ? { forward: measured(r.forward, row.flops.forward) } : { forwardNote: r.forwardNote }),
    speedup: r.forwardBackward.medianMs / cfMs,
  });
  if (wantTorch) {
    step("pytorch eager and torchscript (Python)");
    try {
      const r = await torchZoo(zc, o.budget, o.forwardCutoffMs);
      if ("missing" in r) for (const n of ["pytorch eager", "torchscript"]) row.peers.push({ name: n, status: "skipped", reason: `not installed: ${r.missing}` });
      else
        for (const [kind, name] of [["eager", "pytorch eager"], ["torchscript", "torchscript"]] as const) {
          row.peers.push(peerRow(name, r[kind]));
          row.checks.push(compare(name, "float64", cf64, r[kind].check, c), compare(name, "float32", cf32!, r[kind].f32, c));
        }
    } catch (err) {
      for (const n of ["pytorch eager", "torchscript"]) row.peers.push({ name: n, status: "failed", reason: message(err) });
    }
  }
  if (wantJax) {
    step("jax-js");
    try {
      const r = await jaxZoo(zc, o.budget, o.forwardCutoffMs);
      if ("missing" in r) row.peers.push({ name: "jax-js", status: "skipped", reason: r.missing });
      else {
        row.peers.push(peerRow("jax-js", r));
        row.checks.push(compare("jax-js", "float32", cf32!, r.f32, c));
      }
    } catch (err) {
      row.peers.push({ name: "jax-js", status: "failed", reason: message(err) });
    }
  }
  return row;
}

/** The case as the peers take it: cellforge's flat parameters and its inputs, float64. */
export function zooCase(cell: Cell, mod: KernelModule, c: SequenceCase): ZooCase {
  const a = kernelArgs(mod, c, Float64Array);
  const [x, ...more] = Object.values(a.inputs);
  if (!x || more.length) throw new Error(`the zoo's peers take one input, x; ${cell.name} has ${Object.keys(a.inputs).join(", ")}`);
  return { cell: cell.name, sizes: c.sizes, B: c.B, T: c.T, layout: mod.paramLayout(c.sizes), params: a.p, x, initial: a.initial, upstream: a.upstream };
}

/** Forward and backward once: the loss Σ out·up over every state and output, and its gradient's norms. */
export function checkNumbers<A extends FloatArray>(k: Kernel<A>, a: ReturnType<typeof kernelArgs<A>>): CheckNumbers {
  k.forward(a.p, a.inputs, a.initial, a.out);
  k.backward(a.p, a.inputs, a.initial, a.out, a.upstream, a.grads);
  let loss = 0;
  for (const [n, up] of Object.entries(a.upstream)) {
    const out = a.out[n]!;
    for (let i = 0; i < up.length; i++) loss += out[i]! * up[i]!;
  }
  const norm = (xs: ArrayLike<number>[]) => Math.sqrt(xs.reduce((s, x) => { for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!; return s; }, 0));
  return { loss, gradParams: norm([a.grads.params]), gradX: norm(Object.values(a.grads.inputs)), gradInitial: norm(Object.values(a.grads.initial)) };
}

/** float64: every number to 1e-9 relative (the same sums in another order differ by ~1e-15). */
export const F64_RULE = { rel: 1e-9 };
/**
 * float32: the loss as the main bench's loss check (a sum of n = T·B·(widths) products: 2e-5·√n
 * plus 1e-4 relative), the gradient norms to 1e-3 relative.
 */
export const F32_RULE = { lossAbs: 2e-5, lossRel: 1e-4, normRel: 1e-3 };

export function compare(peer: string, precision: "float64" | "float32", cf: CheckNumbers, other: CheckNumbers, c: { B: number; T: number; upstream: Record<string, ArrayLike<number>> }): ZooCheck {
  const keys = ["loss", "gradParams", "gradX", "gradInitial"] as const;
  const terms = Object.values(c.upstream).reduce((s, u) => s + u.length, 0);
  const tol = (k: (typeof keys)[number], v: number) =>
    precision === "float64" ? F64_RULE.rel * Math.max(1, Math.abs(v))
    : k === "loss" ? F32_RULE.lossAbs * Math.sqrt(terms) + F32_RULE.lossRel * Math.abs(v)
    : F32_RULE.normRel * Math.max(1, Math.abs(v));
  // NaN compares as failing
  const worst = Math.max(...keys.map((k) => { const d = Math.abs(cf[k] - other[k]) / tol(k, cf[k]); return Number.isNaN(d) ? Infinity : d; }));
  const rule = precision === "float64" ? `each ≤ ${F64_RULE.rel}·max(1,|x|)` : `loss ≤ ${F32_RULE.lossAbs}·√${terms} + ${F32_RULE.lossRel}·|L|, norms ≤ ${F32_RULE.normRel}·max(1,|x|)`;
  return { peer, precision, cellforge: cf, other, worst, rule, pass: worst <= 1 };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

// ── the report ───────────────────────────────────────────────────────────────

const PEER_COLUMNS = ["pytorch eager", "torchscript", "jax-js"];

function cells(r: ZooRow): string[] {
  const dash = "–";
  const sizes = Object.entries(r.sizes).map(([k, n]) => `${k}${n}`).join(" ");
  const head = [r.cell, r.workload, sizes, String(r.threads)];
  if (!r.forwardBackward || !r.forward) return [...head, `FAILED: ${r.error ?? "not measured"}`];
  const out = [
    ...head,
    fmtMs(r.forward.medianMs),
    fmtMs(r.forwardBackward.medianMs),
    (r.forwardBackward.medianMs / r.forward.medianMs).toFixed(2),
    fmtRate(r.forward.gflops),
    fmtRate(r.forwardBackward.gflops),
    String(r.savedFloats),
  ];
  for (const name of PEER_COLUMNS) {
    const p = r.peers.find((x) => x.name === name);
    if (!p) out.push("", "");
    else if (p.status !== "ok") out.push(p.status === "skipped" ? "skipped" : "FAILED", dash);
    else out.push(fmtMs(p.forwardBackward!.medianMs), fmtRatio(p.speedup!));
  }
  return out;
}

const HEADER = ["cell", "W", "sizes", "thr", "fwd ms", "f+b ms", "f+b/fwd", "fwd GFLOP/s", "f+b GFLOP/s", "saved/step", "eager f+b ms", "eager/cf", "TS f+b ms", "TS/cf", "jax-js f+b ms", "jax-js/cf"];

export function zooIntro(budget: Budget): string {
  return [
    `cell zoo: every cell in dsl/, generated kernels on the ${BACKEND} backend, float32, one thread (thr 2: two, at W1 for ${TWO_THREAD_CELLS.join(" and ")})`,
    `  W1: B=32 D=128 H=128 T=50; W2: B=1 D=32 H=32 T=100 (sru has H alone: its input size is H)`,
    `  fwd: forward over T steps; f+b: forward and backward (gradients of Σ_t Σ out_t·up_t for every state and output`,
    `  w.r.t. the parameters, x and the initial states); f+b/fwd their ratio; GFLOP/s from the FLOPs counted in the IR`,
    `  (src/stats.ts, as \`cellforge bench\`: every op, elementwise ones too); saved/step: floats per example per step`,
    `  the forward keeps for the backward (the kernel plan's saved buffers; states and outputs not counted).`,
    `  Peers of the custom cells (scripts/bench-torch.py, bench/zoo-peers.ts): PyTorch eager and TorchScript`,
    `  (torch.jit.script of the same module: a Python loop over steps, autograd backward; nn.RNN for rnn), one thread,`,
    `  and jax-js for lstm-layernorm; "eager/cf" etc.: the peer's f+b time over cellforge's in this run (above 1, cellforge`,
    `  is faster). Medians of runs made after warm-up (at least ${budget.minWarmups ?? 1} calls), as many as fit in ${budget.measureMs / 1000} s (at least ${budget.minRuns}).`,
  ].join("\n");
}

export function formatZoo(rows: ZooRow[]): string {
  const body: Row[] = rows.map((r) => {
    const c = cells(r);
    return c.length === 5 ? { label: c.slice(0, 4).join(" "), note: c[4]! } : c;
  });
  const notes = [...new Map(rows.filter((r) => r.sizesNote).map((r) => [r.cell, `  ${r.cell}: ${r.sizesNote}`])).values()];
  const skipped = [...new Map(rows.flatMap((r) => r.peers.filter((p) => p.status !== "ok").map((p) => [`${p.name}: ${p.reason}`, `  ${p.name} ${p.status} (${r.cell} ${r.workload}): ${p.reason}`]))).values()];
  return [formatTable(HEADER, body), ...notes, ...skipped].join("\n");
}

/** One line per pair, workload and precision; the four numbers of both sides when they disagree. */
export function formatChecks(rows: ZooRow[]): string[] {
  const lines: string[] = [];
  const g = (x: number) => x.toPrecision(10);
  const nums = (n: CheckNumbers) => `L ${g(n.loss)} |∇p| ${g(n.gradParams)} |∇x| ${g(n.gradX)} |∇h0| ${g(n.gradInitial)}`;
  const width = Math.max(0, ...rows.flatMap((r) => r.checks.map((c) => `${r.cell} ${r.workload} vs ${c.peer}`.length)));
  for (const r of rows)
    for (const c of r.checks) {
      lines.push(
        `  ${c.pass ? "ok  " : "FAIL"} ${`${r.cell} ${r.workload} vs ${c.peer}`.padEnd(width)}  ${c.precision}  L ${g(c.cellforge.loss)} / ${g(c.other.loss)}` +
          `  worst difference ${c.worst.toExponential(1)} of its tolerance`,
      );
      if (!c.pass) lines.push(`         cellforge ${nums(c.cellforge)}`, `         ${c.peer} ${nums(c.other)}`);
    }
  const rules = [...new Set(rows.flatMap((r) => r.checks.map((c) => `${c.precision}: ${c.rule.replace(/√\d+/, "√n")}`)))];
  if (lines.length) lines.push(`  (L: the loss, cellforge / peer; the four numbers compared are L and the norms of its gradient w.r.t. the parameters, x and`, `  the initial states; tolerances: ${rules.join("; ")}, n = T·B·(state and output widths))`);
  return lines;
}

/** The table as the README's: markdown, with the run's date, load and machine above it. */
export function formatZooMarkdown(rows: ZooRow[], load: { start: number[]; end: number[] }, budget: Budget): string {
  const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  const lines = [
    `<!-- zoo table: npm run bench -- --zoo --markdown; regenerate it with the same command -->`,
    `Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model.trim() ?? "unknown cpu"} (${os.cpus().length} cores), Node ${process.versions.node}, ` +
      `budget ${budget.measureMs / 1000} s a measurement; load average ${fmtLoad(load.start)} at the start, ${fmtLoad(load.end)} at the end.`,
    "",
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const r of rows) {
    const c = cells(r).map((x) => x.replace(/\|/g, "\\|"));
    while (c.length < HEADER.length) c.push("");
    lines.push(`| ${c.join(" | ")} |`);
  }
  const checks = rows.flatMap((r) => r.checks);
  if (checks.length) {
    const failed = checks.filter((c) => !c.pass).length;
    lines.push("", `Loss checks: ${checks.length - failed} of ${checks.length} agree (float64: ${F64_RULE.rel} relative; float32: as printed by the bench).`);
  }
  return lines.join("\n");
}

// ── checkpointed BPTT at T = 1,000 ──────────────────────────────────────────

/** The cells, and the shape, of the checkpointing table: long sequences, where the saved values dominate memory. */
export const CHECKPOINT_CELLS = ["gru", "lstm-layernorm"];
export const CHECKPOINT_SHAPE = { B: 32, D: 128, H: 128, T: 1000 } as const;

export interface CheckpointRow {
  readonly cell: string;
  /** KernelOptions.checkpoint, and the steps per segment it gives at T */
  readonly checkpoint: "sqrt";
  readonly segment: number;
  readonly whole: Measured;
  readonly checkpointed: Measured;
  /** bytes (float32) of the saved values and the input products: all T steps', and one segment's */
  readonly bytes: { readonly whole: number; readonly checkpointed: number };
  /** the checkpointed gradients are the whole backward's, bit for bit (checked on this run's case) */
  readonly sameBits: boolean;
}

/**
 * Each cell of `cells` at B 32, D = H = 128, T = 1,000, whole and checkpointed (segments of ⌈√T⌉
 * steps) in the same run: forward+backward times, the bytes each keeps, and whether the gradients
 * agree bit for bit.
 */
export async function runCheckpointed(cells: readonly string[], budget: Budget, progress: (s: string) => void): Promise<CheckpointRow[]> {
  const rows: CheckpointRow[] = [];
  const { B, T, D, H } = CHECKPOINT_SHAPE;
  for (const [i, name] of cells.entries()) {
    const step = (what: string) => progress(`[checkpointing ${i + 1}/${cells.length}] ${name} T=${T}: ${what}`);
    step("loading");
    const cell = await loadCell(name);
    const mod = await loadKernels(cell, { committed: true });
    const bw = deriveBackward(cell);
    const plan = buildPlan(cell, bw);
    const sizes: Record<string, number> = cell.sizes.includes("D") ? { D, H } : { H };
    const c = randomCase(cell, { sizes, B, T, seed: SEED });
    const perStep = (floatsPerStep(plan, "saved", sizes) + floatsPerStep(plan, "prologue", sizes)) * B * 4;
    const segment = segmentSteps(name, T, "sqrt");
    const flops = cellStats(bw, sizes);
    const run = async (checkpoint: "sqrt" | undefined, what: string) => {
      step(what);
      const k = mod.createKernel32(sizes, B, T, { backend: BACKEND, checkpoint });
      try {
        const a = kernelArgs(mod, c, Float32Array);
        const both = () => {
          k.forward(a.p, a.inputs, a.initial, a.out);
          k.backward(a.p, a.inputs, a.initial, a.out, a.upstream, a.grads);
        };
        const m = measured(await measure(both, budget), (flops.forwardFlops + flops.backwardFlops) * B * T);
        both();
        return { m, grads: Float32Array.from(a.grads.params) };
      } finally {
        k.dispose();
      }
    };
    const whole = await run(undefined, "whole");
    const cp = await run("sqrt", `checkpointed, segments of ${segment} steps`);
    rows.push({
      cell: name, checkpoint: "sqrt", segment, whole: whole.m, checkpointed: cp.m,
      bytes: { whole: perStep * T, checkpointed: perStep * segment },
      sameBits: whole.grads.every((v, j) => Object.is(v, cp.grads[j])),
    });
  }
  return rows;
}

export function formatCheckpointed(rows: readonly CheckpointRow[]): string[] {
  const { B, D, H, T } = CHECKPOINT_SHAPE;
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  return [
    `checkpointed BPTT (KernelOptions.checkpoint: "sqrt"), B=${B} D=${D} H=${H} T=${T}, ${BACKEND}, float32, one thread, same run:`,
    `  kept: the saved values and the input products, all T steps' (whole) or one segment's; the gradient tapes of the`,
    `  weight-gradient products stay T steps long in both`,
    ...rows.map((r) =>
      `  ${r.cell.padEnd(16)} segments of ${r.segment}: f+b ${fmtMs(r.whole.medianMs)} ms whole, ${fmtMs(r.checkpointed.medianMs)} ms checkpointed (${(r.checkpointed.medianMs / r.whole.medianMs).toFixed(2)}×);` +
        ` kept ${mb(r.bytes.whole)} -> ${mb(r.bytes.checkpointed)}; gradients ${r.sameBits ? "the same bits" : "DIFFER"}`),
  ];
}

export type { Timing };

// The cellforge command line: show, check, list.
import { parseArgs } from "node:util";
import { TRAIN_ONLY_OPTIONS, TRAIN_OPTIONS } from "./train.ts";
import { basename, extname } from "node:path";
import { type Cell, fitHeads, initBoundSize, resolveSizes } from "../src/cell.ts";
import { UsageError, parseSizes } from "./sizes.ts";
export { UsageError };
import { CellError } from "../src/errors.ts";
import { LoadError, builtinCellFiles, loadCell } from "../src/load.ts";
import { closest, didYouMean } from "../src/lang.ts";
import { deriveBackward } from "../src/backward.ts";
import { backwardLines, formatLines, forwardLines } from "../src/print.ts";
import { cellStats } from "../src/stats.ts";
import { type CheckReport, PASS_RULE, checkGradients, formatReport } from "../check/gradcheck.ts";
import { randomCase } from "../src/sequence.ts";
import { BACKENDS, REFERENCE_BACKEND, availableBackends, runsOnThreads } from "../runtime/memory.ts";
import { LimitError, formatBytes, segmentSteps } from "../runtime/checks.ts";
import { shapeStr } from "../src/ir.ts";
import { readFileSync, writeFileSync } from "node:fs";
import type { Comparison } from "../check/kernelcheck.ts";
import { CaseError, caseToJson, readCase, writeResult } from "./evalcase.ts";
import { KernelRefusedError } from "../check/kernelerror.ts";
import { CacheError } from "../check/privatecache.ts";
// Code generation (ts-morph, prettier) loads only for the commands that need it.
const kernels = () => import("../check/kernelcheck.ts");
import { gradients } from "../src/sequence.ts";
import type { Sizes } from "../src/eval.ts";

const USAGE = `cellforge: recurrent cells from equations, with derived and checked backward passes

usage:
  cellforge show <cell>                the equations, the derived backward, the saved set, costs
  cellforge check [<cell>…] [options]  gradient-check cells and their generated kernels (all of dsl/ when none is named)
  cellforge list [--json]              the cells in dsl/ with their costs, and measured time per step
  cellforge train <cell> --task adding|copy|reber [--T n] [--steps n] [--seed n] [--resume file.ckpt] [--init params.json]
                                       train a model of the cell's kernels plus a linear readout; log, plot, checkpoint
  cellforge train <cell> --data train.json|train.csv [--val file | --val-split x] [--epochs n]
                                       train on your own sequences: a model file, its history, a learning-curve plot
  cellforge compare <cell> <cell>… --task adding [--T n] [--steps n]
                                       train each under the same budget and seed: a table and one plot
  cellforge convert --from pytorch|keras|cellforge --to cellforge|pytorch|keras <cell> <in> <out> [--layer k] [--direction forward|reverse] [--dtype f64|f32]
                                       carry weights between PyTorch state_dict, Keras/tfjs and cellforge layouts;
                                       <in> is JSON or safetensors (by its content; --from cellforge also reads layer
                                       --layer k (1) of a model file or checkpoint, --direction reverse a bidirectional
                                       one's other direction); <out> is safetensors when it ends in .safetensors
                                       (--dtype f64, the default, or f32), else JSON
  cellforge bench <cell> [--B n --T n --size n] [--backend ${BACKENDS.map((b) => b.name).join("|")}|auto] [--threads n|auto] [--checkpoint k|sqrt]
                                       time the generated float32 kernels (forward, forward+backward) on every
                                       backend this engine runs, or on the one --backend names; --checkpoint also
                                       times them checkpointed (segments of k or ⌈√T⌉ steps) and gives the memory saved
  cellforge generate <files|folders|globs>… --out <dir> [--check] [--watch] [--standalone] [--js]
                                       kernels for your cells (each proven first), importing cellforge/runtime;
                                       --standalone vendors the runtime beside them, --js writes .js and .d.ts,
                                       --check writes nothing and exits 1 on stale or stray files, --watch regenerates on change
  cellforge generate [--check]         the same from the "cellforge" field of package.json (or cellforge.config.json):
                                       { "cells": ["src/cells"], "out": "src/kernels" }; here, dsl/ to generated/
  cellforge export <cell> --target pytorch [--out mycell.py]
                                       the cell and its derived backward as a PyTorch module (autograd.Function + nn.Module)
  cellforge eval <cell> --in case.json [--out result.json] [--backend ${BACKENDS.map((b) => b.name).join("|")}|reference|auto] [--precision 32|64]
                                       one sequence forward and backward with the generated kernels, proven first
                                       (default: auto's backend, float64), or the reference evaluator (--reference is
                                       --backend reference; float64 only); says which ran; --example writes a random case

<cell> is a name in dsl/ (gru, lstm, …) or a path to a .ts or .json cell file.

check options:
  --mode full|fast   every element (full, default) or random directions (fast)
  --sizes D=5,H=7    sizes (default: the cell's defaults, then larger ones)
  --B n  --T n       batch and sequence length for a single configuration
  --atol x --rtol x  pass rule ${PASS_RULE} (defaults 1e-5, 1e-3)
  --seed n           seed of the private RNG
  --json             machine-readable reports
  --verbose          the full table of every configuration`;

const out = (s = "") => process.stdout.write(s + "\n");
const PER = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n));
/**
 * The sizes `show` and `list` count at: each free size 128, a size a constraint fixes from them
 * (E = 2*H is 256), and a size a parameter's heads must divide raised to the next it divides.
 */
function AT128(cell: Cell): Sizes {
  const isFree = (s: string) => !cell.constraints.some((c) => c.size === s);
  const all = resolveSizes({ name: cell.name, sizes: cell.sizes, constraints: cell.constraints }, Object.fromEntries(cell.sizes.filter(isFree).map((s) => [s, 128])));
  const fitted = fitHeads(cell.params, all);
  try {
    return resolveSizes(cell, Object.fromEntries(Object.entries(fitted).filter(([s]) => isFree(s))));
  } catch {
    return all; // no sizes near 128 fit both the heads and the constraints: the count is shown at 128
  }
}

async function allCells(): Promise<string[]> {
  return builtinCellFiles().map((f) => basename(f, extname(f)));
}

function initText(cell: Cell, init: Cell["params"][number]["init"]): string {
  if (init === "uniform") return `U(±1/sqrt(${initBoundSize(cell).key}))`;
  if (typeof init === "string") return init;
  return "constant" in init ? `constant ${init.constant}` : `U(±${init.uniform})`;
}

async function show(ref: string): Promise<void> {
  const cell = await loadCell(ref);
  const bw = deriveBackward(cell);
  const st = cellStats(bw, AT128(cell));
  out(`${cell.name}: ${cell.doc}`);
  if (cell.file) out(`file: ${cell.file}`);
  out(`sizes: ${cell.sizes.join(", ")}   inputs: ${cell.inputs.map((x) => `${x.attrs.name} ${shapeStr(x.type)}`).join(", ")}   state: ${cell.states.map((s) => `${s.attrs.name} ${shapeStr(s.type)}`).join(", ")}${cell.outputs.length ? `   outputs: ${cell.outputs.map((o) => `${o.name} ${shapeStr(o.node.type)}`).join(", ")}` : ""}`);
  out(`parameters: ${st.paramFormula} = ${st.params.toLocaleString("en-US")} at ${Object.entries(AT128(cell)).map(([k, v]) => `${k}=${v}`).join(", ")}`);
  const byInit = new Map<string, string[]>();
  for (const p of cell.params) byInit.set(initText(cell, p.init), [...(byInit.get(initText(cell, p.init)) ?? []), `${p.name} ${shapeStr(p.node.type)}`]);
  for (const [init, ps] of byInit) out(`  init ${init}: ${ps.join(", ")}`);
  if (Object.keys(cell.constants).length) out(`constants: ${Object.entries(cell.constants).map(([k, v]) => `${k} = ${v}`).join(", ")}`);
  out();
  out("forward:");
  out(formatLines(forwardLines(cell)));
  const { saved, lines } = backwardLines(bw);
  out();
  out(`saved for the backward (per step${bw.recomputed.length ? `; recomputed instead of saved: ${bw.recomputed.length} cheap value${bw.recomputed.length > 1 ? "s" : ""}` : ""}):`);
  out(saved.length ? formatLines(saved) : "  (nothing besides inputs, states and parameters)");
  out();
  out(`backward (derived, simplified): upstream ${bw.seeds.map((s) => s.attrs.name).join(", ")}; outer(u, v) sums u*v' over the batch, sumb(v) sums v over the batch`);
  out(formatLines(lines));
  out();
  out(`per example per step at size 128: forward ${PER(st.forwardFlops)}FLOP, backward ${PER(st.backwardFlops)}FLOP, ${st.savedFloats} floats saved besides the state`);
  for (const w of cell.warnings) out(`warning: ${w}`);
}

interface Config { sizes: Sizes; B: number; T: number; mode: "full" | "fast" }

function configs(cell: Cell, v: Record<string, string | boolean | undefined>): Config[] {
  const mode = (v.mode as "full" | "fast" | undefined) ?? "full";
  if (mode !== "full" && mode !== "fast") throw new UsageError(`--mode is full or fast, not ${v.mode}`);
  // the sizes given, then the defaults; a size a constraint determines follows (D from H under D = H), and sizes that break one are refused at it
  const typed = typeof v.sizes === "string" ? parseSizes(v.sizes, cell.sizes, (m) => { throw new UsageError(m); }) : {};
  const given = resolveSizes(cell, typed, { fallback: cell.defaults }) as Record<string, number>;
  const num = (x: unknown, name: string) => {
    if (x === undefined) return undefined;
    if (typeof x !== "string" || !/^\d+$/.test(x) || Number(x) < 1) throw new UsageError(`--${name} takes a positive integer, not ${JSON.stringify(x)}`);
    return Number(x);
  };
  const B = num(v.B, "B"), T = num(v.T, "T");
  if (B || T || v.sizes) return [{ sizes: given, B: B ?? 2, T: T ?? 3, mode }];
  const free = cell.sizes.map((s, i) => [s, (given[s] ?? 3) + 2 + i] as const).filter(([s]) => !cell.constraints.some((c) => c.size === s));
  const bigger = resolveSizes(cell, fitHeads(cell.params, Object.fromEntries(free))); // raised to sizes a parameter's heads divide
  return [
    { sizes: given, B: 2, T: 3, mode },
    { sizes: given, B: 1, T: 1, mode },
    { sizes: bigger, B: 3, T: 5, mode: "fast" },
  ];
}

async function check(refs: string[], v: Record<string, string | boolean | undefined>): Promise<number> {
  const names = refs.length ? refs : await allCells();
  // a float64 column per backend: the reference backend's against the reference evaluator, then each other one's against it
  const ref = REFERENCE_BACKEND.name;
  const ordered = [REFERENCE_BACKEND, ...BACKENDS.filter((b) => b !== REFERENCE_BACKEND)];
  const others = ordered.slice(1).map((b) => b.name);
  const num = (x: unknown, d: number) => (typeof x === "string" ? Number(x) : d);
  for (const [name, min] of [["atol", 0], ["rtol", 0], ["seed", 0]] as const) {
    const x = v[name];
    if (x !== undefined && (typeof x !== "string" || x.trim() === "" || !Number.isFinite(Number(x)) || Number(x) < min || (name === "seed" && !Number.isInteger(Number(x)))))
      throw new UsageError(`--${name} takes ${name === "seed" ? "an integer" : "a number"} >= ${min}, not ${JSON.stringify(x)}`);
  }
  const reports: CheckReport[] = [];
  const summary: string[][] = [];
  let failed = 0;
  const t0 = performance.now();
  for (const ref of names) {
    const cell = await loadCell(ref);
    const t = performance.now();
    const cfs = configs(cell, v);
    const cases = cfs.map((cf, i) => randomCase(cell, { sizes: cf.sizes, B: cf.B, T: cf.T, seed: num(v.seed, 1) + i }));
    const rs = cfs.map((cf, i) => checkGradients(cell, cases[i], { mode: cf.mode, atol: num(v.atol, 1e-5), rtol: num(v.rtol, 1e-3), seed: num(v.seed, 1) }));
    const ks: Comparison[][] = [];
    const { checkKernels } = await kernels();
    for (const c of cases) ks.push(await checkKernels(cell, c));
    reports.push(...rs.map((r, i) => ({ ...r, kernels: ks[i]! })));
    const kernelsPass = ks.every((k) => k.every((x) => x.pass));
    const pass = rs.every((r) => r.pass) && kernelsPass;
    if (!pass) failed++;
    if (!v.json) {
      for (const w of cell.warnings) out(`warning: ${w}`);
      if (v.verbose || names.length === 1 || !pass)
        rs.forEach((r, i) => {
          out(formatReport(r));
          out("generated kernels, same case:");
          for (const k of ks[i]!) out(`  ${k.what.padEnd(38)} max err ${k.maxErr.toExponential(1).padStart(8)}   rule ${k.rule.padEnd(34)} ${k.pass ? "ok" : "FAIL"}`);
          out("");
        });
    }
    const maxRel = Math.max(...rs.flatMap((r) => r.rows.map((w) => w.maxRel)));
    const checked = rs.reduce((s, r) => s + r.rows.reduce((a, w) => a + w.checked, 0), 0);
    const kinks = rs.reduce((s, r) => s + r.rows.reduce((a, w) => a + w.kinks, 0), 0);
    // the worst of each kernel comparison over the cases ("-" where it did not run: a backend this engine lacks)
    const found = (kind: Comparison["kind"], backend?: string) => ks.flatMap((k) => k.filter((x) => x.kind === kind && (backend === undefined || x.backend === backend)));
    const kmax = (rows: Comparison[]) => (rows.length ? Math.max(...rows.map((x) => x.maxErr)).toExponential(1) : "-");
    const threads = found("threads");
    const same = (rows: Comparison[]) => (rows.length ? (rows.every((x) => x.pass) ? "same" : "DIFFER") : "-");
    summary.push([
      cell.name, rs.map((r) => `${Object.values(r.sizes).join("x")} B${r.B} T${r.T} ${r.mode}`).join("; "), String(checked), maxRel.toExponential(1), String(kinks), rs.every((r) => r.structural.every((s) => s.pass)) ? "ok" : "FAIL",
      ...ordered.map((b) => kmax(found("f64", b.name))), kmax(found("f32")), same(threads), same(found("checkpoint")), kmax(found("fd")),
      `${((performance.now() - t) / 1000).toFixed(2)}s`, pass ? "PASS" : "FAIL",
    ]);
  }
  if (v.json) {
    out(JSON.stringify(reports, null, 2));
    return failed ? 1 : 0;
  }
  const head = ["cell", "configurations (sizes, batch, steps, mode)", "checked", "max rel err", "kinks", "structural", `${ref} f64=ref`, ...others.map((b) => `${b} f64=${ref}`), "f32~f64", "1 vs 2 threads", "checkpointed", "kernel FD", "time", "result"];
  // words left-aligned, numbers right-aligned
  const words = new Set(["cell", "configurations (sizes, batch, steps, mode)", "structural", "1 vs 2 threads", "checkpointed", "result"]);
  const w = head.map((h, i) => Math.max(h.length, ...summary.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((s, i) => (words.has(head[i]!) ? s.padEnd(w[i]!) : s.padStart(w[i]!))).join("  ").trimEnd();
  out(`gradient check, float64: derived BPTT gradients (reference evaluator) against central finite differences,`);
  out(`then the generated kernels on the same cases`);
  out(`pass rules: reference ${PASS_RULE} with atol ${num(v.atol, 1e-5).toExponential(0)}, rtol ${num(v.rtol, 1e-3).toExponential(0)}; structural: linear in the upstream gradient, deterministic;`);
  const and = (xs: readonly string[]) => xs.join(", ").replace(/, ([^,]*)$/, " and $1");
  const parallel = BACKENDS.filter((b) => runsOnThreads(b, 2)).map((b) => b.name);
  out(`  ${ref} kernel f64 = reference${others.length ? `, ${others.map((b) => `${b} kernel f64`).join(", ")} = ${ref} kernel f64` : ""}: max|a-b| <= 1e-12*max(1,max|b|);`);
  out(`  f32 kernels (${and(ordered.map((b) => b.name))}) ~ ${ref} f64: max|a-b| <= 1e-4*max(1,max|b|) (float32 rounding, accumulated over sums and steps);`);
  out(`  ${parallel.length ? `${and(parallel)} on 2 threads = on 1 thread, bit for bit (f64 and f32); ` : ""}checkpointed backward (segments of 1 and 2 steps) = whole, bit for bit;`);
  out("  kernel f64 vs finite differences: 6 random directions, same rule as the reference");
  const missing = BACKENDS.flatMap((b) => { const a = b.available(); return a.ok ? [] : [`this engine has no ${a.missing}: the ${b.name} columns are not run`]; });
  out(`  (${missing.length ? missing.join("; ") : BACKENDS.map((b) => `${b.name}: ${b.description}`).join("; ")})`);
  out(line(head));
  out(w.map((n) => "-".repeat(n)).join("  "));
  for (const r of summary) out(line(r));
  out(`${names.length - failed} passed, ${failed} failed (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return failed ? 1 : 0;
}

async function list(v: Record<string, string | boolean | undefined>): Promise<void> {
  const rows = [];
  const { timeCell } = await import("./timing.ts");
  for (const name of await allCells()) {
    const cell = await loadCell(name);
    const st = cellStats(deriveBackward(cell), AT128(cell));
    const t = await timeCell(cell, { B: 32, T: 10, size: 128, budgetMs: 0, committed: true, quick: true });
    rows.push({ name: cell.name, source: cell.doc, params: st.params, paramFormula: st.paramFormula, forwardFlops: st.forwardFlops, backwardFlops: st.backwardFlops, savedFloats: st.savedFloats, forwardBackwardMsPerStep: t.forwardBackwardMs / t.T, backend: t.backend });
  }
  if (v.json) {
    out(JSON.stringify(rows, null, 2));
    return;
  }
  const head = ["cell", "params", "formula", "fwd FLOP", "bwd FLOP", "saved", "fwd+bwd ms/step", "source"];
  const body = rows.map((r) => [r.name, r.params.toLocaleString("en-US"), r.paramFormula, PER(r.forwardFlops), PER(r.backwardFlops), String(r.savedFloats), r.forwardBackwardMsPerStep.toFixed(3), r.source.length > 60 ? r.source.slice(0, 57) + "..." : r.source]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  out("at D = H = 128: parameters; FLOPs and floats saved for BPTT (besides the state) per example per step;");
  out(`measured forward+backward time per step of the generated float32 kernels (${rows[0]?.backend ?? "wasm"} path, one thread) at B = 32 (median of 3, T = 10; \`bench <cell>\` for more)`);
  out(head.map((h, i) => h.padEnd(w[i]!)).join("  "));
  for (const b of body) out(b.map((s, i) => ([1, 3, 4, 5, 6].includes(i) ? s.padStart(w[i]!) : s.padEnd(w[i]!))).join("  ").trimEnd());
}

async function bench(ref: string, v: Record<string, string | boolean | undefined>): Promise<void> {
  const cell = await loadCell(ref);
  const int = (x: unknown, d: number, what: string) => {
    if (x === undefined) return d;
    if (typeof x !== "string" || !/^\d+$/.test(x) || Number(x) < 1) throw new UsageError(`--${what} takes a positive integer${what === "threads" ? " or auto" : ""}, not ${JSON.stringify(x)}`);
    return Number(x);
  };
  const B = int(v.B, 32, "B"), T = int(v.T, 50, "T"), size = int(v.size, 128, "size");
  const { timeCell } = await import("./timing.ts");
  const names = BACKENDS.map((b) => b.name);
  const backend = v.backend;
  if (backend !== undefined && backend !== "auto" && !names.includes(String(backend))) throw new UsageError(`--backend is ${[...names, "auto"].join(", ").replace(/, ([^,]*)$/, " or $1")}, not ${String(backend)}`);
  const threads = (v.threads === undefined || v.threads === "auto" ? (v.threads ?? 1) : int(v.threads, 1, "threads")) as number | "auto";
  if (v.checkpoint !== undefined && !(v.checkpoint === "sqrt" || (typeof v.checkpoint === "string" && /^\d+$/.test(v.checkpoint) && Number(v.checkpoint) >= 1)))
    throw new UsageError(`--checkpoint takes a positive integer (steps per segment) or sqrt, not ${String(v.checkpoint)}`);
  const checkpoint = v.checkpoint === "sqrt" ? "sqrt" : v.checkpoint === undefined ? undefined : Number(v.checkpoint);
  // without --backend: every backend, the reference one first; those that cannot run here say why
  const runs: { backend: string; skip?: string }[] = typeof backend === "string" ? [{ backend }] : [REFERENCE_BACKEND, ...BACKENDS.filter((b) => b !== REFERENCE_BACKEND)].map((b) => {
    const a = b.available();
    if (!a.ok) return { backend: b.name, skip: `this engine has no ${a.missing}` };
    if (threads !== "auto" && !runsOnThreads(b, threads)) return { backend: b.name, skip: `the ${b.name} kernels run on one thread` };
    return { backend: b.name };
  });
  let st: ReturnType<typeof cellStats> | undefined;
  let plan: import("../codegen/plan.ts").FullPlan | undefined; // for --checkpoint's bytes, made once
  for (const r of runs) {
    if (r.skip) {
      out(`${cell.name}: not timed on the ${r.backend} path: ${r.skip}`);
      continue;
    }
    const t = await timeCell(cell, { B, T, size, budgetMs: 2000, options: { backend: r.backend, threads } });
    st ??= cellStats(deriveBackward(cell), t.sizes);
    const gf = (flop: number, ms: number) => ((flop * B * T) / ms / 1e6).toFixed(2);
    const sizes = Object.entries(t.sizes).map(([k, n]) => `${k}=${n}`).join(" ");
    out(`${cell.name}: generated float32 kernels on the ${t.backend} path, ${t.threads === 1 ? "one thread" : `${t.threads} threads`}, ${sizes}, B=${B}, T=${T}, median of ${t.runs}+ runs after warm-up`);
    out(`  forward           ${t.forwardMs.toFixed(2).padStart(9)} ms   ${(t.forwardMs / T).toFixed(3)} ms/step   ${gf(st.forwardFlops, t.forwardMs)} GFLOP/s`);
    out(`  forward+backward  ${t.forwardBackwardMs.toFixed(2).padStart(9)} ms   ${(t.forwardBackwardMs / T).toFixed(3)} ms/step   ${gf(st.forwardFlops + st.backwardFlops, t.forwardBackwardMs)} GFLOP/s`);
    if (checkpoint !== undefined) {
      // the same kernels checkpointed, timed in the same run: what the recompute costs, what it saves
      const c = await timeCell(cell, { B, T, size, budgetMs: 2000, options: { backend: r.backend, threads, checkpoint } });
      const seg = segmentSteps(cell.name, T, checkpoint);
      const { buildPlan, floatsPerStep } = await import("../codegen/plan.ts");
      const p = (plan ??= buildPlan(cell, deriveBackward(cell)));
      const bytes = (role: "saved" | "prologue", steps: number) => formatBytes(floatsPerStep(p, role, t.sizes) * B * 4 * steps).padStart(9);
      out(`  checkpointed, segments of ${seg} step${seg === 1 ? "" : "s"} (--checkpoint ${checkpoint}):`);
      out(`    forward+backward ${c.forwardBackwardMs.toFixed(2).padStart(9)} ms   ${(c.forwardBackwardMs / t.forwardBackwardMs).toFixed(2)}× the whole backward's time (the recompute: up to one more forward)`);
      out(`    saved values     ${bytes("saved", seg)}      instead of ${bytes("saved", T).trim()}`);
      out(`    input products   ${bytes("prologue", seg)}      instead of ${bytes("prologue", T).trim()} (the weight gradients' tapes stay T steps long)`);
    }
  }
  if (st) out(`  (FLOPs counted from the IR: ${PER(st.forwardFlops)}FLOP forward and ${PER(st.backwardFlops)}FLOP backward per example per step)`);
}

/** `--NAME RxC` with each number from 1 to its maximum, or undefined when the option is absent. */
function tileOption(v: Record<string, string | boolean | undefined>, name: string, what: string, max: readonly [number, number]): [number, number] | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  const m = typeof x === "string" ? /^(\d+)x(\d+)$/.exec(x) : null;
  const r = Number(m?.[1]), c = Number(m?.[2]);
  if (!m || r < 1 || c < 1 || r > max[0] || c > max[1]) throw new UsageError(`--${name} is ${what}, such as ${name === "tile" ? "4x4" : "4x2"}, not ${String(x)}`);
  return [r, c];
}

async function generateCmd(cells: readonly string[], v: Record<string, string | boolean | undefined>): Promise<number> {
  const t = tileOption(v, "tile", "ROWSxCOLS with each from 1 to 8", [8, 8]);
  const tile = t ? { rows: t[0], cols: t[1] } : undefined;
  const wt = tileOption(v, "wasm-tile", "ROWSxVECTORS (rows of the product's register tile, 1 to 6, and its vectors of 4 floats, 1 to 4)", [6, 4]);
  const { configFromArgs, findConfig, generateAll, outShown, watchCells, writeFiles } = await import("./generate.ts");
  const { DEFAULT_WASM_TILE } = await import("../codegen/gemm-wasm.ts");
  // mc (rows per packed block) stays a multiple of the tile's rows, nc a multiple of its columns
  const wasmTile = wt ? { ...DEFAULT_WASM_TILE, rows: wt[0], vectors: wt[1], mc: 16 * wt[0], nc: 64 * wt[1] * 4 } : undefined;
  const found = cells.length ? configFromArgs(cells, v) : findConfig();
  // flags given with a config add to it
  const cfg = { ...found, standalone: found.standalone || !!v.standalone, js: found.js || !!v.js };
  if (v.watch) {
    if (v.check) throw new UsageError("generate: --watch and --check do not go together");
    await watchCells(cfg, out);
    return 0;
  }
  const progress = progressLine("generate");
  const files = await generateAll(cfg, progress, tile, wasmTile);
  const r = writeFiles(cfg, files, !!v.check);
  if (v.check) {
    if (r.stale.length) {
      out(`stale or stray generated files (regenerate with \`${cfg.regenerate.run}\`):`);
      for (const f of r.stale) out(`  ${f}`);
      return 1;
    }
    out(`${outShown(cfg)} is up to date`);
    return 0;
  }
  out(r.written.length || r.removed.length ? [...r.written.map((f) => `wrote ${f}`), ...r.removed.map((f) => `removed ${f}`)].join("\n") : `${outShown(cfg)} is up to date`);
  return 0;
}

/** A progress report for long work: one line rewritten on a terminal, plain lines otherwise. */
function progressLine(what: string): (done: number, total: number, item: string) => void {
  const tty = process.stderr.isTTY;
  return (done, total, item) => {
    if (tty) process.stderr.write(done === total ? "\r\x1b[K" : `\r\x1b[K${what}: [${done + 1}/${total}] ${item}`);
    else if (done < total) process.stderr.write(`${what}: [${done + 1}/${total}] ${item}\n`);
  };
}

/** What `eval` computes with: a backend's generated kernels (or "auto"'s choice), or the reference evaluator; and the precision. */
interface EvalPath { readonly backend: string; readonly bits: 32 | 64 }

/** eval's --backend, --reference and --precision, checked before any work. */
function evalPath(v: Record<string, string | boolean | undefined>): EvalPath {
  const names = BACKENDS.map((b) => b.name);
  const choices = [...names, "reference", "auto"].join(", ").replace(/, ([^,]*)$/, " or $1");
  if (v.backend !== undefined && ![...names, "reference", "auto"].includes(String(v.backend))) throw new UsageError(`eval: --backend is ${choices}, not ${JSON.stringify(v.backend)}`);
  if (v.reference && v.backend !== undefined && v.backend !== "reference") throw new UsageError(`eval: --reference is --backend reference, so it does not go with --backend ${v.backend}`);
  if (v.precision !== undefined && v.precision !== "32" && v.precision !== "64") throw new UsageError(`eval: --precision is 32 or 64 (bits of the floats), not ${JSON.stringify(v.precision)}`);
  const backend = v.reference ? "reference" : String(v.backend ?? "auto"), bits = v.precision === "32" ? 32 : 64;
  if (backend === "reference" && bits === 32) throw new UsageError("eval: the reference evaluator computes in float64 only; --precision 32 runs a backend's float32 kernels (--backend auto, wasm or ts)");
  if (backend === "auto") {
    const first = BACKENDS.find((b) => b.available().ok);
    if (!first) throw new LoadError("eval: no backend's kernels run on this engine; --backend reference uses the reference evaluator");
    return { backend: first.name, bits };
  }
  const b = BACKENDS.find((x) => x.name === backend);
  const a = b?.available();
  if (a && !a.ok) throw new LoadError(`eval: the ${backend} kernels need ${a.missing}, which this engine does not have; use ${[...availableBackends().map((x) => x.name), "reference"].join(", ").replace(/, ([^,]*)$/, " or $1")}`);
  return { backend, bits };
}

/** How a path is said: "the wasm kernels in float32", "the reference evaluator in float64". */
const pathText = (p: EvalPath) => (p.backend === "reference" ? `the reference evaluator in float64` : `the generated ${p.backend} kernels in float${p.bits} (proven first)`);

/** The first number of a result that is not finite, as "outputs.h[5] = Infinity" (JSON writes such a number as null). */
function firstNonFinite(result: Record<string, Record<string, Float64Array>>): string | undefined {
  for (const [group, arrays] of Object.entries(result))
    for (const [name, a] of Object.entries(arrays)) {
      const i = a.findIndex((x) => !Number.isFinite(x));
      if (i >= 0) return `${group}.${name}[${i}] (flat) = ${a[i]}`;
    }
  return undefined;
}

async function evalCmd(ref: string, v: Record<string, string | boolean | undefined>): Promise<number> {
  const path = evalPath(v);
  const cell = await loadCell(ref);
  if (typeof v.example === "string") {
    try {
      // "wx": a file already there is the user's, and is not overwritten
      writeFileSync(v.example, JSON.stringify(caseToJson(cell, randomCase(cell, { B: 2, T: 3 })), null, 1) + "\n", { flag: "wx" });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CaseError(`--example ${v.example}: ${code === "EEXIST" ? "a file is already there, and is not overwritten: remove it, or name another file" : code === "ENOENT" ? "its folder does not exist" : code === "EISDIR" ? "is a folder, not a file" : (e as Error).message}`);
    }
    out(`wrote an example case for ${cell.name} to ${v.example}`);
    return 0;
  }
  if (typeof v.in !== "string") throw new UsageError("eval needs --in case.json (or --example case.json to write one)");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(v.in, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CaseError(`${v.in}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a case file" : code ? (e as Error).message : `not valid JSON: ${(e as Error).message}`}`);
  }
  let c;
  try {
    c = readCase(cell, json);
  } catch (e) {
    if (e instanceof CaseError) throw new CaseError(`${v.in}: ${e.message}`);
    throw e;
  }
  let result;
  if (path.backend === "reference") {
    const { forward, grads } = gradients(deriveBackward(cell), c);
    result = { outputs: forward.outputs, params: grads.params, inputs: grads.inputs, initial: grads.initial };
  } else {
    if (path.bits === 32) {
      // float32 holds up to 3.4e38: a bigger number of the case would reach the kernel as infinity
      for (const [group, arrays] of Object.entries({ params: c.params, inputs: c.inputs, initial: c.initial, upstream: c.upstream }))
        for (const [name, a] of Object.entries(arrays)) {
          const i = a.findIndex((x) => !Number.isFinite(Math.fround(x)));
          if (i >= 0) throw new CaseError(`${v.in}: ${group}.${name}[${i}] (flat) = ${a[i]} is beyond float32's range (±3.4e38); use --precision 64`);
        }
    }
    const { loadKernels, runKernel } = await kernels();
    const mod = await loadKernels(cell);
    const r = runKernel(mod, c, path.bits, { backend: path.backend });
    const layout = mod.paramLayout(c.sizes);
    result = { outputs: r.outputs, params: Object.fromEntries(layout.params.map((q) => [q.name, r.params.slice(q.offset, q.offset + q.length)])), inputs: r.inputs, initial: r.initial };
  }
  const bad = firstNonFinite({ outputs: result.outputs, params: result.params, inputs: result.inputs, initial: result.initial });
  const written = { ...(writeResult(cell, c, result) as Record<string, unknown>), backend: path.backend, precision: path.bits };
  const text = JSON.stringify(written, null, 1) + "\n";
  const said = `${cell.name}, computed by ${pathText(path)}`;
  if (typeof v.out === "string") {
    writeFileSync(v.out, text);
    out(`wrote ${v.out}: ${said}`);
  } else {
    process.stdout.write(text);
    process.stderr.write(`${said}\n`); // stdout stays one JSON document
  }
  if (bad) process.stderr.write(`warning: the result is not finite at ${bad}: JSON writes it as null\n`);
  return 0;
}

const S = { type: "string" } as const, F = { type: "boolean" } as const;
type Options = Readonly<Record<string, typeof S | typeof F>>;
/** Each command's options: any other is refused, by name (`show gru --steps 5` is a mistake, not a no-op). */
const COMMANDS: Readonly<Record<string, Options>> = {
  show: {},
  check: { json: F, verbose: F, all: F, mode: S, sizes: S, B: S, T: S, atol: S, rtol: S, seed: S },
  list: { json: F },
  generate: { out: S, check: F, watch: F, standalone: F, js: F, tile: S, "wasm-tile": S },
  eval: { in: S, out: S, reference: F, backend: S, precision: S, example: S },
  bench: { B: S, T: S, size: S, backend: S, threads: S, checkpoint: S },
  convert: { from: S, to: S, layer: S, direction: S, dtype: S },
  export: { target: S, out: S },
  train: { ...TRAIN_OPTIONS, ...TRAIN_ONLY_OPTIONS }, // cli/train.ts declares both tables
  compare: TRAIN_OPTIONS,
  help: {},
};

/** One command's help: its lines of the usage, and its options. */
async function commandHelp(cmd: string): Promise<string> {
  if (cmd === "train" || cmd === "compare") {
    const { TRAIN_USAGE, TRAIN_OPTIONS_USAGE } = await import("./train.ts");
    return `usage:\n${TRAIN_USAGE}\n\n${TRAIN_OPTIONS_USAGE}`;
  }
  const lines = USAGE.split("\n");
  const at = lines.findIndex((l) => l.startsWith(`  cellforge ${cmd} `) || l === `  cellforge ${cmd}`);
  const own: string[] = [];
  for (let i = at; i < lines.length && lines[i] !== "" && (i === at || !lines[i]!.startsWith("  cellforge ") || lines[i]!.startsWith(`  cellforge ${cmd} `)); i++) own.push(lines[i]!);
  const opts = cmd === "check" ? `\n\n${lines.slice(lines.indexOf("check options:")).join("\n")}` : "";
  const flags = Object.keys(COMMANDS[cmd]!);
  return `usage:\n${own.join("\n")}${opts}${!opts && flags.length ? `\n\noptions: ${flags.map((f) => `--${f}`).join(", ")}` : ""}`;
}


/** Node's errors about files, said plainly (a folder given as a file, a name too long, …). */
const FILE_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or folder", EISDIR: "is a folder, not a file", ENOTDIR: "a part of the path is not a folder",
  ENAMETOOLONG: "the name is too long (a file or folder name holds at most 255 bytes)", EACCES: "permission denied", EPERM: "not permitted", EEXIST: "already exists",
  ENOSPC: "no space left on the device", EROFS: "the file system is read-only", ELOOP: "too many symbolic links",
};

export async function main(argv: string[]): Promise<number> {
  const fail = (msg: string, code: number) => { process.stderr.write(`${msg}\n`); return code; };
  const [first, ...restArgs] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    if (first === "help" && restArgs[0] && Object.hasOwn(COMMANDS, restArgs[0])) { out(await commandHelp(restArgs[0])); return 0; }
    out(USAGE);
    return first === undefined ? 2 : 0;
  }
  if (first.startsWith("-")) return fail(`cellforge: a command comes first (${Object.keys(COMMANDS).filter((c) => c !== "help").join(", ")}), not the option ${first}\n\n${USAGE}`, 2);
  if (!Object.hasOwn(COMMANDS, first))
    return fail(`cellforge: unknown command "${first}"${didYouMean(closest(first, Object.keys(COMMANDS)))}; the commands are ${Object.keys(COMMANDS).join(", ")} (cellforge --help)`, 2);
  const cmd = first;
  let parsed;
  try {
    // `--steps -5` is the value -5, refused by the option's own check, not parseArgs' "ambiguous"
    const takes = (a: string) => a.startsWith("--") && COMMANDS[cmd]![a.slice(2)]?.type === "string";
    const args = restArgs.flatMap((a, i) => (takes(restArgs[i - 1] ?? "") && /^-\d/.test(a) ? [] : takes(a) && /^-\d/.test(restArgs[i + 1] ?? "") ? [`${a}=${restArgs[i + 1]}`] : [a]));
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { ...COMMANDS[cmd], help: { type: "boolean", short: "h" } } });
  } catch (e) {
    const m = /Unknown option '([^']+)'/.exec((e as Error).message);
    const flags = Object.keys(COMMANDS[cmd]!);
    const said = m
      ? `cellforge ${cmd}: unknown option ${m[1]}${didYouMean(closest(m[1]!.replace(/^-+/, ""), flags)?.replace(/^/, "--"))}; ${cmd} takes ${flags.length ? flags.map((f) => `--${f}`).join(", ") : "no options"}`
      : `cellforge ${cmd}: ${(e as Error).message}`;
    return fail(`${said}\n\n${await commandHelp(cmd)}`, 2);
  }
  const rest = parsed.positionals;
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) { out(await commandHelp(cmd)); return 0; }
  try {
    switch (cmd) {
      case "show":
        if (rest.length !== 1) throw new UsageError("usage: cellforge show <cell>");
        await show(rest[0]!);
        return 0;
      case "check":
        return await check(rest, v);
      case "list":
        if (rest.length) throw new UsageError("usage: cellforge list [--json] (it lists every cell in dsl/)");
        await list(v);
        return 0;
      case "generate":
        return await generateCmd(rest, v);
      case "train": {
        const { trainCmd } = await import("./train.ts");
        return await trainCmd(rest, v);
      }
      case "compare": {
        const { compareCmd } = await import("./train.ts");
        return await compareCmd(rest, v);
      }
      case "convert": {
        const { convertCmd } = await import("./convert.ts");
        return await convertCmd(rest, v);
      }
      case "export": {
        const { exportCmd } = await import("./export.ts");
        return await exportCmd(rest, v);
      }
      case "bench":
        if (rest.length !== 1) throw new UsageError(`usage: cellforge bench <cell> [--B n] [--T n] [--size n] [--backend ${BACKENDS.map((b) => b.name).join("|")}|auto] [--threads n|auto] [--checkpoint k|sqrt]`);
        await bench(rest[0]!, v);
        return 0;
      case "eval":
        if (rest.length !== 1) throw new UsageError("usage: cellforge eval <cell> --in case.json [--out result.json] [--backend name] [--precision 32|64] [--reference]");
        return await evalCmd(rest[0]!, v);
      default: // help, with arguments it does not know
        out(USAGE);
        return 0;
    }
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, 2);
    if (e instanceof CellError || e instanceof LoadError || e instanceof CaseError || e instanceof KernelRefusedError || e instanceof CacheError || e instanceof LimitError) return fail(e.message, 1);
    const code = (e as NodeJS.ErrnoException).code;
    if (code && Object.hasOwn(FILE_ERRORS, code)) {
      const err = e as NodeJS.ErrnoException & { dest?: string };
      return fail(`cellforge ${cmd}: ${err.path ? `${JSON.stringify(err.path)}: ` : ""}${FILE_ERRORS[code]}${err.dest ? ` (to ${JSON.stringify(err.dest)})` : ""}`, 1);
    }
    if (e instanceof RangeError && /Invalid typed array length|Array buffer allocation failed|Invalid array length/.test(e.message))
      return fail(`cellforge ${cmd}: the sizes given need more memory than this process can allocate (${e.message})`, 1);
    throw e;
  }
}

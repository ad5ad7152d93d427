// A fuzz run: N cells from a seed, each compiled and checked on every path (check.ts); every
// failure minimized (minimize.ts) while it keeps its kind. Used by `npm run fuzz` and the test tier.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CellSpec } from "../../src/cell.ts";
import { type FuzzCell, canonicalNames, equationLines, toSpec } from "./ast.ts";
import { type Finding, checkFuzzCell } from "./check.ts";
import { generateCell } from "./grammar.ts";
import { minimize } from "./minimize.ts";

export interface FuzzFailure {
  readonly index: number;
  /** The first finding (the kind minimized for), and every finding of the original cell. */
  readonly kind: string;
  readonly findings: readonly Finding[];
  readonly original: CellSpec;
  readonly minimized: CellSpec;
  readonly minimizedCell: FuzzCell;
  /** What the minimized cell still shows (the first one has `kind`). */
  readonly minimizedFindings: readonly Finding[];
  readonly minimizeMs: number;
  readonly complete: boolean;
}

export interface NameRefusals { count: number; roles: Map<string, number>; problem: string; clear: boolean }

export interface FuzzSummary {
  readonly seed: number;
  readonly cells: number;
  generated: number;
  compiled: number;
  /** Cells where compileCell refused at least one hostile name (renamed, then checked). */
  refusedCells: number;
  readonly refusals: Map<string, NameRefusals>;
  kernelChecks: number;
  readonly failures: FuzzFailure[];
  /** Time checking cells, and minimizing failures. */
  checkMs: number;
  minimizeMs: number;
}

export type Progress =
  | { phase: "start"; index: number; done: number; total: number; failures: number; refused: number; elapsedMs: number; equations: number }
  | { phase: "cell"; index: number; done: number; total: number; failures: number; refused: number; elapsedMs: number }
  | { phase: "minimize"; index: number; kind: string; tries: number; taken: number; equations: number; what: string };

export interface FuzzOptions {
  readonly seed: number;
  readonly cells: number;
  /** First cell index (shards of a run: cells start … start + cells - 1). */
  readonly start?: number;
  /** Time for minimizing one failure, and for all of them (then the rest are reported as found). */
  readonly minimizeMs?: number;
  readonly totalMinimizeMs?: number;
  readonly onProgress?: (p: Progress) => void;
  readonly onFailure?: (f: FuzzFailure) => void;
  /** Typecheck the kernels of every k-th cell (default 1: all of them; see CheckOptions.typecheck). */
  readonly typecheckEvery?: number;
}

/** The primary kind of a cell's findings: crashes first, then the reference, then the kernel rows in order. */
export const primaryKind = (fs: readonly Finding[]): string => fs[0]!.kind;

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  const start = opts.start ?? 0;
  const s: FuzzSummary = { seed: opts.seed, cells: opts.cells, generated: 0, compiled: 0, refusedCells: 0, refusals: new Map(), kernelChecks: 0, failures: [], checkMs: 0, minimizeMs: 0 };
  const t0 = performance.now();
  let minimizeLeft = opts.totalMinimizeMs ?? Infinity;
  for (let i = start; i < start + opts.cells; i++) {
    const tc = performance.now();
    const fc = generateCell(opts.seed, i);
    s.generated++;
    opts.onProgress?.({ phase: "start", index: i, done: i - start, total: opts.cells, failures: s.failures.length, refused: s.refusedCells, elapsedMs: performance.now() - t0, equations: fc.equations.length });
    const out = await checkFuzzCell(fc, { rename: true, typecheck: i % (opts.typecheckEvery ?? 1) === 0 });
    if (out.compiled) s.compiled++;
    if (out.kernelChecked) s.kernelChecks++;
    if (out.refusals.length) s.refusedCells++;
    for (const r of out.refusals) {
      const e = s.refusals.get(r.name) ?? { count: 0, roles: new Map(), problem: r.problem, clear: r.clear };
      e.count++;
      e.roles.set(r.role, (e.roles.get(r.role) ?? 0) + 1);
      s.refusals.set(r.name, e);
    }
    s.checkMs += performance.now() - tc;
    if (out.findings.length) {
      const kind = primaryKind(out.findings);
      const tm = performance.now();
      const budget = Math.min(opts.minimizeMs ?? 120_000, minimizeLeft);
      // a refusal is shrunk from the cell as generated (the checked one has the refused names renamed)
      const refusal = kind === "unclear-refusal" || kind === "refused";
      const from = refusal ? fc : out.fc;
      const still = async (c: FuzzCell) => (await checkFuzzCell(c, { only: kind, rename: refusal })).findings.some((f) => f.kind === kind);
      const m = budget > 0
        ? await minimize(from, still, { budgetMs: budget, onStep: (st) => opts.onProgress?.({ phase: "minimize", index: i, kind, ...st }) })
        : { cell: from, tries: 0, taken: 0, complete: false };
      const after = m.taken ? (await checkFuzzCell(m.cell, { rename: refusal })).findings : out.findings;
      const ms = performance.now() - tm;
      minimizeLeft -= ms;
      s.minimizeMs += ms;
      const f: FuzzFailure = {
        index: i, kind, findings: out.findings, original: toSpec(from), minimized: toSpec(m.cell), minimizedCell: m.cell,
        minimizedFindings: after.length ? after : out.findings, minimizeMs: ms, complete: m.complete,
      };
      s.failures.push(f);
      opts.onFailure?.(f);
    }
    opts.onProgress?.({ phase: "cell", index: i, done: i - start + 1, total: opts.cells, failures: s.failures.length, refused: s.refusedCells, elapsedMs: performance.now() - t0 });
  }
  return s;
}

// ------------------------------------------------------------------------------ reporting

/** Failures with the same kind and the same minimized cell (names of the cell aside) are one. */
export function distinctFailures(fs: readonly FuzzFailure[]): FuzzFailure[] {
  const seen = new Set<string>();
  return fs.filter((f) => {
    const k = signature(f);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
/** The kind and the minimized cell with ordinary names by role and order, without its doc line or the case's seed. */
export const signature = (f: FuzzFailure) => `${f.kind}\n${JSON.stringify({ ...toSpec(canonicalNames(f.minimizedCell)), name: "", doc: `B=${f.minimizedCell.B} T=${f.minimizedCell.T}` })}`;

/** `row-ts-f64-reference-evaluator-3fa2c1` */
export function failureName(f: FuzzFailure): string {
  const slug = f.kind.replace(/^row: /, "").replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase().slice(0, 40);
  return `${slug}-${createHash("sha256").update(signature(f)).digest("hex").slice(0, 6)}`;
}

/** The minimized spec as a cell file: `node bin/cellforge.js check <file>` runs it; the doc line says what failed. */
export function failureSpec(f: FuzzFailure): CellSpec {
  const name = `fuzz-${failureName(f)}`;
  return { ...f.minimized, name, doc: `fuzz finding: ${f.kind} (${f.minimized.doc.replace(/^differential fuzzer, /, "")})` };
}

export function writeFailure(dir: string, f: FuzzFailure): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${failureName(f)}.json`);
  writeFileSync(file, JSON.stringify(failureSpec(f), null, 2) + "\n");
  return file;
}

/** One equation a line of the minimized cell, for a summary: `kind: h' = tanh(...) | ...`. */
export function oneLine(f: FuzzFailure): string {
  const sp = f.minimized;
  const decl = (label: string, r: unknown) => (r && typeof r === "object" && Object.keys(r).length ? `${label} ${JSON.stringify(r)}` : "");
  return [
    `${f.kind}: ${equationLines(sp).join("; ")}`,
    decl("sizes", sp.defaults), decl("inputs", sp.inputs), decl("state", sp.state), decl("outputs", sp.outputs), decl("params", sp.params), decl("constants", sp.constants), decl("activations", sp.activations),
    /\[case [^\]]*\]/.exec(sp.doc)?.[0] ?? "",
  ].filter((x) => x).join("   ");
}

export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `fuzz seed ${s.seed}: ${s.generated} cells generated, ${s.compiled} compiled, ${s.refusedCells} with a hostile name refused by compileCell (renamed, then checked), ${s.kernelChecks} kernel checks run, ${s.failures.length} failing (${distinctFailures(s.failures).length} distinct)`,
    `time: ${(s.checkMs / 1000).toFixed(1)} s checking (${(s.checkMs / Math.max(1, s.generated)).toFixed(0)} ms a cell), ${(s.minimizeMs / 1000).toFixed(1)} s minimizing`,
  ];
  if (s.refusals.size) {
    lines.push("names compileCell refuses (times, roles, problem):");
    for (const [name, r] of [...s.refusals].sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1)))
      lines.push(`  ${name.padEnd(22)} ${String(r.count).padStart(4)}  ${[...r.roles].map(([k, v]) => `${k} ${v}`).join(", ").padEnd(34)} ${r.clear ? "" : "[UNCLEAR] "}${r.problem}`);
  }
  return lines.join("\n");
}

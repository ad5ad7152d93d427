// Checking generated kernels: f64 against the reference evaluator (to 1e-12 relative) and against
// finite differences; f32 against f64 within a stated tolerance. Kernels are generated fresh for
// the cell being checked, so any cell file (in dsl/ or not) is checked the same way.
// No kernel is handed out unchecked: `loadKernels` proves each one on a small case first (`proveKernel`).
import { existsSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Cell } from "../src/cell.ts";
import { deriveBackward } from "../src/backward.ts";
import { type SequenceCase, gradients, randomCase } from "../src/sequence.ts";
import { COMPILED, ROOT, hookModules } from "../src/load.ts";
import { Rng } from "../runtime/rng.ts";
import { isKink } from "./gradcheck.ts";
import { type BackendName, type KernelBackend, type KernelOptions, REFERENCE_BACKEND, availableBackends, resolveBackend, runsOnThreads } from "../runtime/memory.ts";
import { buildPlan, type FullPlan } from "../codegen/plan.ts";
import { emitKernelModule } from "../codegen/emit.ts";
import { type KernelPath, KernelRefusedError, pathText } from "./kernelerror.ts";
import { type KernelImports, moduleFromText } from "./kernelmodule.ts";
import { typecheckKernel } from "./typecheck.ts";
import type { FloatArray, Kernel, KernelModule } from "../runtime/kernel.ts";
import { BoundedMap } from "../src/bounded.ts";

type A = FloatArray;
export type { KernelModule };

/** Kernel modules made this process, by the hash of their text; and the hashes the gate passed. */
const loaded = new BoundedMap<string, KernelModule>(64);
const proven = new Set<string>();
const hashOf = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

/**
 * A cell's kernel module, proven against the reference evaluator (`proveKernel`, once per kernel
 * per process) before it is handed out. It is generated from the cell's equations, typechecked,
 * and made a module in memory (nothing is written or imported from disk). With `committed`, a cell
 * from dsl/ uses its kernels in generated/ (kept fresh by `generate`, checked by `generate --check`).
 */
export async function loadKernels(cell: Cell, opts: { committed?: boolean } = {}): Promise<KernelModule> {
  const { hash, mod } = await kernelsOf(cell, opts);
  if (fault) {
    const m = fault(mod, cell);
    proveKernel(cell, m);
    return m;
  }
  if (!proven.has(hash)) {
    proveKernel(cell, mod);
    proven.add(hash);
  }
  return mod;
}

/** The kernels as made, before the gate (`check` compares them in full and reports, rather than refusing). */
async function kernelsOf(cell: Cell, opts: { committed?: boolean; typecheck?: boolean }): Promise<{ hash: string; mod: KernelModule }> {
  const m = cell.file ? /^dsl\/([\w-]+)\.(ts|json|js)$/.exec(cell.file) : null;
  const committed = m ? join(ROOT, "generated", `${m[1]}.${COMPILED ? "js" : "ts"}`) : null;
  if (opts.committed && committed && existsSync(committed)) {
    hookModules();
    return { hash: hashOf(readFileSync(committed, "utf8")), mod: (await import(pathToFileURL(committed).href)) as KernelModule };
  }
  const plan = buildPlan(cell, deriveBackward(cell)) as FullPlan;
  // formatted only where it may equal a committed file (and share its typecheck); formatting changes no token
  const text = await emitKernelModule(plan, { source: cell.file ?? `cell "${cell.name}"`, format: committed !== null });
  const hash = hashOf(text);
  let mod = loaded.get(hash);
  if (!mod) {
    // the same text as a committed file is typechecked with it, by `tsc` in the test suite
    if (opts.typecheck !== false && !(committed && existsSync(committed) && readFileSync(committed, "utf8") === text)) typecheckKernel(cell, text);
    mod = moduleFromText(text, `${cell.name}-${hash}.ts`) as unknown as KernelModule;
    loaded.set(hash, mod);
  }
  return { hash, mod };
}

let fault: ((mod: KernelModule, cell: Cell) => KernelModule) | undefined;
/** For tests only: every kernel module passes through `f` before the gate sees it (to plant a wrong kernel); no argument removes it. */
export function plantKernelFault(f?: (mod: KernelModule, cell: Cell) => KernelModule): void {
  fault = f;
}

/** `generate`, before writing a kernel file: its text made a module in memory (with the new products) and proven. */
export function proveKernelText(cell: Cell, text: string, imports?: KernelImports): ProofSummary {
  const mod = moduleFromText(text, `${cell.name}.ts`, imports) as unknown as KernelModule;
  return proveKernel(cell, fault ? fault(mod, cell) : mod);
}

export interface KernelRun {
  readonly outputs: Record<string, Float64Array>;
  readonly params: Float64Array;
  readonly inputs: Record<string, Float64Array>;
  readonly initial: Record<string, Float64Array>;
}

/** A case as a kernel's arguments in one precision: the flat parameters, the inputs, and buffers for the results. */
export function kernelArgs<X extends A>(mod: KernelModule, c: SequenceCase, F: { new (n: number): X; from(a: ArrayLike<number>): X }) {
  const layout = mod.paramLayout(c.sizes);
  const p = new F(layout.total);
  for (const q of layout.params) p.set(c.params[q.name]!, q.offset);
  const conv = (r: Readonly<Record<string, Float64Array>>) => Object.fromEntries(Object.entries(r).map(([n, v]) => [n, F.from(v)]));
  const zerosLike = (r: Readonly<Record<string, X>>) => Object.fromEntries(Object.entries(r).map(([n, v]) => [n, new F(v.length)]));
  const inputs = conv(c.inputs), initial = conv(c.initial), upstream = conv(c.upstream);
  // every state and output, in the shapes of their upstream gradients
  const out = zerosLike(upstream);
  const grads = { params: new F(layout.total), inputs: zerosLike(inputs), initial: zerosLike(initial) };
  return { p, inputs, initial, upstream, out, grads };
}

/** Run a generated kernel on a case, forward and backward, in the given precision and backend; results as f64. */
export function runKernel(mod: KernelModule, c: SequenceCase, bits: 32 | 64, options: KernelOptions = {}): KernelRun {
  const k = (bits === 64 ? mod.createKernel64(c.sizes, c.B, c.T, options) : mod.createKernel32(c.sizes, c.B, c.T, options)) as Kernel<A>;
  const { p, inputs, initial, upstream, out, grads } = kernelArgs<A>(mod, c, bits === 64 ? Float64Array : Float32Array);
  try {
    k.forward(p, inputs, initial, out);
    k.backward(p, inputs, initial, out, upstream, grads);
  } finally {
    k.dispose();
  }
  const f64 = (r: Record<string, A>) => Object.fromEntries(Object.entries(r).map(([n, v]) => [n, Float64Array.from(v)]));
  return { outputs: f64(out), params: Float64Array.from(grads.params), inputs: f64(grads.inputs), initial: f64(grads.initial) };
}

export interface Comparison {
  readonly what: string;
  /** The backend whose kernels were compared (by name, as in BACKENDS). */
  readonly backend: string;
  /**
   * f64: its float64 kernels against the reference evaluator (the reference backend) or against the
   * reference backend's; f32: float32 against that float64; threads: 2 threads against 1;
   * checkpoint: checkpointed backward (KernelOptions.checkpoint) against the whole one; fd: against finite differences.
   */
  readonly kind: "f64" | "f32" | "threads" | "checkpoint" | "fd";
  readonly maxErr: number;
  /** The pass rule, as printed. */
  readonly rule: string;
  readonly pass: boolean;
  readonly detail: string;
}

/** max |a - b| / max(1, max |b|) over arrays: an error relative to the values' scale. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0, s = 1;
  for (let i = 0; i < b.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); s = Math.max(s, Math.abs(b[i]!)); }
  return m / s;
}

export const F64_TOL = 1e-12;
/** f32 kernels against f64: float32 rounds at 6e-8; sums over K terms and T steps grow it to ~1e-6. */
export const F32_TOL = 1e-4;

/** Bitwise equality of two runs: the number of values that differ in any bit. */
function differing(a: KernelRun, b: KernelRun): number {
  const pairs: [Float64Array, Float64Array][] = [
    ...Object.keys(a.outputs).map((n) => [a.outputs[n]!, b.outputs[n]!] as [Float64Array, Float64Array]),
    [a.params, b.params],
    ...Object.keys(a.inputs).map((n) => [a.inputs[n]!, b.inputs[n]!] as [Float64Array, Float64Array]),
    ...Object.keys(a.initial).map((n) => [a.initial[n]!, b.initial[n]!] as [Float64Array, Float64Array]),
  ];
  let n = 0;
  for (const [x, y] of pairs) for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) n++;
  return n;
}

export interface ProofSummary {
  /** The paths compared, in order. */
  readonly paths: readonly KernelPath[];
  readonly ms: number;
}

/** The gate's case: the cell's default sizes, B = 2, T = 3, a fixed seed. */
export const gateCase = (cell: Cell): SequenceCase => randomCase(cell, { B: 2, T: 3, seed: 1 });

/** A backend and a precision as the gate names them. (KernelPath still types the backend as a built-in name.) */
const pathOf = (b: KernelBackend, bits: 32 | 64): KernelPath => ({ backend: b.name, bits });

/**
 * The gate every kernel passes before it is used or written: on one small case, forward and backward,
 * the reference backend (ts) in float64 equals the reference evaluator and every other backend of
 * BACKENDS this engine runs (wasm where it has SIMD) in float64 equals the reference backend's
 * (F64_TOL), and float32 on each backend is within F32_TOL of that float64. Throws a
 * KernelRefusedError naming the path and the first quantity that differs.
 * `checkKernels` is the full comparison (more cases, two threads, finite differences).
 */
export function proveKernel(cell: Cell, mod: KernelModule, c: SequenceCase = gateCase(cell)): ProofSummary {
  const t0 = performance.now();
  const ref = gradients(deriveBackward(cell), c);
  const layout = mod.paramLayout(c.sizes);
  const flat = new Float64Array(layout.total);
  for (const q of layout.params) flat.set(ref.grads.params[q.name]!, q.offset);
  const refRun: KernelRun = { outputs: ref.forward.outputs, params: flat, inputs: ref.grads.inputs, initial: ref.grads.initial };
  const paths = availableBackends().flatMap((b) => [pathOf(b, 64), pathOf(b, 32)]);
  const refName = REFERENCE_BACKEND.name;
  const at = `${Object.entries(c.sizes).map(([k, n]) => `${k}=${n}`).join(" ")} B=${c.B} T=${c.T}`;
  let ref64 = refRun;
  for (const path of paths) {
    let r: KernelRun;
    try {
      r = runKernel(mod, c, path.bits, { backend: path.backend });
    } catch (e) {
      throw new KernelRefusedError(cell, path, `fails on ${pathText(path)}, on a random case at ${at}: ${(e as Error).message}`);
    }
    const first = path.backend === refName && path.bits === 64;
    const tol = path.bits === 64 ? F64_TOL : F32_TOL;
    const d = firstDifference(r, first ? refRun : ref64, layout.params, tol);
    if (d)
      throw new KernelRefusedError(cell, path, `disagrees with the reference evaluator on ${pathText(path)}: ${d.what} differs by ${d.err.toPrecision(2)}${first ? "" : ` from the ${refName} path's float64 result, which equals the reference`} (rule max|a-b| <= ${tol.toExponential(0)}*max(1,max|b|); a random case at ${at})`);
    if (first) ref64 = r;
    // checkpointed: the backward recomputes the first segment (steps 0 and 1 of the gate's 3) from the initial state
    const seg = runKernel(mod, c, path.bits, { backend: path.backend, checkpoint: 2 });
    const n = differing(seg, r);
    if (n) throw new KernelRefusedError(cell, path, `checkpointed (options.checkpoint: 2) on ${pathText(path)} differs from the whole backward in ${n} values, which must be the same bits (a random case at ${at})`);
  }
  return { paths, ms: performance.now() - t0 };
}

/** The first quantity of a run (the forward's values, then the gradients) out of tolerance, by relErr; NaN fails. */
function firstDifference(a: KernelRun, b: KernelRun, params: readonly { name: string; offset: number; length: number }[], tol: number): { what: string; err: number } | undefined {
  const none = new Float64Array(0);
  const q = (what: string, x: Float64Array | undefined, y: Float64Array) => [what, x ?? none, y] as const;
  const quantities = [
    ...Object.keys(b.outputs).map((n) => q(`the forward's ${n}`, a.outputs[n], b.outputs[n]!)),
    ...params.map((p) => q(`d${p.name}`, a.params.subarray(p.offset, p.offset + p.length), b.params.subarray(p.offset, p.offset + p.length))),
    ...Object.keys(b.inputs).map((n) => q(`d${n}`, a.inputs[n], b.inputs[n]!)),
    ...Object.keys(b.initial).map((n) => q(`d${n} (initial state)`, a.initial[n], b.initial[n]!)),
  ];
  for (const [what, x, y] of quantities) {
    const err = relErr(x, y);
    if (!(err <= tol)) return { what, err };
  }
  return undefined;
}

/**
 * The kernels on one case, on every backend of BACKENDS this engine runs: the reference backend (ts)
 * against the reference evaluator, every other backend (wasm where the engine has SIMD) against it,
 * float32 against float64, two threads against one on a parallel backend (products split however
 * small, so the split is exercised), and the f64 kernels of the default backend ("auto") against
 * finite differences.
 */
export async function checkKernels(cell: Cell, c: SequenceCase = randomCase(cell), opts: { typecheck?: boolean } = {}): Promise<Comparison[]> {
  const { mod } = await kernelsOf(cell, opts);
  const bw = deriveBackward(cell);
  const ref = gradients(bw, c);
  const layout = mod.paramLayout(c.sizes);
  const flatRef = new Float64Array(layout.total);
  for (const q of layout.params) flatRef.set(ref.grads.params[q.name]!, q.offset);
  const rows: Comparison[] = [];
  const add = (backend: string, kind: Comparison["kind"], what: string, err: number, tol: number, detail: string) => rows.push({ what, backend, kind, maxErr: err, rule: `max|a-b| <= ${tol.toExponential(0)}*max(1,max|b|)`, pass: err <= tol, detail });
  const cmp = (a: KernelRun, backend: string, kind: "f64" | "f32", label: string, against: KernelRun) => {
    const errs = [
      ...Object.keys(against.outputs).map((n) => relErr(a.outputs[n]!, against.outputs[n]!)),
      relErr(a.params, against.params),
      ...Object.keys(against.inputs).map((n) => relErr(a.inputs[n]!, against.inputs[n]!)),
      ...Object.keys(against.initial).map((n) => relErr(a.initial[n]!, against.initial[n]!)),
    ];
    add(backend, kind, label, Math.max(...errs), kind === "f64" ? F64_TOL : F32_TOL, "outputs, parameter, input and initial-state gradients");
  };
  const refRun: KernelRun = { outputs: ref.forward.outputs, params: flatRef, inputs: ref.grads.inputs, initial: ref.grads.initial };
  const r = REFERENCE_BACKEND.name;
  const fdBackend = resolveBackend(cell.name, {});
  let ref64: KernelRun = refRun, fdRun = refRun;
  for (const b of availableBackends()) {
    const k64 = runKernel(mod, c, 64, { backend: b.name });
    const k32 = runKernel(mod, c, 32, { backend: b.name });
    if (b === REFERENCE_BACKEND) {
      cmp(k64, b.name, "f64", `${r} f64 = reference evaluator`, refRun);
      ref64 = k64;
      cmp(k32, b.name, "f32", `${r} f32 ≈ ${r} f64`, k64);
    } else {
      cmp(k64, b.name, "f64", `${b.name} f64 = ${r} f64`, ref64);
      cmp(k32, b.name, "f32", `${b.name} f32 ≈ ${r} f64`, ref64);
    }
    if (b === fdBackend) fdRun = k64;
    if (runsOnThreads(b, 2)) {
      const split = { backend: b.name, threads: 2, minSplitFlops: 0 };
      const d = differing(runKernel(mod, c, 64, split), k64) + differing(runKernel(mod, c, 32, split), k32);
      rows.push({ what: `${b.name} 2 threads = 1 thread`, backend: b.name, kind: "threads", maxErr: d, rule: "bit-identical, f64 and f32", pass: d === 0, detail: `${d} values differ in some bit` });
    }
    // checkpointed in segments of 1 and 2 steps (every earlier segment recomputed by the backward, the last one whole or not)
    let d = 0;
    for (const checkpoint of [1, 2]) d += differing(runKernel(mod, c, 64, { backend: b.name, checkpoint }), k64) + differing(runKernel(mod, c, 32, { backend: b.name, checkpoint }), k32);
    rows.push({ what: `${b.name} checkpointed = whole`, backend: b.name, kind: "checkpoint", maxErr: d, rule: "bit-identical, segments of 1 and 2", pass: d === 0, detail: `${d} values differ in some bit` });
  }
  const fdOptions: KernelOptions = { backend: fdBackend.name };

  // generated f64 against finite differences of its own forward, along random directions
  const rng = new Rng(4242);
  const lossOf = (cc: SequenceCase) => {
    const r = runKernelForward(mod, cc, fdOptions);
    let l = 0;
    for (const [n, v] of Object.entries(r)) { const u = cc.upstream[n]!; for (let i = 0; i < v.length; i++) l += u[i]! * v[i]!; }
    return l;
  };
  // A direction whose step crosses a kink (abs, relu, max at a tie: the one-sided slopes disagree and
  // the derived one lies with either) says nothing about the gradient; it is replaced by a fresh one,
  // up to 3K draws, and the row says how many were.
  let worst = 0, fdPass = true, kinks = 0, verdicts = 0;
  const K = 6;
  const fdOk = (a: number, n: number) => Math.abs(a - n) <= 1e-5 + 1e-3 * Math.abs(n); // NaN fails
  for (let d = 0; d < 3 * K && verdicts < K; d++) {
    const dir = {
      params: Object.fromEntries(Object.entries(c.params).map(([n, v]) => [n, rng.fill(new Float64Array(v.length))])),
      inputs: Object.fromEntries(Object.entries(c.inputs).map(([n, v]) => [n, rng.fill(new Float64Array(v.length))])),
      initial: Object.fromEntries(Object.entries(c.initial).map(([n, v]) => [n, rng.fill(new Float64Array(v.length))])),
    };
    const h = Math.cbrt(Number.EPSILON);
    const moved = (s: number): SequenceCase => ({
      ...c,
      params: Object.fromEntries(Object.entries(c.params).map(([n, v]) => [n, v.map((x, i) => x + s * h * dir.params[n]![i]!)])),
      inputs: Object.fromEntries(Object.entries(c.inputs).map(([n, v]) => [n, v.map((x, i) => x + s * h * dir.inputs[n]![i]!)])),
      initial: Object.fromEntries(Object.entries(c.initial).map(([n, v]) => [n, v.map((x, i) => x + s * h * dir.initial[n]![i]!)])),
    });
    const lp = lossOf(moved(1)), lm = lossOf(moved(-1));
    const numeric = (lp - lm) / (2 * h);
    let analytic = 0;
    for (const q of layout.params) { const g = fdRun.params.subarray(q.offset, q.offset + q.length), u = dir.params[q.name]!; for (let i = 0; i < u.length; i++) analytic += g[i]! * u[i]!; }
    for (const [n, u] of Object.entries(dir.inputs)) for (let i = 0; i < u.length; i++) analytic += fdRun.inputs[n]![i]! * u[i]!;
    for (const [n, u] of Object.entries(dir.initial)) for (let i = 0; i < u.length; i++) analytic += fdRun.initial[n]![i]! * u[i]!;
    if (!fdOk(analytic, numeric) && isKink(analytic, lp, lossOf(c), lm, h, fdOk)) { kinks++; continue; }
    verdicts++;
    worst = Math.max(worst, Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 1e-300));
    if (!fdOk(analytic, numeric)) fdPass = false;
  }
  if (verdicts < K) fdPass = false;
  const replaced = kinks ? `; ${kinks} crossing a kink replaced${verdicts < K ? `, only ${verdicts} of ${K} gave a verdict` : ""}` : "";
  rows.push({ what: `${fdBackend.name} f64 vs finite differences`, backend: fdBackend.name, kind: "fd", maxErr: worst, rule: "|a-n| <= 1e-5 + 1e-3*|n|", pass: fdPass, detail: `${K} random directions through all parameters, inputs and initial states at once${replaced}` });
  return rows;
}

function runKernelForward(mod: KernelModule, c: SequenceCase, options: KernelOptions): Record<string, Float64Array> {
  const { p, inputs, initial, out } = kernelArgs(mod, c, Float64Array);
  const k = mod.createKernel64(c.sizes, c.B, c.T, options);
  try {
    k.forward(p, inputs, initial, out);
  } finally {
    k.dispose();
  }
  return out;
}

// The gradient checker: derived gradients against central finite differences, in float64,
// with a private seeded RNG. As thorough as torch.autograd.gradcheck and jax's check_grads:
// every element (full) or random directions (fast), structural checks of the backward, and on
// failure a localisation that names the equation whose derivative rule is wrong.
import { type Cell, type CompiledEquation, stepRoots } from "../src/cell.ts";
import { type BackwardStep, type DeriveOptions, deriveBackward } from "../src/backward.ts";
import { type ForwardResult, type Gradients, type SequenceCase, backwardSequence, forwardSequence, gradients, randomCase } from "../src/sequence.ts";
import { type Env, evaluate, numel } from "../src/eval.ts";
import { type Node, topo, typeStr } from "../src/ir.ts";
import { dimValue } from "../src/dims.ts";
import { OPS, leaf, vjpOf } from "../src/ops.ts";
import { fit } from "../src/diff.ts";
import { Rng } from "../runtime/rng.ts";

export interface CheckOptions extends DeriveOptions {
  readonly mode?: "full" | "fast";
  readonly atol?: number;
  readonly rtol?: number;
  /** Random directions per group in fast mode. */
  readonly directions?: number;
  readonly seed?: number;
}

export type Group = "param" | "input" | "initial";

export interface CheckRow {
  readonly group: Group;
  readonly name: string;
  readonly shape: string;
  /** Elements (full) or directions (fast) checked. */
  readonly checked: number;
  readonly maxAbs: number;
  readonly maxRel: number;
  /** Where the largest violation (or error) is: `[i,j]` in the value's shape, `[t,b,i]` for inputs. */
  readonly worst: string;
  readonly analytic: number;
  readonly numeric: number;
  /** Elements where the function has a kink within the step (one-sided differences disagree). */
  readonly kinks: number;
  readonly pass: boolean;
}

export interface Structural {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

export interface Blame {
  readonly equation: string;
  readonly op: string;
  readonly operand: number;
  readonly analytic: number;
  readonly numeric: number;
}

export interface CheckReport {
  readonly cell: string;
  readonly sizes: Readonly<Record<string, number>>;
  readonly B: number;
  readonly T: number;
  readonly mode: "full" | "fast";
  readonly atol: number;
  readonly rtol: number;
  readonly rows: readonly CheckRow[];
  readonly structural: readonly Structural[];
  readonly blame: readonly Blame[];
  readonly pass: boolean;
}

export const PASS_RULE = "|analytic - numeric| <= atol + rtol*|numeric|";
const EPS = Number.EPSILON;
const stepFor = (x: number) => Math.cbrt(EPS) * Math.max(1, Math.abs(x));

/** Where each checked value lives in a case: a group, a name and its flat array. */
function slots(cell: Cell, c: SequenceCase): { group: Group; name: string; data: Float64Array; dims: number[] }[] {
  const s = (n: Node) => n.type.shape.map((d) => dimValue(d, c.sizes));
  return [
    ...cell.params.map((p) => ({ group: "param" as const, name: p.name, data: c.params[p.name]!, dims: s(p.node) })),
    ...cell.inputs.map((x) => ({ group: "input" as const, name: x.attrs.name!, data: c.inputs[x.attrs.name!]!, dims: [c.T, c.B, ...s(x)] })),
    ...cell.states.map((h) => ({ group: "initial" as const, name: h.attrs.name!, data: c.initial[h.attrs.name!]!, dims: [c.B, ...s(h)] })),
  ];
}

const gradOf = (g: Gradients, group: Group, name: string) => (group === "param" ? g.params : group === "input" ? g.inputs : g.initial)[name]!;

function index(flat: number, dims: readonly number[]): string {
  const idx: number[] = [];
  for (let k = dims.length - 1; k >= 0; k--) { idx.unshift(flat % dims[k]!); flat = Math.floor(flat / dims[k]!); }
  return `[${idx.join(",")}]`;
}

export function checkGradients(cell: Cell, c: SequenceCase = randomCase(cell), opts: CheckOptions = {}): CheckReport {
  const mode = opts.mode ?? "full", atol = opts.atol ?? 1e-5, rtol = opts.rtol ?? 1e-3;
  const bw = deriveBackward(cell, opts);
  const { grads } = gradients(bw, c);
  const loss = () => forwardSequence(cell, c).loss;
  const ok = (a: number, n: number) => Math.abs(a - n) <= atol + rtol * Math.abs(n);
  const rng = new Rng(opts.seed ?? 12345);

  const rows: CheckRow[] = [];
  for (const sl of slots(cell, c)) {
    const g = gradOf(grads, sl.group, sl.name);
    let maxAbs = 0, maxRel = 0, worst = "-", wa = 0, wn = 0, kinks = 0, pass = true, checked = 0, worstScore = -Infinity;
    const record = (i: number | string, a: number, n: number, kink: boolean) => {
      checked++;
      const abs = Math.abs(a - n), rel = abs / Math.max(Math.abs(n), 1e-300);
      if (kink) { kinks++; return; }
      if (!ok(a, n)) pass = false;
      maxAbs = Math.max(maxAbs, abs);
      maxRel = Math.max(maxRel, Math.abs(n) > atol ? rel : 0);
      const score = abs - (atol + rtol * Math.abs(n));
      if (score > worstScore) { worstScore = score; worst = typeof i === "number" ? index(i, sl.dims) : i; wa = a; wn = n; }
    };
    if (mode === "full") {
      for (let i = 0; i < sl.data.length; i++) {
        const x0 = sl.data[i]!, h = stepFor(x0);
        sl.data[i] = x0 + h; const lp = loss();
        sl.data[i] = x0 - h; const lm = loss();
        sl.data[i] = x0;
        const n = (lp - lm) / (2 * h), a = g[i]!;
        let kink = false;
        if (!ok(a, n)) {
          kink = isKink(a, lp, loss(), lm, h, ok);
        }
        record(i, a, n, kink);
      }
    } else {
      const K = opts.directions ?? 4;
      const x0 = Float64Array.from(sl.data);
      const scale = Math.max(1, ...Array.from(x0, Math.abs));
      for (let k = 0; k < K; k++) {
        const u = rng.fill(new Float64Array(x0.length));
        const h = Math.cbrt(EPS) * scale;
        let a = 0;
        for (let i = 0; i < u.length; i++) a += g[i]! * u[i]!;
        for (let i = 0; i < u.length; i++) sl.data[i] = x0[i]! + h * u[i]!;
        const lp = loss();
        for (let i = 0; i < u.length; i++) sl.data[i] = x0[i]! - h * u[i]!;
        const lm = loss();
        sl.data.set(x0);
        let kink = false;
        const n = (lp - lm) / (2 * h);
        if (!ok(a, n)) {
          kink = isKink(a, lp, loss(), lm, h, ok);
        }
        record(`direction ${k + 1}`, a, n, kink);
      }
    }
    rows.push({ group: sl.group, name: sl.name, shape: `[${sl.dims.join(",")}]`, checked, maxAbs, maxRel, worst, analytic: wa, numeric: wn, kinks, pass });
  }

  const structural = structuralChecks(bw, c, grads);
  const pass = rows.every((r) => r.pass) && structural.every((s) => s.pass);
  const blame = pass ? [] : localise(bw, c, opts);
  return { cell: cell.name, sizes: c.sizes, B: c.B, T: c.T, mode, atol, rtol, rows, structural, blame, pass };
}

/**
 * A kink within the step (relu, max, a hard sigmoid's corner): the one-sided slopes disagree, and
 * the analytic value is one of them or lies between them (a subgradient).
 */
export function isKink(a: number, lp: number, l0: number, lm: number, h: number, ok: (a: number, n: number) => boolean): boolean {
  const right = (lp - l0) / h, left = (l0 - lm) / h;
  if (ok(right, left)) return false;
  return ok(a, right) || ok(a, left) || (a - left) * (a - right) <= 0;
}

/** The backward must be linear in the upstream gradient, and deterministic. */
function structuralChecks(bw: BackwardStep, c: SequenceCase, g1: Gradients): Structural[] {
  const fwd: ForwardResult = forwardSequence(bw.cell, c, bw.saved);
  const withUp = (f: (x: number) => number): SequenceCase => {
    const upstream: Record<string, Float64Array> = {};
    for (const [k, v] of Object.entries(c.upstream)) upstream[k] = v.map(f);
    return { ...c, upstream };
  };
  const run = (cc: SequenceCase) => backwardSequence(bw, cc, fwd);
  const flat = (g: Gradients) => [...Object.values(g.params), ...Object.values(g.inputs), ...Object.values(g.initial)].flatMap((a) => Array.from(a));
  const a1 = flat(g1);
  const scale = Math.max(1e-300, ...a1.map(Math.abs));
  const zero = flat(run(withUp(() => 0)));
  const a2 = flat(run(withUp((x) => 2 * x)));
  const again = flat(run(c));
  const maxZero = Math.max(0, ...zero.map(Math.abs));
  const maxLin = Math.max(0, ...a2.map((x, i) => Math.abs(x - 2 * a1[i]!))) / scale;
  const same = again.every((x, i) => Object.is(x, a1[i]));
  return [
    { name: "zero upstream gives zero gradients", pass: maxZero === 0, detail: `max |g| = ${maxZero.toExponential(1)}` },
    { name: "twice the upstream gives twice the gradients", pass: maxLin <= 1e-12, detail: `max rel deviation ${maxLin.toExponential(1)}` },
    { name: "deterministic (bit-identical on a rerun)", pass: same, detail: same ? "identical" : "differs" },
  ];
}

/**
 * Check every node's local derivative rule at the values of the first step: the rule's
 * vector-Jacobian product against a finite difference of the op alone. Names the equations whose
 * rules disagree.
 */
export function localise(bw: BackwardStep, c: SequenceCase, opts: DeriveOptions = {}): Blame[] {
  const cell = bw.cell;
  const rule = opts.rule ?? vjpOf;
  const roots = stepRoots(cell);
  const env: Env = new Map(cell.params.map((p) => [p.node, c.params[p.name]!]));
  cell.inputs.forEach((x) => env.set(x, c.inputs[x.attrs.name!]!.subarray(0, numel(x.type, c.B, c.sizes))));
  cell.states.forEach((s) => env.set(s, c.initial[s.attrs.name!]!));
  evaluate(roots, env, c.B, c.sizes);
  const owner = new Map<Node, CompiledEquation>();
  for (const eq of cell.equations) for (const n of topo([eq.node])) if (!owner.has(n)) owner.set(n, eq);
  const rng = new Rng(opts.rule ? 99 : 98);
  const blame: Blame[] = [];
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  for (const n of topo(roots)) {
    if (OPS[n.op].kind === "leaf" || n.args.length === 0) continue;
    const g = leaf(`g_${n.id}`, "seed", n.type);
    const gv = rng.fill(new Float64Array(numel(n.type, c.B, c.sizes)));
    const contribs = rule(n, g);
    n.args.forEach((a, k) => {
      const cb = contribs[k];
      if (a.op === "const" || a.op === "size") return;
      const u = rng.fill(new Float64Array(env.get(a)!.length));
      const at = (sign: number) => {
        const e: Env = new Map(n.args.map((b) => [b, env.get(b)!]));
        const x0 = env.get(a)!, h = Math.cbrt(EPS) * Math.max(1, ...Array.from(x0, Math.abs));
        e.set(a, x0.map((x, i) => x + sign * h * u[i]!));
        return { y: evaluate([n], e, c.B, c.sizes)[0]!, h };
      };
      const p = at(1), m = at(-1), z = at(0);
      const numeric = (dot(gv, p.y) - dot(gv, m.y)) / (2 * p.h);
      const right = (dot(gv, p.y) - dot(gv, z.y)) / p.h, left = (dot(gv, z.y) - dot(gv, m.y)) / p.h;
      if (Math.abs(right - left) > 1e-5 + 1e-4 * Math.abs(numeric)) return; // a kink at this point: no verdict
      let analytic = 0;
      if (cb) {
        const e: Env = new Map(env);
        e.set(g, gv);
        analytic = dot(evaluate([fit(cb, a.type)], e, c.B, c.sizes)[0]!, u);
      }
      if (Math.abs(analytic - numeric) > 1e-5 + 1e-4 * Math.abs(numeric)) {
        const eq = owner.get(n);
        blame.push({ equation: eq ? `${eq.text} (${eq.where ?? `line ${eq.line}`})` : "(internal)", op: `${n.op} : ${typeStr(n.type)}`, operand: k, analytic, numeric });
      }
    });
  }
  return blame;
}

const fmt = (x: number) => (x === 0 ? "0" : x.toExponential(1));

export function formatReport(r: CheckReport): string {
  const sizes = Object.entries(r.sizes).map(([k, v]) => `${k}=${v}`).join(" ");
  const out = [
    `gradient check: ${r.cell}   sizes ${sizes}   B=${r.B} T=${r.T}   ${r.mode} mode, float64`,
    `pass rule: ${PASS_RULE}, atol ${r.atol.toExponential(0)}, rtol ${r.rtol.toExponential(0)}; central differences, step cbrt(eps)*max(1,|x|)`,
  ];
  const head = ["", "name", "shape", r.mode === "full" ? "elements" : "directions", "max abs err", "max rel err", "worst at", "kinks", ""];
  const body = r.rows.map((w) => [w.group, w.name, w.shape, String(w.checked), fmt(w.maxAbs), fmt(w.maxRel), w.worst, String(w.kinks), w.pass ? "ok" : `FAIL (analytic ${w.analytic.toPrecision(6)}, numeric ${w.numeric.toPrecision(6)})`]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => "  " + cells.map((s, i) => (i >= 3 && i <= 5 || i === 7 ? s.padStart(widths[i]!) : s.padEnd(widths[i]!))).join("  ").trimEnd();
  out.push(line(head), ...body.map(line));
  out.push(`structural: ${r.structural.map((s) => `${s.name}: ${s.pass ? "ok" : `FAIL (${s.detail})`}`).join("; ")}`);
  for (const b of r.blame) out.push(`  wrong derivative rule: ${b.op} operand ${b.operand + 1} in equation ${b.equation}: rule gives ${b.analytic.toPrecision(6)}, finite differences ${b.numeric.toPrecision(6)}`);
  out.push(r.pass ? "PASS" : "FAIL");
  return out.join("\n");
}

// Shrinking a failing fuzz cell while it keeps failing the same way. Candidates, largest cuts first:
// drop an output, turn a state into an input (its update inlined where h' is read), inline an
// intermediate equation, drop an input, remove unused declarations, drop a matrix's heads, replace
// a sub-expression by one of its children or by a leaf of the same shape, merge two sizes, shrink a
// size (by the heads, so they still divide it), B and T,
// plain formatting, then rename hostile names to plain ones one at a time (a name that causes the
// failure stays) and ordinary names to N1, x1, h1, W1, … Greedy: the first candidate that still
// fails is taken, until a whole pass takes none or the time budget runs out.
import {
  type Decl, type Expr, type FDim, type FType, type FuzzCell, type ParamDecl, type VecDecl,
  allDecls, canonicalNames, clone, dimKey, sameShape, sites, toSpec, typer, usedIds,
} from "./ast.ts";
import { renamed } from "./check.ts";

export interface MinimizeResult {
  readonly cell: FuzzCell;
  /** Candidates tried, and taken. */
  readonly tries: number;
  readonly taken: number;
  /** False when the time budget ran out before a pass with nothing taken. */
  readonly complete: boolean;
}

export interface MinimizeOptions {
  readonly budgetMs?: number;
  readonly onStep?: (s: { tries: number; taken: number; equations: number; what: string }) => void;
}

interface Candidate { readonly what: string; readonly cell: FuzzCell }

/** Replace every reference to `id` (old value, or h' when `primed`) by a copy of `by`. */
function substitute(fc: FuzzCell, id: number, primed: boolean, by: Expr): void {
  for (const s of sites(fc)) {
    const e = s.get();
    if (e.k === "ref" && e.id === id && !!e.primed === primed) s.set({ k: "paren", a: structuredClone(by) });
  }
}

const removeDecl = (list: Decl[], id: number) => { const i = list.findIndex((d) => d.id === id); if (i >= 0) list.splice(i, 1); };

/** A leaf of type t from what the cell declares (existing values first), or undefined. */
function leafOf(fc: FuzzCell, t: FType): Expr | undefined {
  if (t.s === "scalar") return t.batched ? undefined : { k: "num", v: 1 };
  if (t.s === "mat") {
    // a dense matrix first: one with heads is only a product's matrix (M = R would be its stored blocks)
    const p = [...fc.params].sort((a, b) => (a.heads ?? 0) - (b.heads ?? 0))
      .find((q) => q.shape.length === 2 && dimKey(q.shape[0]!) === dimKey(t.rows) && dimKey(q.shape[1]!) === dimKey(t.cols));
    return p ? { k: "ref", id: p.id } : undefined;
  }
  const vec = [...fc.inputs, ...fc.states].find((v) => dimKey(v.dim) === dimKey(t.dim));
  if (vec) return { k: "ref", id: vec.id };
  if (!t.batched) {
    const p = fc.params.find((q) => q.shape.length === 1 && dimKey(q.shape[0]!) === dimKey(t.dim));
    if (p) return { k: "ref", id: p.id };
  }
  return undefined;
}

const children = (e: Expr): Expr[] =>
  e.k === "bin" ? [e.a, e.b] : e.k === "call" ? e.args : e.k === "act" || e.k === "slice" ? [e.arg] : e.k === "neg" || e.k === "pow" || e.k === "paren" ? [e.a] : [];

function* candidates(fc: FuzzCell): Generator<Candidate> {
  const eqOf = (kind: "eq" | "state" | "output", id: number) => fc.equations.findIndex((q) => q.target.kind === kind && q.target.id === id);

  // ---- whole declarations
  for (const o of fc.outputs) {
    const c = clone(fc), i = eqOf("output", o.id);
    const rhs = c.equations[i]!.rhs;
    c.equations.splice(i, 1);
    removeDecl(c.outputs, o.id);
    substitute(c, o.id, false, rhs);
    yield { what: `drop output ${o.name}`, cell: c };
  }
  for (const s of fc.states) {
    if (fc.states.length < 2) break;
    const c = clone(fc), i = eqOf("state", s.id);
    const rhs = c.equations[i]!.rhs;
    c.equations.splice(i, 1);
    const d = c.states.find((x) => x.id === s.id)!;
    removeDecl(c.states, s.id);
    c.inputs.push({ ...d, role: "input" } as VecDecl);
    substitute(c, s.id, true, rhs);
    yield { what: `state ${s.name} becomes an input`, cell: c };
  }
  for (const d of fc.eqNames) {
    const i = eqOf("eq", d.id);
    const c = clone(fc);
    if (i >= 0) {
      const rhs = c.equations[i]!.rhs;
      c.equations.splice(i, 1);
      substitute(c, d.id, false, rhs);
    }
    removeDecl(c.eqNames, d.id);
    yield { what: `inline ${d.name}`, cell: c };
  }
  const used = usedIds(fc);
  for (const x of fc.inputs) {
    const other = [...fc.inputs, ...fc.states].find((v) => v.id !== x.id && dimKey(v.dim) === dimKey(x.dim));
    if (used.has(x.id) && !other) continue;
    const c = clone(fc);
    removeDecl(c.inputs, x.id);
    if (other) substitute(c, x.id, false, { k: "ref", id: other.id });
    yield { what: `drop input ${x.name}`, cell: c };
  }

  // ---- unused declarations, comments
  const cleaned = cleanup(fc);
  if (cleaned) yield { what: "remove unused declarations", cell: cleaned };
  for (const p of fc.params) if (p.heads) {
    const c = clone(fc);
    delete c.params.find((q) => q.id === p.id)!.heads;
    yield { what: `${p.name} without heads`, cell: c };
  }

  // ---- sub-expressions: a child, or a leaf, of the same shape
  const type = typer(fc);
  const all = [...sites(fc)];
  for (const s of all) {
    const e = s.get();
    const t = type(e);
    if (!t) continue;
    for (const ch of children(e)) {
      const ct = type(ch);
      if (ct && sameShape(ct, t)) {
        const c = clone(fc);
        [...sites(c)].find((x) => x.path === s.path)!.set(structuredClone(ch));
        yield { what: `${s.path}: keep one operand`, cell: c };
      }
    }
    if (e.k !== "ref" && e.k !== "num") {
      const leaf = leafOf(fc, t);
      if (leaf) {
        const c = clone(fc);
        [...sites(c)].find((x) => x.path === s.path)!.set(leaf);
        yield { what: `${s.path}: a leaf`, cell: c };
      }
    }
    if (e.k === "num" && e.v !== 1 && e.v !== 0) {
      const c = clone(fc);
      [...sites(c)].find((x) => x.path === s.path)!.set({ k: "num", v: 1 });
      yield { what: `${s.path}: the number 1`, cell: c };
    }
  }

  // ---- sizes and the case
  for (const s of fc.sizes) {
    for (const t of fc.sizes) {
      if (t.id === s.id) continue;
      const c = clone(fc);
      const merge = (d: FDim) => {
        const k = d.terms.find(([i]) => i === s.id)?.[1] ?? 0;
        d.terms = d.terms.filter(([i]) => i !== s.id);
        if (k) { const u = d.terms.find(([i]) => i === t.id); if (u) u[1] += k; else d.terms.push([t.id, k]); }
      };
      const dims: FDim[] = [...c.inputs, ...c.states, ...c.outputs].map((v) => v.dim).concat(c.params.flatMap((p) => p.shape));
      for (const x of sites(c)) { const e = x.get(); if (e.k === "slice") dims.push(e.start, e.len); }
      dims.forEach(merge);
      for (const x of sites(c)) { const e = x.get(); if (e.k === "ref" && e.id === s.id) x.set({ k: "ref", id: t.id }); }
      removeDecl(c.sizes, s.id);
      c.constraints = c.constraints?.filter((k) => k.size !== s.id && k.as !== s.id);
      yield { what: `size ${s.name} becomes ${t.name}`, cell: c };
      break;
    }
  }
  // in a cell with heads every size is a multiple of them (grammar.ts): a smaller size stays one
  const step = Math.max(1, ...fc.params.map((p) => p.heads ?? 1));
  for (const s of fc.sizes) if (s.value > step) {
    const c = clone(fc);
    c.sizes.find((x) => x.id === s.id)!.value = s.value - step;
    yield { what: `${s.name} = ${s.value - step}`, cell: c };
  }
  if (fc.B > 1) yield { what: "B = 1", cell: { ...clone(fc), B: 1 } };
  if (fc.T > 2) yield { what: "T = 2", cell: { ...clone(fc), T: 2 } };
  if (fc.T > 1) yield { what: "T = 1", cell: { ...clone(fc), T: 1 } };
  if (fc.sizesAsList) yield { what: "sizes as an object", cell: { ...clone(fc), sizesAsList: false } };
  if (fc.equationsAsString || fc.equations.some((q) => q.tight || q.comment)) {
    const c = clone(fc);
    delete c.equationsAsString;
    for (const q of c.equations) { delete q.tight; delete q.comment; }
    yield { what: "equations as a plain list", cell: c };
  }
  if (all.some((s) => { const e = s.get(); return e.k === "num" && e.text !== undefined; })) {
    const c = clone(fc);
    for (const x of sites(c)) { const e = x.get(); if (e.k === "num") delete e.text; }
    yield { what: "numbers written plainly", cell: c };
  }

  // ---- names: un-hostile one at a time, then ordinary names by role and order
  for (const d of allDecls(fc)) if (d.hostile) yield { what: `rename ${d.role} ${d.name}`, cell: renamed(fc, d.id) };
  yield { what: "ordinary names by role and order", cell: canonicalNames(fc) };
}

/** The cell without declarations nothing uses (parameters, constants, activations, sizes, names of no equation) and without comments; undefined when there are none. Equations stay (inlining drops them one at a time). */
export function cleanup(fc: FuzzCell): FuzzCell | undefined {
  const c = clone(fc);
  let changed = false;
  for (;;) {
    const used = usedIds(c);
    const before = allDecls(c).length;
    c.params = c.params.filter((p: ParamDecl) => used.has(p.id));
    c.activations = c.activations.filter((a) => used.has(a.id));
    const stillUsed = usedIds(c); // constants an activation dropped just now used
    c.constants = c.constants.filter((k) => stillUsed.has(k.id));
    c.sizes = c.sizes.filter((s) => stillUsed.has(s.id));
    c.eqNames = c.eqNames.filter((d) => c.equations.some((q) => q.target.kind === "eq" && q.target.id === d.id));
    if (allDecls(c).length === before) break;
    changed = true;
  }
  for (const q of c.equations) if (q.comment) { delete q.comment; changed = true; }
  if (c.sizes.length === 0) return undefined; // nothing has a size: keep the cell as it was
  return changed ? c : undefined;
}

/**
 * Shrink `fc` while `fails` holds. `fails` gets candidates that may not even compile: it answers
 * whether the candidate fails in the same way as the original.
 */
export async function minimize(fc: FuzzCell, fails: (c: FuzzCell) => Promise<boolean>, opts: MinimizeOptions = {}): Promise<MinimizeResult> {
  const deadline = performance.now() + (opts.budgetMs ?? 120_000);
  const seen = new Set<string>();
  const key = (c: FuzzCell) => JSON.stringify([toSpec(c), c.B, c.T]);
  seen.add(key(fc));
  let cur = fc, tries = 0, taken = 0;
  for (;;) {
    let progress = false;
    let skip = 0;
    for (;;) {
      let next: Candidate | undefined;
      let index = 0;
      for (const cand of candidates(cur)) {
        if (index++ < skip) continue;
        const k = key(cand.cell);
        if (seen.has(k)) continue;
        seen.add(k);
        if (performance.now() > deadline) return { cell: cur, tries, taken, complete: false };
        tries++;
        if (await fails(cand.cell)) { next = cand; break; }
      }
      if (!next) break;
      cur = next.cell;
      taken++;
      progress = true;
      skip = Math.max(0, index - 2); // the candidates before it were tried already; go on from about there
      opts.onStep?.({ tries, taken, equations: cur.equations.length, what: next.what });
    }
    if (!progress) return { cell: cur, tries, taken, complete: true };
  }
}

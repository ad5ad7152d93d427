// A random cell from a grammar, deterministic for (seed, index). Everything the language has:
// sizes used as sums ("D + H", "2*H", "H + 1") and fixed lengths ("2"), several inputs, states and
// outputs, every function of src/lang.ts's FUNCTIONS, elementwise and scalar operators, constant
// powers, matrix products in every written form (2*W*x, W*x*2, 2*(U*h), U/2*h, (W*x)/3, -U*h,
// s*W*x), a weight's transpose and matrix expressions ((W - W')*h, (W + s*eye(H))*h, transpose(M)*x),
// tied matrices, stacked matrices read through slice, concat times a [H, D + H] matrix,
// terms times zero, layer norm, clip between vectors, scalar parameters, constants, sizes as
// numbers, user activations, peepholes reading h', intermediate equations that are scalars, shared
// vectors or matrices (M = W .- s: .+ and .- put a scalar on every entry), outputs and states that are the very node of another result (y = h',
// h' = x, two states with one update); written with comments, without spaces, as one string, with
// numbers as .5 or 1e-1; names mixed from names.ts's hostile vocabulary in every role; scalar
// inputs (`dt: []`, read as a scalar per example), size-1 inputs broadcast in elementwise ops
// (`a .* t`, `max(a, t)` with `t: 1`), size equalities (`constraints: ["D = H"]`), under which
// declarations, slices and eye(n) write either size, so vectors of the two sizes mix, and heads: a
// matrix parameter, square or not, declared block-diagonal (`{ shape: ["H", "H"], heads: 4 }`), read
// as R*v, R'*v, transpose(R)*v, scaled, tied, and in sums of matrices. A cell that may have heads
// has every size a multiple of them, and a matrix gets heads only when they divide the constants of
// its dims, so every size it touches divides (under a constraint, and as the minimizer shrinks).
//
// Values stay finite and moderate, and away from places finite differences cannot judge: each
// generated value carries an estimate of its magnitude, log/sqrt/./ and negative or fractional
// powers only see arguments bounded away from zero (1 + square(a), 2 + sigmoid(a), …), exp only
// sees small arguments, and state updates are bounded (an activation, a gated mix, o .* tanh(c')),
// so T steps cannot blow up. Kinks (relu, abs, max, min, clip, hard sigmoids) are kept: the
// checkers treat kinks specially, and exact zeros (0 .* a) only ever appear beside another term.
import { Rng } from "../../runtime/rng.ts";
import type { Init } from "../../src/cell.ts";
import {
  type ActDecl, type ConstDecl, type Decl, type Expr, type FDim, type FuzzCell, type ParamDecl, type Role, type SizeDecl, type VecDecl,
  dimKey, dimMinus, dimOfSize, dimPlus, dimUnder, dimValueOf,
} from "./ast.ts";
import { HOSTILE, ORDINARY } from "./names.ts";

/** The seed of cell `index` of a run seeded `seed`: any cell can be regenerated on its own. */
export function cellSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** A value the generator can refer to, with what it knows about it. */
interface Avail {
  readonly ref: Expr;
  readonly dim: FDim;
  readonly mag: number;
  readonly batched: boolean;
  /** In [0, 1] (a gate). */
  readonly unit: boolean;
}
interface ScalarAvail { readonly ref: Expr; readonly mag: number; readonly batched: boolean; readonly positive: boolean }
interface MatAvail { readonly ref: Expr; readonly rows: FDim; readonly cols: FDim; readonly mag: number; readonly heads?: number }
/** A generated expression and its estimated largest magnitude. */
interface G { readonly e: Expr; readonly mag: number; readonly batched: boolean; readonly unit?: boolean }

const ACTIVATIONS: readonly { expr: string; bound: number | null; consts: number }[] = [
  { expr: "x / (1 + abs(x))", bound: 1, consts: 0 },
  { expr: "x / sqrt(1 + x^2)", bound: 1, consts: 0 },
  { expr: "tanh(x) * {0}", bound: 2, consts: 1 },
  { expr: "x / (1 + exp(-{0} * x))", bound: null, consts: 1 },
  { expr: "log(1 + exp(x))", bound: null, consts: 0 },
  { expr: "exp(-x^2)", bound: 1, consts: 0 },
  { expr: "atan(x)", bound: 1.6, consts: 0 },
  { expr: "x * {0} + tanh(x)", bound: null, consts: 1 },
  { expr: "sin(x)", bound: 1, consts: 0 },
  { expr: "(sqrt(x^2 + 1) - 1) / 2 + x", bound: null, consts: 0 },
];
const NUMBERS = [0.5, 2, 3, 0.25, 1.5, 0.1];

const num = (v: number): Expr => ({ k: "num", v });
const bin = (op: "+" | "-" | ".+" | ".-" | ".*" | "./" | "*" | "/", a: Expr, b: Expr): Expr => ({ k: "bin", op, a, b });
const call = (fn: string, ...args: Expr[]): Expr => ({ k: "call", fn, args });

class Gen {
  private readonly rng: Rng;
  private nextId = 1;
  private readonly taken = new Set<string>();
  private readonly pHostile: number;
  readonly fc: FuzzCell;
  private vecs: Avail[] = [];
  private scalars: ScalarAvail[] = [];
  private mats: MatAvail[] = [];
  /** Matrices defined by an equation, and those a product has read (so each defined one gets read). */
  private readonly eqMats = new Set<MatAvail>();
  private readonly usedMats = new Set<MatAvail>();
  private readonly reads = new Map<string, number>();
  private palette: FDim[] = [];
  /** The heads a matrix of this cell may have (every size is a multiple of them), or 0. */
  private heads = 0;

  constructor(seed: number, index: number) {
    this.rng = new Rng(cellSeed(seed, index));
    this.pHostile = this.pick([0.25, 0.5, 0.5, 0.75]);
    this.fc = {
      name: `fuzz-${seed}-${index}`, origin: `differential fuzzer, seed ${seed} cell ${index}`, sizesAsList: this.chance(0.2),
      sizes: [], inputs: [], states: [], outputs: [], params: [], constants: [], activations: [], eqNames: [], equations: [],
      B: this.pick([1, 2, 2, 3, 5, 8]), T: this.pick([1, 2, 3, 3, 4]), caseSeed: this.int(1, 1000),
    };
  }

  // ---------------------------------------------------------------- randomness
  private chance(p: number): boolean { return this.rng.next() < p; }
  private int(lo: number, hi: number): number { return lo + Math.floor(this.rng.next() * (hi - lo + 1)); }
  private pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.rng.next() * xs.length)]!; }
  private weighted<T>(opts: readonly (readonly [number, () => T])[]): T {
    const total = opts.reduce((s, [w]) => s + w, 0);
    let r = this.rng.next() * total;
    for (const [w, f] of opts) { if ((r -= w) < 0) return f(); }
    return opts[opts.length - 1]![1]();
  }
  private shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) { const j = Math.floor(this.rng.next() * (i + 1)); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
    return xs;
  }

  // ---------------------------------------------------------------- names
  private decl(role: Role): Decl {
    for (let tries = 0; ; tries++) {
      const hostile = tries < 20 && this.chance(this.pHostile);
      const name = hostile ? this.pick(HOSTILE) : tries < 30 ? this.pick(ORDINARY[role]) : `${ORDINARY[role][0]}${this.nextId}`;
      if (this.taken.has(name)) continue;
      this.taken.add(name);
      return { id: this.nextId++, name, role, hostile };
    }
  }

  // ---------------------------------------------------------------- declarations
  private size(i: number): number { return this.fc.sizes[i]!.id; }
  private val(d: FDim): number { return dimValueOf(d, this.fc.sizes); }
  private dimPick(): FDim { return this.pick(this.palette); }

  private makeDeclarations(): void {
    const n = this.weighted([[0.35, () => 1], [0.4, () => 2], [0.25, () => 3]] as const);
    const values = this.shuffle([2, 3, 4]).slice(0, n);
    if (this.chance(0.15)) values[this.int(0, n - 1)] = 1;
    // now and then a larger size, so products fill whole register tiles and leave remainders
    if (this.chance(0.2)) values[this.int(0, n - 1)] = this.pick([5, 6, 7, 9, 13, 17]);
    // a size equality between two sizes, "D = H": D has H's value, and every dim below is made of the free sizes
    const constrained = n >= 2 && this.chance(0.15) ? this.shuffle(Array.from({ length: n }, (_v, i) => i)).slice(0, 2) as [number, number] : undefined;
    if (constrained) values[constrained[0]] = values[constrained[1]]!;
    // now and then a cell whose matrices may have heads: every size a multiple of them (2 stays 2 in 2 heads, 3 becomes 4)
    if (this.chance(0.3)) {
      this.heads = this.pick([2, 2, 4]);
      for (let i = 0; i < n; i++) values[i] = this.heads * Math.ceil(values[i]! / this.heads);
    }
    for (const value of values) this.fc.sizes.push({ ...this.decl("size"), value } as SizeDecl);
    if (constrained) this.fc.constraints = [{ size: this.size(constrained[0]), as: this.size(constrained[1]) }];
    // the dims values may have: each size, twice a size, a sum of two, a size plus one
    const dims: FDim[] = this.fc.sizes.map((s) => dimOfSize(s.id));
    for (const s of this.fc.sizes) if (s.value <= 3 && this.chance(0.5)) dims.push({ c: 0, terms: [[s.id, 2]] });
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (this.chance(0.5)) dims.push({ c: 0, terms: this.chance(0.5) ? [[this.size(i), 1], [this.size(j), 1]] : [[this.size(j), 1], [this.size(i), 1]] });
    if (this.chance(0.25)) dims.push({ c: this.pick([1, 1, 2]), terms: [[this.size(this.int(0, n - 1)), 1]] });
    // a fixed length, written as a number: a 1-row matrix, a vector of 2
    if (this.chance(0.15)) dims.push({ c: this.pick([1, 2]), terms: [] });
    const free = (ds: FDim[]) => ds.map((d) => dimUnder(d, this.fc.constraints)).filter((d, i, all) => all.findIndex((e) => dimKey(e) === dimKey(d)) === i);
    const singles = free(dims.slice(0, n));
    this.palette = free([...singles, ...dims.slice(n).filter((d) => this.val(d) <= 12)]);
    const vecDecl = (role: Role): VecDecl => ({ ...this.decl(role), dim: this.chance(0.7) ? this.pick(singles) : this.dimPick() } as VecDecl);
    for (let k = this.weighted([[0.5, () => 1], [0.35, () => 2], [0.15, () => 3]] as const); k > 0; k--) this.fc.inputs.push(vecDecl("input"));
    // a scalar per step (dt: []), and a size-1 input (t: 1) that broadcasts beside longer vectors
    const scalarIn = this.chance(0.15) ? ({ ...this.decl("input"), dim: { c: 1, terms: [] }, scalar: true } as VecDecl) : undefined;
    if (this.chance(0.1)) this.fc.inputs.push({ ...this.decl("input"), dim: { c: 1, terms: [] } } as VecDecl);
    if (scalarIn) this.fc.inputs.splice(this.int(0, this.fc.inputs.length), 0, scalarIn);
    for (let k = this.weighted([[0.5, () => 1], [0.35, () => 2], [0.15, () => 3]] as const); k > 0; k--) this.fc.states.push(vecDecl("state"));
    for (let k = this.weighted([[0.5, () => 0], [0.35, () => 1], [0.15, () => 2]] as const); k > 0; k--) this.fc.outputs.push(vecDecl("output"));
    for (const x of this.fc.inputs)
      if (x.scalar) this.scalars.push({ ref: { k: "ref", id: x.id }, mag: 1, batched: true, positive: false });
      else this.vecs.push({ ref: { k: "ref", id: x.id }, dim: x.dim, mag: 1, batched: true, unit: false });
    for (const s of this.fc.states) this.vecs.push({ ref: { k: "ref", id: s.id }, dim: s.dim, mag: 1.5, batched: true, unit: false });
    for (const s of this.fc.sizes) this.scalars.push({ ref: { k: "ref", id: s.id }, mag: s.value, batched: false, positive: true });
    for (let k = this.weighted([[0.55, () => 0], [0.3, () => 1], [0.15, () => 2]] as const); k > 0; k--) {
      const t = this.pick(ACTIVATIONS);
      const uses = Array.from({ length: t.consts }, () => this.constant(this.pick([0.5, 1, 1.5, 2])).id);
      this.fc.activations.push({ ...this.decl("activation"), expr: t.expr, uses } as ActDecl);
    }
  }

  private constant(value: number): ConstDecl {
    const c = { ...this.decl("constant"), value } as ConstDecl;
    this.fc.constants.push(c);
    this.scalars.push({ ref: { k: "ref", id: c.id }, mag: Math.abs(value), batched: false, positive: value > 0 });
    return c;
  }

  private param(shape: FDim[], heads?: number): ParamDecl {
    const init: Init | undefined = this.weighted<Init | undefined>([
      [6, () => undefined], [0.5, () => "zeros"], [0.5, () => "ones"], [0.5, () => ({ constant: 1 })], [0.5, () => ({ uniform: 0.5 })], [0.3, () => "uniform"],
    ]);
    const p = { ...this.decl("param"), shape, ...(heads ? { heads } : {}), ...(init ? { init } : {}) } as ParamDecl;
    this.fc.params.push(p);
    return p;
  }
  private paramVec(dim: FDim): G {
    const same = this.fc.params.filter((p) => p.shape.length === 1 && dimKey(p.shape[0]!) === dimKey(dim));
    const p = same.length && this.chance(0.4) ? this.pick(same) : this.param([dim]);
    return { e: { k: "ref", id: p.id }, mag: 1, batched: false };
  }
  private paramScalar(): G {
    const same = this.fc.params.filter((p) => p.shape.length === 0);
    const p = same.length && this.chance(0.5) ? this.pick(same) : this.param([]);
    return { e: { k: "ref", id: p.id }, mag: 1, batched: false };
  }
  /**
   * A matrix [rows, cols]: an existing one of that shape (tied weights) or a new parameter, which in
   * a cell with heads may be block-diagonal. `dense`: not one with heads (the matrix-valued equations
   * M = 2*W, M = W .- s, which the language refuses or reads as the stored blocks for one with heads).
   */
  private matrix(rows: FDim, cols: FDim, dense = false): MatAvail {
    const same = this.mats.filter((m) => dimKey(m.rows) === dimKey(rows) && dimKey(m.cols) === dimKey(cols) && !(dense && m.heads));
    if (same.length && this.chance(0.5)) return this.pick(same);
    // every size is a multiple of the heads, so a dim divides when its constant does: [H, H], [2*H, D + H], [2, H] in 2 heads
    const h = this.heads;
    const heads = !dense && h && [rows, cols].every((d) => d.c % h === 0 && (d.terms.length > 0 || d.c > 0)) && this.chance(0.35) ? h : undefined;
    const p = this.param([rows, cols], heads);
    const m = { ref: { k: "ref", id: p.id } as Expr, rows, cols, mag: 1, ...(heads ? { heads } : {}) };
    this.mats.push(m);
    return m;
  }

  // ---------------------------------------------------------------- references
  private refOf(a: Avail | ScalarAvail): G {
    const key = JSON.stringify(a.ref);
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    return { e: structuredClone(a.ref), mag: a.mag, batched: a.batched, unit: "unit" in a ? a.unit : false };
  }
  /** Prefer values not read yet, so every input and state gets used. */
  private pickAvail<T extends { ref: Expr }>(xs: readonly T[]): T {
    return this.weighted(xs.map((a) => [this.reads.has(JSON.stringify(a.ref)) ? 1 : 3, () => a] as const));
  }
  private vecRefs(dim: FDim, nb: boolean, maxMag: number): Avail[] {
    return this.vecs.filter((a) => dimKey(a.dim) === dimKey(dim) && (a.batched || !nb) && a.mag <= maxMag);
  }

  // ---------------------------------------------------------------- vectors
  /** A vector of `dim`; batched (per example) when `nb`; magnitude about `maxMag` at most. */
  vec(dim: FDim, nb: boolean, depth: number, maxMag: number): G {
    const g = depth <= 0 || this.chance(0.2) ? this.vecLeaf(dim, nb, depth, maxMag) : this.vecComposite(dim, nb, depth, maxMag);
    if (g.mag <= maxMag) return g;
    return { e: call(this.pick(["tanh", "tanh", "sigmoid"]), g.e), mag: 1, batched: g.batched };
  }

  private vecLeaf(dim: FDim, nb: boolean, depth: number, maxMag: number): G {
    const refs = this.vecRefs(dim, nb, maxMag);
    const opts: [number, () => G][] = [];
    if (refs.length) opts.push([4, () => this.refOf(this.pickAvail(refs))]);
    if (!nb) opts.push([1.5, () => this.paramVec(dim)]);
    opts.push([depth < 0 ? 2 : 3, () => this.matvec(dim, nb, depth - 1, maxMag)]);
    if (depth >= 0) {
      const bigger = this.vecs.filter((a) => (a.batched || !nb) && dimMinus(a.dim, dim) && dimKey(a.dim) !== dimKey(dim));
      if (bigger.length) opts.push([1, () => { const a = this.pickAvail(bigger); const g = this.refOf(a); return { ...g, e: this.sliceOf(g.e, a.dim, dim) }; }]);
    }
    return this.weighted(opts);
  }

  /** slice(v, start, len) taking `len` out of a vector of `n` (from 0, or from what is left over). */
  private sliceOf(v: Expr, n: FDim, len: FDim): Expr {
    const rest = dimMinus(n, len)!;
    let start: FDim = { c: 0, terms: [] };
    if (this.chance(0.6)) {
      // any part of what is left over, e.g. H out of D + H
      const parts = [rest, ...rest.terms.map(([i, k]) => ({ c: 0, terms: [[i, k]] as [number, number][] })), ...(rest.c ? [{ c: rest.c, terms: [] }] : [])];
      start = this.pick(parts);
    }
    return { k: "slice", arg: v, start, len };
  }

  /** Ways to write `dim` as the sum of two non-empty dims (for concat). */
  private splits(dim: FDim): [FDim, FDim][] {
    const out: [FDim, FDim][] = [];
    for (const d of [...this.palette, ...this.vecs.map((a) => a.dim)]) {
      const rest = dimMinus(dim, d);
      if (rest && dimKey(rest) !== "0" && dimKey(d) !== "0" && rest.c >= 0) out.push([d, rest]);
    }
    return out;
  }

  /** A matrix product giving `dim`, written in one of the forms a user writes. */
  private matvec(dim: FDim, nb: boolean, depth: number, maxMag: number): G {
    // a matrix defined by an equation and not read yet, as M*v or M'*v (or transpose(M)*v)
    const fresh = depth < 0 ? [] : this.mats.filter((m) => this.eqMats.has(m) && !this.usedMats.has(m) && (dimKey(m.rows) === dimKey(dim) || dimKey(m.cols) === dimKey(dim)));
    if (fresh.length && this.chance(0.7)) {
      const m = this.pick(fresh);
      this.usedMats.add(m);
      const t = dimKey(m.rows) !== dimKey(dim) || (dimKey(m.cols) === dimKey(dim) && this.chance(0.4));
      const cols = t ? m.rows : m.cols, ref = structuredClone(m.ref);
      const v = this.vec(cols, nb, depth, 3);
      const me: Expr = !t ? ref : ref.k === "ref" && this.chance(0.75) ? { ...ref, primed: true } : call("transpose", ref);
      return { e: bin("*", me, v.e), mag: 0.8 * this.val(cols) * m.mag * v.mag + 0.1, batched: v.batched };
    }
    // the vector: an existing value (depth exhausted), a concat of two, or anything of some dim
    let v: G, cols: FDim;
    const usable = this.vecs.filter((a) => a.batched || !nb);
    if (depth < 0 || this.chance(0.35)) {
      const a = this.pickAvail(usable.length ? usable : this.vecs);
      v = this.refOf(a);
      cols = a.dim;
    } else if (this.chance(0.25) && usable.length >= 2) {
      const a = this.pickAvail(usable), b = this.pickAvail(this.vecs.filter((x) => x !== a));
      const ga = this.refOf(a), gb = this.refOf(b);
      v = { e: call("concat", ga.e, gb.e), mag: Math.max(ga.mag, gb.mag), batched: ga.batched || gb.batched };
      cols = dimPlus(a.dim, b.dim);
      if (this.val(cols) > 10) { v = ga; cols = a.dim; }
    } else {
      cols = this.chance(0.6) ? this.pick(usable.length ? usable : this.vecs).dim : this.dimPick();
      v = this.vec(cols, nb, depth, 3);
    }
    // a weight's transpose or a linear combination of matrices: W'*h, transpose(W)*h, (W - W')*h, (W + s*eye(H))*h
    if (this.chance(0.25)) {
      const [me, mag] = this.matExpr(dim, cols);
      return { e: bin("*", me, v.e), mag: 0.8 * this.val(cols) * mag * v.mag + 0.1, batched: v.batched };
    }
    // the matrix: a parameter (maybe tied), or a matrix-valued equation
    const m = this.matrix(dim, cols);
    const W = structuredClone(m.ref);
    const k = this.pick([2, 3, 0.5]);
    const plain = this.scalars.filter((s) => !s.batched && s.mag <= 4);
    const scale = plain.length && this.chance(0.3) ? this.refOf(this.pick(plain)) : null;
    const [e, factor] = this.weighted<[Expr, number]>([
      [6, () => [bin("*", W, v.e), 1]],
      [1, () => [bin("*", bin("*", num(k), W), v.e), k]],                       // 2*W*x
      [1, () => [bin("*", bin("*", W, v.e), num(k)), k]],                       // W*x*2
      [1, () => [bin("*", num(k), { k: "paren", a: bin("*", W, v.e) }), k]],   // 2*(U*h)
      [1, () => [bin("*", bin("/", W, num(k)), v.e), 1 / k]],                   // U/2*h
      [1, () => [bin("/", { k: "paren", a: bin("*", W, v.e) }, num(k)), 1 / k]], // (W*x)/3
      [m.heads ? 0 : 1.5, () => [bin("*", { k: "neg", a: W }, v.e), 1]],         // -U*h (-R*h is refused when R has heads: reported on #18)
      [scale ? 1 : 0, () => [bin("*", bin("*", scale!.e, W), v.e), scale!.mag]], // s*W*x
      [0.5, () => [bin("*", bin("*", this.paramScalar().e, W), v.e), 1]],        // a*W*x, a a scalar parameter
    ]);
    return { e, mag: 0.8 * this.val(cols) * m.mag * v.mag * factor + 0.1, batched: v.batched };
  }

  /** A size as the equations write it: N, 2*N, N + M, N + 1, 2. */
  private dimExpr(d: FDim): Expr {
    const parts: Expr[] = d.terms.filter(([, k]) => k !== 0).map(([id, k]) => (k === 1 ? { k: "ref", id } : bin("*", num(k), { k: "ref", id })));
    if (d.c !== 0 || parts.length === 0) parts.push(num(d.c));
    return parts.reduce((a, b) => bin("+", a, b));
  }

  /**
   * A matrix [rows, cols] written as an expression the language distributes over a vector: a
   * transpose (W' of a parameter [cols, rows], transpose(M) of any matrix), or a parenthesised sum
   * of 2–3 terms, each a matrix, a transpose or (square) eye(n), with a number or scalar coefficient
   * now and then. Its magnitude: the sum of its terms'.
   */
  private matExpr(rows: FDim, cols: FDim): [Expr, number] {
    const transposedOf = (): [Expr, number] => {
      const m = this.matrix(cols, rows);
      const ref = structuredClone(m.ref);
      // W' of a parameter or of a matrix defined by an equation (M', which orders M's equation first), or transpose(M)
      return [ref.k === "ref" && this.chance(0.75) ? { k: "ref", id: ref.id, primed: true } : call("transpose", ref), m.mag];
    };
    const square = dimKey(rows) === dimKey(cols);
    const term = (): [Expr, number] => this.weighted<[Expr, number]>([
      [2, () => { const m = this.matrix(rows, cols); return [structuredClone(m.ref), m.mag]; }],
      [2, transposedOf],
      [square ? 1.2 : 0, () => [call("eye", this.dimExpr(rows)), 1 / this.val(rows)]],
    ]);
    if (this.chance(0.35)) return transposedOf();
    const n = this.pick([2, 2, 3]);
    let [e, mag] = term();
    for (let i = 1; i < n; i++) {
      let [t, tm] = term();
      const plain = this.scalars.filter((s) => !s.batched && s.mag <= 2);
      if (this.chance(0.3)) { const k = this.pick(NUMBERS); t = bin("*", num(k), t); tm *= k; }
      else if (plain.length && this.chance(0.2)) { const s = this.refOf(this.pick(plain)); t = bin("*", s.e, t); tm *= s.mag; }
      e = bin(this.chance(0.5) ? "+" : "-", e, t);
      mag += tm;
    }
    return [{ k: "paren", a: e }, mag];
  }

  private vecComposite(dim: FDim, nb: boolean, depth: number, maxMag: number): G {
    const d = depth - 1;
    const bounded = (fn: string, unit: boolean): G => { const a = this.vec(dim, nb, d, 8); return { e: call(fn, a.e), mag: 1, batched: a.batched, unit }; };
    const acts = this.fc.activations;
    return this.weighted<G>([
      [2, () => bounded("sigmoid", true)],
      [2, () => bounded("tanh", false)],
      [0.6, () => bounded("hardSigmoid", true)],
      [0.6, () => bounded("hardSigmoidKeras", true)],
      [0.4, () => bounded("softsign", false)],
      [0.8, () => { const a = this.vec(dim, nb, d, maxMag); return { e: call("relu", a.e), mag: a.mag, batched: a.batched }; }],
      [0.6, () => { const a = this.vec(dim, nb, d, maxMag); return { e: call("abs", a.e), mag: a.mag, batched: a.batched }; }],
      [0.6, () => { const a = this.vec(dim, nb, d, maxMag - 0.7); return { e: call("softplus", a.e), mag: a.mag + 0.7, batched: a.batched }; }],
      [0.7, () => { const a = this.vec(dim, nb, d, Math.min(2, Math.log(Math.max(maxMag, 1.1)))); return { e: call("exp", a.e), mag: Math.exp(a.mag), batched: a.batched }; }],
      [0.6, () => { const a = this.positive({ dim }, nb, d); return { e: call("log", a.e), mag: Math.max(1.3, Math.log(a.mag)), batched: a.batched }; }],
      [0.6, () => { const a = this.positive({ dim }, nb, d); return { e: call("sqrt", a.e), mag: Math.sqrt(a.mag), batched: a.batched }; }],
      [0.6, () => { const a = this.vec(dim, nb, d, Math.sqrt(maxMag)); return { e: call("square", a.e), mag: a.mag ** 2, batched: a.batched }; }],
      [0.6, () => this.power({ dim }, nb, d, maxMag)],
      [acts.length ? 1 : 0, () => {
        const act = this.pick(acts), t = ACTIVATIONS.find((x) => x.expr === act.expr)!;
        const a = this.vec(dim, nb, d, t.bound ? 8 : Math.min(maxMag, 3));
        return { e: { k: "act", id: act.id, arg: a.e }, mag: t.bound ?? a.mag + 1, batched: a.batched };
      }],
      [4, () => this.sum(dim, nb, d, maxMag)],
      [1.5, () => { const [a, b] = this.two(dim, nb, d, Math.sqrt(maxMag)); return { e: bin(".*", a.e, b.e), mag: a.mag * b.mag, batched: a.batched || b.batched }; }],
      [0.8, () => { const a = this.vec(dim, nb, d, maxMag / 2), b = this.positive({ dim }, false, d); return { e: bin("./", a.e, b.e), mag: a.mag * 2, batched: a.batched || b.batched }; }],
      [1.5, () => this.scaled(dim, nb, d, maxMag)],
      [0.7, () => { const a = this.vec(dim, nb, d, maxMag); return { e: { k: "neg", a: a.e }, mag: a.mag, batched: a.batched }; }],
      [0.8, () => { const [a, b] = this.two(dim, nb, d, maxMag); return { e: call(this.pick(["max", "min"]), a.e, b.e), mag: Math.max(a.mag, b.mag), batched: a.batched || b.batched }; }],
      [0.6, () => this.clip(dim, nb, d, maxMag)],
      [0.4, () => {
        // clip between vectors that never cross: lo = -1 - a^2, hi = 1 + b^2
        const a = this.vec(dim, nb, d, maxMag), lo = this.vec(dim, false, d - 1, 2), hi = this.vec(dim, false, d - 1, 2);
        return { e: call("clip", a.e, bin("-", { k: "neg", a: num(1) }, call("square", lo.e)), bin("+", num(1), call("square", hi.e))), mag: a.mag, batched: a.batched || lo.batched || hi.batched };
      }],
      [0.5, () => {
        // max or min against a scalar: relu-like, or a cap
        const a = this.vec(dim, nb, d, maxMag), k = this.scalar(false, d, 1);
        const [x, y] = this.chance(0.5) ? [a.e, k.e] : [k.e, a.e];
        return { e: call(this.pick(["max", "min"]), x, y), mag: Math.max(a.mag, k.mag), batched: a.batched || k.batched };
      }],
      [0.5, () => {
        // layer norm: (a - mean(a)) ./ sqrt(var(a) + eps), eps a constant or number not too small
        const a = this.vec(dim, nb, d, 3);
        const epsC = this.fc.constants.filter((c) => c.value >= 0.1);
        const eps: Expr = epsC.length && this.chance(0.5) ? { k: "ref", id: this.pick(epsC).id } : num(this.pick([0.1, 0.5, 1]));
        const a2 = structuredClone(a.e), a3 = structuredClone(a.e);
        return { e: bin("./", { k: "paren", a: bin("-", a.e, call("mean", a2)) }, call("sqrt", bin("+", call("var", a3), eps))), mag: 3 * a.mag / 0.3, batched: a.batched };
      }],
      [1, () => {
        const rest = this.pick([...this.palette, { c: 1, terms: [] }]);
        const n = dimPlus(dim, rest);
        const a = this.vec(n, nb, d, maxMag);
        return { ...a, e: this.sliceOf(a.e, n, dim) };
      }],
      [this.splits(dim).length ? 1 : 0, () => {
        const [p, q] = this.pick(this.splits(dim));
        const first = this.chance(0.5);
        const a = this.vec(p, nb && first, d, maxMag), b = this.vec(q, nb && !first, d, maxMag);
        return { e: call("concat", a.e, b.e), mag: Math.max(a.mag, b.mag), batched: a.batched || b.batched };
      }],
      [2.5, () => this.matvec(dim, nb, d, maxMag)],
      [0.3, () => { const a = this.vec(dim, nb, d, maxMag); return { ...a, e: { k: "paren", a: a.e } }; }],
    ]);
  }

  /** Two different operands; one carries the batch requirement. */
  private two(dim: FDim, nb: boolean, d: number, maxMag: number): [G, G] {
    const first = this.chance(0.5);
    const a = this.vec(dim, nb && first, d, maxMag);
    let b = this.vec(dim, nb && !first, d, maxMag);
    for (let k = 0; k < 3 && JSON.stringify(a.e) === JSON.stringify(b.e); k++) b = this.vec(dim, nb && !first, d, maxMag);
    return [a, b];
  }

  /** A sum of 2–3 terms, with coefficients, signs, and sometimes a term times zero. */
  private sum(dim: FDim, nb: boolean, d: number, maxMag: number): G {
    const n = this.pick([2, 2, 3]);
    const carrier = this.int(0, n - 1);
    const terms = Array.from({ length: n }, (_v, i) => this.vec(dim, nb && i === carrier, d, maxMag / n));
    let e = terms[0]!.e;
    let mag = terms[0]!.mag;
    for (const t of terms.slice(1)) {
      const coeffed = this.chance(0.25) ? (this.chance(0.5) ? bin("*", num(this.pick(NUMBERS)), t.e) : bin("/", t.e, num(this.pick([2, 3, 4])))) : t.e;
      e = bin(this.chance(0.65) ? "+" : "-", e, coeffed);
      mag += t.mag * 3;
    }
    if (this.chance(0.12)) {
      // a term multiplied by zero: its value is dropped, its backward must still be right
      const z = this.vec(dim, false, d, 4);
      e = this.chance(0.5) ? bin("-", e, bin(".*", num(0), z.e)) : bin("+", bin(".*", num(0), z.e), e);
    }
    return { e, mag: Math.min(mag, terms.reduce((s, t) => s + t.mag, 0) * 3), batched: terms.some((t) => t.batched) };
  }

  /** A vector times or over a scalar: 2*a, a*s, a .* s, a / 3, a / (2 + sigmoid(s)), a / H. */
  private scaled(dim: FDim, nb: boolean, d: number, maxMag: number): G {
    const a = this.vec(dim, nb, d, maxMag / 2);
    const s = this.scalar(false, d, 2);
    return this.weighted<G>([
      [1, () => ({ e: bin("*", s.e, a.e), mag: a.mag * s.mag, batched: a.batched || s.batched })],
      [1, () => ({ e: bin("*", a.e, s.e), mag: a.mag * s.mag, batched: a.batched || s.batched })],
      [1, () => ({ e: bin(".*", a.e, s.e), mag: a.mag * s.mag, batched: a.batched || s.batched })],
      [1, () => ({ e: bin("/", a.e, num(this.pick([2, 3, 4]))), mag: a.mag, batched: a.batched })],
      [1, () => { const q = this.positive(null, false, d); return { e: bin("/", a.e, q.e), mag: a.mag * 3, batched: a.batched || q.batched }; }],
      [1, () => { const bs = this.scalar(true, d, 2); return { e: bin(".*", a.e, bs.e), mag: a.mag * bs.mag, batched: true }; }],
      // .+ and .- are + and - for a vector and a scalar
      [0.6, () => ({ e: bin(this.pick([".+", ".-"] as const), a.e, s.e), mag: a.mag + s.mag, batched: a.batched || s.batched })],
      // a vector of 1 (a size-1 input, or a value of size 1) beside a longer vector is the scalar it holds
      ...this.vecs.filter((t) => dimKey(t.dim) === "1" && t.mag <= 2).slice(0, 1).map((): [number, () => G] => [4, () => {
        const t = this.refOf(this.pick(this.vecs.filter((x) => dimKey(x.dim) === "1" && x.mag <= 2)));
        return this.weighted<G>([
          [2, () => ({ e: this.chance(0.5) ? bin(".*", a.e, t.e) : bin(".*", t.e, a.e), mag: a.mag * t.mag, batched: true })],
          [1, () => ({ e: bin(this.pick(["+", "-"] as const), a.e, t.e), mag: a.mag + t.mag, batched: true })],
          [1, () => ({ e: bin("*", t.e, a.e), mag: a.mag * t.mag, batched: true })],
          [1, () => ({ e: call(this.pick(["max", "min"]), a.e, t.e), mag: Math.max(a.mag, t.mag), batched: true })],
        ]);
      }]),
      [0.4, () => ({ e: bin(".+", s.e, a.e), mag: a.mag + s.mag, batched: a.batched || s.batched })],
    ]);
  }

  private clip(dim: FDim, nb: boolean, d: number, maxMag: number): G {
    const a = this.vec(dim, nb, d, maxMag);
    const negC = this.fc.constants.filter((c) => c.value < 0), posC = this.fc.constants.filter((c) => c.value > 0 && c.value <= 2);
    const lo: Expr = negC.length && this.chance(0.3) ? { k: "ref", id: this.pick(negC).id } : this.chance(0.5) ? { k: "neg", a: num(this.pick([0.5, 1])) } : num(-0.5);
    const hi: Expr = posC.length && this.chance(0.3) ? { k: "ref", id: this.pick(posC).id } : num(this.pick([0.5, 1]));
    return { e: call("clip", a.e, lo, hi), mag: 2, batched: a.batched };
  }

  /** a^p: a cube of something small, or a power of something bounded away from zero. */
  private power(shape: { dim: FDim } | null, nb: boolean, d: number, maxMag: number): G {
    if (this.chance(0.35)) {
      const a = shape ? this.vec(shape.dim, nb, d, Math.cbrt(maxMag)) : this.scalar(nb, d, Math.cbrt(maxMag));
      return { e: { k: "pow", a: a.e, p: 3 }, mag: a.mag ** 3, batched: a.batched };
    }
    const p = this.pick([0.5, 1.5, -1, -0.5, 2, 1, 0, 3, -2, 2.5]);
    const a = this.positive(shape, nb, d);
    return { e: { k: "pow", a: a.e, p }, mag: p > 0 ? a.mag ** p : 3, batched: a.batched };
  }

  /** Something positive and at least about 1/3, of a vector's or a scalar's shape: safe for log, sqrt and division. */
  private positive(shape: { dim: FDim } | null, nb: boolean, d: number): G {
    const inner = (maxMag: number) => (shape ? this.vec(shape.dim, nb, d, maxMag) : this.scalar(nb, d, maxMag));
    const posScalars = this.scalars.filter((s) => s.positive && s.mag >= 0.25 && (s.batched || !nb));
    return this.weighted<G>([
      [2, () => { const a = inner(3); return { e: bin("+", num(1), call("square", a.e)), mag: 1 + a.mag ** 2, batched: a.batched }; }],
      [1.5, () => { const a = inner(8); return { e: bin("+", num(2), call("sigmoid", a.e)), mag: 3, batched: a.batched }; }],
      [1, () => { const a = inner(8); return { e: bin("+", num(2), call("tanh", a.e)), mag: 3, batched: a.batched }; }],
      [1, () => { const a = inner(3); return { e: bin("+", call("softplus", a.e), num(1)), mag: a.mag + 2, batched: a.batched }; }],
      [1, () => { const a = inner(3); return { e: call("sqrt", bin("+", num(1), call("square", a.e))), mag: a.mag + 1, batched: a.batched }; }],
      [0.7, () => { const a = inner(1); return { e: call("exp", a.e), mag: Math.exp(a.mag), batched: a.batched }; }],
      [0.5, () => { const a = inner(3); return { e: bin("+", num(1), call("abs", a.e)), mag: a.mag + 1, batched: a.batched }; }],
      [!shape && !nb && posScalars.length ? 1 : 0, () => this.refOf(this.pick(posScalars))],
    ]);
  }

  // ---------------------------------------------------------------- scalars
  /** A scalar: a number, constant, size, scalar parameter, or (per example) a sum, mean or variance of a vector. */
  scalar(nb: boolean, depth: number, maxMag: number): G {
    const g = this.scalarRaw(nb, depth, maxMag);
    if (g.mag <= maxMag) return g;
    return { e: call("tanh", g.e), mag: 1, batched: g.batched };
  }
  private scalarRaw(nb: boolean, depth: number, maxMag: number): G {
    const d = depth - 1;
    const reduce = (fn: "sum" | "mean" | "var"): G => {
      const dim = this.chance(0.6) ? this.pick(this.vecs).dim : this.dimPick();
      const a = this.vec(dim, true, Math.min(d, 1), fn === "sum" ? 2 : 2);
      const mag = fn === "sum" ? a.mag * this.val(dim) : fn === "mean" ? a.mag : a.mag ** 2;
      return { e: call(fn, a.e), mag, batched: true };
    };
    const batchedAvail = this.scalars.filter((s) => s.batched && s.mag <= maxMag);
    const opts: [number, () => G][] = [
      [1, () => reduce("sum")], [1, () => reduce("mean")], [0.7, () => reduce("var")],
      [batchedAvail.length ? 1.5 : 0, () => this.refOf(this.pick(batchedAvail))],
    ];
    if (!nb) {
      const plain = this.scalars.filter((s) => !s.batched && s.mag <= maxMag);
      opts.push([2, () => { const v = this.pick(NUMBERS); return { e: num(v), mag: v, batched: false }; }]);
      opts.push([plain.length ? 2 : 0, () => this.refOf(this.pick(plain))]);
      opts.push([1, () => this.paramScalar()]);
      opts.push([0.6, () => { const c = this.constant(this.pick([0.5, 1.5, 2, 0.1, -0.5])); return { e: { k: "ref", id: c.id }, mag: Math.abs(c.value), batched: false }; }]);
    }
    if (d >= 0) {
      opts.push([0.7, () => { const a = this.scalar(nb, d, 8); return { e: call(this.pick(["sigmoid", "tanh", "hardSigmoid", "hardSigmoidKeras"]), a.e), mag: 1, batched: a.batched }; }]);
      opts.push([0.5, () => { const a = this.scalar(nb, d, Math.min(maxMag, 2)); const fn = this.pick(["relu", "abs", "softplus", "exp", "square"]); return { e: call(fn, a.e), mag: fn === "exp" ? Math.exp(a.mag) : fn === "square" ? a.mag ** 2 : a.mag + 1, batched: a.batched }; }]);
      opts.push([this.fc.activations.length ? 0.4 : 0, () => { const act = this.pick(this.fc.activations); const a = this.scalar(nb, d, 2); return { e: { k: "act", id: act.id, arg: a.e }, mag: 3, batched: a.batched }; }]);
      opts.push([0.3, () => { const a = this.scalar(nb, d, maxMag), b = this.positive(null, false, d); return { e: bin("/", a.e, b.e), mag: a.mag * 3, batched: a.batched || b.batched }; }]);
      opts.push([0.5, () => { const a = this.scalar(nb, d, maxMag / 2), b = this.scalar(false, d, maxMag / 2); return { e: bin(this.pick(["+", "-"]), a.e, b.e), mag: a.mag + b.mag, batched: a.batched }; }]);
      opts.push([0.4, () => { const a = this.scalar(nb, d, Math.sqrt(maxMag)), b = this.scalar(false, d, Math.sqrt(maxMag)); return { e: bin("*", a.e, b.e), mag: a.mag * b.mag, batched: a.batched }; }]);
      opts.push([0.3, () => this.power(null, nb, d, maxMag)]);
    }
    return this.weighted(opts);
  }

  // ---------------------------------------------------------------- equations
  private define(target: { kind: "eq" | "state" | "output"; id: number }, g: G): void {
    const comment = this.chance(0.06) ? this.pick(["# a comment # with = signs", "// a comment: h' = x", "#"]) : undefined;
    this.fc.equations.push({ target, rhs: g.e, ...(comment ? { comment } : {}), ...(this.chance(0.1) ? { tight: true } : {}) });
  }

  private intermediate(): void {
    const d = this.decl("equation");
    this.fc.eqNames.push(d);
    const ref: Expr = { k: "ref", id: d.id };
    this.weighted<void>([
      [7, () => {
        const dim = this.chance(0.6) ? this.pick(this.vecs).dim : this.dimPick();
        const gate = this.chance(0.3);
        let g = this.vec(dim, true, this.int(1, 3), 4);
        if (gate) g = { e: call("sigmoid", g.e), mag: 1, batched: true, unit: true };
        this.define({ kind: "eq", id: d.id }, g);
        this.vecs.push({ ref, dim, mag: g.mag, batched: true, unit: !!g.unit });
      }],
      [0.7, () => {
        // shared: the same for every example (reads only parameters)
        const dim = this.dimPick();
        const g = this.vec(dim, false, 1, 3);
        this.define({ kind: "eq", id: d.id }, g);
        this.vecs.push({ ref, dim, mag: g.mag, batched: g.batched, unit: !!g.unit });
      }],
      [1.5, () => {
        const g = this.scalar(true, 2, 3);
        this.define({ kind: "eq", id: d.id }, g);
        this.scalars.push({ ref, mag: g.mag, batched: true, positive: false });
      }],
      [1, () => {
        // a matrix-valued equation, then used in products: M = 2*W, M = W + V, M = -W, M = a*W
        const rows = this.dimPick(), cols = this.pick(this.vecs).dim;
        const W = this.matrix(rows, cols, true);
        const [e, mag] = this.weighted<[Expr, number]>([
          [1, () => [bin("*", num(2), structuredClone(W.ref)), 2]],
          [1, () => [bin("+", structuredClone(W.ref), { k: "ref", id: this.param([rows, cols]).id }), 2]],
          [1, () => [{ k: "neg", a: structuredClone(W.ref) }, 1]],
          [1, () => [bin("*", this.paramScalar().e, structuredClone(W.ref)), 1]],
          // every entry: M = W .- s, M = 0.5 .+ W
          [1.5, () => { const sc = this.paramScalar(); return [bin(".-", structuredClone(W.ref), sc.e), 2]; }],
          [1.2, () => [bin(".+", num(this.pick([0.5, 0.25])), structuredClone(W.ref)), 1.5]],
        ]);
        this.define({ kind: "eq", id: d.id }, { e, mag, batched: false });
        const m = { ref, rows, cols, mag };
        this.mats.push(m);
        this.eqMats.add(m);
      }],
    ]);
  }

  private stateUpdate(s: VecDecl): void {
    const dim = s.dim, old = this.vecs.find((a) => a.ref.k === "ref" && a.ref.id === s.id && !a.ref.primed)!;
    const depth = this.int(1, 3);
    const bounded = (): G => {
      const refs = this.vecs.filter((a) => a.batched && dimKey(a.dim) === dimKey(dim) && a.mag <= 1.6 && a.ref !== old.ref);
      if (refs.length && this.chance(0.4)) return this.refOf(this.pick(refs));
      return { e: call("tanh", this.vec(dim, true, depth, 8).e), mag: 1, batched: true };
    };
    const gate = (): G => {
      const units = this.vecs.filter((a) => a.unit && a.batched && dimKey(a.dim) === dimKey(dim));
      if (units.length && this.chance(0.6)) return this.refOf(this.pick(units));
      return { e: call(this.pick(["sigmoid", "sigmoid", "hardSigmoid"]), this.vec(dim, true, depth, 8).e), mag: 1, batched: true, unit: true };
    };
    const boundedActs = this.fc.activations.filter((a) => ACTIVATIONS.find((t) => t.expr === a.expr)!.bound !== null);
    const g = this.weighted<G>([
      [3, () => {
        const a = this.vec(dim, true, depth, 8);
        const fn = this.pick(["tanh", "tanh", "sigmoid", "hardSigmoid", "hardSigmoidKeras", "clip", ...(boundedActs.length ? ["act"] : [])]);
        const e: Expr = fn === "clip" ? call("clip", a.e, { k: "neg", a: num(1) }, num(1)) : fn === "act" ? { k: "act", id: this.pick(boundedActs).id, arg: a.e } : call(fn, a.e);
        return { e, mag: 2, batched: true };
      }],
      [2, () => {
        // gated mix: z .* h + (1 - z) .* n, in one of its written forms
        const z = gate(), n = bounded(), h = this.refOf(old);
        const e = this.weighted<Expr>([
          [1, () => bin("+", bin(".*", z.e, h.e), bin(".*", { k: "paren", a: bin("-", num(1), structuredClone(z.e)) }, n.e))],
          [1, () => bin("+", bin(".*", { k: "paren", a: bin("-", num(1), z.e) }, n.e), bin(".*", structuredClone(z.e), h.e))],
          [1, () => bin("+", bin(".*", z.e, { k: "paren", a: bin("-", h.e, n.e) }), structuredClone(n.e))],
        ]);
        return { e, mag: 1.5, batched: true };
      }],
      [1, () => { const o = gate(), c = this.vec(dim, true, 0, 4); return { e: bin(".*", o.e, call("tanh", c.e)), mag: 1, batched: true }; }],
      [0.15, () => this.refOf(old)],
      [0.3, () => {
        // the same update as another state of this size (one node, two states), or an input as it is
        const twins = this.fc.equations.filter((q) => q.target.kind === "state" && dimKey(this.dimOfTarget(q.target)) === dimKey(dim));
        if (twins.length) return { e: structuredClone(this.pick(twins).rhs), mag: 1.5, batched: true };
        const xs = this.vecs.filter((a) => a.batched && a.mag <= 1.5 && dimKey(a.dim) === dimKey(dim) && a.ref !== old.ref);
        return xs.length ? this.refOf(this.pick(xs)) : this.refOf(old);
      }],
      [0.5, () => { const n = bounded(); return { e: bin("+", bin("*", num(0.5), this.refOf(old).e), bin("*", num(0.5), n.e)), mag: 1.5, batched: true }; }],
      [0.5, () => { const n = bounded(); return { e: bin("+", this.refOf(old).e, bin("*", num(0.1), n.e)), mag: 1.5, batched: true }; }],
    ]);
    this.define({ kind: "state", id: s.id }, g);
    this.vecs.push({ ref: { k: "ref", id: s.id, primed: true }, dim, mag: 1.5, batched: true, unit: false });
  }

  private output(o: VecDecl): void {
    // sometimes the very value of something else (y = h', y = x, y = z) or the same expression as
    // another equation: one IR node then stands for two results
    const same = this.vecs.filter((a) => a.batched && dimKey(a.dim) === dimKey(o.dim));
    const twins = this.fc.equations.filter((q) => q.target.kind !== "eq" && dimKey(this.dimOfTarget(q.target)) === dimKey(o.dim));
    const g = this.weighted<G>([
      [8, () => this.vec(o.dim, true, this.int(1, 3), 4)],
      [same.length ? 1.5 : 0, () => this.refOf(this.pick(same))],
      [twins.length ? 1 : 0, () => ({ e: structuredClone(this.pick(twins).rhs), mag: 4, batched: true })],
    ]);
    this.define({ kind: "output", id: o.id }, g);
    this.vecs.push({ ref: { k: "ref", id: o.id }, dim: o.dim, mag: g.mag, batched: true, unit: !!g.unit });
  }

  /** Some numbers written another way mathjs reads the same: .5, 1e-1, 2.0. */
  private numberTexts(): void {
    const alt = (v: number) => (v === 0.5 ? ".5" : v === 0.1 ? "1e-1" : v === 0.25 ? "2.5e-1" : Number.isInteger(v) ? `${v}.0` : undefined);
    const walk = (e: Expr): void => {
      if (e.k === "num") { const t = alt(e.v); if (t && e.v >= 0 && this.chance(0.15)) e.text = t; return; }
      if (e.k === "bin") { walk(e.a); walk(e.b); } else if (e.k === "call") e.args.forEach(walk);
      else if (e.k === "act" || e.k === "slice") walk(e.arg); else if (e.k !== "ref") walk(e.a);
    };
    for (const q of this.fc.equations) walk(q.rhs);
  }

  /** Under D = H, a declaration, a slice or an eye(n) writes D for H now and then: the language unifies them. */
  private writeConstrained(): void {
    for (const c of this.fc.constraints ?? []) {
      const swap = (d: FDim) => { if (this.chance(0.5)) for (const t of d.terms) if (t[0] === c.as) t[0] = c.size; };
      for (const v of [...this.fc.inputs, ...this.fc.states, ...this.fc.outputs]) swap(v.dim);
      for (const p of this.fc.params) p.shape.forEach(swap);
      const walk = (e: Expr, inEye: boolean): void => {
        if (e.k === "ref") { if (inEye && e.id === c.as && this.chance(0.5)) e.id = c.size; return; }
        if (e.k === "num") return;
        if (e.k === "slice") { swap(e.start); swap(e.len); walk(e.arg, false); return; }
        if (e.k === "bin") { walk(e.a, inEye); walk(e.b, inEye); } else if (e.k === "call") e.args.forEach((x) => walk(x, inEye || e.fn === "eye"));
        else if (e.k === "act") walk(e.arg, false); else walk(e.a, inEye);
      };
      for (const q of this.fc.equations) walk(q.rhs, false);
    }
  }

  private dimOfTarget(t: { kind: "eq" | "state" | "output"; id: number }): FDim {
    const d = (t.kind === "state" ? this.fc.states : this.fc.outputs).find((x) => x.id === t.id)!;
    return d.dim;
  }

  build(): FuzzCell {
    this.makeDeclarations();
    const jobs: (() => void)[] = [
      ...Array.from({ length: this.weighted([[0.25, () => 0], [0.3, () => 1], [0.25, () => 2], [0.12, () => 3], [0.08, () => 4]] as const) }, () => () => this.intermediate()),
      ...this.fc.states.map((s) => () => this.stateUpdate(s)),
      ...this.fc.outputs.map((o) => () => this.output(o)),
    ];
    // now and then the intermediates first, so the products of the updates read the matrices they define
    const first = this.chance(0.4) ? new Set(jobs.slice(0, jobs.length - this.fc.states.length - this.fc.outputs.length)) : new Set();
    const ordered = this.shuffle(jobs);
    for (const job of [...ordered.filter((j) => first.has(j)), ...ordered.filter((j) => !first.has(j))]) job();
    if (this.chance(0.5)) this.shuffle(this.fc.equations);
    if (this.chance(0.2)) this.fc.equationsAsString = true;
    this.numberTexts();
    this.writeConstrained();
    return this.fc;
  }
}

/** Cell `index` of the run seeded `seed`. */
export function generateCell(seed: number, index: number): FuzzCell {
  return new Gen(seed, index).build();
}

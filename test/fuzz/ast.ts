// The fuzzer's own small AST of a cell. The generator (grammar.ts) builds it, the minimizer
// (minimize.ts) shrinks it, and `toSpec` prints it as a CellSpec: declarations with names, and
// equations as text. Every reference is by declaration id, so renaming a name is one assignment.
// Names may be anything a user could type ("constructor", "__proto__"), so nothing here keys a
// plain object by a name: Maps while working, Object.fromEntries when the spec is written.
import type { CellSpec, Init } from "../../src/cell.ts";

export type Role = "size" | "input" | "state" | "output" | "param" | "constant" | "equation" | "activation";

export interface Decl {
  readonly id: number;
  name: string;
  readonly role: Role;
  /** Drawn from the hostile vocabulary (names.ts): a refusal of it is recorded, not a failure. */
  hostile: boolean;
}

/** A size expression: c + Σ coefficient·size, printed with its terms in the order given. */
export interface FDim {
  c: number;
  /** [size id, coefficient], coefficients positive. */
  terms: [number, number][];
}

export interface SizeDecl extends Decl { value: number }
/** `scalar`: an input declared as a scalar per step (`dt: []`), read as the scalar it holds (`dim` is 1). */
export interface VecDecl extends Decl { dim: FDim; scalar?: boolean }
/** A size equality `size = as` of the spec (`"D = H"`): `size` is determined, and written wherever `as` may be. */
export interface Constraint { size: number; as: number }
/** `heads`: a matrix declared block-diagonal in that many heads (`{ shape: ["H", "H"], heads: 4 }`, stored [H, H/4]). */
export interface ParamDecl extends Decl { shape: FDim[]; init?: Init; heads?: number }
export interface ConstDecl extends Decl { value: number }
/** A user activation: `expr` in x, where `{k}` stands for the name of constant `uses[k]`. */
export interface ActDecl extends Decl { expr: string; uses: number[] }

/** `.+` and `.-` are + and - that also put a scalar on every entry of a matrix (`W .- s`). */
export type BinOp = "+" | "-" | ".+" | ".-" | ".*" | "./" | "*" | "/";
export type Expr =
  /** `primed`: h' (a state's next value), or W' (a matrix parameter's transpose). */
  | { k: "ref"; id: number; primed?: boolean }
  /** `text`: how the number is written, when not plainly (".5", "1e-1", "2.0"). */
  | { k: "num"; v: number; text?: string }
  | { k: "call"; fn: string; args: Expr[] }
  | { k: "act"; id: number; arg: Expr }
  | { k: "slice"; arg: Expr; start: FDim; len: FDim }
  | { k: "bin"; op: BinOp; a: Expr; b: Expr }
  | { k: "neg"; a: Expr }
  | { k: "pow"; a: Expr; p: number }
  | { k: "paren"; a: Expr };

export interface Equation {
  /** An intermediate (`z = …`, id of an equation-name declaration), a state update (`h' = …`) or an output (`y = …`). */
  target: { kind: "eq" | "state" | "output"; id: number };
  rhs: Expr;
  /** A trailing comment, with its marker: "# …" or "// …". */
  comment?: string;
  /** Written without spaces around "=". */
  tight?: boolean;
}

export interface FuzzCell {
  name: string;
  /** Where it came from, for the doc line: the run's seed and the cell's index. */
  origin: string;
  sizesAsList: boolean;
  /** The equations as one string of lines, rather than a list. */
  equationsAsString?: boolean;
  sizes: SizeDecl[];
  inputs: VecDecl[];
  states: VecDecl[];
  outputs: VecDecl[];
  params: ParamDecl[];
  constants: ConstDecl[];
  activations: ActDecl[];
  eqNames: Decl[];
  /** Size equalities: a dim may write the determined size in place of the one it equals. */
  constraints?: Constraint[];
  /** In the order printed (not necessarily the order of evaluation). */
  equations: Equation[];
  /** The case the checks run on: randomCase(cell, { B, T, seed }). */
  B: number;
  T: number;
  caseSeed: number;
}

export const allDecls = (fc: FuzzCell): Decl[] =>
  [...fc.sizes, ...fc.inputs, ...fc.states, ...fc.outputs, ...fc.params, ...fc.constants, ...fc.activations, ...fc.eqNames];

export function declMap(fc: FuzzCell): Map<number, Decl> {
  return new Map(allDecls(fc).map((d) => [d.id, d]));
}

// ------------------------------------------------------------------------------ dims

export const dimOfSize = (id: number): FDim => ({ c: 0, terms: [[id, 1]] });
export const dimConstant = (c: number): FDim => ({ c, terms: [] });

export function dimPlus(a: FDim, b: FDim): FDim {
  const terms: [number, number][] = a.terms.map(([i, k]) => [i, k]);
  for (const [i, k] of b.terms) {
    const t = terms.find(([j]) => j === i);
    if (t) t[1] += k;
    else terms.push([i, k]);
  }
  return { c: a.c + b.c, terms };
}

/** a - b when every coefficient stays non-negative, else undefined. */
export function dimMinus(a: FDim, b: FDim): FDim | undefined {
  const terms: [number, number][] = a.terms.map(([i, k]) => [i, k]);
  for (const [i, k] of b.terms) {
    const t = terms.find(([j]) => j === i);
    if (!t || t[1] < k) return undefined;
    t[1] -= k;
  }
  if (a.c < b.c) return undefined;
  return { c: a.c - b.c, terms: terms.filter(([, k]) => k !== 0) };
}

/** Canonical key, independent of term order and of names: equal keys are equal dims. */
export const dimKey = (d: FDim): string =>
  [...d.terms.filter(([, k]) => k !== 0)].sort(([a], [b]) => a - b).map(([i, k]) => `${k}*#${i}`).concat(d.c ? [String(d.c)] : []).join("+") || "0";
export const dimIsZero = (d: FDim): boolean => dimKey(d) === "0";
export const dimValueOf = (d: FDim, sizes: readonly SizeDecl[]): number =>
  d.terms.reduce((s, [i, k]) => s + k * (sizes.find((z) => z.id === i)?.value ?? NaN), d.c);
/** The dim in the free sizes: under D = H, D is written H (so [D] and [H] are one shape, as in the language). */
export function dimUnder(d: FDim, constraints: readonly Constraint[] | undefined): FDim {
  if (!constraints?.length) return d;
  return d.terms.reduce<FDim>((acc, [i, k]) => {
    const c = constraints.find((x) => x.size === i);
    return dimPlus(acc, { c: 0, terms: [[c ? c.as : i, k]] });
  }, { c: d.c, terms: [] });
}

export function printDim(d: FDim, names: ReadonlyMap<number, Decl>): string {
  const parts = d.terms.filter(([, k]) => k !== 0).map(([i, k]) => (k === 1 ? names.get(i)!.name : `${k}*${names.get(i)!.name}`));
  if (d.c !== 0 || parts.length === 0) parts.push(String(d.c));
  return parts.join(" + ");
}

// ------------------------------------------------------------------------------ types

export type FType =
  | { s: "scalar"; batched: boolean }
  | { s: "vec"; dim: FDim; batched: boolean }
  | { s: "mat"; rows: FDim; cols: FDim };

export const typeKey = (t: FType): string =>
  t.s === "scalar" ? `s${t.batched ? "b" : ""}` : t.s === "vec" ? `v${t.batched ? "b" : ""}:${dimKey(t.dim)}` : `m:${dimKey(t.rows)}|${dimKey(t.cols)}`;
/** Same shape (batching aside). */
export const sameShape = (a: FType, b: FType): boolean =>
  a.s === b.s && (a.s !== "vec" || dimKey(a.dim) === dimKey((b as typeof a).dim)) && (a.s !== "mat" || typeKey(a) === typeKey(b));

/** The type of every expression of a cell, by the language's rules (undefined: the cell does not type). */
export function typer(fc: FuzzCell): (e: Expr) => FType | undefined {
  const decls = declMap(fc);
  const u = (d: FDim) => dimUnder(d, fc.constraints);
  /** A vector of 1 beside a vector of another size is the scalar it holds (the language's unitsAsScalars). */
  const units = (ts: (FType | undefined)[]): (FType | undefined)[] => {
    const unit = (t: FType | undefined) => t?.s === "vec" && dimKey(t.dim) === "1";
    if (ts.some((t) => t?.s === "mat") || !ts.some(unit) || !ts.some((t) => t?.s === "vec" && !unit(t))) return ts;
    return ts.map((t) => (unit(t) ? { s: "scalar", batched: (t as { batched: boolean }).batched } : t));
  };
  const eqOf = new Map<number, Equation>();
  for (const eq of fc.equations) if (eq.target.kind !== "state") eqOf.set(eq.target.id, eq);
  const memo = new Map<number, FType | undefined>();
  const visiting = new Set<number>();
  const bcast = (a: FType | undefined, b: FType | undefined): FType | undefined => {
    if (!a || !b) return undefined;
    if (a.s === "scalar" && b.s === "scalar") return { s: "scalar", batched: a.batched || b.batched };
    if (a.s === "scalar") return b.s === "vec" ? { ...b, batched: a.batched || b.batched } : a.batched ? undefined : b;
    if (b.s === "scalar") return a.s === "vec" ? { ...a, batched: a.batched || b.batched } : b.batched ? undefined : a;
    if (a.s !== b.s || typeKey({ ...a, batched: false } as FType) !== typeKey({ ...b, batched: false } as FType)) return undefined;
    return a.s === "vec" && b.s === "vec" ? { ...a, batched: a.batched || b.batched } : a;
  };
  const of = (e: Expr): FType | undefined => {
    switch (e.k) {
      case "num": return { s: "scalar", batched: false };
      case "ref": {
        const d = decls.get(e.id);
        if (!d) return undefined;
        switch (d.role) {
          case "input": return (d as VecDecl).scalar ? { s: "scalar", batched: true } : { s: "vec", dim: u((d as VecDecl).dim), batched: true };
          case "state": case "output": return { s: "vec", dim: u((d as VecDecl).dim), batched: true };
          case "constant": return { s: "scalar", batched: false };
          case "size": return { s: "scalar", batched: false };
          case "param": {
            const sh = (d as ParamDecl).shape.map(u);
            return sh.length === 0 ? { s: "scalar", batched: false } : sh.length === 1 ? { s: "vec", dim: sh[0]!, batched: false }
              : e.primed ? { s: "mat", rows: sh[1]!, cols: sh[0]! } : { s: "mat", rows: sh[0]!, cols: sh[1]! };
          }
          case "equation": {
            if (memo.has(e.id)) return memo.get(e.id);
            if (visiting.has(e.id)) return undefined;
            visiting.add(e.id);
            const eq = eqOf.get(e.id);
            const t = eq ? of(eq.rhs) : undefined;
            visiting.delete(e.id);
            memo.set(e.id, t);
            return t;
          }
          default: return undefined;
        }
      }
      case "paren": case "neg": case "pow": return of(e.a);
      case "act": return of(e.arg);
      case "call": {
        if (e.fn === "eye") {
          const n = e.args[0]!, d = n.k === "ref" && decls.get(n.id)?.role === "size" ? u(dimOfSize(n.id)) : undefined;
          return d && { s: "mat", rows: d, cols: d };
        }
        const given = e.args.map(of);
        const ts = ["sum", "mean", "var", "concat"].includes(e.fn) ? given : units(given);
        if (e.fn === "transpose") { const t = ts[0]; return t?.s === "mat" ? { s: "mat", rows: t.cols, cols: t.rows } : undefined; }
        if (ts.some((t) => !t)) return undefined;
        if (["sum", "mean", "var"].includes(e.fn)) return ts[0]!.s === "vec" ? { s: "scalar", batched: ts[0]!.batched } : undefined;
        if (e.fn === "concat") {
          if (!ts.every((t) => t!.s === "vec")) return undefined;
          return { s: "vec", dim: ts.map((t) => (t as { dim: FDim }).dim).reduce(dimPlus), batched: ts.some((t) => t!.batched) };
        }
        return ts.reduce((a, b) => bcast(a, b));
      }
      case "slice": {
        const t = of(e.arg);
        return t?.s === "vec" ? { s: "vec", dim: u(e.len), batched: t.batched } : undefined;
      }
      case "bin": {
        const [a, b] = units([of(e.a), of(e.b)]);
        if (!a || !b) return undefined;
        if (e.op === "*" && a.s === "mat" && b.s === "vec") return dimKey(a.cols) === dimKey(b.dim) ? { s: "vec", dim: a.rows, batched: b.batched } : undefined;
        if (e.op === "*" && a.s !== "scalar" && b.s !== "scalar") return undefined;
        if (e.op === "/" && b.s !== "scalar") return undefined;
        return bcast(a, b);
      }
    }
  };
  return of;
}

// ------------------------------------------------------------------------------ printing

/** mathjs precedence: sums 2, products 3, unary minus 4, powers 5, atoms 6. */
const isSum = (op: BinOp) => op === "+" || op === "-" || op === ".+" || op === ".-";
const precOf = (e: Expr): number =>
  e.k === "bin" ? (isSum(e.op) ? 2 : 3) : e.k === "neg" ? 4 : e.k === "pow" ? 5 : 6;

function fmtNum(v: number): string {
  return String(v);
}

export function printExpr(e: Expr, names: ReadonlyMap<number, Decl>): string {
  const p = (x: Expr, min: number): string => {
    const s = printExpr(x, names);
    return precOf(x) < min ? `(${s})` : s;
  };
  switch (e.k) {
    case "num": return e.v < 0 ? `(${e.text ?? fmtNum(e.v)})` : e.text ?? fmtNum(e.v);
    case "ref": return `${names.get(e.id)!.name}${e.primed ? "'" : ""}`;
    case "paren": return `(${printExpr(e.a, names)})`;
    case "neg": return `-${p(e.a, 5)}`;
    case "pow": return `${p(e.a, 6)}^${e.p < 0 ? `-${fmtNum(-e.p)}` : fmtNum(e.p)}`;
    case "act": return `${names.get(e.id)!.name}(${printExpr(e.arg, names)})`;
    case "call": return `${e.fn}(${e.args.map((a) => printExpr(a, names)).join(", ")})`;
    case "slice": return `slice(${printExpr(e.arg, names)}, ${printDim(e.start, names)}, ${printDim(e.len, names)})`;
    case "bin": {
      const lvl = isSum(e.op) ? 2 : 3;
      const sp = lvl === 2 || e.op === ".*" || e.op === "./" ? " " : "";
      return `${p(e.a, lvl)}${sp}${e.op}${sp}${p(e.b, lvl === 2 ? 3 : 5)}`;
    }
  }
}

export function equationText(eq: Equation, names: ReadonlyMap<number, Decl>): string {
  const lhs = `${names.get(eq.target.id)!.name}${eq.target.kind === "state" ? "'" : ""}`;
  return `${lhs}${eq.tight ? "=" : " = "}${printExpr(eq.rhs, names)}${eq.comment ? `   ${eq.comment}` : ""}`;
}

/** The cell as the user would write it (a .json cell file has exactly these fields). */
export function toSpec(fc: FuzzCell): CellSpec {
  const names = declMap(fc);
  const dim = (d: FDim) => printDim(d, names);
  const obj = <T,>(entries: [string, T][]) => Object.fromEntries(entries) as Record<string, T>;
  const spec: Record<string, unknown> = {
    name: fc.name,
    doc: `${fc.origin} [case B=${fc.B} T=${fc.T} seed=${fc.caseSeed}]`,
    sizes: fc.sizesAsList ? fc.sizes.map((s) => s.name) : obj(fc.sizes.map((s, i) => [s.name, `size ${i + 1}`])),
    // a size a constraint determines follows from the others
    defaults: obj(fc.sizes.filter((s) => !fc.constraints?.some((c) => c.size === s.id)).map((s) => [s.name, s.value])),
    ...(fc.constraints?.length ? { constraints: fc.constraints.map((c) => `${names.get(c.size)!.name} = ${names.get(c.as)!.name}`) } : {}),
    inputs: obj(fc.inputs.map((d) => [d.name, d.scalar ? [] : dim(d.dim)])),
    state: obj(fc.states.map((d) => [d.name, dim(d.dim)])),
  };
  if (fc.outputs.length) spec.outputs = obj(fc.outputs.map((d) => [d.name, dim(d.dim)]));
  spec.params = obj(fc.params.map((p) => {
    const shape = p.shape.length === 1 ? dim(p.shape[0]!) : p.shape.map(dim);
    return [p.name, p.init || p.heads ? { shape, ...(p.heads ? { heads: p.heads } : {}), ...(p.init ? { init: p.init } : {}) } : shape];
  }));
  if (fc.constants.length) spec.constants = obj(fc.constants.map((c) => [c.name, c.value]));
  if (fc.activations.length)
    spec.activations = obj(fc.activations.map((a) => [a.name, a.expr.replace(/\{(\d+)\}/g, (_m, k: string) => names.get(a.uses[Number(k)]!)!.name)]));
  const lines = fc.equations.map((eq) => equationText(eq, names));
  spec.equations = fc.equationsAsString ? `\n${lines.map((l) => `  ${l}`).join("\n")}\n` : lines;
  return spec as unknown as CellSpec;
}

export const clone = (fc: FuzzCell): FuzzCell => structuredClone(fc);

/** A spec's equations, one a line, whether given as a list or as one string. */
export const equationLines = (spec: CellSpec): string[] =>
  (typeof spec.equations === "string" ? spec.equations.split("\n") : [...spec.equations]).map((l) => l.trim()).filter((l) => l !== "");

const CANONICAL: Readonly<Record<Role, string>> = { size: "N", input: "x", state: "h", output: "y", param: "W", constant: "c", equation: "v", activation: "act" };

/** The cell with every ordinary (not hostile) name replaced by role and order: N1, x1, h1, y1, W1 (b1 a vector, a1 a scalar), c1, v1, act1. */
export function canonicalNames(fc: FuzzCell): FuzzCell {
  const out = clone(fc);
  const keep = new Set(allDecls(out).filter((d) => d.hostile).map((d) => d.name));
  const counters = new Map<string, number>();
  for (const d of allDecls(out)) {
    if (d.hostile) continue;
    const shape = d.role === "param" ? (d as ParamDecl).shape.length : -1;
    const prefix = shape === 1 ? "b" : shape === 0 ? "a" : CANONICAL[d.role];
    let n = counters.get(prefix) ?? 0, name: string;
    do name = `${prefix}${++n}`; while (keep.has(name));
    counters.set(prefix, n);
    keep.add(name);
    d.name = name;
  }
  return out;
}

/** Every sub-expression of every equation, with a way to replace it. */
export function* sites(fc: FuzzCell): Generator<{ eq: number; path: string; get: () => Expr; set: (e: Expr) => void }> {
  function* walk(get: () => Expr, set: (e: Expr) => void, eq: number, path: string): Generator<{ eq: number; path: string; get: () => Expr; set: (e: Expr) => void }> {
    yield { eq, path, get, set };
    const e = get();
    switch (e.k) {
      case "paren": case "neg": case "pow": yield* walk(() => e.a, (x) => { e.a = x; }, eq, `${path}.a`); break;
      case "act": yield* walk(() => e.arg, (x) => { e.arg = x; }, eq, `${path}.arg`); break;
      case "slice": yield* walk(() => e.arg, (x) => { e.arg = x; }, eq, `${path}.arg`); break;
      case "bin":
        yield* walk(() => e.a, (x) => { e.a = x; }, eq, `${path}.a`);
        yield* walk(() => e.b, (x) => { e.b = x; }, eq, `${path}.b`);
        break;
      case "call":
        for (let i = 0; i < e.args.length; i++) yield* walk(() => e.args[i]!, (x) => { e.args[i] = x; }, eq, `${path}.${i}`);
        break;
      default:
    }
  }
  for (let i = 0; i < fc.equations.length; i++) {
    const eq = fc.equations[i]!;
    yield* walk(() => eq.rhs, (x) => { eq.rhs = x; }, i, `${i}`);
  }
}

/** Ids every equation reads (with `primed` for h'), and the ids used in dims. */
export function usedIds(fc: FuzzCell): Set<number> {
  const used = new Set<number>();
  const dimIds = (d: FDim) => d.terms.forEach(([i, k]) => { if (k) used.add(i); });
  const walk = (e: Expr): void => {
    switch (e.k) {
      case "ref": used.add(e.id); break;
      case "num": break;
      case "act": used.add(e.id); walk(e.arg); break;
      case "slice": dimIds(e.start); dimIds(e.len); walk(e.arg); break;
      case "bin": walk(e.a); walk(e.b); break;
      case "call": e.args.forEach(walk); break;
      default: walk(e.a);
    }
  };
  fc.equations.forEach((eq) => walk(eq.rhs));
  for (const d of [...fc.inputs, ...fc.states, ...fc.outputs]) dimIds(d.dim);
  for (const c of fc.constraints ?? []) { used.add(c.size); used.add(c.as); }
  for (const p of fc.params) p.shape.forEach(dimIds);
  for (const a of fc.activations) a.uses.forEach((u) => used.add(u));
  return used;
}

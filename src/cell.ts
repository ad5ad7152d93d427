// A cell: its declaration (plain data, so .ts and .json cells are the same thing) and its compiled
// form (IR nodes for every input, state, parameter and equation).
import { parse, type MathNode } from "mathjs";
import { type Dim, dimAdd, dimConst, dimScale, dimSize, dimValue } from "./dims.ts";
import { type Node, type Type, mat, scalar, shapeStr, vec } from "./ir.ts";
import { ShapeError, konst, leaf, apply } from "./ops.ts";
import { CellError, type Where } from "./errors.ts";
import { type Equation, FUNCTIONS, IDENT, NEXT, lower, parseEquations } from "./lang.ts";
import type { Sizes } from "./eval.ts";
import { ActivationError, bindConstants, compileActivation } from "./activations.ts";

export type ShapeSpec = string | number | readonly (string | number)[];
/** How a parameter starts: U(-1/sqrt(H), 1/sqrt(H)) by default. */
export type Init = "uniform" | "zeros" | "ones" | { readonly constant: number } | { readonly uniform: number };
export interface ParamSpec {
  readonly shape: ShapeSpec;
  readonly init?: Init;
}

export interface CellSpec {
  readonly name: string;
  /** One line naming the source: paper, equation numbers, library and file. */
  readonly doc: string;
  /** Size names, with what each is: `{ D: "input size", H: "hidden size" }` (or just `["D", "H"]`). */
  readonly sizes: Readonly<Record<string, string>> | readonly string[];
  /** Sizes used by `check` and `show` (default: 3, 4, 5, … in declaration order, so D ≠ H). */
  readonly defaults?: Readonly<Record<string, number>>;
  readonly inputs: Readonly<Record<string, ShapeSpec>>;
  readonly state: Readonly<Record<string, ShapeSpec>>;
  /** Per-step outputs that are not state. */
  readonly outputs?: Readonly<Record<string, ShapeSpec>>;
  readonly params: Readonly<Record<string, ShapeSpec | ParamSpec>>;
  readonly constants?: Readonly<Record<string, number>>;
  /** User-defined elementwise activations as mathjs expressions in x: `{ softsign: "x / (1 + abs(x))" }`. */
  readonly activations?: Readonly<Record<string, string>>;
  /** One equation a line (mathjs syntax); `h'` is the next value of state h. */
  readonly equations: string | readonly string[];
}

/** Declare a cell. The spec is checked when it is compiled (`compileCell`), with located errors. */
export function defineCell<const S extends CellSpec>(spec: S): S {
  return spec;
}

export interface Param {
  readonly name: string;
  readonly node: Node;
  readonly init: Init;
}

export interface CompiledEquation {
  /** `z` or `h'`. */
  readonly lhs: string;
  readonly text: string;
  readonly line: number;
  readonly node: Node;
}

export interface Cell {
  readonly name: string;
  readonly doc: string;
  readonly file?: string;
  readonly sizes: readonly string[];
  readonly defaults: Sizes;
  readonly inputs: readonly Node[];
  readonly states: readonly Node[];
  /** The next value of each state, in the order of `states`. */
  readonly next: readonly Node[];
  readonly outputs: readonly { readonly name: string; readonly node: Node }[];
  readonly params: readonly Param[];
  readonly constants: Readonly<Record<string, number>>;
  /** Equations in evaluation order. */
  readonly equations: readonly CompiledEquation[];
  /** The name a reader knows each defined node by (`z`, `h'`). */
  readonly names: ReadonlyMap<Node, string>;
  readonly warnings: readonly string[];
}

const RESERVED = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false finally for function if import in " +
    "instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package " +
    "private protected public await arguments eval undefined NaN Infinity e pi i").split(" "),
);

export interface CompileOptions {
  /** The file the cell came from, and its text, so errors can give file lines and columns. */
  readonly file?: string;
  readonly source?: string;
}

/** Compile a cell declaration into IR; every mistake is a CellError naming the cell and the spot. */
export function compileCell(spec: CellSpec, opts: CompileOptions = {}): Cell {
  const cellName = typeof spec?.name === "string" ? spec.name : "(unnamed)";
  const at = (w: Partial<Where> = {}): Where => ({ cell: cellName, ...(opts.file ? { file: opts.file } : {}), ...w });
  const bad = (problem: string, hint?: string): never => { throw new CellError(at(), problem, hint); };

  if (!spec || typeof spec !== "object") bad("a cell is an object: defineCell({ name, doc, sizes, inputs, state, params, equations })");
  if (typeof spec.name !== "string" || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(spec.name)) bad(`invalid cell name ${JSON.stringify(spec.name)}: letters, digits, _ and -, starting with a letter`);
  if (typeof spec.doc !== "string" || spec.doc.trim() === "") bad("doc is missing: one line naming the cell's source (paper or library)");
  for (const field of ["sizes", "inputs", "state", "params"] as const)
    if (!spec[field] || typeof spec[field] !== "object") bad(`"${field}" is missing`);
  if (typeof spec.equations !== "string" && !Array.isArray(spec.equations)) bad(`"equations" must be a string (one equation a line) or an array of strings`);

  // ---- names
  const sizes = Array.isArray(spec.sizes) ? [...(spec.sizes as readonly string[])] : Object.keys(spec.sizes);
  const taken = new Map<string, string>();
  const claim = (name: string, what: string) => {
    if (typeof name !== "string" || !IDENT.test(name) || name.includes("__"))
      bad(`invalid identifier ${JSON.stringify(name)} (${what}): names are ASCII letters, digits and _, starting with a letter, without "__"`);
    if (RESERVED.has(name)) bad(`invalid identifier "${name}" (${what}): it is a reserved word`);
    if (name in FUNCTIONS) bad(`invalid identifier "${name}" (${what}): it is the name of a function`);
    const prev = taken.get(name);
    if (prev) bad(`"${name}" is declared twice: as ${prev} and as ${what}`);
    taken.set(name, what);
  };
  sizes.forEach((s) => claim(s, "a size"));
  const sizeSet = new Set(sizes);

  const dimOf = (d: string | number, what: string): Dim => {
    if (typeof d === "number") return Number.isInteger(d) && d > 0 ? dimConst(d) : bad(`${what}: a size must be a positive integer, not ${d}`);
    let tree: MathNode;
    try { tree = parse(d); } catch { return bad(`${what}: cannot read the size "${d}"`); }
    const walk = (n: MathNode): Dim => {
      const m = n as unknown as { type: string; name?: string; value?: unknown; op?: string; args?: MathNode[]; content?: MathNode };
      if (m.type === "SymbolNode") return sizeSet.has(m.name!) ? dimSize(m.name!) : bad(`${what}: unknown size "${m.name}" (sizes: ${sizes.join(", ")})`);
      if (m.type === "ConstantNode" && typeof m.value === "number") return dimConst(m.value);
      if (m.type === "ParenthesisNode") return walk(m.content!);
      if (m.type === "OperatorNode" && m.args!.length === 2) {
        const [a, b] = m.args!.map(walk) as [Dim, Dim];
        if (m.op === "+") return dimAdd(a, b);
        if (m.op === "-") return dimAdd(a, b, -1);
        if (m.op === "*" && (Object.keys(a.terms).length === 0 || Object.keys(b.terms).length === 0))
          return Object.keys(a.terms).length === 0 ? dimScale(b, a.c) : dimScale(a, b.c);
      }
      return bad(`${what}: the size "${d}" must be a sum of size names and integers (like "D + H" or "4*H")`);
    };
    return walk(tree!);
  };
  const shapeOf = (s: ShapeSpec, what: string): Dim[] =>
    Array.isArray(s) ? (s as readonly (string | number)[]).map((d) => dimOf(d, what)) : typeof s === "string" || typeof s === "number" ? [dimOf(s, what)] : bad(`${what}: a shape is a size ("H") or a list of sizes (["H", "D"])`);
  const vectorOf = (s: ShapeSpec, what: string): Type => {
    const sh = shapeOf(s, what);
    return sh.length === 1 ? vec(sh[0]!) : bad(`${what} must be a vector, but its shape has ${sh.length} dimensions`);
  };

  const symbols = new Map<string, Node>();
  const inputs = Object.entries(spec.inputs).map(([n, s]) => { claim(n, "an input"); const l = leaf(n, "input", vectorOf(s, `input ${n}`)); symbols.set(n, l); return l; });
  const states = Object.entries(spec.state).map(([n, s]) => { claim(n, "a state"); const l = leaf(n, "state", vectorOf(s, `state ${n}`)); symbols.set(n, l); return l; });
  if (states.length === 0) bad("a recurrent cell needs at least one state (e.g. state: { h: \"H\" })");
  const outNames = Object.entries(spec.outputs ?? {}).map(([n, s]) => { claim(n, "an output"); return { name: n, type: vectorOf(s, `output ${n}`) }; });
  const params: Param[] = Object.entries(spec.params).map(([n, p]) => {
    claim(n, "a parameter");
    const ps: ParamSpec = typeof p === "object" && !Array.isArray(p) ? (p as ParamSpec) : { shape: p as ShapeSpec };
    const sh = shapeOf(ps.shape, `parameter ${n}`);
    if (sh.length > 2) bad(`parameter ${n}: at most two dimensions, not ${sh.length}`);
    const type = sh.length === 0 ? scalar : sh.length === 1 ? vec(sh[0]!, false) : mat(sh[0]!, sh[1]!);
    const init = ps.init ?? "uniform";
    if (!(init === "uniform" || init === "zeros" || init === "ones" || (typeof init === "object" && (typeof (init as { constant?: number }).constant === "number" || typeof (init as { uniform?: number }).uniform === "number"))))
      bad(`parameter ${n}: init must be "uniform", "zeros", "ones", { constant: c } or { uniform: a }, not ${JSON.stringify(init)}`);
    const node = leaf(n, "param", type);
    symbols.set(n, node);
    return { name: n, node, init };
  });
  const constants = { ...(spec.constants ?? {}) };
  for (const [n, v] of Object.entries(constants)) {
    claim(n, "a constant");
    if (typeof v !== "number" || !Number.isFinite(v)) bad(`constant ${n} must be a finite number, not ${JSON.stringify(v)}`);
    symbols.set(n, konst(v));
  }
  const activations = new Map<string, string>();
  for (const [n, expr] of Object.entries(spec.activations ?? {})) {
    claim(n, "an activation");
    if (typeof expr !== "string") bad(`activation ${n} must be a mathjs expression in x, such as "x / (1 + abs(x))"`);
    try {
      const bound = bindConstants(expr, constants);
      compileActivation(bound);
      activations.set(n, bound);
    } catch (e) {
      if (e instanceof ActivationError) bad(`activation ${n}: ${e.message}`);
      throw e;
    }
  }
  for (const s of sizes) symbols.set(s, apply("size", [], { dim: dimSize(s) }));

  // ---- equations: parse, order by dependency, lower
  const fileLines = locateInFile(opts.source);
  const eqs = parseEquations(spec.equations, (w) => at(fileLines(w)));
  const locate = (eq: Equation | undefined, node?: MathNode): Where => {
    if (!eq) return at();
    const sp = node ? eq.spans.get(node) : undefined;
    const [s, e] = sp ?? [eq.rhsAt + (eq.text.slice(eq.rhsAt).length - eq.text.slice(eq.rhsAt).trimStart().length), eq.text.length];
    return at(fileLines({ equation: eq.text, line: eq.line, column: s + 1, eqColumn: s + 1, width: e - s }));
  };
  const failAt = (eq: Equation, problem: string, hint?: string, node?: MathNode): never => { throw new CellError(locate(eq, node), problem, hint); };
  const lhsWhere = (eq: Equation) => {
    const col = eq.text.indexOf(eq.lhs) + 1;
    return at(fileLines({ equation: eq.text, line: eq.line, column: col, eqColumn: col, width: eq.lhs.length }));
  };

  const defs = new Map<string, Equation>(); // "z" or "h'"
  for (const eq of eqs) {
    const key = eq.primed ? `${eq.name}'` : eq.name;
    const kind = taken.get(eq.name);
    if (eq.primed && kind !== "a state") throw new CellError(lhsWhere(eq), `"${eq.lhs}": only a state has a next value, and "${eq.name}" is ${kind ?? "not declared"}`);
    if (!eq.primed && kind === "a state") throw new CellError(lhsWhere(eq), `"${eq.name}" is a state: its update is written ${eq.name}' = …`);
    if (!eq.primed && kind && kind !== "an output") throw new CellError(lhsWhere(eq), `cannot assign to "${eq.name}", which is ${kind}`);
    const prev = defs.get(key);
    if (prev) throw new CellError(lhsWhere(eq), eq.primed ? `state ${eq.name} is updated twice (lines ${prev.line} and ${eq.line})` : `"${eq.name}" is defined twice (lines ${prev.line} and ${eq.line})`);
    defs.set(key, eq);
  }
  for (const s of Object.keys(spec.state)) if (!defs.has(`${s}'`)) bad(`state ${s} is never updated: add an equation ${s}' = …`);
  for (const o of outNames) if (!defs.has(o.name)) bad(`output ${o.name} is never defined: add an equation ${o.name} = …`);

  // depth-first order; a back edge is a cycle
  const order: Equation[] = [];
  const mark = new Map<Equation, "visiting" | "done">();
  const visit = (eq: Equation, path: Equation[]) => {
    const m = mark.get(eq);
    if (m === "done") return;
    if (m === "visiting") {
      const cyc = [...path.slice(path.indexOf(eq)), eq].map((e) => (e.primed ? `${e.name}'` : e.name));
      throw new CellError(lhsWhere(eq), `cyclic definition: ${cyc.join(" -> ")}`, "each name is defined once from values already known; use the old state (h) or a new one (h')");
    }
    mark.set(eq, "visiting");
    for (const r of eq.reads) {
      const dep = defs.get(r.primed ? `${r.name}'` : r.name);
      if (dep && !(r.primed === false && taken.get(r.name) === "a state")) visit(dep, [...path, eq]);
    }
    mark.set(eq, "done");
    order.push(eq);
  };
  for (const eq of eqs) visit(eq, []);

  const names = new Map<Node, string>();
  const values = new Map<string, Node>();
  const compiled: CompiledEquation[] = [];
  const scope = {
    sizes: sizeSet,
    activations,
    lookup: (name: string, primed: boolean) => (primed ? values.get(`${name}'`) : values.get(name) ?? symbols.get(name)),
  };
  for (const eq of order) {
    const node = lower(eq.ast, { eq, scope, locate });
    const key = eq.primed ? `${eq.name}'` : eq.name;
    const want = eq.primed ? symbols.get(eq.name)!.type : outNames.find((o) => o.name === eq.name)?.type;
    if (want && (want.shape.length !== node.type.shape.length || shapeStr(want) !== shapeStr(node.type) || !node.type.batched))
      failAt(eq, `${key} is declared ${shapeStr(want)} but its equation gives ${node.type.batched ? shapeStr(node.type) : `${shapeStr(node.type)} shared by the batch (it depends on no input or state)`}`);
    values.set(key, node);
    if (!names.has(node) && node.op !== "input" && node.op !== "const") names.set(node, key);
    compiled.push({ lhs: key, text: eq.text.trim(), line: eq.line, node });
  }

  const next = states.map((s) => values.get(`${s.attrs.name}'`)!);
  const outputs = outNames.map((o) => ({ name: o.name, node: values.get(o.name)! }));
  const warnings = unusedWarnings(cellName, [...next, ...outputs.map((o) => o.node)], params, inputs);
  const defaults = defaultSizes(sizes, spec.defaults, bad);
  return { name: spec.name, doc: spec.doc, ...(opts.file ? { file: opts.file } : {}), sizes, defaults, inputs, states, next, outputs, params, constants, equations: compiled, names, warnings };
}

function defaultSizes(sizes: readonly string[], given: Readonly<Record<string, number>> | undefined, bad: (p: string) => never): Sizes {
  const d: Record<string, number> = {};
  sizes.forEach((s, i) => (d[s] = 3 + i));
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!sizes.includes(k)) bad(`defaults: "${k}" is not a size`);
    if (!Number.isInteger(v) || v < 1) bad(`defaults: ${k} must be a positive integer`);
    d[k] = v;
  }
  return d;
}

function unusedWarnings(cell: string, roots: readonly Node[], params: readonly Param[], inputs: readonly Node[]): string[] {
  const used = new Set<Node>();
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (used.has(n)) continue;
    used.add(n);
    stack.push(...n.args);
  }
  return [
    ...params.filter((p) => !used.has(p.node)).map((p) => `cell "${cell}": parameter ${p.name} is never used (its gradient is zero)`),
    ...inputs.filter((x) => !used.has(x)).map((x) => `cell "${cell}": input ${x.attrs.name} is never used`),
  ];
}

/** Map an equation-relative location to the file's line and column, when the file text is known. */
function locateInFile(source: string | undefined): (w: Partial<Where>) => Partial<Where> {
  if (!source) return (w) => w;
  const lines = source.split(/\r?\n/);
  return (w) => {
    if (w.equation === undefined || w.eqColumn === undefined) return w;
    const needle = w.equation.trim();
    const lead = w.equation.length - w.equation.trimStart().length;
    const candidates = lines.map((l, i) => [i, l.indexOf(needle)] as const).filter(([, c]) => c >= 0 && needle.length > 0);
    if (candidates.length === 0) return w;
    const [li, c] = candidates[0]!;
    return { ...w, line: li + 1, column: c + (w.eqColumn - lead) };
  };
}

/** A parameter's numel at given sizes. */
export const paramSize = (p: Param, sizes: Sizes): number => p.node.type.shape.reduce((a, d) => a * dimValue(d, sizes), 1);
export { NEXT, ShapeError };

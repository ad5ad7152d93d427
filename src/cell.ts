// A cell: its declaration (plain data, so .ts and .json cells are the same thing) and its compiled
// form (IR nodes for every input, state, parameter and equation).
import { parse, type MathNode } from "mathjs";
import { type Dim, dimAdd, dimConst, dimScale, dimSize, dimSubst, dimValue } from "./dims.ts";
import { type Node, type Type, mat, scalar, shapeStr, vec } from "./ir.ts";
import { ShapeError, apply, blockOf, headedParam, konst, leaf } from "./ops.ts";
import { CellError, type Where, formatWarning, sourceIndex } from "./errors.ts";
import { type Equation, type Scope, IDENT, IDENT_RULE, NEXT, RESERVED_WORDS, closest, didYouMean, lower, parseEquations } from "./lang.ts";
import type { Sizes } from "./eval.ts";
import { ActivationError, activationFunctions, bindConstants, compileActivation, differentiateActivation } from "./activations.ts";
import { ACTIVATION_LIMITS, scanExpression } from "./limits.ts";
import { STABLE_RULES, simplify } from "./simplify.ts";
import { type Init, isSize, sizesText } from "../runtime/checks.ts";

export type ShapeSpec = string | number | readonly (string | number)[];
/** How a parameter starts: U(-1/sqrt(H), 1/sqrt(H)) by default (the runtime's `initSlice` does it). */
export type { Init };
export interface ParamSpec {
  readonly shape: ShapeSpec;
  readonly init?: Init;
  /**
   * A block-diagonal matrix of this many heads (xLSTM's sLSTM, FlashRNN): `{ shape: ["H", "H"], heads: 4 }`
   * is 4 blocks of (H/4)×(H/4) on the diagonal, stored as those blocks (H²/4 floats); `W*x` multiplies
   * each block by its slice of x. Both sizes must be divisible by heads.
   */
  readonly heads?: number;
}

export interface CellSpec {
  readonly name: string;
  /** One line naming the source: paper, equation numbers, library and file. */
  readonly doc: string;
  /** Size names, with what each is: `{ D: "input size", H: "hidden size" }` (or just `["D", "H"]`). */
  readonly sizes: Readonly<Record<string, string>> | readonly string[];
  /** Sizes used by `check` and `show` (default: 3, 4, 5, … in declaration order, so D ≠ H). */
  readonly defaults?: Readonly<Record<string, number>>;
  /** Equalities between sizes, `["D = H"]` or `["E = 2*H"]`: shapes equal under them are the same shape. */
  readonly constraints?: readonly string[];
  /** Per-step inputs: a vector (`"D"`) or a scalar per step (`[]`, held as a vector of 1 in kernels and cases). */
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
  /** A block-diagonal matrix's heads, the [R, C] it stands for (stored [R, C/heads]), and its declaration in the file. */
  readonly heads?: { readonly count: number; readonly shape: readonly [Dim, Dim]; readonly where: Where };
}

export interface CompiledEquation {
  /** `z` or `h'`. */
  readonly lhs: string;
  readonly text: string;
  /** The line in the equations text, and (when the file is known) "file:line" in the file. */
  readonly line: number;
  readonly where?: string;
  readonly node: Node;
}

export interface Cell {
  readonly name: string;
  readonly doc: string;
  readonly file?: string;
  readonly sizes: readonly string[];
  /** The sizes `check` and `show` use: the free ones (those no constraint determines); `resolveSizes` adds the rest. */
  readonly defaults: Sizes;
  /** The spec's size equalities, each solved for one size; every shape is written in the free sizes. */
  readonly constraints: readonly SizeConstraint[];
  /** Each input is a vector leaf; an input declared as a scalar (`dt: []`) is a vector of 1, read as `sum(dt)` in the equations. */
  readonly inputs: readonly Node[];
  /** The inputs declared as scalars, by name: a case gives them as [T][B], not [T][B][1]. */
  readonly scalarInputs: readonly string[];
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

/** A size equality of the spec, solved for one size: wherever `size` is used, it is `value`. */
export interface SizeConstraint {
  /** As written: `D = H`. */
  readonly text: string;
  /** The size it determines, and its value in the free sizes. */
  readonly size: string;
  readonly value: Dim;
  /** The constraint in the cell's file, for sizes that break it (`check --sizes`, a case, a kernel). */
  readonly where: Where;
}

/** What one step computes: the next value of every state, then every output (the roots of the step's graph). */
export const stepRoots = (cell: Pick<Cell, "next" | "outputs">): Node[] => [...cell.next, ...cell.outputs.map((o) => o.node)];

/** Words of the equation language itself (mathjs operators and literals): no declared name may be one. */
const RESERVED = new Map(Object.entries(RESERVED_WORDS));

export interface CompileOptions {
  /** The file the cell came from, and its text, so errors can give file lines and columns. */
  readonly file?: string;
  readonly source?: string;
}

const FIELDS = ["name", "doc", "sizes", "defaults", "constraints", "inputs", "state", "outputs", "params", "constants", "activations", "equations"];
/** What each object-valued field holds, for messages about a spec with the wrong types (a .json cell can hold anything). */
const SECTIONS = {
  sizes: 'an object of size names and what they are, like { D: "input size", H: "hidden size" } (or a list of names)',
  defaults: "an object of size values, like { D: 3, H: 4 }",
  inputs: 'an object of input names and shapes, like { x: "D" }',
  state: 'an object of state names and shapes, like { h: "H" }',
  outputs: 'an object of output names and shapes, like { y: "H" }',
  params: 'an object of parameter names and shapes, like { W: ["H", "D"], b: "H" }',
  constants: "an object of constant names and numbers, like { eps: 1e-5 }",
  activations: 'an object of activation names and expressions in x, like { softsign: "x / (1 + abs(x))" }',
} as const;

const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === "object" && v !== null && !Array.isArray(v);
const kindOf = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "an object" : `${typeof v === "string" ? "the string" : `the ${typeof v}`} ${JSON.stringify(v)}`;

/** Compile a cell declaration into IR; every mistake is a CellError naming the cell and the spot. */
export function compileCell(spec: CellSpec, opts: CompileOptions = {}): Cell {
  const cx = context(spec, opts);
  const sections = readSections(spec, cx); // the declaration's fields, each of the kind it must be
  const decls = declare(sections, cx); // every declared name: sizes, inputs, states, outputs, parameters, constants, activations
  const eqs = orderEquations(sections.equations, decls, cx); // the equations parsed, checked against the declarations, in dependency order
  const step = lowerEquations(eqs, decls, cx); // each lowered to IR and checked against its declared shape
  warnUnused(eqs, decls, step, cx);
  const defaults = defaultSizes(decls, sections.defaults, cx);
  const { inputs, scalarInputs, constraints, states, params, constants } = decls;
  return { name: cx.name, doc: sections.doc, ...(opts.file ? { file: opts.file } : {}), sizes: decls.sizes, defaults, constraints, inputs, scalarInputs, states, ...step, params, constants, warnings: cx.warnings };
}

/**
 * A cell's declaration without its equations (the builder's, src/builder.ts): every field and name
 * checked as `compileCell` checks them, each with its IR leaf and type. `equations` is ignored.
 */
export function declareCell(spec: Omit<CellSpec, "equations">, opts: CompileOptions = {}): Omit<Cell, "next" | "outputs" | "equations" | "names"> & { readonly outputTypes: ReadonlyMap<string, Type> } {
  const cx = context(spec, opts);
  const sections = readSections({ ...spec, equations: [] }, cx);
  const decls = declare(sections, cx);
  const defaults = defaultSizes(decls, sections.defaults, cx);
  const { inputs, scalarInputs, constraints, states, params, constants } = decls;
  const outputTypes = new Map(decls.outNames.map((o) => [o.name, o.type]));
  return { name: cx.name, doc: sections.doc, ...(opts.file ? { file: opts.file } : {}), sizes: decls.sizes, defaults, constraints, inputs, scalarInputs, states, params, constants, warnings: cx.warnings, outputTypes };
}

/** Where a mistake is, and how to say so: every phase of `compileCell` reports through this. */
interface Context {
  readonly name: string;
  readonly opts: CompileOptions;
  readonly file: ReturnType<typeof sourceIndex>;
  /** The declaration `field: { …, key: … }` in the file (the key, or `token` after it on its line). */
  readonly decl: ReturnType<typeof sourceIndex>["decl"];
  readonly at: (w?: Partial<Where>) => Where;
  /** A mistake in the declaration; `loc` is its line in the file, when the file is known. */
  readonly bad: (problem: string, hint?: string, loc?: Partial<Where>) => never;
  readonly warn: (problem: string, loc?: Partial<Where>) => void;
  readonly warnings: string[];
}

function context(spec: unknown, opts: CompileOptions): Context {
  const name = isRecord(spec) && typeof spec.name === "string" ? spec.name : "(unnamed)";
  const file = sourceIndex(opts.source);
  const warnings: string[] = [];
  const at = (w: Partial<Where> = {}): Where => ({ cell: name, ...(opts.file ? { file: opts.file } : {}), ...w });
  return {
    name, opts, file, decl: file.decl, at, warnings,
    bad: (problem, hint, loc = {}) => { throw new CellError(at(loc), problem, hint); },
    warn: (problem, loc = {}) => { warnings.push(formatWarning(at(loc), problem)); },
  };
}

type Section = Readonly<Record<string, unknown>>;
interface Sections {
  readonly raw: Section;
  readonly doc: string;
  readonly sizes: Section;
  readonly inputs: Section;
  readonly state: Section;
  readonly params: Section;
  readonly outputs: Section;
  readonly constants: Section;
  readonly activations: Section;
  readonly defaults: Section;
  readonly constraints: readonly string[];
  readonly equations: string | readonly string[];
}

/** The declaration's fields, each of the kind it must be (a .json cell can hold anything). */
function readSections(raw: unknown, { bad, warn, decl }: Context): Sections {
  if (!isRecord(raw)) return bad(`a cell is an object: defineCell({ name, doc, sizes, inputs, state, params, equations }), not ${kindOf(raw)}`);
  const extra = Object.keys(raw).filter((k) => !FIELDS.includes(k));
  const typoOf = (field: string) => extra.find((k) => closest(k, [field]) === field);
  for (const k of extra) {
    const guess = closest(k, FIELDS);
    warn(`unknown field "${k}" is ignored${guess ? ` (did you mean "${guess}"?)` : ""}`, decl(k));
  }
  const missing = (field: string, what: string): never => {
    const typo = typoOf(field);
    return bad(`"${field}" is missing: ${what}`, typo ? `"${typo}" is not a field; did you mean "${field}"?` : undefined);
  };

  if (typeof raw.name !== "string" || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(raw.name))
    bad(`invalid cell name ${JSON.stringify(raw.name) ?? "(missing)"}: letters, digits, _ and -, starting with a letter`, undefined, decl("name"));
  if (raw.doc === undefined) missing("doc", "one line naming the cell's source (paper and equations, or library and file)");
  if (typeof raw.doc !== "string" || raw.doc.trim() === "")
    bad(`"doc" must be one line naming the cell's source (paper or library), not ${kindOf(raw.doc)}`, undefined, decl("doc"));
  const section = (field: keyof typeof SECTIONS, required: boolean): Section => {
    const v = raw[field];
    if (v === undefined) return required ? missing(field, SECTIONS[field]) : {};
    if (field === "sizes" && Array.isArray(v)) return {};
    return isRecord(v) ? v : bad(`"${field}" must be ${SECTIONS[field]}, not ${kindOf(v)}`, undefined, decl(field));
  };
  const sizes = section("sizes", true), inputs = section("inputs", true), state = section("state", true);
  const params = section("params", true), outputs = section("outputs", false), constants = section("constants", false);
  const activations = section("activations", false), defaults = section("defaults", false);
  if (raw.equations === undefined) missing("equations", "one equation a line, like `h' = tanh(W*x + U*h + b)`");
  if (typeof raw.equations !== "string" && !Array.isArray(raw.equations))
    bad(`"equations" must be a string (one equation a line) or a list of strings, not ${kindOf(raw.equations)}`, undefined, decl("equations"));
  const equations = raw.equations as string | readonly unknown[];
  if (Array.isArray(equations))
    equations.forEach((e, i) => { if (typeof e !== "string") bad(`equations[${i}] must be a string, not ${kindOf(e)}`, undefined, decl("equations")); });
  const constraints = raw.constraints ?? [];
  if (!Array.isArray(constraints)) bad(`"constraints" must be a list of size equalities, like ["D = H"], not ${kindOf(constraints)}`, undefined, decl("constraints"));
  (constraints as readonly unknown[]).forEach((c, i) => { if (typeof c !== "string") bad(`constraints[${i}] must be a size equality, like "D = H", not ${kindOf(c)}`, undefined, decl("constraints")); });
  return { raw, doc: raw.doc as string, sizes, inputs, state, params, outputs, constants, activations, defaults, constraints: constraints as readonly string[], equations: equations as string | readonly string[] };
}

/** Every name the cell declares, each claimed once, with its IR leaf. */
interface Declarations {
  readonly sizes: readonly string[];
  readonly sizeSet: ReadonlySet<string>;
  /** What each declared name is: "a size", "an input", … */
  readonly taken: ReadonlyMap<string, string>;
  /** The leaf (or constant, or size) each name stands for on a right-hand side. */
  readonly symbols: ReadonlyMap<string, Node>;
  readonly constraints: readonly SizeConstraint[];
  readonly inputs: readonly Node[];
  readonly scalarInputs: readonly string[];
  readonly states: readonly Node[];
  readonly outNames: readonly { readonly name: string; readonly type: Type }[];
  readonly params: readonly Param[];
  readonly constants: Readonly<Record<string, number>>;
  readonly activations: ReadonlyMap<string, string>;
}

function declare(sp: Sections, { bad, warn, decl, file, at }: Context): Declarations {
  const raw = sp.raw;
  if (Array.isArray(raw.sizes)) raw.sizes.forEach((s, i) => { if (typeof s !== "string") bad(`sizes[${i}] must be a size name, not ${kindOf(s)}`, undefined, decl("sizes")); });
  for (const [k, v] of Object.entries(sp.sizes))
    if (typeof v !== "string")
      bad(`size ${k} must be described in words, like { ${k}: "hidden size" }, not ${kindOf(v)}`, typeof v === "number" ? `a size's value for checks goes under defaults: { ${k}: ${v} }` : undefined, decl("sizes", k));
  const sizes: string[] = Array.isArray(raw.sizes) ? [...(raw.sizes as string[])] : Object.keys(sp.sizes);
  const taken = new Map<string, string>();
  const claim = (name: string, what: string, field: string) => {
    const loc = decl(field, name);
    if (!IDENT.test(name) || name.includes("__")) bad(`invalid identifier ${JSON.stringify(name)} (${what}): ${IDENT_RULE}`, undefined, loc);
    if (RESERVED.has(name)) bad(`invalid identifier "${name}" (${what}): it is reserved, as ${RESERVED.get(name)}`, undefined, loc);
    // a declared name may be a function's: it hides that function in this cell (src/lang.ts)
    const prev = taken.get(name);
    if (prev) bad(`"${name}" is declared twice: as ${prev} and as ${what}`, undefined, loc);
    taken.set(name, what);
  };
  sizes.forEach((s) => claim(s, "a size", "sizes"));
  const sizeSet = new Set(sizes);

  /** A size as written, in the declared sizes. */
  const parseDim = (d: unknown, what: string, loc: (token?: string) => Partial<Where>): Dim => {
    if (typeof d === "number")
      return Number.isInteger(d) && d > 0 ? dimConst(d) : bad(`${what}: a size must be a positive integer, not ${d}`, undefined, loc(String(d)));
    if (typeof d !== "string") return bad(`${what}: a size is a name ("H"), a positive integer or a sum like "D + H", not ${kindOf(d)}`, undefined, loc());
    let tree: MathNode;
    try { tree = parse(d); } catch { return bad(`${what}: cannot read the size "${d}"`, `a size is a name ("H"), a positive integer or a sum like "D + H"`, loc(d)); }
    const walk = (n: MathNode): Dim => {
      const m = n as unknown as { type: string; name?: string; value?: unknown; op?: string; args?: MathNode[]; content?: MathNode };
      if (m.type === "SymbolNode")
        return sizeSet.has(m.name!) ? dimSize(m.name!) : bad(`${what}: unknown size "${m.name}"${didYouMean(closest(m.name!, sizes))}`, `the sizes are ${sizes.join(", ") || "(none)"}; declare new ones under sizes`, loc(m.name));
      if (m.type === "ConstantNode" && typeof m.value === "number") return dimConst(m.value);
      if (m.type === "ParenthesisNode") return walk(m.content!);
      if (m.type === "OperatorNode" && m.args!.length === 2) {
        const [a, b] = m.args!.map(walk) as [Dim, Dim];
        if (m.op === "+") return dimAdd(a, b);
        if (m.op === "-") return dimAdd(a, b, -1);
        if (m.op === "*" && (Object.keys(a.terms).length === 0 || Object.keys(b.terms).length === 0))
          return Object.keys(a.terms).length === 0 ? dimScale(b, a.c) : dimScale(a, b.c);
      }
      return bad(`${what}: the size "${d}" must be a sum of size names and integers (like "D + H" or "4*H")`, undefined, loc(d));
    };
    return walk(tree!);
  };
  const constraints = solveConstraints(sp.constraints, parseDim, { bad, warn, decl, file, at });
  const solved = new Map(constraints.map((c) => [c.size, c.value]));
  /** A size in the free sizes: D is H under the constraint D = H, so [D] and [H] are one shape. */
  const dimOf = (d: unknown, what: string, loc: (token?: string) => Partial<Where>): Dim => dimSubst(parseDim(d, what, loc), solved);
  const shapeOf = (s: unknown, what: string, loc: (token?: string) => Partial<Where>): Dim[] =>
    Array.isArray(s) ? s.map((d) => dimOf(d, what, loc)) : typeof s === "string" || typeof s === "number" ? [dimOf(s, what, loc)]
      : bad(`${what}: a shape is a size ("H") or a list of sizes (["H", "D"]), not ${kindOf(s)}`, undefined, loc());
  const vectorOf = (s: unknown, what: string, loc: (token?: string) => Partial<Where>, scalarToo: boolean): Type => {
    const sh = shapeOf(s, what, loc);
    if (sh.length === 0 && scalarToo) return vec(dimConst(1)); // a scalar per step: a vector of 1, read as its sum
    return sh.length === 1 ? vec(sh[0]!)
      : bad(`${what} must be a vector${scalarToo ? " or a scalar ([])" : ""}, but its shape has ${sh.length} dimensions`, sh.length === 0 ? "a scalar per step is an input: declare it under inputs" : undefined, loc());
  };
  /** An input, state or output: a named vector (an input may be a scalar). */
  const declared = (field: string, what: string, name: string, shape: unknown): Type => {
    claim(name, what, field);
    return vectorOf(shape, `${what.replace(/^an? /, "")} ${name}`, (token) => decl(field, name, token), field === "inputs");
  };

  const symbols = new Map<string, Node>();
  const scalarInputs: string[] = [];
  const inputs = Object.entries(sp.inputs).map(([n, s]) => {
    const l = leaf(n, "input", declared("inputs", "an input", n, s));
    const scalarInput = Array.isArray(s) && s.length === 0;
    if (scalarInput) scalarInputs.push(n);
    symbols.set(n, scalarInput ? apply("sum", [l]) : l); // the equations see a scalar per example, its gradient the sum's: g in the one element
    return l;
  });
  const states = Object.entries(sp.state).map(([n, s]) => { const l = leaf(n, "state", declared("state", "a state", n, s)); symbols.set(n, l); return l; });
  if (states.length === 0) bad("a recurrent cell needs at least one state (e.g. state: { h: \"H\" })", undefined, decl("state"));
  const outNames = Object.entries(sp.outputs).map(([n, s]) => ({ name: n, type: declared("outputs", "an output", n, s) }));
  const params: Param[] = Object.entries(sp.params).map(([n, p]) => {
    claim(n, "a parameter", "params");
    const loc = (token?: string) => decl("params", n, token);
    if (isRecord(p) && !("shape" in p))
      bad(`parameter ${n}: { shape, init } needs a "shape"`, `a parameter is a shape (["H", "D"]) or { shape: ["H", "D"], init: "zeros" }`, loc());
    if (p === null || typeof p === "boolean") bad(`parameter ${n}: a parameter is a shape (["H", "D"]) or { shape, init }, not ${kindOf(p)}`, undefined, loc());
    const ps = (isRecord(p) ? p : { shape: p }) as { shape: unknown; init?: unknown; heads?: unknown };
    const sh = shapeOf(ps.shape, `parameter ${n}`, loc);
    if (sh.length > 2) bad(`parameter ${n}: at most two dimensions, not ${sh.length}`, undefined, loc());
    const type = sh.length === 0 ? scalar : sh.length === 1 ? vec(sh[0]!, false) : mat(sh[0]!, sh[1]!);
    const init = ps.init ?? "uniform";
    if (!isInit(init)) bad(`parameter ${n}: init must be "uniform", "zeros", "ones", "glorot", "orthogonal", { constant: c } or { uniform: a }, not ${JSON.stringify(init)}`, undefined, loc("init"));
    // fans and orthogonality are properties of a matrix: a vector has no rows and columns to take them from
    if ((init === "glorot" || init === "orthogonal") && sh.length < 2)
      bad(`parameter ${n}: init "${init}" is for a matrix, and ${n} is ${sh.length === 0 ? "a scalar" : `a vector (${JSON.stringify(ps.shape)})`}`, `use "uniform", "zeros", "ones", { constant: c } or { uniform: a } for it`, loc("init"));
    if (ps.heads === undefined) {
      const node = leaf(n, "param", type);
      symbols.set(n, node);
      return { name: n, node, init: init as Init };
    }
    const heads = declareHeads(n, ps.heads, sh, (problem, hint) => bad(problem, hint, loc("heads")));
    const node = headedParam(n, mat(sh[0]!, blockOf(sh[1]!, heads)), heads);
    symbols.set(n, node);
    return { name: n, node, init: init as Init, heads: { count: heads, shape: [sh[0]!, sh[1]!] as const, where: at(loc("heads")) } };
  });
  const constants = Object.create(null) as Record<string, number>; // keyed by user names: no prototype
  for (const [n, v] of Object.entries(sp.constants)) {
    claim(n, "a constant", "constants");
    if (typeof v !== "number" || !Number.isFinite(v)) bad(`constant ${n} must be a finite number, not ${kindOf(v)}`, undefined, decl("constants", n));
    constants[n] = v as number;
    symbols.set(n, konst(v as number));
  }
  const activations = new Map<string, string>();
  for (const [n, expr] of Object.entries(sp.activations)) {
    claim(n, "an activation", "activations");
    if (typeof expr !== "string") bad(`activation ${n} must be a mathjs expression in x, such as "x / (1 + abs(x))", not ${kindOf(expr)}`, undefined, decl("activations", n));
    const spot = (offset: number, width: number) => file.within(decl("activations", n), expr as string, offset, width);
    checkActivationNames(n, expr as string, taken, Object.keys(sp.activations), spot, bad);
    activations.set(n, checkActivation(n, expr as string, constants, spot, bad));
  }
  for (const s of sizes) symbols.set(s, apply("size", [], { dim: dimSubst(dimSize(s), solved) }));
  return { sizes, sizeSet, taken, symbols, constraints, inputs, scalarInputs, states, outNames, params, constants, activations };
}

/** The parsed equations, in dependency order, and how to point at a spot in them. */
interface Equations {
  readonly all: readonly Equation[];
  readonly order: readonly Equation[];
  /** Each equation by what it defines: "z" or "h'". */
  readonly defs: ReadonlyMap<string, Equation>;
  /** An equation's line in the file, when the file is known. */
  readonly toFile: (line: number) => { line: number; offset: number } | undefined;
  readonly locate: (eq: Equation | undefined, node?: MathNode) => Where;
  readonly lhsWhere: (eq: Equation) => Where;
}

function orderEquations(text: string | readonly string[], { taken, states, outNames }: Declarations, { at, bad, decl, file, opts }: Context): Equations {
  const toFile = file.equations(typeof text === "string" ? text.split(/\r?\n/) : text.flatMap((e) => e.split(/\r?\n/)));
  const inFile = (w: Partial<Where>): Partial<Where> => {
    if (w.line === undefined) return w;
    const m = toFile(w.line);
    if (m) return { ...w, line: m.line, column: (w.column ?? 1) + m.offset };
    return opts.file ? { ...w, relative: true } : w;
  };
  const eqs = parseEquations(text, (w) => at(inFile(w)));
  const locate = (eq: Equation | undefined, node?: MathNode): Where => {
    if (!eq) return at();
    const sp = node ? eq.spans.get(node) : undefined;
    const [s, e] = sp ?? [eq.rhsAt + (eq.text.slice(eq.rhsAt).length - eq.text.slice(eq.rhsAt).trimStart().length), eq.text.length];
    return at(inFile({ equation: eq.text, line: eq.line, column: s + 1, eqColumn: s + 1, width: e - s }));
  };
  const lhsWhere = (eq: Equation) => {
    const col = eq.text.indexOf(eq.lhs) + 1;
    return at(inFile({ equation: eq.text, line: eq.line, column: col, eqColumn: col, width: eq.lhs.length }));
  };
  const failLhs = (eq: Equation, problem: string, hint?: string): never => { throw new CellError(lhsWhere(eq), problem, hint); };

  const defs = new Map<string, Equation>(); // "z" or "h'"
  for (const eq of eqs) {
    const key = eq.primed ? `${eq.name}'` : eq.name;
    const kind = taken.get(eq.name);
    if (eq.primed && kind !== "a state")
      failLhs(eq, `"${eq.lhs}": only a state has a next value, and "${eq.name}" is ${kind ?? "not declared"}`,
        kind ? `write ${eq.name} = … for a value computed each step` : `declare ${eq.name} under state, or write ${eq.name} = … for a value computed each step`);
    if (!eq.primed && kind === "a state")
      failLhs(eq, `"${eq.name}" is a state: its update is written ${eq.name}' = …`, `on a right-hand side, ${eq.name} is the old value and ${eq.name}' the new one`);
    if (!eq.primed && kind && kind !== "an output") failLhs(eq, `cannot assign to "${eq.name}", which is ${kind}`);
    if (!kind && RESERVED.has(eq.name)) failLhs(eq, `invalid identifier "${eq.name}": it is reserved, as ${RESERVED.get(eq.name)}`);
    const prev = defs.get(key);
    // the lines as the location gives them: the file's when it is known, else the equations'
    const lines = (a: Equation, b: Equation) => `lines ${toFile(a.line)?.line ?? a.line} and ${toFile(b.line)?.line ?? b.line}`;
    if (prev) failLhs(eq, eq.primed ? `state ${eq.name} is updated twice (${lines(prev, eq)})` : `"${eq.name}" is defined twice (${lines(prev, eq)})`);
    defs.set(key, eq);
  }
  for (const s of states.map((n) => n.attrs.name!))
    if (!defs.has(`${s}'`)) bad(`state ${s} is never updated: add an equation ${s}' = …`, `to keep it unchanged, write ${s}' = ${s}`, decl("state", s));
  for (const o of outNames) if (!defs.has(o.name)) bad(`output ${o.name} is never defined: add an equation ${o.name} = …`, undefined, decl("outputs", o.name));

  // depth-first order; a back edge is a cycle
  const order: Equation[] = [];
  const mark = new Map<Equation, "visiting" | "done">();
  const visit = (eq: Equation, path: Equation[]) => {
    const m = mark.get(eq);
    if (m === "done") return;
    if (m === "visiting") {
      const cyc = [...path.slice(path.indexOf(eq)), eq].map((e) => (e.primed ? `${e.name}'` : e.name));
      failLhs(eq, `cyclic definition: ${cyc.join(" -> ")}`, "each name is defined once from values already known; use the old state (h) or a new one (h')");
    }
    mark.set(eq, "visiting");
    for (const r of eq.reads) {
      // a primed read with no next value defined is the transpose of a matrix (M' with M = … above or below)
      const dep = r.primed ? defs.get(`${r.name}'`) ?? defs.get(r.name) : defs.get(r.name);
      if (dep && !(r.primed === false && taken.get(r.name) === "a state")) visit(dep, [...path, eq]);
    }
    mark.set(eq, "done");
    order.push(eq);
  };
  for (const eq of eqs) visit(eq, []);
  return { all: eqs, order, defs, toFile, locate, lhsWhere };
}

/** The step as IR: each equation lowered in order, checked against the shape its left-hand side is declared with. */
function lowerEquations(eqs: Equations, d: Declarations, { opts }: Context): Pick<Cell, "next" | "outputs" | "equations" | "names"> {
  const { order, defs, locate, toFile } = eqs;
  const failAt = (eq: Equation, problem: string, hint?: string, node?: MathNode): never => { throw new CellError(locate(eq, node), problem, hint); };
  const names = new Map<Node, string>();
  const values = new Map<string, Node>();
  const compiled: CompiledEquation[] = [];
  const solved = new Map(d.constraints.map((c) => [c.size, c.value]));
  const scope: Scope = {
    sizes: d.sizeSet,
    dim: (size) => dimSubst(dimSize(size), solved),
    activations: d.activations,
    names: [...d.symbols.keys(), ...[...defs.values()].filter((e) => !e.primed).map((e) => e.name)],
    kind: (name) => d.taken.get(name) ?? (defs.has(name) ? "defined by an equation" : undefined),
    lookup: (name: string, primed: boolean) => (primed ? values.get(`${name}'`) : values.get(name) ?? d.symbols.get(name)),
  };
  for (const eq of order) {
    // the known unstable composites (log(sigmoid(x)), …) in their stable forms (src/simplify.ts)
    const node = simplify([lower(eq.ast, { eq, scope, locate })], STABLE_RULES)[0]!;
    const key = eq.primed ? `${eq.name}'` : eq.name;
    const want = eq.primed ? d.symbols.get(eq.name)!.type : d.outNames.find((o) => o.name === eq.name)?.type;
    const owner = eq.primed ? `state ${eq.name}` : `output ${eq.name}`;
    if (want && shapeStr(want) !== shapeStr(node.type))
      failAt(eq, `${key} is ${shapeStr(node.type)}, but ${owner} is declared ${shapeStr(want)}`, eq.primed ? "the next value of a state has the state's shape" : undefined);
    if (want && !node.type.batched)
      failAt(eq, `${key} is the same for every example (it reads no input or state), but ${owner} holds one value per example`);
    values.set(key, node);
    if (!names.has(node) && node.op !== "input" && node.op !== "const") names.set(node, key);
    const fl = toFile(eq.line);
    compiled.push({ lhs: key, text: eq.text.replace(/\s*(#|\/\/)[^]*$/, "").trim(), line: eq.line, ...(opts.file ? { where: fl ? `${opts.file}:${fl.line}` : `${opts.file}, equations line ${eq.line}` } : {}), node });
  }
  const next = d.states.map((s) => values.get(`${s.attrs.name}'`)!);
  const outputs = d.outNames.map((o) => ({ name: o.name, node: values.get(o.name)! }));
  return { next, outputs, equations: compiled, names };
}

/** Warnings, not errors: a parameter or input the step never reads, a value defined and never used. */
function warnUnused(eqs: Equations, d: Declarations, step: Pick<Cell, "next" | "outputs">, { warn, decl }: Context): void {
  const used = reachable(stepRoots(step));
  for (const p of d.params) if (!used.has(p.node)) warn(`parameter ${p.name} is never used (its gradient is zero)`, decl("params", p.name));
  for (const x of d.inputs) if (!used.has(x)) warn(`input ${x.attrs.name} is never used`, decl("inputs", x.attrs.name!));
  // M' of a name that is not a state reads M (its transpose): M = W .- g used only as M'*h is used
  const read = new Set(eqs.all.flatMap((e) => e.reads.filter((r) => !r.primed || d.taken.get(r.name) !== "a state").map((r) => r.name)));
  for (const eq of eqs.all)
    if (!eq.primed && !d.outNames.some((o) => o.name === eq.name) && !read.has(eq.name)) warn(`${eq.name} is defined but never used`, eqs.lhsWhere(eq));
}

function isInit(v: unknown): v is Init {
  if (v === "uniform" || v === "zeros" || v === "ones" || v === "glorot" || v === "orthogonal") return true;
  if (!isRecord(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === "constant" || keys[0] === "uniform") && typeof v[keys[0]] === "number" && Number.isFinite(v[keys[0]]);
}

/**
 * A parameter's heads, as declared: a whole number > 0 of a matrix whose sizes it divides. A size
 * known here (8, or 4*H for 4 heads) is checked now; a size given later (H) wherever sizes are given
 * (`headsProblem`: check, eval cases, kernels).
 */
function declareHeads(name: string, heads: unknown, sh: readonly Dim[], bad: (problem: string, hint?: string) => never): number {
  if (typeof heads !== "number" || !Number.isInteger(heads) || heads < 1)
    return bad(`parameter ${name}: heads must be a positive integer, not ${kindOf(heads)}`, `heads: 4 makes ${name} block-diagonal, 4 blocks on its diagonal`);
  if (sh.length !== 2) return bad(`parameter ${name}: only a matrix has heads, but its shape has ${sh.length} dimension${sh.length === 1 ? "" : "s"}`, `write a matrix shape, like { shape: ["H", "H"], heads: ${heads} }`);
  for (const d of sh) {
    const never = Object.keys(d.terms).length === 0 ? d.c % heads !== 0 : false;
    if (never) bad(`parameter ${name}: ${heads} heads do not divide its size ${d.key}`, `each head is a block of (${sh.map((x) => x.key).join(")/" + heads + " × (")})/${heads}: choose heads that divide both sizes`);
  }
  return heads;
}

/** Why the sizes cannot hold a parameter's heads (a size not divisible by them), naming the parameter; undefined when they can. */
export function headsProblem(params: readonly Param[], sizes: Sizes): { problem: string; hint: string; where: Where; size: string } | undefined {
  for (const p of params) {
    if (!p.heads) continue;
    const { count, shape, where } = p.heads;
    for (const d of shape) {
      if (Object.keys(d.terms).some((k) => !Object.hasOwn(sizes, k))) continue;
      const v = dimValue(d, sizes);
      if (v % count !== 0)
        return { problem: `parameter ${p.name} has ${count} heads, so its size ${d.key}${d.key === String(v) ? "" : ` = ${v}`} must be divisible by ${count}`, hint: `give sizes that ${count} divides, or declare ${p.name} with heads that divide ${v}`, where, size: Object.keys(d.terms)[0]! };
    }
  }
  return undefined;
}

/** Sizes made to fit every parameter's heads, each size that does not raised to the next that does (check's larger sizes). */
export function fitHeads(params: readonly Param[], sizes: Sizes): Sizes {
  const out = { ...sizes } as Record<string, number>;
  for (let tries = 0; tries < 256; tries++) {
    const p = headsProblem(params, out);
    if (!p) break;
    out[p.size]! += 1;
  }
  return out;
}

/**
 * The size whose square root bounds the default init, U(±1/sqrt(n)): H when the cell has a size H,
 * else its first state's length (as PyTorch's RNNs take the hidden size). The kernels' initParams,
 * the reference's, the PyTorch export's and `show` all read it here.
 */
export const initBoundSize = (cell: Pick<Cell, "sizes" | "states">): Dim => (cell.sizes.includes("H") ? dimSize("H") : cell.states[0]!.type.shape[0]!);

/** The free sizes' defaults (3, 4, 5, … in declaration order, or as given); a size a constraint determines follows from them. */
function defaultSizes(d: Pick<Declarations, "sizes" | "constraints">, given: Readonly<Record<string, unknown>>, { bad, decl, name }: Context): Sizes {
  const { sizes } = d;
  const fallback = Object.create(null) as Record<string, number>; // keyed by user names: no prototype
  sizes.forEach((s, i) => (fallback[s] = 3 + i));
  const g = Object.create(null) as Record<string, number>;
  for (const [k, v] of Object.entries(given)) {
    if (!sizes.includes(k)) bad(`defaults: "${k}" is not a size${didYouMean(closest(k, sizes))}`, undefined, decl("defaults", k));
    if (!isSize(v)) bad(`defaults: ${k} must be a positive integer, not ${kindOf(v)}`, undefined, decl("defaults", k));
    g[k] = v as number;
  }
  const all = resolveSizes({ name, ...d }, g, {
    fallback,
    fail: (problem, hint, c) => bad(`defaults: ${problem}`, hint, decl("defaults", Object.hasOwn(g, c.size) ? c.size : Object.keys(g)[0])),
  });
  const free = Object.create(null) as Record<string, number>;
  for (const s of sizes) if (!d.constraints.some((c) => c.size === s)) free[s] = all[s]!;
  return free;
}

/**
 * Every size of a cell from the ones given: a size a constraint determines follows from the free
 * sizes (D from H under D = H), and one given alone gives the free size it is made of (D = 8 gives
 * H = 8). Sizes that break a constraint are refused, naming it, at its line in the cell's file.
 * `fallback` values the free sizes that are neither given nor so derived.
 */
export function resolveSizes(
  cell: Pick<Cell, "name" | "sizes" | "constraints"> & { readonly params?: readonly Param[] },
  given: Readonly<Record<string, number>>,
  opts: { readonly fallback?: Sizes; readonly fail?: (problem: string, hint: string | undefined, c: SizeConstraint) => never } = {},
): Sizes {
  const has = (r: Readonly<Record<string, number>>, k: string) => Object.hasOwn(r, k);
  const v = Object.create(null) as Record<string, number>; // keyed by user names: no prototype
  for (const s of cell.sizes) if (has(given, s)) v[s] = given[s]!;
  const determined = new Set(cell.constraints.map((c) => c.size));
  for (let more = true; more; ) {
    more = false;
    for (const c of cell.constraints) {
      const open = Object.keys(c.value.terms).filter((k) => !has(v, k));
      if (!has(v, c.size) || open.length !== 1) continue;
      const k = open[0]!, a = c.value.terms[k]!;
      const x = (v[c.size]! - dimValue(dimAdd(c.value, dimScale(dimSize(k), a), -1), v)) / a;
      if (isSize(x)) { v[k] = x; more = true; }
    }
  }
  for (const s of cell.sizes) if (!has(v, s) && !determined.has(s) && opts.fallback && has(opts.fallback, s)) v[s] = opts.fallback[s]!;
  const fail = opts.fail ?? ((problem: string, hint: string | undefined, c: SizeConstraint): never => { throw new CellError(c.where, problem, hint); });
  const shown = sizesText(Object.fromEntries(cell.sizes.filter((s) => has(given, s)).map((s) => [s, given[s]!])));
  const free = cell.sizes.filter((s) => !determined.has(s));
  for (const c of cell.constraints) {
    if (Object.keys(c.value.terms).some((k) => !has(v, k))) continue; // a free size not given: the caller says which
    const want = dimValue(c.value, v);
    const value = c.value.key === String(want) ? String(want) : `${c.value.key} = ${want}`;
    if (has(v, c.size) && v[c.size] !== want)
      fail(`the sizes ${shown} break the constraint ${c.text}: ${c.size} is ${value}, not ${v[c.size]}`, `give ${free.join(", ") || "the other sizes"}, and ${c.size} follows`, c);
    if (!isSize(want)) fail(`the constraint ${c.text} makes ${c.size} = ${value} at ${sizesText(Object.fromEntries(free.filter((s) => has(v, s)).map((s) => [s, v[s]!])))}, not a positive integer`, undefined, c);
    v[c.size] = want;
  }
  const out = Object.create(null) as Record<string, number>;
  for (const s of cell.sizes) if (has(v, s)) out[s] = v[s]!;
  const heads = headsProblem(cell.params ?? [], out);
  if (heads) throw new CellError(heads.where, `the sizes ${sizesText(out)} do not fit: ${heads.problem}`, heads.hint);
  return out;
}

type ConstraintContext = Pick<Context, "bad" | "warn" | "decl" | "file" | "at">;
type ParseDim = (d: unknown, what: string, loc: (token?: string) => Partial<Where>) => Dim;

/**
 * The spec's size equalities, each solved for one size in turn (Gaussian elimination over the size
 * names): the size solved for is the first written with coefficient 1 (D in "D = H", E in
 * "E = 2*H"), and its value is in the sizes no constraint determines. A contradiction, or an
 * equality that is not one, is an error at the constraint; one that follows from the others, a warning.
 */
function solveConstraints(texts: readonly string[], parseDim: ParseDim, { bad, warn, decl, file, at }: ConstraintContext): SizeConstraint[] {
  const solved = new Map<string, Dim>();
  const order: { text: string; size: string; where: Where }[] = [];
  for (const t of texts) {
    const spot = (offset: number, width: number) => file.within(decl("constraints", t), t, offset, width);
    const whole = spot(0, t.length);
    const what = `constraint "${t}"`;
    const m = /^([^=<>!≠]*)=([^=<>!≠]*)$/.exec(t);
    if (!m) {
      const op = /[<>≠]=?|!=|==|=/.exec(t);
      return bad(`${what} is not an equality: a constraint says that two sizes are equal, like "D = H" or "E = 2*H"`, undefined, op && op[0] !== "=" ? spot(op.index, op[0].length) : whole);
    }
    const side = (text: string, from: number) => parseDim(text, what, (token) => {
      const i = token === undefined ? -1 : t.indexOf(token, from);
      return i < 0 ? whole : spot(i, token!.length);
    });
    const lhs = side(m[1]!, 0), rhs = side(m[2]!, m[1]!.length + 1);
    const [l, r] = [dimSubst(lhs, solved), dimSubst(rhs, solved)];
    const diff = dimAdd(l, r, -1);
    const before = order.map((c) => `"${c.text}"`).join(", ");
    if (Object.keys(diff.terms).length === 0) {
      if (diff.c !== 0)
        bad(before ? `${what} contradicts ${before}: together they say ${l.key} = ${r.key}` : `${what} never holds: it says ${l.key} = ${r.key}`,
          "a size has one value: remove the constraint that is wrong", whole);
      warn(`${what} says nothing new${before ? `: it follows from ${before}` : ""}`, whole);
      continue;
    }
    // the size it determines: the first one written whose coefficient is 1 or -1
    const written = [...Object.keys(lhs.terms), ...Object.keys(rhs.terms), ...Object.keys(diff.terms)];
    const size = written.find((k) => Math.abs(diff.terms[k] ?? 0) === 1);
    if (size === undefined)
      return bad(`${what} cannot be solved for a size: in ${l.key} = ${r.key}, every size has a coefficient other than 1`, `write one size as a sum of the others, like "D = 2*H"`, whole);
    const k = diff.terms[size]!; // k*size + rest = 0, so size = -k*rest
    const value = dimScale(dimAdd(diff, dimScale(dimSize(size), k), -1), -k);
    // with every coefficient negative, its largest value is at sizes 1
    if (Object.values(value.terms).every((c) => c <= 0) && Object.values(value.terms).reduce((a, c) => a + c, value.c) <= 0)
      bad(`${what} makes ${size} = ${value.key}, which is not positive at any sizes`, undefined, whole);
    const one = new Map([[size, value]]);
    for (const [n, d] of solved) solved.set(n, dimSubst(d, one));
    solved.set(size, value);
    order.push({ text: t.trim(), size, where: at(whole) });
  }
  return order.map((c) => ({ ...c, value: solved.get(c.size)! }));
}

function reachable(roots: readonly Node[]): Set<Node> {
  const used = new Set<Node>();
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (used.has(n)) continue;
    used.add(n);
    stack.push(...n.args);
  }
  return used;
}

/**
 * Check a user-defined activation: it must compile (x alone, supported functions) and mathjs must
 * differentiate it to something that compiles too, so backward passes cannot fail later. Returns the
 * expression with the cell's constants substituted. `spot(offset, width)` locates a part of `expr`.
 */
function checkActivation(
  name: string,
  expr: string,
  constants: Readonly<Record<string, number>>,
  spot: (offset: number, width: number) => Partial<Where>,
  bad: (problem: string, hint?: string, loc?: Partial<Where>) => never,
): string {
  // ActivationError messages read `"<expression>": problem (advice)`; the caret shows the expression.
  const explain = (e: unknown, bound: string): never => {
    if (!(e instanceof ActivationError)) throw e;
    let msg = e.message;
    for (const prefix of [`"${expr}": `, `"${bound}": `]) if (msg.startsWith(prefix)) msg = msg.slice(prefix.length);
    const char = /\s*\(char (\d+)\)/.exec(msg);
    msg = msg.replace(/\s*\(char \d+\)/, "");
    const advice = /^(.*?) \((.*)\)$/s.exec(msg);
    const [problem, hint] = advice ? [advice[1]!, advice[2]!.replace(/^use: /, "the functions an activation may use: ")] : [msg, undefined];
    const quoted = /(?:symbol|function|operator) "([^"]+)"/.exec(problem)?.[1];
    const found = quoted ? new RegExp(`(?<![\\w$])${quoted.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w$])`).exec(expr) : null;
    const offset = char ? Number(char[1]) - 1 : found ? found.index : 0;
    const width = char ? 1 : found ? quoted!.length : expr.length;
    return bad(`activation ${name}: ${problem.charAt(0).toLowerCase()}${problem.slice(1)}`, hint, spot(Math.min(offset, expr.length), width));
  };
  // bounded work: an expression past the limits (src/limits.ts) is refused before mathjs reads it
  const size = scanExpression(expr, "its expression", ACTIVATION_LIMITS);
  if (size.problem)
    return bad(`activation ${name}: ${size.problem.problem}`, "write a shorter expression, or apply several activations one inside another in the equations", spot(size.problem.at, size.problem.width));
  let bound = expr;
  try {
    bound = bindConstants(expr, constants);
    compileActivation(bound);
  } catch (e) {
    explain(e, bound);
  }
  if (differentiable.has(bound)) return bound;
  let derivative: string;
  try {
    derivative = differentiateActivation(bound);
  } catch (e) {
    if (!(e instanceof ActivationError)) throw e;
    const fn = /function "([^"]+)"/.exec(e.message)?.[1];
    const found = fn ? new RegExp(`(?<![\\w$])${fn}\\s*\\(`).exec(expr) : null;
    return bad(`activation ${name} cannot be differentiated${fn ? `: mathjs has no derivative for ${fn}` : ""}`,
      `write it with the functions an activation may use: ${activationFunctions().join(", ")}`,
      spot(found ? found.index : 0, found ? fn!.length : expr.length));
  }
  try {
    compileActivation(derivative);
  } catch (e) {
    if (!(e instanceof ActivationError)) throw e;
    const fn = /function "([^"]+)"/.exec(e.message)?.[1];
    return bad(`activation ${name}: its derivative, ${derivative}, uses ${fn ? `"${fn}", which activations do not support` : "something activations do not support"}`,
      "write the activation with other functions", spot(0, expr.length));
  }
  differentiable.add(bound);
  return bound;
}
/**
 * What an activation's expression sees: `x`, its argument (even in a cell with an input or constant
 * x), numbers, the cell's constants (a constant `e` or `pi` hides mathjs' one), mathjs' `e` and `pi`
 * where the cell declares no such name, and the functions of activationFunctions(). A name the cell
 * declares as anything else (a parameter `pi`, another activation) is refused at the spot rather
 * than read as mathjs' constant or as a built-in function. An activation does not call another one:
 * the equations apply one inside the other, `f(g(a))`, each differentiated on its own.
 */
function checkActivationNames(
  name: string,
  expr: string,
  taken: ReadonlyMap<string, string>,
  activationNames: readonly string[],
  spot: (offset: number, width: number) => Partial<Where>,
  bad: (problem: string, hint?: string, loc?: Partial<Where>) => never,
): void {
  let tree: MathNode;
  try { tree = parse(expr); } catch { return; } // checkActivation reports it
  type M = MathNode & { type: string; name?: string; fn?: MathNode };
  const at = (word: string, call: boolean) => {
    const m = new RegExp(`(?<![\\w$])${word}(?![\\w$])${call ? "\\s*\\(" : ""}`).exec(expr);
    return spot(m ? m.index : 0, m ? word.length : expr.length);
  };
  const callees = new Set<MathNode>();
  tree.traverse((n) => { const m = n as M; if (m.type === "FunctionNode" && m.fn) callees.add(m.fn); });
  tree.traverse((n) => {
    const m = n as M;
    if (m.type === "FunctionNode" && activationNames.includes((m.fn as M).name ?? ""))
      bad(`activation ${name} calls ${(m.fn as M).name}, another activation`, `an activation calls built-in functions only; apply one inside the other in the equations: ${name}(${(m.fn as M).name}(…))`, at((m.fn as M).name!, true));
    if (m.type === "SymbolNode" && !callees.has(n) && m.name !== "x" && taken.has(m.name!) && taken.get(m.name!) !== "a constant")
      bad(`activation ${name}: "${m.name}" is ${taken.get(m.name!)} of the cell, and an activation sees only x, numbers and the cell's constants`,
        m.name === "e" || m.name === "pi" ? `mathjs' ${m.name} is hidden in this cell by the declared ${m.name}: write the number` : "pass it in the equations: an activation is a function of x alone", at(m.name!, false));
  });
}
/** Activations already checked (mathjs' simplify takes milliseconds). */
const differentiable = new Set<string>();

/** A parameter's numel at given sizes. */
export const paramSize = (p: Param, sizes: Sizes): number => p.node.type.shape.reduce((a, d) => a * dimValue(d, sizes), 1);
export { NEXT, ShapeError };

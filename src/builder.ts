// The builder form: the same cells, built from TypeScript instead of equation text, for cells made
// by a program (a family of variants in a loop). The operations build the very IR the equation
// language builds (hash-consing makes them the same nodes), and the result is an ordinary Cell.
import type { Cell, CellSpec, CompiledEquation } from "./cell.ts";
import { declareCell, stepRoots } from "./cell.ts";
import { Node, shapeStr, topo } from "./ir.ts";
import { type ArityOf, type FunctionOpName, FUNCTION_OPS, OPS, ShapeError, apply, konst, product, unitsAsScalars } from "./ops.ts";
import { dimAdd, dimConst, dimSize, dimSubst, type Dim } from "./dims.ts";
import { CellError } from "./errors.ts";
import { printExpr } from "./print.ts";
import { IDENT, IDENT_RULE, RESERVED_WORDS } from "./lang.ts";
import { ACTIVATION_LIMITS, BUILDER_LIMITS, scanExpression } from "./limits.ts";
import { ActivationError, compileActivation, differentiateActivation } from "./activations.ts";

export type Value = Node | number;
/** `transpose(W)`: the transpose of a matrix, which only multiplies a vector, `matmul(transpose(W), v)` (the equations' `W'*v`). */
export interface Transposed {
  readonly transposeOf: Node;
}
/** A builder mistake, with the hint the equation language gives for the same one. */
class BuilderError extends ShapeError {
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}
const v = (x: Value | Transposed): Node => {
  if (typeof x === "number") return konst(x);
  if (x instanceof Node) return x;
  if (typeof x === "object" && x !== null && "transposeOf" in x)
    throw new BuilderError("transpose(W) can only multiply a vector", "write matmul(transpose(W), v): the product is W'*v, and the transpose is never formed");
  // plain JavaScript (or a cast) can hand anything over
  throw new BuilderError(`an operand is ${kindOf(x)}, not a value of the cell or a number`, "pass the values the body receives (x, h, W, …), numbers, or what the builder's functions return");
};
const kindOf = (x: unknown): string =>
  x === null ? "null" : Array.isArray(x) ? "an array" : typeof x === "string" ? `the string ${JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x)}` : `${/^[aeiou]/.test(typeof x) ? "an" : "a"} ${typeof x}`;
const isScalar = (n: Node) => n.type.shape.length === 0;
/** Operands of an elementwise op, as the equations read them: a vector of 1 beside a longer vector is the scalar it holds. */
const ew = (xs: readonly (Value | Transposed)[]): readonly Node[] => unitsAsScalars(xs.map(v));
/** `W + g` and `W - g` with a scalar g: refused as the equations refuse them (it is almost always W + g*I). */
function entrywise(op: "add" | "sub", a: Node, b: Node): Node {
  if (a.type.shape.length + b.type.shape.length === 2 && (isScalar(a) || isScalar(b))) {
    const [verb, dot] = op === "add" ? ["adds the scalar to", "dotAdd"] : ["subtracts the scalar from", "dotSub"];
    throw new BuilderError(`${op} ${verb} every entry of the matrix ${shapeStr((isScalar(a) ? b : a).type)}`,
      `for the scalar times the identity, use it in the product: ${op}(matmul(W, v), mul(g, v)) is (W ${op === "add" ? "+" : "-"} g*eye(H))*v; to ${op === "add" ? "add it to" : "subtract it from"} every entry, write ${dot}(W, g) (the equations' .${op === "add" ? "+" : "-"})`);
  }
  return apply(op, [a, b]);
}

// ---- arithmetic, with the equation language's meanings
export const add = (a: Value, b: Value, ...more: Value[]): Node => [b, ...more].reduce<Node>((s, x) => entrywise("add", ...(ew([s, x]) as [Node, Node])), v(a));
export const sub = (a: Value, b: Value): Node => entrywise("sub", ...(ew([a, b]) as [Node, Node]));
/** `.+`: like add, but a scalar may be added to every entry of a matrix. */
export const dotAdd = (a: Value, b: Value): Node => apply("add", ew([a, b]));
/** `.-`: like sub, but a scalar may be subtracted from every entry of a matrix. */
export const dotSub = (a: Value, b: Value): Node => apply("sub", ew([a, b]));
/** Elementwise product (`.*`). */
export const mul = (a: Value, b: Value): Node => apply("mul", ew([a, b]));
/** Elementwise quotient (`./`). */
export const div = (a: Value, b: Value): Node => apply("div", ew([a, b]));
export const neg = (a: Value): Node => apply("neg", [v(a)]);
/** The transpose of a matrix, to multiply a vector: `matmul(transpose(W), v)` is the equations' `W'*v`. */
export function transpose(w: Node): Transposed {
  if (!(w instanceof Node) || w.type.shape.length !== 2) throw new ShapeError(`transpose expects a matrix, but its argument is ${w instanceof Node ? shapeStr(w.type) : typeof w}`);
  return { transposeOf: w };
}
/** `*`: a matrix (or `transpose(W)`) times a vector, or a scalar product. */
export function matmul(a: Value | Transposed, b: Value): Node {
  if (typeof a === "object" && !(a instanceof Node)) return product(a.transposeOf, v(b), true);
  const [x, y] = [v(a), v(b)];
  if (isScalar(x) || isScalar(y)) return apply("mul", [x, y]);
  if (x.type.shape.length === 2) return product(x, y); // block-diagonal for a parameter declared with heads
  throw new ShapeError(`matmul: a matrix times a vector, but the operands are ${shapeStr(x.type)} and ${shapeStr(y.type)} (use mul for elementwise)`, [x.type, y.type]);
}
export const constant = (c: number): Node => konst(c);

// ---- functions: each function op of the table (src/ops.ts: an op with a `call`) by its name, then the composites
type OpFunction<K extends FunctionOpName> = ArityOf<K> extends 2 ? (a: Value, b: Value) => Node : (a: Value) => Node;
// an elementwise function broadcasts a vector of 1 as the operators do
const opFunctions = Object.fromEntries(FUNCTION_OPS.map((op) => [op, (...xs: Value[]) => apply(op, OPS[op].kind === "elementwise" ? ew(xs) : xs.map(v))])) as { readonly [K in FunctionOpName]: OpFunction<K> };
export const { sigmoid, tanh, relu, exp, log, softplus, abs, sqrt, square, hardSigmoid, hardSigmoidKeras, softsign, max, min } = opFunctions;
/** A function op left out of the exports above is a compile error here, naming it. */
type Unexported = Exclude<FunctionOpName, keyof typeof import("./builder.ts")>;
const everyFunctionExported: [Unexported] extends [never] ? true : Unexported = true;
void everyFunctionExported;
export const clip = (x: Value, lo: Value, hi: Value): Node => min(max(x, lo), hi);
export const pow = (a: Value, p: number): Node => (p === 2 ? square(a) : p === 1 ? v(a) : p === 0.5 ? sqrt(a) : apply("pow", [v(a)], { p }));
export const sum = (a: Value): Node => apply("sum", [v(a)]);
const len = (n: Node): Dim => {
  if (n.type.shape.length !== 1) throw new ShapeError(`expects a vector, but its argument is ${shapeStr(n.type)}`, [n.type]);
  return n.type.shape[0]!;
};
export const mean = (a: Value): Node => apply("div", [sum(a), apply("size", [], { dim: len(v(a)) })]);
/** Population variance (as layer norm uses): mean((a - mean(a))^2). */
export const variance = (a: Value): Node => mean(square(sub(a, mean(a))));
export const concat = (...xs: Node[]): Node => apply("concat", xs);
/** The constraints of the cell being built (its sizes in the free ones: D is H under D = H), while its body runs. */
let solved: ReadonlyMap<string, Dim> = new Map();
const dimOf = (d: string | number | Node): Dim =>
  d instanceof Node ? (d.op === "size" ? d.attrs.dim! : (() => { throw new ShapeError(`a size is a number, a string such as "2*H", or a size of the cell, not ${shapeStr(d.type)}`); })())
  : typeof d === "number" ? dimConst(d) : dimSubst(d.split("+").map((t) => t.trim()).map((t) => {
    const m = /^(\d+)\s*\*\s*([A-Za-z]\w*)$/.exec(t);
    if (m) return { ...dimSize(m[2]!), terms: { [m[2]!]: Number(m[1]) } } as Dim;
    return /^\d+$/.test(t) ? dimConst(Number(t)) : dimSize(t);
  }).reduce((a, b) => dimAdd(a, b)), solved);
/** `len` elements of `x` from `start` (0-based); sizes as in the equations: 0, "H", "2*H", or a size of the cell (`vars.H`). */
export const slice = (x: Value, start: string | number | Node, length: string | number | Node): Node => apply("slice", [v(x)], { start: dimOf(start), len: dimOf(length) });
/**
 * A user-defined activation, differentiated by mathjs like one declared in a cell spec, and checked
 * as one is when it is made: a name, an expression in x that compiles, a derivative that compiles.
 * A refusal names the line that called activation() (the first frame of the stack outside this
 * file; tsx and vitest map stacks to the TypeScript source), as the cell may not be built yet.
 */
export const activation = (name: string, expr: string): ((a: Value) => Node) => {
  const refuse = (problem: string, hint?: string): never => {
    throw new CellError({ cell: "", ...callerSpot() }, `activation(${typeof name === "string" ? JSON.stringify(name) : "…"}, …): ${problem}`, hint);
  };
  if (typeof name !== "string" || !IDENT.test(name) || name.includes("__")) refuse(`its name is ${kindOf(name)}: ${IDENT_RULE}`);
  if (Object.hasOwn(RESERVED_WORDS, name)) refuse(`its name "${name}" is reserved, as ${RESERVED_WORDS[name]}`);
  if (typeof expr !== "string") refuse(`its expression is ${kindOf(expr)}, not mathjs text in x`, 'write it as text, such as activation("softsign", "x / (1 + abs(x))")');
  const size = scanExpression(expr, "its expression", ACTIVATION_LIMITS);
  if (size.problem) refuse(size.problem.problem, "write a shorter expression, or apply several activations one inside another");
  try {
    compileActivation(expr);
    const derivative = differentiateActivation(expr);
    try {
      compileActivation(derivative);
    } catch (e) {
      if (e instanceof ActivationError) refuse(`its derivative, ${derivative}, uses what activations do not support`, "write the activation with other functions");
      throw e;
    }
  } catch (e) {
    if (!(e instanceof ActivationError)) throw e;
    // ActivationError reads `"<expression>": problem (advice)`
    const said = e.message.startsWith(`"${expr}": `) ? e.message.slice(expr.length + 4) : e.message;
    const advice = /^(.*?) \((use: .*)\)$/s.exec(said);
    refuse(`its expression ${JSON.stringify(expr)}: ${advice ? advice[1]! : said}`, advice ? advice[2]!.replace(/^use: /, "the functions an activation may use: ") : undefined);
  }
  return (a: Value): Node => apply("act", [v(a)], { fn: { name, expr } });
};

/** This module's folder (src/), to skip cellforge's own frames in a stack. */
const OWN_DIR = decodeURIComponent(new URL(".", import.meta.url).pathname);
/** The file, line and column of the first frame of a stack outside cellforge's src/ and node_modules: the user's call. */
function callerSpot(stack = new Error().stack): { file?: string; line?: number; column?: number } {
  for (const frame of (stack ?? "").split("\n").slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/.exec(frame.trim());
    if (!m) continue;
    const file = (m[1]!.startsWith("file://") ? decodeURIComponent(new URL(m[1]!).pathname) : m[1]!).replace(/\?.*$/, "");
    if (file.startsWith(OWN_DIR) || file.includes("/node_modules/")) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return {};
}

/** The declaration of a builder cell: a spec without equations. */
export type Declaration = Omit<CellSpec, "equations" | "activations">;
type Names<D extends Declaration> = Extract<keyof D["inputs"] | keyof D["state"] | keyof D["params"] | keyof NonNullable<D["outputs"]> | keyof NonNullable<D["constants"]>, string>;
type Vars<D extends Declaration> = { readonly [K in Names<D>]: Node } & { readonly [size: string]: Node };

/**
 * Build a cell from TypeScript. `body` receives the cell's values by name (inputs, states,
 * parameters, constants, sizes) and returns its definitions in order: intermediates by name, the
 * next value of each state as `"h'"`, and each output by its name.
 */
export function buildCell<const D extends Declaration>(decl: D, body: (vars: Vars<D>) => Readonly<Record<string, Node>>): Cell {
  const stateNames = Object.keys(decl.state);
  // The declaration part is checked as any cell's is; the equations come from `body`.
  const { outputTypes, ...base } = declareCell(decl);
  const vars: Record<string, Node> = {};
  // a scalar input ([]) is read as the scalar it holds, as in the equations
  for (const n of base.inputs) vars[n.attrs.name!] = base.scalarInputs.includes(n.attrs.name!) ? apply("sum", [n]) : n;
  for (const n of [...base.states, ...base.params.map((p) => p.node)]) vars[n.attrs.name!] = n;
  for (const [k, c] of Object.entries(decl.constants ?? {})) vars[k] = konst(c);
  const constraints = new Map(base.constraints.map((c) => [c.size, c.value]));
  for (const s of base.sizes) vars[s] = apply("size", [], { dim: dimSubst(dimSize(s), constraints) });
  const fail = (problem: string, hint?: string, at?: ReturnType<typeof callerSpot>): never => { throw new CellError({ cell: decl.name, ...at }, problem, hint); };
  let defs: Readonly<Record<string, Node>>;
  const outer = solved;
  try {
    solved = constraints;
    defs = body(vars as Vars<D>);
  } catch (e) {
    if (e instanceof ShapeError) fail(`builder: ${e.message}`, e instanceof BuilderError ? e.hint : undefined, callerSpot(e.stack));
    // refused by activation() inside the body: now the cell has a name
    if (e instanceof CellError && e.where.cell === "") throw new CellError({ ...e.where, cell: decl.name }, e.problem, e.hint);
    throw e;
  } finally {
    solved = outer;
  }
  const names = new Map<Node, string>();
  const equations: CompiledEquation[] = [];
  for (const [lhs, node] of Object.entries(defs!)) {
    const name = lhs.endsWith("'") ? lhs.slice(0, -1) : lhs;
    if (!IDENT.test(name)) fail(`builder: "${lhs}" is not a name (write "z", or "h'" for the next value of state h)`);
    if (lhs.endsWith("'") && !stateNames.includes(name)) fail(`builder: "${lhs}": ${name} is not a state`);
    if (!names.has(node) && node.op !== "input" && node.op !== "const") names.set(node, lhs);
  }
  // bounded work, as for equations (src/limits.ts): how deep each definition goes below the named values, and how big the cell is
  const depth = new Map<Node, number>();
  let operations = 0;
  for (const n of topo(Object.values(defs!))) {
    const leaf = n.op === "input" || n.op === "const" || n.op === "size";
    if (!leaf) operations++;
    depth.set(n, leaf ? 0 : 1 + Math.max(0, ...n.args.map((a) => (names.has(a) ? 0 : depth.get(a)!))));
  }
  const over = (problem: string): never => { throw new CellError({ cell: decl.name }, `builder: ${problem}`, "return a part under a name of its own (\"s\": …), and use it"); };
  for (const [lhs, node] of Object.entries(defs!))
    if (depth.get(node)! > BUILDER_LIMITS.depth) over(`${lhs} is ${depth.get(node)!.toLocaleString("en-US")} operations deep; the limit is ${BUILDER_LIMITS.depth}`);
  if (operations > BUILDER_LIMITS.operations) over(`the cell has ${operations.toLocaleString("en-US")} operations; the limit is ${BUILDER_LIMITS.operations.toLocaleString("en-US")}`);
  for (const [lhs, node] of Object.entries(defs!)) equations.push({ lhs, text: `${lhs} = ${printExpr(node, names, node)}`, line: equations.length + 1, node });
  const next = stateNames.map((s, i) => {
    const n = defs[`${s}'`];
    if (!n) fail(`state ${s} is never updated: return "${s}'" from the builder`);
    const want = base.states[i]!.type;
    if (shapeStr(n!.type) !== shapeStr(want) || !n!.type.batched) fail(`${s}' is ${shapeStr(n!.type)}${n!.type.batched ? "" : " (shared by the batch)"}, but state ${s} is declared ${shapeStr(want)}`);
    return n!;
  });
  const outputs = Object.keys(decl.outputs ?? {}).map((o) => {
    const n = defs[o];
    if (!n) fail(`output ${o} is never defined: return "${o}" from the builder`);
    const want = outputTypes.get(o)!;
    if (shapeStr(n!.type) !== shapeStr(want) || !n!.type.batched) fail(`${o} is ${shapeStr(n!.type)}${n!.type.batched ? "" : " (shared by the batch)"}, but output ${o} is declared ${shapeStr(want)}`);
    return { name: o, node: n! };
  });
  const used = new Set<Node>();
  const stack = stepRoots({ next, outputs });
  while (stack.length) { const n = stack.pop()!; if (!used.has(n)) { used.add(n); stack.push(...n.args); } }
  const warnings = base.params.filter((p) => !used.has(p.node)).map((p) => `cell "${decl.name}": parameter ${p.name} is never used (its gradient is zero)`);
  return { ...base, next, outputs, equations, names, warnings };
}

// The builder form: the same cells, built from TypeScript instead of equation text, for cells made
// by a program (a family of variants in a loop). The operations build the very IR the equation
// language builds (hash-consing makes them the same nodes), and the result is an ordinary Cell.
import type { Cell, CellSpec, CompiledEquation } from "./cell.ts";
import { declareCell, stepRoots } from "./cell.ts";
import { type Node, shapeStr, topo } from "./ir.ts";
import { type ArityOf, type FunctionOpName, FUNCTION_OPS, ShapeError, apply, konst } from "./ops.ts";
import { dimAdd, dimConst, dimSize, type Dim } from "./dims.ts";
import { CellError } from "./errors.ts";
import { printExpr } from "./print.ts";
import { IDENT } from "./lang.ts";
import { BUILDER_LIMITS } from "./limits.ts";

export type Value = Node | number;
const v = (x: Value): Node => (typeof x === "number" ? konst(x) : x);
const isScalar = (n: Node) => n.type.shape.length === 0;

// ---- arithmetic, with the equation language's meanings
export const add = (a: Value, b: Value, ...more: Value[]): Node => [b, ...more].reduce<Node>((s, x) => apply("add", [s, v(x)]), v(a));
export const sub = (a: Value, b: Value): Node => apply("sub", [v(a), v(b)]);
/** Elementwise product (`.*`). */
export const mul = (a: Value, b: Value): Node => apply("mul", [v(a), v(b)]);
/** Elementwise quotient (`./`). */
export const div = (a: Value, b: Value): Node => apply("div", [v(a), v(b)]);
export const neg = (a: Value): Node => apply("neg", [v(a)]);
/** `*`: a matrix times a vector, or a scalar product. */
export function matmul(a: Value, b: Value): Node {
  const [x, y] = [v(a), v(b)];
  if (isScalar(x) || isScalar(y)) return apply("mul", [x, y]);
  if (x.type.shape.length === 2) return apply("matvec", [x, y]);
  throw new ShapeError(`matmul: a matrix times a vector, but the operands are ${shapeStr(x.type)} and ${shapeStr(y.type)} (use mul for elementwise)`, [x.type, y.type]);
}
export const constant = (c: number): Node => konst(c);

// ---- functions: each function op of the table (src/ops.ts: an op with a `call`) by its name, then the composites
type OpFunction<K extends FunctionOpName> = ArityOf<K> extends 2 ? (a: Value, b: Value) => Node : (a: Value) => Node;
const opFunctions = Object.fromEntries(FUNCTION_OPS.map((op) => [op, (...xs: Value[]) => apply(op, xs.map(v))])) as { readonly [K in FunctionOpName]: OpFunction<K> };
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
const dimOf = (d: string | number): Dim =>
  typeof d === "number" ? dimConst(d) : d.split("+").map((t) => t.trim()).map((t) => {
    const m = /^(\d+)\s*\*\s*([A-Za-z]\w*)$/.exec(t);
    if (m) return { ...dimSize(m[2]!), terms: { [m[2]!]: Number(m[1]) } } as Dim;
    return /^\d+$/.test(t) ? dimConst(Number(t)) : dimSize(t);
  }).reduce((a, b) => dimAdd(a, b));
/** `len` elements of `x` from `start` (0-based); sizes as in the equations: 0, "H", "2*H". */
export const slice = (x: Value, start: string | number, length: string | number): Node => apply("slice", [v(x)], { start: dimOf(start), len: dimOf(length) });
/** A user-defined activation, differentiated by mathjs like one declared in a cell spec. */
export const activation = (name: string, expr: string) => (a: Value): Node => apply("act", [v(a)], { fn: { name, expr } });

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
  for (const n of [...base.inputs, ...base.states, ...base.params.map((p) => p.node)]) vars[n.attrs.name!] = n;
  for (const [k, c] of Object.entries(decl.constants ?? {})) vars[k] = konst(c);
  for (const s of base.sizes) vars[s] = apply("size", [], { dim: dimSize(s) });
  const fail = (problem: string): never => { throw new CellError({ cell: decl.name }, problem); };
  let defs: Readonly<Record<string, Node>>;
  try {
    defs = body(vars as Vars<D>);
  } catch (e) {
    if (e instanceof ShapeError) fail(`builder: ${e.message}`);
    throw e;
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

// The op table. Each op holds, in one block, everything about it: its shape rule, its evaluation,
// its derivative rule (a vector-Jacobian product that may use the op's own output y), its printing
// (and precedence), its FLOP count and linearity, its name and doc as a function of the equations
// and the builder, its TypeScript and WebAssembly lowerings, and the domain the tests check it on.
// The engines (differentiator, simplifier, evaluator, printer, lowerings) contain no op-specific code.
import { type Dim, dimAdd, dimConst, dimEq, dimScale, dimSize } from "./dims.ts";
import { type Attrs, type Node, type Role, type Type, intern, mat, scalar, shapeEq, shapeStr, typeStr, vec, withBatch } from "./ir.ts";
import { compileActivation, differentiateActivation } from "./activations.ts";

/** A shape rule's complaint; the language front end adds the source location. */
export class ShapeError extends Error {
  constructor(message: string, readonly operands: readonly Type[] = []) {
    super(message);
  }
}

export interface EvalContext {
  readonly B: number;
  size(d: Dim): number;
}

type Vjp = (g: Node, y: Node) => readonly (Node | null)[];

interface Common {
  readonly arity: 0 | 1 | 2 | "n";
  readonly doc: string;
  /** How users call it by its name, in the equations and as a builder function; null for an operator (+, ^) or an op of the engines. */
  readonly call: Callable | null;
  readonly type: (args: readonly Type[], attrs: Attrs) => Type;
  readonly vjp: Vjp;
  /** Precedence for printing: 0 sums, 1 products, 2 negation, 3 atoms and calls. */
  readonly prec: number;
  /** Printing: the right operand binds tighter than the op itself, a - (b - c), a / (b * c), W*(…). */
  readonly rightTighter?: true;
  readonly print: (a: readonly string[], n: Node) => string;
}
/** A function of the equation language and the builder, named as its op. */
export interface Callable {
  /** How a call is written: `sigmoid(x)`, `max(a, b)`. */
  readonly usage: string;
  /** What it computes, as the README's function table says it. */
  readonly doc: string;
}
/** Elementwise ops broadcast scalars over vectors and shared values over the batch; the engines do that. */
export interface ElementwiseOp extends Common {
  readonly kind: "elementwise";
  readonly fn: (attrs: Attrs) => (...x: number[]) => number;
  /** JavaScript source of the scalar computation, for emitted kernels. */
  readonly js: (a: readonly string[], attrs: Attrs) => string;
  /** WebAssembly text of the computation (codegen/wasmloops.ts), or why there is none: then its loops stay in TypeScript. */
  readonly wasm: WasmForm | NoWasm;
  /** Where the tests check it (test/property.test.ts, test/wasm-ops.test.ts): one domain, or one per variant of its attributes. */
  readonly domain: Domain | readonly (Domain & { readonly attrs: Attrs })[];
}
export interface TensorOp extends Common {
  readonly kind: "tensor";
  readonly eval: (args: readonly Float64Array[], n: Node, cx: EvalContext) => Float64Array;
  /** FLOPs per example (or per step for shared values). */
  readonly flops: (n: Node, size: (d: Dim) => number) => number;
  /**
   * For the simplifier's `linear(0) -> 0`: the value is zero when "each" operand alone is (sum(0),
   * outer(u, 0)), when "all" are (concat), when operand k is (W*0: k = 1); false: never assumed.
   */
  readonly linear: "each" | "all" | number | false;
}
export interface LeafOp extends Common {
  readonly kind: "leaf";
}
export type OpDef = ElementwiseOp | TensorOp | LeafOp;

// ---------------------------------------------------------------- lowering to WebAssembly

/**
 * What a WebAssembly form writes with; codegen/wasmloops.ts provides it. A form is text over its
 * operands' text `a`, for one value: a vector of lanes (v128) or, for the rest of a row, a scalar.
 */
export interface WasmWriter {
  /** The instructions' type: f32x4 or f64x2 for a vector, f32 or f64 for a scalar. */
  readonly T: string;
  readonly bits: 32 | 64;
  readonly vector: boolean;
  /** The largest exponent `powi` takes. */
  readonly powiMax: number;
  /** A constant, in every lane. */
  k(c: number): string;
  /** Operand i read more than once: its first read (which computes it, once) and the later ones. */
  twice(i: number): readonly [first: string, again: string];
  /** A math function of the loops' module, lane by lane. */
  math(name: "exp" | "log" | "log1p" | "tanh", x: string): string;
  /** x^n for an integer 1 <= n <= powiMax, by repeated squaring. */
  powi(x: string, n: number): string;
  /** `yes` where the mask `cond` is set, else `no`. */
  select(yes: string, no: string, cond: string): string;
}
export type WasmForm = (w: WasmWriter, a: readonly string[], attrs: Attrs) => string;
/** No WebAssembly form, and why: the loops that use the op stay in TypeScript on both backends. */
export interface NoWasm {
  readonly notOnWasm: string;
}
/** An op's WebAssembly form, or null when it has none (a tensor op, or one stated not on wasm). */
export function wasmForm(op: OpName): WasmForm | null {
  const def = OPS[op];
  return def.kind === "elementwise" && typeof def.wasm === "function" ? def.wasm : null;
}

// ---------------------------------------------------------------- test domains

/**
 * Where an operand is drawn from in the tests: "real" anywhere, "positive" bounded below by a
 * positive number (log, sqrt, fractional powers), "nonzero" bounded away from 0 on either side (a divisor).
 */
export type OperandDomain = "real" | "positive" | "nonzero";
export interface Domain {
  /** One per operand. */
  readonly operands: readonly OperandDomain[];
  /** Where the derivative jumps, as values of the operands that are zero there: relu at x, max at a - b. */
  readonly kinks?: (a: readonly Node[]) => readonly Node[];
  /** Derivatives checked up to this order (default 2: Hessian-vector products too). */
  readonly order?: 1 | 2;
  /** Against finite differences, when looser than the tests' default (atol 1e-5, rtol 1e-4). */
  readonly tol?: { readonly atol: number; readonly rtol: number };
}
const REAL: Domain = { operands: ["real"] };
const REAL2: Domain = { operands: ["real", "real"] };
/** The variants of an elementwise op the tests check: each attribute setting with its domain. */
export function domainsOf(def: ElementwiseOp): readonly (Domain & { readonly attrs: Attrs })[] {
  return Array.isArray(def.domain) ? def.domain : [{ ...(def.domain as Domain), attrs: {} }];
}

// ---------------------------------------------------------------- shape rules

function elementwiseType(opName: string) {
  return (args: readonly Type[]): Type => {
    const shaped = args.filter((t) => t.shape.length > 0);
    const base = shaped[0] ?? scalar;
    for (const t of shaped)
      if (!shapeEq(t, base))
        throw new ShapeError(`${opName}: operand shapes differ: ${args.map(shapeStr).join(" and ")}`, args);
    const batched = args.some((t) => t.batched);
    if (batched && base.shape.length === 2) throw new ShapeError(`${opName}: a matrix cannot vary per example (${args.map(typeStr).join(" and ")})`, args);
    return withBatch(base, batched);
  };
}
const ew = elementwiseType;

/** A matrix and a scalar added or subtracted: written `W .- g` (the equations refuse `W - g`, which reads as W - g*I). */
const dotted = (n: Node) => n.args.some((x) => x.type.shape.length === 2) && n.args.some((x) => x.type.shape.length === 0);
const isUnitVector = (t: Type) => t.shape.length === 1 && t.shape[0]!.key === "1";
/**
 * The equations' broadcast of a vector of 1 (a size-1 input, `t: 1`): among the operands of an
 * elementwise operation, a vector of 1 beside a vector of another size is the scalar it holds,
 * sum(t), so the IR stays well-typed and its gradient is the sum's (g back in the one element).
 * Otherwise the operands are returned as they are, and the shape rule judges them.
 */
export function unitsAsScalars(args: readonly Node[]): readonly Node[] {
  const types = args.map((a) => a.type);
  if (types.some((t) => t.shape.length > 1) || !types.some(isUnitVector) || !types.some((t) => t.shape.length === 1 && !isUnitVector(t))) return args;
  return args.map((a) => (isUnitVector(a.type) ? apply("sum", [a]) : a));
}

function needVector(op: string, t: Type, what = "operand"): Dim {
  if (t.shape.length !== 1) throw new ShapeError(`${op}: the ${what} must be a vector but is ${shapeStr(t)}`, [t]);
  return t.shape[0]!;
}
function needScalar(op: string, t: Type): void {
  if (t.shape.length !== 0) throw new ShapeError(`${op}: the operand must be a scalar but is ${shapeStr(t)}`, [t]);
}

// ---------------------------------------------------------------- builders (used by rules and front ends)

export function apply(op: OpName, args: readonly Node[], attrs: Attrs = {}): Node {
  const def = OPS[op];
  if (def.arity !== "n" && def.arity !== args.length) throw new Error(`${op} takes ${def.arity} arguments, got ${args.length}`);
  return intern(op, args, attrs, def.type(args.map((a) => a.type), attrs));
}
/** A number; with a type, that number in every element (zeros of a gradient's shape). */
export const konst = (value: number, type: Type = scalar): Node => intern("const", [], { value }, type);
export const leaf = (name: string, role: Role, type: Type): Node => intern("input", [], { name, role }, type);
export const add = (a: Node, b: Node) => apply("add", [a, b]);
export const sub = (a: Node, b: Node) => apply("sub", [a, b]);
export const mul = (a: Node, b: Node) => apply("mul", [a, b]);
export const div = (a: Node, b: Node) => apply("div", [a, b]);
export const neg = (a: Node): Node => apply("neg", [a]);
export const step = (a: Node) => apply("step", [a]);
const one = () => konst(1);

// ---------------------------------------------------------------- heads: block-diagonal matrices

/**
 * A matrix parameter declared with heads (`Rz: { shape: ["H", "H"], heads: 4 }`) is block-diagonal:
 * heads blocks of (R/heads)×(C/heads) on its diagonal, zeros elsewhere. It is stored as its blocks
 * stacked one under another, a matrix [R, C/heads] (R·C/heads floats) whose rows k·R/heads … are head
 * k's block, so every rule that reads a parameter's shape (layout, counts, init) sees what is stored.
 * Its leaf carries `heads`; a product with it is a block-diagonal op below, never a dense one.
 */
export const blockOf = (d: Dim, heads: number): Dim => dimScale(d, 1 / heads);
/** heads·d, with coefficients that come back whole made whole again (3·(H/3) = H). */
export function unblock(d: Dim, heads: number): Dim {
  let r = dimConst(Math.round(d.c * heads * 1e9) / 1e9);
  for (const [k, v] of Object.entries(d.terms)) {
    const c = v * heads;
    r = dimAdd(r, dimScale(dimSize(k), Math.abs(c - Math.round(c)) < 1e-9 ? Math.round(c) : c));
  }
  return r;
}
/** A block-diagonal parameter's leaf: stored [R, C/heads], the matrix it stands for is [R, C]. */
export const headedParam = (name: string, stored: Type, heads: number): Node => intern("input", [], { name, role: "param", heads }, stored);
/** The matrix a value stands for: a block-diagonal parameter's is [R, C], not its stored [R, C/heads]. */
export const matrixType = (w: Node): Type => (w.attrs.heads ? mat(w.type.shape[0]!, unblock(w.type.shape[1]!, w.attrs.heads)) : w.type);
/** W*v, or W'*v: the block-diagonal product when W was declared with heads. */
export function product(w: Node, v: Node, transposed = false): Node {
  const heads = w.attrs.heads;
  if (heads) return apply(transposed ? "bdmatvecT" : "bdmatvec", [w, v], { heads });
  return apply(transposed ? "matvecT" : "matvec", [w, v]);
}
/** A block-diagonal product's rows, rows per head, columns per head and heads at these sizes; sizes the heads do not divide are refused. */
function headSizes(op: string, n: Node, w: Node, cx: EvalContext): [R: number, Rb: number, Cb: number, heads: number] {
  const heads = n.attrs.heads!;
  const R = cx.size(w.type.shape[0]!), Cb = cx.size(w.type.shape[1]!);
  if (R % heads !== 0 || !Number.isInteger(Cb)) throw new RangeError(`${op}: a matrix of ${heads} heads needs sizes divisible by ${heads}, but it has ${R} rows (${w.type.shape.map((d) => d.key).join(", ")})`);
  return [R, R / heads, Cb, heads];
}
function headedType(op: string, w: Type): void {
  if (w.shape.length !== 2 || w.batched) throw new ShapeError(`${op}: the left operand must be a weight matrix but is ${typeStr(w)}`, [w]);
}
const headedStr = (w: Type, heads: number) => `[${w.shape[0]!.key.replace(/ /g, "")},${unblock(w.shape[1]!, heads).key.replace(/ /g, "")}] in ${heads} heads`;

/** Apply an op's vector-Jacobian product rule. */
export const vjpOf = (n: Node, g: Node): readonly (Node | null)[] => OPS[n.op].vjp(g, n);

// ---------------------------------------------------------------- op helpers

/** One block of a unary elementwise op, with its derivative rule seeing its output y and operand x. */
interface UnarySpec<C extends Callable | null> {
  readonly call: C;
  readonly f: (x: number) => number;
  readonly js: (a: string) => string;
  readonly wasm: ((w: WasmWriter, a: string) => string) | NoWasm;
  readonly vjp: (g: Node, y: Node, x: Node) => Node | null;
  readonly domain: Domain;
}
function unary<C extends Callable | null>(name: string, s: UnarySpec<C>): ElementwiseOp & { readonly arity: 1; readonly call: C } {
  const wasm = s.wasm;
  return {
    kind: "elementwise", arity: 1, doc: s.call?.doc ?? name, call: s.call, prec: 3,
    type: ew(name),
    fn: () => s.f,
    js: ([a]) => s.js(a!),
    wasm: typeof wasm === "function" ? (w, [a]) => wasm(w, a!) : wasm,
    vjp: (g, y) => [s.vjp(g, y, y.args[0]!)],
    print: ([a], n) => `${n.op}(${a})`,
    domain: s.domain,
  };
}

const sigm = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
const clip01 = (x: number) => Math.min(Math.max(x, 0), 1);
// The derivative of a clipped linear map y = clip(a x + b, 0, 1) is a where 0 < y < 1.
const insideUnit = (y: Node) => mul(step(y), step(sub(one(), y)));

function matvecFlops(n: Node, size: (d: Dim) => number) {
  const w = n.args[0]!.type.shape;
  return 2 * size(w[0]!) * size(w[1]!);
}

/**
 * JavaScript that reads its operand `a` more than once (`x * x`). A name or an array element is
 * repeated as it is; a computed operand is passed to an arrow function instead, so that nested
 * calls (square(square(…)), softsign(softsign(…))) do not double the text at every level.
 */
function reuse(a: string, body: (x: string) => string): string {
  if (/^[\w$.]+(\[[^[\]()]*\]!?)?$/.test(a) || body("\0").split("\0").length <= 2) return body(a);
  return `((x: number) => ${body("x")})(${a})`;
}
/** `a ** p` with p as JavaScript reads it back exactly (never a fraction such as 1/3). */
const powJs = (a: string, p: number) => `${a} ** ${String(p)}`;
/** float32's largest finite value: an exponent beyond it is clamped to it in WebAssembly's f32 (1^e stays 1). */
const F32_MAX = 3.4028234663852886e38;

// ---------------------------------------------------------------- the table

/**
 * Every op. Adding one: a name here and a block in OPS below, every field of which the compiler
 * asks for (a `wasm: { notOnWasm: "why" }` when it has no WebAssembly form). A function op (one with
 * a `call`) is also exported by its name from src/builder.ts (a compile error there names it) and
 * has a row in the README's function table (test/optable.test.ts compares).
 */
export type OpName =
  | "input" | "const" | "size"
  | "add" | "sub" | "mul" | "div" | "neg" | "max" | "min" | "pow"
  | "sigmoid" | "tanh" | "relu" | "exp" | "log" | "softplus" | "abs" | "sqrt" | "square"
  | "hardSigmoid" | "hardSigmoidKeras" | "softsign" | "step" | "sign" | "act"
  | "matvec" | "matvecT" | "outer" | "bdmatvec" | "bdmatvecT" | "bdouter"
  | "sum" | "bcast" | "sumb" | "expandb"
  | "concat" | "slice" | "pad";

const TABLE = {
  // leaves --------------------------------------------------------------------------------
  input: {
    kind: "leaf", arity: 0, doc: "a named value: input, state, parameter or upstream gradient", call: null, prec: 3,
    type: () => { throw new Error("inputs are made with leaf()"); },
    vjp: () => [],
    print: (_a, n) => n.attrs.name!,
  },
  const: {
    kind: "leaf", arity: 0, doc: "a number, broadcast to the node's type", call: null, prec: 3,
    type: () => scalar,
    vjp: () => [],
    print: (_a, n) => fmtNum(n.attrs.value!),
  },
  size: {
    kind: "tensor", arity: 0, doc: "the value of a size, e.g. H in mean = sum(v)/H", call: null, prec: 3,
    type: () => scalar,
    eval: (_a, n, cx) => Float64Array.of(cx.size(n.attrs.dim!)),
    flops: () => 0, linear: false,
    vjp: () => [],
    print: (_a, n) => (/^\w+$/.test(n.attrs.dim!.key) ? n.attrs.dim!.key : `(${n.attrs.dim!.key})`),
  },

  // elementwise arithmetic (operators: + - .* ./ unary - ^) ----------------------------------
  add: {
    kind: "elementwise", arity: 2, doc: "a + b", call: null, prec: 0, type: ew("+"),
    fn: () => (a, b) => a! + b!, js: ([a, b]) => `${a} + ${b}`,
    wasm: (w, [a, b]) => `(${w.T}.add ${a} ${b})`,
    vjp: (g) => [g, g],
    print: ([a, b], n) => `${a} ${dotted(n) ? ".+" : "+"} ${b}`,
    domain: REAL2,
  },
  sub: {
    kind: "elementwise", arity: 2, doc: "a - b", call: null, prec: 0, rightTighter: true, type: ew("-"),
    fn: () => (a, b) => a! - b!, js: ([a, b]) => `${a} - ${b}`,
    wasm: (w, [a, b]) => `(${w.T}.sub ${a} ${b})`,
    vjp: (g) => [g, neg(g)],
    print: ([a, b], n) => `${a} ${dotted(n) ? ".-" : "-"} ${b}`,
    domain: REAL2,
  },
  mul: {
    kind: "elementwise", arity: 2, doc: "a .* b (elementwise; a scalar scales)", call: null, prec: 1, rightTighter: true, type: ew(".*"),
    fn: () => (a, b) => a! * b!, js: ([a, b]) => `${a} * ${b}`,
    wasm: (w, [a, b]) => `(${w.T}.mul ${a} ${b})`,
    vjp: (g, y) => [mul(g, y.args[1]!), mul(g, y.args[0]!)],
    print: ([a, b], n) => `${a} ${n.args.some((x) => x.type.shape.length === 0) ? "*" : ".*"} ${b}`,
    domain: REAL2,
  },
  div: {
    kind: "elementwise", arity: 2, doc: "a ./ b (elementwise)", call: null, prec: 1, rightTighter: true, type: ew("./"),
    fn: () => (a, b) => a! / b!, js: ([a, b]) => `${a} / ${b}`,
    wasm: (w, [a, b]) => `(${w.T}.div ${a} ${b})`,
    // y = a/b:  da = g/b,  db = -g*a/b^2 = -g*y/b
    vjp: (g, y) => [div(g, y.args[1]!), neg(div(mul(g, y), y.args[1]!))],
    print: ([a, b], n) => `${a} ${n.args[1]!.type.shape.length === 0 ? "/" : "./"} ${b}`,
    domain: { operands: ["real", "nonzero"] },
  },
  neg: {
    kind: "elementwise", arity: 1, doc: "-a", call: null, prec: 2, type: ew("-"),
    fn: () => (a) => -a!, js: ([a]) => `-${a}`,
    wasm: (w, [a]) => `(${w.T}.neg ${a})`,
    vjp: (g) => [neg(g)],
    print: ([a]) => `-${a}`,
    domain: REAL,
  },
  pow: {
    kind: "elementwise", arity: 1, doc: "a ^ p for a constant p", call: null, prec: 3, type: ew("^"),
    // one ** (Math.pow) in the evaluator and the TypeScript kernels: x^1048576 costs what x^3 does
    fn: (at) => { const p = at.p!; return (a) => a! ** p; }, js: ([a], at) => powJs(a!, at.p!),
    // as JavaScript's x ** e, for every x (negative, ±0, ±inf, NaN) and every finite e
    wasm: (w, [a], at) => {
      const { T, k } = w, e = at.p!;
      if (e === 0) return k(1); // x^0 = 1 for every x, NaN included, as in JavaScript
      if (e === 0.5) {
        // as x ** 0.5: (−0)^0.5 = +0 and (−inf)^0.5 = +inf, where sqrt gives −0 and NaN
        const [x, again] = w.twice(0);
        const r = `(${T}.abs (${T}.sqrt ${x}))`;
        return w.select(k(Infinity), r, `(${T}.eq ${again} ${k(-Infinity)})`);
      }
      if (Number.isInteger(e) && Math.abs(e) <= w.powiMax) {
        // a small integer power by repeated squaring ($powi, a loop over the bits of |e|);
        // the sign of a negative base comes out right, and x^−n is 1/x^n
        const r = w.powi(a!, Math.abs(e));
        return e > 0 ? r : `(${T}.div ${k(1)} ${r})`;
      }
      // any other power as e^(e·log|x|) (its error grows with e·log|x|, not with e, unlike
      // squaring's), then JavaScript's signs: an odd power keeps the sign of x (of −0 too), and
      // a fractional power of a finite negative x is NaN
      const ek = w.bits === 32 ? Math.max(-F32_MAX, Math.min(F32_MAX, e)) : e;
      const y = (x: string) => w.math("exp", `(${T}.mul ${k(ek)} ${w.math("log", `(${T}.abs ${x})`)})`);
      if (Number.isInteger(e) && e % 2 === 0) return y(a!);
      const [x, again] = w.twice(0);
      if (Number.isInteger(e)) return w.vector ? `(v128.bitselect ${x} ${y(again)} ${k(-0)})` : `(${T}.copysign ${y(x)} ${again})`;
      const negative = `(${w.vector ? "v128" : "i32"}.and (${T}.lt ${again} ${k(0)}) (${T}.gt ${again} ${k(-Infinity)}))`;
      return w.select(k(NaN), y(x), negative);
    },
    // d(x^p) = p x^(p-1)
    vjp: (g, y) => [mul(g, mul(konst(y.attrs.p!), apply("pow", [y.args[0]!], { p: y.attrs.p! - 1 })))],
    print: ([a], n) => `${/^[\w']+$/.test(a!) || /^\w+\(.*\)$/.test(a!) ? a : `(${a})`}^${fmtNum(n.attrs.p!).includes("/") ? `(${fmtNum(n.attrs.p!)})` : fmtNum(n.attrs.p!)}`,
    // every branch of the WebAssembly form: squaring (±), e^(p·log|x|) (even, odd, fractional), 0 and 1/2
    domain: [2, 3, 0.5, 1.5, -1, -0.5, 0, 10, -9, 66, 65].map((p) => ({ attrs: { p }, operands: [Number.isInteger(p) && p > 0 ? "real" : "positive"] as const })),
  },

  // functions: activations, derivatives in terms of the output where that is cheaper -----------
  sigmoid: unary("sigmoid", {
    call: { usage: "sigmoid(x)", doc: "the logistic sigmoid, `1 / (1 + e^-x)`" },
    f: sigm, js: (a) => `1 / (1 + Math.exp(-${a}))`,
    wasm: (w, a) => `(${w.T}.div ${w.k(1)} (${w.T}.add ${w.k(1)} ${w.math("exp", `(${w.T}.neg ${a})`)}))`,
    vjp: (g, y) => mul(g, mul(y, sub(one(), y))),
    domain: REAL,
  }),
  tanh: unary("tanh", {
    call: { usage: "tanh(x)", doc: "hyperbolic tangent" },
    f: Math.tanh, js: (a) => `Math.tanh(${a})`, wasm: (w, a) => w.math("tanh", a),
    vjp: (g, y) => mul(g, sub(one(), apply("square", [y]))),
    domain: REAL,
  }),
  relu: unary("relu", {
    call: { usage: "relu(x)", doc: "`max(x, 0)`" },
    f: (x) => Math.max(x, 0), js: (a) => `Math.max(${a}, 0)`, wasm: (w, a) => `(${w.T}.max ${a} ${w.k(0)})`,
    vjp: (g, y) => mul(g, step(y)),
    domain: { operands: ["real"], kinks: ([x]) => [x!] },
  }),
  exp: unary("exp", {
    call: { usage: "exp(x)", doc: "`e^x`" },
    f: Math.exp, js: (a) => `Math.exp(${a})`, wasm: (w, a) => w.math("exp", a),
    vjp: (g, y) => mul(g, y),
    domain: REAL,
  }),
  log: unary("log", {
    call: { usage: "log(x)", doc: "natural logarithm" },
    f: Math.log, js: (a) => `Math.log(${a})`, wasm: (w, a) => w.math("log", a),
    vjp: (g, _y, x) => div(g, x),
    domain: { operands: ["positive"] },
  }),
  softplus: unary("softplus", {
    call: { usage: "softplus(x)", doc: "`log(1 + e^x)`" },
    f: softplus, js: (a) => reuse(a, (x) => `(${x} > 0 ? ${x} + Math.log1p(Math.exp(-${x})) : Math.log1p(Math.exp(${x})))`),
    // x > 0 ? x + log1p(exp(−x)) : log1p(exp(x))
    wasm: (w) => {
      const [x, again] = w.twice(0);
      return w.select(`(${w.T}.add ${x} ${w.math("log1p", w.math("exp", `(${w.T}.neg ${again})`))})`, w.math("log1p", w.math("exp", again)), `(${w.T}.gt ${again} ${w.k(0)})`);
    },
    vjp: (g, _y, x) => mul(g, apply("sigmoid", [x])),
    domain: REAL,
  }),
  abs: unary("abs", {
    call: { usage: "abs(x)", doc: "absolute value" },
    f: Math.abs, js: (a) => `Math.abs(${a})`, wasm: (w, a) => `(${w.T}.abs ${a})`,
    vjp: (g, _y, x) => mul(g, apply("sign", [x])),
    domain: { operands: ["real"], kinks: ([x]) => [x!] },
  }),
  sqrt: unary("sqrt", {
    call: { usage: "sqrt(x)", doc: "square root" },
    f: Math.sqrt, js: (a) => `Math.sqrt(${a})`, wasm: (w, a) => `(${w.T}.sqrt ${a})`,
    vjp: (g, y) => div(g, mul(konst(2), y)),
    domain: { operands: ["positive"] },
  }),
  square: unary("square", {
    call: { usage: "square(x)", doc: "`x^2`" },
    f: (x) => x * x, js: (a) => reuse(a, (x) => `${x} * ${x}`),
    wasm: (w) => { const [x, again] = w.twice(0); return `(${w.T}.mul ${x} ${again})`; },
    vjp: (g, _y, x) => mul(g, mul(konst(2), x)),
    domain: REAL,
  }),
  hardSigmoid: unary("hardSigmoid", {
    call: { usage: "hardSigmoid(x)", doc: "tfjs (and Keras ≤ 2.15) form: `clip(0.2x + 0.5, 0, 1)`" },
    f: (x) => clip01(0.2 * x + 0.5), js: (a) => `Math.min(Math.max(0.2 * ${a} + 0.5, 0), 1)`,
    wasm: ({ T, k }, a) => `(${T}.min (${T}.max (${T}.add (${T}.mul ${k(0.2)} ${a}) ${k(0.5)}) ${k(0)}) ${k(1)})`,
    vjp: (g, y) => mul(g, mul(konst(0.2), insideUnit(y))),
    domain: { operands: ["real"], kinks: ([x]) => [add(x!, konst(2.5)), sub(x!, konst(2.5))] },
  }),
  hardSigmoidKeras: unary("hardSigmoidKeras", {
    call: { usage: "hardSigmoidKeras(x)", doc: "Keras 3 form: `clip(x/6 + 0.5, 0, 1)`" },
    f: (x) => clip01(x / 6 + 0.5), js: (a) => `Math.min(Math.max(${a} / 6 + 0.5, 0), 1)`,
    wasm: ({ T, k }, a) => `(${T}.min (${T}.max (${T}.add (${T}.div ${a} ${k(6)}) ${k(0.5)}) ${k(0)}) ${k(1)})`,
    vjp: (g, y) => mul(g, mul(konst(1 / 6), insideUnit(y))),
    domain: { operands: ["real"], kinks: ([x]) => [add(x!, konst(3)), sub(x!, konst(3))] },
  }),
  softsign: unary("softsign", {
    call: { usage: "softsign(x)", doc: "`x / (1 + abs(x))`, as Keras's softsign" },
    f: (x) => x / (1 + Math.abs(x)), js: (a) => reuse(a, (x) => `${x} / (1 + Math.abs(${x}))`),
    wasm: (w) => { const [x, again] = w.twice(0); return `(${w.T}.div ${x} (${w.T}.add ${w.k(1)} (${w.T}.abs ${again})))`; },
    // 1/(1 + |x|)^2 = (1 - |y|)^2, from the output
    vjp: (g, y) => mul(g, apply("square", [sub(one(), apply("abs", [y]))])),
    domain: { operands: ["real"], kinks: ([x]) => [x!] },
  }),
  max: {
    kind: "elementwise", arity: 2, doc: "elementwise maximum (ties send the gradient to b)", prec: 3, type: ew("max"),
    call: { usage: "max(a, b)", doc: "elementwise maximum" },
    fn: () => (a, b) => Math.max(a!, b!), js: ([a, b]) => `Math.max(${a}, ${b})`,
    wasm: (w, [a, b]) => `(${w.T}.max ${a} ${b})`,
    vjp: (g, y) => { const s = step(sub(y.args[0]!, y.args[1]!)); return [mul(g, s), mul(g, sub(one(), s))]; },
    print: ([a, b]) => `max(${a}, ${b})`,
    domain: { operands: ["real", "real"], kinks: ([a, b]) => [sub(a!, b!)] },
  },
  min: {
    kind: "elementwise", arity: 2, doc: "elementwise minimum (ties send the gradient to b)", prec: 3, type: ew("min"),
    call: { usage: "min(a, b)", doc: "elementwise minimum" },
    fn: () => (a, b) => Math.min(a!, b!), js: ([a, b]) => `Math.min(${a}, ${b})`,
    wasm: (w, [a, b]) => `(${w.T}.min ${a} ${b})`,
    vjp: (g, y) => { const s = step(sub(y.args[1]!, y.args[0]!)); return [mul(g, s), mul(g, sub(one(), s))]; },
    print: ([a, b]) => `min(${a}, ${b})`,
    domain: { operands: ["real", "real"], kinks: ([a, b]) => [sub(a!, b!)] },
  },
  // derivatives of relu, abs, max: zero almost everywhere
  step: unary("step", {
    call: null,
    f: (x) => (x > 0 ? 1 : 0), js: (a) => `(${a} > 0 ? 1 : 0)`,
    wasm: ({ T, k, select }, a) => select(k(1), k(0), `(${T}.gt ${a} ${k(0)})`),
    vjp: () => null,
    domain: { operands: ["real"], kinks: ([x]) => [x!] },
  }),
  sign: unary("sign", {
    call: null,
    f: Math.sign, js: (a) => `Math.sign(${a})`,
    wasm: ({ T, k, select, twice }) => { const [x, again] = twice(0); return select(k(1), select(k(-1), `(${T}.mul ${x} ${k(0)})`, `(${T}.lt ${again} ${k(0)})`), `(${T}.gt ${again} ${k(0)})`); },
    vjp: () => null,
    domain: { operands: ["real"], kinks: ([x]) => [x!] },
  }),
  act: {
    kind: "elementwise", arity: 1, doc: "a user-defined activation (mathjs expression in x)", call: null, prec: 3, type: ew("activation"),
    fn: (at) => compileActivation(at.fn!.expr).f as (...x: number[]) => number,
    js: ([a], at) => reuse(a!, compileActivation(at.fn!.expr).js),
    wasm: { notOnWasm: "a user's activation is a mathjs expression, compiled to JavaScript only" },
    // mathjs differentiates the expression, and each op it calls by its own vjp (src/activations.ts);
    // the derivative is itself an activation, so this recurses.
    vjp: (g, y) => {
      const f = y.attrs.fn!;
      return [mul(g, apply("act", [y.args[0]!], { fn: { name: `${f.name}'`, expr: differentiateActivation(f.expr) } }))];
    },
    print: ([a], n) => `${n.attrs.fn!.name}(${a})`,
    domain: [
      { attrs: { fn: { name: "mish", expr: "x * tanh(log(1 + exp(x)))" } }, operands: ["real"] },
      { attrs: { fn: { name: "atan", expr: "atan(x)" } }, operands: ["real"] },
      { attrs: { fn: { name: "cubic", expr: "sin(x) + x^3 / 3" } }, operands: ["real"] },
      // its second derivative is undefined at 0 (mathjs says abs(x)/x): first order only
      { attrs: { fn: { name: "softsign", expr: "x / (1 + abs(x))" } }, operands: ["real"], kinks: ([x]) => [x!], order: 1 },
      // calls of table ops, differentiated by their vjps (src/activations.ts): smooth, and with kinks
      { attrs: { fn: { name: "swish", expr: "x * sigmoid(x)" } }, operands: ["real"] },
      { attrs: { fn: { name: "leaky", expr: "max(x, 0.1 * x) + abs(relu(x - 1))" } }, operands: ["real"], kinks: ([x]) => [x!, sub(x!, one())] },
    ],
  },

  // linear algebra (tensor ops: their kernels are emitOp in codegen/emit.ts, or products) ----------------------------------------------------------------------------
  matvec: {
    kind: "tensor", arity: 2, doc: "W*x: matrix times (batched) vector", call: null, prec: 1, rightTighter: true,
    type: ([w, x]) => {
      if (w!.shape.length !== 2 || w!.batched) throw new ShapeError(`W*x: the left operand must be a weight matrix but is ${typeStr(w!)}`, [w!, x!]);
      if (x!.shape.length !== 1 || !dimEq(w!.shape[1]!, x!.shape[0]!))
        throw new ShapeError(`W*x: the matrix is ${shapeStr(w!)} but the vector is ${shapeStr(x!)}`, [w!, x!]);
      return vec(w!.shape[0]!, x!.batched);
    },
    eval: ([w, x], n, cx) => {
      const [M, N] = n.args[0]!.type.shape.map(cx.size) as [number, number];
      const B = n.args[1]!.type.batched ? cx.B : 1;
      const y = new Float64Array(B * M);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < M; i++) {
          let s = 0;
          for (let j = 0; j < N; j++) s += w![i * N + j]! * x![b * N + j]!;
          y[b * M + i] = s;
        }
      return y;
    },
    flops: matvecFlops,
    linear: 1,
    // y = W x:  dW = Σ_b g xᵀ,  dx = Wᵀ g
    vjp: (g, y) => [apply("outer", [g, y.args[1]!]), apply("matvecT", [y.args[0]!, g])],
    print: ([w, x]) => `${w}*${x}`,
  },
  matvecT: {
    kind: "tensor", arity: 2, doc: "W'*y: transposed matrix times vector", call: null, prec: 1, rightTighter: true,
    type: ([w, y]) => {
      if (w!.shape.length !== 2 || w!.batched) throw new ShapeError(`W'*y: the left operand must be a matrix but is ${typeStr(w!)}`, [w!, y!]);
      if (y!.shape.length !== 1 || !dimEq(w!.shape[0]!, y!.shape[0]!))
        throw new ShapeError(`W'*y: the matrix is ${shapeStr(w!)} but the vector is ${shapeStr(y!)}`, [w!, y!]);
      return vec(w!.shape[1]!, y!.batched);
    },
    eval: ([w, y], n, cx) => {
      const [M, N] = n.args[0]!.type.shape.map(cx.size) as [number, number];
      const B = n.args[1]!.type.batched ? cx.B : 1;
      const x = new Float64Array(B * N);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < M; i++) {
          const yi = y![b * M + i]!;
          for (let j = 0; j < N; j++) x[b * N + j]! += w![i * N + j]! * yi;
        }
      return x;
    },
    flops: matvecFlops,
    linear: 1,
    // x = Wᵀ y:  dW = Σ_b y gᵀ,  dy = W g
    vjp: (g, x) => [apply("outer", [x.args[1]!, g]), apply("matvec", [x.args[0]!, g])],
    print: ([w, y]) => `${w}'*${y}`,
  },
  outer: {
    kind: "tensor", arity: 2, doc: "outer(u, v) = Σ over the batch of u*v' (a weight gradient)", call: null, prec: 3,
    type: ([u, v]) => mat(needVector("outer", u!, "first operand"), needVector("outer", v!, "second operand")),
    eval: ([u, v], n, cx) => {
      const M = cx.size(n.type.shape[0]!), N = cx.size(n.type.shape[1]!);
      const [bu, bv] = [n.args[0]!.type.batched, n.args[1]!.type.batched];
      const B = bu || bv ? cx.B : 1;
      const w = new Float64Array(M * N);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < M; i++) {
          const ui = u![(bu ? b * M : 0) + i]!;
          for (let j = 0; j < N; j++) w[i * N + j]! += ui * v![(bv ? b * N : 0) + j]!;
        }
      return w;
    },
    flops: (n, size) => 2 * size(n.type.shape[0]!) * size(n.type.shape[1]!),
    linear: "each",
    // W = Σ_b u vᵀ:  du = G v,  dv = Gᵀ u
    vjp: (g, w) => [apply("matvec", [g, w.args[1]!]), apply("matvecT", [g, w.args[0]!])],
    print: ([u, v]) => `outer(${u}, ${v})`,
  },

  // block-diagonal products (heads): per head, a product of that head's block with its slice ------
  bdmatvec: {
    kind: "tensor", arity: 2, doc: "W*x with W block-diagonal (declared with heads): each head's block times its slice of x", call: null, prec: 1, rightTighter: true,
    type: ([w, x], at) => {
      headedType("W*x", w!);
      if (x!.shape.length !== 1 || !dimEq(w!.shape[1]!, blockOf(x!.shape[0]!, at.heads!)))
        throw new ShapeError(`W*x: the matrix is ${headedStr(w!, at.heads!)} but the vector is ${shapeStr(x!)}`, [w!, x!]);
      return vec(w!.shape[0]!, x!.batched);
    },
    eval: ([w, x], n, cx) => {
      const [R, Rb, Cb, heads] = headSizes("W*x", n, n.args[0]!, cx);
      const C = Cb * heads, B = n.args[1]!.type.batched ? cx.B : 1;
      const y = new Float64Array(B * R);
      for (let b = 0; b < B; b++)
        for (let r = 0; r < R; r++) {
          const xk = b * C + Math.floor(r / Rb) * Cb;
          let s = 0;
          for (let j = 0; j < Cb; j++) s += w![r * Cb + j]! * x![xk + j]!;
          y[b * R + r] = s;
        }
      return y;
    },
    flops: matvecFlops, // 2·R·C/heads: the stored blocks, each entry once
    linear: 1,
    // y_k = W_k x_k per head k:  dW_k = Σ_b g_k x_kᵀ,  dx_k = W_kᵀ g_k
    vjp: (g, y) => [apply("bdouter", [g, y.args[1]!], y.attrs), apply("bdmatvecT", [y.args[0]!, g], y.attrs)],
    print: ([w, x]) => `${w}*${x}`,
  },
  bdmatvecT: {
    kind: "tensor", arity: 2, doc: "W'*y with W block-diagonal: each head's block transposed times its slice of y", call: null, prec: 1, rightTighter: true,
    type: ([w, y], at) => {
      headedType("W'*y", w!);
      if (y!.shape.length !== 1 || !dimEq(w!.shape[0]!, y!.shape[0]!))
        throw new ShapeError(`W'*y: the matrix is ${headedStr(w!, at.heads!)} but the vector is ${shapeStr(y!)}`, [w!, y!]);
      return vec(unblock(w!.shape[1]!, at.heads!), y!.batched);
    },
    eval: ([w, y], n, cx) => {
      const [R, Rb, Cb, heads] = headSizes("W'*y", n, n.args[0]!, cx);
      const C = Cb * heads, B = n.args[1]!.type.batched ? cx.B : 1;
      const x = new Float64Array(B * C);
      for (let b = 0; b < B; b++)
        for (let r = 0; r < R; r++) {
          const xk = b * C + Math.floor(r / Rb) * Cb, yr = y![b * R + r]!;
          for (let j = 0; j < Cb; j++) x[xk + j]! += w![r * Cb + j]! * yr;
        }
      return x;
    },
    flops: matvecFlops,
    linear: 1,
    // x_k = W_kᵀ y_k per head:  dW_k = Σ_b y_k g_kᵀ,  dy_k = W_k g_k
    vjp: (g, x) => [apply("bdouter", [x.args[1]!, g], x.attrs), apply("bdmatvec", [x.args[0]!, g], x.attrs)],
    print: ([w, y]) => `${w}'*${y}`,
  },
  bdouter: {
    kind: "tensor", arity: 2, doc: "bdouter(u, v, heads): per head k, Σ over the batch of u_k*v_k' (a block-diagonal weight's gradient, its blocks stacked)", call: null, prec: 3,
    type: ([u, v], at) => mat(needVector("bdouter", u!, "first operand"), blockOf(needVector("bdouter", v!, "second operand"), at.heads!)),
    eval: ([u, v], n, cx) => {
      const heads = n.attrs.heads!;
      const R = cx.size(n.type.shape[0]!), Cb = cx.size(n.type.shape[1]!), Rb = R / heads, C = Cb * heads;
      if (!Number.isInteger(Rb) || !Number.isInteger(Cb)) throw new RangeError(`bdouter: ${heads} heads need sizes divisible by ${heads}, not ${R} and ${C}`);
      const [bu, bv] = [n.args[0]!.type.batched, n.args[1]!.type.batched];
      const B = bu || bv ? cx.B : 1;
      const w = new Float64Array(R * Cb);
      for (let b = 0; b < B; b++)
        for (let r = 0; r < R; r++) {
          const ur = u![(bu ? b * R : 0) + r]!, vk = (bv ? b * C : 0) + Math.floor(r / Rb) * Cb;
          for (let j = 0; j < Cb; j++) w[r * Cb + j]! += ur * v![vk + j]!;
        }
      return w;
    },
    flops: (n, size) => 2 * size(n.type.shape[0]!) * size(n.type.shape[1]!),
    linear: "each",
    // W_k = Σ_b u_k v_kᵀ:  du_k = G_k v_k,  dv_k = G_kᵀ u_k
    vjp: (g, w) => [apply("bdmatvec", [g, w.args[1]!], w.attrs), apply("bdmatvecT", [g, w.args[0]!], w.attrs)],
    print: ([u, v], n) => `bdouter(${u}, ${v}, ${n.attrs.heads})`,
  },

  // reductions and broadcasts -------------------------------------------------------------------
  sum: {
    kind: "tensor", arity: 1, doc: "sum of a vector's (or matrix's) elements", call: null, prec: 3,
    type: ([v]) => {
      if (v!.shape.length === 0) throw new ShapeError(`sum: the operand must be a vector but is a scalar`, [v!]);
      return withBatch(scalar, v!.batched);
    },
    eval: ([v], n, cx) => {
      const N = n.args[0]!.type.shape.reduce((p, d) => p * cx.size(d), 1), B = n.type.batched ? cx.B : 1;
      const s = new Float64Array(B);
      for (let b = 0; b < B; b++) for (let j = 0; j < N; j++) s[b]! += v![b * N + j]!;
      return s;
    },
    flops: (n, size) => n.args[0]!.type.shape.reduce((p, d) => p * size(d), 1),
    linear: "each",
    // d(Σ v) = g in every element
    vjp: (g, y) => {
      const t = y.args[0]!.type;
      return [t.shape.length === 1 ? apply("bcast", [g], { dim: t.shape[0]! }) : mul(g, konst(1, withBatch(t, false)))];
    },
    print: ([a]) => `sum(${a})`,
  },
  bcast: {
    kind: "tensor", arity: 1, doc: "a scalar repeated into a vector", call: null, prec: 3,
    type: ([s], at) => { needScalar("broadcast", s!); return vec(at.dim!, s!.batched); },
    eval: ([s], n, cx) => {
      const N = cx.size(n.attrs.dim!), B = n.type.batched ? cx.B : 1;
      const v = new Float64Array(B * N);
      for (let b = 0; b < B; b++) v.fill(s![b]!, b * N, b * N + N);
      return v;
    },
    flops: () => 0,
    linear: "each",
    vjp: (g) => [apply("sum", [g])],
    print: ([a], n) => `bcast(${a}, ${n.attrs.dim!.key})`,
  },
  sumb: {
    kind: "tensor", arity: 1, doc: "sum over the batch (gradient of a shared value)", call: null, prec: 3,
    type: ([v]) => withBatch(v!, false),
    eval: ([v], n, cx) => {
      const N = n.type.shape.reduce((p, d) => p * cx.size(d), 1);
      const s = new Float64Array(N);
      for (let b = 0; b < cx.B; b++) for (let j = 0; j < N; j++) s[j]! += v![b * N + j]!;
      return s;
    },
    flops: (n, size) => n.type.shape.reduce((p, d) => p * size(d), 1),
    linear: "each",
    vjp: (g) => [apply("expandb", [g])],
    print: ([a]) => `sumb(${a})`,
  },
  expandb: {
    kind: "tensor", arity: 1, doc: "a shared value repeated for every example", call: null, prec: 3,
    type: ([v]) => withBatch(v!, true),
    eval: ([v], _n, cx) => {
      const out = new Float64Array(cx.B * v!.length);
      for (let b = 0; b < cx.B; b++) out.set(v!, b * v!.length);
      return out;
    },
    flops: () => 0,
    linear: "each",
    vjp: (g) => [apply("sumb", [g])],
    print: ([a]) => `expandb(${a})`,
  },

  // vectors: concatenation, slicing ---------------------------------------------------------------
  concat: {
    kind: "tensor", arity: "n", doc: "concat(a, b, …): vectors joined end to end", call: null, prec: 3,
    type: (args) => {
      if (args.length < 1) throw new ShapeError("concat needs at least one vector");
      let n = needVector("concat", args[0]!, "first operand");
      for (const t of args.slice(1)) n = dimAdd(n, needVector("concat", t));
      return vec(n, args.some((t) => t.batched));
    },
    eval: (args, n, cx) => {
      const B = n.type.batched ? cx.B : 1, N = cx.size(n.type.shape[0]!);
      const out = new Float64Array(B * N);
      let off = 0;
      n.args.forEach((a, k) => {
        const len = cx.size(a.type.shape[0]!), bat = a.type.batched;
        for (let b = 0; b < B; b++) out.set(args[k]!.subarray(bat ? b * len : 0, (bat ? b * len : 0) + len), b * N + off);
        off += len;
      });
      return out;
    },
    flops: () => 0,
    linear: "all",
    vjp: (g, y) => {
      let start = { terms: {}, c: 0, key: "0" } as Dim;
      return y.args.map((a) => {
        const len = a.type.shape[0]!;
        const s = apply("slice", [g], { start, len });
        start = dimAdd(start, len);
        return s;
      });
    },
    print: (a) => `concat(${a.join(", ")})`,
  },
  slice: {
    kind: "tensor", arity: 1, doc: "slice(v, start, len): len elements from start (0-based)", call: null, prec: 3,
    type: ([v], at) => {
      needVector("slice", v!);
      return vec(at.len!, v!.batched);
    },
    eval: ([v], n, cx) => {
      const B = n.type.batched ? cx.B : 1, N = cx.size(n.args[0]!.type.shape[0]!);
      const s = cx.size(n.attrs.start!), L = cx.size(n.attrs.len!);
      if (s < 0 || s + L > N) throw new RangeError(`slice(start ${s}, len ${L}) is outside a vector of ${N}`);
      const out = new Float64Array(B * L);
      for (let b = 0; b < B; b++) out.set(v!.subarray(b * N + s, b * N + s + L), b * L);
      return out;
    },
    flops: () => 0,
    linear: "each",
    vjp: (g, y) => [apply("pad", [g], { start: y.attrs.start!, dim: y.args[0]!.type.shape[0]! })],
    print: ([a], n) => `slice(${a}, ${n.attrs.start!.key}, ${n.attrs.len!.key})`,
  },
  pad: {
    kind: "tensor", arity: 1, doc: "pad(v, start, n): v placed at start in n zeros (gradient of slice)", call: null, prec: 3,
    type: ([v], at) => { needVector("pad", v!); return vec(at.dim!, v!.batched); },
    eval: ([v], n, cx) => {
      const B = n.type.batched ? cx.B : 1, N = cx.size(n.attrs.dim!), L = cx.size(n.args[0]!.type.shape[0]!);
      const s = cx.size(n.attrs.start!);
      const out = new Float64Array(B * N);
      for (let b = 0; b < B; b++) out.set(v!.subarray(b * L, b * L + L), b * N + s);
      return out;
    },
    flops: () => 0,
    linear: "each",
    vjp: (g, y) => [apply("slice", [g], { start: y.attrs.start!, len: y.args[0]!.type.shape[0]! })],
    print: ([a], n) => `pad(${a}, ${n.attrs.start!.key}, ${n.attrs.dim!.key})`,
  },
} satisfies Record<OpName, OpDef>;
/** Every op, by name. */
export const OPS: Readonly<Record<OpName, OpDef>> = TABLE;

/** The ops users call by name (their block has a `call`): functions of the equations and the builder. */
export type FunctionOpName = { [K in OpName]: (typeof TABLE)[K]["call"] extends null ? never : K }[OpName];
/** The ops whose kernels are their own loops or products (codegen/emit.ts), not elementwise expressions. */
export type TensorOpName = { [K in OpName]: (typeof TABLE)[K]["kind"] extends "tensor" ? K : never }[OpName];
/** The function ops, in the table's order. */
export const FUNCTION_OPS: readonly FunctionOpName[] = (Object.keys(TABLE) as OpName[]).filter((op): op is FunctionOpName => TABLE[op].call !== null);
/** How many operands a function op takes, as its type says. */
export type ArityOf<K extends OpName> = (typeof TABLE)[K]["arity"];

export const opDef = (op: OpName): OpDef => OPS[op];

export function fmtNum(v: number): string {
  if (Number.isInteger(v)) return String(v);
  for (const d of [2, 3, 4, 6, 8]) // print 1/6 and 1/3 as fractions: they are what the user wrote
    if (Math.abs(v * d - Math.round(v * d)) < 1e-12 && Math.abs(v) < 1e6 && String(v).length > 8) return `${Math.round(v * d)}/${d}`;
  return String(v);
}

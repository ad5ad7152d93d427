// The op table. Each op holds, in one block: its shape rule, its evaluation, its derivative rule
// (a vector-Jacobian product that may use the op's own output y), its printing and its FLOP count.
// The engines (differentiator, simplifier, evaluator, printer) contain no op-specific code.
import { type Dim, dimAdd, dimEq } from "./dims.ts";
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
  readonly arity: number | "n";
  readonly doc: string;
  readonly type: (args: readonly Type[], attrs: Attrs) => Type;
  readonly vjp: Vjp;
  /** Precedence for printing: 0 sums, 1 products, 2 negation, 3 atoms and calls. */
  readonly prec: number;
  readonly print: (a: readonly string[], n: Node) => string;
}
/** Elementwise ops broadcast scalars over vectors and shared values over the batch; the engines do that. */
export interface ElementwiseOp extends Common {
  readonly kind: "elementwise";
  readonly fn: (attrs: Attrs) => (...x: number[]) => number;
  /** JavaScript source of the scalar computation, for emitted kernels. */
  readonly js: (a: readonly string[], attrs: Attrs) => string;
}
export interface TensorOp extends Common {
  readonly kind: "tensor";
  readonly eval: (args: readonly Float64Array[], n: Node, cx: EvalContext) => Float64Array;
  /** FLOPs per example (or per step for shared values). */
  readonly flops: (n: Node, size: (d: Dim) => number) => number;
}
export interface LeafOp extends Common {
  readonly kind: "leaf";
}
export type OpDef = ElementwiseOp | TensorOp | LeafOp;

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

/** Apply an op's vector-Jacobian product rule. */
export const vjpOf = (n: Node, g: Node): readonly (Node | null)[] => OPS[n.op].vjp(g, n);

// ---------------------------------------------------------------- op helpers

function unary(
  doc: string,
  f: (x: number) => number,
  js: (a: string) => string,
  vjp: (g: Node, y: Node, x: Node) => Node | null,
): ElementwiseOp {
  return {
    kind: "elementwise", arity: 1, doc, prec: 3,
    type: ew(doc),
    fn: () => f,
    js: ([a]) => js(a!),
    vjp: (g, y) => [vjp(g, y, y.args[0]!)],
    print: ([a], n) => `${n.op}(${a})`,
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

// ---------------------------------------------------------------- the table

/** Every op. Adding one: a name here and a block in OPS below; the compiler insists on both. */
export type OpName =
  | "input" | "const" | "size"
  | "add" | "sub" | "mul" | "div" | "neg" | "max" | "min" | "pow"
  | "sigmoid" | "tanh" | "relu" | "exp" | "log" | "softplus" | "abs" | "sqrt" | "square"
  | "hardSigmoid" | "hardSigmoidKeras" | "step" | "sign" | "act"
  | "matvec" | "matvecT" | "outer"
  | "sum" | "bcast" | "sumb" | "expandb"
  | "concat" | "slice" | "pad";

export const OPS: Readonly<Record<OpName, OpDef>> = {
  // leaves --------------------------------------------------------------------------------
  input: {
    kind: "leaf", arity: 0, doc: "a named value: input, state, parameter or upstream gradient", prec: 3,
    type: () => { throw new Error("inputs are made with leaf()"); },
    vjp: () => [],
    print: (_a, n) => n.attrs.name!,
  },
  const: {
    kind: "leaf", arity: 0, doc: "a number, broadcast to the node's type", prec: 3,
    type: () => scalar,
    vjp: () => [],
    print: (_a, n) => fmtNum(n.attrs.value!),
  },
  size: {
    kind: "tensor", arity: 0, doc: "the value of a size, e.g. H in mean = sum(v)/H", prec: 3,
    type: () => scalar,
    eval: (_a, n, cx) => Float64Array.of(cx.size(n.attrs.dim!)),
    flops: () => 0,
    vjp: () => [],
    print: (_a, n) => (/^\w+$/.test(n.attrs.dim!.key) ? n.attrs.dim!.key : `(${n.attrs.dim!.key})`),
  },

  // elementwise arithmetic -------------------------------------------------------------------
  add: {
    kind: "elementwise", arity: 2, doc: "a + b", prec: 0, type: ew("+"),
    fn: () => (a, b) => a! + b!, js: ([a, b]) => `${a} + ${b}`,
    vjp: (g) => [g, g],
    print: ([a, b]) => `${a} + ${b}`,
  },
  sub: {
    kind: "elementwise", arity: 2, doc: "a - b", prec: 0, type: ew("-"),
    fn: () => (a, b) => a! - b!, js: ([a, b]) => `${a} - ${b}`,
    vjp: (g) => [g, neg(g)],
    print: ([a, b]) => `${a} - ${b}`,
  },
  mul: {
    kind: "elementwise", arity: 2, doc: "a .* b (elementwise; a scalar scales)", prec: 1, type: ew(".*"),
    fn: () => (a, b) => a! * b!, js: ([a, b]) => `${a} * ${b}`,
    vjp: (g, y) => [mul(g, y.args[1]!), mul(g, y.args[0]!)],
    print: ([a, b], n) => `${a} ${n.args.some((x) => x.type.shape.length === 0) ? "*" : ".*"} ${b}`,
  },
  div: {
    kind: "elementwise", arity: 2, doc: "a ./ b (elementwise)", prec: 1, type: ew("./"),
    fn: () => (a, b) => a! / b!, js: ([a, b]) => `${a} / ${b}`,
    // y = a/b:  da = g/b,  db = -g*a/b^2 = -g*y/b
    vjp: (g, y) => [div(g, y.args[1]!), neg(div(mul(g, y), y.args[1]!))],
    print: ([a, b], n) => `${a} ${n.args[1]!.type.shape.length === 0 ? "/" : "./"} ${b}`,
  },
  neg: {
    kind: "elementwise", arity: 1, doc: "-a", prec: 2, type: ew("-"),
    fn: () => (a) => -a!, js: ([a]) => `-${a}`,
    vjp: (g) => [neg(g)],
    print: ([a]) => `-${a}`,
  },
  max: {
    kind: "elementwise", arity: 2, doc: "elementwise maximum (ties send the gradient to b)", prec: 3, type: ew("max"),
    fn: () => (a, b) => Math.max(a!, b!), js: ([a, b]) => `Math.max(${a}, ${b})`,
    vjp: (g, y) => { const s = step(sub(y.args[0]!, y.args[1]!)); return [mul(g, s), mul(g, sub(one(), s))]; },
    print: ([a, b]) => `max(${a}, ${b})`,
  },
  min: {
    kind: "elementwise", arity: 2, doc: "elementwise minimum (ties send the gradient to b)", prec: 3, type: ew("min"),
    fn: () => (a, b) => Math.min(a!, b!), js: ([a, b]) => `Math.min(${a}, ${b})`,
    vjp: (g, y) => { const s = step(sub(y.args[1]!, y.args[0]!)); return [mul(g, s), mul(g, sub(one(), s))]; },
    print: ([a, b]) => `min(${a}, ${b})`,
  },
  pow: {
    kind: "elementwise", arity: 1, doc: "a ^ p for a constant p", prec: 3, type: ew("^"),
    // one ** (Math.pow) in the evaluator and the TypeScript kernels: x^1048576 costs what x^3 does
    fn: (at) => { const p = at.p!; return (a) => a! ** p; }, js: ([a], at) => powJs(a!, at.p!),
    // d(x^p) = p x^(p-1)
    vjp: (g, y) => [mul(g, mul(konst(y.attrs.p!), apply("pow", [y.args[0]!], { p: y.attrs.p! - 1 })))],
    print: ([a], n) => `${/^[\w']+$/.test(a!) || /^\w+\(.*\)$/.test(a!) ? a : `(${a})`}^${fmtNum(n.attrs.p!).includes("/") ? `(${fmtNum(n.attrs.p!)})` : fmtNum(n.attrs.p!)}`,
  },

  // activations: derivatives in terms of the output where that is cheaper ---------------------
  sigmoid: unary("sigmoid", sigm, (a) => `1 / (1 + Math.exp(-${a}))`, (g, y) => mul(g, mul(y, sub(one(), y)))),
  tanh: unary("tanh", Math.tanh, (a) => `Math.tanh(${a})`, (g, y) => mul(g, sub(one(), apply("square", [y])))),
  relu: unary("relu", (x) => (x > 0 ? x : 0), (a) => `Math.max(${a}, 0)`, (g, y) => mul(g, step(y))),
  exp: unary("exp", Math.exp, (a) => `Math.exp(${a})`, (g, y) => mul(g, y)),
  log: unary("log", Math.log, (a) => `Math.log(${a})`, (g, _y, x) => div(g, x)),
  softplus: unary("softplus", softplus, (a) => reuse(a, (x) => `(${x} > 0 ? ${x} + Math.log1p(Math.exp(-${x})) : Math.log1p(Math.exp(${x})))`), (g, _y, x) => mul(g, apply("sigmoid", [x]))),
  abs: unary("abs", Math.abs, (a) => `Math.abs(${a})`, (g, _y, x) => mul(g, apply("sign", [x]))),
  sqrt: unary("sqrt", Math.sqrt, (a) => `Math.sqrt(${a})`, (g, y) => div(g, mul(konst(2), y))),
  square: unary("square", (x) => x * x, (a) => reuse(a, (x) => `${x} * ${x}`), (g, _y, x) => mul(g, mul(konst(2), x))),
  hardSigmoid: unary("hardSigmoid", (x) => clip01(0.2 * x + 0.5), (a) => `Math.min(Math.max(0.2 * ${a} + 0.5, 0), 1)`, (g, y) => mul(g, mul(konst(0.2), insideUnit(y)))),
  hardSigmoidKeras: unary("hardSigmoidKeras", (x) => clip01(x / 6 + 0.5), (a) => `Math.min(Math.max(${a} / 6 + 0.5, 0), 1)`, (g, y) => mul(g, mul(konst(1 / 6), insideUnit(y)))),
  step: unary("step", (x) => (x > 0 ? 1 : 0), (a) => `(${a} > 0 ? 1 : 0)`, () => null),
  sign: unary("sign", Math.sign, (a) => `Math.sign(${a})`, () => null),
  act: {
    kind: "elementwise", arity: 1, doc: "a user-defined activation (mathjs expression in x)", prec: 3, type: ew("activation"),
    fn: (at) => compileActivation(at.fn!.expr).f as (...x: number[]) => number,
    js: ([a], at) => reuse(a!, compileActivation(at.fn!.expr).js),
    // mathjs differentiates the expression; the derivative is itself an activation, so this recurses.
    vjp: (g, y) => {
      const f = y.attrs.fn!;
      return [mul(g, apply("act", [y.args[0]!], { fn: { name: `${f.name}'`, expr: differentiateActivation(f.expr) } }))];
    },
    print: ([a], n) => `${n.attrs.fn!.name}(${a})`,
  },

  // linear algebra ----------------------------------------------------------------------------
  matvec: {
    kind: "tensor", arity: 2, doc: "W*x: matrix times (batched) vector", prec: 1,
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
    // y = W x:  dW = Σ_b g xᵀ,  dx = Wᵀ g
    vjp: (g, y) => [apply("outer", [g, y.args[1]!]), apply("matvecT", [y.args[0]!, g])],
    print: ([w, x]) => `${w}*${x}`,
  },
  matvecT: {
    kind: "tensor", arity: 2, doc: "W'*y: transposed matrix times vector", prec: 1,
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
    // x = Wᵀ y:  dW = Σ_b y gᵀ,  dy = W g
    vjp: (g, x) => [apply("outer", [x.args[1]!, g]), apply("matvec", [x.args[0]!, g])],
    print: ([w, y]) => `${w}'*${y}`,
  },
  outer: {
    kind: "tensor", arity: 2, doc: "outer(u, v) = Σ over the batch of u*v' (a weight gradient)", prec: 3,
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
    // W = Σ_b u vᵀ:  du = G v,  dv = Gᵀ u
    vjp: (g, w) => [apply("matvec", [g, w.args[1]!]), apply("matvecT", [g, w.args[0]!])],
    print: ([u, v]) => `outer(${u}, ${v})`,
  },

  // reductions and broadcasts -------------------------------------------------------------------
  sum: {
    kind: "tensor", arity: 1, doc: "sum of a vector's (or matrix's) elements", prec: 3,
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
    // d(Σ v) = g in every element
    vjp: (g, y) => {
      const t = y.args[0]!.type;
      return [t.shape.length === 1 ? apply("bcast", [g], { dim: t.shape[0]! }) : mul(g, konst(1, withBatch(t, false)))];
    },
    print: ([a]) => `sum(${a})`,
  },
  bcast: {
    kind: "tensor", arity: 1, doc: "a scalar repeated into a vector", prec: 3,
    type: ([s], at) => { needScalar("broadcast", s!); return vec(at.dim!, s!.batched); },
    eval: ([s], n, cx) => {
      const N = cx.size(n.attrs.dim!), B = n.type.batched ? cx.B : 1;
      const v = new Float64Array(B * N);
      for (let b = 0; b < B; b++) v.fill(s![b]!, b * N, b * N + N);
      return v;
    },
    flops: () => 0,
    vjp: (g) => [apply("sum", [g])],
    print: ([a], n) => `bcast(${a}, ${n.attrs.dim!.key})`,
  },
  sumb: {
    kind: "tensor", arity: 1, doc: "sum over the batch (gradient of a shared value)", prec: 3,
    type: ([v]) => withBatch(v!, false),
    eval: ([v], n, cx) => {
      const N = n.type.shape.reduce((p, d) => p * cx.size(d), 1);
      const s = new Float64Array(N);
      for (let b = 0; b < cx.B; b++) for (let j = 0; j < N; j++) s[j]! += v![b * N + j]!;
      return s;
    },
    flops: (n, size) => n.type.shape.reduce((p, d) => p * size(d), 1),
    vjp: (g) => [apply("expandb", [g])],
    print: ([a]) => `sumb(${a})`,
  },
  expandb: {
    kind: "tensor", arity: 1, doc: "a shared value repeated for every example", prec: 3,
    type: ([v]) => withBatch(v!, true),
    eval: ([v], _n, cx) => {
      const out = new Float64Array(cx.B * v!.length);
      for (let b = 0; b < cx.B; b++) out.set(v!, b * v!.length);
      return out;
    },
    flops: () => 0,
    vjp: (g) => [apply("sumb", [g])],
    print: ([a]) => `expandb(${a})`,
  },

  // vectors: concatenation, slicing ---------------------------------------------------------------
  concat: {
    kind: "tensor", arity: "n", doc: "concat(a, b, …): vectors joined end to end", prec: 3,
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
    kind: "tensor", arity: 1, doc: "slice(v, start, len): len elements from start (0-based)", prec: 3,
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
    vjp: (g, y) => [apply("pad", [g], { start: y.attrs.start!, dim: y.args[0]!.type.shape[0]! })],
    print: ([a], n) => `slice(${a}, ${n.attrs.start!.key}, ${n.attrs.len!.key})`,
  },
  pad: {
    kind: "tensor", arity: 1, doc: "pad(v, start, n): v placed at start in n zeros (gradient of slice)", prec: 3,
    type: ([v], at) => { needVector("pad", v!); return vec(at.dim!, v!.batched); },
    eval: ([v], n, cx) => {
      const B = n.type.batched ? cx.B : 1, N = cx.size(n.attrs.dim!), L = cx.size(n.args[0]!.type.shape[0]!);
      const s = cx.size(n.attrs.start!);
      const out = new Float64Array(B * N);
      for (let b = 0; b < B; b++) out.set(v!.subarray(b * L, b * L + L), b * N + s);
      return out;
    },
    flops: () => 0,
    vjp: (g, y) => [apply("slice", [g], { start: y.attrs.start!, len: y.args[0]!.type.shape[0]! })],
    print: ([a], n) => `pad(${a}, ${n.attrs.start!.key}, ${n.attrs.dim!.key})`,
  },
};
export const opDef = (op: OpName): OpDef => OPS[op];

export function fmtNum(v: number): string {
  if (Number.isInteger(v)) return String(v);
  for (const d of [2, 3, 4, 6, 8]) // print 1/6 and 1/3 as fractions: they are what the user wrote
    if (Math.abs(v * d - Math.round(v * d)) < 1e-12 && Math.abs(v) < 1e6 && String(v).length > 8) return `${Math.round(v * d)}/${d}`;
  return String(v);
}

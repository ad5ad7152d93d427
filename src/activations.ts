// User-defined elementwise activations, given as mathjs expressions in `x` ("x / (1 + abs(x))").
// mathjs parses, differentiates and simplifies them; we never hand-code their derivatives and never
// hand their text to eval: the expression tree is walked into a closure (for evaluation) or into
// JavaScript source built only from whitelisted operators, Math functions and numbers (for emission).
import { parse, derivative, simplify, type MathNode } from "mathjs";

/** The functions an activation may call, as scalar JS (for evaluation) and as JS source (for emission). */
const FUNCS: Record<string, { f: (...a: number[]) => number; js: (...a: string[]) => string }> = {
  exp: { f: Math.exp, js: (a) => `Math.exp(${a})` },
  log: { f: Math.log, js: (a) => `Math.log(${a})` },
  sqrt: { f: Math.sqrt, js: (a) => `Math.sqrt(${a})` },
  abs: { f: Math.abs, js: (a) => `Math.abs(${a})` },
  tanh: { f: Math.tanh, js: (a) => `Math.tanh(${a})` },
  sinh: { f: Math.sinh, js: (a) => `Math.sinh(${a})` },
  cosh: { f: Math.cosh, js: (a) => `Math.cosh(${a})` },
  sin: { f: Math.sin, js: (a) => `Math.sin(${a})` },
  tan: { f: Math.tan, js: (a) => `Math.tan(${a})` },
  cot: { f: (a) => 1 / Math.tan(a), js: (a) => `(1 / Math.tan(${a}))` },
  csc: { f: (a) => 1 / Math.sin(a), js: (a) => `(1 / Math.sin(${a}))` },
  cos: { f: Math.cos, js: (a) => `Math.cos(${a})` },
  atan: { f: Math.atan, js: (a) => `Math.atan(${a})` },
  sign: { f: Math.sign, js: (a) => `Math.sign(${a})` },
  sec: { f: (a) => 1 / Math.cos(a), js: (a) => `(1 / Math.cos(${a}))` },
  sech: { f: (a) => 1 / Math.cosh(a), js: (a) => `(1 / Math.cosh(${a}))` },
  csch: { f: (a) => 1 / Math.sinh(a), js: (a) => `(1 / Math.sinh(${a}))` },
  coth: { f: (a) => 1 / Math.tanh(a), js: (a) => `(1 / Math.tanh(${a}))` },
  max: { f: Math.max, js: (a, b) => `Math.max(${a}, ${b})` },
  min: { f: Math.min, js: (a, b) => `Math.min(${a}, ${b})` },
};
const BINARY: Record<string, { f: (a: number, b: number) => number; js: string }> = {
  "+": { f: (a, b) => a + b, js: "+" },
  "-": { f: (a, b) => a - b, js: "-" },
  "*": { f: (a, b) => a * b, js: "*" },
  ".*": { f: (a, b) => a * b, js: "*" },
  "/": { f: (a, b) => a / b, js: "/" },
  "./": { f: (a, b) => a / b, js: "/" },
  "^": { f: (a, b) => a ** b, js: "**" },
  ".^": { f: (a, b) => a ** b, js: "**" },
};

export class ActivationError extends Error {}

interface Compiled {
  readonly f: (x: number) => number;
  readonly js: (x: string) => string;
}

type Walk<T> = { num: (v: number) => T; x: T; bin: (op: string, a: T, b: T) => T; neg: (a: T) => T; call: (f: string, a: T[]) => T };

function walk<T>(n: MathNode, w: Walk<T>, expr: string): T {
  const node = n as MathNode & { type: string; value?: unknown; name?: string; op?: string; args?: MathNode[]; content?: MathNode; fn?: { name?: string } };
  switch (node.type) {
    case "ConstantNode":
      if (typeof node.value !== "number") throw new ActivationError(`"${expr}": only numbers may appear as constants`);
      return w.num(node.value);
    case "SymbolNode":
      if (node.name === "x") return w.x;
      if (node.name === "e") return w.num(Math.E);
      if (node.name === "pi") return w.num(Math.PI);
      throw new ActivationError(`"${expr}": unknown symbol "${node.name}" (an activation is a function of x alone; put constants in the cell's constants)`);
    case "ParenthesisNode":
      return walk(node.content!, w, expr);
    case "OperatorNode": {
      const args = node.args!.map((a) => walk(a, w, expr));
      if (args.length === 1 && node.op === "-") return w.neg(args[0]!);
      if (args.length === 1 && node.op === "+") return args[0]!;
      if (args.length === 2 && node.op! in BINARY) return w.bin(node.op!, args[0]!, args[1]!);
      throw new ActivationError(`"${expr}": operator "${node.op}" is not supported in activations`);
    }
    case "FunctionNode": {
      const name = node.fn?.name ?? "";
      if (!Object.hasOwn(FUNCS, name)) throw new ActivationError(`"${expr}": function "${name}" is not supported in activations (use: ${Object.keys(FUNCS).join(", ")})`);
      return w.call(name, node.args!.map((a) => walk(a, w, expr)));
    }
    default:
      throw new ActivationError(`"${expr}": ${node.type} is not supported in activations`);
  }
}

const cache = new Map<string, Compiled>();

/** Compile an activation expression (in `x`) to a closure and a JS emitter. */
export function compileActivation(expr: string): Compiled {
  let c = cache.get(expr);
  if (c) return c;
  let tree: MathNode;
  try {
    tree = parse(expr);
  } catch (e) {
    throw new ActivationError(`"${expr}": ${(e as Error).message}`);
  }
  type F = (x: number) => number;
  const f = walk<F>(tree, {
    num: (v) => () => v,
    x: (x) => x,
    bin: (op, a, b) => { const g = BINARY[op]!.f; return (x) => g(a(x), b(x)); },
    neg: (a) => (x) => -a(x),
    call: (name, args) => { const g = FUNCS[name]!.f; return (x) => g(...args.map((a) => a(x))); },
  }, expr);
  type J = (x: string) => string;
  const js = walk<J>(tree, {
    num: (v) => () => (v < 0 ? `(${v})` : String(v)),
    x: (x) => x,
    bin: (op, a, b) => (x) => `(${a(x)} ${BINARY[op]!.js} ${b(x)})`,
    neg: (a) => (x) => `(-${a(x)})`,
    call: (name, args) => (x) => FUNCS[name]!.js(...args.map((a) => a(x))),
  }, expr);
  c = { f, js };
  cache.set(expr, c);
  return c;
}

/** Derivatives taken, by expression: a backward is derived many times (show, check, each kernel). */
const derivatives = new Map<string, string>();

/**
 * d/dx of an activation, by mathjs.derivative; returned as expression text in x. mathjs' simplify
 * tidies a small derivative (softsign' = 1 / (abs(x) + 1) ^ 2); its search grows exponentially with
 * the terms of a sum or product (the derivative of x + x + … takes seconds at 25 terms, hours at 50),
 * so a larger derivative is used as mathjs derived it: the same function, written out longer.
 */
export function differentiateActivation(expr: string): string {
  let d = derivatives.get(expr);
  if (d !== undefined) return d;
  try {
    const raw = derivative(parse(expr), "x", { simplify: false });
    d = simplifiable(raw) ? simplify(derivative(parse(expr), "x")).toString() : raw.toString();
  } catch (e) {
    throw new ActivationError(`"${expr}": mathjs cannot differentiate it: ${(e as Error).message}`);
  }
  derivatives.set(expr, d);
  return d;
}

/** Small enough for mathjs' simplify to be quick: at most 60 nodes, and no sum or product of more than 8 terms. */
function simplifiable(root: MathNode): boolean {
  let count = 0;
  const stack = [root];
  while (stack.length) {
    if (++count > 60) return false;
    stack.pop()!.forEach((child) => stack.push(child));
  }
  // terms of the sum (+ -) or product (* /) that `n` heads, looking through parentheses
  type Op = MathNode & { type: string; op?: string; args?: MathNode[]; content?: MathNode };
  const kind = (n: Op) => (n.type === "OperatorNode" && n.args?.length === 2 ? (n.op === "+" || n.op === "-" ? "sum" : n.op === "*" || n.op === "/" ? "product" : undefined) : undefined);
  const bare = (n: Op): Op => (n.type === "ParenthesisNode" ? bare(n.content as Op) : n);
  let longest = 0;
  const terms = (n: Op, k: string): number => (kind(bare(n)) === k ? (bare(n).args as Op[]).reduce((a, c) => a + terms(c, k), 0) : 1);
  root.traverse((n) => { const k = kind(n as Op); if (k) longest = Math.max(longest, terms(n as Op, k)); });
  return longest <= 8;
}

/** Substitute named numeric constants into an activation expression. */
export function bindConstants(expr: string, constants: Readonly<Record<string, number>>): string {
  try {
    const t = parse(expr).transform((n) => {
      const s = n as MathNode & { type: string; name?: string };
      if (s.type === "SymbolNode" && s.name !== undefined && Object.hasOwn(constants, s.name)) return parse(`(${constants[s.name]})`);
      return n;
    });
    return t.toString();
  } catch (e) {
    throw new ActivationError(`"${expr}": ${(e as Error).message}`);
  }
}

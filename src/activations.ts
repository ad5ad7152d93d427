// User-defined elementwise activations, given as mathjs expressions in `x` ("x / (1 + abs(x))").
// mathjs parses, differentiates and simplifies them, and a call of an op of the table (sigmoid, relu,
// max, …) is evaluated, emitted and differentiated by that op (src/ops.ts): we never hand-code a
// derivative, and never hand their text to eval: the expression tree is walked into a closure (for
// evaluation) or into JavaScript source built only from whitelisted operators, Math functions, the
// ops' own lowerings and numbers (for emission).
import { parse, derivative, simplify, simplifyCore, type MathNode, SymbolNode, OperatorNode } from "mathjs";
import { type ElementwiseOp, type OpName, FUNCTION_OPS, OPS, apply, konst, leaf } from "./ops.ts";
import { type Node, scalar } from "./ir.ts";
import { BoundedMap } from "./bounded.ts";

/**
 * The elementary functions mathjs differentiates that are not ops of the table (src/ops.ts), as
 * scalar JS (for evaluation) and as JS source (for emission). The rest of what an activation may
 * call is the table's: see tableFunctions.
 */
const MATHJS_FUNCS: Record<string, { f: (...a: number[]) => number; js: (...a: string[]) => string }> = {
  sinh: { f: Math.sinh, js: (a) => `Math.sinh(${a})` },
  cosh: { f: Math.cosh, js: (a) => `Math.cosh(${a})` },
  sin: { f: Math.sin, js: (a) => `Math.sin(${a})` },
  cos: { f: Math.cos, js: (a) => `Math.cos(${a})` },
  tan: { f: Math.tan, js: (a) => `Math.tan(${a})` },
  atan: { f: Math.atan, js: (a) => `Math.atan(${a})` },
  cot: { f: (a) => 1 / Math.tan(a), js: (a) => `(1 / Math.tan(${a}))` },
  csc: { f: (a) => 1 / Math.sin(a), js: (a) => `(1 / Math.sin(${a}))` },
  sec: { f: (a) => 1 / Math.cos(a), js: (a) => `(1 / Math.cos(${a}))` },
  sech: { f: (a) => 1 / Math.cosh(a), js: (a) => `(1 / Math.cosh(${a}))` },
  csch: { f: (a) => 1 / Math.sinh(a), js: (a) => `(1 / Math.sinh(${a}))` },
  coth: { f: (a) => 1 / Math.tanh(a), js: (a) => `(1 / Math.tanh(${a}))` },
};
/**
 * The ops of the table an activation may call, by their names: every function op of the equations
 * (sigmoid, relu, abs, max, …) and the two that derivatives are written with (step: relu', sign: abs').
 * Their value, emission and derivative are the op's own (its fn, js and vjp); mathjs never sees their
 * rule. Read lazily: src/ops.ts imports this module.
 */
export const tableFunctions = (): readonly OpName[] =>
  [...FUNCTION_OPS.filter((op) => OPS[op].kind === "elementwise"), "step", "sign"];
/** Every function an activation may call: the table's (above), then mathjs' elementary ones. The README lists these. */
export const activationFunctions = (): readonly string[] => [...tableFunctions(), ...Object.keys(MATHJS_FUNCS)];
const tableOp = (name: string): OpName | undefined => (tableFunctions() as readonly string[]).includes(name) ? name as OpName : undefined;

/** `f(a, …)`, as one JS expression: the op's own text, parenthesized unless it is one call already. */
function opJs(op: OpName, args: readonly string[]): string {
  const s = (OPS[op] as ElementwiseOp).js(args, {});
  let depth = 0, closes = -1;
  for (let k = 0; k < s.length; k++) {
    if (s[k] === "(") depth++;
    else if (s[k] === ")" && --depth === 0) { closes = k; break; }
  }
  return /^[\w$.]+\(/.test(s) && closes === s.length - 1 ? s : `(${s})`;
}
function funcOf(name: string): { f: (...a: number[]) => number; js: (...a: string[]) => string; arity: number } | undefined {
  const op = tableOp(name);
  if (op) {
    const def = OPS[op] as ElementwiseOp;
    return { f: def.fn({}), js: (...a) => opJs(op, a), arity: def.arity as number };
  }
  return Object.hasOwn(MATHJS_FUNCS, name) ? { ...MATHJS_FUNCS[name]!, arity: 1 } : undefined;
}
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
      const fn = funcOf(name);
      if (!fn) throw new ActivationError(`"${expr}": function "${name}" is not supported in activations (use: ${activationFunctions().join(", ")})`);
      if (node.args!.length !== fn.arity) throw new ActivationError(`"${expr}": function "${name}" takes ${fn.arity} argument${fn.arity === 1 ? "" : "s"}, not ${node.args!.length}`);
      return w.call(name, node.args!.map((a) => walk(a, w, expr)));
    }
    default:
      throw new ActivationError(`"${expr}": ${node.type} is not supported in activations`);
  }
}

const cache = new BoundedMap<string, Compiled>(1024);

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
    call: (name, args) => { const g = funcOf(name)!.f; return (x) => g(...args.map((a) => a(x))); },
  }, expr);
  type J = (x: string) => string;
  const js = walk<J>(tree, {
    num: (v) => () => (v < 0 ? `(${v})` : String(v)),
    x: (x) => x,
    bin: (op, a, b) => (x) => `(${a(x)} ${BINARY[op]!.js} ${b(x)})`,
    neg: (a) => (x) => `(-${a(x)})`,
    call: (name, args) => (x) => funcOf(name)!.js(...args.map((a) => a(x))),
  }, expr);
  c = { f, js };
  cache.set(expr, c);
  return c;
}

/** Derivatives taken, by expression: a backward is derived many times (show, check, each kernel). */
const derivatives = new BoundedMap<string, string>(1024);

/**
 * d/dx of an activation, returned as expression text in x. mathjs differentiates the operators and
 * its elementary functions (mathjs.derivative); a call of a table op (sigmoid(u), relu(u), max(u, v))
 * is differentiated by the op's own vjp, by the chain rule: see chainRule. mathjs' simplify tidies a
 * small derivative (swish' = sigmoid(x) + (sigmoid(x) - sigmoid(x) ^ 2) * x); its search grows exponentially with the terms
 * of a sum or product (the derivative of x + x + … takes seconds at 25 terms, hours at 50), so a
 * larger derivative is used as derived: the same function, written out longer.
 */
export function differentiateActivation(expr: string): string {
  let d = derivatives.get(expr);
  if (d !== undefined) return d;
  try {
    const tree = undotted(parse(expr));
    if (!tree.filter((n) => tableOp((n as FnNode).fn?.name ?? "") !== undefined && (n as FnNode).type === "FunctionNode").length) {
      // mathjs' functions alone: its derivative
      const raw = derivative(tree, "x", { simplify: false });
      d = simplifiable(raw) ? simplify(derivative(tree, "x")).toString() : raw.toString();
    } else {
      // simplifyCore drops the chain rule's factors of 1 and terms of 0, in one pass
      const raw = simplifyCore(chainRule(tree));
      d = simplifiable(raw) ? simplify(raw, SIGN_RULES).toString() : raw.toString();
    }
  } catch (e) {
    throw new ActivationError(`"${expr}": mathjs cannot differentiate it: ${(e as Error).message}`);
  }
  derivatives.set(expr, d);
  return d;
}

/** On scalars .* ./ .^ are * / ^, which mathjs differentiates (it does not the dotted ones). */
const DOTTED: Record<string, [string, string]> = { ".*": ["*", "multiply"], "./": ["/", "divide"], ".^": ["^", "pow"] };
const undotted = (n: MathNode): MathNode => n.transform((m: MathNode): MathNode => {
  const o = m as MathNode & { type: string; op?: string; args?: MathNode[] };
  const to = o.type === "OperatorNode" && o.op !== undefined ? DOTTED[o.op] : undefined;
  return to ? new OperatorNode(to[0] as "*", to[1] as "multiply", o.args!.map(undotted)) : m;
});
/** mathjs' rules, and |n| = n·sign(n) for the derivatives of abs (the table's: sign). */
const SIGN_RULES = [...simplify.rules, "n * sign(n) -> abs(n)", "sign(n) * n -> abs(n)"];
type FnNode = MathNode & { type: string; name?: string; fn?: { name?: string }; args?: MathNode[] };
const usesX = (n: MathNode) => n.filter((m) => (m as FnNode).type === "SymbolNode" && (m as FnNode).name === "x").length > 0;
const times = (a: MathNode, b: MathNode) => new OperatorNode("*", "multiply", [a, b]);
/** Without the parentheses that printing put in: mathjs prints those its precedence needs. */
const bare = (n: MathNode): MathNode => n.transform((m: MathNode): MathNode => ((m as FnNode).type === "ParenthesisNode" ? bare((m as MathNode & { content: MathNode }).content) : m));

/**
 * d/dx of `tree` by the chain rule over its outermost table-op calls: with t_k = f_k(u_k, …) read as
 * variables, d/dx F(x, t) = ∂F/∂x + Σ_k ∂F/∂t_k · Σ_j ∂f_k/∂u_kj · du_kj/dx, where mathjs takes
 * the partials of F, the op's vjp gives ∂f_k/∂u_kj, and du_kj/dx recurses. With no such call it is
 * mathjs' derivative, as before there were any.
 */
function chainRule(tree: MathNode): MathNode {
  const calls: { sym: string; node: MathNode; op: OpName; args: MathNode[] }[] = [];
  const outer = tree.transform((n) => {
    const f = n as FnNode;
    const op = f.type === "FunctionNode" ? tableOp(f.fn?.name ?? "") : undefined;
    if (!op) return n;
    const sym = `t__${calls.length}`;
    calls.push({ sym, node: n, op, args: f.args! });
    return new SymbolNode(sym);
  });
  if (calls.length === 0) return derivative(tree, "x", { simplify: false });
  let d: MathNode = derivative(outer, "x", { simplify: false });
  for (const c of calls) {
    const partials = opPartials(c.op, c.args);
    c.args.forEach((u, j) => {
      if (!partials[j] || !usesX(u)) return;
      d = new OperatorNode("+", "add", [d, times(derivative(outer, c.sym, { simplify: false }), times(partials[j], chainRule(u)))]);
    });
  }
  return d.transform((n) => {
    const s = n as FnNode;
    const c = s.type === "SymbolNode" ? calls.find((k) => k.sym === s.name) : undefined;
    return c ? c.node.cloneDeep() : n;
  });
}

/**
 * ∂f/∂u_j of the table op f at (u_0, …), one per operand (null where the op has no derivative, as
 * step's), as mathjs trees: the op's vjp with seed 1 at scalar operands, printed by the table.
 */
function opPartials(op: OpName, args: readonly MathNode[]): readonly (MathNode | null)[] {
  const operands = args.map((_a, j) => leaf(`a__${j}`, "var", scalar));
  const y = apply(op, operands);
  return OPS[op].vjp(konst(1), y).map((p) => p === null ? null : bare(parse(irText(p))).transform((n: MathNode) => {
    const s = n as FnNode;
    const j = s.type === "SymbolNode" && s.name!.startsWith("a__") ? Number(s.name!.slice(3)) : -1;
    return j >= 0 ? args[j]!.cloneDeep() : n;
  }));
}
/** An elementwise IR expression over scalar operands as mathjs text: each op prints itself, every operand in parentheses. */
function irText(n: Node): string {
  if (n.op === "input") return n.attrs.name!;
  return OPS[n.op].print(n.args.map((a) => `(${irText(a)})`), n);
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
      // x is the argument, even in a cell with a constant x
      if (s.type === "SymbolNode" && s.name !== undefined && s.name !== "x" && Object.hasOwn(constants, s.name)) return parse(`(${constants[s.name]})`);
      return n;
    });
    return t.toString();
  } catch (e) {
    throw new ActivationError(`"${expr}": ${(e as Error).message}`);
  }
}

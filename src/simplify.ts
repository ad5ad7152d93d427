// The simplifier: ordered rewrite rules, each with its algebra law, applied bottom-up to a fixed
// point. A rewrite must keep the node's type; the engine refuses one that does not.
// Dead code disappears on its own: only what the roots reach is rebuilt.
import { dimAdd, dimEq, isConstDim } from "./dims.ts";
import { type Node, topo, typeEq } from "./ir.ts";
import { type OpName, OPS, apply, konst, add, mul, neg, sub } from "./ops.ts";

export interface Rule {
  /** The algebra, as a reader would check it: `x * 1 -> x`. */
  readonly law: string;
  readonly op: OpName | "*";
  readonly rewrite: (n: Node, a: readonly Node[]) => Node | undefined;
}

const isConst = (n: Node, v?: number): boolean => n.op === "const" && (v === undefined || n.attrs.value === v);
const zero = (n: Node) => konst(0, n.type);
const val = (n: Node) => n.attrs.value!;

export const RULES: readonly Rule[] = [
  // constants ------------------------------------------------------------------------------
  { law: "f(c1, c2, …) -> c  (fold an elementwise op on constants)", op: "*", rewrite: (n, a) => {
    const def = OPS[n.op];
    if (def.kind !== "elementwise" || a.length === 0 || !a.every((x) => isConst(x))) return undefined;
    return konst(def.fn(n.attrs)(...a.map(val)), n.type);
  } },
  // zeros ----------------------------------------------------------------------------------
  { law: "x + 0 -> x", op: "add", rewrite: (n, [x, y]) => (isConst(y!, 0) ? x : undefined) },
  { law: "0 + x -> x", op: "add", rewrite: (n, [x, y]) => (isConst(x!, 0) ? y : undefined) },
  { law: "x - 0 -> x", op: "sub", rewrite: (n, [x, y]) => (isConst(y!, 0) ? x : undefined) },
  { law: "0 - x -> -x", op: "sub", rewrite: (n, [x, y]) => (isConst(x!, 0) ? neg(y!) : undefined) },
  { law: "x - x -> 0", op: "sub", rewrite: (n, [x, y]) => (x === y ? zero(n) : undefined) },
  { law: "x * 0 -> 0,  0 * x -> 0", op: "mul", rewrite: (n, [x, y]) => (isConst(x!, 0) || isConst(y!, 0) ? zero(n) : undefined) },
  { law: "0 / x -> 0", op: "div", rewrite: (n, [x]) => (isConst(x!, 0) ? zero(n) : undefined) },
  { law: "-0 -> 0", op: "neg", rewrite: (n, [x]) => (isConst(x!, 0) ? zero(n) : undefined) },
  // which operands make a tensor op zero is its `linear` in the op table
  { law: "linear(0) -> 0  (W*0, W'*0, outer(0, v), sum(0), slice(0), …)", op: "*", rewrite: (n, a) => {
    const def = OPS[n.op];
    if (def.kind !== "tensor" || def.linear === false) return undefined;
    const zeros = def.linear === "each" ? a.some((x) => isConst(x, 0)) : def.linear === "all" ? a.every((x) => isConst(x, 0)) : isConst(a[def.linear]!, 0);
    return zeros ? zero(n) : undefined;
  } },
  // ones and signs -------------------------------------------------------------------------
  { law: "x * 1 -> x", op: "mul", rewrite: (n, [x, y]) => (isConst(y!, 1) ? x : undefined) },
  { law: "1 * x -> x", op: "mul", rewrite: (n, [x, y]) => (isConst(x!, 1) ? y : undefined) },
  { law: "x / 1 -> x", op: "div", rewrite: (n, [x, y]) => (isConst(y!, 1) ? x : undefined) },
  { law: "x * -1 -> -x,  -1 * x -> -x", op: "mul", rewrite: (n, [x, y]) => (isConst(y!, -1) ? neg(x!) : isConst(x!, -1) ? neg(y!) : undefined) },
  { law: "--x -> x", op: "neg", rewrite: (n, [x]) => (x!.op === "neg" ? x!.args[0] : undefined) },
  { law: "-(a - b) -> b - a", op: "neg", rewrite: (n, [x]) => (x!.op === "sub" ? sub(x!.args[1]!, x!.args[0]!) : undefined) },
  { law: "x + -y -> x - y", op: "add", rewrite: (n, [x, y]) => (y!.op === "neg" ? sub(x!, y!.args[0]!) : undefined) },
  { law: "-x + y -> y - x", op: "add", rewrite: (n, [x, y]) => (x!.op === "neg" ? sub(y!, x!.args[0]!) : undefined) },
  { law: "x - -y -> x + y", op: "sub", rewrite: (n, [x, y]) => (y!.op === "neg" ? add(x!, y!.args[0]!) : undefined) },
  { law: "-x - y -> -(x + y)", op: "sub", rewrite: (n, [x, y]) => (x!.op === "neg" ? neg(add(x!.args[0]!, y!)) : undefined) },
  { law: "-x * -y -> x * y", op: "mul", rewrite: (n, [x, y]) => (x!.op === "neg" && y!.op === "neg" ? mul(x!.args[0]!, y!.args[0]!) : undefined) },
  { law: "-x * y -> -(x * y),  x * -y -> -(x * y)", op: "mul", rewrite: (n, [x, y]) =>
    x!.op === "neg" ? neg(mul(x!.args[0]!, y!)) : y!.op === "neg" ? neg(mul(x!, y!.args[0]!)) : undefined },
  { law: "-x / y -> -(x / y)", op: "div", rewrite: (n, [x, y]) => (x!.op === "neg" ? neg(apply("div", [x!.args[0]!, y!])) : undefined) },
  { law: "1 - (1 - x) -> x", op: "sub", rewrite: (n, [x, y]) => (isConst(x!) && y!.op === "sub" && y!.args[0] === x ? y!.args[1] : undefined) },
  { law: "(x + y) - x -> y", op: "sub", rewrite: (n, [x, y]) => (x!.op === "add" && x!.args[0] === y ? x!.args[1] : undefined) },
  { law: "(x - y) + y -> x", op: "add", rewrite: (n, [x, y]) => (x!.op === "sub" && x!.args[1] === y ? x!.args[0] : undefined) },
  // constants to the left, and together --------------------------------------------------------
  { law: "x * c -> c * x", op: "mul", rewrite: (n, [x, y]) => (isConst(y!) && !isConst(x!) ? mul(y!, x!) : undefined) },
  { law: "c1 * (c2 * x) -> (c1*c2) * x", op: "mul", rewrite: (n, [x, y]) =>
    isConst(x!) && y!.op === "mul" && isConst(y!.args[0]!) ? mul(konst(val(x!) * val(y!.args[0]!), x!.type), y!.args[1]!) : undefined },
  { law: "x * (c * y) -> c * (x * y)", op: "mul", rewrite: (n, [x, y]) =>
    !isConst(x!) && y!.op === "mul" && isConst(y!.args[0]!) ? mul(y!.args[0]!, mul(x!, y!.args[1]!)) : undefined },
  { law: "(c * x) * y -> c * (x * y)", op: "mul", rewrite: (n, [x, y]) =>
    x!.op === "mul" && isConst(x!.args[0]!) && !isConst(y!) ? mul(x!.args[0]!, mul(x!.args[1]!, y!)) : undefined },
  { law: "a .* b + a .* c -> a .* (b + c)  (and b .* a, a .* c, …: one product fewer)", op: "add", rewrite: (n, [x, y]) => factor(x!, y!, add) },
  { law: "a .* b - a .* c -> a .* (b - c)", op: "sub", rewrite: (n, [x, y]) => factor(x!, y!, sub) },
  { law: "x + x -> 2 * x", op: "add", rewrite: (n, [x, y]) => (x === y ? mul(konst(2), x!) : undefined) },
  // vectors -------------------------------------------------------------------------------------
  { law: "slice(concat(…, v, …)) -> v  (when the slice is exactly v)", op: "slice", rewrite: (n, [v]) => {
    if (v!.op !== "concat") return undefined;
    let start = { terms: {}, c: 0, key: "0" } as typeof n.attrs.start & object;
    for (const a of v!.args) {
      if (dimEq(start, n.attrs.start!) && dimEq(a.type.shape[0]!, n.attrs.len!)) return a.type.batched === n.type.batched ? a : undefined;
      start = dimAdd(start, a.type.shape[0]!);
    }
    return undefined;
  } },
  { law: "slice(pad(v, s, n), s, len v) -> v", op: "slice", rewrite: (n, [v]) =>
    v!.op === "pad" && dimEq(v!.attrs.start!, n.attrs.start!) && dimEq(v!.args[0]!.type.shape[0]!, n.attrs.len!) ? v!.args[0] : undefined },
  { law: "slice(v, 0, len v) -> v", op: "slice", rewrite: (n, [v]) =>
    isConstDim(n.attrs.start!) && n.attrs.start!.c === 0 && dimEq(n.attrs.len!, v!.type.shape[0]!) ? v : undefined },
  { law: "sum(bcast(s, n)) -> n * s", op: "sum", rewrite: (n, [v]) =>
    v!.op === "bcast" ? mul(apply("size", [], { dim: v!.attrs.dim! }), v!.args[0]!) : undefined },
];

/**
 * Stable forms of composites that overflow or cancel when computed as written, applied to the
 * forward equations as they are lowered (src/cell.ts), so the reference, every kernel and the
 * derived backward compute the stable form. At x = -1000, sigmoid(x) underflows to 0 and
 * log(sigmoid(x)) is -Infinity, while -softplus(-x) is -1000; its derivative sigmoid(-x) is finite
 * where the naive one, (1/sigmoid(x)) · sigmoid'(x), is 0/0. `1 - sigmoid(x)` alone is left as
 * written: rewriting it to sigmoid(-x) would cost an exponential where the cell usually needs
 * sigmoid(x) anyway; inside a log it is rewritten with the log.
 */
export const STABLE_RULES: readonly Rule[] = [
  { law: "log(sigmoid(x)) -> -softplus(-x)", op: "log", rewrite: (n, [v]) => (v!.op === "sigmoid" ? neg(apply("softplus", [neg(v!.args[0]!)])) : undefined) },
  { law: "log(1 - sigmoid(x)) -> -softplus(x)", op: "log", rewrite: (n, [v]) =>
    v!.op === "sub" && isConst(v!.args[0]!, 1) && v!.args[1]!.op === "sigmoid" ? neg(apply("softplus", [v!.args[1]!.args[0]!])) : undefined },
  { law: "log(1 + exp(x)) -> softplus(x),  log(exp(x) + 1) -> softplus(x)", op: "log", rewrite: (n, [v]) => {
    if (v!.op !== "add") return undefined;
    const [a, b] = v!.args as [Node, Node];
    return isConst(a, 1) && b.op === "exp" ? apply("softplus", [b.args[0]!]) : isConst(b, 1) && a.op === "exp" ? apply("softplus", [a.args[0]!]) : undefined;
  } },
  { law: "log(exp(x)) -> x", op: "log", rewrite: (n, [v]) => (v!.op === "exp" ? v!.args[0] : undefined) },
  { law: "--x -> x", op: "neg", rewrite: (n, [x]) => (x!.op === "neg" ? x!.args[0] : undefined) },
];

/** The common factor of two products, if they share one. */
function factor(x: Node, y: Node, join: (a: Node, b: Node) => Node): Node | undefined {
  if (x.op !== "mul" || y.op !== "mul") return undefined;
  const [a, b] = x.args as [Node, Node];
  const [c, d] = y.args as [Node, Node];
  if (a === c) return mul(a, join(b, d));
  if (a === d) return mul(a, join(b, c));
  if (b === c) return mul(b, join(a, d));
  if (b === d) return mul(b, join(a, c));
  return undefined;
}

export interface SimplifyStats {
  /** How often each law fired, for tests and curiosity. */
  readonly fired: Map<string, number>;
}

const byOp = new Map<string, Rule[]>();
for (const r of RULES) {
  const list = byOp.get(r.op) ?? [];
  list.push(r);
  byOp.set(r.op, list);
}

/** Simplify the graphs of `roots` to a fixed point. Returns the new roots, in order. */
export function simplify(roots: readonly Node[], rules: readonly Rule[] = RULES, stats?: SimplifyStats): Node[] {
  const table = rules === RULES ? byOp : groupRules(rules);
  const memo = new Map<Node, Node>();
  const rewriteOnce = (n: Node): Node | undefined => {
    for (const r of [...(table.get(n.op) ?? []), ...(table.get("*") ?? [])]) {
      const m = r.rewrite(n, n.args);
      if (m && m !== n) {
        if (!typeEq(m.type, n.type)) continue; // a law that would change the type does not apply here
        stats?.fired.set(r.law, (stats.fired.get(r.law) ?? 0) + 1);
        return m;
      }
    }
    return undefined;
  };
  const visit = (n: Node, depth = 0): Node => {
    const done = memo.get(n);
    if (done) return done;
    const args = n.args.map((a) => visit(a, depth));
    let m = args.every((a, i) => a === n.args[i]) ? n : apply(n.op, args, n.attrs);
    const r = rewriteOnce(m);
    // The rewrite's own new nodes may simplify further: visit the result (rules shrink the graph).
    if (r) m = depth > 200 ? r : visit(r, depth + 1);
    memo.set(n, m);
    memo.set(m, m);
    return m;
  };
  let cur = [...roots];
  for (let round = 0; round < 50; round++) {
    for (const n of topo(cur)) visit(n); // iterative warm-up keeps recursion shallow on deep graphs
    const next = cur.map((n) => visit(n));
    if (next.every((n, i) => n === cur[i])) return next;
    cur = next;
    memo.clear();
  }
  return cur;
}

function groupRules(rules: readonly Rule[]): Map<string, Rule[]> {
  const m = new Map<string, Rule[]>();
  for (const r of rules) m.set(r.op, [...(m.get(r.op) ?? []), r]);
  return m;
}

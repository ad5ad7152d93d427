// Every simplifier law, checked for form (the printed rewrite) and for meaning (original and
// rewritten agree at random points, for several batch sizes). A law added to RULES without a case
// here fails the suite.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { dimAdd, dimConst, dimSize } from "../src/dims.ts";
import { type Node, mat, topo, typeEq, typeStr, vec } from "../src/ir.ts";
import { add, apply, div, konst, leaf, mul, neg, sub } from "../src/ops.ts";
import { type Rule, RULES, type SimplifyStats, simplify } from "../src/simplify.ts";
import { type Env, evaluate, numel } from "../src/eval.ts";
import { printExpr } from "../src/print.ts";
import { Rng } from "../runtime/rng.ts";

const D = dimSize("D"), H = dimSize("H");
const x = leaf("x", "input", vec(H));
const y = leaf("y", "input", vec(H));
const z = leaf("z", "input", vec(H));
const u = leaf("u", "input", vec(D));
const s = leaf("s", "input", { batched: true, shape: [] });
const W = leaf("W", "param", mat(H, D));
const b = leaf("b", "param", vec(H, false));
const c = (v: number) => konst(v);

/** One expression per law: it triggers that law, and simplifies to `to`. */
const CASES: Readonly<Record<string, { readonly from: () => Node; readonly to: string }>> = {
  "f(c1, c2, …) -> c  (fold an elementwise op on constants)": { from: () => add(x, add(c(2), c(3))), to: "x + 5" },
  "x + 0 -> x": { from: () => add(x, c(0)), to: "x" },
  "0 + x -> x": { from: () => add(c(0), x), to: "x" },
  "x - 0 -> x": { from: () => sub(x, c(0)), to: "x" },
  "0 - x -> -x": { from: () => sub(c(0), x), to: "-x" },
  "x - x -> 0": { from: () => add(y, sub(x, x)), to: "y" },
  "x * 0 -> 0,  0 * x -> 0": { from: () => add(y, mul(apply("tanh", [x]), c(0))), to: "y" },
  "0 / x -> 0": { from: () => add(y, div(c(0), x)), to: "y" },
  "-0 -> 0": { from: () => add(x, neg(konst(0, vec(H)))), to: "x" },
  "linear(0) -> 0  (W*0, W'*0, outer(0, v), sum(0), slice(0), …)": {
    from: () => add(x, apply("matvec", [W, konst(0, vec(D))])), to: "x" },
  "x * 1 -> x": { from: () => mul(x, c(1)), to: "x" },
  "1 * x -> x": { from: () => mul(c(1), x), to: "x" },
  "x / 1 -> x": { from: () => div(x, c(1)), to: "x" },
  "x * -1 -> -x,  -1 * x -> -x": { from: () => add(mul(x, c(-1)), mul(c(-1), y)), to: "-(x + y)" },
  "--x -> x": { from: () => neg(neg(x)), to: "x" },
  "-(a - b) -> b - a": { from: () => neg(sub(x, y)), to: "y - x" },
  "x + -y -> x - y": { from: () => add(x, neg(y)), to: "x - y" },
  "-x + y -> y - x": { from: () => add(neg(x), y), to: "y - x" },
  "x - -y -> x + y": { from: () => sub(x, neg(y)), to: "x + y" },
  "-x - y -> -(x + y)": { from: () => sub(neg(x), y), to: "-(x + y)" },
  "-x * -y -> x * y": { from: () => mul(neg(x), neg(y)), to: "x .* y" },
  "-x * y -> -(x * y),  x * -y -> -(x * y)": { from: () => sub(mul(neg(x), y), mul(x, neg(z))), to: "x .* (z - y)" },
  "-x / y -> -(x / y)": { from: () => div(neg(x), y), to: "-(x ./ y)" },
  "1 - (1 - x) -> x": { from: () => sub(c(1), sub(c(1), apply("sigmoid", [x]))), to: "sigmoid(x)" },
  "(x + y) - x -> y": { from: () => sub(add(x, y), x), to: "y" },
  "(x - y) + y -> x": { from: () => add(sub(x, y), y), to: "x" },
  "x * c -> c * x": { from: () => mul(x, c(3)), to: "3 * x" },
  "c1 * (c2 * x) -> (c1*c2) * x": { from: () => mul(c(2), mul(c(3), x)), to: "6 * x" },
  "x * (c * y) -> c * (x * y)": { from: () => mul(x, mul(c(3), y)), to: "3 * (x .* y)" },
  "(c * x) * y -> c * (x * y)": { from: () => mul(mul(c(3), x), y), to: "3 * (x .* y)" },
  "a .* b + a .* c -> a .* (b + c)  (and b .* a, a .* c, …: one product fewer)": {
    from: () => add(mul(x, y), mul(z, x)), to: "x .* (y + z)" },
  "a .* b - a .* c -> a .* (b - c)": { from: () => sub(mul(y, x), mul(z, x)), to: "x .* (y - z)" },
  "x + x -> 2 * x": { from: () => add(apply("tanh", [x]), apply("tanh", [x])), to: "2 * tanh(x)" },
  "slice(concat(…, v, …)) -> v  (when the slice is exactly v)": {
    from: () => apply("slice", [apply("concat", [u, x, b])], { start: D, len: H }), to: "x" },
  "slice(pad(v, s, n), s, len v) -> v": {
    from: () => apply("slice", [apply("pad", [x], { start: D, dim: dimAdd(D, dimAdd(H, dimConst(2))) })], { start: D, len: H }), to: "x" },
  "slice(v, 0, len v) -> v": { from: () => apply("slice", [x], { start: dimConst(0), len: H }), to: "x" },
  "sum(bcast(s, n)) -> n * s": { from: () => apply("sum", [apply("bcast", [s], { dim: H })]), to: "H * s" },
};

const names = new Map<Node, string>();
const print = (n: Node) => printExpr(n, names);

/** Random values for every input leaf under `roots`, kept away from 0 (some cases divide). */
function leafEnv(roots: readonly Node[], B: number, sizes: Record<string, number>, rng: Rng): Env {
  const env: Env = new Map();
  for (const n of topo(roots))
    if (n.op === "input") {
      const a = new Float64Array(numel(n.type, B, sizes));
      for (let i = 0; i < a.length; i++) a[i] = (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.5, 2);
      env.set(n, a);
    }
  return env;
}

/** Original and rewritten agree elementwise to 1e-12 relative (to the larger magnitude, at least 1). */
function expectSameValues(a: Node, b: Node, seed: number, B: number): void {
  expect(typeEq(a.type, b.type)).toBe(true);
  const sizes = { D: 2 + (seed & 3), H: 3 + ((seed >> 2) & 3) };
  const env = leafEnv([a, b], B, sizes, new Rng(seed));
  const [va] = evaluate([a], new Map(env), B, sizes);
  const [vb] = evaluate([b], new Map(env), B, sizes);
  expect(vb!.length).toBe(va!.length);
  for (let i = 0; i < va!.length; i++) {
    const p = va![i]!, q = vb![i]!;
    if (Math.abs(p - q) > 1e-12 * Math.max(1, Math.abs(p), Math.abs(q)))
      expect.fail(`element ${i} (B=${B}, ${JSON.stringify(sizes)}): ${p} before, ${q} after simplifying`);
  }
}

describe("every simplifier law", () => {
  it("has a case here, and every case names a law in RULES", () => {
    const laws = RULES.map((r) => r.law);
    expect(laws.filter((l) => !(l in CASES))).toEqual([]);
    expect(Object.keys(CASES).filter((l) => !laws.includes(l))).toEqual([]);
    expect(new Set(laws).size).toBe(laws.length); // laws are keys: no two alike
  });

  describe.each(RULES.map((r) => [r.law, r] as const))("%s", (law) => {
    const kase = CASES[law];

    it("form: fires and prints as expected", () => {
      expect(kase, `no case for the law "${law}": add one to CASES`).toBeDefined();
      const e = kase!.from();
      const stats: SimplifyStats = { fired: new Map() };
      const [r] = simplify([e], RULES, stats);
      expect(stats.fired.get(law) ?? 0, `"${law}" did not fire on ${print(e)}; fired: ${[...stats.fired.keys()].join(" | ")}`).toBeGreaterThan(0);
      expect(print(r!)).toBe(kase!.to);
    });

    it("meaning: original and simplified agree at random points", () => {
      expect(kase).toBeDefined();
      const e = kase!.from();
      const [r] = simplify([e]);
      fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 30 }), fc.integer({ min: 2, max: 5 }), (seed, B) => expectSameValues(e, r!, seed, B)), { numRuns: 12 });
    });

    it("reaches a fixed point and keeps the type", () => {
      expect(kase).toBeDefined();
      const e = kase!.from();
      const [r] = simplify([e]);
      expect(simplify([r!])[0]).toBe(r);
      expect(typeStr(r!.type)).toBe(typeStr(e.type));
    });
  });
});

describe("the simplifier engine", () => {
  it("refuses a rewrite that would change a node's type", () => {
    const rogue: Rule = { law: "x + y -> sum(x)  (wrong: a scalar for a vector)", op: "add", rewrite: (_n, [a]) => apply("sum", [a!]) };
    const e = add(x, y);
    const stats: SimplifyStats = { fired: new Map() };
    expect(simplify([e], [rogue], stats)[0]).toBe(e);
    expect(stats.fired.size).toBe(0);
  });

  it("keeps every node's type on a larger graph, and the roots in order", () => {
    const roots = Object.values(CASES).map((k) => k.from());
    const out = simplify(roots);
    expect(out).toHaveLength(roots.length);
    out.forEach((r, i) => expect(typeStr(r.type)).toBe(typeStr(roots[i]!.type)));
    expect(simplify(out)).toEqual(out);
  });

  it("drops dead code: what the roots no longer reach is gone", () => {
    const dead = apply("exp", [apply("matvec", [W, u])]);
    const e = add(mul(c(0), mul(dead, y)), sub(mul(x, c(1)), mul(s, sub(z, z))));
    const [r] = simplify([e]);
    expect(print(r!)).toBe("x");
    const reached = new Set(topo([r!]));
    for (const n of [dead, W, u, y, z, s]) expect(reached.has(n)).toBe(false);
  });

  it("shares equal subexpressions (hash-consing): one rewrite, one node", () => {
    const t = apply("tanh", [add(x, c(0))]);
    const [r1, r2] = simplify([mul(t, t), apply("sigmoid", [mul(c(1), t)])]);
    expect(r1!.args[0]).toBe(r2!.args[0]);
    expect(print(r2!)).toBe("sigmoid(tanh(x))");
  });

  it("terminates on a deep chain and stays at a fixed point", () => {
    let e: Node = x;
    for (let i = 0; i < 500; i++) e = i % 2 ? neg(add(e, c(0))) : mul(c(1), neg(e));
    const [r] = simplify([e]);
    expect(print(r!)).toBe("x");
    expect(simplify([r!])[0]).toBe(r);
  });
});

// The gradient checker held to outside references: every built-in cell's derived BPTT gradients
// against central finite differences at several configurations; planted wrong derivative rules
// that must fail and be blamed on the right equation; structural checks that each catch a bug of
// their own; kinks; the saved set; and second order (the derived backward differentiated again).
import { beforeAll, describe, expect, it } from "vitest";
import type { Cell } from "../src/cell.ts";
import { compileCell } from "../src/cell.ts";
import { loadCell } from "../src/load.ts";
import { type BackwardStep, deriveBackward } from "../src/backward.ts";
import { type CheckReport, checkGradients, formatReport, localise } from "../check/gradcheck.ts";
import { type SequenceCase, randomCase } from "../src/sequence.ts";
import { type Env, type EvalStats, type Sizes, evaluate, numel } from "../src/eval.ts";
import { type Node, topo } from "../src/ir.ts";
import { type ElementwiseOp, OPS, add, apply, konst, leaf, mul, sub, vjpOf } from "../src/ops.ts";
import { type VjpRule, vjp } from "../src/diff.ts";
import { simplify } from "../src/simplify.ts";
import { Rng } from "../runtime/rng.ts";

const BUILTIN = ["rnn", "gru-cs224n", "gru", "lstm"] as const;
const cells = new Map<string, Cell>();
beforeAll(async () => {
  for (const name of BUILTIN) cells.set(name, await loadCell(name));
});
const cellOf = (name: string): Cell => cells.get(name)!;

/** The equation defining `lhs`, as the checker's blame prints it (`text (file:line)`, or `text (line n)` without a file). */
function equationOf(cell: Cell, lhs: string): string {
  const eq = cell.equations.find((e) => e.lhs === lhs);
  if (!eq) throw new Error(`${cell.name} has no equation ${lhs}`);
  return `${eq.text} (${eq.where ?? `line ${eq.line}`})`;
}

/** A rule that differs from the op table's only on nodes `which` picks, where `wrong` replaces it. */
const planted = (which: (n: Node) => boolean, wrong: (n: Node, g: Node, right: readonly (Node | null)[]) => readonly (Node | null)[]): VjpRule =>
  (n, g) => (which(n) ? wrong(n, g, vjpOf(n, g)) : vjpOf(n, g));
const scaled = (k: number, operand?: number) => (_n: Node, _g: Node, right: readonly (Node | null)[]) =>
  right.map((c, i) => (c && (operand === undefined || i === operand) ? mul(konst(k), c) : c));

const expectPassing = (r: CheckReport) => {
  expect(r.pass, formatReport(r)).toBe(true);
  expect(r.blame).toEqual([]);
  expect(r.structural.map((s) => s.pass)).toEqual([true, true, true]);
  for (const row of r.rows) {
    expect(row.pass).toBe(true);
    expect(row.kinks).toBe(0);
    // float64 central differences of smooth cells are good to ~1e-10; 1e-7 leaves room, 1e-5 (atol) would hide a lot
    expect(row.maxAbs, `${row.group} ${row.name}`).toBeLessThan(1e-7);
    expect(row.maxRel, `${row.group} ${row.name}`).toBeLessThan(1e-5);
  }
};

// ------------------------------------------------------------------ the built-in cells pass

describe("built-in cells pass the gradient check", () => {
  const FULL: readonly { sizes: Sizes; B: number; T: number }[] = [
    { sizes: { D: 3, H: 4 }, B: 1, T: 1 },
    { sizes: { D: 5, H: 3 }, B: 3, T: 4 },
    { sizes: { D: 2, H: 5 }, B: 2, T: 2 },
  ];
  for (const name of BUILTIN)
    for (const cf of FULL)
      it(`${name}: full mode, D=${cf.sizes.D} H=${cf.sizes.H} B=${cf.B} T=${cf.T}`, () => {
        const cell = cellOf(name);
        const c = randomCase(cell, { ...cf, seed: 11 });
        const r = checkGradients(cell, c, { mode: "full" });
        expectPassing(r);
        // every element of every parameter, input and initial state was checked
        const expected = [
          ...cell.params.map((p) => numel(p.node.type, 1, cf.sizes)),
          ...cell.inputs.map((x) => cf.T * numel(x.type, cf.B, cf.sizes)),
          ...cell.states.map((s) => numel(s.type, cf.B, cf.sizes)),
        ];
        expect(r.rows.map((w) => w.checked)).toEqual(expected);
        expect(r.rows.map((w) => w.name)).toEqual([...cell.params.map((p) => p.name), ...cell.inputs.map((x) => x.attrs.name), ...cell.states.map((s) => s.attrs.name)]);
      });

  for (const name of BUILTIN)
    it(`${name}: fast mode at larger sizes, D=9 H=12 B=4 T=6`, () => {
      const cell = cellOf(name);
      const r = checkGradients(cell, randomCase(cell, { sizes: { D: 9, H: 12 }, B: 4, T: 6, seed: 3 }), { mode: "fast", directions: 6 });
      expectPassing(r);
      expect(r.rows.every((w) => w.checked === 6)).toBe(true);
    });

  it("localise blames nothing in a correct cell", () => {
    for (const name of BUILTIN) {
      const cell = cellOf(name);
      expect(localise(deriveBackward(cell), randomCase(cell, { B: 2, T: 2, seed: 4 }))).toEqual([]);
    }
  });

  it("the gradients are not trivially small (the check has something to compare)", () => {
    for (const name of BUILTIN) {
      const cell = cellOf(name);
      const r = checkGradients(cell, randomCase(cell, { B: 2, T: 3, seed: 2 }), { mode: "fast", directions: 2 });
      expect(Math.max(...r.rows.map((w) => Math.abs(w.numeric)))).toBeGreaterThan(1e-2);
    }
  });
});

// ------------------------------------------------------------------ planted wrong rules fail and are blamed

describe("a planted wrong derivative rule fails the check and is blamed on its equation", () => {
  it("GRU, tanh's rule scaled by 1.5: blames n = tanh(…)", () => {
    const gru = cellOf("gru");
    const r = checkGradients(gru, randomCase(gru, { B: 2, T: 2, seed: 3 }), { rule: planted((n) => n.op === "tanh", scaled(1.5)) });
    expect(r.pass).toBe(false);
    expect(r.rows.some((w) => !w.pass)).toBe(true);
    expect(r.blame.map((b) => b.equation)).toEqual([equationOf(gru, "n")]);
    expect(r.blame[0]!.op).toMatch(/^tanh\b/);
    expect(r.blame[0]!.operand).toBe(0);
    // the rule's value is 1.5 times the finite difference
    expect(r.blame[0]!.analytic / r.blame[0]!.numeric).toBeCloseTo(1.5, 3);
    expect(formatReport(r)).toMatch(/wrong derivative rule: tanh .* in equation n\s+= tanh\(/);
    expect(formatReport(r)).toMatch(/FAIL$/);
  });

  it("LSTM, sigmoid's rule with the wrong formula (g*y instead of g*y*(1-y)): blames i, f and o, not g", () => {
    const lstm = cellOf("lstm");
    const r = checkGradients(lstm, randomCase(lstm, { B: 2, T: 2, seed: 5 }), { rule: planted((n) => n.op === "sigmoid", (n, g) => [mul(g, n)]) });
    expect(r.pass).toBe(false);
    expect(new Set(r.blame.map((b) => b.equation))).toEqual(new Set(["i", "f", "o"].map((e) => equationOf(lstm, e))));
    expect(r.blame.every((b) => b.op.startsWith("sigmoid"))).toBe(true);
  });

  it("LSTM, tanh's rule scaled: blames g = tanh(…) and h' = o .* tanh(c')", () => {
    const lstm = cellOf("lstm");
    const r = checkGradients(lstm, randomCase(lstm, { B: 1, T: 2, seed: 6 }), { rule: planted((n) => n.op === "tanh", scaled(0.8)) });
    expect(r.pass).toBe(false);
    expect(new Set(r.blame.map((b) => b.equation))).toEqual(new Set([equationOf(lstm, "g"), equationOf(lstm, "h'")]));
  });

  it("GRU, matvec's rule for the vector wrong only in Whn*h: blames n, operand 2 (the vector h)", () => {
    const gru = cellOf("gru");
    const isWhnH = (n: Node) => n.op === "matvec" && n.args[0]!.attrs.name === "Whn";
    const r = checkGradients(gru, randomCase(gru, { B: 2, T: 2, seed: 3 }), { rule: planted(isWhnH, scaled(1.5, 1)) });
    expect(r.pass).toBe(false);
    expect(r.blame).toHaveLength(1);
    expect(r.blame[0]).toMatchObject({ equation: equationOf(gru, "n"), operand: 1 });
    expect(r.blame[0]!.op).toMatch(/^matvec\b/);
  });

  it("rnn, matvec's rule with the weight gradient negated: the weight rows fail, blamed on the one equation, operand 1 (the matrix)", () => {
    const rnn = cellOf("rnn");
    const r = checkGradients(rnn, randomCase(rnn, { B: 2, T: 3, seed: 8 }), { rule: planted((n) => n.op === "matvec", scaled(-1, 0)) });
    expect(r.pass).toBe(false);
    // the weight rows fail, the input and bias rows (not through the W part) need not
    expect(r.rows.filter((w) => !w.pass).map((w) => w.name)).toEqual(expect.arrayContaining(["Wih", "Whh"]));
    expect(r.blame.map((b) => b.equation)).toEqual([equationOf(rnn, "h'"), equationOf(rnn, "h'")]);
    expect(r.blame.every((b) => b.op.startsWith("matvec") && b.operand === 0)).toBe(true);
  });

  it("a wrong rule on an op the cell does not use changes nothing", () => {
    const gru = cellOf("gru");
    const r = checkGradients(gru, randomCase(gru, { B: 1, T: 2 }), { rule: planted((n) => n.op === "relu", scaled(2)) });
    expect(r.pass).toBe(true);
  });
});

// ------------------------------------------------------------------ structural checks

describe("structural checks", () => {
  const names = ["zero upstream gives zero gradients", "twice the upstream gives twice the gradients", "deterministic (bit-identical on a rerun)"];
  const verdicts = (r: CheckReport) => Object.fromEntries(r.structural.map((s) => [s.name, s.pass]));

  it("pass for every built-in cell, and have the documented names", () => {
    for (const name of BUILTIN) {
      const cell = cellOf(name);
      const r = checkGradients(cell, randomCase(cell, { B: 2, T: 2 }), { mode: "fast", directions: 1 });
      expect(r.structural.map((s) => s.name)).toEqual(names);
      expect(r.structural.every((s) => s.pass)).toBe(true);
    }
  });

  it("a rule that adds a constant breaks 'zero upstream gives zero' (and linearity)", () => {
    const gru = cellOf("gru");
    const rule = planted((n) => n.op === "tanh", (_n, _g, right) => right.map((c) => c && add(c, konst(1e-3))));
    const r = checkGradients(gru, randomCase(gru, { B: 2, T: 2 }), { rule });
    expect(verdicts(r)).toEqual({ [names[0]!]: false, [names[1]!]: false, [names[2]!]: true });
    expect(r.structural[0]!.detail).toMatch(/max \|g\| = [1-9]/);
    expect(r.pass).toBe(false);
  });

  it("a rule quadratic in the upstream gradient breaks only linearity", () => {
    const gru = cellOf("gru");
    // g .* |g| .* tanh'(…): zero stays zero, twice the upstream gives four times the gradient here
    const rule = planted((n) => n.op === "tanh", (_n, g, right) => right.map((c) => c && mul(c, apply("abs", [g]))));
    const r = checkGradients(gru, randomCase(gru, { B: 2, T: 2 }), { rule });
    expect(verdicts(r)).toEqual({ [names[0]!]: true, [names[1]!]: false, [names[2]!]: true });
    expect(r.pass).toBe(false);
  });

  it("a rule whose values differ from run to run breaks determinism", () => {
    // No pure rule can be nondeterministic, so make an op impure for the duration of this test:
    // step(v) evaluates to 1 + k·1e-9 for v > 0, k counting evaluations. The rule multiplies tanh's
    // contribution by step(exp(g)) (= 1 in exact arithmetic, never constant-folded).
    const stepOp = OPS.step as { fn: ElementwiseOp["fn"] }; // restored in `finally`
    const original = stepOp.fn;
    let k = 0;
    stepOp.fn = () => { const m = ++k; return (v) => (v! > 0 ? 1 + m * 1e-9 : 0); };
    try {
      const gru = cellOf("gru");
      const rule = planted((n) => n.op === "tanh", (_n, g, right) => right.map((c) => c && mul(c, apply("step", [apply("exp", [g])]))));
      const r = checkGradients(gru, randomCase(gru, { B: 2, T: 2 }), { rule });
      expect(verdicts(r)[names[0]!]).toBe(true);
      expect(verdicts(r)[names[2]!]).toBe(false);
      expect(r.structural[2]!.detail).toBe("differs");
      expect(r.pass).toBe(false);
      expect(k).toBeGreaterThan(0);
    } finally {
      stepOp.fn = original;
    }
  });
});

// ------------------------------------------------------------------ kinks

describe("kinks (relu, max) exactly at the kink", () => {
  const reluRnn = compileCell({
    name: "relu-rnn", doc: "Elman RNN with ReLU, as PyTorch nn.RNN(nonlinearity='relu')",
    sizes: { D: "input size", H: "hidden size" }, inputs: { x: "D" }, state: { h: "H" },
    params: { Wih: ["H", "D"], Whh: ["H", "H"], bih: "H", bhh: "H" },
    equations: "h' = relu(Wih*x + bih + Whh*h + bhh)",
  });
  const leaky = compileCell({
    name: "leaky-max", doc: "Elman RNN with a leaky ReLU written as max(a, 0.1*a)",
    sizes: { D: "input size", H: "hidden size" }, inputs: { x: "D" }, state: { h: "H" },
    params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
    equations: ["a  = W*x + U*h + b", "h' = max(a, 0.1 * a)"],
  });
  /** Zero weights, biases, inputs and initial state: every pre-activation is exactly 0 at every step. */
  const atKink = (cell: Cell): SequenceCase => {
    const c = randomCase(cell, { B: 2, T: 3, seed: 5 });
    for (const a of [...Object.values(c.params), ...Object.values(c.inputs), ...Object.values(c.initial)]) a.fill(0);
    return c;
  };
  /**
   * Units 0 and 1 exactly at the kink (their rows of every weight and bias zero), the others generic.
   * Inputs and states are positive (relu's outputs are; the leaky cell gets positive weights too) so
   * that moving any weight moves every example's pre-activation the same way: one-sided
   * differences are then one-sided for the whole loss.
   */
  const halfAtKink = (cell: Cell): SequenceCase => {
    const c = randomCase(cell, { B: 2, T: 3, seed: 5 });
    const H = c.sizes.H!;
    const positive = (a: Float64Array) => a.forEach((v, i) => (a[i] = 0.1 + Math.abs(v)));
    if (cell === leaky) Object.values(c.params).forEach(positive);
    for (const p of Object.values(c.params)) p.fill(0, 0, 2 * (p.length / H));
    [...Object.values(c.inputs), ...Object.values(c.initial)].forEach(positive);
    return c;
  };

  for (const [cell, biases] of [[reluRnn, ["bih", "bhh"]], [leaky, ["b"]]] as const) {
    it(`${cell.name}: all pre-activations 0 counts kinks, passes`, () => {
      const r = checkGradients(cell, atKink(cell));
      expect(r.pass, formatReport(r)).toBe(true);
      const kinks = Object.fromEntries(r.rows.map((w) => [w.name, w.kinks]));
      for (const b of biases) expect(kinks[b]).toBe(4); // every bias element sits on the kink
      expect(r.rows.reduce((s, w) => s + w.kinks, 0)).toBe(4 * biases.length);
    });

    it(`${cell.name}: half the units at the kink: kinks counted there, the rest checked normally`, () => {
      const r = checkGradients(cell, halfAtKink(cell));
      expect(r.pass, formatReport(r)).toBe(true);
      expect(r.rows.reduce((s, w) => s + w.kinks, 0)).toBeGreaterThan(0);
      expect(r.rows.every((w) => w.checked > w.kinks)).toBe(true);
    });

    it(`${cell.name}: a genuinely wrong rule still fails, kink or not`, () => {
      const op = cell === reluRnn ? "relu" : "max";
      const r = checkGradients(cell, halfAtKink(cell), { rule: planted((n) => n.op === op, scaled(1.5)) });
      expect(r.pass).toBe(false);
      expect(r.rows.some((w) => !w.pass && w.kinks < w.checked)).toBe(true);
      // and at the pure kink point, a rule with the wrong sign matches neither side
      const s = checkGradients(cell, atKink(cell), { rule: planted((n) => n.op === op, (n, g, right) => (op === "relu" ? [mul(konst(-1), g)] : right.map((c) => c && mul(konst(-1), c)))) });
      expect(s.pass).toBe(false);
    });
  }
});

describe("a kink where the examples disagree", () => {
  // h' = relu(W*x + b) at W = b = 0 with x = [1, -1]: one-sided slopes +1 and -2; relu' = 0 is
  // between them (a subgradient) and must count as a kink, and localise must not blame relu.
  const cell = compileCell({
    name: "relu1", doc: "one relu unit", sizes: { D: "input size", H: "hidden size" }, defaults: { D: 1, H: 1 },
    inputs: { x: "D" }, state: { h: "H" }, params: { W: ["H", "D"], b: "H" }, equations: "h' = relu(W*x + b)",
  });
  it("counts a kink, passes, and blames nothing", () => {
    const c = randomCase(cell, { B: 2, T: 1, seed: 1 });
    c.params.W!.fill(0); c.params.b!.fill(0);
    c.inputs.x!.set([1, -1]); c.upstream.h!.set([1, 2]);
    const r = checkGradients(cell, c);
    expect(r.pass, formatReport(r)).toBe(true);
    expect(r.rows.find((w) => w.name === "W")!.kinks).toBe(1);
    expect(localise(deriveBackward(cell), c)).toEqual([]);
  });
});

// ------------------------------------------------------------------ the saved set

describe("the saved set", () => {
  /** Leaves of one step (parameters, first-step inputs, initial states, random upstream), as an environment. */
  function stepLeaves(cell: Cell, bw: BackwardStep, c: SequenceCase): Env {
    const env: Env = new Map(cell.params.map((p) => [p.node, c.params[p.name]!]));
    cell.inputs.forEach((x) => env.set(x, c.inputs[x.attrs.name!]!.subarray(0, numel(x.type, c.B, c.sizes))));
    cell.states.forEach((s) => env.set(s, c.initial[s.attrs.name!]!));
    const rng = new Rng(77);
    bw.seeds.forEach((s) => env.set(s, rng.fill(new Float64Array(numel(s.type, c.B, c.sizes)))));
    return env;
  }
  const fwdRoots = (cell: Cell) => [...cell.next, ...cell.outputs.map((o) => o.node)];

  for (const name of ["gru", "lstm", "gru-cs224n", "rnn"])
    it(`${name}: backward from leaves + saved values recomputes only cheap elementwise forward values, and agrees`, () => {
      const cell = cellOf(name);
      const bw = deriveBackward(cell);
      const c = randomCase(cell, { B: 3, T: 1, seed: 9 });
      const leaves = stepLeaves(cell, bw, c);
      const reference = evaluate(bw.outputs, new Map(leaves), c.B, c.sizes); // everything recomputed
      const fwd = new Map(leaves);
      evaluate(fwdRoots(cell), fwd, c.B, c.sizes);

      const env: Env = new Map(leaves);
      for (const s of bw.saved) env.set(s, fwd.get(s)!);
      const stats: EvalStats = { computed: 0 };
      const out = evaluate(bw.outputs, env, c.B, c.sizes, stats);
      expect(out).toEqual(reference);

      const fwdSet = new Set(topo(fwdRoots(cell)));
      const computed = [...env.keys()].filter((n) => !leaves.has(n) && !bw.saved.includes(n));
      expect(stats.computed).toBe(computed.filter((n) => n.op !== "const").length);
      const forwardAgain = computed.filter((n) => fwdSet.has(n) && n.op !== "const");
      for (const n of forwardAgain) {
        expect(OPS[n.op].kind, n.op).toBe("elementwise");
        expect(["sub", "add", "mul", "neg"]).toContain(n.op); // cheap: no transcendental recomputed
        expect(bw.recomputed).toContain(n);
      }
      // no saved value is a leaf, and every saved value is read by the backward itself
      const bwdNodes = topo(bw.outputs, (n) => fwdSet.has(n)).filter((n) => !fwdSet.has(n) || bw.recomputed.includes(n));
      for (const s of bw.saved) {
        expect(s.op).not.toBe("input");
        expect(bwdNodes.some((n) => n.args.includes(s)), `saved ${s.op} is read`).toBe(true);
      }
    });

  it("GRU: saves z, r, Whn*h + bhn and n (4·H floats per example); 1 - z is recomputed, not saved", () => {
    const gru = cellOf("gru");
    const bw = deriveBackward(gru);
    const byName = new Map([...gru.names].map(([n, s]) => [s, n]));
    const z = byName.get("z")!, r = byName.get("r")!, n = byName.get("n")!;
    expect(bw.saved).toHaveLength(4);
    expect(bw.saved).toEqual(expect.arrayContaining([z, r, n]));
    const s1 = bw.saved.find((s) => ![z, r, n].includes(s))!;
    expect(s1.op).toBe("add");
    expect(s1.args.map((a) => a.op).sort()).toEqual(["input", "matvec"]);
    const oneMinusZ = sub(konst(1), z); // hash-consed: the very node the forward and backward use
    expect(bw.saved).not.toContain(oneMinusZ);
    expect(bw.recomputed).toContain(oneMinusZ);
    // the next state is not saved (the BPTT reference has it as the next step's state anyway)
    expect(bw.saved).not.toContain(gru.next[0]);
  });

  it("GRU: dropping any saved value forces a matrix product to be recomputed", () => {
    const gru = cellOf("gru");
    const bw = deriveBackward(gru);
    const c = randomCase(gru, { B: 2, T: 1 });
    const leaves = stepLeaves(gru, bw, c);
    const fwd = new Map(leaves);
    evaluate(fwdRoots(gru), fwd, c.B, c.sizes);
    const fwdSet = new Set(topo(fwdRoots(gru)));
    for (const dropped of bw.saved) {
      const env: Env = new Map(leaves);
      for (const s of bw.saved) if (s !== dropped) env.set(s, fwd.get(s)!);
      evaluate(bw.outputs, env, c.B, c.sizes);
      const recomputedFwd = [...env.keys()].filter((n) => fwdSet.has(n) && !leaves.has(n) && !bw.saved.includes(n));
      expect(recomputedFwd.some((n) => n.op === "matvec")).toBe(true);
    }
  });

  it("LSTM: saves the four gates and tanh(c'), nothing else", () => {
    const lstm = cellOf("lstm");
    const bw = deriveBackward(lstm);
    const byName = new Map([...lstm.names].map(([n, s]) => [s, n]));
    const gates = ["i", "f", "g", "o"].map((g) => byName.get(g)!);
    const cNext = byName.get("c'")!;
    expect(bw.saved).toHaveLength(5);
    expect(bw.saved).toEqual(expect.arrayContaining([...gates, apply("tanh", [cNext])]));
    expect(bw.saved).not.toContain(cNext);
  });
});

// ------------------------------------------------------------------ second order

describe("second order: the GRU's derived backward differentiated again", () => {
  const sizes = { D: 3, H: 4 }, B = 2;
  /**
   * φ = Σ_k <v_k, out_k> over every output of the first-order step (dx, dh, dWir, …). Returns the
   * largest error of the symbolic ∇φ (by `rule`, optionally simplified) w.r.t. x, h, dh' and every
   * parameter, against central differences of φ evaluated through the first-order graph.
   */
  function secondOrderError(rule: VjpRule = vjpOf, simplified = true): { maxErr: number; checked: number; bad: string[] } {
    const gru = cellOf("gru");
    const bw = deriveBackward(gru);
    const rng = new Rng(2024);
    const firstOrder = bw.outputs;
    const vs = firstOrder.map((o, k) => leaf(`v${k}`, "seed", o.type));
    const wrt = [...gru.inputs, ...gru.states, ...bw.seeds, ...gru.params.map((p) => p.node)];
    const env0: Env = new Map();
    for (const w of wrt) env0.set(w, rng.fill(new Float64Array(numel(w.type, B, sizes)), -0.8, 0.8));
    vs.forEach((v) => env0.set(v, rng.fill(new Float64Array(numel(v.type, B, sizes)))));
    const phi = (env: Env): number => {
      const outs = evaluate(firstOrder, new Map(env), B, sizes);
      let s = 0;
      outs.forEach((o, k) => { const v = env.get(vs[k]!)!; for (let i = 0; i < o.length; i++) s += v[i]! * o[i]!; });
      return s;
    };
    const raw = vjp(firstOrder, vs, wrt, rule).grads;
    const analytic = evaluate(simplified ? simplify(raw) : raw, new Map(env0), B, sizes);
    let maxErr = 0, checked = 0;
    const bad: string[] = [];
    wrt.forEach((w, k) => {
      const base = env0.get(w)!;
      for (let i = 0; i < base.length; i++) {
        const h = Math.cbrt(Number.EPSILON) * Math.max(1, Math.abs(base[i]!));
        const at = (d: number) => { const moved = Float64Array.from(base); moved[i] = base[i]! + d; return phi(new Map(env0).set(w, moved)); };
        const numeric = (at(h) - at(-h)) / (2 * h), a = analytic[k]![i]!;
        const err = Math.abs(a - numeric) / (1 + Math.abs(numeric));
        if (err > 1e-6) bad.push(`${w.attrs.name}[${i}]: ${a} vs ${numeric}`);
        maxErr = Math.max(maxErr, err);
        checked++;
      }
    });
    return { maxErr, checked, bad };
  }

  it("∇ of Σ <v_k, (dx, dh, dW…)_k> w.r.t. x, h, dh' and every parameter matches finite differences of the first-order step", () => {
    const nElems = 2 * 3 + 2 * 4 + 2 * 4 + (3 * 4 * (3 + 4 + 2)); // x, h, dh', parameters (3H(D+H+2))
    for (const simplified of [true, false]) {
      const r = secondOrderError(vjpOf, simplified);
      expect(r.bad).toEqual([]);
      expect(r.checked).toBe(nElems);
      expect(r.maxErr).toBeLessThan(1e-7);
    }
  });

  it("the comparison has power: a wrong rule for square (inside tanh' = 1 - square(n)) is caught at second order only", () => {
    const wrong = planted((n) => n.op === "square", scaled(1.5));
    expect(secondOrderError(wrong).bad.length).toBeGreaterThan(0);
    // the first-order check cannot see it: square does not occur in the forward
    const gru = cellOf("gru");
    expect(checkGradients(gru, randomCase(gru, { B: 1, T: 2 }), { rule: wrong, mode: "fast", directions: 2 }).pass).toBe(true);
  });

  it("d<v, dh>/dh is not identically zero (dh depends on h nonlinearly), and matches finite differences of dh", () => {
    const gru = cellOf("gru");
    const bw = deriveBackward(gru);
    const dh = bw.dStates[0]!, h = gru.states[0]!, x = gru.inputs[0]!;
    const v = leaf("v_dh", "seed", dh.type);
    const [ddh_dh, ddh_dx] = simplify(vjp([dh], [v], [h, x]).grads) as [Node, Node];
    const rng = new Rng(5);
    const env0: Env = new Map();
    for (const w of [...gru.inputs, ...gru.states, ...bw.seeds, ...gru.params.map((p) => p.node), v]) env0.set(w, rng.fill(new Float64Array(numel(w.type, B, sizes))));
    const [aH, aX] = evaluate([ddh_dh, ddh_dx], new Map(env0), B, sizes) as [Float64Array, Float64Array];
    expect(Math.max(...Array.from(aH, Math.abs))).toBeGreaterThan(1e-3);
    const vdh = (env: Env) => { const d = evaluate([dh], env, B, sizes)[0]!; const vv = env.get(v)!; return d.reduce((s, y, i) => s + y * vv[i]!, 0); };
    for (const [w, a] of [[h, aH], [x, aX]] as const)
      for (let i = 0; i < a.length; i++) {
        const e = 1e-5, base = env0.get(w)!;
        const at = (d: number) => vdh(new Map(env0).set(w, base.map((y, j) => (j === i ? y + d : y))));
        const numeric = (at(e) - at(-e)) / (2 * e);
        expect(Math.abs(a[i]! - numeric), `d<v,dh>/d${w.attrs.name}[${i}]`).toBeLessThan(1e-7 + 1e-6 * Math.abs(numeric));
      }
  });

  it("Hessian-vector product of the one-step loss <dh', h'>: symbolic vs finite differences of the derived gradient", () => {
    const gru = cellOf("gru");
    const bw = deriveBackward(gru);
    const sz = { D: 4, H: 3 }, nB = 3;
    const rng = new Rng(7);
    const primal = [...gru.inputs, ...gru.states, ...gru.params.map((p) => p.node)];
    const env0: Env = new Map();
    for (const w of [...primal, ...bw.seeds]) env0.set(w, rng.fill(new Float64Array(numel(w.type, nB, sz))));
    // direction u over every primal leaf; H u = d/dε ∇L(θ + εu) = ∇ <u, ∇L>
    const us = primal.map((w) => leaf(`u_${w.attrs.name}`, "seed", w.type));
    us.forEach((u) => env0.set(u, rng.fill(new Float64Array(numel(u.type, nB, sz)))));
    const hvp = simplify(vjp(bw.outputs, us, primal).grads);
    const analytic = evaluate(hvp, new Map(env0), nB, sz);
    const e = 1e-5;
    const gradAt = (eps: number) => {
      const env: Env = new Map(env0);
      primal.forEach((w, k) => env.set(w, env0.get(w)!.map((y, i) => y + eps * env0.get(us[k]!)![i]!)));
      return evaluate(bw.outputs, env, nB, sz);
    };
    const gp = gradAt(e), gm = gradAt(-e);
    let checked = 0;
    primal.forEach((w, k) => {
      for (let i = 0; i < analytic[k]!.length; i++) {
        const numeric = (gp[k]![i]! - gm[k]![i]!) / (2 * e);
        expect(Math.abs(analytic[k]![i]! - numeric), `HVP ${w.attrs.name}[${i}]`).toBeLessThanOrEqual(1e-7 + 1e-6 * Math.abs(numeric));
        checked++;
      }
    });
    expect(checked).toBe(nB * 4 + nB * 3 + 3 * 3 * (4 + 3 + 2));
  });
});

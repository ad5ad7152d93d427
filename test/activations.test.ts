// User activations (src/activations.ts): they may call every elementwise function of the op table,
// whose value, emission and derivative are the op's own; their derivatives are checked against
// finite differences, in cells against the gradient checker and the generated kernels.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { activationFunctions, compileActivation, differentiateActivation, tableFunctions } from "../src/activations.ts";
import { type CellSpec, compileCell } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { topo } from "../src/ir.ts";
import { type ElementwiseOp, FUNCTION_OPS, OPS } from "../src/ops.ts";
import { randomCase } from "../src/sequence.ts";
import { checkGradients } from "../check/gradcheck.ts";
import { checkKernels } from "../check/kernelcheck.ts";

/** A central difference of f at x, or null where the one-sided slopes disagree (a kink within the step). */
function slope(f: (x: number) => number, x: number): number | null {
  const h = 1e-6, left = (f(x) - f(x - h)) / h, right = (f(x + h) - f(x)) / h;
  return Math.abs(left - right) > 1e-4 * (1 + Math.abs(left)) ? null : (f(x + h) - f(x - h)) / (2 * h);
}
const POINTS = [-3.7, -2.2, -1.3, -0.61, -0.2, 0.17, 0.45, 0.93, 1.6, 2.8, 4.1];

describe("what an activation may call", () => {
  it("is every elementwise function op of the table, step and sign, then mathjs' elementary functions", () => {
    const table = tableFunctions();
    expect(table.slice(0, -2)).toEqual(FUNCTION_OPS.filter((op) => OPS[op].kind === "elementwise"));
    expect(table.slice(-2)).toEqual(["step", "sign"]);
    expect(activationFunctions().slice(0, table.length)).toEqual(table);
  });

  it("is the list README.md gives", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("### Your own activations"), readme.indexOf("### Mistakes"));
    const line = section.split("\n").find((l) => /^`sigmoid` /.test(l));
    expect(line, "README.md's list of the functions an activation may call").toBeDefined();
    expect([...line!.matchAll(/`(\w+)`/g)].map((m) => m[1])).toEqual(activationFunctions());
  });

  it("the error's hint lists the same functions", () => {
    const spec = { name: "a", doc: "t", sizes: { H: "hidden size" }, inputs: { x: "H" }, state: { h: "H" }, params: { b: "H" }, equations: "h' = f(x + h + b)" } as const;
    const err = (() => { try { compileCell({ ...spec, activations: { f: "erf(x)" } }); } catch (e) { return e as CellError; } })();
    expect(err).toBeInstanceOf(CellError);
    expect(err!.message).toContain(`function "erf" is not supported in activations`);
    expect(err!.message).toContain(activationFunctions().join(", "));
  });
});

describe("a table function in an activation", () => {
  for (const op of tableFunctions()) {
    const def = OPS[op] as ElementwiseOp;
    const expr = def.arity === 2 ? `${op}(x, 0.3 * x + 0.5)` : `x * ${op}(0.7 * x + 0.2)`;
    it(`${expr}: the op's value, and a derivative that matches finite differences`, () => {
      const f = compileActivation(expr).f, fn = def.fn({});
      const d = compileActivation(differentiateActivation(expr)).f;
      // its emitted JavaScript computes what its closure does
      const js = new Function("x", `return ${compileActivation(expr).js("x").replaceAll("(x: number)", "(x)")};`) as (x: number) => number;
      for (const x of POINTS) {
        expect(f(x)).toBe(def.arity === 2 ? fn(x, 0.3 * x + 0.5) : x * fn(0.7 * x + 0.2));
        // sqrt and log at a negative operand: NaN in both
        if (!Number.isFinite(f(x))) { expect(js(x)).toBeNaN(); continue; }
        expect(js(x)).toBeCloseTo(f(x), 12);
        const n = slope(f, x);
        if (n === null) continue;
        expect(d(x), `${expr} at ${x}: derivative ${differentiateActivation(expr)}`).toBeCloseTo(n, 5);
      }
    });
  }

  it("takes the op's derivative rule, kinks included: relu' = step, abs' = sign", () => {
    expect(differentiateActivation("relu(x)")).toBe("step(relu(x))");
    expect(differentiateActivation("x * sigmoid(x)")).toBe("sigmoid(x) + (sigmoid(x) - sigmoid(x) ^ 2) * x");
    // mathjs' own abs' is abs(x)/x: NaN wherever relu(x) = 0; the table's is sign(x)
    const d = compileActivation(differentiateActivation("abs(relu(x))")).f;
    expect([d(-2), d(0), d(3)]).toEqual([0, 0, 1]);
    // second order: the derivative's own table calls (step) have no derivative
    expect(differentiateActivation(differentiateActivation("relu(x)"))).toBe("0");
    const d2 = compileActivation(differentiateActivation(differentiateActivation("x * sigmoid(x)"))).f;
    const d1 = compileActivation(differentiateActivation("x * sigmoid(x)")).f;
    for (const x of POINTS) expect(d2(x)).toBeCloseTo(slope(d1, x)!, 5);
  });

  it("leaves mathjs' own functions to mathjs", () => {
    expect(differentiateActivation("sin(x) + x^3 / 3")).toBe("cos(x) + x ^ 2");
    expect(differentiateActivation("atan(x)")).toBe("1 / (x ^ 2 + 1)");
  });
});

// ---------------------------------------------------------------------------------- cells

const rnn = (activations: Record<string, string>, equations: string, extra: Partial<CellSpec> = {}): CellSpec => ({
  name: "act-rnn", doc: "an Elman RNN with user activations", sizes: { D: "input", H: "hidden" },
  inputs: { x: "D" }, state: { h: "H" }, params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
  activations, equations, ...extra,
});

describe("cells with activations that call table functions", () => {
  const cells: [string, CellSpec][] = [
    ["swish", rnn({ swish: "x * sigmoid(x)" }, "h' = swish(W*x + U*h + b)")],
    ["kinks", rnn({ leaky: "max(x, 0.1 * x) + abs(relu(x - 0.5))", hsw: "x * hardSigmoidKeras(3 * x) - min(softplus(x), tanh(x)) + square(hardSigmoid(x))" },
      "h' = hsw(leaky(W*x + U*h + b)) + softsign(h) .* 0.5")],
  ];
  for (const [what, spec] of cells)
    it(`${what}: the derived gradients match finite differences, and every kernel path passes`, async () => {
      const cell = compileCell(spec);
      const c = randomCase(cell, { B: 2, T: 3, seed: 7 });
      const ref = checkGradients(cell, c);
      expect(ref.rows.filter((r) => !r.pass).map((r) => `${r.group} ${r.name}`)).toEqual([]);
      const rows = await checkKernels(cell, c);
      expect(rows.filter((r) => !r.pass).map((r) => `${r.what}: error ${r.maxErr.toExponential(2)} (${r.rule})`)).toEqual([]);
    }, 60_000); // measured: 1–3 s, and up to 15 s for the first (loading the code generator)
});

// ---------------------------------------------------------------------------------- names

describe("what an activation sees", () => {
  const errorOf = (spec: CellSpec) => { try { compileCell(spec); } catch (e) { if (e instanceof CellError) return e.message; throw e; } return ""; };

  it("x is its argument, and a constant e or pi hides mathjs' one", () => {
    // a constant x too: the activation's x is still its argument
    const cell = compileCell(rnn({ f: "x * sigmoid(e * x) + pi" }, "h' = f(W*u + U*h + b + x)", { inputs: { u: "D" }, constants: { e: 0.5, pi: 2, x: 9 } }));
    const act = topo(cell.next).find((n) => n.op === "act")!;
    expect(compileActivation(act.attrs.fn!.expr).f(1)).toBeCloseTo(1 / (1 + Math.exp(-0.5)) + 2, 12);
    // without declarations, mathjs' e and pi
    const plain = compileCell(rnn({ f: "x * e + pi" }, "h' = f(W*x + U*h + b)"));
    expect(compileActivation(topo(plain.next).find((n) => n.op === "act")!.attrs.fn!.expr).f(1)).toBeCloseTo(Math.E + Math.PI, 12);
  });

  it("a name the cell declares as anything but a constant is refused, at the spot", () => {
    const spec = rnn({ f: "x * pi" }, "h' = f(W*x + U*h + b) + pi", { params: { W: ["H", "D"], U: ["H", "H"], b: "H", pi: "H" } });
    const msg = errorOf(spec);
    expect(msg).toContain(`activation f: "pi" is a parameter of the cell, and an activation sees only x, numbers and the cell's constants`);
    expect(msg).toContain("mathjs' pi is hidden in this cell by the declared pi");
  });

  it("an activation does not call another one", () => {
    const msg = errorOf(rnn({ g: "tanh(x)", f: "x * g(x)" }, "h' = f(W*x + U*h + b)"));
    expect(msg).toContain("activation f calls g, another activation");
    expect(msg).toContain("apply one inside the other in the equations: f(g(…))");
    // nor itself, when it is named as a built-in: the name would be ambiguous
    expect(errorOf(rnn({ sigmoid: "x * sigmoid(x)" }, "h' = sigmoid(W*x + U*h + b)"))).toContain("activation sigmoid calls sigmoid, another activation");
  });

  it("a table function with the wrong number of arguments is refused", () => {
    expect(errorOf(rnn({ f: "max(x)" }, "h' = f(W*x + U*h + b)"))).toContain(`function "max" takes 2 arguments, not 1`);
  });

  it("pi, e and i are names in the equations, a parameter pi hiding mathjs' pi", () => {
    const cell = compileCell({
      name: "names", doc: "pi, e, i as names", sizes: { D: "input", H: "hidden" }, inputs: { x: "D" }, state: { h: "H", c: "H" },
      params: { W: ["H", "D"], U: ["H", "H"], b: "H", pi: "H" }, constants: { e: 0.5 }, activations: { f: "x * sigmoid(e * x) + e" },
      equations: "i = sigmoid(W*x + U*h + b + pi .* c)\nc' = i .* tanh(W*x) + (1 - i) .* c\nh' = f(c') * e",
    });
    expect(topo(cell.next).some((n) => n.op === "input" && n.attrs.name === "pi")).toBe(true);
    expect(checkGradients(cell, randomCase(cell, { B: 2, T: 3, seed: 5 })).pass).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import gruSpec from "../dsl/gru.ts";
import lstmSpec from "../dsl/lstm.ts";
import { compileCell } from "../src/cell.ts";
import { add, buildCell, dotSub, matmul, max, mul, neg, sigmoid, slice, sub, tanh, transpose } from "../src/builder.ts";
import { loadCell } from "../src/load.ts";
import { shapeStr } from "../src/ir.ts";
import { checkGradients } from "../check/gradcheck.ts";
import { randomCase } from "../src/sequence.ts";
import { CellError } from "../src/errors.ts";

const { name: _n, equations: _e, ...gruDecl } = gruSpec;

function builtGru() {
  return buildCell({ ...gruDecl, name: "gru" }, ({ x, h, Wir, Wiz, Win, Whr, Whz, Whn, bir, biz, bin, bhr, bhz, bhn }) => {
    const r = sigmoid(add(matmul(Wir, x), bir, matmul(Whr, h), bhr));
    const z = sigmoid(add(matmul(Wiz, x), biz, matmul(Whz, h), bhz));
    const n = tanh(add(matmul(Win, x), bin, mul(r, add(matmul(Whn, h), bhn))));
    return { r, z, n, "h'": add(mul(sub(1, z), n), mul(z, h)) };
  });
}

describe("the builder form", () => {
  it("builds a cell with outputs as the equations do, and checks their declared shapes", () => {
    const decl = {
      name: "rnn-y", doc: "an Elman RNN with a readout", sizes: { D: "input", H: "hidden", O: "output" }, inputs: { x: "D" }, state: { h: "H" },
      outputs: { y: "O" }, params: { W: ["H", "D"], U: ["H", "H"], b: "H", V: ["O", "H"] },
    } as const;
    const text = compileCell({ ...decl, equations: ["h' = tanh(W*x + U*h + b)", "y = V*h'"] });
    const built = buildCell(decl, ({ x, h, W, U, b, V }) => {
      const hn = tanh(add(matmul(W, x), matmul(U, h), b));
      return { "h'": hn, y: matmul(V, hn) };
    });
    expect(built.outputs.map((o) => o.name)).toEqual(["y"]);
    expect(built.outputs[0]!.node).toBe(text.outputs[0]!.node);
    expect(checkGradients(built, randomCase(built, { B: 2, T: 3, seed: 3 }), { mode: "fast" }).pass).toBe(true);
    expect(() => buildCell(decl, ({ x, h, W, U, b }) => ({ "h'": tanh(add(matmul(W, x), matmul(U, h), b)), y: h }))).toThrow(/y is \[H\], but output y is declared \[O\]/);
    expect(() => buildCell(decl, ({ x, h, W, U, b }) => ({ "h'": tanh(add(matmul(W, x), matmul(U, h), b)) }))).toThrow(/output y is never defined/);
  });

  it("builds the very same IR as the equations (the same nodes)", () => {
    const text = compileCell(gruSpec);
    const built = builtGru();
    expect(built.next[0]).toBe(text.next[0]);
    expect(built.params.map((p) => p.node)).toEqual(text.params.map((p) => p.node));
    expect(built.equations.map((e) => e.text)).toEqual([
      "r = sigmoid(Wir*x + bir + Whr*h + bhr)",
      "z = sigmoid(Wiz*x + biz + Whz*h + bhz)",
      "n = tanh(Win*x + bin + r .* (Whn*h + bhn))",
      "h' = (1 - z) .* n + z .* h",
    ]);
  });

  it("builds a family of variants in a loop, each gradient-checked", () => {
    const { name: _l, equations: _le, ...lstmDecl } = lstmSpec;
    // LSTM variants of Greff et al.: no input gate, no forget gate, no output gate
    for (const drop of ["i", "f", "o"] as const) {
      const cell = buildCell({ ...lstmDecl, name: `lstm-n${drop}g` }, (v) => {
        const gate = (k: "i" | "f" | "o") => (k === drop ? undefined : sigmoid(add(matmul(v[`Wi${k}`]!, v.x!), v[`bi${k}`]!, matmul(v[`Wh${k}`]!, v.h!), v[`bh${k}`]!)));
        const [i, f, o] = [gate("i"), gate("f"), gate("o")];
        const g = tanh(add(matmul(v.Wig!, v.x!), v.big!, matmul(v.Whg!, v.h!), v.bhg!));
        const c = add(f ? mul(f, v.c!) : v.c!, i ? mul(i, g) : g);
        return { ...(i && { i }), ...(f && { f }), ...(o && { o }), g, "c'": c, "h'": o ? mul(o, tanh(c)) : tanh(c) };
      });
      expect(cell.warnings.length).toBe(4); // the dropped gate's two weights and two biases
      expect(checkGradients(cell, randomCase(cell, { B: 2, T: 3 })).pass).toBe(true);
    }
  });

  it("reports a missing state update and a wrong shape as cell errors", () => {
    expect(() => buildCell({ ...gruDecl, name: "g" }, ({ x }) => ({ y: x }))).toThrow(CellError);
    expect(() => buildCell({ ...gruDecl, name: "g" }, ({ x }) => ({ "h'": tanh(x) }))).toThrow(/h' is \[D\]/);
    expect(() => buildCell({ ...gruDecl, name: "g" }, ({ x, h }) => ({ "h'": add(x, h) }))).toThrow(/builder: .*shapes differ/);
  });

  it("transpose(W) multiplies a vector as W'*v does: the antisymmetric cell is the same IR as its equations", async () => {
    const text = await loadCell("test/fixtures/cells/antisymmetric.ts");
    const decl = {
      name: "antisymmetric", doc: "AntisymmetricRNN", sizes: { D: "input size", H: "hidden size" }, inputs: { x: "D" }, state: { h: "H" },
      params: { W: ["H", "H"], V: ["H", "D"], b: "H" }, constants: { eps: 0.1, gamma: 0.01 },
    } as const;
    const built = buildCell(decl, ({ x, h, W, V, b, eps, gamma }) => ({
      "h'": add(h, matmul(eps, tanh(add(sub(sub(matmul(W, h), matmul(transpose(W), h)), matmul(gamma, h)), matmul(V, x), b)))),
    }));
    expect(built.next[0]).toBe(text.next[0]);
    expect(built.equations.map((e) => e.text)).toEqual(["h' = h + 0.1 * tanh(W*h - W'*h - 0.01 * h + V*x + b)"]);
    expect(checkGradients(built, randomCase(built, { B: 2, T: 3, seed: 3 }), { mode: "fast" }).pass).toBe(true);
    expect(() => buildCell(decl, ({ h, W }) => ({ "h'": tanh(add(transpose(W) as never, h)) }))).toThrow(/transpose\(W\) can only multiply a vector/);
    expect(() => buildCell(decl, ({ h, b }) => ({ "h'": matmul(transpose(b), h) }))).toThrow(/transpose expects a matrix, but its argument is \[H\]/);
  });

  it("sizes follow the constraints: D is H under D = H, in shapes, in size values and in slice", async () => {
    const text = await loadCell("test/fixtures/cells/constraint-skip.ts");
    const decl = {
      name: "constraint-skip", doc: "skip", sizes: { D: "input size", H: "hidden size" }, constraints: ["D = H"], inputs: { x: "D" }, state: { h: "H" },
      params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
    } as const;
    const built = buildCell(decl, ({ x, h, W, U, b }) => ({ "h'": add(tanh(add(matmul(W, x), matmul(U, h), b)), x) }));
    expect(built.next[0]).toBe(text.next[0]);
    expect(built.constraints.map((c) => c.text)).toEqual(["D = H"]);
    const sliced = buildCell(decl, ({ x, h, W, U, b, D }) => ({ "h'": add(tanh(add(matmul(W, x), matmul(U, h), b)), slice(x, 0, "D"), mul(D!, slice(h, 0, D!))) }));
    expect(shapeStr(sliced.next[0]!.type)).toBe("[H]");
    expect(checkGradients(sliced, randomCase(sliced, { B: 2, T: 3, seed: 3 }), { mode: "fast" }).pass).toBe(true);
  });

  it("a scalar input is the scalar it holds, and a size-1 input broadcasts in the elementwise helpers", async () => {
    const text = await loadCell("test/fixtures/cells/scalar-input-cfc.ts");
    const decl = {
      name: "scalar-input-cfc", doc: "cfc", sizes: { D: "input size", H: "hidden size" }, inputs: { x: "D", dt: [] }, state: { h: "H" },
      params: { W: ["H", "D"], U: ["H", "H"], b: "H", ta: "H" },
    } as const;
    const built = buildCell(decl, ({ x, dt, h, W, U, b, ta }) => {
      const f = sigmoid(matmul(neg(ta), dt));
      const n = tanh(add(matmul(W, x), matmul(U, h), b));
      return { f, n, "h'": add(mul(f, h), mul(mul(dt, sub(1, f)), n)) };
    });
    expect(built.next[0]).toBe(text.next[0]);
    expect(built.scalarInputs).toEqual(["dt"]);
    const unit = buildCell({ ...decl, name: "unit", inputs: { x: "D", t: 1 } }, ({ x, t, h, W, U, b, ta }) => ({
      "h'": add(mul(ta, t), mul(t, h), max(t, tanh(add(matmul(W, x), matmul(U, h), b)))),
    }));
    expect(shapeStr(unit.next[0]!.type)).toBe("[H]");
    expect(checkGradients(unit, randomCase(unit, { B: 2, T: 3, seed: 3 }), { mode: "fast" }).pass).toBe(true);
  });

  it("a scalar added to or subtracted from a matrix is refused, with the equations' hint; dotSub subtracts it from every entry", () => {
    const decl = { name: "m", doc: "m", sizes: ["H"], inputs: { x: "H" }, state: { h: "H" }, params: { W: ["H", "H"], g: [] } } as const;
    const err = (() => { try { buildCell(decl, ({ h, W, g }) => ({ "h'": tanh(matmul(sub(W, g), h)) })); } catch (e) { return e as CellError; } throw new Error("accepted"); })();
    expect(err).toBeInstanceOf(CellError);
    expect(err.problem).toBe("builder: sub subtracts the scalar from every entry of the matrix [H,H]");
    expect(err.hint).toBe("for the scalar times the identity, use it in the product: sub(matmul(W, v), mul(g, v)) is (W - g*eye(H))*v; to subtract it from every entry, write dotSub(W, g) (the equations' .-)");
    expect(() => buildCell(decl, ({ h, W, g }) => ({ "h'": tanh(matmul(add(g, W), h)) }))).toThrow(/add adds the scalar to every entry/);
    const ok = buildCell(decl, ({ x, h, W, g }) => ({ "h'": tanh(add(matmul(transpose(dotSub(W, g)), h), x)) }));
    const text = compileCell({ ...decl, equations: "h' = tanh((W .- g)'*h + x)" });
    expect(ok.next[0]).toBe(text.next[0]);
    expect(ok.equations.map((e) => e.text)).toEqual(["h' = tanh((W .- g)'*h + x)"]);
  });
});

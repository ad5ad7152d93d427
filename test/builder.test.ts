import { describe, expect, it } from "vitest";
import gruSpec from "../dsl/gru.ts";
import lstmSpec from "../dsl/lstm.ts";
import { compileCell } from "../src/cell.ts";
import { add, buildCell, matmul, mul, sigmoid, sub, tanh } from "../src/builder.ts";
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
});

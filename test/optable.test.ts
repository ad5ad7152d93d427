// The op table (src/ops.ts) is the one place an op lives; what is derived from it, and what can only
// be checked, is checked here: the README's function table says what the language's functions are
// (the README text is written by hand, this test compares), every function is a builder export that
// builds the language's very nodes, and every tensor op, whose kernel is its own loop or product in
// codegen/emit.ts, is generated and checked in a cell of its own. (The elementwise ops are checked
// from their blocks by test/property.test.ts and test/wasm-ops.test.ts.)
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as cellforge from "../src/index.ts";
import { buildCell, add, concat, matmul, mean, mul, slice, sum, tanh } from "../src/builder.ts";
import { compileCell } from "../src/cell.ts";
import { deriveBackward } from "../src/backward.ts";
import { type Node, topo } from "../src/ir.ts";
import { COMPOSITES, FUNCTIONS } from "../src/lang.ts";
import { type OpName, type TensorOpName, FUNCTION_OPS, OPS, apply } from "../src/ops.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels } from "../check/kernelcheck.ts";

describe("the language's functions", () => {
  it("are the README's function table, row for row", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const at = readme.indexOf("| function | meaning |\n|---|---|\n");
    expect(at, "README.md has a table headed | function | meaning |").toBeGreaterThan(-1);
    const rows = readme.slice(at).split("\n").slice(2);
    const table = rows.slice(0, rows.findIndex((r) => !r.startsWith("|")));
    const want = Object.values(FUNCTIONS).map((f) => `| \`${f.usage}\` | ${f.doc} |`);
    expect(table, "README.md's function table differs from src/ops.ts (an op's `call`) and src/lang.ts (COMPOSITES)").toEqual(want);
  });

  it("are the function ops of the table, by their names, then the composites", () => {
    expect(Object.keys(FUNCTIONS)).toEqual([...FUNCTION_OPS, ...Object.keys(COMPOSITES)]);
    for (const op of FUNCTION_OPS) expect(FUNCTIONS[op]!.usage.startsWith(`${op}(`), op).toBe(true);
    expect(Object.keys(COMPOSITES).filter((f) => Object.hasOwn(OPS, f) && OPS[f as OpName].call !== null), "a composite hides a function op").toEqual([]);
  });

  it("are builder functions of cellforge's API, building the very nodes the equations do", () => {
    const spec = { name: "f", doc: "t", sizes: { H: "hidden size" }, inputs: { a: "H", b: "H" }, state: { h: "H" }, params: {} } as const;
    const api = cellforge as unknown as Record<string, (...args: unknown[]) => Node>;
    for (const [name, f] of Object.entries(FUNCTIONS)) {
      if (f.dimArgs || f.arity === "1+") continue; // slice and concat take sizes, or any number of vectors: below
      const args = ["a", "b", "h"].slice(0, f.arity as number);
      // h + f(…): a function of a vector may be a scalar (sum), broadcast over h
      const text = compileCell({ ...spec, equations: `h' = h + ${name}(${args.join(", ")})` });
      const exported = name === "var" ? "variance" : name; // var is a word of JavaScript
      expect(typeof api[exported], `cellforge exports ${exported}`).toBe("function");
      const built = buildCell(spec, (v) => ({ "h'": add(v.h, api[exported]!(...args.map((n) => v[n]))) }));
      expect(built.next[0], name).toBe(text.next[0]);
    }
    const text = compileCell({ ...spec, equations: "h' = slice(concat(a, b, h), H, H)" });
    const built = buildCell(spec, (v) => ({ "h'": slice(concat(v.a, v.b, v.h), "H", "H") }));
    expect(built.next[0]).toBe(text.next[0]);
  });

  it("a name the cell declares hides a function of the same name, in that cell", () => {
    const spec = { name: "shadow", doc: "t", sizes: { H: "hidden size" }, inputs: { x: "H" }, state: { h: "H" }, params: { tanh: "H" } } as const;
    const cell = compileCell({ ...spec, activations: { sigmoid: "x / (1 + abs(x))" }, equations: "h' = sigmoid(x + tanh)" });
    const nodes = topo(cell.next);
    expect(nodes.some((n) => n.op === "act" && n.attrs.fn!.name === "sigmoid"), "the activation sigmoid").toBe(true);
    expect(nodes.some((n) => n.op === "input" && n.attrs.name === "tanh"), "the parameter tanh").toBe(true);
    expect(() => compileCell({ ...spec, equations: "h' = tanh(x)" })).toThrow(/"tanh" is a parameter, not a function/);
  });
});

// ---------------------------------------------------------------------------------- tensor ops

const decl = {
  doc: "a test cell for one tensor op (test/optable.test.ts)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { W: ["H", "D"], U: ["H", "H"], b: "H", V: ["H", "D + H"], Q: { shape: ["2*H", "2*H"], heads: 2 } },
} as const;
type Vars = { readonly [k: string]: Node };

/**
 * For each tensor op, a term of a cell that puts it in the forward or the backward; the type makes a
 * new tensor op without one a compile error.
 */
const USES: { readonly [K in TensorOpName]: (v: Vars) => Node } = {
  size: (v) => mean(v.h!), // sum(h) / H
  matvec: (v) => matmul(v.U!, tanh(v.h!)),
  matvecT: (v) => matmul(v.W!, v.x!), // its backward: dx = W'*g
  outer: (v) => matmul(v.W!, v.x!), // its backward: dW = outer(g, x)
  bdmatvec: (v) => sum(tanh(matmul(v.Q!, concat(v.h!, tanh(v.h!))))), // Q declared with 2 heads: a block-diagonal product
  bdmatvecT: (v) => sum(tanh(matmul(v.Q!, concat(v.h!, tanh(v.h!))))), // its backward: dh = Q'*g, per head
  bdouter: (v) => sum(tanh(matmul(v.Q!, concat(v.h!, tanh(v.h!))))), // its backward: dQ, per head
  sum: (v) => sum(tanh(v.h!)),
  bcast: (v) => sum(mul(v.h!, v.h!)), // its backward: the scalar gradient in every element
  sumb: (v) => v.b!, // a shared bias: its gradient sums over the batch
  expandb: (v) => apply("expandb", [tanh(v.b!)]),
  concat: (v) => matmul(v.V!, concat(v.x!, v.h!)),
  slice: (v) => slice(tanh(concat(v.x!, v.h!)), "D", "H"),
  pad: (v) => slice(tanh(concat(v.x!, v.h!)), "D", "H"), // its backward: the slice's gradient, padded
};

describe("every tensor op, generated and checked in a cell of its own", () => {
  it("has a use here for every tensor op of the table", () => {
    const tensor = (Object.keys(OPS) as OpName[]).filter((op) => OPS[op].kind === "tensor");
    expect(Object.keys(USES).sort()).toEqual(tensor.sort());
  });

  for (const op of Object.keys(USES) as TensorOpName[])
    it(op, async () => {
      const cell = buildCell({ ...decl, name: `tensor-${op}` }, (v) => ({
        "h'": tanh(add(matmul(v.W!, v.x!), matmul(v.U!, v.h!), v.b!, mul(0.5, USES[op](v)))),
      }));
      const bw = deriveBackward(cell);
      expect(topo([...cell.next, ...bw.outputs]).some((n) => n.op === op), `${op} is in the forward or the backward`).toBe(true);
      const rows = await checkKernels(cell, randomCase(cell, { sizes: { D: 3, H: 5 }, B: 2, T: 3, seed: 3 }), { typecheck: false });
      for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr} (${r.rule}) ${r.detail}`).toBe(true);
    });
});

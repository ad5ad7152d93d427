// The weight converters (src/interop) and the README section "Which GRU is this?". A cell's form is recognized from its
// compiled equations, not its name; each gate lands where PyTorch and Keras put it; round trips are
// exact; a weight that does not fit and a cell that is not a form are refused with a message that
// says why; and every equivalence that section states is checked here, through the converters, with
// the reference evaluator (outputs at every step and every gradient, to 1e-12).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Cell, CellSpec } from "../src/cell.ts";
import { compileCell } from "../src/cell.ts";
import { ROOT, loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { type SequenceCase, gradients, randomCase } from "../src/sequence.ts";
import { forms, formById } from "../src/interop/forms.ts";
import { formCell, recognize } from "../src/interop/match.ts";
import { type CellParams, InteropError, type Nested, type Params, readCellParams, readWeights, route, writeCellParams, writeWeights } from "../src/interop/convert.ts";
import { convertCmd } from "../cli/convert.ts";

const BUILTIN = ["rnn", "gru", "lstm", "gru-cudnn", "gru-keras", "gru-keras-reset-before", "gru-tfjs", "gru-cho", "gru-cs224n", "lstm-keras", "lstm-tfjs", "lstm-np", "lstm-peephole", "mgu"] as const;
const cells = new Map<string, Cell>();
beforeAll(async () => {
  for (const n of BUILTIN) cells.set(n, await loadCell(n));
});
const cellOf = (n: string): Cell => cells.get(n) ?? expect.unreachable(`no cell ${n}`);
const sizes = { D: 3, H: 4 };
const paramsOf = (cell: Cell, seed = 3, s: { D: number; H: number } = sizes): CellParams => ({ sizes: s, params: randomCase(cell, { sizes: s, seed }).params });

// ------------------------------------------------------------------ running cells

const TOL = 1e-12;
function expectClose(a: Float64Array | undefined, b: Float64Array | undefined, what: string) {
  expect(a, what).toBeDefined();
  expect(a!.length, what).toBe(b!.length);
  let worst = 0;
  for (let k = 0; k < a!.length; k++) worst = Math.max(worst, Math.abs(a![k]! - b![k]!) / Math.max(1, Math.abs(b![k]!)));
  expect(worst, what).toBeLessThanOrEqual(TOL);
}
const run = (cell: Cell, c: SequenceCase) => gradients(deriveBackward(cell), c);

/**
 * Cell A on a random case, cell B on the same inputs, initial states and upstream gradients with
 * parameters `pb` (from A's by the conversion under test): every state at every step, dx and the
 * initial-state gradients agree; `gradA` turns B's parameter gradients into A's, which must agree too.
 */
function expectSameFunction(A: Cell, B: Cell, toB: (pa: CellParams) => Params, gradA?: (gb: CellParams) => Params, opts: { B?: number; T?: number; seed?: number } = {}) {
  const ca = randomCase(A, { sizes, B: opts.B ?? 2, T: opts.T ?? 3, seed: opts.seed ?? 5 });
  const cb: SequenceCase = { ...ca, params: toB({ sizes, params: ca.params }) };
  const ra = run(A, ca), rb = run(B, cb);
  for (const k of Object.keys(ra.forward.outputs)) expectClose(rb.forward.outputs[k], ra.forward.outputs[k], `${A.name} vs ${B.name}: ${k} at every step`);
  expectClose(rb.grads.inputs.x, ra.grads.inputs.x, `${A.name} vs ${B.name}: dx`);
  for (const k of Object.keys(ra.grads.initial)) expectClose(rb.grads.initial[k], ra.grads.initial[k], `${A.name} vs ${B.name}: d${k}0`);
  if (!gradA) return;
  const ga = gradA({ sizes, params: rb.grads.params });
  for (const p of A.params) expectClose(ga[p.name], ra.grads.params[p.name], `${A.name} vs ${B.name}: d${p.name}`);
}

/** Both cells through one framework's weights: A's parameters written, read back as B's. */
const through = (A: Cell, B: Cell, fw: "pytorch" | "keras") => (pa: CellParams) => readWeights(B, fw, JSON.parse(JSON.stringify(writeWeights(A, fw, pa).json))).params;

const gruSpec = (equations: string[], name = "test-gru", params?: CellSpec["params"]): CellSpec => ({
  name, doc: "a test cell", sizes: { D: "input", H: "hidden" }, inputs: { x: "D" }, state: { h: "H" },
  params: params ?? { Wir: ["H", "D"], Wiz: ["H", "D"], Win: ["H", "D"], Whr: ["H", "H"], Whz: ["H", "H"], Whn: ["H", "H"], bir: "H", biz: "H", bin: "H", bhr: "H", bhz: "H", bhn: "H" },
  equations,
});
const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InteropError);
    return (e as Error).message;
  }
  return expect.unreachable("no error");
};

// ------------------------------------------------------------------ recognition

describe("recognition: a cell's form comes from its compiled equations", () => {
  const EXPECTED: Readonly<Record<(typeof BUILTIN)[number], string[]>> = {
    rnn: ["pytorch-rnn"],
    gru: ["pytorch-gru", "keras-gru-reset-after/sigmoid"],
    lstm: ["pytorch-lstm"],
    "gru-cudnn": ["pytorch-gru", "keras-gru-reset-after/sigmoid"], // (W x + R h) + b_W + b_R: the same sum
    "gru-keras": ["pytorch-gru", "keras-gru-reset-after/sigmoid"],
    "gru-keras-reset-before": ["keras-gru-reset-before/sigmoid"],
    "gru-tfjs": ["keras-gru-reset-before/hardSigmoid"],
    "gru-cho": ["keras-gru-reset-before/sigmoid"],
    "gru-cs224n": [],
    "lstm-keras": ["keras-lstm/sigmoid"],
    "lstm-tfjs": ["keras-lstm/hardSigmoid"],
    "lstm-np": ["keras-lstm/sigmoid"],
    "lstm-peephole": [],
    mgu: [],
  };
  for (const [name, ids] of Object.entries(EXPECTED))
    it(`${name}: ${ids.join(", ") || "no form"}`, () => {
      expect(recognize(cellOf(name)).map((r) => r.form.id).sort()).toEqual([...ids].sort());
    });

  it("each form's built-in cell is the form itself, node for node (hash-consing: ===)", () => {
    for (const f of forms().filter((g) => g.builtin)) {
      const cell = cellOf(f.builtin!), fc = formCell(f);
      fc.next.forEach((n, i) => expect(n, `${f.id} = ${f.builtin}`).toBe(cell.next[i]));
      expect(recognize(cell).find((r) => r.form === f)!.rename).toEqual(new Map(fc.params.map((p) => [p.name, p.name])));
    }
  });

  it("a cell named gru whose reset gate applies before the product is refused, and the message shows where it differs", () => {
    const cell = compileCell(gruSpec([
      "r = sigmoid(Wir*x + bir + Whr*h + bhr)", "z = sigmoid(Wiz*x + biz + Whz*h + bhz)",
      "n = tanh(Win*x + bin + Whn*(r .* h) + bhn)", "h' = (1 - z) .* n + z .* h",
    ], "gru"));
    expect(recognize(cell)).toEqual([]);
    const msg = errorOf(() => route(cell, "pytorch"));
    expect(msg).toMatch(/cell "gru" is not one of the forms/);
    expect(msg).toContain("PyTorch nn.GRU / nn.GRUCell, in n = tanh(Win*x + bin + r .* (Whn*h + bhn)): the form has Win*x + bin + r .* (Whn*h + bhn) where cell \"gru\" has Win*x + bin + Whn*(r .* h) + bhn");
  });

  it("a GRU whose z keeps the candidate (Chung et al. 2014) is not PyTorch's form", () => {
    const cell = compileCell(gruSpec([
      "r = sigmoid(Wir*x + bir + Whr*h + bhr)", "z = sigmoid(Wiz*x + biz + Whz*h + bhz)",
      "n = tanh(Win*x + bin + r .* (Whn*h + bhn))", "h' = z .* n + (1 - z) .* h",
    ]));
    expect(recognize(cell)).toEqual([]);
    expect(errorOf(() => route(cell, "pytorch"))).toMatch(/PyTorch nn\.GRU \/ nn\.GRUCell, in h' = \(1 - z\) \.\* n \+ z \.\* h: the form has /);
  });

  it("other names, other term order and product order: PyTorch's GRU all the same, and it runs PyTorch's weights", () => {
    const cell = compileCell(gruSpec(
      [
        "reset  = sigmoid(Ur*h + Wr*x + cr + br)", "update = sigmoid(bz + cz + Uz*h + Wz*x)",
        "cand   = tanh((U*h + c) .* reset + b + W*x)", "h' = h .* update + (1 - update) .* cand",
      ],
      "mine",
      { Wr: ["H", "D"], Wz: ["H", "D"], W: ["H", "D"], Ur: ["H", "H"], Uz: ["H", "H"], U: ["H", "H"], br: "H", bz: "H", b: "H", cr: "H", cz: "H", c: "H" },
    ));
    const r = recognize(cell).find((x) => x.form.id === "pytorch-gru")!;
    // a gate's two biases enter only as their sum, so either pairing is the same function (and both
    // get the same gradient); they pair in the order written: cr is this cell's first bias of r
    expect(Object.fromEntries(r.rename)).toEqual({ Wir: "Wr", Wiz: "Wz", Win: "W", Whr: "Ur", Whz: "Uz", Whn: "U", bir: "cr", biz: "bz", bin: "b", bhr: "br", bhz: "cz", bhn: "c" });
    expectSameFunction(cellOf("gru"), cell, through(cellOf("gru"), cell, "pytorch"), (g) => readWeights(cellOf("gru"), "pytorch", writeWeights(cell, "pytorch", g).json).params);
  });

  it("a cell that uses one weight where the form has two (tied gates) is not the form", () => {
    const cell = compileCell(gruSpec([
      "r = sigmoid(Wir*x + bir + Whr*h + bhr)", "z = sigmoid(Wir*x + biz + Whz*h + bhz)",
      "n = tanh(Win*x + bin + r .* (Whn*h + bhn))", "h' = (1 - z) .* n + z .* h",
    ]));
    expect(cell.warnings.join()).toMatch(/Wiz is never used/);
    expect(recognize(cell)).toEqual([]);
  });
});

// ------------------------------------------------------------------ layouts

/** Parameters whose every element says where it came from: param index * 1000 + row * 10 + column. */
function marked(cell: Cell): CellParams {
  const params: Params = {};
  cell.params.forEach((p, i) => {
    const [rows, cols] = p.node.type.shape.map((d) => (d.key === "D" ? sizes.D : sizes.H)) as [number, number | undefined];
    params[p.name] = Float64Array.from({ length: rows * (cols ?? 1) }, (_, k) => (i + 1) * 1000 + Math.floor(k / (cols ?? 1)) * 10 + (k % (cols ?? 1)));
  });
  return { sizes, params };
}
const at = (v: Nested, ...ix: number[]): number => ix.reduce<Nested>((a, i) => (a as Nested[])[i]!, v) as number;
const val = (cp: CellParams, cell: Cell, name: string, r: number, c = 0) => cp.params[name]![r * (cell.params.find((p) => p.name === name)!.node.type.shape.length === 2 ? (cell.params.find((p) => p.name === name)!.node.type.shape[1]!.key === "D" ? sizes.D : sizes.H) : 1) + c]!;

describe("layouts: each gate's block where the framework keeps it", () => {
  const H = sizes.H;
  it("gru -> PyTorch: weight_ih_l0 = [W_ir; W_iz; W_in] (3H, D), weight_hh_l0 = [W_hr; W_hz; W_hn], biases [r|z|n]", () => {
    const cell = cellOf("gru"), cp = marked(cell), j = writeWeights(cell, "pytorch", cp).json;
    expect(Object.keys(j)).toEqual(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]);
    for (let i = 0; i < H; i++)
      for (let d = 0; d < sizes.D; d++) {
        expect(at(j.weight_ih_l0 as Nested, i, d)).toBe(val(cp, cell, "Wir", i, d));
        expect(at(j.weight_ih_l0 as Nested, H + i, d)).toBe(val(cp, cell, "Wiz", i, d));
        expect(at(j.weight_ih_l0 as Nested, 2 * H + i, d)).toBe(val(cp, cell, "Win", i, d));
      }
    for (let i = 0; i < H; i++) {
      expect(at(j.weight_hh_l0 as Nested, 2 * H + i, 1)).toBe(val(cp, cell, "Whn", i, 1));
      expect(at(j.bias_ih_l0 as Nested, H + i)).toBe(val(cp, cell, "biz", i));
      expect(at(j.bias_hh_l0 as Nested, 2 * H + i)).toBe(val(cp, cell, "bhn", i));
    }
  });

  it("gru -> Keras: kernel = [W_iz | W_ir | W_in]ᵀ (D, 3H), recurrent_kernel likewise, bias (2, 3H) = [b_i* ; b_h*] in [z|r|h]", () => {
    const cell = cellOf("gru"), cp = marked(cell), j = writeWeights(cell, "keras", cp).json;
    expect(j.config).toEqual({ units: H, activation: "tanh", use_bias: true, reset_after: true, recurrent_activation: "sigmoid" });
    for (let i = 0; i < H; i++)
      for (let d = 0; d < sizes.D; d++) {
        expect(at(j.kernel as Nested, d, i)).toBe(val(cp, cell, "Wiz", i, d));
        expect(at(j.kernel as Nested, d, H + i)).toBe(val(cp, cell, "Wir", i, d));
        expect(at(j.kernel as Nested, d, 2 * H + i)).toBe(val(cp, cell, "Win", i, d));
      }
    for (let i = 0; i < H; i++) {
      expect(at(j.recurrent_kernel as Nested, 2, H + i)).toBe(val(cp, cell, "Whr", i, 2));
      expect(at(j.bias as Nested, 0, i)).toBe(val(cp, cell, "biz", i));
      expect(at(j.bias as Nested, 0, H + i)).toBe(val(cp, cell, "bir", i));
      expect(at(j.bias as Nested, 1, 2 * H + i)).toBe(val(cp, cell, "bhn", i));
    }
  });

  it("gru-keras-reset-before -> Keras: one bias (3H) in [z|r|h]", () => {
    const cell = cellOf("gru-keras-reset-before"), cp = marked(cell), j = writeWeights(cell, "keras", cp).json;
    expect((j.bias as Nested[]).length).toBe(3 * H);
    for (let i = 0; i < H; i++) expect([at(j.bias as Nested, i), at(j.bias as Nested, H + i), at(j.bias as Nested, 2 * H + i)]).toEqual(["bz", "br", "bh"].map((b) => val(cp, cell, b, i)));
    expect(j.config).toMatchObject({ reset_after: false, recurrent_activation: "sigmoid" });
    expect(writeWeights(cellOf("gru-tfjs"), "keras", marked(cellOf("gru-tfjs"))).json.config).toMatchObject({ reset_after: false, recurrent_activation: "hardSigmoid" });
  });

  it("lstm -> PyTorch [i|f|g|o]; lstm-keras -> Keras [i|f|c|o]", () => {
    const t = cellOf("lstm"), tp = marked(t), tj = writeWeights(t, "pytorch", tp).json;
    ["Wii", "Wif", "Wig", "Wio"].forEach((w, g) => expect(at(tj.weight_ih_l0 as Nested, g * H + 1, 2)).toBe(val(tp, t, w, 1, 2)));
    ["bhi", "bhf", "bhg", "bho"].forEach((b, g) => expect(at(tj.bias_hh_l0 as Nested, g * H + 3)).toBe(val(tp, t, b, 3)));
    const k = cellOf("lstm-keras"), kp = marked(k), kj = writeWeights(k, "keras", kp).json;
    ["Ki", "Kf", "Kc", "Ko"].forEach((w, g) => expect(at(kj.kernel as Nested, 2, g * H + 1)).toBe(val(kp, k, w, 1, 2)));
    ["Ri", "Rf", "Rc", "Ro"].forEach((w, g) => expect(at(kj.recurrent_kernel as Nested, 3, g * H + 0)).toBe(val(kp, k, w, 0, 3)));
    ["bi", "bf", "bc", "bo"].forEach((b, g) => expect(at(kj.bias as Nested, g * H + 2)).toBe(val(kp, k, b, 2)));
  });
});

// ------------------------------------------------------------------ round trips

const sameBits = (a: Params, b: Params) => {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) expect(Array.from(a[k]!), k).toStrictEqual(Array.from(b[k]!));
};

describe("round trips are exact (bit for bit, through JSON text)", () => {
  const PAIRS = [
    ["rnn", "pytorch"], ["gru", "pytorch"], ["gru", "keras"], ["gru-keras", "pytorch"], ["gru-keras", "keras"], ["gru-cudnn", "pytorch"],
    ["gru-keras-reset-before", "keras"], ["gru-tfjs", "keras"], ["gru-cho", "keras"], ["lstm", "pytorch"], ["lstm-keras", "keras"], ["lstm-keras", "pytorch"], ["lstm-np", "keras"],
  ] as const;
  for (const [name, fw] of PAIRS)
    it(`${name} -> ${fw} -> ${name}`, () => {
      const cell = cellOf(name);
      for (const s of [sizes, { D: 7, H: 2 }, { D: 1, H: 1 }]) {
        const cp = paramsOf(cell, 9, s);
        const back = readWeights(cell, fw, JSON.parse(JSON.stringify(writeWeights(cell, fw, cp).json)));
        expect(back.sizes).toEqual(s);
        sameBits(back.params, cp.params);
        const own = readCellParams(cell, JSON.parse(JSON.stringify(writeCellParams(cell, cp))));
        sameBits(own.params, cp.params);
      }
    });

  it("every PyTorch fixture's state_dict -> cell -> state_dict is the same JSON (nn.GRU's _l0 names and nn.GRUCell's plain ones)", () => {
    for (const [file, name] of [["rnn", "rnn"], ["gru", "gru"], ["lstm", "lstm"], ["grucell", "gru"], ["lstmcell", "lstm"]] as const) {
      const fx = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "torch", `${file}.json`), "utf8")) as { cases: { state_dict: Record<string, Nested> }[] };
      for (const c of fx.cases) {
        const cell = cellOf(name), cp = readWeights(cell, "pytorch", c.state_dict);
        const suffix = file.endsWith("cell") ? "" : "_l0";
        expect(JSON.parse(JSON.stringify(writeWeights(cell, "pytorch", cp, { torchSuffix: suffix }).json))).toEqual(c.state_dict);
        // and through Keras's layout and back (the GRU exactly; the LSTM's two biases become one)
        if (name === "gru") {
          const k = writeWeights(cellOf("gru-keras"), "keras", readWeights(cellOf("gru-keras"), "pytorch", c.state_dict)).json;
          expect(JSON.parse(JSON.stringify(writeWeights(cell, "pytorch", readWeights(cell, "keras", k), { torchSuffix: suffix }).json))).toEqual(c.state_dict);
        }
      }
    }
  });

  it("Keras weights -> lstm (bias_hh = 0) -> Keras weights: exact; PyTorch -> Keras -> PyTorch: the biases come back summed into bias_ih (the same function)", () => {
    const k = cellOf("lstm-keras"), t = cellOf("lstm");
    const kj = JSON.parse(JSON.stringify(writeWeights(k, "keras", paramsOf(k)).json));
    const asTorch = readWeights(t, "keras", kj);
    expect(asTorch.notes.join()).toMatch(/bias_hh = 0/);
    for (const b of ["bhi", "bhf", "bhg", "bho"]) expect(Array.from(asTorch.params[b]!)).toEqual([0, 0, 0, 0]);
    expect(JSON.parse(JSON.stringify(writeWeights(t, "keras", asTorch).json))).toEqual(kj);
    const tp = paramsOf(t);
    const w = writeWeights(t, "keras", tp);
    expect(w.notes.join()).toMatch(/bias = bias_ih \+ bias_hh/);
    const back = readWeights(t, "keras", JSON.parse(JSON.stringify(w.json)));
    expect(Array.from(back.params.bii!)).toEqual(Array.from(tp.params.bii!.map((v, i) => v + tp.params.bhi![i]!)));
    expectSameFunction(t, t, (pa) => readWeights(t, "keras", JSON.parse(JSON.stringify(writeWeights(t, "keras", pa).json))).params);
  });

  describe("cellforge convert (the command, in process)", () => {
    const dir = mkdtempSync(join(tmpdir(), "cellforge-convert-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const capture = async (args: string[], flags: Record<string, string>) => {
      let stdout = "", stderr = "";
      const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
      const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
      try {
        return { code: await convertCmd(args, flags), stdout, stderr };
      } finally {
        o.mockRestore();
        e.mockRestore();
      }
    };
    const file = (n: string) => join(dir, n);

    it("pytorch -> keras -> cellforge -> pytorch gives back the state_dict; every step names what it read and wrote", async () => {
      const sd = (JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "torch", "gru.json"), "utf8")) as { cases: { state_dict: unknown }[] }).cases[1]!.state_dict;
      writeFileSync(file("sd.json"), JSON.stringify(sd));
      const a = await capture(["gru", file("sd.json"), file("k.json")], { from: "pytorch", to: "keras" });
      expect(a.stderr).toBe("");
      expect(a.code).toBe(0);
      expect(a.stdout).toMatch(/read PyTorch nn\.GRU \/ nn\.GRUCell weights .* \(D = 5, H = 3\) as cell "gru"'s parameters/);
      expect(a.stdout).toMatch(/wrote Keras GRU \(reset_after=True, recurrent_activation sigmoid\) weights .*kernel \[5, 9\], recurrent_kernel \[3, 9\], bias \[2, 9\]/);
      expect((await capture(["gru-keras", file("k.json"), file("cf.json")], { from: "keras", to: "cellforge" })).code).toBe(0);
      expect(JSON.parse(readFileSync(file("cf.json"), "utf8"))).toMatchObject({ cell: "gru-keras", sizes: { D: 5, H: 3 } });
      expect((await capture(["gru-keras", file("cf.json"), file("sd2.json")], { from: "cellforge", to: "pytorch" })).code).toBe(0);
      expect(JSON.parse(readFileSync(file("sd2.json"), "utf8"))).toEqual(sd);
    });

    it("refusals are one clear message on stderr, exit 1; a bad flag prints the usage, exit 2", async () => {
      writeFileSync(file("lstm.json"), JSON.stringify(writeWeights(cellOf("lstm"), "pytorch", paramsOf(cellOf("lstm"))).json));
      const r = await capture(["gru", file("lstm.json"), file("x.json")], { from: "pytorch", to: "cellforge" });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/weight_ih_l0: PyTorch nn\.GRU \/ nn\.GRUCell stores it as \[3H, D\] = \[12, 3\].*but it is \[16, 3\]\n  hint: 16 = 4H: 4 gates where PyTorch nn\.GRU \/ nn\.GRUCell has 3 \(an LSTM's weights\?\)/s);
      expect(existsSync(file("x.json"))).toBe(false);
      const t = await capture(["gru-tfjs", file("lstm.json"), file("x.json")], { from: "keras", to: "pytorch" });
      expect(t.code).toBe(1);
      expect(t.stderr).toMatch(/PyTorch has no layer that computes it/);
      const u = await capture(["gru", file("lstm.json"), file("x.json")], { from: "torch", to: "keras" });
      expect(u.code).toBe(2);
      expect(u.stderr).toMatch(/--from is pytorch, keras, cellforge, not "torch"\nusage: cellforge convert --from/);
    });
  });
});

// ------------------------------------------------------------------ refusals

describe("refusals: a weight that does not fit, a cell that is not a form", () => {
  const gru = () => cellOf("gru");
  const torchGru = () => writeWeights(gru(), "pytorch", paramsOf(gru())).json as Record<string, Nested>;
  const kerasGru = () => writeWeights(cellOf("gru-keras"), "keras", paramsOf(cellOf("gru-keras"))).json as Record<string, unknown>;
  const transpose = (m: Nested) => (m as number[][])[0]!.map((_, j) => (m as number[][]).map((row) => row[j]!));

  it("a transposed PyTorch weight (a Keras kernel given as weight_ih_l0)", () => {
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...torchGru(), weight_ih_l0: transpose(torchGru().weight_ih_l0!) })))
      .toMatch(/weight_ih_l0: .*stores it as \[3H, D\] = \[12, 3\] .*but it is \[3, 12\]\n  hint: it is the transpose: PyTorch stores \(gates·H, n\), Keras \(n, gates·H\): is it a Keras weight\?/);
  });
  it("a Keras kernel in PyTorch's orientation", () => {
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", { ...kerasGru(), kernel: transpose(kerasGru().kernel as Nested) }))).toMatch(/is it a PyTorch weight\?/);
  });
  it("a single (3H) bias for a reset_after cell, a (2, 3H) bias for a reset-before one", () => {
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", { ...kerasGru(), config: undefined, bias: (kerasGru().bias as Nested[])[0] })))
      .toMatch(/bias: Keras GRU \(reset_after=True.*\[2, 3H\] = \[2, 12\].*but it is \[12\]\n  hint: a single bias \(3H\) is Keras's reset_after=False form/);
    expect(errorOf(() => readWeights(cellOf("gru-tfjs"), "keras", { ...kerasGru(), config: undefined })))
      .toMatch(/bias: .*but it is \[2, 12\]\n  hint: a \(2, 3H\) bias is Keras's reset_after=True form/);
  });
  it("a recurrent_kernel whose rows and columns disagree about H", () => {
    const w = torchGru();
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, weight_hh_l0: (w.weight_hh_l0 as Nested[]).slice(0, 11) }))).toMatch(/weight_hh_l0: .*\[3H, H\] = \[12, 4\].*but it is \[11, 4\]/);
  });
  it("ragged arrays, non-numbers, missing and unknown tensors, other layers and directions, projections", () => {
    const w = torchGru();
    const ragged = (w.weight_ih_l0 as number[][]).map((r, i) => (i === 5 ? r.slice(1) : r));
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, weight_ih_l0: ragged }))).toMatch(/weight_ih_l0\[5\]: expected an array of 3 like weight_ih_l0\[0\], got an array of 2/);
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, bias_hh_l0: [...(w.bias_hh_l0 as number[]).slice(1), "x"] }))).toMatch(/bias_hh_l0\[11\]: expected a finite number, got "x"/);
    const { bias_hh_l0: _, ...noBias } = w;
    expect(errorOf(() => readWeights(gru(), "pytorch", noBias))).toMatch(/bias_hh_l0 is missing \(bias=False is not supported/);
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, weight_ih_l1: w.weight_ih_l0! }))).toMatch(/weight_ih_l1 belongs to layer 1; a cell is one layer/);
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, weight_ih_l0_reverse: w.weight_ih_l0! }))).toMatch(/bidirectional/);
    expect(errorOf(() => readWeights(cellOf("lstm"), "pytorch", { ...writeWeights(cellOf("lstm"), "pytorch", paramsOf(cellOf("lstm"))).json, weight_hr_l0: [[1]] }))).toMatch(/projection \(proj_size > 0\)/);
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, running_mean: [1] }))).toMatch(/unknown entry "running_mean"/);
    expect(errorOf(() => readWeights(gru(), "pytorch", { ...w, weight_ih: w.weight_ih_l0! }))).toMatch(/both weight_ih and weight_ih_l0/);
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", [kerasGru().kernel, kerasGru().recurrent_kernel]))).toMatch(/use_bias=False is not supported/);
  });
  it("a Keras config that names another form", () => {
    const k = kerasGru();
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", { ...k, config: { reset_after: false } }))).toMatch(/reset_after is false, but the cell is Keras GRU \(reset_after=True/);
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", { ...k, config: { recurrent_activation: "hardSigmoid" } }))).toMatch(/recurrent_activation is hardSigmoid, but the cell's gates use sigmoid/);
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", { ...k, config: { recurrent_activation: "hard_sigmoid" } }))).toMatch(/"hard_sigmoid" means clip\(0\.2x \+ 0\.5, 0, 1\) in Keras <= 2\.15 and clip\(x\/6 \+ 0\.5, 0, 1\) in Keras 3/);
    expect(errorOf(() => readWeights(cellOf("gru-keras"), "keras", { ...k, config: { units: 5 } }))).toMatch(/units is 5, but recurrent_kernel has H = 4 rows/);
    // the list get_weights() returns, without a config, is read as the cell's form
    expect(readWeights(cellOf("gru-keras"), "keras", [k.kernel, k.recurrent_kernel, k.bias]).sizes).toEqual(sizes);
  });
  it("cells that are no form, and forms a framework does not have", () => {
    expect(errorOf(() => route(cellOf("gru-cs224n"), "pytorch"))).toMatch(/cell "gru-cs224n" .*is not one of the forms.*\n  PyTorch nn\.GRU \/ nn\.GRUCell has 12 parameters .*cell "gru-cs224n" has 6/s);
    expect(errorOf(() => route(cellOf("mgu"), "keras"))).toMatch(/cell "mgu" .*is not one of the forms/);
    expect(errorOf(() => route(cellOf("lstm-peephole"), "keras"))).toMatch(/Keras LSTM \(recurrent_activation sigmoid\) has 12 parameters .* cell "lstm-peephole" has 15/);
    expect(errorOf(() => route(cellOf("gru-keras-reset-before"), "pytorch"))).toMatch(/PyTorch's nn\.GRU applies the reset gate after the recurrent product/);
    expect(errorOf(() => route(cellOf("rnn"), "keras"))).toMatch(/no Keras layout for nn\.RNN/);
    const hardLstm = compileCell({ ...(formById("keras-lstm/hardSigmoid").spec), name: "lstm-hard" });
    expect(errorOf(() => route(hardLstm, "pytorch"))).toMatch(/PyTorch's gates use sigmoid; this cell's use hardSigmoid = clip\(0\.2x \+ 0\.5, 0, 1\)/);
  });
  it("parameters that do not fit the cell (cellforge's own JSON)", () => {
    const j = JSON.parse(JSON.stringify(writeCellParams(gru(), paramsOf(gru()))));
    expect(errorOf(() => readCellParams(gru(), { ...j, params: { ...j.params, Wir: j.params.Whr } }))).toMatch(/params\.Wir: expected shape \[H,D\] = \[4, 3\], got \[4, 4\]/);
    expect(errorOf(() => readCellParams(gru(), { ...j, params: { ...j.params, Wzz: j.params.Wir } }))).toMatch(/params\.Wzz: cell "gru" has no parameter Wzz/);
    expect(errorOf(() => writeWeights(gru(), "pytorch", { sizes, params: { ...paramsOf(gru()).params, Win: new Float64Array(3) } }))).toMatch(/parameter Win has 3 numbers, but its shape is \[4, 3\]/);
  });
});

// ------------------------------------------------------------------ README: Which GRU is this?

/** The cs224n notes' GRU from PyTorch's: W_z = W_iz, U_z = W_hz, W_r = W_ir, U_r = W_hr, W = W_in, U = W_hn. */
const cs224nOfTorch = { Wz: "Wiz", Uz: "Whz", Wr: "Wir", Ur: "Whr", W: "Win", U: "Whn" } as const;

describe("README, Which GRU is this?: every equivalence it states holds, through the converters", () => {
  it("the document names only cells that exist in dsl/", () => {
    const doc = readFileSync(join(ROOT, "README.md"), "utf8").split("## Which GRU is this?")[1]!.split("\n## ")[0]!;
    const named = [...doc.matchAll(/`dsl\/([a-z0-9-]+)\.ts`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(8);
    for (const n of new Set(named)) expect(existsSync(join(ROOT, "dsl", `${n}.ts`)), `dsl/${n}.ts`).toBe(true);
  });

  it("PyTorch nn.GRU = Keras GRU(reset_after=True): nn.GRU's state_dict through Keras's layout runs gru-keras as gru", () => {
    expectSameFunction(cellOf("gru"), cellOf("gru-keras"), through(cellOf("gru"), cellOf("gru-keras"), "keras"), (g) => readWeights(cellOf("gru"), "keras", writeWeights(cellOf("gru-keras"), "keras", g).json).params);
  });

  it("PyTorch nn.GRU = cuDNN CUDNN_GRU: gru-cudnn reads nn.GRU's state_dict", () => {
    expectSameFunction(cellOf("gru"), cellOf("gru-cudnn"), through(cellOf("gru"), cellOf("gru-cudnn"), "pytorch"), (g) => readWeights(cellOf("gru"), "pytorch", writeWeights(cellOf("gru-cudnn"), "pytorch", g).json).params);
  });

  it("cs224n GRU = PyTorch nn.GRU with all six biases zero: the notes' matrices stacked [W_r; W_z; W] into nn.GRU's state_dict", () => {
    const cs = cellOf("gru-cs224n"), torch = cellOf("gru");
    const toTorch = (pc: CellParams): Params => {
      const p = pc.params, H = pc.sizes.H;
      const z = Array.from({ length: 3 * H }, () => 0);
      const stack = (...ms: Float64Array[]) => ms.flatMap((m) => Array.from(m));
      const rows = (flat: number[], n: number) => Array.from({ length: flat.length / n }, (_, i) => flat.slice(i * n, i * n + n));
      const sd = { weight_ih_l0: rows(stack(p.Wr!, p.Wz!, p.W!), pc.sizes.D), weight_hh_l0: rows(stack(p.Ur!, p.Uz!, p.U!), H), bias_ih_l0: z, bias_hh_l0: z };
      return readWeights(torch, "pytorch", sd).params;
    };
    expectSameFunction(cs, torch, toTorch, (g) => Object.fromEntries(Object.entries(cs224nOfTorch).map(([c, t]) => [c, g.params[t]!])));
  });

  it("Cho et al. 2014 (gru-cho) = Keras GRU(reset_after=False): the same form, and Keras weights run both alike", () => {
    expect(recognize(cellOf("gru-cho")).map((r) => r.form.id)).toEqual(["keras-gru-reset-before/sigmoid"]);
    expectSameFunction(cellOf("gru-keras-reset-before"), cellOf("gru-cho"), through(cellOf("gru-keras-reset-before"), cellOf("gru-cho"), "keras"), (g) => readWeights(cellOf("gru-keras-reset-before"), "keras", writeWeights(cellOf("gru-cho"), "keras", g).json).params);
  });

  it("tfjs GRU = Keras GRU(reset_after=False, recurrent_activation hard_sigmoid as 0.2x + 0.5, Keras <= 2.15): gru-tfjs is that form node for node", () => {
    const f = formById("keras-gru-reset-before/hardSigmoid");
    expect(f.builtin).toBe("gru-tfjs");
    expect(formCell(f).next[0]).toBe(cellOf("gru-tfjs").next[0]);
  });

  it("reset before is not reset after, and Keras 3's hard_sigmoid (x/6 + 0.5) is not tfjs's: the same weights give other numbers", () => {
    const differ = (A: Cell, B: Cell, toB: (p: CellParams) => Params) => {
      const c = randomCase(A, { sizes, seed: 21 });
      const a = run(A, c).forward.outputs.h!, b = run(B, { ...c, params: toB({ sizes, params: c.params }) }).forward.outputs.h!;
      return Math.max(...a.map((v, k) => Math.abs(v - b[k]!)));
    };
    // gru-keras with zero recurrent biases against gru-keras-reset-before: r .* (Rh*h) vs Rh*(r .* h)
    expect(differ(cellOf("gru-keras-reset-before"), cellOf("gru-keras"), (p) => ({ ...p.params, rbz: new Float64Array(4), rbr: new Float64Array(4), rbh: new Float64Array(4) }))).toBeGreaterThan(1e-3);
    const keras3 = compileCell(formById("keras-gru-reset-before/hardSigmoidKeras").spec);
    expect(differ(cellOf("gru-tfjs"), keras3, (p) => p.params)).toBeGreaterThan(1e-3);
  });

  it("Chung et al. 2014 (z keeps the candidate) = PyTorch nn.GRU with z's weights and biases negated (1 - sigmoid(a) = sigmoid(-a))", () => {
    const chung = compileCell(gruSpec([
      "r = sigmoid(Wir*x + bir + Whr*h + bhr)", "z = sigmoid(Wiz*x + biz + Whz*h + bhz)",
      "n = tanh(Win*x + bin + r .* (Whn*h + bhn))", "h' = z .* n + (1 - z) .* h",
    ], "gru-chung"));
    const negZ = (p: Params): Params => ({ ...p, Wiz: p.Wiz!.map((v) => -v), Whz: p.Whz!.map((v) => -v), biz: p.biz!.map((v) => -v), bhz: p.bhz!.map((v) => -v) });
    expectSameFunction(chung, cellOf("gru"), (pc) => negZ(pc.params), (g) => negZ(g.params));
  });

  // ONNX's operator spec (CELLS.md): GRU W[zrh], R[zrh], Wb[zrh], Rb[zrh]; LSTM W[iofc]. Written here as cells.
  const onnxGru = (linearBeforeReset: boolean) => compileCell(gruSpec(
    [
      "z = sigmoid(Wz*x + Rz*h + Wbz + Rbz)", "r = sigmoid(Wr*x + Rr*h + Wbr + Rbr)",
      linearBeforeReset ? "hh = tanh(Wh*x + r .* (Rh*h + Rbh) + Wbh)" : "hh = tanh(Wh*x + Rh*(r .* h) + Rbh + Wbh)",
      "h' = (1 - z) .* hh + z .* h",
    ],
    `onnx-gru-lbr${linearBeforeReset ? 1 : 0}`,
    { Wz: ["H", "D"], Wr: ["H", "D"], Wh: ["H", "D"], Rz: ["H", "H"], Rr: ["H", "H"], Rh: ["H", "H"], Wbz: "H", Wbr: "H", Wbh: "H", Rbz: "H", Rbr: "H", Rbh: "H" },
  ));

  it("ONNX GRU linear_before_reset=1 is PyTorch's form (recognized from its equations) and runs nn.GRU's weights", () => {
    const onnx = onnxGru(true);
    expect(recognize(onnx).map((r) => r.form.id)).toContain("pytorch-gru");
    expectSameFunction(cellOf("gru"), onnx, through(cellOf("gru"), onnx, "pytorch"));
  });

  it("ONNX GRU linear_before_reset=0 (the default) = Keras GRU(reset_after=False) with bias_h = Wb_h + Rb_h (two biases, so not the form itself)", () => {
    const onnx = onnxGru(false);
    expect(recognize(onnx)).toEqual([]);
    expectSameFunction(onnx, cellOf("gru-keras-reset-before"), (pc) => {
      const p = pc.params;
      return { Kz: p.Wz!, Kr: p.Wr!, Kh: p.Wh!, Rz: p.Rz!, Rr: p.Rr!, Rh: p.Rh!, bz: p.Wbz!.map((v, i) => v + p.Rbz![i]!), br: p.Wbr!.map((v, i) => v + p.Rbr![i]!), bh: p.Wbh!.map((v, i) => v + p.Rbh![i]!) };
    });
  });

  it("ONNX LSTM without peepholes is PyTorch's form", () => {
    const onnx = compileCell({
      name: "onnx-lstm", doc: "ONNX LSTM, no peepholes", sizes: ["D", "H"], inputs: { x: "D" }, state: { h: "H", c: "H" },
      params: Object.fromEntries(["i", "o", "f", "c"].flatMap((g) => [[`W${g}`, ["H", "D"]], [`R${g}`, ["H", "H"]], [`Wb${g}`, "H"], [`Rb${g}`, "H"]])),
      equations: [
        "i = sigmoid(Wi*x + Ri*h + Wbi + Rbi)", "f = sigmoid(Wf*x + Rf*h + Wbf + Rbf)", "ct = tanh(Wc*x + Rc*h + Wbc + Rbc)",
        "c' = f .* c + i .* ct", "o = sigmoid(Wo*x + Ro*h + Wbo + Rbo)", "h' = o .* tanh(c')",
      ],
    });
    expect(recognize(onnx).map((r) => r.form.id)).toEqual(["pytorch-lstm"]);
    expectSameFunction(cellOf("lstm"), onnx, through(cellOf("lstm"), onnx, "pytorch"));
  });

  it("Keras LSTM = PyTorch nn.LSTM with bias = bias_ih + bias_hh: nn.LSTM's state_dict through Keras's layout runs lstm-keras as lstm", () => {
    expectSameFunction(cellOf("lstm"), cellOf("lstm-keras"), through(cellOf("lstm"), cellOf("lstm-keras"), "keras"));
  });

  it("Greff's NP variant (lstm-np) is Keras's LSTM form: Keras weights run it", () => {
    expectSameFunction(cellOf("lstm-keras"), cellOf("lstm-np"), through(cellOf("lstm-keras"), cellOf("lstm-np"), "keras"), (g) => readWeights(cellOf("lstm-keras"), "keras", writeWeights(cellOf("lstm-np"), "keras", g).json).params);
  });
});

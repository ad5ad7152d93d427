// The built-in cells against /work/shared/CELLS.md: they compile cleanly, count their parameters as
// the reference implementations do, compute the equations of PyTorch's GRU and LSTM (checked by
// hand-written loops), print a readable backward, and the same cell as JSON is the same IR.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate as mathEval } from "mathjs";
import gruSpec from "../dsl/gru.ts";
import { type Cell, type CellSpec, compileCell } from "../src/cell.ts";
import { builtinCellFiles, loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { backwardLines } from "../src/print.ts";
import { cellStats, paramCount, paramFormula } from "../src/stats.ts";
import { type SequenceCase, forwardSequence, gradients, randomCase } from "../src/sequence.ts";
import { checkGradients, formatReport } from "../check/gradcheck.ts";
import { topo } from "../src/ir.ts";

const FIXTURE = new URL("./fixtures/cells/gru.json", import.meta.url);

/** CELLS.md's parameter counts, written as there. */
const PARAMS: Readonly<Record<string, { formula: string; count: (D: number, H: number) => number }>> = {
  rnn: { formula: "D*H + H^2 + 2*H", count: (D, H) => H * D + H * H + 2 * H },
  "gru-cs224n": { formula: "3*D*H + 3*H^2", count: (D, H) => 3 * H * (D + H) },
  gru: { formula: "3*D*H + 3*H^2 + 6*H", count: (D, H) => 3 * H * (D + H + 2) },
  lstm: { formula: "4*D*H + 4*H^2 + 8*H", count: (D, H) => 4 * H * (D + H + 2) },
};
const NAMES = Object.keys(PARAMS);
const SIZES = [[3, 4], [1, 1], [7, 2], [128, 128], [300, 512]] as const;

const cells = new Map<string, Cell>();
beforeAll(async () => {
  for (const n of NAMES) cells.set(n, await loadCell(n));
});
const cellOf = (n: string) => cells.get(n)!;

describe("built-in cells", () => {
  it("dsl/ holds (at least) the cells CELLS.md counts here", () => {
    const files = builtinCellFiles().map((f) => f.replace(/^.*\/dsl\//, "").replace(/\.ts$/, ""));
    expect(files).toEqual(expect.arrayContaining(NAMES));
  });

  it("every cell in dsl/ compiles with no warnings, a doc line, and default sizes with D ≠ H", async () => {
    const files = builtinCellFiles();
    expect(files.length).toBeGreaterThanOrEqual(NAMES.length);
    for (const f of files) {
      const name = f.replace(/^.*\/dsl\//, "").replace(/\.[a-z]+$/, "");
      const cell = await loadCell(name);
      expect(cell.warnings, name).toEqual([]);
      expect(cell.name).toBe(name);
      expect(cell.doc.trim().length).toBeGreaterThan(10);
      expect(cell.file).toBe(`dsl/${f.replace(/^.*\/dsl\//, "")}`);
      if ("D" in cell.defaults && "H" in cell.defaults) expect(cell.defaults.D).not.toBe(cell.defaults.H);
    }
    for (const name of NAMES) expect(cellOf(name).defaults).toEqual({ D: 3, H: 4 });
  });

  for (const name of NAMES)
    it(`${name}: parameter count ${PARAMS[name]!.formula} as CELLS.md gives it`, () => {
      const cell = cellOf(name);
      const ref = PARAMS[name]!;
      const formula = paramFormula(cell);
      expect(formula).toBe(ref.formula);
      for (const [D, H] of SIZES) {
        expect(paramCount(cell, { D, H }), `D=${D} H=${H}`).toBe(ref.count(D, H));
        expect(mathEval(formula, { D, H }), `formula at D=${D} H=${H}`).toBe(ref.count(D, H));
      }
      expect(cellStats(deriveBackward(cell), { D: 128, H: 128 }).params).toBe(ref.count(128, 128));
    });
});

// ------------------------------------------------------------------ the cells compute CELLS.md's equations

const sig = (v: number) => 1 / (1 + Math.exp(-v));
/** Row i of W (rows × cols, row-major) times the vector v at offset off. */
const rowDot = (W: Float64Array, i: number, cols: number, v: Float64Array, off: number) => {
  let s = 0;
  for (let j = 0; j < cols; j++) s += W[i * cols + j]! * v[off + j]!;
  return s;
};

describe("the cells compute the equations of CELLS.md (hand-written loops as the reference)", () => {
  it("gru = PyTorch nn.GRU: r, z, n = tanh(W_in x + b_in + r*(W_hn h + b_hn)), h' = (1-z)*n + z*h", () => {
    const cell = cellOf("gru");
    const c = randomCase(cell, { sizes: { D: 3, H: 5 }, B: 2, T: 4, seed: 21 });
    const { D, H } = { D: 3, H: 5 }, { B, T } = c, P = c.params;
    let h = Float64Array.from(c.initial.h!);
    const want = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const next = new Float64Array(B * H);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < H; i++) {
          const xo = (t * B + b) * D;
          const r = sig(rowDot(P.Wir!, i, D, c.inputs.x!, xo) + P.bir![i]! + rowDot(P.Whr!, i, H, h, b * H) + P.bhr![i]!);
          const z = sig(rowDot(P.Wiz!, i, D, c.inputs.x!, xo) + P.biz![i]! + rowDot(P.Whz!, i, H, h, b * H) + P.bhz![i]!);
          const n = Math.tanh(rowDot(P.Win!, i, D, c.inputs.x!, xo) + P.bin![i]! + r * (rowDot(P.Whn!, i, H, h, b * H) + P.bhn![i]!));
          next[b * H + i] = (1 - z) * n + z * h[b * H + i]!;
        }
      want.set(next, t * B * H);
      h = next;
    }
    const got = forwardSequence(cell, c).outputs.h!;
    for (let k = 0; k < want.length; k++) expect(got[k]).toBeCloseTo(want[k]!, 12);
  });

  it("lstm = PyTorch nn.LSTM: c' = f*c + i*g, h' = o*tanh(c')", () => {
    const cell = cellOf("lstm");
    const c = randomCase(cell, { sizes: { D: 4, H: 3 }, B: 2, T: 3, seed: 22 });
    const { D, H } = { D: 4, H: 3 }, { B, T } = c, P = c.params;
    let h = Float64Array.from(c.initial.h!), cs = Float64Array.from(c.initial.c!);
    const wantH = new Float64Array(T * B * H), wantC = new Float64Array(T * B * H);
    const gate = (W: string, U: string, b1: string, b2: string, i: number, xo: number, b: number) =>
      rowDot(P[W]!, i, D, c.inputs.x!, xo) + P[b1]![i]! + rowDot(P[U]!, i, H, h, b * H) + P[b2]![i]!;
    for (let t = 0; t < T; t++) {
      const nh = new Float64Array(B * H), nc = new Float64Array(B * H);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < H; i++) {
          const xo = (t * B + b) * D;
          const ig = sig(gate("Wii", "Whi", "bii", "bhi", i, xo, b)), fg = sig(gate("Wif", "Whf", "bif", "bhf", i, xo, b));
          const gg = Math.tanh(gate("Wig", "Whg", "big", "bhg", i, xo, b)), og = sig(gate("Wio", "Who", "bio", "bho", i, xo, b));
          nc[b * H + i] = fg * cs[b * H + i]! + ig * gg;
          nh[b * H + i] = og * Math.tanh(nc[b * H + i]!);
        }
      wantH.set(nh, t * B * H); wantC.set(nc, t * B * H);
      h = nh; cs = nc;
    }
    const out = forwardSequence(cell, c).outputs;
    for (let k = 0; k < wantH.length; k++) {
      expect(out.h![k]).toBeCloseTo(wantH[k]!, 12);
      expect(out.c![k]).toBeCloseTo(wantC[k]!, 12);
    }
  });

  it("gru-cs224n equals PyTorch's GRU with all biases zero (CELLS.md §3): same outputs and gradients", () => {
    const cs = cellOf("gru-cs224n"), gru = cellOf("gru");
    const a = randomCase(cs, { B: 2, T: 3, seed: 31 });
    const map: Record<string, string> = { Wz: "Wiz", Uz: "Whz", Wr: "Wir", Ur: "Whr", W: "Win", U: "Whn" };
    const params: Record<string, Float64Array> = {};
    for (const p of gru.params) params[p.name] = new Float64Array(p.name.startsWith("b") ? a.sizes.H! : 0);
    for (const [from, to] of Object.entries(map)) params[to] = a.params[from]!;
    const b: SequenceCase = { ...a, params };
    const ga = gradients(deriveBackward(cs), a), gb = gradients(deriveBackward(gru), b);
    expect(gb.forward.outputs.h).toEqual(ga.forward.outputs.h);
    for (const [from, to] of Object.entries(map))
      ga.grads.params[from]!.forEach((v, i) => expect(gb.grads.params[to]![i]).toBeCloseTo(v, 12));
    ga.grads.inputs.x!.forEach((v, i) => expect(gb.grads.inputs.x![i]).toBeCloseTo(v, 12));
  });
});

// ------------------------------------------------------------------ readable backward

describe("the GRU's backward, as printed", () => {
  it("has the readable lines dn, dz, their pre-activations, and a line per weight", () => {
    const gru = cellOf("gru");
    const { saved, lines } = backwardLines(deriveBackward(gru));
    const byLhs = new Map(lines.map((l) => [l.lhs, l]));
    // each is the textbook derivative of h' = (1 - z) .* n + z .* h and of the activations
    expect(byLhs.get("dn")?.rhs).toBe("dh' .* (1 - z)");
    expect(byLhs.get("dz")?.rhs).toBe("dh' .* (h - n)");
    expect(byLhs.get("dn_pre")?.rhs).toBe("dn .* (1 - square(n))");
    expect(byLhs.get("dz_pre")?.rhs).toBe("dz .* (z .* (1 - z))");
    expect(byLhs.get("dr_pre")?.rhs).toBe("dr .* (r .* (1 - r))");
    expect(byLhs.get("dWhz")?.rhs).toBe("outer(dz_pre, h)");
    expect(byLhs.get("dWiz")?.rhs).toBe("outer(dz_pre, x)");
    expect(byLhs.get("dbiz")?.rhs).toBe("sumb(dz_pre)");
    expect(byLhs.get("dbhz")?.rhs).toBe("dbiz"); // the two z biases have one gradient
    // every parameter, the input and the state have a gradient line
    for (const w of [...gru.params.map((p) => p.name), "x", "h"]) expect(byLhs.has(`d${w}`), `d${w}`).toBe(true);
    // each adjoint line names the forward equation it differentiates
    const eq = (lhs: string) => gru.equations.find((e) => e.lhs === lhs)!.text;
    expect(byLhs.get("dWhz")?.comment).toBe(`grad of: ${eq("z")}`);
    expect(byLhs.get("dn")?.comment).toBe(`grad of: ${eq("h'")}`);
    expect(byLhs.get("dh")?.comment).toMatch(/^grad of: .*h'/);
    // the saved values are referred to by their forward names
    expect(saved.map((s) => s.lhs).sort()).toEqual(["n", "r", "s1", "z"]);
    expect(saved.find((s) => s.lhs === "s1")?.rhs).toBe("Whn*h + bhn");
    // lines come in dependency order: a name is defined before it is read
    const defined = new Set<string>(["dh'", "x", "h", "z", "r", "n", "s1", ...gru.params.map((p) => p.name)]);
    for (const l of lines) {
      for (const id of l.rhs.match(/[A-Za-z_][A-Za-z0-9_]*'?/g) ?? [])
        if (/^(d|t)\w*/.test(id) && !["outer", "sumb", "square", "tanh", "sigmoid"].includes(id)) expect(defined.has(id), `${l.lhs} reads ${id}`).toBe(true);
      defined.add(l.lhs);
    }
  });
});

// ------------------------------------------------------------------ the same cell as JSON

describe("a cell as JSON", () => {
  it("test/fixtures/cells/gru.json (equations as a list, in another order) is the very same IR as dsl/gru.ts", async () => {
    const fromTs = compileCell(gruSpec);
    const fromJson = await loadCell(FIXTURE.pathname);
    expect(fromJson.warnings).toEqual([]);
    expect(fromJson.file).toBe("test/fixtures/cells/gru.json");
    // hash-consing: equal expressions are one object
    expect(fromJson.next[0]).toBe(fromTs.next[0]);
    expect(fromJson.next[0]).toBe(cellOf("gru").next[0]);
    expect(fromJson.params.map((p) => p.node)).toEqual(fromTs.params.map((p) => p.node));
    fromJson.params.forEach((p, i) => expect(p.node).toBe(fromTs.params[i]!.node));
    const named = (c: Cell) => new Map([...c.names].map(([n, s]) => [s, n]));
    for (const v of ["r", "z", "n", "h'"]) expect(named(fromJson).get(v)).toBe(named(fromTs).get(v));
    // every node of the forward graph is shared
    const a = topo(fromJson.next), b = topo(fromTs.next);
    expect(new Set(a)).toEqual(new Set(b));
    // the derived backward is the same graph too
    const bj = deriveBackward(fromJson), bt = deriveBackward(fromTs);
    bj.outputs.forEach((o, i) => expect(o).toBe(bt.outputs[i]));
    expect(bj.saved).toEqual(bt.saved);
    // parsing the JSON ourselves and compiling gives the same
    const spec = JSON.parse(readFileSync(FIXTURE, "utf8")) as CellSpec;
    expect(Array.isArray(spec.equations)).toBe(true);
    expect(compileCell(spec).next[0]).toBe(fromTs.next[0]);
    expect(paramFormula(fromJson)).toBe(PARAMS.gru!.formula);
  });
});

// ------------------------------------------------------------------ user-defined activations

describe("user-defined activations", () => {
  const spec = {
    name: "softsign-swish",
    doc: "test cell: softsign (Turian et al. 2009) and swish with beta (Ramachandran et al. 2017, arXiv 1710.05941) as user activations",
    sizes: { D: "input size", H: "hidden size" },
    inputs: { x: "D" },
    state: { h: "H" },
    params: { Wa: ["H", "D"], Ua: ["H", "H"], ba: "H", Wg: ["H", "D"], Ug: ["H", "H"], bg: { shape: "H", init: { constant: 0.5 } } },
    constants: { beta: 1.5 },
    activations: { softsign: "x / (1 + abs(x))", swish: "x / (1 + exp(-beta * x))" },
    equations: `
      a  = softsign(Wa*x + Ua*h + ba)
      g  = swish(Wg*x + Ug*h + bg)
      h' = a .* g + 0.5 * h
    `,
  } satisfies CellSpec;

  it("softsign and swish (with a constant) compile without warnings and gradient-check", () => {
    const cell = compileCell(spec);
    expect(cell.warnings).toEqual([]);
    for (const cf of [{ B: 1, T: 1 }, { B: 3, T: 4 }]) {
      const r = checkGradients(cell, randomCase(cell, { ...cf, seed: 13 }));
      expect(r.pass, formatReport(r)).toBe(true);
      expect(Math.max(...r.rows.map((w) => w.maxAbs))).toBeLessThan(1e-7);
      expect(r.rows.every((w) => w.kinks === 0)).toBe(true);
    }
    const fast = checkGradients(cell, randomCase(cell, { sizes: { D: 6, H: 8 }, B: 3, T: 5 }), { mode: "fast" });
    expect(fast.pass, formatReport(fast)).toBe(true);
  });

  it("the activations evaluate as written: the forward matches the formulas by hand", () => {
    const cell = compileCell({ ...spec, name: "one-unit", equations: "h' = softsign(Wa*x + Ua*h + ba) .* swish(Wg*x + Ug*h + bg) + 0.5 * h" });
    const c = randomCase(cell, { sizes: { D: 1, H: 1 }, B: 1, T: 1, seed: 3 });
    const P = c.params, x = c.inputs.x![0]!, h = c.initial.h![0]!;
    const u = P.Wa![0]! * x + P.Ua![0]! * h + P.ba![0]!, v = P.Wg![0]! * x + P.Ug![0]! * h + P.bg![0]!;
    const want = (u / (1 + Math.abs(u))) * (v / (1 + Math.exp(-1.5 * v))) + 0.5 * h;
    expect(forwardSequence(cell, c).outputs.h![0]).toBeCloseTo(want, 14);
  });

  it("a user-written logistic function gives the built-in sigmoid's values and gradients", () => {
    const base = {
      doc: "test cell: a gated RNN, once with sigmoid and once with a user activation of the same function",
      sizes: { D: "input size", H: "hidden size" },
      inputs: { x: "D" }, state: { h: "H" },
      params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
    };
    const builtin = compileCell({ ...base, name: "builtin-sigmoid", equations: "h' = sigmoid(W*x + U*h + b) .* h + tanh(W*x)" });
    const user = compileCell({ ...base, name: "user-sigmoid", activations: { logistic: "1 / (1 + exp(-x))" }, equations: "h' = logistic(W*x + U*h + b) .* h + tanh(W*x)" });
    const c = randomCase(builtin, { B: 2, T: 3, seed: 17 });
    const ga = gradients(deriveBackward(builtin), c), gb = gradients(deriveBackward(user), c);
    gb.forward.outputs.h!.forEach((v, i) => expect(v).toBeCloseTo(ga.forward.outputs.h![i]!, 13));
    for (const p of ["W", "U", "b"]) gb.grads.params[p]!.forEach((v, i) => expect(v).toBeCloseTo(ga.grads.params[p]![i]!, 12));
    gb.grads.initial.h!.forEach((v, i) => expect(v).toBeCloseTo(ga.grads.initial.h![i]!, 12));
  });
});

// The cell zoo of dsl/ against /work/shared/CELLS.md: every cell's parameter count is CELLS.md's
// formula, and cells that CELLS.md says compute the same function do, outputs and gradients to 1e-10,
// with the reference evaluator (src/sequence.ts). Cells without a partner are checked against
// hand-written loops ported from the code they cite (sru, haste's layer-norm cells), and the Greff
// variants that drop a gate are checked structurally (the gate is absent from the graph). Last, the
// generated kernels of the zoo against the reference evaluator (two are known wrong: see below).
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate as mathEval } from "mathjs";
import type { Cell, CellSpec } from "../src/cell.ts";
import { compileCell } from "../src/cell.ts";
import { builtinCellFiles, loadCell } from "../src/load.ts";
import { type BackwardStep, deriveBackward } from "../src/backward.ts";
import { type SequenceCase, gradients, initParams, randomCase } from "../src/sequence.ts";
import { paramCount, paramFormula } from "../src/stats.ts";
import { apply } from "../src/ops.ts";
import type { Node } from "../src/ir.ts";
import { checkKernels, F64_TOL } from "../check/kernelcheck.ts";
import kerasResetBeforeSpec from "../dsl/gru-keras-reset-before.ts";

// ------------------------------------------------------------------ parameter counts

/** CELLS.md's parameter count of every cell in dsl/, as CELLS.md writes it. `sameSize`: defined for D == H only. */
const PARAMS: Readonly<Record<string, { cellsMd: string; count: (D: number, H: number) => number; sameSize?: true; heads?: number }>> = {
  rnn: { cellsMd: "H*D + H*H + 2H", count: (D, H) => H * D + H * H + 2 * H },
  "rnn-softsign": { cellsMd: "H*D + H*H + 2H (nn.RNN layout)", count: (D, H) => H * D + H * H + 2 * H },
  gru: { cellsMd: "3H(D+H+2)", count: (D, H) => 3 * H * (D + H + 2) },
  "gru-cudnn": { cellsMd: "3H(D+H+2)", count: (D, H) => 3 * H * (D + H + 2) },
  "gru-keras": { cellsMd: "3H(D+H+2), reset_after=True", count: (D, H) => 3 * H * (D + H + 2) },
  "gru-keras-reset-before": { cellsMd: "3H(D+H+1), reset_after=False", count: (D, H) => 3 * H * (D + H + 1) },
  "gru-tfjs": { cellsMd: "3H(D+H+1)", count: (D, H) => 3 * H * (D + H + 1) },
  "gru-cs224n": { cellsMd: "3H(D+H)", count: (D, H) => 3 * H * (D + H) },
  "gru-cho": { cellsMd: "3H(D+H) + 3H with biases", count: (D, H) => 3 * H * (D + H) + 3 * H },
  "gru-layernorm": { cellsMd: "3H(D+H+4)", count: (D, H) => 3 * H * (D + H + 4) },
  "gru-light": { cellsMd: "2HD + 2H^2 + 4H", count: (D, H) => 2 * H * D + 2 * H * H + 4 * H },
  mgu: { cellsMd: "2H(D+H+1)", count: (D, H) => 2 * H * (D + H + 1) },
  lstm: { cellsMd: "4H(D+H+2)", count: (D, H) => 4 * H * (D + H + 2) },
  "lstm-keras": { cellsMd: "4H(D+H+1)", count: (D, H) => 4 * H * (D + H + 1) },
  "lstm-tfjs": { cellsMd: "4H(D+H+1)", count: (D, H) => 4 * H * (D + H + 1) },
  "lstm-peephole": { cellsMd: "4H(D+H+1) + 3H", count: (D, H) => 4 * H * (D + H + 1) + 3 * H },
  "lstm-cifg": { cellsMd: "3H(D+H+1) + 2H (with peepholes)", count: (D, H) => 3 * H * (D + H + 1) + 2 * H },
  "lstm-nig": { cellsMd: "3H(D+H+1) + 2H", count: (D, H) => 3 * H * (D + H + 1) + 2 * H },
  "lstm-nfg": { cellsMd: "3H(D+H+1) + 2H", count: (D, H) => 3 * H * (D + H + 1) + 2 * H },
  "lstm-nog": { cellsMd: "3H(D+H+1) + 2H", count: (D, H) => 3 * H * (D + H + 1) + 2 * H },
  "lstm-niaf": { cellsMd: "vanilla: 4H(D+H+1) + 3H", count: (D, H) => 4 * H * (D + H + 1) + 3 * H },
  "lstm-noaf": { cellsMd: "vanilla: 4H(D+H+1) + 3H", count: (D, H) => 4 * H * (D + H + 1) + 3 * H },
  "lstm-np": { cellsMd: "4H(D+H+1)", count: (D, H) => 4 * H * (D + H + 1) },
  "lstm-layernorm": { cellsMd: "4H(D+H+1) + 8H + 2H", count: (D, H) => 4 * H * (D + H + 1) + 8 * H + 2 * H },
  "indrnn-relu": { cellsMd: "H(D+2)", count: (D, H) => H * (D + 2) },
  "indrnn-tanh": { cellsMd: "H(D+2)", count: (D, H) => H * (D + 2) },
  sru: { cellsMd: "3HD + 4H if D == H", count: (D, H) => 3 * H * D + 4 * H, sameSize: true },
  // xLSTM (arXiv 2405.04517) eqs 11-14: W_{z,i,f,o} (H, D), b_{z,i,f,o} (H), and R_{z,i,f,o} block-diagonal in 4 heads:
  // 4 blocks of (H/4)^2 each, so 4 * H^2/4 = H^2 (NX-AI/xlstm stores R as (heads, H/heads, 4*H/heads)). H a multiple of 4.
  slstm: { cellsMd: "4HD + 4*4*(H/4)^2 + 4H = 4HD + H^2 + 4H (not in CELLS.md: xLSTM's sLSTM)", count: (D, H) => 4 * H * D + 4 * 4 * (H / 4) ** 2 + 4 * H, heads: 4 },
};
const SIZES = [[3, 4], [1, 1], [7, 2], [128, 128], [300, 512]] as const;

const cellName = (file: string) => file.replace(/^.*\/dsl\//, "").replace(/\.[a-z]+$/, "");
const cells = new Map<string, Cell>();
const backwards = new Map<string, BackwardStep>();
beforeAll(async () => {
  for (const f of builtinCellFiles()) cells.set(cellName(f), await loadCell(cellName(f)));
});
const cellOf = (n: string) => cells.get(n) ?? expect.unreachable(`no cell ${n} in dsl/`);
const bwOf = (n: string) => {
  let bw = backwards.get(n);
  if (!bw) backwards.set(n, (bw = deriveBackward(cellOf(n))));
  return bw;
};

describe("parameter counts are CELLS.md's formulas", () => {
  it("every cell in dsl/ has a formula in the table (a new cell must add one)", () => {
    const names = builtinCellFiles().map(cellName).sort();
    expect(names.filter((n) => !(n in PARAMS))).toEqual([]);
    expect(Object.keys(PARAMS).filter((n) => !names.includes(n))).toEqual([]);
  });

  for (const [name, ref] of Object.entries(PARAMS))
    it(`${name}: ${ref.cellsMd}`, () => {
      const cell = cellOf(name);
      const formula = paramFormula(cell);
      for (const [D0, H] of SIZES) {
        if (ref.heads && H % ref.heads !== 0) continue; // a size the heads do not divide is refused (test/heads.test.ts)
        const D = ref.sameSize ? H : D0;
        const sizes: Record<string, number> = ref.sameSize ? { H } : { D, H };
        expect(paramCount(cell, sizes), `${name} at D=${D} H=${H}`).toBe(ref.count(D, H));
        expect(mathEval(formula, { D, H }), `${name}: formula ${formula} at D=${D} H=${H}`).toBe(ref.count(D, H));
      }
      if (ref.sameSize) expect(cell.sizes).toEqual(["H"]);
    });
});

// ------------------------------------------------------------------ equivalences

type Params = Record<string, Float64Array>;
const TOL = 1e-10;

/** max |a - b| / max(1, |b|) over the elements; lengths must agree. */
function expectClose(a: Float64Array | undefined, b: Float64Array | undefined, what: string) {
  expect(a, what).toBeDefined();
  expect(b, what).toBeDefined();
  expect(a!.length, `${what}: length`).toBe(b!.length);
  let worst = 0;
  for (let k = 0; k < a!.length; k++) worst = Math.max(worst, Math.abs(a![k]! - b![k]!) / Math.max(1, Math.abs(b![k]!)));
  expect(worst, what).toBeLessThanOrEqual(TOL);
}

const neg = (v: Float64Array) => v.map((x) => -x);
const plus = (a: Float64Array, b: Float64Array) => a.map((x, k) => x + b[k]!);
const minus = (a: Float64Array, b: Float64Array) => a.map((x, k) => x - b[k]!);
const zerosLike = (v: Float64Array) => new Float64Array(v.length);
const filled = (v: Float64Array, x: number) => new Float64Array(v.length).fill(x);
/** Parameters of `to` named by `map` (to-name → from-name) copied from `from`. */
const renamed = (from: Params, map: Record<string, string>): Params => Object.fromEntries(Object.entries(map).map(([to, f]) => [to, from[f]!]));

/**
 * Cell A on a random case and cell B on the same inputs, initial states and upstream gradients, with
 * B's parameters made from A's by `toB`. Every output and state, the input and initial-state
 * gradients, and A's parameter gradients (made from B's by `gradA`) must agree.
 */
function expectEquivalent(a: string, b: string, toB: (pa: Params, sizes: Record<string, number>) => Params, gradA: (gb: Params) => Params, opts: { sizes?: Record<string, number>; seed?: number } = {}) {
  const A = cellOf(a), B = cellOf(b);
  const ca = randomCase(A, { B: 2, T: 3, seed: opts.seed ?? 5, ...(opts.sizes ? { sizes: opts.sizes } : {}) });
  const pb = toB(ca.params, ca.sizes);
  expect(Object.keys(pb).sort(), `${b}'s parameters`).toEqual(B.params.map((p) => p.name).sort());
  const cb: SequenceCase = { ...ca, params: pb };
  const ra = gradients(bwOf(a), ca), rb = gradients(bwOf(b), cb);
  for (const k of Object.keys(ra.forward.outputs)) expectClose(rb.forward.outputs[k], ra.forward.outputs[k], `${a} vs ${b}: output ${k}`);
  for (const k of Object.keys(ra.grads.inputs)) expectClose(rb.grads.inputs[k], ra.grads.inputs[k], `${a} vs ${b}: d${k}`);
  for (const k of Object.keys(ra.grads.initial)) expectClose(rb.grads.initial[k], ra.grads.initial[k], `${a} vs ${b}: d${k}0`);
  const ga = gradA(rb.grads.params);
  expect(Object.keys(ga).sort(), `${a}'s parameter gradients`).toEqual(A.params.map((p) => p.name).sort());
  for (const p of A.params) expectClose(ga[p.name], ra.grads.params[p.name], `${a} vs ${b}: d${p.name}`);
}

/** The map between two namings, both ways. */
const invert = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]));

describe("GRUs that compute PyTorch's GRU", () => {
  // PyTorch [r|z|n] names ← Keras [z|r|h] names (kernel, recurrent_kernel, bias[0], bias[1])
  const torchFromKeras = { Wir: "Kr", Wiz: "Kz", Win: "Kh", Whr: "Rr", Whz: "Rz", Whn: "Rh", bir: "br", biz: "bz", bin: "bh", bhr: "rbr", bhz: "rbz", bhn: "rbh" };
  it("gru-keras (reset_after=True) = gru under [z|r|h] <-> [r|z|n], biases [input; recurrent] = b_i*, b_h*", () => {
    expectEquivalent("gru-keras", "gru", (p) => renamed(p, torchFromKeras), (g) => renamed(g, invert(torchFromKeras)));
  });

  // cuDNN: linLayerID 0-2 input W_r, W_u, W_h, 3-5 recurrent R_r, R_u, R_h, biases b_W*, b_R*
  const torchFromCudnn = { Wir: "Wr", Wiz: "Wu", Win: "Wh", Whr: "Rr", Whz: "Ru", Whn: "Rh", bir: "bWr", biz: "bWu", bin: "bWh", bhr: "bRr", bhz: "bRu", bhn: "bRh" };
  it("gru-cudnn = gru (u is PyTorch's z; b_Rh sits inside r .* (R_h h + b_Rh) as b_hn does)", () => {
    expectEquivalent("gru-cudnn", "gru", (p) => renamed(p, torchFromCudnn), (g) => renamed(g, invert(torchFromCudnn)));
  });

  const torchFromCs224n = { Wir: "Wr", Wiz: "Wz", Win: "W", Whr: "Ur", Whz: "Uz", Whn: "U" };
  it("gru-cs224n = gru with all six biases zero", () => {
    expectEquivalent(
      "gru-cs224n", "gru",
      (p, sizes) => {
        const zero = new Float64Array(sizes.H!);
        return { ...renamed(p, torchFromCs224n), bir: zero, biz: zero, bin: zero, bhr: zero, bhz: zero, bhn: zero };
      },
      (g) => renamed(g, invert(torchFromCs224n)),
    );
  });

  it("gru-keras with a zero recurrent bias on z and r = gru-keras with those biases folded into the input bias", () => {
    expectEquivalent(
      "gru-keras", "gru-keras",
      (p) => ({ ...p, bz: plus(p.bz!, p.rbz!), br: plus(p.br!, p.rbr!), rbz: zerosLike(p.rbz!), rbr: zerosLike(p.rbr!) }),
      (g) => ({ ...g, rbz: g.bz!, rbr: g.br! }),
    );
  });
});

describe("reset-before GRUs", () => {
  const kerasFromCho = { Kr: "Wr", Rr: "Ur", br: "br", Kz: "Wz", Rz: "Uz", bz: "bz", Kh: "W", Rh: "U", bh: "b" };
  it("gru-cho (1406.1078 eqs 5-8, with biases) = gru-keras-reset-before (Keras says reset_after=False follows 1406.1078v3)", () => {
    expectEquivalent("gru-cho", "gru-keras-reset-before", (p) => renamed(p, kerasFromCho), (g) => renamed(g, invert(kerasFromCho)));
  });

  it("gru-tfjs = Keras GRU(reset_after=False, recurrent_activation=hard_sigmoid in its 0.2x + 0.5 form): the very same IR", () => {
    const spec = kerasResetBeforeSpec as CellSpec;
    const eqs = String(spec.equations).replaceAll("sigmoid(", "hardSigmoid(");
    expect(eqs.match(/hardSigmoid\(/g)?.length).toBe(2);
    const built = compileCell({ ...spec, name: "gru-keras-hard-sigmoid", equations: eqs });
    const tfjs = cellOf("gru-tfjs");
    expect(built.next[0]).toBe(tfjs.next[0]); // hash-consed: the same node, so the same function and derivative
    expect(built.params.map((p) => [p.name, p.node])).toEqual(tfjs.params.map((p) => [p.name, p.node]));
  });

  // MGU is the reset-before GRU with its two gates tied: r = f and z = 1 - f = sigmoid(-(pre-activation of f)).
  const mguTied = (p: Params): Params => ({ Kr: p.Wf!, Rr: p.Uf!, br: p.bf!, Kz: neg(p.Wf!), Rz: neg(p.Uf!), bz: neg(p.bf!), Kh: p.Wh!, Rh: p.Uh!, bh: p.bh! });
  it("mgu = gru-keras-reset-before with r = f and z = 1 - f (z's weights the negated f weights)", () => {
    expectEquivalent("mgu", "gru-keras-reset-before", mguTied, (g) => ({
      Wf: minus(g.Kr!, g.Kz!), Uf: minus(g.Rr!, g.Rz!), bf: minus(g.br!, g.bz!), Wh: g.Kh!, Uh: g.Rh!, bh: g.bh!,
    }));
  });
});

describe("LSTMs", () => {
  // PyTorch [i|f|g|o] ← Greff's z (block input), i, f, o
  const torchFromGreff = { Wii: "Wi", Wif: "Wf", Wig: "Wz", Wio: "Wo", Whi: "Ri", Whf: "Rf", Whg: "Rz", Who: "Ro" };
  it("lstm-np = PyTorch's lstm with b_i* + b_h* = the one bias per gate (gradients: db = db_i* = db_h*)", () => {
    const bias = { bi: ["bii", "bhi"], bf: ["bif", "bhf"], bz: ["big", "bhg"], bo: ["bio", "bho"] } as const;
    expectEquivalent(
      "lstm", "lstm-np",
      (p) => ({ ...renamed(p, invert(torchFromGreff)), ...Object.fromEntries(Object.entries(bias).map(([b, [i, h]]) => [b, plus(p[i]!, p[h]!)])) }),
      (g) => ({ ...renamed(g, torchFromGreff), ...Object.fromEntries(Object.entries(bias).flatMap(([b, [i, h]]) => [[i, g[b]!], [h, g[b]!]])) }),
    );
  });

  it("lstm-np = lstm with the recurrent biases b_h* zero", () => {
    expectEquivalent(
      "lstm-np", "lstm",
      (p) => ({ ...renamed(p, torchFromGreff), bii: p.bi!, bif: p.bf!, big: p.bz!, bio: p.bo!, bhi: zerosLike(p.bi!), bhf: zerosLike(p.bi!), bhg: zerosLike(p.bi!), bho: zerosLike(p.bi!) }),
      (g) => ({ ...renamed(g, invert(torchFromGreff)), bi: g.bii!, bf: g.bif!, bz: g.big!, bo: g.bio! }),
    );
  });

  // Keras [i|f|c|o] ← PyTorch [i|f|g|o]
  const torchFromKeras = { Wii: "Ki", Wif: "Kf", Wig: "Kc", Wio: "Ko", Whi: "Ri", Whf: "Rf", Whg: "Rc", Who: "Ro", bii: "bi", bif: "bf", big: "bc", bio: "bo" };
  const torchFromKerasBhZero = (p: Params): Params => ({ ...renamed(p, torchFromKeras), bhi: zerosLike(p.bi!), bhf: zerosLike(p.bi!), bhg: zerosLike(p.bi!), bho: zerosLike(p.bi!) });
  it("lstm-keras = lstm with b_h* = 0 (random biases)", () => {
    expectEquivalent("lstm-keras", "lstm", torchFromKerasBhZero, (g) => renamed(g, invert(torchFromKeras)));
  });

  it("lstm-keras starts with b_f = 1, the rest of the bias 0 (unit_forget_bias); = lstm with b_if = 1 and b_h* = 0 from there", () => {
    const cell = cellOf("lstm-keras"), sizes = { D: 3, H: 4 };
    const init = initParams(cell, sizes, 7);
    expect([...init.bf!]).toEqual([1, 1, 1, 1]);
    for (const b of ["bi", "bc", "bo"]) expect([...init[b]!]).toEqual([0, 0, 0, 0]);
    const c = randomCase(cell, { sizes, seed: 8 });
    const ck: SequenceCase = { ...c, params: { ...c.params, bi: init.bi!, bf: init.bf!, bc: init.bc!, bo: init.bo! } };
    const ct: SequenceCase = { ...ck, params: torchFromKerasBhZero(ck.params) };
    expect([...ct.params.bif!]).toEqual([1, 1, 1, 1]);
    const rk = gradients(bwOf("lstm-keras"), ck), rt = gradients(bwOf("lstm"), ct);
    for (const k of ["h", "c"]) expectClose(rt.forward.outputs[k], rk.forward.outputs[k], `output ${k}`);
    for (const [t, k] of Object.entries(torchFromKeras)) expectClose(rt.grads.params[t], rk.grads.params[k], `d${k}`);
  });

  it("lstm-np = lstm-keras (both one bias per gate): z is Keras's c block", () => {
    const kerasFromGreff = { Ki: "Wi", Kf: "Wf", Kc: "Wz", Ko: "Wo", Ri: "Ri", Rf: "Rf", Rc: "Rz", Ro: "Ro", bi: "bi", bf: "bf", bc: "bz", bo: "bo" };
    expectEquivalent("lstm-np", "lstm-keras", (p) => renamed(p, kerasFromGreff), (g) => renamed(g, invert(kerasFromGreff)));
  });

  it("lstm-np = lstm-peephole with p_i = p_f = p_o = 0", () => {
    expectEquivalent(
      "lstm-np", "lstm-peephole",
      (p) => ({ ...p, p_i: zerosLike(p.bi!), p_f: zerosLike(p.bi!), p_o: zerosLike(p.bi!) }),
      (g) => Object.fromEntries(Object.entries(g).filter(([k]) => !k.startsWith("p_"))),
    );
  });

  it("lstm-cifg = lstm-peephole constrained to f = 1 - i (f's weights, bias and peephole the negated i ones)", () => {
    expectEquivalent(
      "lstm-cifg", "lstm-peephole",
      (p) => ({ ...p, Wf: neg(p.Wi!), Rf: neg(p.Ri!), bf: neg(p.bi!), p_f: neg(p.p_i!) }),
      (g) => {
        const { Wf, Rf, bf, p_f, ...rest } = g;
        return { ...rest, Wi: minus(g.Wi!, Wf!), Ri: minus(g.Ri!, Rf!), bi: minus(g.bi!, bf!), p_i: minus(g.p_i!, p_f!) };
      },
    );
  });

  // In float64 sigmoid(40) = 1 / (1 + 4.2e-18) rounds to exactly 1 (and 1 - 1 = 0 in its derivative), so
  // the peephole LSTM with a gate's weights and peephole zero and its bias 40 IS the variant without it.
  // A finite-weight gate is never 1 in exact arithmetic; the structural tests below are the real proof.
  for (const [variant, g] of [["lstm-nig", "i"], ["lstm-nfg", "f"], ["lstm-nog", "o"]] as const)
    it(`${variant} = lstm-peephole with ${g} saturated at exactly 1.0 in float64 (W${g} = R${g} = p_${g} = 0, b${g} = 40)`, () => {
      expect(1 / (1 + Math.exp(-40))).toBe(1);
      expectEquivalent(
        variant, "lstm-peephole",
        (p) => ({ ...p, [`W${g}`]: zerosLike(p.Wz!), [`R${g}`]: zerosLike(p.Rz!), [`b${g}`]: filled(p.bz!, 40), [`p_${g}`]: zerosLike(p.bz!) }),
        (gr) => Object.fromEntries(Object.entries(gr).filter(([k]) => ![`W${g}`, `R${g}`, `b${g}`, `p_${g}`].includes(k))),
      );
    });

  it("indrnn-tanh = rnn (nn.RNN, tanh) with W_hh = diag(u) and b_hh = 0; du = diag(dW_hh)", () => {
    expectEquivalent(
      "indrnn-tanh", "rnn",
      (p) => {
        const H = p.u!.length, Whh = new Float64Array(H * H);
        for (let k = 0; k < H; k++) Whh[k * H + k] = p.u![k]!;
        return { Wih: p.W!, Whh, bih: p.b!, bhh: zerosLike(p.b!) };
      },
      (g) => {
        const H = g.bih!.length;
        return { W: g.Wih!, u: Float64Array.from({ length: H }, (_, k) => g.Whh![k * H + k]!), b: g.bih! };
      },
    );
  });
});

// ------------------------------------------------------------------ the Greff variants, structurally

/** The node a cell names `name` (`z`, `c'`). */
const node = (cell: Cell, name: string): Node => {
  for (const [n, s] of cell.names) if (s === name) return n;
  return expect.unreachable(`${cell.name} has no value named ${name}`);
};
const hasNode = (cell: Cell, name: string) => [...cell.names.values()].includes(name);
const stateNode = (cell: Cell, name: string) => cell.states.find((s) => s.attrs.name === name)!;
/** Whether `target` is reachable from `root`. */
const reaches = (root: Node, target: Node): boolean => root === target || root.args.some((a) => reaches(a, target));

describe("Greff et al.'s variants drop exactly what they say (structure of the graph)", () => {
  const peepholeParams = ["Wz", "Rz", "bz", "Wi", "Ri", "bi", "Wf", "Rf", "bf", "Wo", "Ro", "bo", "p_i", "p_f", "p_o"];
  const names = (cell: Cell) => cell.params.map((p) => p.name).sort();
  const without = (drop: string[]) => peepholeParams.filter((p) => !drop.includes(p)).sort();

  it("lstm-peephole: i and f read the old c, o reads the new c' (and i, f do not)", () => {
    const cell = cellOf("lstm-peephole"), cNew = node(cell, "c'"), cOld = stateNode(cell, "c");
    expect(names(cell)).toEqual([...peepholeParams].sort());
    expect(reaches(node(cell, "o"), cNew)).toBe(true);
    for (const g of ["i", "f"]) {
      expect(reaches(node(cell, g), cOld), g).toBe(true);
      expect(reaches(node(cell, g), cNew), g).toBe(false);
    }
  });

  it("lstm-nig: no i (no Wi, Ri, bi, p_i); c' = z + c .* f", () => {
    const cell = cellOf("lstm-nig");
    expect(names(cell)).toEqual(without(["Wi", "Ri", "bi", "p_i"]));
    expect(hasNode(cell, "i")).toBe(false);
    expect(node(cell, "c'")).toBe(apply("add", [node(cell, "z"), apply("mul", [stateNode(cell, "c"), node(cell, "f")])]));
  });

  it("lstm-nfg: no f (no Wf, Rf, bf, p_f); c' = z .* i + c, the old state passes unscaled", () => {
    const cell = cellOf("lstm-nfg");
    expect(names(cell)).toEqual(without(["Wf", "Rf", "bf", "p_f"]));
    expect(hasNode(cell, "f")).toBe(false);
    expect(node(cell, "c'")).toBe(apply("add", [apply("mul", [node(cell, "z"), node(cell, "i")]), stateNode(cell, "c")]));
  });

  it("lstm-nog: no o (no Wo, Ro, bo, p_o); h' = tanh(c'), and numerically h = tanh(c) at every step", () => {
    const cell = cellOf("lstm-nog");
    expect(names(cell)).toEqual(without(["Wo", "Ro", "bo", "p_o"]));
    expect(hasNode(cell, "o")).toBe(false);
    expect(node(cell, "h'")).toBe(apply("tanh", [node(cell, "c'")]));
    const out = gradients(bwOf("lstm-nog"), randomCase(cell, { seed: 9 })).forward.outputs;
    out.h!.forEach((v, k) => expect(v).toBe(Math.tanh(out.c![k]!)));
  });

  it("lstm-niaf: the block input z has no activation; everything else is the peephole LSTM", () => {
    const cell = cellOf("lstm-niaf"), peep = cellOf("lstm-peephole");
    expect(names(cell)).toEqual([...peepholeParams].sort());
    expect(node(peep, "z").op).toBe("tanh");
    expect(node(peep, "z").args[0]).toBe(node(cell, "z"));
    for (const g of ["i", "f"]) expect(node(cell, g)).toBe(node(peep, g));
  });

  it("lstm-noaf: h' = c' .* o (no tanh on the output); everything before it is the peephole LSTM", () => {
    const cell = cellOf("lstm-noaf"), peep = cellOf("lstm-peephole");
    expect(node(cell, "h'")).toBe(apply("mul", [node(cell, "c'"), node(cell, "o")]));
    for (const v of ["z", "i", "f", "c'", "o"]) expect(node(cell, v), v).toBe(node(peep, v));
  });

  it("lstm-np: no peepholes, and no gate reads the cell state", () => {
    const cell = cellOf("lstm-np");
    expect(names(cell)).toEqual(without(["p_i", "p_f", "p_o"]));
    for (const g of ["i", "f", "o", "z"]) expect(reaches(node(cell, g), stateNode(cell, "c")), g).toBe(false);
  });

  it("lstm-cifg: no forget-gate weights; f = 1 - i", () => {
    const cell = cellOf("lstm-cifg");
    expect(names(cell)).toEqual(without(["Wf", "Rf", "bf", "p_f"]));
    expect(node(cell, "f").op).toBe("sub");
    expect(node(cell, "f").args[1]).toBe(node(cell, "i"));
  });
});

// ------------------------------------------------------------------ hand-written loops from the cited code

const sig = (v: number) => 1 / (1 + Math.exp(-v));
/** Row i of W (rows × cols, row-major) times v[off .. off + cols). */
const rowDot = (W: Float64Array, i: number, cols: number, v: Float64Array, off: number) => {
  let s = 0;
  for (let j = 0; j < cols; j++) s += W[i * cols + j]! * v[off + j]!;
  return s;
};
/** Layer norm over a whole vector, gain g (and beta), epsilon 1e-5 as haste's kernels. */
const layerNorm = (a: number[], g: Float64Array, beta?: Float64Array) => {
  const n = a.length, mu = a.reduce((s, v) => s + v, 0) / n;
  const va = a.reduce((s, v) => s + (v - mu) ** 2, 0) / n;
  return a.map((v, k) => g[k]! * ((v - mu) / Math.sqrt(va + 1e-5)) + (beta ? beta[k]! : 0));
};

describe("cells without a partner, against loops written from the code they cite", () => {
  it("sru = asappresearch/sru elementwise_recurrence_naive (k = 3, D == H, scale_x = sqrt(3), g = identity)", () => {
    const cell = cellOf("sru"), H = 5;
    const c = randomCase(cell, { sizes: { H }, B: 2, T: 4, seed: 12 });
    const P = c.params, x = c.inputs.x!, { B, T } = c, scale = Math.sqrt(1 + 2 * Math.exp(0));
    let cPrev = Float64Array.from(c.initial.c!);
    const wantH = new Float64Array(T * B * H), wantC = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const next = new Float64Array(B * H);
      for (let b = 0; b < B; b++)
        for (let j = 0; j < H; j++) {
          const xo = (t * B + b) * H, cp = cPrev[b * H + j]!;
          const u0 = rowDot(P.W!, j, H, x, xo), u1 = rowDot(P.Wf!, j, H, x, xo) + P.b_f![j]!, u2 = rowDot(P.Wr!, j, H, x, xo) + P.b_r![j]!;
          const f = sig(u1 + cp * P.v_f![j]!), r = sig(u2 + cp * P.v_r![j]!);
          const ct = u0 + (cp - u0) * f, xp = x[xo + j]! * scale;
          next[b * H + j] = ct;
          wantH[(t * B + b) * H + j] = xp + (ct - xp) * r;
        }
      wantC.set(next, t * B * H);
      cPrev = next;
    }
    const out = gradients(bwOf("sru"), c).forward.outputs;
    expectClose(out.c, wantC, "c");
    expectClose(out.h, wantH, "h");
  });

  it("gru-layernorm = haste LayerNormGRUScript (LN over all 3H, eps 1e-5, gains, no beta; reset after the product)", () => {
    const cell = cellOf("gru-layernorm"), D = 3, H = 4;
    const c = randomCase(cell, { sizes: { D, H }, B: 2, T: 3, seed: 13 });
    const P = c.params, { B, T } = c;
    let h = Float64Array.from(c.initial.h!);
    const want = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const next = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        const xo = (t * B + b) * D;
        const wx = layerNorm(Array.from({ length: 3 * H }, (_, k) => rowDot(P.K!, k, D, c.inputs.x!, xo)), P.gx!).map((v, k) => v + P.b![k]!);
        const rh = layerNorm(Array.from({ length: 3 * H }, (_, k) => rowDot(P.R!, k, H, h, b * H)), P.gr!).map((v, k) => v + P.rb![k]!);
        for (let j = 0; j < H; j++) {
          const z = sig(wx[j]! + rh[j]!), r = sig(wx[H + j]! + rh[H + j]!), g = Math.tanh(wx[2 * H + j]! + r * rh[2 * H + j]!);
          next[b * H + j] = z * h[b * H + j]! + (1 - z) * g;
        }
      }
      want.set(next, t * B * H);
      h = next;
    }
    expectClose(gradients(bwOf("gru-layernorm"), c).forward.outputs.h, want, "h");
  });

  it("lstm-layernorm = haste LayerNormLSTM (gates [i|g|f|o], LN over all 4H, h = o * tanh(LN(c) with gain and beta))", () => {
    const cell = cellOf("lstm-layernorm"), D = 3, H = 4;
    const c = randomCase(cell, { sizes: { D, H }, B: 2, T: 3, seed: 14 });
    const P = c.params, { B, T } = c, bias = [P.bi!, P.bg!, P.bf!, P.bo!];
    let h = Float64Array.from(c.initial.h!), cs = Float64Array.from(c.initial.c!);
    const wantH = new Float64Array(T * B * H), wantC = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const nh = new Float64Array(B * H), nc = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        const xo = (t * B + b) * D;
        const wx = layerNorm(Array.from({ length: 4 * H }, (_, k) => rowDot(P.K!, k, D, c.inputs.x!, xo)), P.gx!);
        const rh = layerNorm(Array.from({ length: 4 * H }, (_, k) => rowDot(P.R!, k, H, h, b * H)), P.gr!);
        const v = (gate: number, j: number) => wx[gate * H + j]! + rh[gate * H + j]! + bias[gate]![j]!;
        for (let j = 0; j < H; j++) {
          const i = sig(v(0, j)), g = Math.tanh(v(1, j)), f = sig(v(2, j));
          nc[b * H + j] = f * cs[b * H + j]! + i * g;
        }
        const lnc = layerNorm(Array.from(nc.subarray(b * H, b * H + H)), P.gamma_h!, P.beta_h!);
        for (let j = 0; j < H; j++) nh[b * H + j] = sig(v(3, j)) * Math.tanh(lnc[j]!);
      }
      wantH.set(nh, t * B * H); wantC.set(nc, t * B * H);
      h = nh; cs = nc;
    }
    const out = gradients(bwOf("lstm-layernorm"), c).forward.outputs;
    expectClose(out.c, wantC, "c");
    expectClose(out.h, wantH, "h");
  });

  it("gru-light = Li-GRU without BN: z = sig(g_z .* W_z x + b_z + U_z h), relu candidate, z keeps the old state", () => {
    const cell = cellOf("gru-light"), D = 3, H = 4;
    const c = randomCase(cell, { sizes: { D, H }, B: 2, T: 3, seed: 15 });
    const P = c.params, { B, T } = c;
    let h = Float64Array.from(c.initial.h!);
    const want = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const next = new Float64Array(B * H);
      for (let b = 0; b < B; b++)
        for (let j = 0; j < H; j++) {
          const xo = (t * B + b) * D;
          const z = sig(P.gz![j]! * rowDot(P.Wz!, j, D, c.inputs.x!, xo) + P.bz![j]! + rowDot(P.Uz!, j, H, h, b * H));
          const hh = Math.max(0, P.gh![j]! * rowDot(P.Wh!, j, D, c.inputs.x!, xo) + P.bh![j]! + rowDot(P.Uh!, j, H, h, b * H));
          next[b * H + j] = z * h[b * H + j]! + (1 - z) * hh;
        }
      want.set(next, t * B * H);
      h = next;
    }
    expectClose(gradients(bwOf("gru-light"), c).forward.outputs.h, want, "h");
  });

  it("rnn-softsign: h' = s / (1 + |s|) of nn.RNN's pre-activation, through the user-defined activation", () => {
    const cell = cellOf("rnn-softsign"), D = 3, H = 4;
    expect(node(cell, "h'").op).toBe("act");
    expect(node(cell, "h'").attrs.fn?.name).toBe("softsign");
    const c = randomCase(cell, { sizes: { D, H }, B: 2, T: 3, seed: 16 });
    const P = c.params, { B, T } = c;
    let h = Float64Array.from(c.initial.h!);
    const want = new Float64Array(T * B * H);
    for (let t = 0; t < T; t++) {
      const next = new Float64Array(B * H);
      for (let b = 0; b < B; b++)
        for (let j = 0; j < H; j++) {
          const s = rowDot(P.Wih!, j, D, c.inputs.x!, (t * B + b) * D) + P.bih![j]! + rowDot(P.Whh!, j, H, h, b * H) + P.bhh![j]!;
          next[b * H + j] = s / (1 + Math.abs(s));
        }
      want.set(next, t * B * H);
      h = next;
    }
    expectClose(gradients(bwOf("rnn-softsign"), c).forward.outputs.h, want, "h");
  });

  it("the doc line of every [U] Greff variant says it is unconfirmed and names the code path followed", () => {
    for (const n of ["lstm-cifg", "lstm-nig", "lstm-nfg", "lstm-nog", "lstm-niaf", "lstm-noaf", "lstm-np"]) {
      const doc = cellOf(n).doc;
      expect(doc, n).toMatch(/\[U\]/);
      expect(doc, n).toMatch(/rnn_cell_impl\.py/);
    }
  });
});

// ------------------------------------------------------------------ generated kernels

// The layer-norm cells' kernels once divided by `3 * H` unparenthesised (mean over 3H): they are
// checked here like every other cell.

describe("generated kernels of the zoo equal the reference evaluator (float64) and pass finite differences", () => {
  const covered = new Set(["rnn", "gru", "gru-cs224n", "lstm"]); // test/codegen.test.ts checks these at several sizes
  for (const name of Object.keys(PARAMS).filter((n) => !covered.has(n)))
    it(name, async () => {
      const cell = cellOf(name);
      const rows = await checkKernels(cell, randomCase(cell, { B: 2, T: 3, seed: 4 }));
      for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr}`).toBe(true);
      expect(rows.find((r) => r.what.startsWith("ts f64 ="))!.maxErr).toBeLessThanOrEqual(F64_TOL);
      expect(rows.find((r) => r.what.startsWith("wasm f64 ="))!.maxErr).toBeLessThanOrEqual(F64_TOL);
      expect(rows.find((r) => r.what.startsWith("wasm 2 threads"))!.maxErr).toBe(0);
    });
});

// The zoo bench's logic that needs no timing (bench/zoo.ts, bench/zoo-peers.ts): each peer's
// parameter layout is a rearrangement of cellforge's flat buffer that puts every parameter where the
// code the cell cites keeps it, the sizes each cell runs at, the check's pass rule, the saved floats
// per step, and the jax-js peer of lstm-layernorm against the generated kernels (Python-free; the
// PyTorch peers are checked in float64 by test/bench-zoo-torch.test.ts).
import { describe, expect, it } from "vitest";
import { loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { randomCase } from "../src/sequence.ts";
import { buildPlan, floatsPerStep } from "../codegen/plan.ts";
import { kernelArgs, loadKernels } from "../check/kernelcheck.ts";
import { PEER_LAYOUTS, TORCH_CELLS, jaxZoo, paramGetter, type GetParam, type PeerCell, type PeerTensor } from "../bench/zoo-peers.ts";
import { F32_RULE, checkNumbers, compare, zooCase, zooCells, zooSizes } from "../bench/zoo.ts";
import { WORKLOADS } from "../bench/workloads.ts";
import type { Budget } from "../bench/timing.ts";

const W1 = WORKLOADS.find((w) => w.name === "W1")!;
const W2 = WORKLOADS.find((w) => w.name === "W2")!;

/** Small, all different, so that a transposition or a swap shows. */
const SIZES: Record<PeerCell, Record<string, number>> = {
  "lstm-layernorm": { D: 3, H: 5 },
  "gru-layernorm": { D: 3, H: 5 },
  mgu: { D: 3, H: 5 },
  sru: { H: 5 },
  "indrnn-relu": { D: 3, H: 5 },
  rnn: { D: 3, H: 5 },
};

/** The flat buffer holding its own offsets, so each peer entry says where it came from. */
async function indexed(name: PeerCell) {
  const cell = await loadCell(name);
  const mod = await loadKernels(cell, { committed: true });
  const sizes = SIZES[name];
  const layout = mod.paramLayout(sizes);
  const flat = Float64Array.from({ length: layout.total }, (_, i) => i);
  const get = paramGetter(flat, layout);
  const peer: Record<string, PeerTensor> = PEER_LAYOUTS[name](sizes, get);
  /** a peer tensor's numbers by name; a name the layout does not have fails the test */
  const d = (k: string): Float64Array => {
    const x = peer[k];
    if (!x) throw new Error(`${name}'s layout has no ${k}`);
    return x.data;
  };
  return { sizes, layout, get, peer, d };
}

/** The entry at [r, c] of a cellforge parameter of `cols` columns, as its flat offset. */
const at = (get: GetParam, name: string, cols: number) => (r: number, c = 0) => get(name)[r * cols + c]!;

describe("each peer's layout is cellforge's flat buffer rearranged", () => {
  for (const name of TORCH_CELLS)
    it(`${name}: every parameter entry exactly once, in tensors of the stated shapes`, async () => {
      const { layout, peer } = await indexed(name);
      const seen = Object.values(peer).flatMap((t) => {
        expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        return [...t.data];
      });
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: layout.total }, (_, i) => i));
    });

  it("lstm-layernorm: haste's kernel = K', recurrent_kernel = R', gamma = [gx; gr], bias [i|g|f|o]", async () => {
    const { sizes: { D, H }, get, d } = await indexed("lstm-layernorm");
    const K = at(get, "K", D!), R = at(get, "R", H!);
    const G = 4 * H!;
    for (let j = 0; j < G; j++) {
      for (let k = 0; k < D!; k++) expect(d("kernel")[k * G + j]).toBe(K(j, k));
      for (let k = 0; k < H!; k++) expect(d("recurrent_kernel")[k * G + j]).toBe(R(j, k));
      expect(d("gamma")[j]).toBe(get("gx")[j]);
      expect(d("gamma")[G + j]).toBe(get("gr")[j]);
    }
    ["bi", "bg", "bf", "bo"].forEach((b, q) => {
      for (let j = 0; j < H!; j++) expect(d("bias")[q * H! + j]).toBe(get(b)[j]);
    });
    expect([...d("gamma_h")]).toEqual([...get("gamma_h")]);
    expect([...d("beta_h")]).toEqual([...get("beta_h")]);
  });

  it("gru-layernorm: kernel = K', recurrent_kernel = R', gamma = [gx; gr], bias = b, recurrent_bias = rb", async () => {
    const { sizes: { D, H }, get, d } = await indexed("gru-layernorm");
    const K = at(get, "K", D!), R = at(get, "R", H!);
    const G = 3 * H!;
    for (let j = 0; j < G; j++) {
      for (let k = 0; k < D!; k++) expect(d("kernel")[k * G + j]).toBe(K(j, k));
      for (let k = 0; k < H!; k++) expect(d("recurrent_kernel")[k * G + j]).toBe(R(j, k));
      expect([d("gamma")[j], d("gamma")[G + j]]).toEqual([get("gx")[j], get("gr")[j]]);
      expect([d("bias")[j], d("recurrent_bias")[j]]).toEqual([get("b")[j], get("rb")[j]]);
    }
  });

  it("mgu: x2h rows are [Wf; Wh] with bias [bf; bh]; Uf and Uh as they are", async () => {
    const { sizes: { D, H }, get, d } = await indexed("mgu");
    for (let j = 0; j < H!; j++) {
      for (let k = 0; k < D!; k++) {
        expect(d("x2h.weight")[j * D! + k]).toBe(at(get, "Wf", D!)(j, k));
        expect(d("x2h.weight")[(H! + j) * D! + k]).toBe(at(get, "Wh", D!)(j, k));
      }
      expect([d("x2h.bias")[j], d("x2h.bias")[H! + j]]).toEqual([get("bf")[j], get("bh")[j]]);
    }
    expect([...d("Uf.weight")]).toEqual([...get("Uf")]);
    expect([...d("Uh.weight")]).toEqual([...get("Uh")]);
  });

  it("sru: weight [D, 3H] interleaved per unit (column 3j + m: W, Wf, Wr), weight_c = [v_f; v_r], bias = [b_f; b_r]", async () => {
    const { sizes: { H }, get, d } = await indexed("sru");
    const n = H!;
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < n; k++)
        ["W", "Wf", "Wr"].forEach((m, q) => expect(d("weight")[k * 3 * n + 3 * j + q]).toBe(at(get, m, n)(j, k)));
      expect([d("weight_c")[j], d("weight_c")[n + j]]).toEqual([get("v_f")[j], get("v_r")[j]]);
      expect([d("bias")[j], d("bias")[n + j]]).toEqual([get("b_f")[j], get("b_r")[j]]);
    }
  });

  it("indrnn-relu: kernel = W', recurrent_scale = u, bias = b; rnn: nn.RNN's names, the same matrices", async () => {
    const ind = await indexed("indrnn-relu");
    const { D, H } = ind.sizes;
    for (let j = 0; j < H!; j++) for (let k = 0; k < D!; k++) expect(ind.d("kernel")[k * H! + j]).toBe(at(ind.get, "W", D!)(j, k));
    expect([...ind.d("recurrent_scale")]).toEqual([...ind.get("u")]);
    const rnn = await indexed("rnn");
    for (const [k, v] of [["rnn.weight_ih_l0", "Wih"], ["rnn.weight_hh_l0", "Whh"], ["rnn.bias_ih_l0", "bih"], ["rnn.bias_hh_l0", "bhh"]] as const)
      expect([...rnn.d(k)]).toEqual([...rnn.get(v)]);
  });
});

describe("the zoo's cells and sizes", () => {
  it("every cell in dsl/ gets the workload's D and H, and a cell with another size is refused by name", async () => {
    for (const name of zooCells()) {
      const cell = await loadCell(name);
      for (const w of [W1, W2]) {
        const { sizes } = zooSizes(cell, w);
        if (cell.sizes.includes("D")) expect(sizes.D).toBe(w.D);
        expect(sizes.H).toBe(w.H);
      }
    }
    const sru = await loadCell("sru");
    expect(zooSizes(sru, W1)).toEqual({ sizes: { H: 128 }, note: "no D: the input size is H" });
    expect(() => zooSizes({ ...sru, sizes: ["H", "K"] }, W1)).toThrow(/sru has a size K; give it a value at each workload in EXTRA_SIZES/);
  });

  it("saved floats per step are the forward's tapes: none for rnn (h' is the state), 5H for the LSTM (i, f, g, o, tanh c')", async () => {
    const saved = async (name: string, sizes: Record<string, number>) => {
      const cell = await loadCell(name);
      return floatsPerStep(buildPlan(cell, deriveBackward(cell)), "saved", sizes);
    };
    expect(await saved("rnn", { D: 3, H: 7 })).toBe(0);
    expect(await saved("lstm", { D: 3, H: 7 })).toBe(5 * 7);
  });
});

describe("the check's rule", () => {
  const n = { loss: 10, gradParams: 100, gradX: 5, gradInitial: 0.5 };
  const c = { B: 2, T: 3, upstream: { h: new Float64Array(6 * 4) } };
  it("float64: 1e-9 relative, on every number", () => {
    expect(compare("p", "float64", n, { ...n, loss: 10 + 9e-9 }, c).pass).toBe(true);
    expect(compare("p", "float64", n, { ...n, loss: 10 + 2e-8 }, c).pass).toBe(false);
    expect(compare("p", "float64", n, { ...n, gradInitial: 0.5 + 2e-9 }, c).pass).toBe(false); // max(1, |x|)
    expect(compare("p", "float64", n, { ...n, gradX: NaN }, c).pass).toBe(false);
  });
  it("float32: the loss to 2e-5·√n + 1e-4·|L|, the norms to 1e-3 relative", () => {
    const lossTol = F32_RULE.lossAbs * Math.sqrt(24) + F32_RULE.lossRel * 10;
    expect(compare("p", "float32", n, { ...n, loss: 10 + 0.9 * lossTol }, c).pass).toBe(true);
    expect(compare("p", "float32", n, { ...n, loss: 10 + 1.1 * lossTol }, c).pass).toBe(false);
    expect(compare("p", "float32", n, { ...n, gradParams: 100.09 }, c).pass).toBe(true);
    expect(compare("p", "float32", n, { ...n, gradParams: 100.11 }, c).pass).toBe(false);
  });
});

describe("the jax-js peer of lstm-layernorm computes the generated kernels' cell", () => {
  const once: Budget = { measureMs: 1, warmupMs: 0, maxRuns: 1, maxWarmups: 1, minRuns: 1, slowRunMs: 1 };
  const run = async (plant?: (c: ReturnType<typeof zooCase>) => void) => {
    const cell = await loadCell("lstm-layernorm");
    const mod = await loadKernels(cell, { committed: true });
    const sc = randomCase(cell, { sizes: { D: 3, H: 5 }, B: 2, T: 4, seed: 14 });
    const k = mod.createKernel32(sc.sizes, sc.B, sc.T, { backend: "ts" });
    const cf = checkNumbers(k, kernelArgs(mod, sc, Float32Array));
    k.dispose();
    const zc = zooCase(cell, mod, sc);
    plant?.(zc);
    const r = await jaxZoo(zc, once, Infinity);
    if ("missing" in r) throw new Error(r.missing);
    return compare("jax-js", "float32", cf, r.f32, zc);
  };
  it("same loss and gradient norms in float32", async () => {
    const r = await run();
    expect(r.pass, JSON.stringify(r)).toBe(true);
  });
  it("and the check sees a bias of the wrong gate (planted: b_i and b_g swapped)", async () => {
    const r = await run((zc) => {
      const bi = zc.layout.params.find((q) => q.name === "bi")!, bg = zc.layout.params.find((q) => q.name === "bg")!;
      const a = zc.params.slice(bi.offset, bi.offset + bi.length);
      zc.params.copyWithin(bi.offset, bg.offset, bg.offset + bg.length);
      zc.params.set(a, bg.offset);
    });
    expect(r.pass).toBe(false);
  });
});

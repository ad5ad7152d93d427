// nn/recurrent.ts against outside references: each example run ALONE through the cell's raw kernel
// (batch 1, its own length; reversed for the reverse direction), central finite differences of a
// random linear loss in float64 for every gradient, and an identity second layer that reveals the
// dropout mask. All on the ts backend at small sizes.
import { describe, expect, it } from "vitest";
import * as gru from "../generated/gru.ts";
import * as lstm from "../generated/lstm.ts";
import * as rnn from "../generated/rnn.ts";
import * as sru from "../generated/sru.ts";
import type { KernelModule } from "../runtime/kernel.ts";
import { Rng } from "../runtime/rng.ts";
import { LayerError, Recurrent, type RecurrentOptions } from "../nn/recurrent.ts";

type F64 = Float64Array;
const rand = (n: number, rng: Rng): F64 => Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i]!, 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const base = { precision: 64, backend: "ts" } as const;

/** Random arrays for every state of the layer, (layers·directions)×B×size. */
function randomStates(mod: KernelModule, slabs: number, B: number, H: number, rng: Rng): Record<string, F64> {
  return Object.fromEntries(mod.spec.states.map((s) => [s.name, rand(slabs * B * H, rng)]));
}

/** The slice of the buffer holding one layer and direction's cell parameters ("l0", "l0_reverse", …). */
function cellParams(r: Recurrent, prefix: string): F64 {
  const ps = r.parameters.filter((p) => p.name.startsWith(prefix + ".") && !p.name.includes(".proj."));
  return r.params.subarray(ps[0]!.offset, ps.at(-1)!.offset + ps.at(-1)!.length) as F64;
}

/** The raw kernel on ONE example alone: x is len×D (batch 1); every state and output after each step. */
function alone(mod: KernelModule, sizes: Record<string, number>, p: F64, x: F64, len: number, initial: Record<string, F64>): Record<string, F64> {
  const k = mod.createKernel64(sizes, 1, len, { backend: "ts" });
  const out = Object.fromEntries([...mod.spec.states, ...mod.spec.outputs].map((v) => [v.name, new Float64Array(len * sizes[v.size]!)]));
  k.forward(p, { x }, initial, out);
  k.dispose();
  return out;
}

/**
 * A one-layer time-major or batch-first run against each example alone through the raw kernel, both
 * directions: every output inside the example's length, zeros past it, and the final states.
 */
function checkAgainstAlone(mod: KernelModule, r: Recurrent, B: number, T: number, lengths: number[], rng: Rng): void {
  const { inputSize: D, hidden: H, batchFirst, bidirectional } = r.options, dirs = bidirectional ? 2 : 1;
  const x = rand(B * T * D, rng), initial = randomStates(mod, dirs, B, H, rng);
  const { output, final } = r.forward(x, { batch: B, steps: T, lengths, initial });
  const at = (t: number, e: number) => (batchFirst ? e * T + t : t * B + e); // the row of step t, example e
  const exposed = mod.spec.outputs[0]?.name ?? "h";
  for (let e = 0; e < B; e++) {
    const len = lengths[e]!;
    for (let d = 0; d < dirs; d++) {
      // the reverse direction sees the example reversed within its own length
      const src = (t: number) => (d === 0 ? t : len - 1 - t);
      const xe = new Float64Array(len * D);
      for (let t = 0; t < len; t++) xe.set(x.subarray(at(src(t), e) * D, at(src(t), e) * D + D), t * D);
      const init = Object.fromEntries(Object.entries(initial).map(([s, a]) => [s, a.slice((d * B + e) * H, (d * B + e + 1) * H)]));
      const ref = alone(mod, { D, H }, cellParams(r, d ? "l0_reverse" : "l0"), xe, len, init);
      for (let t = 0; t < T; t++) {
        const got = output.subarray(at(t, e) * dirs * H + d * H, at(t, e) * dirs * H + (d + 1) * H);
        const want = t < len ? ref[exposed]!.subarray(src(t) * H, src(t) * H + H) : new Float64Array(H);
        expect(maxDiff(got, want), `example ${e}, direction ${d}, step ${t}`).toBeLessThan(1e-12);
      }
      for (const s of mod.spec.states)
        expect(maxDiff(final[s.name]!.subarray((d * B + e) * H, (d * B + e + 1) * H), ref[s.name]!.subarray((len - 1) * H, len * H)), `final ${s.name}`).toBeLessThan(1e-12);
    }
  }
}

/**
 * Every parameter gradient, dInput and dInitial of loss = Σ w·output + Σ v·final against central
 * differences. `fresh`: evaluate each perturbed loss on a new layer of the same seed (its first
 * forward draws the same dropout masks as the checked one's).
 */
function gradcheck(mod: KernelModule, opts: RecurrentOptions, B: number, T: number, lengths: number[], fresh = false): number {
  const rng = new Rng(5), dirs = opts.bidirectional ? 2 : 1, slabs = (opts.layers ?? 1) * dirs;
  const r = new Recurrent(mod, opts);
  const x = rand(B * T * opts.inputSize, rng), initial = randomStates(mod, slabs, B, opts.hidden, rng);
  const w = rand(T * B * dirs * opts.hidden, rng), v = randomStates(mod, slabs, B, opts.hidden, rng);
  const p0 = r.params.slice() as F64;
  const loss = (p: F64, xx: F64, init: Record<string, F64>, layer = fresh ? new Recurrent(mod, opts) : r) => {
    layer.params.set(p);
    const { output, final } = layer.forward(xx, { batch: B, steps: T, lengths, initial: init });
    return dot(w, output) + mod.spec.states.reduce((s, st) => s + dot(v[st.name]!, final[st.name]!), 0);
  };
  loss(p0, x, initial, r);
  r.zeroGrad();
  const { dInput, dInitial } = r.backward(w, v);
  const grads = r.grads.slice();
  const eps = 1e-5;
  const numeric = (a: F64, i: number, f: () => number) => {
    const keep = a[i]!;
    a[i] = keep + eps;
    const up = f();
    a[i] = keep - eps;
    const down = f();
    a[i] = keep;
    return (up - down) / (2 * eps);
  };
  let worst = 0;
  const compare = (what: string, got: number, want: number) => {
    const err = Math.abs(got - want) / Math.max(1, Math.abs(want));
    worst = Math.max(worst, err);
    expect(err, `${what}: analytic ${got}, numeric ${want}`).toBeLessThan(1e-6);
  };
  const p = p0.slice();
  for (const q of r.parameters) for (let i = 0; i < q.length; i++) compare(`${q.name}[${i}]`, grads[q.offset + i]!, numeric(p, q.offset + i, () => loss(p, x, initial)));
  for (let i = 0; i < x.length; i++) compare(`dInput[${i}]`, dInput[i]!, numeric(x, i, () => loss(p, x, initial)));
  for (const s of mod.spec.states) for (let i = 0; i < initial[s.name]!.length; i++) compare(`dInitial.${s.name}[${i}]`, dInitial[s.name]![i]!, numeric(initial[s.name]!, i, () => loss(p, x, initial)));
  return worst;
}

describe("Recurrent: forward against each example alone through the raw kernel", () => {
  for (const mod of [gru, lstm] as KernelModule[]) {
    it(`${mod.spec.name}: lengths [5, 2, 4], time-major; zeros past each length; final at each example's last step`, () => {
      checkAgainstAlone(mod, new Recurrent(mod, { ...base, hidden: 3, inputSize: 2, seed: 1 }), 3, 5, [5, 2, 4], new Rng(1));
    });
    it(`${mod.spec.name}: bidirectional, batch-first: the reverse half is the kernel on each example reversed within its length`, () => {
      checkAgainstAlone(mod, new Recurrent(mod, { ...base, hidden: 3, inputSize: 2, bidirectional: true, batchFirst: true, seed: 2 }), 3, 5, [5, 2, 4], new Rng(2));
    });
  }
  it("no lengths is every example at full length; repeated lengths share a segment", () => {
    const r = new Recurrent(gru, { ...base, hidden: 3, inputSize: 2, bidirectional: true, seed: 3 });
    checkAgainstAlone(gru, r, 3, 5, [5, 5, 5], new Rng(3));
    checkAgainstAlone(gru, r, 4, 5, [3, 1, 3, 1], new Rng(4));
    const x = rand(5 * 2 * 2, new Rng(5)), full = r.forward(x, { batch: 2, steps: 5, lengths: [5, 5] }).output;
    for (const lengths of [undefined, null]) expect(maxDiff(r.forward(x, { batch: 2, steps: 5, lengths }).output, full)).toBe(0);
  });
  it("lengths that leave a batch not a power of two and stretches not a power of two steps: padded batches and 2^k-step calls", () => {
    // lengths [13, 13, 13, 6, 6, 1]: steps 1-5 run 5 examples on a batch of 6 (one padding row) as 4 + 1 steps,
    // steps 6-12 run 3 examples on a batch of 4 as 4 + 2 + 1 steps
    for (const bidirectional of [false, true])
      checkAgainstAlone(gru, new Recurrent(gru, { ...base, hidden: 3, inputSize: 2, bidirectional, seed: 11 }), 6, 13, [13, 6, 13, 1, 6, 13], new Rng(12));
    expect(gradcheck(lstm, { ...base, hidden: 2, inputSize: 2, layers: 2, bidirectional: true, seed: 12 }, 6, 13, [13, 6, 13, 1, 6, 13])).toBeLessThan(1e-6);
  });
  it("kernels are cached per shape: other batches and steps, back to a first shape, and past the cache's bound", () => {
    const r = new Recurrent(lstm, { ...base, hidden: 3, inputSize: 2, bidirectional: true, seed: 4 });
    checkAgainstAlone(lstm, r, 3, 5, [5, 2, 4], new Rng(5));
    checkAgainstAlone(lstm, r, 2, 7, [3, 7], new Rng(6));
    checkAgainstAlone(lstm, r, 3, 5, [5, 2, 4], new Rng(7));
    for (let T = 1; T <= 140; T++) r.forward(new Float64Array(T * 2), { batch: 1, steps: T }); // 280 kernels: past the bound of 256
    checkAgainstAlone(lstm, r, 3, 5, [1, 4, 4], new Rng(8));
    r.dispose();
    checkAgainstAlone(lstm, r, 2, 3, [2, 3], new Rng(9));
  });
});

describe("Recurrent: gradients against central finite differences (float64)", () => {
  for (const mod of [gru, lstm] as KernelModule[])
    it(`${mod.spec.name}: 2 layers, bidirectional, batch-first, lengths [5, 2, 4], nonzero initial and dFinal`, () => {
      expect(gradcheck(mod, { ...base, hidden: 3, inputSize: 2, layers: 2, bidirectional: true, batchFirst: true, seed: 6 }, 3, 5, [5, 2, 4])).toBeLessThan(1e-6);
    });
  it("sru (an output, D = H): 2 layers, bidirectional, through input projections l0.proj (2 → 3) and l1.proj (6 → 3)", () => {
    const opts = { ...base, hidden: 3, inputSize: 2, layers: 2, bidirectional: true, seed: 7 };
    const shapes = Object.fromEntries(new Recurrent(sru, opts).parameters.filter((p) => p.name.includes("proj")).map((p) => [p.name, p.shape]));
    expect(shapes).toEqual({ "l0.proj.W": [3, 2], "l0.proj.b": [3], "l1.proj.W": [3, 6], "l1.proj.b": [3] });
    expect(gradcheck(sru, opts, 3, 5, [4, 5, 2])).toBeLessThan(1e-6);
  });
  it("sru with inputSize = hidden, one direction, needs no projection", () => {
    expect(new Recurrent(sru, { ...base, hidden: 3, inputSize: 3 }).parameters.some((p) => p.name.includes("proj"))).toBe(false);
  });
  it("backward ADDS into grads, and no gradient reaches padding", () => {
    const r = new Recurrent(gru, { ...base, hidden: 3, inputSize: 2, seed: 8 }), rng = new Rng(10);
    const x = rand(5 * 3 * 2, rng);
    const { output } = r.forward(x, { batch: 3, steps: 5, lengths: [5, 2, 4] });
    const dOut = rand(output.length, rng);
    const once = r.backward(dOut).dInput, g1 = r.grads.slice();
    r.backward(dOut);
    expect(maxDiff(r.grads, g1.map((v) => 2 * v))).toBeLessThan(1e-12);
    for (const [t, e] of [[2, 1], [3, 1], [4, 1], [4, 2]] as const) expect(Array.from(once.subarray((t * 3 + e) * 2, (t * 3 + e) * 2 + 2))).toEqual([0, 0]);
    r.zeroGrad();
    expect(r.grads.every((v) => v === 0)).toBe(true);
  });
});

describe("Recurrent: dropout", () => {
  const opts = { ...base, hidden: 3, inputSize: 2, layers: 2, bidirectional: true, seed: 9 };
  it("in evaluation mode it is the layer without dropout; in training mode masks are reproducible from the seed", () => {
    const rng = new Rng(11), x = rand(5 * 3 * 2, rng), run = (r: Recurrent) => r.forward(x, { batch: 3, steps: 5, lengths: [5, 2, 4] }).output;
    const evalMode = new Recurrent(gru, { ...opts, dropout: 0.5 });
    evalMode.training = false;
    const plain = run(new Recurrent(gru, opts));
    expect(maxDiff(run(evalMode), plain)).toBe(0);
    const train = run(new Recurrent(gru, { ...opts, dropout: 0.5 }));
    expect(maxDiff(train, plain)).toBeGreaterThan(1e-3);
    expect(maxDiff(run(new Recurrent(gru, { ...opts, dropout: 0.5 })), train)).toBe(0);
  });
  it("training mode's gradients pass finite differences with the mask held fixed", () => {
    expect(gradcheck(gru, { ...opts, dropout: 0.4 }, 3, 5, [5, 2, 4], true)).toBeLessThan(1e-6);
  });
  it("a kept value is scaled by 1/(1 - p): seen through an identity second layer of an Elman RNN", () => {
    const p = 0.3, B = 8, T = 10, rng = new Rng(12), lengths = [10, 3, 7, 10, 1, 5, 9, 10];
    const r = new Recurrent(rnn, { ...base, hidden: 3, inputSize: 2, layers: 2, dropout: p, seed: 10 });
    const one = new Recurrent(rnn, { ...base, hidden: 3, inputSize: 2, seed: 10 });
    one.params.set(cellParams(r, "l0"));
    // layer 2: h = tanh(x + 0·h), so atanh of its output is its input, the masked output of layer 1
    for (const q of r.parameters) if (q.name.startsWith("l1.")) r.params.fill(0, q.offset, q.offset + q.length);
    const Wih = r.parameters.find((q) => q.name === "l1.Wih")!;
    for (let i = 0; i < 3; i++) r.params[Wih.offset + i * 3 + i] = 1;
    const x = rand(T * B * 2, rng), h1 = one.forward(x, { batch: B, steps: T, lengths }).output, h2 = r.forward(x, { batch: B, steps: T, lengths }).output;
    let dropped = 0, kept = 0;
    for (let t = 0; t < T; t++)
      for (let e = 0; e < B; e++)
        for (let k = 0; k < 3 && t < lengths[e]!; k++) {
          const i = (t * B + e) * 3, m = Math.atanh(h2[i + k]!) / h1[i + k]!;
          if (Math.abs(h1[i + k]!) < 1e-3) continue;
          if (Math.abs(m) < 1e-9) dropped++;
          else (expect(m).toBeCloseTo(1 / (1 - p), 9), kept++);
        }
    expect(dropped + kept).toBeGreaterThan(150);
    expect(dropped / (dropped + kept)).toBeGreaterThan(p - 0.15);
    expect(dropped / (dropped + kept)).toBeLessThan(p + 0.15);
  });
});

describe("Recurrent: parameters, initialisation and buffers", () => {
  it("names and shapes in PyTorch's order: l0, l0_reverse, l1, …; the flat size before construction", () => {
    const opts = { ...base, hidden: 3, inputSize: 2, layers: 2, bidirectional: true };
    const r = new Recurrent(gru, opts), names = r.parameters.map((p) => p.name);
    expect([names[0], names[12], names[24], names[36]]).toEqual(["l0.Wir", "l0_reverse.Wir", "l1.Wir", "l1_reverse.Wir"]);
    expect(r.parameters[24]!.shape).toEqual([3, 6]);
    const size = Recurrent.size(gru, opts);
    expect(size).toBe(2 * (3 * 3 * 2 + 3 * 3 * 3 + 6 * 3) + 2 * (3 * 3 * 6 + 3 * 3 * 3 + 6 * 3));
    expect(r.parameters.reduce((s, p) => s + p.length, 0)).toBe(size);
  });
  it("initialisation is deterministic per seed and differs between layers and directions", () => {
    const opts = { ...base, hidden: 3, inputSize: 3, layers: 2, bidirectional: true };
    const a = new Recurrent(gru, { ...opts, seed: 1 }), b = new Recurrent(gru, { ...opts, seed: 1 }), c = new Recurrent(gru, { ...opts, seed: 2 });
    expect(maxDiff(a.params, b.params)).toBe(0);
    expect(maxDiff(a.params, c.params)).toBeGreaterThan(0);
    const w = (r: Recurrent, prefix: string) => cellParams(r, prefix).subarray(0, 9);
    expect(maxDiff(w(a, "l0"), w(a, "l0_reverse"))).toBeGreaterThan(0);
    expect(maxDiff(w(a, "l0_reverse"), w(a, "l1_reverse"))).toBeGreaterThan(0);
    // each slice by the cell's own init rule: uniform ±1/sqrt(H)
    expect(a.params.every((v) => Math.abs(v) <= 1 / Math.sqrt(3))).toBe(true);
  });
  it("external buffers: views of a larger one, initialised in place; float32 by default", () => {
    const opts = { ...base, hidden: 3, inputSize: 2 }, n = Recurrent.size(gru, opts), big = new Float64Array(n + 4), grads = new Float64Array(n + 4);
    const r = new Recurrent(gru, { ...opts, params: big.subarray(2, 2 + n), grads: grads.subarray(2, 2 + n) });
    expect(r.params.buffer).toBe(big.buffer);
    expect(big[1]).toBe(0);
    expect(big[2]).not.toBe(0);
    const x = rand(5 * 3 * 2, new Rng(1));
    r.backward(r.forward(x, { batch: 3, steps: 5 }).output);
    expect(grads.subarray(2, 2 + n).some((v) => v !== 0)).toBe(true);
    expect([grads[0], grads[1], grads[n + 2], grads[n + 3]]).toEqual([0, 0, 0, 0]);
    const r32 = new Recurrent(gru, { hidden: 3, inputSize: 2, backend: "ts" });
    expect(r32.params).toBeInstanceOf(Float32Array);
    expect(r32.forward(new Float32Array(3 * 2 * 2), { batch: 2, steps: 3 }).output).toBeInstanceOf(Float32Array);
  });
});

describe("Recurrent: float32 on the default backend", () => {
  it("agrees with float64 on the ts backend, forward and backward (2 layers, bidirectional, lengths)", () => {
    const o = { hidden: 8, inputSize: 5, layers: 2, bidirectional: true, batchFirst: true, seed: 3 }, B = 6, T = 9, lengths = [9, 3, 9, 1, 5, 7];
    const r64 = new Recurrent(lstm, { ...o, precision: 64, backend: "ts" }), r32 = new Recurrent(lstm, o), x = rand(B * T * 5, new Rng(13));
    r64.params.set(r32.params); // the float32 initialisation, so that only the arithmetic differs
    const a = r64.forward(x, { batch: B, steps: T, lengths }), b = r32.forward(Float32Array.from(x), { batch: B, steps: T, lengths });
    expect(maxDiff(a.output, b.output)).toBeLessThan(1e-5);
    expect(maxDiff(a.final.c!, b.final.c!)).toBeLessThan(1e-5);
    expect(maxDiff(r64.backward(a.output).dInput, r32.backward(b.output).dInput)).toBeLessThan(1e-5);
    expect(maxDiff(r64.grads, r32.grads)).toBeLessThan(1e-4);
    r32.dispose();
  });
});

describe("Recurrent: clear errors", () => {
  const opts = { ...base, hidden: 3, inputSize: 2 };
  const fails = (f: () => unknown, message: RegExp) => expect(f).toThrow(expect.objectContaining({ name: "LayerError", message: expect.stringMatching(message) }));
  it("options and cells", () => {
    fails(() => new Recurrent(gru, { ...opts, hidden: 0 }), /hidden must be a positive integer, got 0/);
    fails(() => new Recurrent(gru, { ...opts, layers: 1.5 }), /layers must be a positive integer/);
    fails(() => new Recurrent(gru, { ...opts, dropout: 1 }), /dropout must be a probability in \[0, 1\), got 1/);
    fails(() => new Recurrent(gru, { ...opts, sizes: { K: 2 } }), /cell "gru" has no size K \(its sizes: D, H\)/);
    fails(() => new Recurrent(gru, { ...opts, sizes: { D: 2 } }), /size D is set by inputSize/);
    const twoInputs: KernelModule = { ...gru, spec: { ...gru.spec, inputs: [{ name: "x", size: "D" }, { name: "y", size: "D" }] } } as KernelModule;
    fails(() => new Recurrent(twoInputs, opts), /cell "gru" has 2 inputs \(x, y\); a recurrent layer feeds exactly one/);
    const extraSize: KernelModule = { ...gru, spec: { ...gru.spec, sizes: ["D", "H", "K"] } } as KernelModule;
    fails(() => new Recurrent(extraSize, opts), /has size K besides its input and hidden sizes: give them in sizes/);
    fails(() => new Recurrent(gru, { ...opts, params: new Float64Array(5) }), /params must have length \d+ \(Recurrent.size/);
    expect(new LayerError("x")).toBeInstanceOf(Error);
  });
  it("forward and backward arguments", () => {
    const r = new Recurrent(gru, opts), x = new Float64Array(5 * 3 * 2), go = (o: object) => r.forward(x, { batch: 3, steps: 5, ...o });
    fails(() => r.backward(new Float64Array(45)), /backward needs a forward first/);
    fails(() => r.forward(new Float32Array(30), { batch: 3, steps: 5 }), /x must be a Float64Array \(precision 64\), got Float32Array/);
    fails(() => r.forward(new Float64Array(29), { batch: 3, steps: 5 }), /x must have length 30 \(steps×batch×inputSize = 5×3×2\), got 29/);
    fails(() => go({ batch: 0 }), /batch must be a positive integer, got 0/);
    fails(() => go({ lengths: [5, 2] }), /lengths must hold one length per example \(3\), got 2/);
    fails(() => go({ lengths: [5, 0, 4] }), /lengths\[1\] must be an integer in \[1, 5\] \(steps\), got 0/);
    fails(() => go({ lengths: [5, 6, 4] }), /lengths\[1\] must be an integer in \[1, 5\]/);
    fails(() => go({ lengths: [5, 2.5, 4] }), /lengths\[1\] must be an integer/);
    fails(() => go({ initial: { h: new Float64Array(8) } }), /initial.h must have length 9 \(\(layers·directions\)×batch×H = 1×3×3\), got 8/);
    fails(() => go({ initial: { c: new Float64Array(9) } }), /initial: "c" is not a state of cell "gru" \(its states: h\)/);
    go({});
    fails(() => r.backward(new Float64Array(44)), /dOutput must have length 45/);
    fails(() => r.backward(new Float64Array(45), { h: new Float64Array(2) }), /dFinal.h must have length 9/);
  });
});

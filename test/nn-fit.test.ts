// nn/loss.ts, nn/model.ts and nn/fit.ts against outside references: losses against hand-computed
// values and central finite differences; the Model's gradient (recurrent layer and readout, with
// lengths, readout at the last step and at every step) against finite differences in float64 on the
// ts backend; fit on a small learnable task (sign of a sequence's sum, lengths 2..8) scored on held-out
// data; early stopping checked against the history it reports; data errors by their messages.
import { describe, expect, it } from "vitest";
import * as gru from "../generated/gru.ts";
import * as lstm from "../generated/lstm.ts";
import { Rng } from "../runtime/rng.ts";
import type { FloatArray, KernelModule } from "../runtime/kernel.ts";
import { type Batch, FitError, evaluate, fit, predict } from "../nn/fit.ts";
import { LossError, correct, crossEntropy, mse, softmaxXent, stepWeights } from "../nn/loss.ts";
import { Model, ModelError, type ModelOptions } from "../nn/model.ts";
import { adam, sgd } from "../nn/optim.ts";
import { stepLR } from "../nn/schedule.ts";

const rand = (n: number, rng: Rng) => Float64Array.from({ length: n }, () => rng.uniform(-1, 1));

/** Central finite difference of f at x[i], in float64. */
function fd(f: (x: Float64Array) => number, x: Float64Array, i: number, h = 1e-6): number {
  const a = x.slice(), b = x.slice();
  a[i]! += h;
  b[i]! -= h;
  return (f(a) - f(b)) / (2 * h);
}

describe("losses", () => {
  it("mse by hand: mean over rows and outputs; padding rows count for nothing", () => {
    const g = new Float64Array(2);
    expect(mse(new Float64Array([1, 3]), [0, 1], null, 1, g)).toBe(2.5); // (1 + 4) / 2
    expect([...g]).toEqual([1, 2]); // 2 e / 2
    const g4 = new Float64Array(4);
    expect(mse(new Float64Array([1, 3, 9, 9]), [0, 1, 0, 0], [1, 1, 0, 0], 1, g4)).toBe(2.5);
    expect([...g4]).toEqual([1, 2, 0, 0]);
  });
  it("crossEntropy by hand: uniform logits give log O; the gradient is softmax minus one-hot over rows", () => {
    const g = new Float64Array(8);
    expect(crossEntropy(new Float64Array(8), [2, 0], null, 4, g)).toBeCloseTo(Math.log(4), 15);
    expect([...g]).toEqual([0.125, 0.125, -0.375, 0.125, -0.375, 0.125, 0.125, 0.125]);
    // log-sum-exp: 1000 - (1000 + log(1 + e^-1000)) would overflow without the shift
    expect(crossEntropy(new Float64Array([1000, 0]), [1], null, 2, new Float64Array(2))).toBe(1000);
    expect(() => crossEntropy(new Float64Array(4), [0, 2], null, 2, new Float64Array(4))).toThrow(LossError);
  });
  it("crossEntropy equals softmaxXent with one-hot targets, and ignores weight-0 rows", () => {
    const rng = new Rng(3), z = rand(12, rng), w = [1, 0, 1, 1], c = [1, 0, 2, 2];
    const onehot = Float64Array.from({ length: 12 }, (_, i) => (c[Math.floor(i / 3)] === i % 3 ? 1 : 0));
    const g1 = new Float64Array(12), g2 = new Float64Array(12);
    expect(crossEntropy(z, c, w, 3, g1)).toBeCloseTo(softmaxXent(z, onehot, w, 3, g2), 14);
    for (let i = 0; i < 12; i++) expect(g1[i]).toBeCloseTo(g2[i]!, 14);
    expect([...g1.subarray(3, 6)]).toEqual([0, 0, 0]);
    const z2 = z.slice();
    z2.fill(50, 3, 6); // the ignored row's logits change nothing
    expect(crossEntropy(z2, c, w, 3, new Float64Array(12))).toBe(crossEntropy(z, c, w, 3, new Float64Array(12)));
  });
  it("dPred matches finite differences (weighted rows)", () => {
    const rng = new Rng(5), p = rand(12, rng), y = rand(12, rng), w = [1, 0, 1, 1], c = [0, 2, 1, 1];
    for (const [name, f] of [["mse", (q: Float64Array, g: FloatArray) => mse(q, y, w, 3, g)], ["crossEntropy", (q: Float64Array, g: FloatArray) => crossEntropy(q, c, w, 3, g)]] as const) {
      const g = new Float64Array(12);
      f(p, g);
      for (let i = 0; i < 12; i++) expect(Math.abs(g[i]! - fd((q) => f(q, new Float64Array(12)), p, i)), `${name} [${i}]`).toBeLessThan(1e-8);
    }
  });
  it("stepWeights mark the steps within each length, in either layout; accuracy counts only those", () => {
    expect([...stepWeights(2, 3, [3, 1])!]).toEqual([1, 1, 1, 0, 1, 0]);
    expect([...stepWeights(2, 3, [3, 1], true)!]).toEqual([1, 1, 1, 1, 0, 0]);
    expect(stepWeights(2, 3, undefined)).toBeNull();
    expect(correct([0, 1, 1, 0, 5, 0], [1, 1, 0], [1, 0, 1], 2)).toEqual({ correct: 2, count: 2 });
  });
});

describe("Model: gradients against finite differences (float64, ts backend)", () => {
  const cases: [string, KernelModule, Partial<ModelOptions>][] = [
    ["GRU, readout at the last step", gru, { at: "last" }],
    ["GRU, readout at every step", gru, { at: "every" }],
    ["LSTM, bidirectional, batch-first, at the last step", lstm, { at: "last", bidirectional: true, batchFirst: true }],
    ["GRU, 2 layers, bidirectional, at every step", gru, { at: "every", bidirectional: true, layers: 2 }],
  ];
  for (const [title, mod, extra] of cases)
    it(title, () => {
      const B = 3, T = 4, I = 2, O = 3, lengths = [4, 2, 1], rng = new Rng(11);
      const m = new Model(mod, { hidden: 3, inputSize: I, outputs: O, precision: 64, backend: "ts", seed: 2, ...extra });
      const x = rand(T * B * I, rng), rows = m.at === "last" ? B : T * B, c = rand(rows * O, rng);
      // L = Σ c·pred: its dPred is c
      const L = (p: Float64Array) => {
        m.params.set(p);
        return Array.from(m.forward(x, { batch: B, steps: T, lengths })).reduce((s, v, i) => s + v * c[i]!, 0);
      };
      const p0 = Float64Array.from(m.params);
      L(p0);
      m.zeroGrad();
      m.backward(c);
      const g = Float64Array.from(m.grads);
      let worst = 0;
      for (let i = 0; i < p0.length; i++) worst = Math.max(worst, Math.abs(g[i]! - fd(L, p0, i)));
      expect(worst).toBeLessThan(1e-7);
      // each example run alone (batch 1, its own length, no padding) gives its rows of the batched output
      m.params.set(p0);
      const batched = m.forward(x, { batch: B, steps: T, lengths }).slice(), bf = extra.batchFirst === true;
      lengths.forEach((len, b) => {
        const xb = new Float64Array(len * I);
        for (let t = 0; t < len; t++) xb.set(x.subarray((bf ? b * T + t : t * B + b) * I, (bf ? b * T + t : t * B + b) * I + I), t * I);
        const alone = m.forward(xb, { batch: 1, steps: len });
        for (let t = 0; t < (m.at === "last" ? 1 : len); t++) {
          const r = m.at === "last" ? b : bf ? b * T + t : t * B + b;
          for (let o = 0; o < O; o++) expect(batched[r * O + o]).toBeCloseTo(alone[t * O + o]!, 12);
        }
      });
      expect(m.parameters.at(-2)).toMatchObject({ name: "readout.W", shape: [O, m.width] });
      expect(m.parameters.at(-1)).toMatchObject({ name: "readout.b", offset: p0.length - O, length: O });
    });

  it("the readout starts U(±1/sqrt(width)) as nn.Linear, and misuse is a ModelError", () => {
    const m = new Model(gru, { hidden: 16, inputSize: 2, outputs: 50, precision: 64, backend: "ts", bidirectional: true });
    const W = m.params.subarray(m.parameters.at(-2)!.offset), k = 1 / Math.sqrt(32);
    expect(Math.max(...W.map(Math.abs))).toBeLessThanOrEqual(k);
    expect(Math.max(...W.map(Math.abs))).toBeGreaterThan(0.9 * k);
    expect(() => new Model(gru, { hidden: 4, inputSize: 2, outputs: 0 })).toThrow(ModelError);
    expect(() => m.backward(new Float64Array(3))).toThrow(/backward needs a forward first/);
  });
});

/** The sign of a sequence's sum: class 1 when positive; lengths 2..8, one feature in [-1, 1]. */
function signTask(n: number, seed: number): { x: number[][][]; y: number[] } {
  const rng = new Rng(seed), x: number[][][] = [], y: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = Array.from({ length: 2 + Math.floor(rng.next() * 7) }, () => [rng.uniform(-1, 1)]);
    x.push(s);
    y.push(s.reduce((a, v) => a + v[0]!, 0) > 0 ? 1 : 0);
  }
  return { x, y };
}

describe("fit, evaluate, predict", () => {
  it("learns the sign of a variable-length sum to high held-out accuracy", async () => {
    const m = new Model(gru, { hidden: 8, inputSize: 1, outputs: 2, backend: "ts", seed: 1 });
    const val = signTask(256, 2), seen: number[] = [];
    const r = await fit(m, signTask(512, 1), { epochs: 12, optimizer: adam({ lr: 0.03 }), validation: val, patience: 4, onProgress: (p) => seen.push(p.epoch) });
    expect(seen).toEqual(r.history.map((p) => p.epoch));
    const e = await evaluate(m, val);
    expect(e.accuracy).toBeGreaterThan(0.9);
    // accuracy by hand from predict's logits
    const logits = predict(m, val.x) as number[][];
    expect(logits.filter((z, i) => (z[1]! > z[0]! ? 1 : 0) === val.y[i]).length / val.y.length).toBe(e.accuracy);
    expect(r.history[0]!.step).toBe(16); // 512 / 32 updates an epoch
  });

  it("early stopping stops `patience` epochs after the best, and restores the best epoch's parameters", async () => {
    const m = new Model(gru, { hidden: 6, inputSize: 1, outputs: 2, backend: "ts", precision: 64, seed: 4 });
    const train = signTask(128, 5), flipped = { x: train.x, y: train.y.map((c) => 1 - c) }; // validation rewards the opposite
    const snapshots: Float64Array[] = [];
    const r = await fit(m, train, { epochs: 30, batchSize: 16, optimizer: adam({ lr: 0.05 }), validation: flipped, patience: 2, onProgress: () => snapshots.push(Float64Array.from(m.params)) });
    const losses = r.history.map((p) => p.valLoss!), best = losses.indexOf(Math.min(...losses));
    expect(r.stoppedEarly).toBe(true);
    expect(r.bestEpoch).toBe(best + 1);
    expect(r.history.length).toBe(best + 1 + 2); // stopped after 2 epochs without improvement (patience 2)
    expect([...m.params]).toEqual([...snapshots[best]!]);
    expect((await evaluate(m, flipped)).loss).toBeCloseTo(losses[best]!, 12);
  });

  it("readout at every step with per-step class targets, a schedule, clipping and SGD", async () => {
    // class of each step: is the running sum positive
    const rng = new Rng(9), x: number[][][] = [], y: number[][] = [];
    for (let i = 0; i < 256; i++) {
      let s = 0;
      const seq = Array.from({ length: 1 + Math.floor(rng.next() * 6) }, () => [rng.uniform(-1, 1)]);
      x.push(seq);
      y.push(seq.map((v) => ((s += v[0]!) > 0 ? 1 : 0)));
    }
    const m = new Model(gru, { hidden: 8, inputSize: 1, outputs: 2, at: "every", backend: "ts", seed: 3 });
    const r = await fit(m, { x, y }, { epochs: 10, batchSize: 16, optimizer: sgd({ lr: 0.5, momentum: 0.9 }), schedule: stepLR({ lr: 0.5, stepSize: 80, gamma: 0.5 }), clip: 1 });
    expect(r.optimizer.lr).toBe(0.5 * 0.5 ** Math.floor((r.optimizer.t - 1) / 80));
    const e = await evaluate(m, { x, y });
    expect(e.accuracy).toBeGreaterThan(0.85);
    expect((predict(m, [[[1], [-3], [5]]]) as number[][][])[0]!.length).toBe(3);
  });

  it("regression: scalar targets with one output default to mse, and beat predicting the mean", async () => {
    const { x } = signTask(384, 12), y = x.map((s) => s.reduce((a, v) => a + v[0]!, 0) / 4);
    const mean = y.reduce((a, v) => a + v, 0) / y.length, variance = y.reduce((a, v) => a + (v - mean) ** 2, 0) / y.length;
    const m = new Model(gru, { hidden: 8, inputSize: 1, outputs: 1, backend: "ts", seed: 2 });
    const r = await fit(m, { x, y }, { epochs: 10, optimizer: adam({ lr: 0.02 }) });
    expect(r.history.at(-1)!.metric).toBeNull();
    const e = await evaluate(m, { x, y });
    expect(e.accuracy).toBeNull();
    expect(e.loss).toBeLessThan(0.2 * variance);
  });

  it("a batch-first model pads and predicts as the time-major one with the same parameters", async () => {
    const data = signTask(40, 8), opts = { hidden: 5, inputSize: 1, outputs: 2, backend: "ts", precision: 64, seed: 6 } as const;
    for (const at of ["last", "every"] as const) {
      const tm = new Model(gru, { ...opts, at }), bf = new Model(gru, { ...opts, at, batchFirst: true });
      expect([...bf.params]).toEqual([...tm.params]);
      const y = at === "last" ? data.y : data.x.map((s) => s.map(() => 1));
      const a = predict(tm, data.x, { batchSize: 7 }), b = predict(bf, data.x, { batchSize: 7 });
      expect(b.flat(2).map((v) => Math.round(v * 1e12))).toEqual(a.flat(2).map((v) => Math.round(v * 1e12)));
      expect((await evaluate(bf, { x: data.x, y }, { batchSize: 7 })).loss).toBeCloseTo((await evaluate(tm, { x: data.x, y }, { batchSize: 7 })).loss, 12);
    }
  });

  it("takes ready batches from an array or an async iterable; a used-up iterator is an error", async () => {
    const m = new Model(gru, { hidden: 4, inputSize: 2, outputs: 1, backend: "ts", batchFirst: true });
    const b: Batch = { x: new Float32Array(2 * 3 * 2).fill(0.5), batch: 2, steps: 3, lengths: [3, 1], y: [1, -1] };
    expect((await fit(m, [b, b], { epochs: 2 })).history[1]!.step).toBe(4);
    const gen = async function* () {
      yield b;
    };
    expect((await fit(m, { [Symbol.asyncIterator]: gen }, { epochs: 2 })).history.length).toBe(2);
    await expect(fit(m, gen(), { epochs: 2 })).rejects.toThrow(/epoch 2 had no batches: an iterator is used up/);
    await expect(fit(m, [{ ...b, lengths: [3, 0] }])).rejects.toThrow(/data, batch 0: lengths\[1\] is 0/);
    await expect(fit(m, [{ ...b, y: [1] }])).rejects.toThrow(/data, batch 0: y must hold 2 rows/);
    await expect(fit(m, [b, { ...b, y: [1, NaN] }])).rejects.toThrow(/data, batch 1: y\[1\] is NaN; targets must be finite numbers/);
    const every = new Model(gru, { hidden: 4, inputSize: 2, outputs: 3, at: "every", backend: "ts" });
    const classes = { ...b, lengths: [3, 1], y: [0, 1, 2, -100, 1, -100] }; // T×B rows; the padding rows hold an ignore index
    await expect(fit(every, [classes], { loss: "crossEntropy", epochs: 1 })).resolves.toBeTruthy();
    await expect(fit(every, [{ ...classes, y: [0, 1, 3, -100, 1, -100] }], { loss: "crossEntropy" })).rejects.toThrow(/batch 0: y\[2\] is 3; a class is an integer in \[0, 3\)/);
  });

  it("malformed data is a FitError naming the example", async () => {
    const m = new Model(gru, { hidden: 4, inputSize: 2, outputs: 3, backend: "ts" });
    const ok = [[0, 1], [2, 3]];
    const bad: [unknown, RegExp][] = [
      [{ x: [ok, [[0, 1], [2]]], y: [0, 1] }, /data: x\[1\]\[1\] has 1 features; the model takes 2/],
      [{ x: [ok, []], y: [0, 1] }, /data: x\[1\] has no steps \(its length is 0\)/],
      [{ x: [ok, ok], y: [0, 3] }, /data: y\[1\] is 3: a class must be an integer in \[0, 3\)/],
      [{ x: [ok, [[0, NaN]]], y: [0, 1] }, /data: x\[1\], step 0, feature 1 is NaN/],
      [{ x: [ok, ok], y: [0] }, /data: y has 1 items, x 2/],
      [{ x: [ok, ok], y: [0, NaN] }, /data: y\[1\] is NaN: a class must be an integer in \[0, 3\)/],
      [{ x: [ok, ok], y: [0, [1, 2, 3]] }, /data: y\[1\] is \[1,2,3\]: a class must be/],
    ];
    for (const [data, msg] of bad) await expect(fit(m, data as never)).rejects.toThrow(msg);
    await expect(fit(m, { x: [ok], y: [0] }, { validation: { x: [ok], y: [1.5] } })).rejects.toThrow(/validation: y\[0\] is 1.5/);
    await expect(fit(m, { x: [ok], y: [0] })).resolves.toBeTruthy();
    // steps as typed arrays, and a whole sequence as one flat array, are the same data
    const flat = predict(m, [Float32Array.of(0, 1, 2, 3)]), steps = predict(m, [[Float64Array.of(0, 1), Float64Array.of(2, 3)]]);
    expect(flat).toEqual(predict(m, [ok]));
    expect(steps).toEqual(flat);
    expect(() => predict(m, [Float64Array.of(0, 1, 2)])).toThrow(/x: x\[0\] has 3 numbers, not a positive multiple of the model's 2 features/);
    await expect(fit(m, { x: [ok], y: [0] }, { epochs: 0 })).rejects.toThrow(FitError);
    const reg = new Model(gru, { hidden: 4, inputSize: 2, outputs: 2, at: "every", backend: "ts" });
    await expect(fit(reg, { x: [ok, ok], y: [[[1, 2], [3, 4]], [[1, 2], [3, Infinity]]] }, { loss: "mse" })).rejects.toThrow(/data: y\[1\]\[1\]\[1\] is Infinity/);
    await expect(fit(reg, { x: [ok, ok], y: [[[1, 2], [3, 4]], [[1, 2]]] }, { loss: "mse" })).rejects.toThrow(/data: y\[1\] must have one target per step: x\[1\] has 2 steps, y\[1\] 1/);
  });
});

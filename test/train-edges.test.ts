// Training at its edges, in process on the committed generated kernels (the unit tier): a diverged
// run stops at its first bad step, naming it, and never saves its NaN parameters; --init starts
// layer 1 from a cellforge parameter file (what `convert --to cellforge` writes) and refuses one of
// other sizes; --out must be a folder.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as gru from "../generated/gru.ts";
import { initFrom, outFolder } from "../src/train/runs.ts";
import { writeCellParams } from "../src/interop/convert.ts";
import { loadCell } from "../src/load.ts";
import { CheckpointError } from "../src/train/checkpoint.ts";
import type { CellKernels } from "../src/train/model.ts";
import { DIVERGENCE, DivergedError, type TrainConfig, Trainer } from "../src/train/trainer.ts";

const TMP = mkdtempSync(join(tmpdir(), "cellforge-edges-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const GRU = gru as unknown as CellKernels;
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  cell: "gru", task: { name: "adding", T: 10 }, hidden: 8, layers: 1, B: 8, steps: 200, seed: 7, precision: 32,
  optimizer: { kind: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, clip: 1, evalEvery: 10, evalSize: 32, threshold: 0.01, ...over,
});

describe("divergence", () => {
  for (const precision of [32, 64] as const)
    it(`SGD at lr 1e6 without clipping stops at its first non-finite step, float${precision}`, async () => {
      const tr = new Trainer(GRU, config({ precision, clip: 0, optimizer: { kind: "sgd", lr: 1e6, momentum: 0.9 } }));
      const f = join(TMP, `good-${precision}.ckpt`);
      let err: unknown;
      try {
        await tr.run({ checkpoint: { path: f, every: 1 } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DivergedError);
      const d = err as DivergedError;
      expect(d.step).toBeLessThan(200);
      expect(d.message).toMatch(new RegExp(`^training diverged at step ${d.step}: (the training loss is (NaN|-?Infinity)|the gradient is not finite: (l0|readout)\\.\\w+\\[\\d+\\] = (NaN|-?Infinity)|the update made \\S+ = (NaN|-?Infinity))`));
      // every logged row is finite: the bad step was never evaluated or averaged in
      for (const r of tr.history) for (const v of [r.evalLoss, r.metric, r.trainLoss ?? 0]) expect(Number.isFinite(v)).toBe(true);
      // the checkpoint saved every step is the last good one: the step before the bad one, or, when an
      // evaluation on the way rose above the bar of DIVERGENCE (no checkpoint is written while it is), the last step before that
      const bar = tr.divergenceBar(), above = (s: number) => (tr.history.filter((r) => r.step <= s).at(-1)?.evalLoss ?? 0) > bar;
      let good = d.step - 1;
      while (good > 0 && above(good)) good--;
      const kept = Trainer.read(f);
      expect(kept.header.meta.step).toBe(good);
      expect([...kept.sections.get("params")!].every(Number.isFinite)).toBe(true);
      if (tr.step === d.step - 1 && [...tr.model.params].some((x) => !Number.isFinite(x))) expect(() => tr.save(f)).toThrow(CheckpointError);
      expect(Trainer.read(f).header.meta.step).toBe(good);
    });

  it("Adam at lr 1e6 without clipping stays finite, and stops when its evaluation loss runs away (DIVERGENCE)", async () => {
    const tr = new Trainer(GRU, config({ steps: 60, evalEvery: 2, clip: 0, optimizer: { kind: "adam", lr: 1e6, beta1: 0.9, beta2: 0.999, eps: 1e-8 } }));
    const f = join(TMP, "adam-runaway.ckpt");
    let err: unknown;
    try {
      await tr.run({ checkpoint: { path: f, every: 1 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DivergedError);
    const d = err as DivergedError;
    // adding problem: a model that outputs zeros scores E[(u1 + u2)^2] = 1 + 1/6 on average, so the bar is 100 times about that or the start's loss
    const h = tr.history, bar = tr.divergenceBar();
    expect(bar).toBeGreaterThanOrEqual(DIVERGENCE.factor * h[0]!.evalLoss);
    expect(bar).toBeGreaterThan(DIVERGENCE.factor * 0.7);
    expect(bar).toBeLessThanOrEqual(DIVERGENCE.factor * Math.max(2, h[0]!.evalLoss));
    const over = h.slice(-DIVERGENCE.evaluations);
    for (const r of over) expect(r.evalLoss).toBeGreaterThan(bar);
    expect(h.at(-DIVERGENCE.evaluations - 1)!.evalLoss).toBeLessThanOrEqual(bar);
    expect(d.step).toBe(over[0]!.step);
    expect(d.message).toMatch(new RegExp(`^training diverged at step ${d.step}: the evaluation loss rose above 100 × .* and stayed there for 3 evaluations: .*; stopped at step ${tr.step}$`));
    for (const x of tr.model.params) expect(Number.isFinite(x)).toBe(true); // non-finite numbers alone would not have stopped it
    // nothing is saved past the bar: the checkpoint kept is from before the first evaluation over it
    expect(() => tr.save(f)).toThrow(CheckpointError);
    expect(Trainer.read(f).header.meta.step).toBeLessThan(d.step);
  });

  it("a sane run does not trip the checks", async () => {
    const tr = new Trainer(GRU, config({ steps: 30 }));
    expect(await tr.run()).toBe("done");
    expect(tr.step).toBe(30);
  });
});

describe("--init: layer 1 from a cellforge parameter file", () => {
  const paramsFile = async (D: number, H: number, name: string) => {
    const cell = await loadCell("gru");
    const params = Object.fromEntries(cell.params.map((p, i) => {
      const n = p.node.type.shape.map((d) => (d.key === "D" ? D : H)).reduce((a, b) => a * b, 1);
      return [p.name, Float64Array.from({ length: n }, (_, k) => Math.sin(1 + i * 31 + k) / 3)];
    }));
    const f = join(TMP, name);
    writeFileSync(f, JSON.stringify(writeCellParams(cell, { sizes: { D, H }, params })));
    return { cell, f, params };
  };

  it("the file's numbers become layer 1's parameters; the readout keeps its seeded start", async () => {
    const { cell, f, params } = await paramsFile(2, 8, "p.json");
    const tr = new Trainer(GRU, config({ init: f })), fresh = new Trainer(GRU, config());
    initFrom(tr, cell, f);
    expect(tr.model.parameters.filter((s) => s.name.startsWith("l0.")).map((s) => s.name.slice(3))).toEqual(cell.params.map((p) => p.name));
    for (const s of tr.model.parameters) {
      const got = tr.model.params.subarray(s.offset, s.offset + s.length);
      if (s.name.startsWith("l0.")) expect(Array.from(got)).toEqual(Array.from(Float32Array.from(params[s.name.slice(3)]!)));
      else expect(Array.from(got)).toEqual(Array.from(fresh.model.params.subarray(s.offset, s.offset + s.length)));
    }
    expect(await tr.run({ shouldStop: () => tr.step === 5 })).toBe("stopped");
  });

  it("other sizes, more layers, a missing or broken file: each says what is wrong", async () => {
    const { cell, f } = await paramsFile(2, 16, "p16.json");
    expect(() => initFrom(new Trainer(GRU, config()), cell, f)).toThrow(/--init .*p16\.json: the parameters have D = 2, H = 16; this run's layer 1 has H = 8 \(--hidden\)/);
    const g = (await paramsFile(3, 8, "p3.json")).f;
    expect(() => initFrom(new Trainer(GRU, config()), cell, g)).toThrow(/the parameters have D = 3, H = 8; this run's layer 1 has D = 2 \(the adding problem.*'s input size\)/);
    expect(() => initFrom(new Trainer(GRU, config({ layers: 2 })), cell, f)).toThrow(/one cell's parameters, for a 1-layer model; this run asks --layers 2/);
    expect(() => initFrom(new Trainer(GRU, config()), cell, join(TMP, "none.json"))).toThrow(/--init .*none\.json: no such file/);
    expect(() => initFrom(new Trainer(GRU, config()), cell, TMP)).toThrow(/is a folder, not a parameter file/);
    const bad = join(TMP, "bad.json");
    writeFileSync(bad, JSON.stringify({ weight_ih_l0: [[1]] }));
    expect(() => initFrom(new Trainer(GRU, config()), cell, bad)).toThrow(/--init .*bad\.json: cellforge parameters are \{ "cell": "gru".*make one with cellforge convert --from pytorch\|keras --to cellforge gru/);
  });
});

describe("--out", () => {
  it("a file is refused by name; a missing folder is made", () => {
    const file = join(TMP, "a-file");
    writeFileSync(file, "x");
    expect(() => outFolder(file)).toThrow(/--out .*a-file: is a file; --out names a folder/);
    expect(() => outFolder(join(file, "sub"))).toThrow(/--out .*a-file\/sub: cannot make this folder \(a part of the path is a file\)/);
    outFolder(join(TMP, "new", "deeper"));
    expect(existsSync(join(TMP, "new", "deeper"))).toBe(true);
    expect(readFileSync(file, "utf8")).toBe("x");
  });
});

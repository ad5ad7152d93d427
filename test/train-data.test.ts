// `cellforge train <cell> --data <file>`, in process on the committed generated kernels (the unit
// tier; the spawned command is in test/train.test.ts): a JSON and a CSV dataset trained above chance,
// the files a run writes, the model file read back by nn/file.ts's loadModel predicting what the run
// reported (accuracy recounted here from the predictions, by argmax against the labels), and the
// mistakes: a malformed file names its line and column (exit 1), a flag of the other mode exits 2.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as gru from "../generated/gru.ts";
import { parseDataset } from "../nn/data.ts";
import { evaluate, predict } from "../nn/fit.ts";
import { loadModel } from "../nn/file.ts";
import { dataConfigFromFlags, trainCmd } from "../cli/train.ts";
import { type DataRunConfig, lossFor, planDataRun, runData, setUpDataRun, writeDataRun } from "../src/train/datarun.ts";
import type { CellKernels } from "../src/train/model.ts";

const TMP = mkdtempSync(join(tmpdir(), "cellforge-train-data-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const GRU = gru as unknown as CellKernels;

/** n sequences of 3 to 8 steps of 3 features in [-1, 1); the class is the feature with the largest sum (chance 1/3). */
function sequences(n: number, seed: number): { inputs: number[][][]; targets: number[] } {
  let s = seed;
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 1) / 2 ** 31;
  const inputs: number[][][] = [], targets: number[] = [];
  for (let i = 0; i < n; i++) {
    const T = 3 + Math.floor(r() * 6), seq: number[][] = [], sum = [0, 0, 0];
    for (let t = 0; t < T; t++) {
      const step = [0, 1, 2].map(() => Math.round((r() * 2 - 1) * 1000) / 1000);
      step.forEach((v, k) => (sum[k]! += v));
      seq.push(step);
    }
    inputs.push(seq);
    targets.push(sum.indexOf(Math.max(...sum)));
  }
  return { inputs, targets };
}

const csvOf = (d: { inputs: number[][][]; targets: number[] }) =>
  ["sequence,step,x0,x1,x2,label", ...d.inputs.flatMap((seq, i) => seq.map((st, t) => [`s${i}`, t, ...st, t === seq.length - 1 ? d.targets[i] : ""].join(",")))].join("\n") + "\n";

/** Accuracy by argmax of the model's outputs, counted here. */
const accuracyOf = (logits: number[][], labels: readonly number[]) => logits.filter((z, i) => z.indexOf(Math.max(...z)) === labels[i]).length / labels.length;

const config = (over: Partial<DataRunConfig>): DataRunConfig => ({
  ...dataConfigFromFlags("gru", { data: "unused" }), hidden: 16, epochs: 8, ...over,
});

/** Run a command with its stdout and stderr captured. */
async function quietly(f: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  let out = "", err = "";
  process.stdout.write = ((c: string | Uint8Array) => ((out += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
  try {
    return { code: await f(), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

describe("train --data: a run through fit()", () => {
  it("JSON with a validation file: above chance; the model file loads and predicts what the run reported", async () => {
    const train = sequences(240, 1), val = sequences(90, 2);
    writeFileSync(join(TMP, "train.json"), JSON.stringify(train));
    writeFileSync(join(TMP, "val.json"), JSON.stringify(val));
    const c = config({ data: join(TMP, "train.json"), val: join(TMP, "val.json") });
    const s = setUpDataRun(GRU, c);
    expect([s.loss, s.outputs, s.classes]).toEqual(["crossEntropy", 3, 3]);
    const r = await runData(c, s, () => {});
    const out = join(TMP, "json-run");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(out);
    const files = await writeDataRun(out, c, s, r, "test");
    for (const f of files) expect(existsSync(f), f).toBe(true);
    expect(readFileSync(files[3]!, "utf8")).toMatch(/^<svg/);
    expect(readFileSync(files[2]!, "utf8").split("\n")[0]).toBe("epoch,step,loss,val_loss,val_accuracy");
    const history = JSON.parse(readFileSync(files[1]!, "utf8"));
    expect(history.history).toHaveLength(8);
    expect(history.final).toEqual(r.final);
    // the file, read back: its predictions, counted here, are the accuracy the run reported, well above chance (1/3)
    const back = loadModel(GRU, readFileSync(files[0]!));
    const acc = accuracyOf(predict(back, val.inputs.map((seq) => seq.map((st) => Float64Array.from(st)))) as number[][], val.targets);
    expect(r.final.on).toBe("validation");
    expect(acc).toBe(r.final.accuracy);
    expect(acc).toBeGreaterThan(0.6);
    const e = await evaluate(back, parseDataset(JSON.stringify(val)), { loss: "crossEntropy", batchSize: c.batch });
    expect(e.loss).toBeCloseTo(r.final.loss, 12);
    s.model.dispose();
    back.dispose();
  }, 120_000);

  it("CSV with --val-split: the held-out share is seeded, the run above chance", async () => {
    const d = sequences(300, 3);
    writeFileSync(join(TMP, "train.csv"), csvOf(d));
    const c = config({ data: join(TMP, "train.csv"), valSplit: 0.2 });
    const plan = planDataRun(c);
    expect([plan.train.x.length, plan.val!.x.length]).toEqual([240, 60]);
    expect(planDataRun(c).val!.y).toEqual(plan.val!.y); // the same seed holds out the same sequences
    const s = setUpDataRun(GRU, c, plan), r = await runData(c, s, () => {});
    const acc = accuracyOf(predict(s.model, plan.val!.x) as number[][], plan.val!.y as number[]);
    expect(acc).toBe(r.final.accuracy);
    expect(acc).toBeGreaterThan(0.6);
    s.model.dispose();
  }, 120_000);

  it("the loss and readout size come from the targets, or --loss", () => {
    const ds = (y: unknown[]) => ({ x: [], y, features: 1, targetSize: Array.isArray(y[0]) ? (y[0] as unknown[]).length : 1 }) as never;
    const c = config({ data: "d.json" });
    expect(lossFor(c, [ds([0, 2, 1])])).toMatchObject({ loss: "crossEntropy", outputs: 3, classes: 3 });
    expect(lossFor(c, [ds([0.5, 2])])).toMatchObject({ loss: "mse", outputs: 1, classes: null });
    expect(lossFor(c, [ds([[1, 2], [3, 4]])])).toMatchObject({ loss: "mse", outputs: 2 });
    expect(lossFor({ ...c, loss: "mse" }, [ds([0, 2, 1])])).toMatchObject({ loss: "mse", outputs: 1 });
    expect(() => lossFor({ ...c, loss: "crossEntropy" }, [ds([0, 1.5])])).toThrow(/--loss crossEntropy takes class indices \(integers 0, 1, …\); d\.json has the target 1\.5/);
  });
});

describe("train --data: mistakes", () => {
  it("a malformed JSON or CSV file: the message names the line and column, exit 1, no stack trace", async () => {
    writeFileSync(join(TMP, "bad.json"), `{"inputs": [[[1, 2]],\n  [[3]]], "targets": [0, 1]}`);
    let r = await quietly(() => trainCmd(["gru"], { data: join(TMP, "bad.json") }));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${join(TMP, "bad.json")}: line 2, column 4: inputs[1][0] has 1 features, the ones before it 2\n`);
    writeFileSync(join(TMP, "bad.csv"), "sequence,step,x0,label\na,0,0.5,\na,1,oops,1\n");
    r = await quietly(() => trainCmd(["gru"], { data: join(TMP, "bad.csv") }));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${join(TMP, "bad.csv")}: line 3: column x0 is "oops", not a number\n`);
    writeFileSync(join(TMP, "steps.json"), `{"inputs": [[[1], [2]], [[3]]], "targets": [[1, 3], [3]]}`); // one target per step, read as vectors
    r = await quietly(() => trainCmd(["gru"], { data: join(TMP, "steps.json") }));
    expect([r.code, r.err]).toEqual([1, `${join(TMP, "steps.json")}: line 1, column 53: targets[1] has 1 target values, the ones before it 2 (one target per step? give --at every)\n`]);
    r = await quietly(() => trainCmd(["gru"], { data: join(TMP, "none.json") }));
    expect([r.code, r.err]).toEqual([1, `--data ${join(TMP, "none.json")}: no such file\n`]);
  });

  it("a flag of the other mode, or a bad value, is a usage error (exit 2)", async () => {
    const data = join(TMP, "bad.json");
    for (const [flags, msg] of [
      [{ data, steps: "5" }, /--steps is for the task runs, not a --data run \(--epochs counts passes over the data\)/],
      [{ task: "adding", epochs: "5" }, /--epochs goes with --data <file>/],
      [{ data, optimizer: "rmsprop" }, /--optimizer is adam, adamw or sgd, not rmsprop/],
      [{ data, schedule: "linear" }, /--schedule is constant, step or cosine, not linear/],
      [{ data, val: "v.json", "val-split": "0.1" }, /--val and --val-split both give validation data/],
      [{ data, "val-split": "1" }, /--val-split is the share of the data held out, in \[0, 1\)/],
      [{ data, optimizer: "adam", momentum: "0.9" }, /--momentum is SGD's/],
    ] as const) {
      const r = await quietly(() => trainCmd(["gru"], flags));
      expect(r.code, JSON.stringify(flags)).toBe(2);
      expect(r.err).toMatch(msg);
    }
  });
});

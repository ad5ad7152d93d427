// The training runtime: optimizers against hand-computed steps, losses and the whole model's gradient
// against finite differences, task generators against their definitions (the Reber strings against
// a regular expression written from the grammar), checkpoints (bit-identical continuation, also
// after SIGINT), and a short adding-problem run that must beat the mean-predictor.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKernels } from "../check/kernelcheck.ts";
import { compareCmd, trainCmd } from "../cli/train.ts";
import { loadCell } from "../src/load.ts";
import { Rng } from "../runtime/rng.ts";
import { readCheckpoint, writeCheckpoint } from "../src/train/checkpoint.ts";
import { mse, softmaxXent } from "../src/train/loss.ts";
import { type CellKernels, buildModel } from "../src/train/model.ts";
import { Adam, Sgd, clipFactor } from "../src/train/optim.ts";
import { chartSvg } from "../src/train/plot.ts";
import { REBER_SYMBOLS, embeddedReber, parseEmbeddedReber } from "../src/train/reber.ts";
import { streamRng } from "../src/train/seeds.ts";
import { makeTask } from "../src/train/tasks.ts";
import { type TrainConfig, Trainer } from "../src/train/trainer.ts";
import { loadModel } from "../nn/file.ts";
import { predict } from "../nn/fit.ts";
import { runNode } from "./spawn.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), "cellforge-train-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const kernels: Record<string, CellKernels> = {};
beforeAll(async () => {
  for (const c of ["gru", "lstm", "sru"]) kernels[c] = (await loadKernels(await loadCell(c))) as unknown as CellKernels;
});

/** Run a command with its stdout and stderr captured, so the test output stays readable. */
async function quietly<T>(f: () => Promise<T>): Promise<{ value: T; out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout), e = process.stderr.write.bind(process.stderr);
  let out = "", err = "";
  process.stdout.write = ((c: string | Uint8Array) => ((out += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
  try {
    return { value: await f(), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

const adamCfg = { kind: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
const small = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  cell: "gru", task: { name: "adding", T: 10 }, hidden: 8, layers: 1, B: 8, steps: 40, seed: 7, precision: 32,
  optimizer: adamCfg, clip: 1, evalEvery: 10, evalSize: 32, threshold: 0.01, ...over,
});

describe("optimizers: hand-computed steps", () => {
  it("SGD with momentum 0.9, lr 0.1: v = μv + g, p -= lr v", () => {
    const p = new Float64Array([1, -2]), g = new Float64Array([0.5, 1]);
    const o = new Sgd(2, { kind: "sgd", lr: 0.1, momentum: 0.9 });
    o.step(p, g); // v = [0.5, 1]
    expect(p[0]).toBeCloseTo(0.95, 15);
    expect(p[1]).toBeCloseTo(-2.1, 15);
    o.step(p, g); // v = 0.9*[0.5, 1] + [0.5, 1] = [0.95, 1.9]
    expect(p[0]).toBeCloseTo(0.855, 14);
    expect(p[1]).toBeCloseTo(-2.29, 14);
    expect(o.t).toBe(2);
  });

  it("Adam, lr 0.1, β = (0.9, 0.999), ε = 1e-8: two steps with bias correction", () => {
    const p = new Float64Array([1, -2]);
    const o = new Adam(2, { kind: "adam", lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    // step 1: m̂ = g, v̂ = g², so p -= 0.1 · g / (|g| + 1e-8)
    o.step(p, new Float64Array([0.5, -1]));
    expect(p[0]).toBeCloseTo(1 - 0.1 * (0.5 / (0.5 + 1e-8)), 15);
    expect(p[1]).toBeCloseTo(-2 + 0.1 * (1 / (1 + 1e-8)), 15);
    // step 2, g = [0.1, 0]: m = [0.055, -0.09], v = [0.00025975, 0.000999], 1-β1² = 0.19, 1-β2² = 0.001999
    o.step(p, new Float64Array([0.1, 0]));
    expect(p[0]).toBeCloseTo(0.8196959063846517, 13);
    expect(p[1]).toBeCloseTo(-1.8329941765341886, 13);
    expect(o.state.m[0]).toBeCloseTo(0.055, 15);
    expect(o.state.v[0]).toBeCloseTo(0.00025975, 15);
  });

  it("updates a float32 buffer in one loop, and the clip factor scales the gradient", () => {
    const p = new Float32Array([1, 1]);
    new Sgd(2, { kind: "sgd", lr: 1, momentum: 0 }).step(p, new Float32Array([3, 4]), 0.5);
    expect([...p]).toEqual([-0.5, -1]);
    const g = new Float32Array([3, 4]);
    expect(clipFactor(g, 1)).toEqual({ norm: 5, scale: 1 / (5 + 1e-6) });
    expect(clipFactor(g, 10).scale).toBe(1);
    expect(clipFactor(g, 0).scale).toBe(1);
  });
});

describe("losses: gradients against central differences", () => {
  const fd = (f: (x: Float64Array) => number, x: Float64Array, i: number) => {
    const h = 1e-6, a = Float64Array.from(x), b = Float64Array.from(x);
    a[i]! += h;
    b[i]! -= h;
    return (f(a) - f(b)) / (2 * h);
  };
  const rng = new Rng(3);
  const pred = rng.fill(new Float64Array(12)), w = new Float64Array([1, 0, 2, 0.5]);

  it("MSE, weighted rows", () => {
    const y = rng.fill(new Float64Array(12)), g = new Float64Array(12);
    mse(pred, y, w, 3, g);
    for (let i = 0; i < 12; i++) expect(g[i]).toBeCloseTo(fd((p) => mse(p, y, w, 3, new Float64Array(12)), pred, i), 8);
    // unweighted, one output: the mean squared error
    expect(mse(new Float64Array([1, 3]), new Float64Array([0, 1]), null, 1, new Float64Array(2))).toBe(2.5);
  });

  it("softmax cross-entropy with soft targets and weights", () => {
    const y = new Float64Array([0.5, 0.5, 0, 0, 0, 1, 1, 0, 0, 0.25, 0.25, 0.5]), g = new Float64Array(12);
    softmaxXent(pred, y, w, 3, g);
    for (let i = 0; i < 12; i++) expect(g[i]).toBeCloseTo(fd((p) => softmaxXent(p, y, w, 3, new Float64Array(12)), pred, i), 8);
    // one row, uniform logits over 4 classes: log 4
    expect(softmaxXent(new Float64Array(4), new Float64Array([0, 0, 1, 0]), null, 4, new Float64Array(4))).toBeCloseTo(Math.log(4), 14);
  });
});

describe("the model the tasks train (nn/model.ts's Model, time-major): kernels, readout and projection wired right", () => {
  // float64, the loss Σ c·pred for fixed c: dL/dθ by backward against central differences
  for (const [cell, layers, at, inputSize] of [["lstm", 2, "every", 3], ["sru", 1, "last", 3], ["gru", 2, "last", 4]] as const) {
    it(`${cell}, ${layers} layer(s), readout at ${at} step(s)${cell === "sru" ? ", input projected to H" : ""}`, () => {
      const mod = kernels[cell]!;
      const B = 2, T = 4, m = buildModel(mod, { layers, hidden: 5, inputSize, outputSize: 2, at, precision: 64, seed: 11 });
      expect(m.parameters.some((p) => p.name === "l0.proj.W")).toBe(cell === "sru");
      const x = new Rng(5).fill(new Float64Array(T * B * inputSize));
      const c = new Rng(6).fill(new Float64Array((at === "last" ? B : T * B) * 2));
      const loss = () => {
        const pred = m.forward(x, { batch: B, steps: T });
        let s = 0;
        for (let i = 0; i < pred.length; i++) s += pred[i]! * c[i]!;
        return s;
      };
      loss();
      m.zeroGrad();
      m.backward(Float64Array.from(c));
      const grads = Float64Array.from(m.grads);
      const rng = new Rng(8);
      for (let k = 0; k < 40; k++) {
        const i = Math.floor(rng.next() * m.params.length), p0 = m.params[i]!, h = 1e-6;
        m.params[i] = p0 + h;
        const up = loss();
        m.params[i] = p0 - h;
        const down = loss();
        m.params[i] = p0;
        expect(Math.abs(grads[i]! - (up - down) / (2 * h))).toBeLessThan(1e-7 + 1e-5 * Math.abs(grads[i]!));
      }
      expect(m.parameters.at(-1)!.name).toBe("readout.b");
    });
  }
});

describe("tasks: deterministic and correct", () => {
  it("adding: two markers, one in each half; the target is the sum of the marked values", () => {
    const task = makeTask({ name: "adding", T: 50 });
    const b = task.batch(streamRng(1, "batch", 0), 64);
    for (let e = 0; e < 64; e++) {
      const marked: number[] = [];
      let sum = 0;
      for (let t = 0; t < 50; t++) {
        const v = b.x[(t * 64 + e) * 2]!, mk = b.x[(t * 64 + e) * 2 + 1]!;
        expect(v >= 0 && v < 1).toBe(true);
        expect(mk === 0 || mk === 1).toBe(true);
        if (mk) {
          marked.push(t);
          sum += v;
        }
      }
      expect(marked.length).toBe(2);
      expect(marked[0]! < 25 && marked[1]! >= 25).toBe(true);
      expect(b.y[e]).toBe(sum);
    }
    // predicting 1 scores about Var(u1 + u2) = 1/6
    const big = task.batch(streamRng(2, "batch", 0), 4000);
    const m = big.y.reduce((s, y) => s + (y - 1) ** 2, 0) / 4000;
    expect(m).toBeGreaterThan(0.155);
    expect(m).toBeLessThan(0.178);
  });

  it("the same seed and step give the same batch; another step another", () => {
    for (const o of [{ name: "adding", T: 20 }, { name: "copy", T: 5, L: 3, K: 4 }, { name: "reber", T: 30 }] as const) {
      const task = makeTask(o);
      const a = task.batch(streamRng(9, "batch", 3), 16), b = task.batch(streamRng(9, "batch", 3), 16), c = task.batch(streamRng(9, "batch", 4), 16);
      expect(a.x).toEqual(b.x);
      expect(a.y).toEqual(b.y);
      expect(a.x).not.toEqual(c.x);
    }
  });

  it("copy: the L symbols come back after the delimiter, and only those steps are scored", () => {
    const T = 6, L = 3, K = 4, B = 5, I = K + 2, n = T + 2 * L;
    const task = makeTask({ name: "copy", T, L, K });
    expect(task.length).toBe(n);
    const b = task.batch(streamRng(1, "batch", 0), B);
    const at = (t: number, e: number) => [...b.x.subarray((t * B + e) * I, (t * B + e + 1) * I)].indexOf(1);
    for (let e = 0; e < B; e++) {
      for (let t = 0; t < n; t++) {
        const sym = at(t, e);
        if (t < L) expect(sym).toBeLessThan(K);
        else expect(sym).toBe(t === T + L - 1 ? K + 1 : K); // the delimiter, else blank
        expect(b.w![t * B + e]).toBe(t >= T + L ? 1 : 0);
        if (t >= T + L) expect([...b.y.subarray((t * B + e) * K, (t * B + e + 1) * K)].indexOf(1)).toBe(at(t - T - L, e));
      }
    }
  });

  // Reber's grammar written as a regular expression from its graph: B (T S* X … | P T* V …) E,
  // the loops through X T* V P; embedded: B, T or P, a Reber string, the same letter, E.
  const REBER = "B(?:TS*X(?:XT*V(?:PXT*V)*(?:V|PS)|S)|PT*V(?:PXT*V)*(?:V|PS))E";
  const EMBEDDED = new RegExp(`^B([TP])${REBER}\\1E$`);

  it("reber: the regular expression accepts known strings and rejects broken ones", () => {
    for (const s of ["BTBTXSETE", "BPBPVVEPE", "BTBTSSXXTVVETE", "BPBPTVPXVVEPE"]) expect(EMBEDDED.test(s)).toBe(true);
    // the wrong letter before the final E; an inner string cut short; no inner B; an inner V where X belongs
    for (const s of ["BTBTXSEPE", "BTBTXETE", "BTTXSETE", "BTBTVSETE"]) expect(EMBEDDED.test(s)).toBe(false);
  });

  it("reber: generated strings are valid, and the targets are the grammar's next symbols", () => {
    const rng = new Rng(4);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = embeddedReber(rng);
      expect(s.symbols).toMatch(EMBEDDED);
      expect(parseEmbeddedReber(s.symbols)).toEqual(s.legal);
      s.legal.slice(0, -1).forEach((l, j) => expect(l).toContain(s.symbols[j + 1]));
      expect(s.legal.at(-3)).toBe(s.symbols[1]); // after the inner E only the second symbol may come
      seen.add(s.symbols);
    }
    expect(seen.size).toBeGreaterThan(300);
    for (const bad of ["BTBTXSEPE", "BTBTXSET", "BPBPVVEPEE"]) expect(parseEmbeddedReber(bad)).toBeNull();
  });

  it("reber batches: one-hot inputs, targets uniform over the allowed symbols, steps past the string unscored", () => {
    const K = REBER_SYMBOLS.length, T = 30, B = 32, task = makeTask({ name: "reber", T });
    const b = task.batch(streamRng(3, "batch", 0), B);
    for (let e = 0; e < B; e++) {
      let str = "";
      for (let t = 0; t < T; t++) {
        const r = t * B + e, x = [...b.x.subarray(r * K, r * K + K)], y = [...b.y.subarray(r * K, r * K + K)];
        if (!b.w![r]) {
          expect(x.every((v) => v === 0) && y.every((v) => v === 0)).toBe(true);
          continue;
        }
        str += REBER_SYMBOLS[x.indexOf(1)];
        expect(y.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 15);
      }
      expect(str + "E").toMatch(EMBEDDED); // the inputs are every symbol but the last
    }
  });
});

describe("checkpoints", () => {
  it("the file format round-trips arrays bit for bit and refuses a damaged file", () => {
    const f = join(TMP, "fmt.ckpt"), a = new Float32Array([1.5, -0, NaN, 3e-39]), b = new Float64Array([Math.PI, -1e300]);
    writeCheckpoint(f, { hello: "world" }, { a, b });
    const c = readCheckpoint<{ hello: string }>(f);
    expect(c.header.meta.hello).toBe("world");
    expect(new Uint8Array(c.sections.get("a")!.buffer)).toEqual(new Uint8Array(a.buffer));
    expect(new Uint8Array(c.sections.get("b")!.buffer)).toEqual(new Uint8Array(b.buffer));
    const bytes = readFileSync(f);
    bytes[bytes.length - 1]! ^= 1;
    const g = join(TMP, "bad.ckpt");
    writeFileSync(g, bytes);
    expect(() => readCheckpoint(g)).toThrow(/sha256/);
  });

  const bitsOf = (tr: Trainer) => ({
    params: Buffer.from(tr.model.params.buffer).toString("base64"),
    state: Object.values(tr.optimizer.state).map((s) => Buffer.from(s.buffer).toString("base64")),
    history: tr.history.map((r) => ({ ...r, seconds: 0 })),
  });

  for (const [what, over] of [
    ["Adam, float32, GRU, adding", {}],
    ["SGD with momentum, float64, 2-layer LSTM, Reber", { cell: "lstm", layers: 2, precision: 64, optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9 }, task: { name: "reber", T: 16 }, threshold: 0.99 }],
  ] as const) {
    it(`resuming gives a bit-identical continuation: ${what}`, async () => {
      const cfg = small(over as Partial<TrainConfig>), mod = kernels[cfg.cell]!;
      const whole = new Trainer(mod, cfg);
      await whole.run();
      const half = new Trainer(mod, cfg);
      expect(await half.run({ shouldStop: () => half.step === 23 })).toBe("stopped"); // between evaluations, as Ctrl-C stops it
      const f = join(TMP, `${cfg.cell}.ckpt`);
      half.save(f);
      const resumed = Trainer.restore(mod, Trainer.read(f), f);
      expect(resumed.step).toBe(23);
      await resumed.run();
      expect(bitsOf(resumed)).toEqual(bitsOf(whole));
      expect(resumed.config).toEqual(whole.config);
    });
  }
});

describe("training", () => {
  it("a GRU on the adding problem beats the mean-predictor's 0.167 by a wide margin within seconds", async () => {
    const t0 = performance.now();
    const tr = new Trainer(kernels.gru!, small({ task: { name: "adding", T: 20 }, hidden: 16, B: 32, steps: 400, evalEvery: 100, evalSize: 256 }));
    await tr.run();
    const final = tr.history.at(-1)!.metric;
    expect(final).toBeLessThan(0.167 / 20); // seeds 1, 2, 3, 7 end at 0.0005 to 0.0015
    expect(performance.now() - t0).toBeLessThan(30_000);
  });

  it("Ctrl-C saves a checkpoint; --resume then ends exactly where an uninterrupted run ends", async () => {
    const common = { task: "adding", T: "8", hidden: "6", B: "4", "eval-every": "5", "eval-size": "8", seed: "3" };
    const outA = join(TMP, "sigint");
    // a child process, interrupted once it has printed progress (plain lines: stderr is not a terminal)
    const code = `import { trainCmd } from ${JSON.stringify(pathToFileURL(join(ROOT, "cli", "train.ts")).href)};
process.exitCode = await trainCmd(["gru"], ${JSON.stringify({ ...common, steps: "1000000", out: outA })});`;
    const child = spawn(process.execPath, ["--conditions=cellforge-source", "--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT });
    let err = "", out = "";
    const exit = await new Promise<number | null>((resolve) => {
      child.stderr.on("data", (d: Buffer) => {
        err += d.toString();
        if (/step \d+\//.test(err) && !child.killed) child.kill("SIGINT");
      });
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.on("close", resolve);
    });
    expect(exit, err).toBe(130);
    expect(out).toMatch(/interrupted at step \d+: checkpoint saved; continue with\n {2}cellforge train --resume \S+checkpoint\.ckpt\n/); // a cell of dsl/: no cell file to name
    const ckpt = join(outA, "checkpoint.ckpt");
    const stoppedAt = Trainer.read(ckpt).header.meta.step;
    expect(stoppedAt).toBeGreaterThan(0);
    const N = String(stoppedAt + 7);
    expect((await quietly(() => trainCmd([], { resume: ckpt, steps: N, json: true }))).value).toBe(0);
    const outB = join(TMP, "straight");
    expect((await quietly(() => trainCmd(["gru"], { ...common, steps: N, out: outB, json: true }))).value).toBe(0);
    const a = Trainer.read(ckpt), b = Trainer.read(join(outB, "checkpoint.ckpt"));
    expect(a.header.meta.step).toBe(Number(N));
    const bits = (c: typeof a) => [...c.sections].map(([k, v]) => `${k}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")}`);
    expect(bits(a)).toEqual(bits(b)); // parameters and optimizer state, bit for bit
    expect(existsSync(join(outA, "curve.svg")) && existsSync(join(outA, "log.csv"))).toBe(true);
  });

  it("compare: a table, one plot with every cell, and each cell's log", async () => {
    const out = join(TMP, "cmp");
    const r = await quietly(() => compareCmd(["gru", "lstm"], { task: "reber", T: "12", steps: "6", "eval-every": "3", "eval-size": "16", out }));
    expect(r.value).toBe(0);
    expect(r.out).toMatch(/^cell +parameters +ms\/step +final strings fully correct/m);
    const svg = readFileSync(join(out, "curves.svg"), "utf8");
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain("lstm");
    const md = readFileSync(join(out, "table.md"), "utf8");
    expect(md).toMatch(/\| gru \| [\d,]+ \|/);
    expect(md).toMatch(/\| lstm \| [\d,]+ \|/);
    expect(readFileSync(join(out, "gru.log.csv"), "utf8").split("\n")[0]).toBe("step,seconds,train_loss,eval_loss,strings_fully_correct");
  });

  it("a mistake is a message, not a stack trace", async () => {
    const r = await quietly(async () => [
      await trainCmd(["gru"], { task: "sorting" }),
      await trainCmd(["gru"], { steps: "-3" }),
      await trainCmd([], { resume: join(TMP, "nothing.ckpt") }),
      await trainCmd(["no-such-cell"], {}),
      await trainCmd(["gru"], { T: "1" }),
    ]);
    expect(r.value).toEqual([2, 2, 1, 1, 1]);
    expect(r.err).toMatch(/adding: T must be an integer >= 2, got 1/);
    expect(r.err).toMatch(/--task is one of adding, copy, reber, not sorting/);
    expect(r.err).toMatch(/--steps takes an integer >= 1, not -3/);
    expect(r.err).toMatch(/nothing\.ckpt: no such file/);
    expect(r.err).toMatch(/no cell named "no-such-cell"/);
    expect(r.err).not.toMatch(/^\s+at /m);
  });

  it("a diverged run (SGD lr 1e6, no clipping) stops at its step with exit 1, names it, logs no empty cells and saves nothing", async () => {
    const out = join(TMP, "diverged");
    const r = await quietly(() => trainCmd(["gru"], { task: "adding", T: "10", hidden: "8", B: "8", steps: "200", "eval-every": "1", "eval-size": "16", optimizer: "sgd", lr: "1e6", clip: "0", out }));
    expect(r.value).toBe(1);
    // a number turns non-finite, or (first, when the numbers stay finite long enough) the evaluation loss runs away (DIVERGENCE)
    expect(r.err).toMatch(/^training diverged at step (\d+): .*(NaN|Infinity|the evaluation loss rose above).*\.\nTry a lower --lr \(this run: 1000000\), or clipping the gradient's norm, --clip 1 \(this run: off\)\. The log and plot end at step \d+; no checkpoint was saved\./m);
    const step = Number(/diverged at step (\d+)/.exec(r.err)![1]);
    expect(existsSync(join(out, "checkpoint.ckpt"))).toBe(false);
    const rows = readFileSync(join(out, "log.csv"), "utf8").trim().split("\n").slice(1);
    const stopped = /; stopped at step (\d+)\./.exec(r.err);
    expect(rows.length).toBe(stopped ? Number(stopped[1]) + 1 : step); // steps 0 … step - 1 (or to where a runaway stopped), each evaluated
    for (const [i, row] of rows.entries()) for (const [j, cell] of row.split(",").entries()) if (!(i === 0 && j === 2)) expect(cell, row).toMatch(/^-?\d/); // step 0 has no training loss yet
    expect(JSON.parse(readFileSync(join(out, "log.json"), "utf8")).diverged.step).toBe(step);
    expect(readFileSync(join(out, "curve.svg"), "utf8")).toContain(`diverged at step ${step}`);
    const cmp = await quietly(() => compareCmd(["gru"], { task: "adding", T: "10", hidden: "8", B: "8", steps: "200", "eval-every": "1", "eval-size": "16", optimizer: "sgd", lr: "1e6", clip: "0", out: join(TMP, "diverged-cmp") }));
    expect(cmp.value).toBe(1);
    expect(cmp.err).toMatch(/^gru: training diverged at step \d+: [^]*The comparison stopped/m);
    expect(existsSync(join(TMP, "diverged-cmp", "gru.ckpt"))).toBe(false);
  });

  it("--init starts from converted weights; --out that is a file is refused", async () => {
    const cell = await loadCell("gru");
    const { writeCellParams } = await import("../src/interop/convert.ts");
    const params = Object.fromEntries(cell.params.map((p) => [p.name, new Float64Array(p.node.type.shape.map((d) => (d.key === "D" ? 2 : 6)).reduce((a, b) => a * b, 1)).fill(0.1)]));
    const f = join(TMP, "init.json");
    writeFileSync(f, JSON.stringify(writeCellParams(cell, { sizes: { D: 2, H: 6 }, params })));
    const out = join(TMP, "init-run");
    const r = await quietly(() => trainCmd(["gru"], { task: "adding", T: "8", hidden: "6", B: "4", steps: "3", "eval-size": "8", init: f, out }));
    expect(r.value, r.err).toBe(0);
    expect(r.out).toContain(`layer 1 from ${f}`);
    expect(Trainer.read(join(out, "checkpoint.ckpt")).header.meta.config.init).toBe(f);
    const bad = await quietly(() => trainCmd(["gru"], { task: "adding", hidden: "7", init: f, out }));
    expect(bad.value).toBe(1);
    expect(bad.err).toMatch(/init\.json: the parameters have D = 2, H = 6; this run's layer 1 has H = 7 \(--hidden\)/);
    const asFile = await quietly(() => trainCmd(["gru"], { task: "adding", T: "8", steps: "2", out: f }));
    expect(asFile.value).toBe(1);
    expect(asFile.err).toMatch(/--out .*init\.json: is a file; --out names a folder/);
  });

  it("plots are SVG drawn by vega", async () => {
    const svg = await chartSvg("title here", [{ title: "p", xTitle: "step", yTitle: "y", logY: true, rules: [{ y: 0.5, label: "baseline" }], series: [{ label: "a", points: [{ x: 0, y: 1 }, { x: 1, y: 0.1 }] }] }]);
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toContain("title here");
  });
});

describe("train --data, spawned as a user runs it", () => {
  const BIN = join(ROOT, "bin", "cellforge.js");
  /** n sequences of 3 to 8 steps of 3 features; the class is the feature with the largest sum (chance 1/3). */
  const sequences = (n: number, seed: number) => {
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
  };

  it("a JSON dataset trains above chance; the model file loads and predicts what the run reported; mistakes exit 1 or 2 with a message", async () => {
    const dir = join(TMP, "data-cli"), out = join(dir, "out");
    mkdirSync(dir);
    const train = sequences(240, 1), val = sequences(90, 2);
    writeFileSync(join(dir, "train.json"), JSON.stringify(train));
    writeFileSync(join(dir, "val.json"), JSON.stringify(val));
    const r = await runNode([BIN, "train", "gru", "--data", join(dir, "train.json"), "--val", join(dir, "val.json"), "--epochs", "8", "--hidden", "16", "--out", out, "--json"], { cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^gru epoch 8\/8 {2}loss /m); // not a terminal: one plain line per epoch
    const s = JSON.parse(r.stdout);
    for (const f of ["model.cfm", "history.json", "history.csv", "curve.svg"]) expect(existsSync(join(out, f)), f).toBe(true);
    // the file's predictions, counted here by argmax against the labels, are the accuracy the run reported, above chance
    const back = loadModel(kernels.gru!, readFileSync(join(out, "model.cfm")));
    const logits = predict(back, val.inputs.map((seq) => seq.map((st) => Float64Array.from(st)))) as number[][];
    const acc = logits.filter((z, i) => z.indexOf(Math.max(...z)) === val.targets[i]).length / val.targets.length;
    expect(acc).toBe(s.final.accuracy);
    expect(acc).toBeGreaterThan(0.6);
    back.dispose();
    writeFileSync(join(dir, "bad.csv"), "sequence,step,x0,label\na,0,0.5,\na,1,oops,1\n");
    const bad = await runNode([BIN, "train", "gru", "--data", join(dir, "bad.csv")], { cwd: ROOT });
    expect([bad.status, bad.stderr]).toEqual([1, `${join(dir, "bad.csv")}: line 3: column x0 is "oops", not a number\n`]);
    const unknown = await runNode([BIN, "train", "gru", "--data", join(dir, "train.json"), "--epoch", "3"], { cwd: ROOT });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^cellforge train: unknown option --epoch \(did you mean --epochs\?\)/);
  }, 300_000);
});

// Weights both ways (#16, item 3): a cell trained by `cellforge train` continues training in PyTorch
// from the module `cellforge export --target pytorch` writes, and comes back to `cellforge train
// --init`, with no conversion by hand. The Python side is scripts/export-pytorch-weights.py.
//
// The references are cellforge's own readers and evaluator, never the module's output: the checkpoint
// as src/train/checkpoint.ts reads it (layer 1's arrays must arrive bit for bit in the module), the
// float64 reference evaluator (src/sequence.ts: the module's forward on those parameters to 1e-10),
// and the checkpoint a `train --init` run writes after one step at learning rate 0 (the parameters
// PyTorch trained and saved must arrive bit for bit: a float32 module's numbers in a float32 run).
// Measured: 93 s on the 2-core machine at load 16, 207 s at load 28 (two training runs of 40-90 s
// each, most of it loading the generator). Without /usr/bin/python3 or torch, the test is skipped and says why.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, loadCell } from "../src/load.ts";
import { forwardSequence } from "../src/sequence.ts";
import { readCheckpoint } from "../src/train/checkpoint.ts";
import { runNode } from "./spawn.ts";
import { PYTHON, torchMissing } from "./torch.ts";

const CLI = join(ROOT, "bin", "cellforge.js");

const missing = torchMissing("test/export-weights.test.ts");

/** Layer 1's arrays of a training checkpoint ("l0.Wir", or "layer1.Wir" from earlier versions; not its input projection), by the cell's parameter names, as cellforge reads them. */
function layer1(path: string): Record<string, Float32Array | Float64Array> {
  const ck = readCheckpoint<{ params: [string, number][] }>(path);
  const all = ck.sections.get("params")!;
  const out: Record<string, Float32Array | Float64Array> = {};
  let at = 0;
  for (const [name, length] of ck.header.meta.params) {
    const m = /^(l0|layer1)\.(.*)$/.exec(name);
    if (m && !m[2]!.startsWith("proj.")) out[m[2]!] = all.subarray(at, at + length);
    at += length;
  }
  return out;
}

/** Indices where two arrays differ bit for bit (as float64; a float32 value is exact in float64). */
const differing = (a: ArrayLike<number>, b: ArrayLike<number>): number[] => {
  const d: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (!Object.is(a[i], b[i])) d.push(i);
  return d;
};

async function cellforge(args: string[], cwd: string): Promise<string> {
  const r = await runNode([CLI, ...args], { cwd });
  if (r.status !== 0) throw new Error(`cellforge ${args.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The script's stdout; awaited, as test/spawn.ts explains (a synchronous spawn blocks the worker's event loop). */
function python(script: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [script], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => (status === 0 ? resolve(stdout) : reject(new Error(`${script} exited ${status}:\n${stderr}`))));
    p.stdin.end(input);
  });
}

let dir = "";
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

describe.skipIf(!!missing)("weights both ways: cellforge train -> the exported PyTorch module -> cellforge train --init", () => {
  it("gru: a checkpoint loads bit for bit and computes cellforge's forward; PyTorch's trained parameters arrive bit for bit", async () => {
    dir = mkdtempSync(join(tmpdir(), "cellforge-weights-"));
    const H = 6, D = 2, T = 5, B = 3; // the adding task's input has D = 2
    const train = ["--task", "adding", "--T", "8", "--hidden", String(H), "--B", "8", "--eval-size", "16", "--seed", "3"];
    await cellforge(["train", "gru", ...train, "--steps", "3", "--out", "run1"], dir);
    await cellforge(["export", "gru", "--target", "pytorch", "--out", "gru.py"], dir);
    const ckpt = join(dir, "run1", "checkpoint.ckpt");
    const cell = await loadCell("gru");
    const trained = layer1(ckpt);
    expect(Object.keys(trained)).toEqual(cell.params.map((p) => p.name));

    // a damaged copy (one byte of the data flipped) and another cell's parameters, to be refused
    const bytes = readFileSync(ckpt);
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 1;
    writeFileSync(join(dir, "damaged.ckpt"), bytes);
    writeFileSync(join(dir, "earlier.ckpt"), Buffer.concat([Buffer.from("CFCKPT02"), Buffer.alloc(64)]));
    writeFileSync(join(dir, "rnn.json"), JSON.stringify({ cell: "rnn", sizes: { D, H }, params: { Wih: [[0, 0]], Whh: [[0]], bih: [0], bhh: [0] } }));

    // the input, and cellforge's float64 forward on the checkpoint's parameters from a zero state
    const x = Float64Array.from({ length: T * B * D }, (_, i) => Math.sin(1.7 * i + 0.3));
    const params = Object.fromEntries(Object.entries(trained).map(([k, v]) => [k, Float64Array.from(v)]));
    const ref = forwardSequence(cell, { sizes: { D, H }, B, T, params, inputs: { x }, initial: { h: new Float64Array(B * H) }, upstream: { h: new Float64Array(T * B * H) } });
    const nested = Array.from({ length: T }, (_, t) => Array.from({ length: B }, (_, b) => Array.from(x.subarray((t * B + b) * D, (t * B + b + 1) * D))));

    const request = {
      file: join(dir, "gru.py"), module: "Gru", sizes: [D, H], checkpoint: ckpt, x: nested, out: join(dir, "from-torch.json"),
      steps: 3, lr: 0.1, damaged: join(dir, "damaged.ckpt"), otherCell: join(dir, "rnn.json"), earlier: join(dir, "earlier.ckpt"),
    };
    const py = await python(join(ROOT, "scripts", "export-pytorch-weights.py"), JSON.stringify(request));
    const r = JSON.parse(py.trim().split("\n").pop()!) as {
      loaded: number[][]; other: Record<string, number[]>; output: number[]; trained: number[][]; moved: number; losses: number[];
      refusals: Record<string, string | null>;
    };

    // 1. the checkpoint's layer 1, bit for bit, in the module's order (the cell's), and the readout handed back as nn.Linear's
    cell.params.forEach((p, i) => expect(differing(r.loaded[i]!, trained[p.name]!), p.name).toEqual([]));
    expect(r.other).toEqual({ "readout.W": [1, H], "readout.b": [1] });
    // 2. the module's forward is cellforge's, on those parameters
    const h = ref.outputs.h!;
    let worst = 0;
    for (let i = 0; i < h.length; i++) worst = Math.max(worst, Math.abs(r.output[i]! - h[i]!));
    expect(r.output.length).toBe(h.length);
    expect(worst).toBeLessThan(1e-10);
    // 3. PyTorch trained them (they moved), and cellforge train --init starts from exactly those numbers:
    // one step at learning rate 0 leaves them as they arrived, in the checkpoint it writes
    expect(r.moved).toBeGreaterThan(1e-3);
    await cellforge(["train", "gru", ...train, "--steps", "1", "--lr", "0", "--init", "from-torch.json", "--out", "run2"], dir);
    const arrived = layer1(join(dir, "run2", "checkpoint.ckpt"));
    cell.params.forEach((p, i) => expect(differing(arrived[p.name]!, r.trained[i]!), p.name).toEqual([]));
    // 4. refusals name what is wrong
    expect(r.refusals.damaged).toMatch(/does not match its sha256/);
    expect(r.refusals.otherCell).toMatch(/cell 'gru' has no parameter .*Wih/);
    expect(r.refusals.layer).toMatch(/the model has 1 layer, no layer 2/);
    expect(r.refusals.earlier).toMatch(/earlier\.ckpt: a checkpoint of the format before safetensors \(CFCKPT02\), written by an earlier cellforge/);
    console.log(`weights both ways (gru, H ${H}): checkpoint -> module bit for bit, forward max diff ${worst.toExponential(1)}; PyTorch SGD losses ${r.losses.map((l) => l.toFixed(4)).join(", ")}, parameters moved by up to ${r.moved.toFixed(3)}; back through train --init bit for bit`);
  }, 600_000);
});

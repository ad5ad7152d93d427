// Checkpoints you can trust (safetensors files, nn/file.ts): the sha256 covers the header, so an edited header is refused like a
// damaged array; a header whose hash was recomputed is still checked field by field (a malformed
// one is a CheckpointError naming the file and the field); non-finite parameters are refused; a
// model that no longer fits says what differs; files of earlier versions are refused with the reason.
// In process, on the committed generated kernels (no kernel generation): the unit tier.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as gru from "../generated/gru.ts";
import * as mgu from "../generated/mgu.ts";
import { existsSync } from "node:fs";
import { trainCmd } from "../cli/train.ts";
import { checkResumeFlags, resumeCell } from "../src/train/runs.ts";
import { CheckpointError, checkpointBytes, readCheckpoint, writeCheckpoint } from "../src/train/checkpoint.ts";
import type { CellKernels } from "../src/train/model.ts";
import { type TrainConfig, Trainer } from "../src/train/trainer.ts";

const TMP = mkdtempSync(join(tmpdir(), "cellforge-ckpt-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const GRU = gru as unknown as CellKernels, MGU = mgu as unknown as CellKernels;
const config: TrainConfig = {
  cell: "gru", task: { name: "adding", T: 6 }, hidden: 5, layers: 1, B: 4, steps: 6, seed: 3, precision: 32,
  optimizer: { kind: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, clip: 1, evalEvery: 3, evalSize: 8, threshold: 0.01,
};

/** A checkpoint of a short GRU run, stopped at step 4. */
async function saved(name: string): Promise<string> {
  const tr = new Trainer(GRU, config);
  await tr.run({ shouldStop: () => tr.step === 4 });
  const f = join(TMP, name);
  tr.save(f);
  return f;
}

/** A header to edit: the meta (parsed), the other metadata strings, the tensors; `sealed` writes it back. */
interface Parts { meta: any; md: Record<string, unknown>; tensors: Record<string, any>; data: Buffer; hash: string }

/** The file's parts: the safetensors header's metadata and tensors, the data, and the stored hash. */
function parts(f: string): Parts {
  const b = readFileSync(f), n = Number(b.readBigUInt64LE(0)), { __metadata__: md, ...tensors } = JSON.parse(b.toString("utf8", 8, 8 + n));
  const { meta, sha256: hash, ...rest } = md;
  return { meta: JSON.parse(meta), md: rest, tensors, data: b.subarray(8 + n), hash };
}

/** The parts as a file, the sha256 recomputed (a meta given as a string is written as it is). */
const sealed = (p: Parts) =>
  checkpointBytes({ __metadata__: { ...p.md, ...(p.meta === undefined ? {} : { meta: typeof p.meta === "string" ? p.meta : JSON.stringify(p.meta) }) }, ...p.tensors }, p.data);

/** Edit the header as a person with a text editor would: the old hash stays. */
function edited(f: string, edit: (h: Parts) => void, to: string): string {
  const p = parts(f);
  edit(p);
  const b = sealed(p), g = join(TMP, to);
  b.write(p.hash, 35, "ascii");
  writeFileSync(g, b);
  return g;
}

/** Edit the header and recompute the hash, as a crafted (or buggy) writer would: only validation stands in the way. */
function resealed(f: string, edit: (h: Parts) => void, to: string): string {
  const p = parts(f);
  edit(p);
  const g = join(TMP, to);
  writeFileSync(g, sealed(p));
  return g;
}

const restore = (f: string, mod = GRU) => Trainer.restore(mod, Trainer.read(f), f);

describe("the hash covers the header", () => {
  it("an unedited checkpoint reads back and continues", async () => {
    const f = await saved("ok.ckpt");
    expect(restore(f).step).toBe(4);
  });

  for (const [what, edit] of [
    ["step: -1000", (h: Parts) => (h.meta.step = -1000)],
    ['optimizer.kind: "rmsprop"', (h: Parts) => (h.meta.config.optimizer.kind = "rmsprop")],
    ["a tensor's data_offsets + 8", (h: Parts) => (h.tensors.params.data_offsets = h.tensors.params.data_offsets.map((x: number) => x + 8))],
    ["a tensor's data_offsets -16", (h: Parts) => (h.tensors["optimizer.m"].data_offsets[0] = -16)],
    ["hidden: 64", (h: Parts) => (h.meta.config.hidden = 64)],
  ] as const)
    it(`an edited header is refused: ${what}`, async () => {
      const f = edited(await saved(`e-${what}.ckpt`), edit, `edited-${what.replace(/\W+/g, "_")}.ckpt`);
      expect(() => restore(f)).toThrow(CheckpointError);
      expect(() => Trainer.read(f)).toThrow(/does not match its sha256 .*the hash covers the header and the data/);
    });

  it("a flipped bit in the data is refused", async () => {
    const f = await saved("flip.ckpt"), b = readFileSync(f);
    b[b.length - 40]! ^= 1;
    writeFileSync(f, b);
    expect(() => readCheckpoint(f)).toThrow(/sha256/);
  });

  it("a version-1 or version-2 file is refused, saying why", () => {
    const f = join(TMP, "v1.ckpt");
    writeFileSync(f, Buffer.concat([Buffer.from("CFCKPT01"), Buffer.alloc(100)]));
    expect(() => readCheckpoint(f)).toThrow(/v1\.ckpt: a version-1 checkpoint.*sha256 covers only the data, not the header/);
    const g = join(TMP, "v2.ckpt");
    writeFileSync(g, Buffer.concat([Buffer.from("CFCKPT02"), Buffer.alloc(100)]));
    expect(() => readCheckpoint(g)).toThrow(CheckpointError);
    expect(() => readCheckpoint(g)).toThrow(/v2\.ckpt: a cellforge file of version 2 \(magic CFCKPT02\), written by an earlier cellforge; .*Train again/);
  });

  it("not a checkpoint, a truncated one, a folder", async () => {
    const f = join(TMP, "text.ckpt");
    writeFileSync(f, "hello, world, this is not it");
    expect(() => readCheckpoint(f)).toThrow(/text\.ckpt: not a cellforge checkpoint/);
    const g = await saved("cut.ckpt");
    writeFileSync(g, readFileSync(g).subarray(0, -8));
    expect(() => readCheckpoint(g)).toThrow(/cut\.ckpt: the file does not match its sha256/);
    writeFileSync(g, readFileSync(g).subarray(0, 200));
    expect(() => readCheckpoint(g)).toThrow(/cut\.ckpt: the header's length N = \d+ runs past the end of the file \(200 bytes\)/);
    expect(() => readCheckpoint(TMP)).toThrow(/is a folder, not a checkpoint file/);
  });
});

describe("a header is checked field by field, even with a valid hash", () => {
  const cases: [string, (h: Parts) => void, RegExp][] = [
    ["step -1000", (h) => (h.meta.step = -1000), /meta\.step must be an integer >= 0, not -1000/],
    ["step past the run", (h) => (h.meta.step = 99), /meta\.step must be at most config\.steps = 6, not 99/],
    ["optimizer rmsprop", (h) => (h.meta.config.optimizer.kind = "rmsprop"), /meta\.config\.optimizer\.kind must be "adam" or "sgd", not "rmsprop"/],
    ["lr a string", (h) => (h.meta.config.optimizer.lr = "fast"), /meta\.config\.optimizer\.lr must be a number >= 0, not "fast"/],
    ["missing step", (h) => delete h.meta.step, /meta\.step must be an integer >= 0, not undefined/],
    ["missing meta", (h) => delete h.meta, /the header's meta \(__metadata__\.meta\) is missing/],
    ["meta not JSON", (h) => (h.meta = '{"step": 4'), /the header's meta \(__metadata__\.meta\) is not valid JSON/],
    ["a history row's loss", (h) => (h.meta.history[0].evalLoss = null), /meta\.history\[0\]\.evalLoss must be a finite number, not null/],
    ["task unknown", (h) => (h.meta.config.task.name = "sorting"), /meta\.config\.task\.name must be adding, copy, reber, not "sorting"/],
    ["precision 16", (h) => (h.meta.config.precision = 16), /meta\.config\.precision must be 32 or 64, not 16/],
    ["a tensor not an object", (h) => (h.tensors.params = [0, 8]), /the header's tensor "params" must be an object \{ dtype, shape, data_offsets \}, not a list/],
    ["overlap", (h) => (h.tensors["optimizer.m"].data_offsets = h.tensors["optimizer.m"].data_offsets.map((x: number) => x - 8)), /tensors params \(to byte \d+\) and optimizer\.m \(from byte \d+\) overlap/],
    ["gap", (h) => (h.tensors.params.data_offsets = h.tensors.params.data_offsets.map((x: number) => x + 8)), /the header's tensors leave bytes 0-7 of the data unused, before params/],
    ["offset -16", (h) => (h.tensors["optimizer.m"].data_offsets[0] = -16), /tensor "optimizer\.m"'s data_offsets must be \[begin, end\], integers with 0 <= begin <= end, not \[-16,\d+\]/],
    ["dtype F16", (h) => (h.tensors.params.dtype = "F16"), /tensor "params"'s dtype must be "F32" or "F64" \(the dtypes cellforge writes\), not "F16"/],
    ["huge shape", (h) => (h.tensors["optimizer.v"].shape = [1e15]), /tensor "optimizer\.v" \(F64, shape \[1000000000000000\], 1000000000000000 numbers\) does not fit its data_offsets/],
    ["version 4", (h) => (h.md.version = "4"), /the header's __metadata__\.version must be "3", not "4"/],
    ["format", (h) => (h.md.format = "zip"), /the header's __metadata__\.format must be "cellforge checkpoint", not "zip"/],
  ];
  for (const [what, edit, message] of cases)
    it(what, async () => {
      const f = resealed(await saved(`r-${what}.ckpt`), edit, `resealed-${what.replace(/\W+/g, "_")}.ckpt`);
      let err: unknown;
      try {
        restore(f);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message.startsWith(f)).toBe(true);
    });

  it("a huge header length N", async () => {
    const f = await saved("n.ckpt"), b = readFileSync(f);
    b.writeBigUInt64LE(2n ** 40n, 0);
    writeFileSync(f, b);
    expect(() => readCheckpoint(f)).toThrow(/the header's length N = 1099511627776 runs past the end of the file \(\d+ bytes\), beyond any cellforge header/);
  });
});

describe("what a checkpoint holds is checked against the model", () => {
  it("NaN or infinite parameters are refused, naming the array and element", async () => {
    const tr = new Trainer(GRU, config);
    tr.model.params[7] = NaN;
    const f = join(TMP, "nan.ckpt");
    writeCheckpoint(f, tr.meta(), { params: tr.model.params, ...Object.fromEntries(Object.entries(tr.optimizer.state).map(([k, v]) => [`optimizer.${k}`, v])) });
    expect(() => restore(f)).toThrow(/nan\.ckpt: section params is not finite: l0\.\w+\[\d+\] = NaN; a checkpoint of a diverged run cannot be continued/);
    tr.model.params[7] = 0;
    tr.optimizer.state.v![2] = Infinity;
    writeCheckpoint(f, tr.meta(), { params: tr.model.params, ...Object.fromEntries(Object.entries(tr.optimizer.state).map(([k, v]) => [`optimizer.${k}`, v])) });
    expect(() => restore(f)).toThrow(/section optimizer\.v is not finite: optimizer\.v\[2\] = Infinity/);
  });

  it("a cell that changed says which arrays differ", async () => {
    const f = await saved("other.ckpt");
    expect(() => restore(f, MGU)).toThrow(/the checkpoint's model \(cell "gru", hidden 5, 1 layer, 14 arrays\) does not fit cell "mgu" as it is now \(\d+ arrays\): l0\.\w+ \(\d+ numbers\) is gone/);
  });

  it("a checkpoint of the older layout (layer1.Wir, …, before the tasks ran on nn/model.ts) is refused with the reason", async () => {
    // its arrays as that cellforge named them: layer1.<cell's name>, readout.W, readout.b
    const f = resealed(await saved("old.ckpt"), (h) => (h.meta.params = h.meta.params.map(([n, l]: [string, number]) => [n.replace(/^l0\./, "layer1."), l])), "old-layout.ckpt");
    expect(() => restore(f)).toThrow(/old-layout\.ckpt: written by an older cellforge, whose models laid out their parameters otherwise \(layer1\.Wir, … where models now have l0\.Wir, …, as PyTorch names them\); it cannot be continued by this one\. Train afresh/);
  });

  it("--resume never loads a cell file because a checkpoint names it: the user names it again", async () => {
    // a crafted checkpoint whose run "trained" a file that would run code when loaded
    const marker = join(TMP, "ran.txt"), evil = join(TMP, "evil.ts");
    writeFileSync(evil, `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "ran");\nexport default {};\n`);
    const f = resealed(await saved("path-cell.ckpt"), (h) => (h.meta.config.cell = evil), "path-cell-crafted.ckpt");
    const e = process.stderr.write.bind(process.stderr);
    let err = "";
    process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      code = await trainCmd([], { resume: f });
    } finally {
      process.stderr.write = e;
    }
    expect(code).toBe(1);
    expect(err).toContain(`the run trained the cell file ${JSON.stringify(evil)}, not a cell of dsl/`);
    expect(err).toContain(`cellforge train --resume ${f} <cell file>`);
    expect(existsSync(marker)).toBe(false);
    // a cell of dsl/ is taken by name; a file the user gives is taken as given
    expect(resumeCell(f, "gru", [])).toBe("gru");
    expect(resumeCell(f, evil, ["cells/mine.ts"])).toMatch(/\/cells\/mine\.ts$/);
    expect(() => resumeCell(f, { not: "a name" }, [])).toThrow(/the checkpoint names no cell \(its config.cell is object\): give the cell file yourself/);
    expect(() => resumeCell(f, "gru", ["a.ts", "b.ts"])).toThrow(/one cell file at most, got 2 arguments/);
  });

  it("a checkpoint whose run cannot be allocated is refused naming the file and the sizes", async () => {
    const f = resealed(await saved("huge.ckpt"), (h) => (h.meta.config.hidden = 100_000), "huge-hidden.ckpt");
    expect(() => restore(f)).toThrow(/huge-hidden\.ckpt: its run \(cell "gru", hidden 100000, 1 layer, batch 4\) needs more memory than this process can allocate/);
  });

  it("--resume with another --hidden says what the checkpoint has and what the run asks", async () => {
    const f = await saved("hidden.ckpt");
    const tr = restore(f);
    expect(() => checkResumeFlags(f, tr, { hidden: "64" })).toThrow(/the checkpoint's model has hidden 5 \(cell "gru", 1 layer, 14 arrays of these sizes: l0\.Wir 10, l0\.Wiz 10, .*\); this run asks hidden 64\. --resume continues the run as it was/);
    expect(() => checkResumeFlags(f, tr, { lr: "0.5" })).toThrow(/has learning rate 0\.01 .*this run asks learning rate 0\.5/);
    expect(() => checkResumeFlags(f, tr, { hidden: "5", lr: "0.01", task: "adding", steps: "100" })).not.toThrow();
  });
});

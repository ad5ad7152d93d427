// `cellforge convert` with safetensors files, in process (the unit tier): JSON <-> safetensors round
// trips bit for bit; a model file's layer and a checkpoint's layer converted to PyTorch's layout equal
// the model's own numbers, stacked as nn.GRU stacks them (checked here by hand, not by the converter);
// another tool's file (no cellforge metadata) read by the spec, F16 and BF16 exactly; every refusal;
// and `train --init` from a converted .safetensors file. A file written by Python and torch, and a
// spawned `train --init`, are in test/convert-safetensors-torch.test.ts (the e2e tier).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as gru from "../generated/gru.ts";
import { convertCmd } from "../cli/convert.ts";
import { Model } from "../nn/model.ts";
import { decodeContainer, readSafetensors, saveModel } from "../nn/file.ts";
import type { KernelModule } from "../runtime/kernel.ts";
import type { Cell } from "../src/cell.ts";
import { loadCell } from "../src/load.ts";
import { initFrom } from "../src/train/runs.ts";
import { type TrainConfig, Trainer } from "../src/train/trainer.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "cellforge-convert-st-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (n: string) => join(dir, n);
const GRU = gru as unknown as KernelModule;

async function convert(from: string, to: string, cell: string, inFile: string, outFile: string, more: Record<string, string> = {}) {
  let stdout = "", stderr = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await convertCmd([cell, file(inFile), file(outFile)], { from, to, ...more }), stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
async function ok(...args: Parameters<typeof convert>) {
  const r = await convert(...args);
  expect(r.code, r.stderr).toBe(0);
  return r;
}
const text = (n: string) => readFileSync(file(n), "utf8");
const fixture = (cell: string) => (JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "torch", `${cell}.json`), "utf8")) as { cases: { state_dict: unknown }[] }).cases[1]!.state_dict;

/** A safetensors file as the spec lays it out, with no cellforge metadata: what another tool writes. */
function plainFile(tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let at = 0;
  for (const [k, t] of Object.entries(tensors)) header[k] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, (at += t.bytes.length)] };
  const h = new TextEncoder().encode(JSON.stringify(header)), out = new Uint8Array(8 + h.length + at);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const t of Object.values(tensors)) out.set(t.bytes, (p += t.bytes.length) - t.bytes.length);
  return out;
}
const f64 = (xs: number[]) => new Uint8Array(Float64Array.from(xs).buffer);
/** The state_dict fixture as F64 tensors of a plain safetensors file. */
function stateDictFile(sd: Record<string, unknown>): Uint8Array {
  return plainFile(Object.fromEntries(Object.entries(sd).map(([k, v]) => {
    const a = v as number[] | number[][], shape = Array.isArray(a[0]) ? [a.length, (a[0] as number[]).length] : [a.length];
    return [k, { dtype: "F64", shape, bytes: f64((a as number[]).flat()) }];
  })));
}

describe("round trips between JSON and safetensors are bit for bit", () => {
  for (const cell of ["gru", "lstm", "rnn"])
    it(`${cell}: a state_dict through cellforge, PyTorch and Keras files, as JSON and as safetensors`, async () => {
      writeFileSync(file(`${cell}-sd.json`), JSON.stringify(fixture(cell)));
      writeFileSync(file(`${cell}-sd.safetensors`), stateDictFile(fixture(cell) as Record<string, unknown>));
      // another tool's safetensors reads as the same JSON reads
      await ok("pytorch", "cellforge", cell, `${cell}-sd.json`, `${cell}-a.json`);
      await ok("pytorch", "cellforge", cell, `${cell}-sd.safetensors`, `${cell}-b.json`);
      expect(text(`${cell}-b.json`)).toBe(text(`${cell}-a.json`));
      // cellforge parameters: JSON -> safetensors -> JSON
      await ok("cellforge", "cellforge", cell, `${cell}-a.json`, `${cell}-p.safetensors`);
      await ok("cellforge", "cellforge", cell, `${cell}-p.safetensors`, `${cell}-c.json`);
      expect(text(`${cell}-c.json`)).toBe(text(`${cell}-a.json`));
      // PyTorch: safetensors -> JSON equals JSON directly; the file holds PyTorch's names and shapes
      await ok("cellforge", "pytorch", cell, `${cell}-p.safetensors`, `${cell}-t.safetensors`);
      await ok("pytorch", "pytorch", cell, `${cell}-t.safetensors`, `${cell}-t.json`);
      await ok("pytorch", "pytorch", cell, `${cell}-sd.json`, `${cell}-t2.json`);
      expect(text(`${cell}-t.json`)).toBe(text(`${cell}-t2.json`));
      const written = decodeContainer<Record<string, unknown>>(readFileSync(file(`${cell}-t.safetensors`)));
      expect(written.header.meta).toMatchObject({ kind: "cellforge parameters", cell, framework: "pytorch" });
      const sd = fixture(cell) as Record<string, number[][] | number[]>;
      for (const s of written.header.sections) {
        const want = sd[s.name]!;
        expect(s.dtype).toBe("f64");
        expect(s.shape).toEqual(Array.isArray(want[0]) ? [want.length, (want[0] as number[]).length] : [want.length]);
        expect([...written.sections.get(s.name)!]).toEqual((want as number[]).flat());
      }
      if (cell === "rnn") return; // no Keras layout for nn.RNN
      // Keras: its config travels in the file's meta, so reading it back checks it as JSON's does
      await ok("cellforge", "keras", cell, `${cell}-p.safetensors`, `${cell}-k.safetensors`);
      await ok("cellforge", "keras", cell, `${cell}-a.json`, `${cell}-k.json`);
      await ok("keras", "keras", cell, `${cell}-k.safetensors`, `${cell}-k2.json`);
      expect(text(`${cell}-k2.json`)).toBe(text(`${cell}-k.json`));
      // (Keras's LSTM has one bias where PyTorch's has two, so the LSTM's come back summed, from either file)
      await ok("keras", "cellforge", cell, `${cell}-k.safetensors`, `${cell}-d.json`);
      await ok("keras", "cellforge", cell, `${cell}-k.json`, `${cell}-e.json`);
      expect(text(`${cell}-d.json`)).toBe(text(`${cell}-e.json`));
      if (cell === "gru") expect(text(`${cell}-d.json`)).toBe(text(`${cell}-a.json`));
    });

  it("--dtype f32 writes F32 tensors, each the float64 value rounded", async () => {
    writeFileSync(file("g-sd.json"), JSON.stringify(fixture("gru")));
    const r = await ok("pytorch", "pytorch", "gru", "g-sd.json", "g32.safetensors", { dtype: "f32" });
    expect(r.stdout).toMatch(/safetensors, float32\) to .*g32\.safetensors/);
    const { tensors } = readSafetensors(readFileSync(file("g32.safetensors")));
    const sd = fixture("gru") as Record<string, number[]>;
    for (const t of tensors) {
      expect(t.dtype).toBe("F32");
      expect([...t.data]).toEqual(sd[t.name]!.flat().map(Math.fround));
    }
  });
});

describe("a model's layer: a model file's and a checkpoint's", () => {
  let cell: Cell;
  beforeAll(async () => void (cell = await loadCell("gru")));
  /** nn.GRU's stacking, by hand: weight_ih = [Wir; Wiz; Win], weight_hh = [Whr; Whz; Whn], the biases likewise. */
  const stacked = (p: (n: string) => number[]) => ({
    weight_ih_l0: ["Wir", "Wiz", "Win"].flatMap(p), weight_hh_l0: ["Whr", "Whz", "Whn"].flatMap(p),
    bias_ih_l0: ["bir", "biz", "bin"].flatMap(p), bias_hh_l0: ["bhr", "bhz", "bhn"].flatMap(p),
  });
  const torchJson = (n: string) => Object.fromEntries(Object.entries(JSON.parse(text(n)) as Record<string, number[] | number[][]>).map(([k, v]) => [k, (v as number[]).flat()]));

  it("a bidirectional 2-layer model file: layer 2, each direction, equals the model's l1.* and l1_reverse.*", async () => {
    const model = new Model(GRU, { inputSize: 3, hidden: 4, layers: 2, bidirectional: true, outputs: 2, precision: 64, seed: 5 });
    writeFileSync(file("m.cfm"), saveModel(model));
    const of = (prefix: string) => (n: string) => { const q = model.parameters.find((x) => x.name === prefix + n)!; return [...model.params.subarray(q.offset, q.offset + q.length)]; };
    const fwd = await ok("cellforge", "pytorch", "gru", "m.cfm", "m2.json", { layer: "2" });
    expect(fwd.stdout).toMatch(/\(D = 8, H = 4\)/);
    expect(fwd.stdout).toMatch(/note: the model is bidirectional: this is layer 2's forward direction \(l1\.\*\); --direction reverse converts the other \(l1_reverse\.\*\)/);
    expect(torchJson("m2.json")).toEqual(stacked(of("l1.")));
    await ok("cellforge", "pytorch", "gru", "m.cfm", "m2r.json", { layer: "2", direction: "reverse" });
    expect(torchJson("m2r.json")).toEqual(stacked(of("l1_reverse.")));
    await ok("cellforge", "pytorch", "gru", "m.cfm", "m1.json");
    expect(torchJson("m1.json")).toEqual(stacked(of("l0.")));
    model.dispose();
  });

  it("a float32 checkpoint's layer 1 equals the model's l0.*, to PyTorch and (train --init) back into a run", async () => {
    const config: TrainConfig = { cell: "gru", task: { name: "adding", T: 6 }, hidden: 5, layers: 1, B: 4, steps: 1, seed: 3, precision: 32,
      optimizer: { kind: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, clip: 1, evalEvery: 1, evalSize: 8, threshold: 0.01 };
    const tr = new Trainer(GRU, config);
    tr.save(file("run.ckpt"));
    const of = (n: string) => { const q = tr.model.parameters.find((x) => x.name === `l0.${n}`)!; return [...tr.model.params.subarray(q.offset, q.offset + q.length)]; };
    const r = await ok("cellforge", "pytorch", "gru", "run.ckpt", "ck.json");
    expect(r.stdout).toMatch(/read cell "gru"'s parameters from .*run\.ckpt \(D = 2, H = 5\)/);
    expect(torchJson("ck.json")).toEqual(stacked(of));
    // --init from convert's safetensors, and from the checkpoint itself: layer 1 is the same numbers
    await ok("cellforge", "cellforge", "gru", "run.ckpt", "ck.safetensors", { dtype: "f32" });
    for (const init of ["ck.safetensors", "run.ckpt"]) {
      const fresh = new Trainer(GRU, { ...config, seed: 99 });
      initFrom(fresh, cell, file(init));
      expect(fresh.layer1().map(({ p }) => [...fresh.model.params.subarray(p.offset, p.offset + p.length)])).toEqual(tr.layer1().map(({ p }) => [...tr.model.params.subarray(p.offset, p.offset + p.length)]));
    }
  });
});

describe("another tool's safetensors file", () => {
  it("F16 and BF16 are read exactly; the metadata is optional", async () => {
    const sd = fixture("gru") as Record<string, number[] | number[][]>;
    // halves of known values: 1 = 0x3c00, -2 = 0xc000, 0.5 = 0x3800, 2^-24 = 0x0001 (the smallest subnormal), 65504 = 0x7bff
    const halves: [number, number][] = [[0x3c00, 1], [0xc000, -2], [0x3800, 0.5], [0x0001, 2 ** -24], [0x7bff, 65504]];
    const u16 = (xs: number[]) => new Uint8Array(Uint16Array.from(xs).buffer);
    const bf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]! >>> 16; // a float32 whose low half is 0 is a bfloat16
    const st = readSafetensors(plainFile({ h: { dtype: "F16", shape: [5], bytes: u16(halves.map(([u]) => u)) }, b: { dtype: "BF16", shape: [2], bytes: u16([bf(1.5), bf(-3.25)]) } }, { format: "pt" }));
    expect(st.metadata).toEqual({ format: "pt" });
    expect([...st.tensors[0]!.data]).toEqual(halves.map(([, x]) => x));
    expect([...st.tensors[1]!.data]).toEqual([1.5, -3.25]);
    // a whole state_dict in F16 converts as the rounded numbers do in JSON
    const H = sd.weight_hh_l0!.length / 3, round = (x: number) => Math.round(x * 1024) / 1024; // |x| < 1: a multiple of 2^-10 is a half
    const halved = Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, (v as number[]).flat().map(round)]));
    const f16bits = (x: number) => { const f = new DataView(new ArrayBuffer(4)); f.setFloat32(0, x); const u = f.getUint32(0), e = ((u >>> 23) & 255) - 127 + 15; return x === 0 ? 0 : ((u >>> 16) & 0x8000) | (e << 10) | ((u >>> 13) & 1023); };
    writeFileSync(file("h.safetensors"), plainFile(Object.fromEntries(Object.entries(halved).map(([k, v]) => [k, { dtype: "F16", shape: k.startsWith("weight") ? [3 * H, v.length / (3 * H)] : [v.length], bytes: u16(v.map(f16bits)) }]))));
    writeFileSync(file("h.json"), JSON.stringify(Object.fromEntries(Object.entries(halved).map(([k, v]) => [k, k.startsWith("weight") ? Array.from({ length: 3 * H }, (_, i) => v.slice(i * (v.length / (3 * H)), (i + 1) * (v.length / (3 * H)))) : v]))));
    await ok("pytorch", "cellforge", "gru", "h.safetensors", "h1.json");
    await ok("pytorch", "cellforge", "gru", "h.json", "h2.json");
    expect(text("h1.json")).toBe(text("h2.json"));
  });
});

describe("refusals, each saying what and what to do", () => {
  beforeAll(async () => {
    writeFileSync(file("r-sd.json"), JSON.stringify(fixture("gru")));
    await ok("pytorch", "cellforge", "gru", "r-sd.json", "r-p.safetensors");
    await ok("pytorch", "pytorch", "gru", "r-sd.json", "r-t.safetensors");
    writeFileSync(file("r-m.cfm"), saveModel(new Model(GRU, { inputSize: 2, hidden: 3, outputs: 1, precision: 64 })));
  });
  const refused = async (args: Parameters<typeof convert>, message: RegExp, code = 1) => {
    const r = await convert(...args);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.code).toBe(code);
  };

  it("a layer the model does not have, another cell's model, a reverse direction it does not have", async () => {
    await refused(["cellforge", "pytorch", "gru", "r-m.cfm", "x.json", { layer: "2" }], /r-m\.cfm: the model has 1 layer, no layer 2 \(--layer 1\)/);
    await refused(["cellforge", "pytorch", "lstm", "r-m.cfm", "x.json"], /r-m\.cfm: a cellforge model file of cell "gru", not of cell "lstm" \(the cell given\): convert it as gru/);
    await refused(["cellforge", "pytorch", "gru", "r-m.cfm", "x.json", { direction: "reverse" }], /r-m\.cfm: the model is not bidirectional: layer 1 has no reverse direction/);
    await refused(["cellforge", "pytorch", "gru", "r-m.cfm", "x.json", { layer: "0" }], /convert: --layer is a model's layer, 1, 2, …, not "0"/, 2);
    await refused(["cellforge", "pytorch", "gru", "r-m.cfm", "x.json", { direction: "both" }], /convert: --direction is forward or reverse, not "both"/, 2);
  });

  it("a damaged file, by nn/file.ts's reader; a file of the other side; options that do not apply", async () => {
    const b = readFileSync(file("r-p.safetensors"));
    b[b.length - 3]! ^= 1;
    writeFileSync(file("bad.safetensors"), b);
    await refused(["cellforge", "cellforge", "gru", "bad.safetensors", "x.json"], /bad\.safetensors: the file does not match its sha256 \(a truncated, damaged or edited file/);
    await refused(["keras", "cellforge", "gru", "r-t.safetensors", "x.json"], /r-t\.safetensors: holds PyTorch weights \(cellforge convert --to pytorch wrote it\), not Keras\/tfjs's: use --from pytorch/);
    await refused(["pytorch", "cellforge", "gru", "r-m.cfm", "x.json"], /r-m\.cfm: a cellforge model file, not PyTorch weights: convert it with --from cellforge/);
    writeFileSync(file("sd.safetensors"), stateDictFile(fixture("gru") as Record<string, unknown>));
    await refused(["cellforge", "pytorch", "gru", "sd.safetensors", "x.json"], /sd\.safetensors: a safetensors file without cellforge's metadata \(another tool's\): --from pytorch or --from keras reads its tensors/);
    await refused(["cellforge", "pytorch", "gru", "r-p.safetensors", "x.json", { layer: "2" }], /holds one cell's parameters, written by cellforge convert; --layer and --direction pick a layer of a model file or checkpoint/);
    await refused(["pytorch", "cellforge", "gru", "r-sd.json", "x.json", { layer: "2" }], /r-sd\.json: JSON weights hold one layer; --layer and --direction pick a layer/, 2);
    await refused(["pytorch", "cellforge", "gru", "r-sd.json", "x.json", { dtype: "f32" }], /convert: --dtype applies to a \.safetensors output; .*x\.json is JSON/, 2);
    await refused(["pytorch", "cellforge", "gru", "r-sd.json", "x.safetensors", { dtype: "f16" }], /convert: --dtype is f64 or f32, not "f16"/, 2);
  });

  it("train --init: a damaged file, another tool's file, another cell's model, each by name", async () => {
    // bad.safetensors and sd.safetensors are the test above's
    const cell = await loadCell("gru"), lstm = await loadCell("lstm");
    const tr = () => new Trainer(GRU, { cell: "gru", task: { name: "adding", T: 6 }, hidden: 3, layers: 1, B: 4, steps: 1, seed: 1, precision: 64,
      optimizer: { kind: "sgd", lr: 0.1, momentum: 0 }, clip: 0, evalEvery: 1, evalSize: 8, threshold: 0.01 });
    expect(() => initFrom(tr(), cell, file("bad.safetensors"))).toThrow(/^--init .*bad\.safetensors: the file does not match its sha256/);
    expect(() => initFrom(tr(), cell, file("sd.safetensors"))).toThrow(/^--init .*sd\.safetensors: a safetensors file without cellforge's metadata \(another tool's\).*make one with cellforge convert --from pytorch\|keras --to cellforge gru/);
    expect(() => initFrom(tr(), lstm, file("r-m.cfm"))).toThrow(/^--init .*r-m\.cfm: a cellforge model file of cell "gru", not of cell "lstm"/);
    initFrom(tr(), cell, file("r-m.cfm")); // the model file's layer 1: D = 2, H = 3, as this run's
  });

  it("another tool's file: a dtype cellforge does not read, by name; a malformed layout, by the spec", async () => {
    const i64 = plainFile({ weight_ih_l0: { dtype: "I64", shape: [1], bytes: new Uint8Array(8) } });
    writeFileSync(file("i64.safetensors"), i64);
    await refused(["pytorch", "cellforge", "gru", "i64.safetensors", "x.json"], /i64\.safetensors: the header's tensor "weight_ih_l0"'s dtype must be "F64", "F32", "F16" or "BF16" \(the float dtypes cellforge reads\), not "I64"/);
    const gap = plainFile({ a: { dtype: "F64", shape: [1], bytes: new Uint8Array(16) } });
    writeFileSync(file("gap.safetensors"), gap);
    await refused(["pytorch", "cellforge", "gru", "gap.safetensors", "x.json"], /gap\.safetensors: the header's tensor "a" \(F64, shape \[1\], 1 numbers\) does not fit its data_offsets \[0, 16\]/);
    const trailing = Buffer.concat([plainFile({ a: { dtype: "F64", shape: [1], bytes: new Uint8Array(8) } }), Buffer.alloc(4)]);
    writeFileSync(file("trail.safetensors"), trailing);
    await refused(["pytorch", "cellforge", "gru", "trail.safetensors", "x.json"], /trail\.safetensors: the header's tensors cover 8 of the data's 12 bytes \(bytes after the last tensor\)/);
    const md = plainFile({ a: { dtype: "F64", shape: [1], bytes: new Uint8Array(8) } }, { n: 5 } as unknown as Record<string, string>);
    writeFileSync(file("md.safetensors"), md);
    await refused(["pytorch", "cellforge", "gru", "md.safetensors", "x.json"], /md\.safetensors: the header's __metadata__ must be an object of strings/);
  });
});

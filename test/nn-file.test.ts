// Model files (nn/file.ts): the TypeScript sha256 against FIPS 180-4's vectors and node:crypto; the
// container byte for byte against a writer written here from the format's description (Buffer and
// node:crypto, as src/train/checkpoint.ts wrote it before it shared nn/file.ts); every malformed
// container refused by name; a saved Model loads back with the same bits and the same predictions,
// and a file of another cell or other shapes is refused saying what differs; the Python reader
// (scripts/cellforge_model.py, run by /usr/bin/python3) reads the same numbers and shapes.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as gru from "../generated/gru.ts";
import * as mgu from "../generated/mgu.ts";
import type { FloatArray, KernelModule } from "../runtime/kernel.ts";
import { ModelFileError, decodeContainer, encodeContainer, loadModel, saveModel, sealContainer } from "../nn/file.ts";
import { Model, type ModelOptions } from "../nn/model.ts";
import { sha256Portable as sha256, sha256 as sha256Native } from "../nn/sha256.ts";

const TMP = mkdtempSync(join(tmpdir(), "cellforge-nn-file-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const GRU = gru as unknown as KernelModule, MGU = mgu as unknown as KernelModule;
const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");

describe("sha256", () => {
  it("FIPS 180-4 / NIST example vectors", () => {
    const text = (s: string) => hex(sha256(new TextEncoder().encode(s)));
    expect(text("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(text("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect(hex(sha256(new Uint8Array(1_000_000).fill(0x61)))).toBe("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("equals node:crypto at every length 0-300 (each padding case) and on a subarray", () => {
    const bytes = Uint8Array.from({ length: 400 }, (_, i) => (i * 167 + 13) & 255);
    for (let n = 0; n <= 300; n++) expect(hex(sha256(bytes.subarray(0, n))), `length ${n}`).toBe(createHash("sha256").update(bytes.subarray(0, n)).digest("hex"));
    expect(hex(sha256(bytes.subarray(37, 390)))).toBe(createHash("sha256").update(bytes.subarray(37, 390)).digest("hex"));
    expect(hex(sha256Native(bytes.subarray(37, 390))), "under Node, sha256 is node:crypto's").toBe(hex(sha256(bytes.subarray(37, 390))));
  });
});

/** The container as its description says, written with Buffer and node:crypto. */
function referenceContainer(meta: unknown, sections: Record<string, FloatArray>): Buffer {
  const infos: object[] = [], chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(sections)) {
    infos.push({ name, dtype: a instanceof Float32Array ? "f32" : "f64", length: a.length, offset });
    const b = Buffer.alloc(a.byteLength + ((8 - (a.byteLength % 8)) % 8));
    a.forEach((x, i) => (a instanceof Float32Array ? b.writeFloatLE(x, 4 * i) : b.writeDoubleLE(x, 8 * i)));
    chunks.push(b);
    offset += b.length;
  }
  const json = Buffer.from(JSON.stringify({ format: "cellforge checkpoint", version: 2, sections: infos, meta }), "utf8");
  const pre = Buffer.alloc(12);
  pre.write("CFCKPT02", 0, "ascii");
  pre.writeUInt32LE(json.length, 8);
  const body = Buffer.concat([pre, json, Buffer.alloc((8 - ((12 + json.length) % 8)) % 8), ...chunks]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

const META = { note: "ünïcødé 😀", step: 3 };
const SECTIONS = (): Record<string, FloatArray> => ({
  a: Float32Array.from({ length: 13 }, (_, i) => Math.sin(i) * 1e3), b: Float64Array.from({ length: 7 }, (_, i) => 1 / (i + 0.3)),
  empty: new Float32Array(0), edges: new Float64Array([-0, Infinity, -Infinity, 5e-324, Number.MAX_VALUE]),
});

describe("the container", () => {
  it("is byte for byte the format's description, and reads back bit for bit", () => {
    const bytes = encodeContainer(META, SECTIONS());
    expect(hex(bytes)).toBe(referenceContainer(META, SECTIONS()).toString("hex"));
    const { header, sections } = decodeContainer<typeof META>(bytes);
    expect(header.meta).toEqual(META);
    for (const [name, a] of Object.entries(SECTIONS())) {
      const b = sections.get(name)!;
      expect(b.constructor).toBe(a.constructor);
      expect(hex(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))).toBe(hex(new Uint8Array(a.buffer)));
    }
  });

  it("reads a container at an odd offset of a larger buffer (arrays copied, aligned)", () => {
    const bytes = encodeContainer(META, SECTIONS()), big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect([...decodeContainer(big.subarray(3)).sections.get("b")!]).toEqual([...SECTIONS()["b"]!]);
  });

  /** Parse, edit and reseal (a valid hash over a malformed header: only validation stands in the way). */
  const resealed = (edit: (h: any) => void): Uint8Array => {
    const b = Buffer.from(encodeContainer(META, SECTIONS())), n = b.readUInt32LE(8), start = 12 + n + ((8 - ((12 + n) % 8)) % 8);
    const header = JSON.parse(b.toString("utf8", 12, 12 + n));
    edit(header);
    return sealContainer(header, b.subarray(start, b.length - 32));
  };
  const refused = (bytes: Uint8Array, message: RegExp | string) => {
    let err: unknown;
    try {
      decodeContainer(bytes, "x.cfm");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message.startsWith("x.cfm: ")).toBe(true);
    if (typeof message === "string") expect((err as Error).message).toBe(message);
    else expect((err as Error).message).toMatch(message);
  };

  it("a wrong magic, a truncated file, a flipped bit, a huge header length", () => {
    refused(new TextEncoder().encode("hello, world, this is no model at all"), "x.cfm: not a cellforge checkpoint or model file (no CFCKPT02 magic)");
    refused(new TextEncoder().encode("CFCKPT02abcd"), /truncated \(12 bytes/);
    const flipped = encodeContainer(META, SECTIONS());
    flipped[flipped.length - 40]! ^= 1;
    refused(flipped, /does not match its sha256 .*the hash covers the header and the data/);
    refused(encodeContainer(META, SECTIONS()).subarray(0, 100), /does not match its sha256/);
    const body = Buffer.from(encodeContainer(META, SECTIONS())).subarray(0, -32);
    body.writeUInt32LE(0xffffffff, 8);
    refused(Buffer.concat([body, createHash("sha256").update(body).digest()]), /the header's length n = 4294967295 runs past the end of the file/);
  });

  const cases: [string, (h: any) => void, RegExp][] = [
    ["format", (h) => (h.format = "zip"), /the header's format must be "cellforge checkpoint", not "zip"/],
    ["version 3", (h) => (h.version = 3), /the header's version must be 2, not 3/],
    ["missing meta", (h) => delete h.meta, /the header's meta is missing/],
    ["sections not a list", (h) => (h.sections = {}), /the header's sections must be a list/],
    ["overlap", (h) => (h.sections[1].offset = 48), /sections a \(bytes 0-51\) and b \(from byte 48\) overlap/],
    ["negative offset", (h) => (h.sections[1].offset = -16), /sections\[1\]\.offset must be an integer >= 0, not -16/],
    ["unaligned offset", (h) => (h.sections[0].offset = 4), /sections\[0\]\.offset 4 is not a multiple of 8/],
    ["dtype f16", (h) => (h.sections[0].dtype = "f16"), /sections\[0\]\.dtype must be "f32" or "f64", not "f16"/],
    ["past the end", (h) => (h.sections[1].length = 1e15), /sections\[1\] \(section b: 1000000000000000 × f64 at offset 56\) runs past the end of the data \(152 bytes\)/],
    ["repeated name", (h) => (h.sections[1].name = "a"), /sections\[1\]\.name repeats section "a"/],
    ["empty name", (h) => (h.sections[1].name = ""), /sections\[1\]\.name must be a non-empty string/],
  ];
  for (const [what, edit, message] of cases) it(`a resealed header: ${what}`, () => refused(resealed(edit), message));

  it("a header that is not JSON, or not an object", () => {
    const seal = (json: string) => {
      const j = Buffer.from(json, "utf8"), pre = Buffer.alloc(12);
      pre.write("CFCKPT02", 0, "ascii");
      pre.writeUInt32LE(j.length, 8);
      const body = Buffer.concat([pre, j, Buffer.alloc((8 - ((12 + j.length) % 8)) % 8)]);
      return Buffer.concat([body, createHash("sha256").update(body).digest()]);
    };
    refused(seal("{ not json"), /the header is not valid JSON/);
    refused(seal("[1, 2]"), /the header must be a JSON object, not a list/);
  });
});

const OPTIONS: ModelOptions = { hidden: 5, inputSize: 3, outputs: 2, layers: 2, bidirectional: true, seed: 4, backend: "ts" };
const input = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7));

describe("saveModel and loadModel", () => {
  for (const precision of [32, 64] as const)
    it(`float${precision}: the same bits and the same predictions after a round trip`, () => {
      const model = new Model(GRU, { ...OPTIONS, precision });
      model.params.forEach((_, i) => (model.params[i] = Math.sin(i * 1.3))); // not the seed's values: loading must copy them
      const bytes = saveModel(model), back = loadModel(GRU, bytes, { backend: "ts" }); // where it runs is the loader's choice
      expect(back.params.constructor).toBe(model.params.constructor);
      expect(hex(new Uint8Array(back.params.buffer))).toBe(hex(new Uint8Array(model.params.buffer)));
      expect(back.parameters).toEqual(model.parameters);
      const x = precision === 32 ? input(4 * 2 * 3) : Float64Array.from(input(4 * 2 * 3));
      model.training = back.training = false;
      expect([...back.forward(x, { batch: 2, steps: 4 })]).toEqual([...model.forward(x, { batch: 2, steps: 4 })]);
      const meta = decodeContainer<any>(bytes).header.meta;
      expect(meta.kind).toBe("cellforge model");
      expect(meta.cell).toBe("gru");
      expect(meta.options).toEqual({ hidden: 5, inputSize: 3, outputs: 2, layers: 2, bidirectional: true, seed: 4, precision }); // not where it ran
      expect(meta.parameters[0]).toEqual({ name: "l0.Wir", shape: [5, 3] });
      model.dispose();
      back.dispose();
    });

  it("a float64 file loads into a float32 model when asked (rounded)", () => {
    const model = new Model(GRU, { ...OPTIONS, precision: 64 });
    const back = loadModel(GRU, saveModel(model), { precision: 32 });
    expect(back.params).toBeInstanceOf(Float32Array);
    expect([...back.params]).toEqual([...Float32Array.from(model.params)]);
  });

  const loadError = (mod: KernelModule, bytes: Uint8Array): string => {
    try {
      loadModel(mod, bytes, { file: "m.cfm" });
    } catch (e) {
      expect(e).toBeInstanceOf(ModelFileError);
      return (e as Error).message;
    }
    throw new Error("the model loaded");
  };

  it("a file of another cell is refused, naming both", () => {
    expect(loadError(MGU, saveModel(new Model(GRU, OPTIONS)))).toBe('m.cfm: holds a model of cell "gru", not of cell "mgu" (the kernel module given)');
  });

  it("parameters of other shapes, or missing, are refused, naming each difference", () => {
    const bytes = saveModel(new Model(GRU, OPTIONS));
    const { header, sections } = decodeContainer<any>(bytes);
    header.meta.parameters[0].shape = [5, 4];
    header.meta.parameters.splice(1, 1);
    header.meta.parameters.push({ name: "l9.W", shape: [1] });
    const edited = encodeContainer(header.meta, Object.fromEntries(sections));
    expect(loadError(GRU, edited)).toBe('m.cfm: its parameters do not fit cell "gru" with the file\'s options as it is now: l0.Wir is [5, 4] in the file, [5, 3] in the model; l0.Wiz [5, 3] is not in the file; the file\'s l9.W [1] is not a parameter of the model');
  });

  it("a section of the wrong length is refused", () => {
    const model = new Model(GRU, OPTIONS), { header, sections } = decodeContainer<any>(saveModel(model));
    const shorter = new Map(sections).set("l0.Wir", new Float32Array(14));
    expect(loadError(GRU, encodeContainer(header.meta, Object.fromEntries(shorter)))).toBe("m.cfm: section l0.Wir has 14 numbers, not the 15 of shape [5, 3]");
  });

  it("options that no longer build a model are refused, naming the file and the options", () => {
    const { header, sections } = decodeContainer<any>(saveModel(new Model(GRU, OPTIONS)));
    header.meta.options.hidden = 0;
    expect(loadError(GRU, encodeContainer(header.meta, Object.fromEntries(sections)))).toMatch(/^m\.cfm: its options \{"hidden":0,.*\} do not build a model of cell "gru": .*hidden/);
  });

  it("a training checkpoint is not a model file", () => {
    expect(loadError(GRU, encodeContainer({ step: 3, config: {} }, { params: new Float32Array(4) }))).toMatch(/^m\.cfm: not a model file: its meta\.kind is undefined, not "cellforge model"/);
  });
});

describe("the Python reader (scripts/cellforge_model.py, standard library)", () => {
  const python = (code: string, ...args: string[]) => spawnSync("/usr/bin/python3", ["-c", code, ...args], { encoding: "utf8", cwd: join(import.meta.dirname, "..") });

  it("reads every parameter's values and shape, verifying the hash; prints a summary; refuses a damaged file", () => {
    const model = new Model(GRU, OPTIONS), f = join(TMP, "gru.cfm");
    writeFileSync(f, saveModel(model));
    const read = python("import json, sys; sys.path.insert(0, 'scripts'); from cellforge_model import read_model; print(json.dumps(read_model(sys.argv[1])))", f);
    expect(read.stderr).toBe("");
    const { meta, arrays } = JSON.parse(read.stdout) as { meta: any; arrays: Record<string, unknown> };
    expect(meta.cell).toBe("gru");
    for (const p of model.parameters) {
      const a = arrays[p.name] as number[] | number[][];
      expect([a.length, ...(Array.isArray(a[0]) ? [a[0].length] : [])]).toEqual(p.shape);
      expect(a.flat()).toEqual([...model.params.subarray(p.offset, p.offset + p.length)]); // f32 → Python float → JSON: exact
    }
    const cli = spawnSync("/usr/bin/python3", [join(import.meta.dirname, "..", "scripts", "cellforge_model.py"), f], { encoding: "utf8" });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain(`a cellforge model of cell 'gru'`);
    expect(cli.stdout).toMatch(/l0_reverse\.Whn\s+5 x 5/);
    expect(cli.stdout).toContain(`${model.params.length} numbers in ${model.parameters.length} arrays; sha256 verified`);
    const bad = saveModel(model);
    bad[100]! ^= 1;
    writeFileSync(f, bad);
    const refused = spawnSync("/usr/bin/python3", [join(import.meta.dirname, "..", "scripts", "cellforge_model.py"), f], { encoding: "utf8" });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/does not match its sha256/);
  }, 60_000);

  it("with numpy, when installed: arrays of the parameters' shapes", () => {
    if (python("import numpy").status !== 0) return; // numpy is optional
    const model = new Model(GRU, { ...OPTIONS, precision: 64 }), f = join(TMP, "gru64.cfm");
    writeFileSync(f, saveModel(model));
    const read = python("import json, sys; sys.path.insert(0, 'scripts'); from cellforge_model import read_model; m = read_model(sys.argv[1], numpy=True); print(json.dumps({k: [list(v.shape), str(v.dtype), v.ravel().tolist()] for k, v in m['arrays'].items()}))", f);
    const arrays = JSON.parse(read.stdout) as Record<string, [number[], string, number[]]>;
    for (const p of model.parameters) {
      expect(arrays[p.name]![0]).toEqual(p.shape);
      expect(arrays[p.name]![1]).toBe("float64");
      expect(arrays[p.name]![2]).toEqual([...model.params.subarray(p.offset, p.offset + p.length)]);
    }
  }, 60_000);
});

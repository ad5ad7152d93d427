// Model files (nn/file.ts): the TypeScript sha256 against FIPS 180-4's vectors and node:crypto; the
// container (the safetensors layout) byte for byte against a writer written here from the format's
// description (Buffer and node:crypto); every malformed container refused by name; a strict reader of
// the safetensors spec, written here in Python's standard library, reads the files; a saved Model loads back with the same bits and the same predictions,
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

  it("of parts, one after another, equals the hash of their concatenation (each split of 0-200 bytes in three)", () => {
    const bytes = Uint8Array.from({ length: 200 }, (_, i) => (i * 89 + 7) & 255);
    for (const n of [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 200])
      for (const i of [0, 1, 30, 63, 64, 100]) {
        const a = Math.min(i, n), parts = [bytes.subarray(0, a), bytes.subarray(a, Math.max(a, n - 7)), bytes.subarray(Math.max(a, n - 7), n)];
        const want = createHash("sha256").update(bytes.subarray(0, n)).digest("hex");
        expect(hex(sha256(...parts)), `length ${n}, split at ${a}`).toBe(want);
        expect(hex(sha256Native(...parts))).toBe(want);
      }
  });
});

/** The container as its description says (nn/file.ts), written with Buffer and node:crypto. */
function referenceContainer(meta: unknown, sections: Record<string, FloatArray>, shapes: Record<string, number[]> = {}): Buffer {
  const tensors: string[] = [], chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(sections)) {
    const b = Buffer.alloc(a.byteLength);
    a.forEach((x, i) => (a instanceof Float32Array ? b.writeFloatLE(x, 4 * i) : b.writeDoubleLE(x, 8 * i)));
    tensors.push(`${JSON.stringify(name)}:{"dtype":"${a instanceof Float32Array ? "F32" : "F64"}","shape":${JSON.stringify(shapes[name] ?? [a.length])},"data_offsets":[${offset},${offset + b.length}]}`);
    chunks.push(b);
    offset += b.length;
  }
  const metadata = `{"__metadata__":{"sha256":"${"0".repeat(64)}","format":"cellforge checkpoint","version":"3","meta":${JSON.stringify(JSON.stringify(meta))}}`;
  let json = Buffer.from(`${metadata},${tensors.join(",")}}`, "utf8");
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, " ")]);
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(json.length));
  const file = Buffer.concat([n, json, ...chunks]);
  file.write(createHash("sha256").update(file).digest("hex"), 35, "ascii");
  return file;
}

/** A header's JSON text and the data as a file, the sha256 patched in where the header begins with the placeholder. */
function craft(json: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const j = Buffer.from(json + " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8), "utf8"), n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(j.length));
  const file = Buffer.concat([n, j, data]);
  if (file.toString("latin1", 8, 99) === `{"__metadata__":{"sha256":"${"0".repeat(64)}`) file.write(createHash("sha256").update(file).digest("hex"), 35, "ascii");
  return file;
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

  it("gives a section the shape asked for, and refuses a shape that does not hold it", () => {
    const bytes = encodeContainer(META, SECTIONS(), { a: [13, 1], empty: [0, 4] });
    expect(hex(bytes)).toBe(referenceContainer(META, SECTIONS(), { a: [13, 1], empty: [0, 4] }).toString("hex"));
    expect(decodeContainer(bytes).header.sections.map((s) => [s.name, s.shape])).toEqual([["a", [13, 1]], ["b", [7]], ["empty", [0, 4]], ["edges", [5]]]);
    expect(() => encodeContainer(META, SECTIONS(), { a: [3, 3] })).toThrow(/section a: shape \[3, 3\] does not hold its 13 numbers/);
    expect(() => encodeContainer(META, { __metadata__: new Float32Array(1) })).toThrow(/cannot be named "__metadata__"/);
  });

  it("reads a container at an odd offset of a larger buffer (arrays copied, aligned)", () => {
    const bytes = encodeContainer(META, SECTIONS()), big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect([...decodeContainer(big.subarray(3)).sections.get("b")!]).toEqual([...SECTIONS()["b"]!]);
  });

  /** Parse, edit and reseal (a valid hash over a malformed header: only validation stands in the way). */
  const resealed = (edit: (h: any) => void, extra = 0): Uint8Array => {
    const b = Buffer.from(encodeContainer(META, SECTIONS())), n = Number(b.readBigUInt64LE(0));
    const header = JSON.parse(b.toString("utf8", 8, 8 + n));
    edit(header);
    return sealContainer(header, Buffer.concat([b.subarray(8 + n), Buffer.alloc(extra)]));
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

  it("not safetensors, a file of an earlier cellforge, a truncated file, a flipped bit, a huge header length", () => {
    const NOT = "x.cfm: not a cellforge checkpoint or model file (not the safetensors layout cellforge writes: 8 bytes of header length, then a header beginning {\"__metadata__\":{\"sha256\":\")";
    refused(new TextEncoder().encode("hello, world, this is no model at all"), NOT);
    refused(new Uint8Array(3), NOT);
    refused(Buffer.from("CFCKPT02abcd"), /^x\.cfm: a cellforge file of version 2 \(magic CFCKPT02\), written by an earlier cellforge; this one reads only the safetensors layout \(version 3\), so it is not read\. Train again or save the model again/);
    refused(Buffer.from("CFCKPT01abcd"), /a cellforge file of version 1 \(magic CFCKPT01\), written by an earlier cellforge/);
    const flipped = encodeContainer(META, SECTIONS());
    flipped[flipped.length - 8]! ^= 1;
    refused(flipped, /does not match its sha256 .*the hash covers the header and the data/);
    const inHeader = encodeContainer(META, SECTIONS());
    inHeader[120]! ^= 1; // in the metadata, after the hash
    refused(inHeader, /does not match its sha256/);
    const cut = encodeContainer(META, SECTIONS());
    refused(cut.subarray(0, cut.length - 4), /does not match its sha256/);
    refused(cut.subarray(0, 100), /the header's length N = \d+ runs past the end of the file \(100 bytes\)/);
    const huge = Buffer.from(encodeContainer(META, SECTIONS()));
    huge.writeBigUInt64LE(2n ** 63n, 0);
    refused(huge, /the header's length N = 9223372036854776000 runs past the end of the file \(\d+ bytes\), beyond any cellforge header \(67108864 bytes\)/);
    refused(craft(`{"__metadata__":{"sha256":"${"0".repeat(64)}"}}`.slice(0, 60)), /the header's length N = 64 is too short to hold its sha256/);
  });

  it("a sha256 missing, misplaced, not hex, or not the metadata's", () => {
    const tensors = `"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`, md = `"format":"cellforge checkpoint","version":"3","meta":"{}"`;
    refused(craft(`{"__metadata__":{${md}},${tensors}}`), /not a cellforge checkpoint or model file .*header beginning/); // no sha256
    refused(craft(`{${tensors},"__metadata__":{"sha256":"${"0".repeat(64)}",${md}}}`), /not a cellforge checkpoint or model file/); // not first
    refused(craft(`{"__metadata__":{"sha256":"${"Z".repeat(64)}",${md}},${tensors}}`), /the header's sha256 must be 64 lowercase hex digits, not "Z{64}"/);
    refused(craft(`{"__metadata__":{"sha256":"${"0".repeat(64)}x",${md}},${tensors}}`), /the header's __metadata__\.sha256 is not the one at its fixed place \(bytes 35-98\)/);
    refused(craft(`{"__metadata__":{"sha256":"${"0".repeat(64)}",${md},"n":5},${tensors}}`), /the header's __metadata__ must be an object of strings/);
    expect(decodeContainer(craft(`{"__metadata__":{"sha256":"${"0".repeat(64)}",${md}},${tensors}}`)).sections.get("a")).toEqual(new Float32Array(0));
  });

  it("a header JSON.parse would forgive: a repeated key (the last one kept), other spacing", () => {
    const start = `{"__metadata__":{"sha256":"${"0".repeat(64)}","format":"cellforge checkpoint","version":"3"`, a = `"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`;
    const NOT_AS_WRITTEN = /the header is not written as cellforge writes it \(a repeated key, or other spacing, order or number forms\), though its hash matches/;
    expect(decodeContainer(craft(`${start},"meta":"{}"},${a}}`, new Uint8Array(4))).sections.get("a")).toEqual(new Float32Array(1)); // as written
    refused(craft(`${start},"meta":"{}"},${a},${a}}`, new Uint8Array(4)), NOT_AS_WRITTEN);
    refused(craft(`${start},"meta":"{\\"step\\":1}","meta":"{}"},${a}}`, new Uint8Array(4)), NOT_AS_WRITTEN);
    refused(craft(`${start},"meta":"{}"},${a},"__metadata__":{"sha256":"${"0".repeat(64)}","format":"cellforge checkpoint","version":"3","meta":"{}"}}`, new Uint8Array(4)), /__metadata__\.sha256 is not the one at its fixed place/); // a second __metadata__
    refused(craft(`${start}, "meta":"{}"},${a}}`, new Uint8Array(4)), NOT_AS_WRITTEN);
    refused(craft(`${start},"meta":"{}"},${a.replace("[1]", "[1.0]")}}`, new Uint8Array(4)), NOT_AS_WRITTEN);
  });

  const cases: [string, (h: any) => void, RegExp][] = [
    ["format", (h) => (h.__metadata__.format = "zip"), /the header's __metadata__\.format must be "cellforge checkpoint", not "zip"/],
    ["version 2", (h) => (h.__metadata__.version = "2"), /the header's __metadata__\.version must be "3", not "2"/],
    ["version a number", (h) => (h.__metadata__.version = 3), /the header's __metadata__ must be an object of strings/],
    ["missing meta", (h) => delete h.__metadata__.meta, /the header's meta \(__metadata__\.meta\) is missing/],
    ["meta not JSON", (h) => (h.__metadata__.meta = "{"), /the header's meta \(__metadata__\.meta\) is not valid JSON/],
    ["a metadata value a list", (h) => (h.__metadata__.format = ["cellforge checkpoint"]), /the header's __metadata__ must be an object of strings/],
    ["a tensor not an object", (h) => (h.a = 5), /the header's tensor "a" must be an object \{ dtype, shape, data_offsets \}, not 5/],
    ["overlap", (h) => (h.b.data_offsets = [48, 104]), /tensors a \(to byte 52\) and b \(from byte 48\) overlap/],
    ["a gap", (h) => (h.a.data_offsets = [4, 56]), /the header's tensors leave bytes 0-3 of the data unused, before a/],
    ["negative offset", (h) => (h.b.data_offsets = [-16, 40]), /tensor "b"'s data_offsets must be \[begin, end\], integers with 0 <= begin <= end, not \[-16,40\]/],
    ["begin after end", (h) => (h.b.data_offsets = [108, 52]), /tensor "b"'s data_offsets must be \[begin, end\]/],
    ["three offsets", (h) => (h.b.data_offsets = [52, 108, 116]), /tensor "b"'s data_offsets must be \[begin, end\]/],
    ["dtype F16", (h) => (h.a.dtype = "F16"), /tensor "a"'s dtype must be "F32" or "F64" \(the dtypes cellforge writes\), not "F16"/],
    ["dtype f32", (h) => (h.a.dtype = "f32"), /tensor "a"'s dtype must be "F32" or "F64"/],
    ["shape not a list", (h) => (h.a.shape = 13), /tensor "a"'s shape must be a list of integers >= 0, not 13/],
    ["shape -1", (h) => (h.a.shape = [-1, -13]), /tensor "a"'s shape must be a list of integers >= 0, not \[-1,-13\]/],
    ["shape product", (h) => (h.a.shape = [2, 7]), /tensor "a" \(F32, shape \[2, 7\], 14 numbers\) does not fit its data_offsets \[0, 52\] \(52 bytes\)/],
    ["huge shape", (h) => (h.b.shape = [1e15, 1e15]), /tensor "b" \(F64, shape \[1000000000000000, 1000000000000000\], 1e\+30 numbers\) does not fit/],
    ["past the end", (h) => ((h.edges.data_offsets = [108, 156]), (h.edges.shape = [6])), /the header's tensors run past the end of the data \(to byte 156 of 148\)/],
    ["empty name", (h) => (h[""] = h.empty), /the header's tensor names must be non-empty strings/],
  ];
  for (const [what, edit, message] of cases) it(`a resealed header: ${what}`, () => refused(resealed(edit), message));
  it("a resealed header: bytes after the last tensor", () => refused(resealed(() => {}, 8), /the header's tensors cover 148 of the data's 156 bytes \(bytes after the last tensor\)/));

  it("a header that is not JSON, not UTF-8, or not an object", () => {
    const start = `{"__metadata__":{"sha256":"${"0".repeat(64)}"`;
    refused(craft(`${start}, not json`), /the header is not valid JSON/);
    const latin1 = craft(`${start},"m":"x"}}`);
    latin1[latin1.indexOf('"x"') + 1] = 0xff; // not UTF-8 (the hash is over the bytes, so patch it again)
    latin1.write("0".repeat(64), 35, "ascii");
    latin1.write(createHash("sha256").update(latin1).digest("hex"), 35, "ascii");
    refused(latin1, /the header is not valid JSON: .*(encoded|invalid)/i);
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

  it("a section of the wrong length, or of another shape in the header, is refused", () => {
    const model = new Model(GRU, OPTIONS), { header, sections } = decodeContainer<any>(saveModel(model));
    const shorter = new Map(sections).set("l0.Wir", new Float32Array(14));
    expect(loadError(GRU, encodeContainer(header.meta, Object.fromEntries(shorter)))).toBe("m.cfm: section l0.Wir has 14 numbers, not the 15 of shape [5, 3]");
    const shapes = Object.fromEntries(header.sections.map((s) => [s.name, s.name === "l0.Whr" ? [25] : [...s.shape]]));
    expect(loadError(GRU, encodeContainer(header.meta, Object.fromEntries(sections), shapes))).toBe("m.cfm: section l0.Whr is of shape [25] in the header, [5, 5] in the model");
    model.dispose();
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

/**
 * A strict reader of the safetensors spec (github.com/huggingface/safetensors, "Format"), written here
 * from the spec alone, in Python's standard library (PyPI is not reachable in CI, so not the safetensors
 * package): the u64 length, the JSON header (no repeated keys; only spaces after it), __metadata__ of
 * strings, each tensor's dtype, shape and data_offsets, the offsets contiguous from 0 and covering the
 * buffer exactly (no trailing bytes). It prints the metadata and each tensor as [dtype, shape, values].
 */
const STRICT_SAFETENSORS = String.raw`
import json, math, struct, sys
SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
def once(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "repeated key"
    return dict(pairs)
b = open(sys.argv[1], "rb").read()
assert len(b) >= 8
(n,) = struct.unpack("<Q", b[:8])
assert 8 + n <= len(b), "header past the end"
text = b[8:8 + n].decode("utf-8")
assert text.startswith("{") and text.rstrip(" ").endswith("}"), "header is one JSON object, then spaces"
header = json.loads(text, object_pairs_hook=once)
meta = header.pop("__metadata__", {})
assert isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "__metadata__ is str -> str"
buf = b[8 + n:]
at, out = 0, {}
for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
    assert set(t) == {"dtype", "shape", "data_offsets"}, name
    assert t["dtype"] in SIZES, t["dtype"]
    assert all(isinstance(d, int) and d >= 0 for d in t["shape"]), name
    begin, end = t["data_offsets"]
    assert begin == at and end >= begin, f"{name}: not contiguous"
    count = math.prod(t["shape"])
    assert end - begin == count * SIZES[t["dtype"]], f"{name}: size"
    at = end
    code = {"F32": "f", "F64": "d"}[t["dtype"]]
    vals = struct.unpack_from(f"<{count}{code}", buf, begin)
    out[name] = [t["dtype"], t["shape"], [x if math.isfinite(x) else repr(x) for x in vals]]
assert at == len(buf), "the tensors do not cover the buffer exactly"
print(json.dumps({"metadata": meta, "tensors": out}))
`;

describe("the files are safetensors files: a strict reader of the spec written here reads them", () => {
  const strict = (bytes: Uint8Array) => {
    const f = join(TMP, "strict.safetensors");
    writeFileSync(f, bytes);
    const r = spawnSync("/usr/bin/python3", ["-c", STRICT_SAFETENSORS, f], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    return JSON.parse(r.stdout) as { metadata: Record<string, string>; tensors: Record<string, [string, number[], (number | string)[]]> };
  };
  const values = (a: FloatArray) => [...a].map((x) => (Number.isFinite(x) ? x : Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf"));

  it("a container: the metadata, each tensor's dtype, flat shape and values; the sha256 as described", () => {
    const bytes = encodeContainer(META, SECTIONS()), { metadata, tensors } = strict(bytes);
    expect(Object.keys(metadata)).toEqual(["sha256", "format", "version", "meta"]);
    expect(metadata).toMatchObject({ format: "cellforge checkpoint", version: "3" });
    expect(JSON.parse(metadata.meta!)).toEqual(META);
    const zeroed = Buffer.from(bytes);
    zeroed.write("0".repeat(64), 35, "ascii");
    expect(metadata.sha256).toBe(createHash("sha256").update(zeroed).digest("hex"));
    expect(Object.keys(tensors)).toEqual(Object.keys(SECTIONS())); // in offset order: the order written
    for (const [name, a] of Object.entries(SECTIONS())) expect(tensors[name]).toEqual([a instanceof Float32Array ? "F32" : "F64", [a.length], values(a)]);
  }, 60_000);

  for (const precision of [32, 64] as const)
    it(`a float${precision} model file: every parameter, of its shape`, () => {
      const model = new Model(GRU, { ...OPTIONS, precision }), { metadata, tensors } = strict(saveModel(model));
      expect(JSON.parse(metadata.meta!).kind).toBe("cellforge model");
      for (const p of model.parameters) expect(tensors[p.name]).toEqual([precision === 32 ? "F32" : "F64", p.shape, values(model.params.subarray(p.offset, p.offset + p.length))]);
      expect(Object.keys(tensors).length).toBe(model.parameters.length);
      model.dispose();
    }, 60_000);
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
    writeFileSync(f, Buffer.concat([Buffer.from("CFCKPT02"), Buffer.alloc(64)]));
    const old = spawnSync("/usr/bin/python3", [join(import.meta.dirname, "..", "scripts", "cellforge_model.py"), f], { encoding: "utf8" });
    expect(old.status).toBe(1);
    expect(old.stderr).toMatch(/the format before safetensors \(CFCKPT02\), written by an earlier cellforge/);
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

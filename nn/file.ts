// Model files and training checkpoints (src/train/checkpoint.ts reads and writes its files with the
// functions here, so there is one implementation of the format), in the safetensors layout
// (https://github.com/huggingface/safetensors), so that Python reads them without cellforge:
//
//   bytes 0-7   N, the header's length in bytes, uint64 little-endian
//   bytes 8-    the header: N bytes of UTF-8 JSON, padded with spaces to a multiple of 8:
//                 { "__metadata__": { "sha256": "<64 hex>", "format": "cellforge checkpoint", "version": "3",
//                                     "meta": "<the meta, as JSON text>" },
//                   "<section>": { "dtype": "F32" | "F64", "shape": [...], "data_offsets": [begin, end] }, ... }
//   then        the data: each section's numbers, IEEE 754 little-endian, at [begin, end) bytes from the data's
//               start; the sections follow one another in the order written, no gaps, no overlaps, no
//               bytes after the last (as the safetensors spec demands, so an f64 section need not be
//               8-byte aligned in the file: it is read through a copy)
//
// `__metadata__` is the header's first key and "sha256" its first entry, so the header begins with
// the fixed bytes {"__metadata__":{"sha256":" and the hash is at bytes 35-98 of the file. It is the
// sha256 of the whole file with those 64 hex digits written as 64 "0"s: it covers the header and
// the data, and an edit of either is refused. The header is then checked field by field, so a file
// whose hash was recomputed over a malformed header is refused by name, never read shifted; and its
// text must be the one cellforge writes for it, so a repeated key (which JSON.parse forgives) is refused.
//
// A model file's meta is { kind: "cellforge model", cell, options, parameters: [{ name, shape }] } and
// it has one tensor per parameter, named as Model.parameters names them, of the parameter's shape, in
// the model's precision. A checkpoint's tensors are flat ([length]).
// Files of earlier cellforge versions (magic "CFCKPT01", "CFCKPT02" at byte 0) are refused, saying so.
// readSafetensors reads any safetensors file of float tensors (another tool's, no hash); decodeContainer
// builds on the same checks and adds cellforge's: the sha256, the metadata, F32/F64 only, the exact header text.
// Browser-safe: Uint8Array, DataView, TextEncoder and a TypeScript sha256; no Buffer, no node: module.
// scripts/cellforge_model.py reads these files with Python's standard library; safetensors reads them too.
import type { FloatArray, KernelModule } from "../runtime/kernel.ts";
import { Model, type ModelOptions } from "./model.ts";
import { sha256 } from "./sha256.ts";

/** The header's first bytes: the sha256's place is fixed, right after them. */
export const HEADER_PREFIX = '{"__metadata__":{"sha256":"';
const HASH_AT = 8 + HEADER_PREFIX.length, HASH_HEX = 64, FORMAT = "cellforge checkpoint", VERSION = "3";
/** A header longer than this is not one cellforge wrote (a training header is a few kB; its history grows ~100 bytes an evaluation). */
const MAX_HEADER = 64 * 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Bytes per number of each dtype read: cellforge writes F32 and F64; a plain safetensors file may also hold F16 and BF16. */
const WIDTH = { F64: 8, F32: 4, F16: 2, BF16: 2 } as const;
type Dtype = keyof typeof WIDTH;
/** What cellforge's own files hold, and what a plain safetensors file may hold (readSafetensors). */
const OWN_DTYPES: readonly Dtype[] = ["F32", "F64"], READ_DTYPES: readonly Dtype[] = ["F64", "F32", "F16", "BF16"];
/** The safetensors spec's own limit on a header (100 MB); cellforge's files stay under MAX_HEADER. */
const SPEC_MAX_HEADER = 100_000_000;

export interface SectionInfo {
  readonly name: string;
  /** "f32" or "f64" (the safetensors dtype "F32" or "F64"). */
  readonly dtype: "f32" | "f64";
  readonly shape: readonly number[];
  /** The number of elements: the product of the shape. */
  readonly length: number;
  /** Where the section begins, in bytes from the data's start. */
  readonly offset: number;
}

export interface ContainerHeader<M> {
  readonly format: "cellforge checkpoint";
  readonly version: 3;
  readonly sections: readonly SectionInfo[];
  /** What the writer stores: a training run's configuration and state, or a model's (ModelFileMeta). */
  readonly meta: M;
}

export interface Container<M> {
  readonly header: ContainerHeader<M>;
  readonly sections: ReadonlyMap<string, FloatArray>;
}

/** A file that is not a valid container, or a model file that does not fit the model asked for; the message names the file and what is wrong. */
export class ModelFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelFileError";
  }
}

const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, Math.min(to, b.length)));

/** What the first bytes say a file is: a container of this cellforge, one of an earlier cellforge ("CFCKPT01"/"CFCKPT02"), or neither. */
export function containerKind(bytes: Uint8Array): "safetensors" | "CFCKPT01" | "CFCKPT02" | null {
  const magic = ascii(bytes, 0, 8);
  if (magic === "CFCKPT01" || magic === "CFCKPT02") return magic;
  return ascii(bytes, 8, HASH_AT) === HEADER_PREFIX ? "safetensors" : null;
}

/** The sha256 of the file with the hash's 64 hex digits as "0"s (bytes 35-98). */
const ZEROS = new Uint8Array(HASH_HEX).fill(0x30);
const fileHash = (bytes: Uint8Array) => sha256(bytes.subarray(0, HASH_AT), ZEROS, bytes.subarray(HASH_AT + HASH_HEX));
const hexOf = (u: Uint8Array) => Array.from(u, (x) => x.toString(16).padStart(2, "0")).join("");

/** The header as cellforge writes it, with `hash` as its sha256: compact JSON, __metadata__ first and its sha256 first, spaces to a multiple of 8 bytes. */
function headerText(header: Readonly<Record<string, unknown>>, hash: string): string {
  const { __metadata__: given = {}, ...tensors } = header as { __metadata__?: Record<string, unknown> };
  const { sha256: _old, ...metadata } = given;
  const entries = (o: object) => Object.entries(o).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join("");
  const json = `${HEADER_PREFIX}${hash}"${entries(metadata)}}${entries(tensors)}}`;
  return json + " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
}

/**
 * The file's bytes for a safetensors header and its data: `header.__metadata__` (strings) is written
 * first, after a "sha256" entry (any given is replaced), then the other keys in their order; spaces
 * up to a multiple of 8; the data; then the sha256 patched in.
 */
export function sealContainer(header: Readonly<Record<string, unknown>>, data: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(headerText(header, "0".repeat(HASH_HEX))), out = new Uint8Array(8 + text.length + data.length), view = new DataView(out.buffer);
  view.setUint32(0, text.length, true); // the u64's low half; the high half stays 0
  out.set(text, 8);
  out.set(data, 8 + text.length);
  out.set(new TextEncoder().encode(hexOf(fileHash(out))), HASH_AT);
  return out;
}

/**
 * A container of `meta` and the arrays, each stored bit for bit in its own precision, in the order
 * given; `shapes` gives a section's shape (its product must be the array's length), else [length].
 */
export function encodeContainer<M>(meta: M, sections: Readonly<Record<string, FloatArray>>, shapes: Readonly<Record<string, readonly number[]>> = {}): Uint8Array {
  const tensors: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const [name, a] of Object.entries(sections)) {
    const shape = [...(shapes[name] ?? [a.length])];
    if (name === "__metadata__" || name === "") throw new Error(`a section cannot be named ${JSON.stringify(name)}`);
    if (shape.reduce((p, d) => p * d, 1) !== a.length) throw new Error(`section ${name}: shape [${shape.join(", ")}] does not hold its ${a.length} numbers`);
    tensors[name] = { dtype: a instanceof Float32Array ? "F32" : "F64", shape, data_offsets: [offset, offset + a.byteLength] };
    offset += a.byteLength;
  }
  const data = new Uint8Array(offset), view = new DataView(data.buffer);
  Object.values(sections).forEach((a, k) => {
    const at = Object.values(tensors)[k]!.data_offsets[0];
    if (LITTLE_ENDIAN) data.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    else if (a instanceof Float32Array) a.forEach((x, i) => view.setFloat32(at + 4 * i, x, true));
    else a.forEach((x, i) => view.setFloat64(at + 8 * i, x, true));
  });
  return sealContainer({ __metadata__: { format: FORMAT, version: VERSION, meta: JSON.stringify(meta) }, ...tensors }, data);
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const show = (x: unknown): string => (typeof x === "object" && x !== null ? (Array.isArray(x) ? "a list" : "an object") : JSON.stringify(x) ?? String(x));
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** A tensor's place in the data, as the header gives it. */
interface Layout { readonly name: string; readonly dtype: Dtype; readonly shape: number[]; readonly length: number; readonly offset: number }

/**
 * The tensors a header lists, checked: dtypes among `dtypes` (`why` says whose), shapes, data_offsets
 * that fit the shapes and cover the `dataLength` bytes of data exactly, in order.
 */
function checkTensors(source: string, header: Record<string, unknown>, dataLength: number, dtypes: readonly Dtype[], why: string): Layout[] {
  const bad = (field: string, what: string) => new ModelFileError(`${source}: the header's ${field} ${what}`);
  const out: Layout[] = [];
  for (const [name, s] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const at = `tensor ${JSON.stringify(name)}`;
    if (name === "") throw bad("tensor names", `must be non-empty strings, not ""`);
    if (!isRecord(s)) throw bad(at, `must be an object { dtype, shape, data_offsets }, not ${show(s)}`);
    if (!dtypes.includes(s.dtype as Dtype)) {
      const names = dtypes.map((d) => `"${d}"`);
      throw bad(`${at}'s dtype`, `must be ${names.slice(0, -1).join(", ")} or ${names.at(-1)} (${why}), not ${show(s.dtype)}`);
    }
    if (!Array.isArray(s.shape) || !s.shape.every(isCount)) throw bad(`${at}'s shape`, `must be a list of integers >= 0, not ${JSON.stringify(s.shape) ?? "missing"}`);
    const o = s.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every(isCount) || o[0]! > o[1]!) throw bad(`${at}'s data_offsets`, `must be [begin, end], integers with 0 <= begin <= end, not ${JSON.stringify(o) ?? "missing"}`);
    const dtype = s.dtype as Dtype, shape = s.shape as number[], [begin, end] = o as [number, number], width = WIDTH[dtype];
    const length = shape.reduce((p, d) => p * d, 1);
    if (!Number.isSafeInteger(length * width) || length * width !== end - begin)
      throw bad(`${at}`, `(${dtype}, shape [${shape.join(", ")}], ${length} numbers) does not fit its data_offsets [${begin}, ${end}] (${end - begin} bytes)`);
    out.push({ name, dtype, shape, length, offset: begin });
  }
  out.sort((a, b) => a.offset - b.offset);
  let at = 0, prev = "the data's start";
  for (const s of out) {
    const end = s.offset + s.length * WIDTH[s.dtype];
    if (s.offset < at) throw new ModelFileError(`${source}: the header's tensors ${prev} (to byte ${at}) and ${s.name} (from byte ${s.offset}) overlap`);
    if (s.offset > at) throw new ModelFileError(`${source}: the header's tensors leave bytes ${at}-${s.offset - 1} of the data unused, before ${s.name} (safetensors tensors follow one another)`);
    [at, prev] = [end, s.name];
  }
  if (at !== dataLength) throw new ModelFileError(`${source}: the header's tensors ${at > dataLength ? `run past the end of the data (to byte ${at} of ${dataLength})` : `cover ${at} of the data's ${dataLength} bytes (bytes after the last tensor)`}`);
  return out;
}

/** The header's length N from the file's first 8 bytes, refused when the header would run past the file or beyond `max` bytes. */
function headerLength(bytes: Uint8Array, source: string, max: number, maxText: string): number {
  if (bytes.length < 8) throw new ModelFileError(`${source}: ${bytes.length} bytes, too short for a safetensors file (8 bytes of header length, then the header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (n > max || 8 + n > bytes.length)
    throw new ModelFileError(`${source}: the header's length N = ${n} runs past the end of the file (${bytes.length} bytes)${n > max ? `, beyond any ${maxText} (${max} bytes)` : ""}`);
  return n;
}

/** The header's N bytes parsed: a JSON object whose __metadata__, if any (`required`: always), is an object of strings. */
function parseHeader(bytes: Uint8Array, n: number, source: string, required: boolean): { header: Record<string, unknown>; text: string } {
  let header: unknown, text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(`${source}: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isRecord(header)) throw new ModelFileError(`${source}: the header must be a JSON object, not ${show(header)}`);
  const md = header.__metadata__;
  if ((required || md !== undefined) && (!isRecord(md) || !Object.values(md).every((v) => typeof v === "string")))
    throw new ModelFileError(`${source}: the header's __metadata__ must be an object of strings`);
  return { header, text };
}

/** A tensor's numbers, copied (the file's data need not be aligned): F32 and F64 as stored, F16 and BF16 widened to float32, exactly. */
function valuesOf(data: Uint8Array, t: Layout): FloatArray {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength), at = t.offset;
  if (t.dtype === "F16" || t.dtype === "BF16") {
    const a = new Float32Array(t.length), bf = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < t.length; i++) {
      const u = dv.getUint16(at + 2 * i, true);
      if (t.dtype === "BF16") bf.setUint32(0, u << 16); // bfloat16 is a float32's high half
      a[i] = t.dtype === "BF16" ? bf.getFloat32(0) : f16(u);
    }
    return a;
  }
  const a = t.dtype === "F32" ? new Float32Array(t.length) : new Float64Array(t.length), width = a.BYTES_PER_ELEMENT;
  if (LITTLE_ENDIAN) new Uint8Array(a.buffer).set(data.subarray(at, at + t.length * width));
  else for (let i = 0; i < t.length; i++) a[i] = width === 4 ? dv.getFloat32(at + 4 * i, true) : dv.getFloat64(at + 8 * i, true);
  return a;
}

/** An IEEE 754 half: sign, 5 exponent bits (bias 15), 10 fraction bits. */
function f16(u: number): number {
  const sign = u >> 15 ? -1 : 1, e = (u >> 10) & 31, m = u & 1023;
  return sign * (e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1024 + m) * 2 ** (e - 25));
}

/** A tensor of a safetensors file: its name, its dtype as stored, its shape, its numbers flat row-major. */
export interface SafeTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: FloatArray;
}

/**
 * Any safetensors file of float tensors (https://github.com/huggingface/safetensors), such as
 * safetensors.torch.save_file writes, read strictly by the spec: the header's length within the file,
 * a JSON object, __metadata__ (optional) an object of strings, every tensor { dtype, shape,
 * data_offsets } with its numbers contiguous and the tensors covering the data exactly. F64 and F32
 * are read as stored, F16 and BF16 widened exactly; any other dtype is refused by name. No hash is
 * checked (decodeContainer checks cellforge's own files). The tensors come in the header's order.
 */
export function readSafetensors(bytes: Uint8Array, source = "the file"): { metadata: Readonly<Record<string, string>> | null; tensors: SafeTensor[] } {
  const n = headerLength(bytes, source, SPEC_MAX_HEADER, "safetensors header");
  const { header } = parseHeader(bytes, n, source, false), data = bytes.subarray(8 + n);
  const layouts = new Map(checkTensors(source, header, data.length, READ_DTYPES, "the float dtypes cellforge reads").map((t) => [t.name, t]));
  const tensors = Object.keys(header).filter((k) => k !== "__metadata__").map((k) => layouts.get(k)!).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: valuesOf(data, t) }));
  return { metadata: (header.__metadata__ as Record<string, string> | undefined) ?? null, tensors };
}

/**
 * A container's header and arrays (copies, aligned), after checking the layout, the sha256, and the
 * header field by field. `source` names the file in messages.
 */
export function decodeContainer<M>(bytes: Uint8Array, source = "the file"): Container<M> {
  const kind = containerKind(bytes);
  if (kind === "CFCKPT01" || kind === "CFCKPT02")
    throw new ModelFileError(`${source}: a cellforge file of version ${kind === "CFCKPT01" ? 1 : 2} (magic ${kind}), written by an earlier cellforge; this one reads only the safetensors layout (version 3), so it is not read. Train again or save the model again with this cellforge, or use the cellforge that wrote it`);
  if (kind === null)
    throw new ModelFileError(`${source}: not a cellforge checkpoint or model file (not the safetensors layout cellforge writes: 8 bytes of header length, then a header beginning ${HEADER_PREFIX})`);
  const n = headerLength(bytes, source, MAX_HEADER, "cellforge header");
  if (n < HEADER_PREFIX.length + HASH_HEX + 2) throw new ModelFileError(`${source}: the header's length N = ${n} is too short to hold its sha256 (a truncated or damaged file)`);
  const hex = ascii(bytes, HASH_AT, HASH_AT + HASH_HEX);
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new ModelFileError(`${source}: the header's sha256 must be 64 lowercase hex digits, not ${JSON.stringify(hex)}`);
  if (hexOf(fileHash(bytes)) !== hex)
    throw new ModelFileError(`${source}: the file does not match its sha256 (a truncated, damaged or edited file; the hash covers the header and the data)`);
  const { header, text } = parseHeader(bytes, n, source, true);
  const md = header.__metadata__ as Record<string, string>;
  if (md.sha256 !== hex) throw new ModelFileError(`${source}: the header's __metadata__.sha256 is not the one at its fixed place (bytes ${HASH_AT}-${HASH_AT + HASH_HEX - 1})`);
  if (md.format !== FORMAT) throw new ModelFileError(`${source}: the header's __metadata__.format must be "${FORMAT}", not ${show(md.format)}`);
  if (md.version !== VERSION) throw new ModelFileError(`${source}: the header's __metadata__.version must be "${VERSION}", not ${show(md.version)}`);
  if (md.meta === undefined) throw new ModelFileError(`${source}: the header's meta (__metadata__.meta) is missing`);
  let meta: M;
  try {
    meta = JSON.parse(md.meta) as M;
  } catch (e) {
    throw new ModelFileError(`${source}: the header's meta (__metadata__.meta) is not valid JSON: ${(e as Error).message}`);
  }
  const data = bytes.subarray(8 + n);
  const layouts = checkTensors(source, header, data.length, OWN_DTYPES, "the dtypes cellforge writes");
  // last, the header's text itself: what JSON.parse forgives (a repeated key, the last one kept) is refused
  if (headerText(header, hex) !== text)
    throw new ModelFileError(`${source}: the header is not written as cellforge writes it (a repeated key, or other spacing, order or number forms), though its hash matches`);
  const sections = new Map(layouts.map((t) => [t.name, valuesOf(data, t)]));
  const infos: SectionInfo[] = layouts.map(({ name, dtype, shape, length, offset }) => ({ name, dtype: dtype === "F32" ? "f32" : "f64", shape, length, offset }));
  return { header: { format: FORMAT, version: 3, sections: infos, meta }, sections };
}

/** A model file's meta: the cell, the options to rebuild the model with, and every parameter's shape. */
export interface ModelFileMeta {
  readonly kind: "cellforge model";
  readonly cell: string;
  readonly options: ModelOptions;
  readonly parameters: readonly { readonly name: string; readonly shape: readonly number[] }[];
}

/** What a model needs to be saved: the Model class's fields (nn/model.ts). */
export type SavedModel = Pick<Model, "cell" | "options" | "params" | "parameters">;

/** Where to run a loaded model (the loader's choice, so a file saved with threads in Node loads in a browser), and the file's name for messages. */
export interface LoadOptions extends Pick<ModelOptions, "backend" | "threads" | "precision"> {
  /** How messages name the file; default "the model file". */
  readonly file?: string;
}

/**
 * The model as a file: its cell, options (without where it ran: backend and threads) and every
 * parameter, in the model's precision. Write it with fs.writeFileSync, or offer it as a Blob.
 */
export function saveModel(model: SavedModel): Uint8Array {
  const { backend: _b, threads: _t, ...options } = model.options;
  const meta: ModelFileMeta = { kind: "cellforge model", cell: model.cell, options, parameters: model.parameters.map(({ name, shape }) => ({ name, shape: [...shape] })) };
  const shapes = Object.fromEntries(model.parameters.map((p) => [p.name, p.shape]));
  return encodeContainer(meta, Object.fromEntries(model.parameters.map((p) => [p.name, model.params.subarray(p.offset, p.offset + p.length)])), shapes);
}

/**
 * The model a file holds, on the kernels of `mod`: refused, naming what differs, when the file is of
 * another cell or its parameters' names or shapes are not those of the model its options build now.
 * `options` pick the backend, threads or precision (a float64 file loads into a float32 model, rounded).
 */
export function loadModel(mod: KernelModule, bytes: Uint8Array, options: LoadOptions = {}): Model {
  const { file: source = "the model file", ...run } = options;
  const { sections, header } = decodeContainer<unknown>(bytes, source);
  const meta = header.meta;
  const bad = (what: string) => new ModelFileError(`${source}: ${what}`);
  if (!isRecord(meta) || meta.kind !== "cellforge model")
    throw bad(`not a model file: its meta.kind is ${show(isRecord(meta) ? meta.kind : meta)}, not "cellforge model" (a training checkpoint? cellforge train --resume reads those)`);
  if (typeof meta.cell !== "string") throw bad(`the meta's cell must be a string, not ${show(meta.cell)}`);
  if (meta.cell !== mod.spec.name) throw bad(`holds a model of cell "${meta.cell}", not of cell "${mod.spec.name}" (the kernel module given)`);
  if (!isRecord(meta.options)) throw bad(`the meta's options must be an object, not ${show(meta.options)}`);
  if (!Array.isArray(meta.parameters) || !meta.parameters.every((p) => isRecord(p) && typeof p.name === "string" && Array.isArray(p.shape) && p.shape.every(Number.isSafeInteger)))
    throw bad(`the meta's parameters must be a list of { name, shape } with integer shapes`);
  const saved = meta.parameters as ModelFileMeta["parameters"];
  let model: Model;
  try {
    model = new Model(mod, { ...(meta.options as unknown as ModelOptions), ...run });
  } catch (e) {
    throw new ModelFileError(`${source}: its options ${JSON.stringify(meta.options)} do not build a model of cell "${mod.spec.name}": ${(e as Error).message}`, { cause: e });
  }
  // every difference at once: a shape, a parameter gone, one the file lacks
  const text = (s: readonly number[]) => `[${s.join(", ")}]`;
  const inFile = new Map(saved.map((p) => [p.name, p.shape]));
  const diffs = model.parameters.flatMap((p) => {
    const s = inFile.get(p.name);
    return s === undefined ? [`${p.name} ${text(p.shape)} is not in the file`] : text(s) !== text(p.shape) ? [`${p.name} is ${text(s)} in the file, ${text(p.shape)} in the model`] : [];
  });
  const names = new Set(model.parameters.map((p) => p.name));
  for (const p of saved) if (!names.has(p.name)) diffs.push(`the file's ${p.name} ${text(p.shape)} is not a parameter of the model`);
  if (diffs.length > 0) {
    model.dispose();
    throw bad(`its parameters do not fit cell "${mod.spec.name}" with the file's options as it is now: ${diffs.join("; ")}`);
  }
  const shapes = new Map(header.sections.map((s) => [s.name, s.shape]));
  for (const p of model.parameters) {
    const a = sections.get(p.name), shape = shapes.get(p.name);
    if (a === undefined || a.length !== p.length || text(shape!) !== text(p.shape)) {
      model.dispose();
      throw bad(`section ${p.name} ${a === undefined ? "is missing" : a.length !== p.length ? `has ${a.length} numbers, not the ${p.length} of shape ${text(p.shape)}` : `is of shape ${text(shape!)} in the header, ${text(p.shape)} in the model`}`);
    }
    model.params.set(a, p.offset);
  }
  return model;
}

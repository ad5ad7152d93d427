// Model files, in the container of the training checkpoints (src/train/checkpoint.ts reads and writes
// its files with the functions here, so there is one implementation of the format):
//
//   bytes 0-7     the ASCII magic "CFCKPT02"
//   bytes 8-11    n, the header's length in bytes, uint32 little-endian
//   bytes 12-     the header: n bytes of UTF-8 JSON { format: "cellforge checkpoint", version: 2,
//                 sections: [{ name, dtype, length, offset }], meta }, then zero bytes up to a multiple of 8
//   then          the data: each section's `length` elements of `dtype` ("f32" or "f64", IEEE 754
//                 little-endian) at `offset` bytes from the data's start (a multiple of 8); no overlaps
//   last 32 bytes the sha256 of every byte before them: the magic, the header and the data
//
// A model file's meta is { kind: "cellforge model", cell, options, parameters: [{ name, shape }] } and
// it has one section per parameter, named as Model.parameters names them, in the model's precision.
// Browser-safe: Uint8Array, DataView, TextEncoder and a TypeScript sha256; no Buffer, no node: module.
// scripts/cellforge_model.py reads these files with Python's standard library.
import type { FloatArray, KernelModule } from "../runtime/kernel.ts";
import { Model, type ModelOptions } from "./model.ts";
import { sha256 } from "./sha256.ts";

const MAGIC = "CFCKPT02", HASH_BYTES = 32;
/** A header longer than this is not one cellforge wrote (a training header is a few kB; its history grows ~100 bytes an evaluation). */
const MAX_HEADER = 64 * 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SectionInfo {
  readonly name: string;
  readonly dtype: "f32" | "f64";
  readonly length: number;
  readonly offset: number;
}

export interface ContainerHeader<M> {
  readonly format: "cellforge checkpoint";
  readonly version: 2;
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

/** The file's bytes for a header and its data: magic, length, JSON, zero padding, data, and the sha256 of all of it. */
export function sealContainer(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = 12 + json.length + ((8 - ((12 + json.length) % 8)) % 8);
  const out = new Uint8Array(start + data.length + HASH_BYTES);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(data, start);
  out.set(sha256(out.subarray(0, start + data.length)), start + data.length);
  return out;
}

/** A container of `meta` and the arrays, each stored bit for bit in its own precision, in the order given. */
export function encodeContainer<M>(meta: M, sections: Readonly<Record<string, FloatArray>>): Uint8Array {
  const infos: SectionInfo[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(sections)) {
    infos.push({ name, dtype: a instanceof Float32Array ? "f32" : "f64", length: a.length, offset });
    offset += a.byteLength + ((8 - (a.byteLength % 8)) % 8);
  }
  const data = new Uint8Array(offset), view = new DataView(data.buffer);
  Object.values(sections).forEach((a, k) => {
    const at = infos[k]!.offset;
    if (LITTLE_ENDIAN) data.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    else if (a instanceof Float32Array) a.forEach((x, i) => view.setFloat32(at + 4 * i, x, true));
    else a.forEach((x, i) => view.setFloat64(at + 8 * i, x, true));
  });
  const header: ContainerHeader<M> = { format: "cellforge checkpoint", version: 2, sections: infos, meta };
  return sealContainer(header, data);
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const show = (x: unknown): string => (typeof x === "object" && x !== null ? (Array.isArray(x) ? "a list" : "an object") : JSON.stringify(x) ?? String(x));

/** The sections a header lists, checked: names, dtypes, lengths and offsets inside `dataLength` bytes, none overlapping. */
function checkSections(source: string, raw: unknown, dataLength: number): SectionInfo[] {
  const bad = (field: string, what: string) => new ModelFileError(`${source}: the header's ${field} ${what}`);
  if (!Array.isArray(raw)) throw bad("sections", `must be a list of { name, dtype, length, offset }, not ${show(raw)}`);
  const names = new Set<string>();
  const out = raw.map((s: unknown, i): SectionInfo => {
    const at = `sections[${i}]`;
    if (!isRecord(s)) throw bad(at, `must be an object { name, dtype, length, offset }, not ${show(s)}`);
    if (typeof s.name !== "string" || s.name === "") throw bad(`${at}.name`, `must be a non-empty string, not ${show(s.name)}`);
    if (names.has(s.name)) throw bad(`${at}.name`, `repeats section ${JSON.stringify(s.name)}`);
    names.add(s.name);
    if (s.dtype !== "f32" && s.dtype !== "f64") throw bad(`${at}.dtype`, `must be "f32" or "f64", not ${show(s.dtype)}`);
    const width = s.dtype === "f32" ? 4 : 8;
    for (const k of ["length", "offset"] as const) {
      const v = s[k];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw bad(`${at}.${k}`, `must be an integer >= 0, not ${show(v)}`);
    }
    const { length, offset } = s as { length: number; offset: number };
    if (offset % 8 !== 0) throw bad(`${at}.offset`, `${offset} is not a multiple of 8 (section ${s.name})`);
    if (offset + length * width > dataLength) throw bad(`${at}`, `(section ${s.name}: ${length} × ${s.dtype} at offset ${offset}) runs past the end of the data (${dataLength} bytes)`);
    return { name: s.name, dtype: s.dtype, length, offset };
  });
  const byOffset = [...out].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const p = byOffset[i - 1]!, q = byOffset[i]!, end = p.offset + p.length * (p.dtype === "f32" ? 4 : 8);
    if (q.offset < end) throw new ModelFileError(`${source}: the header's sections ${p.name} (bytes ${p.offset}-${end - 1}) and ${q.name} (from byte ${q.offset}) overlap`);
  }
  return out;
}

/**
 * A container's header and arrays (copies, aligned), after checking the magic, the sha256, and the
 * header field by field: a file whose hash was recomputed over a malformed header is refused by
 * name, never read shifted. `source` names the file in messages.
 */
export function decodeContainer<M>(bytes: Uint8Array, source = "the file"): Container<M> {
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (bytes.length < 12 || magic !== MAGIC) throw new ModelFileError(`${source}: not a cellforge checkpoint or model file (no ${MAGIC} magic)`);
  if (bytes.length < 12 + HASH_BYTES) throw new ModelFileError(`${source}: truncated (${bytes.length} bytes, shorter than the fixed parts of a cellforge file)`);
  const body = bytes.subarray(0, bytes.length - HASH_BYTES), stored = bytes.subarray(bytes.length - HASH_BYTES);
  if (!sha256(body).every((x, i) => x === stored[i]))
    throw new ModelFileError(`${source}: the file does not match its sha256 (a truncated, damaged or edited file; the hash covers the header and the data)`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (n > MAX_HEADER || 12 + n > body.length) throw new ModelFileError(`${source}: the header's length n = ${n} runs past the end of the file (${bytes.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(body.subarray(12, 12 + n)));
  } catch (e) {
    throw new ModelFileError(`${source}: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isRecord(header)) throw new ModelFileError(`${source}: the header must be a JSON object, not ${show(header)}`);
  if (header.format !== "cellforge checkpoint") throw new ModelFileError(`${source}: the header's format must be "cellforge checkpoint", not ${show(header.format)}`);
  if (header.version !== 2) throw new ModelFileError(`${source}: the header's version must be 2, not ${show(header.version)}`);
  if (!("meta" in header)) throw new ModelFileError(`${source}: the header's meta is missing`);
  const start = 12 + n + ((8 - ((12 + n) % 8)) % 8);
  if (start > body.length) throw new ModelFileError(`${source}: the header's padding runs past the end of the file`);
  const data = body.subarray(start), view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const infos = checkSections(source, header.sections, data.length);
  const sections = new Map<string, FloatArray>();
  for (const s of infos) {
    const a = s.dtype === "f32" ? new Float32Array(s.length) : new Float64Array(s.length), width = a.BYTES_PER_ELEMENT;
    if (LITTLE_ENDIAN) new Uint8Array(a.buffer).set(data.subarray(s.offset, s.offset + s.length * width));
    else for (let i = 0; i < s.length; i++) a[i] = width === 4 ? view.getFloat32(s.offset + 4 * i, true) : view.getFloat64(s.offset + 8 * i, true);
    sections.set(s.name, a);
  }
  return { header: { format: "cellforge checkpoint", version: 2, sections: infos, meta: header.meta as M }, sections };
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
  return encodeContainer(meta, Object.fromEntries(model.parameters.map((p) => [p.name, model.params.subarray(p.offset, p.offset + p.length)])));
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
  for (const p of model.parameters) {
    const a = sections.get(p.name);
    if (a === undefined || a.length !== p.length) {
      model.dispose();
      throw bad(`section ${p.name} ${a === undefined ? "is missing" : `has ${a.length} numbers, not the ${p.length} of shape ${text(p.shape)}`}`);
    }
    model.params.set(a, p.offset);
  }
  return model;
}

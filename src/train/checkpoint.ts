// Checkpoint files: a JSON header and raw little-endian arrays, sealed by a sha256 of all of it.
//
//   bytes 0-7     the ASCII magic "CFCKPT02"
//   bytes 8-11    n, the header's length in bytes, uint32 little-endian
//   bytes 12-     the header: n bytes of UTF-8 JSON (see CheckpointHeader), then zero bytes up to a
//                 multiple of 8
//   then          the data: each section's `length` elements of `dtype` ("f32" or "f64",
//                 IEEE 754 little-endian) at `offset` bytes from the data's start (a multiple of 8);
//                 sections do not overlap
//   last 32 bytes the sha256 of every byte before them: the magic, the header and the data
//
// The hash covers the header, so an edited step, optimizer or offset is refused like a damaged
// array; the header's structure is checked as well, so a file whose hash was recomputed over a
// malformed header is refused by name, never read shifted. The arrays are stored bit for bit, so
// training resumed from a checkpoint continues exactly as it would have. Files are written to a
// temporary name and renamed, so a checkpoint is never half written.
//
// Version 1 ("CFCKPT01") hashed the data only; its files are refused (see readCheckpoint).
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { endianness } from "node:os";
import type { FloatArray } from "./model.ts";

const MAGIC = "CFCKPT02", MAGIC_V1 = "CFCKPT01", HASH_BYTES = 32;
/** A header longer than this is not one this code wrote (a training header is a few kB; its history grows ~100 bytes an evaluation). */
const MAX_HEADER = 64 * 1024 * 1024;

export interface SectionInfo {
  readonly name: string;
  readonly dtype: "f32" | "f64";
  readonly length: number;
  readonly offset: number;
}

export interface CheckpointHeader<M> {
  readonly format: "cellforge checkpoint";
  readonly version: 2;
  readonly sections: readonly SectionInfo[];
  /** What the writer stores: for training, the run's configuration and state (src/train/trainer.ts). */
  readonly meta: M;
}

export class CheckpointError extends Error {}

const bytesOf = (a: FloatArray): Buffer => {
  const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  if (endianness() === "LE") return b;
  const c = Buffer.from(b);
  return a instanceof Float32Array ? c.swap32() : c.swap64();
};

/** The file's bytes for a header and its data; the sha256 of everything is appended. */
export function checkpointBytes(header: object, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const pre = Buffer.alloc(12);
  pre.write(MAGIC, 0, "ascii");
  pre.writeUInt32LE(json.length, 8);
  const pad = Buffer.alloc((8 - ((12 + json.length) % 8)) % 8);
  const body = Buffer.concat([pre, json, pad, data]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

export function writeCheckpoint<M>(path: string, meta: M, sections: Readonly<Record<string, FloatArray>>): void {
  const infos: SectionInfo[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(sections)) {
    infos.push({ name, dtype: a instanceof Float32Array ? "f32" : "f64", length: a.length, offset });
    const b = bytesOf(a), pad = (8 - (b.length % 8)) % 8;
    chunks.push(b, Buffer.alloc(pad));
    offset += b.length + pad;
  }
  const header: CheckpointHeader<M> = { format: "cellforge checkpoint", version: 2, sections: infos, meta };
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, checkpointBytes(header, Buffer.concat(chunks)));
  renameSync(tmp, path);
}

export interface Checkpoint<M> {
  readonly header: CheckpointHeader<M>;
  readonly sections: ReadonlyMap<string, FloatArray>;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const show = (x: unknown): string => (typeof x === "object" && x !== null ? (Array.isArray(x) ? "a list" : "an object") : JSON.stringify(x) ?? String(x));

/** The sections a header lists, checked: names, dtypes, lengths and offsets inside `dataLength` bytes, none overlapping. */
function checkSections(path: string, raw: unknown, dataLength: number): SectionInfo[] {
  const bad = (field: string, what: string) => new CheckpointError(`${path}: the header's ${field} ${what}`);
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
    if (q.offset < end) throw new CheckpointError(`${path}: the header's sections ${p.name} (bytes ${p.offset}-${end - 1}) and ${q.name} (from byte ${q.offset}) overlap`);
  }
  return out;
}

export function readCheckpoint<M>(path: string): Checkpoint<M> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a checkpoint file" : (e as Error).message}`);
  }
  const magic = buf.toString("ascii", 0, Math.min(8, buf.length));
  if (magic === MAGIC_V1)
    throw new CheckpointError(`${path}: a version-1 checkpoint, written by an earlier cellforge; its sha256 covers only the data, not the header (step, optimizer, offsets), so it cannot be verified and is not read. Train again, or finish the run with the cellforge that wrote it`);
  if (buf.length < 12 || magic !== MAGIC) throw new CheckpointError(`${path}: not a cellforge checkpoint (no ${MAGIC} magic)`);
  if (buf.length < 12 + HASH_BYTES) throw new CheckpointError(`${path}: truncated (${buf.length} bytes, shorter than a checkpoint's fixed parts)`);
  const body = buf.subarray(0, buf.length - HASH_BYTES);
  if (!createHash("sha256").update(body).digest().equals(buf.subarray(buf.length - HASH_BYTES)))
    throw new CheckpointError(`${path}: the file does not match its sha256 (a truncated, damaged or edited file; the hash covers the header and the data)`);
  const n = buf.readUInt32LE(8);
  if (n > MAX_HEADER || 12 + n > body.length) throw new CheckpointError(`${path}: the header's length n = ${n} runs past the end of the file (${buf.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(body.toString("utf8", 12, 12 + n));
  } catch (e) {
    throw new CheckpointError(`${path}: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isRecord(header)) throw new CheckpointError(`${path}: the header must be a JSON object, not ${show(header)}`);
  if (header.format !== "cellforge checkpoint") throw new CheckpointError(`${path}: the header's format must be "cellforge checkpoint", not ${show(header.format)}`);
  if (header.version !== 2) throw new CheckpointError(`${path}: the header's version must be 2, not ${show(header.version)}`);
  if (!("meta" in header)) throw new CheckpointError(`${path}: the header's meta is missing`);
  const start = 12 + n + ((8 - ((12 + n) % 8)) % 8);
  if (start > body.length) throw new CheckpointError(`${path}: the header's padding runs past the end of the file`);
  const data = body.subarray(start);
  const infos = checkSections(path, header.sections, data.length);
  const sections = new Map<string, FloatArray>();
  for (const s of infos) {
    const width = s.dtype === "f32" ? 4 : 8;
    const bytes = new Uint8Array(s.length * width); // a copy, aligned for its element type
    bytes.set(data.subarray(s.offset, s.offset + s.length * width));
    if (endianness() === "BE") (width === 4 ? Buffer.from(bytes.buffer).swap32() : Buffer.from(bytes.buffer).swap64());
    sections.set(s.name, width === 4 ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer));
  }
  return { header: { format: "cellforge checkpoint", version: 2, sections: infos, meta: header.meta as M }, sections };
}

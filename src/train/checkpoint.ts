// Checkpoint files: a JSON header and raw little-endian arrays.
//
//   bytes 0-7     the ASCII magic "CFCKPT01"
//   bytes 8-11    n, the header's length in bytes, uint32 little-endian
//   bytes 12-     the header: n bytes of UTF-8 JSON (see CheckpointHeader), then zero bytes up to a
//                 multiple of 8
//   then          the data: each section's `length` elements of `dtype` ("f32" or "f64",
//                 IEEE 754 little-endian) at `offset` bytes from the data's start (a multiple of 8)
//
// The header's `sha256` is the hash of the data, checked on reading. The arrays are stored
// bit for bit, so training resumed from a checkpoint continues exactly as it would have.
// Files are written to a temporary name and renamed, so a checkpoint is never half written.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { endianness } from "node:os";
import type { FloatArray } from "./model.ts";

const MAGIC = "CFCKPT01";

export interface SectionInfo {
  readonly name: string;
  readonly dtype: "f32" | "f64";
  readonly length: number;
  readonly offset: number;
}

export interface CheckpointHeader<M> {
  readonly format: "cellforge checkpoint";
  readonly version: 1;
  readonly sections: readonly SectionInfo[];
  readonly sha256: string;
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
  const data = Buffer.concat(chunks);
  const header: CheckpointHeader<M> = { format: "cellforge checkpoint", version: 1, sections: infos, sha256: createHash("sha256").update(data).digest("hex"), meta };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const pre = Buffer.alloc(12);
  pre.write(MAGIC, 0, "ascii");
  pre.writeUInt32LE(json.length, 8);
  const pad = Buffer.alloc((8 - ((12 + json.length) % 8)) % 8);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, Buffer.concat([pre, json, pad, data]));
  renameSync(tmp, path);
}

export interface Checkpoint<M> {
  readonly header: CheckpointHeader<M>;
  readonly sections: ReadonlyMap<string, FloatArray>;
}

export function readCheckpoint<M>(path: string): Checkpoint<M> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(`${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  if (buf.length < 12 || buf.toString("ascii", 0, 8) !== MAGIC) throw new CheckpointError(`${path}: not a cellforge checkpoint (no ${MAGIC} magic)`);
  const n = buf.readUInt32LE(8);
  let header: CheckpointHeader<M>;
  try {
    header = JSON.parse(buf.toString("utf8", 12, 12 + n)) as CheckpointHeader<M>;
  } catch (e) {
    throw new CheckpointError(`${path}: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (header.format !== "cellforge checkpoint" || header.version !== 1) throw new CheckpointError(`${path}: unknown checkpoint format ${String(header.format)} version ${String(header.version)}`);
  const start = 12 + n + ((8 - ((12 + n) % 8)) % 8);
  const data = buf.subarray(start);
  if (createHash("sha256").update(data).digest("hex") !== header.sha256) throw new CheckpointError(`${path}: the data does not match its sha256 (a truncated or damaged file)`);
  const sections = new Map<string, FloatArray>();
  for (const s of header.sections) {
    const width = s.dtype === "f32" ? 4 : 8;
    if (s.offset + s.length * width > data.length) throw new CheckpointError(`${path}: section ${s.name} runs past the end of the file`);
    const bytes = new Uint8Array(s.length * width); // a copy, aligned for its element type
    bytes.set(data.subarray(s.offset, s.offset + s.length * width));
    if (endianness() === "BE") (width === 4 ? Buffer.from(bytes.buffer).swap32() : Buffer.from(bytes.buffer).swap64());
    sections.set(s.name, width === 4 ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer));
  }
  return { header, sections };
}

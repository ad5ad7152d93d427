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
//
// The container is nn/file.ts's, which model files share: this module adds the files, the refusal
// of version 1, and CheckpointError.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { type Container, type ContainerHeader, ModelFileError, type SectionInfo, decodeContainer, encodeContainer, sealContainer } from "../../nn/file.ts";
import type { FloatArray } from "./model.ts";

const MAGIC_V1 = "CFCKPT01";

export type { SectionInfo };
export type CheckpointHeader<M> = ContainerHeader<M>;
export type Checkpoint<M> = Container<M>;

export class CheckpointError extends Error {}

/** The file's bytes for a header and its data; the sha256 of everything is appended. */
export function checkpointBytes(header: object, data: Buffer): Buffer {
  const b = sealContainer(header, data);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function writeCheckpoint<M>(path: string, meta: M, sections: Readonly<Record<string, FloatArray>>): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodeContainer(meta, sections));
  renameSync(tmp, path);
}

export function readCheckpoint<M>(path: string): Checkpoint<M> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a checkpoint file" : (e as Error).message}`);
  }
  if (buf.toString("ascii", 0, Math.min(8, buf.length)) === MAGIC_V1)
    throw new CheckpointError(`${path}: a version-1 checkpoint, written by an earlier cellforge; its sha256 covers only the data, not the header (step, optimizer, offsets), so it cannot be verified and is not read. Train again, or finish the run with the cellforge that wrote it`);
  try {
    return decodeContainer<M>(buf, path);
  } catch (e) {
    throw e instanceof ModelFileError ? new CheckpointError(e.message) : e;
  }
}

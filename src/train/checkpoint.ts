// Checkpoint files: safetensors files (nn/file.ts describes the layout) whose metadata holds the run's
// configuration and state as JSON, sealed by a sha256 of the whole file in the header's first entry.
//
// The hash covers the header, so an edited step, optimizer or data_offsets is refused like a damaged
// array; the header's structure is checked as well, so a file whose hash was recomputed over a
// malformed header is refused by name, never read shifted. The arrays are stored bit for bit, flat
// (shape [length]), so training resumed from a checkpoint continues exactly as it would have. Files
// are written to a temporary name and renamed, so a checkpoint is never half written.
//
// Version 1 ("CFCKPT01") hashed the data only; version 2 ("CFCKPT02") was cellforge's own container.
// Files of both are refused (see readCheckpoint and decodeContainer).
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

/** The file's bytes for a safetensors header and its data, the sha256 patched in (sealContainer). */
export function checkpointBytes(header: Readonly<Record<string, unknown>>, data: Uint8Array): Buffer {
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

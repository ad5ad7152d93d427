// A generated kernel refused before use: it disagrees with the reference evaluator, or it does not
// typecheck. Not the user's mistake but the code generator's, so the message says so and what to run.
// (A file of its own, light to import: the CLI names it without loading the code generator.)

/** Where a kernel ran: the backend and the precision. */
export interface KernelPath {
  /** A registered backend's name (runtime/memory.ts BACKENDS). */
  readonly backend: string;
  readonly bits: 32 | 64;
}

export class KernelRefusedError extends Error {
  readonly cell: string;
  /** The path that disagreed; null for a kernel that does not typecheck. */
  readonly path: KernelPath | null;
  constructor(cell: { readonly name: string; readonly file?: string }, path: KernelPath | null, problem: string) {
    const ref = cell.file && !cell.file.startsWith("dsl/") ? cell.file : cell.name;
    super(`kernel for cell "${cell.name}" ${problem}\n  the kernel was not used. This is a bug in cellforge's code generator: \`cellforge check ${ref}\` shows every comparison; please report it with the cell file.`);
    this.name = "KernelRefusedError";
    this.cell = cell.name;
    this.path = path;
  }
}

export const pathText = (p: KernelPath) => `the ${p.backend} path, float${p.bits}`;

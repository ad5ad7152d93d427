// The one grammar for sizes on a command line: `--sizes H=64,D=32` (every command that takes sizes).
// A size is a name of the cell and a positive integer, as in a cell's `defaults` and a case's
// `sizes` (runtime/checks.ts `isSize`); the table has no prototype, so a size named `toString` is a size.
import { isSize } from "../runtime/checks.ts";

/** A mistake in how a command was called: exit 2, with the command's usage (every command's). */
export class UsageError extends Error {}

/**
 * `NAME=n` pairs separated by commas, spaces allowed around each. With `known` (the cell's sizes),
 * every name must be one of them. `fail` throws the command's own error with the message.
 */
export function parseSizes(text: string, known: readonly string[] | undefined, fail: (message: string) => never): Record<string, number> {
  const sizes = Object.create(null) as Record<string, number>;
  const of = known ? ` with a size of the cell (${known.join(", ")})` : "";
  for (const part of text.split(",")) {
    const m = /^\s*([A-Za-z_$][\w$]*)\s*=\s*(\d+)\s*$/.exec(part);
    const name = m?.[1], n = m ? Number(m[2]) : NaN;
    if (!m || !name || !isSize(n)) fail(`--sizes: "${part.trim()}" is not SIZE=n${of}, n a positive integer`);
    if (known && !known.includes(name)) fail(`--sizes: "${name}" is not a size of the cell (${known.join(", ")})`);
    if (Object.hasOwn(sizes, name)) fail(`--sizes: ${name} is given twice`);
    sizes[name] = n;
  }
  return sizes;
}

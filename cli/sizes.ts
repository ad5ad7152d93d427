// The one grammar for sizes on a command line: `--sizes H=64,D=32` (every command that takes sizes).
// A size is a name of the cell and a positive integer, as in a cell's `defaults` and a case's
// `sizes` (runtime/checks.ts `isSize`); the table has no prototype, so a size named `toString` is a size.
// And the other way: a word as a shell reads it back (`shellWord`), for the commands that generated
// files print in their headers.
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

/**
 * A word as a POSIX shell (sh, bash, zsh) reads it back: as it is when it holds only characters no
 * shell treats specially, else in single quotes. A word with a control character (a newline, a tab,
 * DEL, a C1 control) or a line or bidi separator, which single quotes would keep but a terminal or
 * a file's line would not, is written in ANSI-C quotes `$'…'` (bash, zsh, ksh, and POSIX.1-2024 sh):
 * `\n`, `\t`, `\r`, `\xNN`, `\uNNNN`, with `\\` and `\'` for the two characters those quotes read.
 * Generated files print these words in line comments (codegen/escape.ts `lineCommentText`), where a
 * block comment's delimiter (`'cells/*.ts'`) is harmless, so they are printed as they are.
 */
export function shellWord(w: string): string {
  if (/^[\w@%+=:,./-]+$/.test(w)) return w;
  if (!CONTROL.test(w)) return `'${w.replaceAll("'", `'\\''`)}'`;
  const named: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'" };
  const escaped = (c: string) => (c < "\u0080" ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`);
  return `$'${[...w].map((c) => named[c] ?? (CONTROL.test(c) ? escaped(c) : c)).join("")}'`;
}
const hex = (c: string, digits: number) => c.charCodeAt(0).toString(16).padStart(digits, "0");
/** What a shell word must not hold as itself: C0 and C1 controls, DEL, line and paragraph separators, bidi controls (as codegen/escape.ts). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

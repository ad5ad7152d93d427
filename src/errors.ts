// Errors in the user's language: the cell, the equation, line and column with a caret, the shapes.

export interface Where {
  readonly cell: string;
  /** The source line shown under the message: the equation as the user wrote it, or a declaration line of the file. */
  readonly equation?: string;
  /** 1-based line and column, in the file when known, else in the equations text (see `relative`). */
  readonly line?: number;
  readonly column?: number;
  /** 1-based column of the caret within `equation`. */
  readonly eqColumn?: number;
  /** How many characters the caret underlines. */
  readonly width?: number;
  readonly file?: string;
  /** True when `file` is known but `line` and `column` count from the start of the equations text. */
  readonly relative?: boolean;
}

export class CellError extends Error {
  constructor(readonly where: Where, readonly problem: string, readonly hint?: string) {
    super(formatError(where, problem, hint));
    this.name = "CellError";
  }
}

/**
 *   cells/x.ts:12:20: error in cell "gru": unknown symbol "Uq"
 *     z = sigmoid(Wz*x + Uq*h + bz)
 *                        ^^
 *     hint: …
 */
export function formatError(w: Where, problem: string, hint?: string): string {
  // a mistake found before the cell has a name (a builder's activation() made at the top of its file) names no cell
  return [`${prefix(w)}error${w.cell ? ` in cell "${w.cell}"` : ""}: ${problem}`, ...excerpt(w), ...(hint ? [`  hint: ${hint}`] : [])].join("\n");
}

/**
 * A warning: the compile goes on and the text lands in `cell.warnings`, which the CLI prints after
 * "warning: ", so the text does not say it again.
 *   cells/x.ts:11:14: cell "gru": parameter V is never used (its gradient is zero)
 */
export function formatWarning(w: Where, problem: string): string {
  const head = w.file || w.line === undefined ? `${prefix(w)}cell "${w.cell}": ` : prefix(w);
  return [`${head}${problem}`, ...excerpt(w)].join("\n");
}

/** `file:line:col: `, `cell "x":line:col: ` or nothing when only the cell is known (the message names it). */
function prefix(w: Where): string {
  const pos = [w.line, w.column].filter((v) => v !== undefined).join(":");
  if (w.file && w.relative && pos) return `${w.file}, equations line ${pos}: `;
  if (w.file) return `${[w.file, pos].filter((s) => s).join(":")}: `;
  return pos && w.cell ? `cell "${w.cell}":${pos}: ` : "";
}

/** The line, and a caret under the spot. Tabs before the spot are kept so the caret lines up. */
function excerpt(w: Where): string[] {
  if (w.equation === undefined) return [];
  const out = [`  ${w.equation}`];
  if (w.eqColumn !== undefined) {
    const pad = w.equation.padEnd(w.eqColumn - 1).slice(0, w.eqColumn - 1).split("").map((ch) => (ch === "\t" ? "\t" : " ")).join("");
    out.push(`  ${pad}${"^".repeat(Math.max(1, w.width ?? 1))}`);
  }
  return out;
}

/**
 * Where things are in the text of the file a cell came from, for errors with file lines and columns.
 * The text is searched, not parsed: every lookup is best-effort and gives {} (no location) when it
 * finds nothing, and the first match after the field's key otherwise.
 */
export function sourceIndex(source: string | undefined) {
  const lines = source === undefined ? [] : source.split(/\r?\n/);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  /** `key:` or `"key":` as an object key. */
  const keyRe = (k: string) => new RegExp(`(?:^|[\\s{,])((["']?)${esc(k)}\\2)\\s*:`, "g");
  const quotedRe = (k: string) => new RegExp(`(["'])${esc(k)}\\1`, "g");
  const spot = (i: number, col: number, width: number): Partial<Where> =>
    ({ equation: lines[i]!.replace(/\s+$/, ""), line: i + 1, column: col + 1, eqColumn: col + 1, width: Math.max(1, width) });
  /** First match of `re` at or after (line, col): [line, column of group 1 (or the match), end of the match, its text]. */
  const find = (re: RegExp, line: number, col: number): [number, number, number, string] | undefined => {
    for (let i = line; i < lines.length; i++) {
      re.lastIndex = i === line ? col : 0;
      const m = re.exec(lines[i]!);
      if (m) {
        const g = m[1] ?? m[0];
        return [i, m.index + m[0].indexOf(g), m.index + m[0].length, g];
      }
    }
    return undefined;
  };
  const start = Math.max(0, lines.findIndex((l) => l.includes("defineCell(")));
  const topLevel = (field: string) => find(keyRe(field), start, 0);

  /** The declaration `field: { …, key: … }` (the key, or `token` after it on its line). */
  const decl = (field: string, key?: string, token?: string): Partial<Where> => {
    const f = topLevel(field);
    if (!f) return {};
    if (key === undefined) return spot(f[0], f[1], f[3].length);
    const k = find(keyRe(key), f[0], f[2]) ?? find(quotedRe(key), f[0], f[2]);
    if (!k) return {};
    if (token !== undefined) {
      const re = /^\w+$/.test(token) ? new RegExp(`(?<![\\w$])${esc(token)}(?![\\w$])`, "g") : new RegExp(esc(token), "g");
      re.lastIndex = k[2];
      const t = re.exec(lines[k[0]]!);
      if (t) return spot(k[0], t.index, token.length);
    }
    return spot(k[0], k[1], k[3].length);
  };

  /** A part of `text` (offset, width) that appears on the line of `loc`; else `text` itself with a caret. */
  const within = (loc: Partial<Where>, text: string, offset: number, width: number): Partial<Where> => {
    const c = loc.line === undefined ? -1 : lines[loc.line - 1]!.indexOf(text, (loc.column ?? 1) - 1);
    if (c < 0) return { equation: text, eqColumn: offset + 1, width };
    return spot(loc.line! - 1, c + offset, width);
  };

  /** Where each line of the equations text is in the file: each non-blank line is looked for in order. */
  const equations = (eqLines: readonly string[]): ((line: number) => { line: number; offset: number } | undefined) => {
    const map = new Map<number, { line: number; offset: number }>();
    const first = eqLines.find((t) => t.trim() !== "")?.trim();
    const f = topLevel("equations");
    // start after `equations:` when the text is there (a template literal), else anywhere (a variable)
    const from = f && first !== undefined && find(new RegExp(esc(first), "g"), f[0], f[2]) ? f : undefined;
    let [line, col] = from ? [from[0], from[2]] : [0, 0];
    eqLines.forEach((t, i) => {
      const needle = t.trim();
      if (needle === "") return;
      const m = find(new RegExp(esc(needle), "g"), line, col);
      if (!m) return;
      map.set(i + 1, { line: m[0] + 1, offset: m[1] - (t.length - t.trimStart().length) });
      [line, col] = [m[0], m[2]];
    });
    return (l) => map.get(l);
  };
  return { decl, within, equations };
}

export interface Warning {
  readonly cell: string;
  readonly message: string;
}

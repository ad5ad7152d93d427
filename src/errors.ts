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
  return [`${prefix(w)}error in cell "${w.cell}": ${problem}`, ...excerpt(w), ...(hint ? [`  hint: ${hint}`] : [])].join("\n");
}

/** The same layout for a warning: the compile goes on, the text lands in `cell.warnings`. */
export function formatWarning(w: Where, problem: string): string {
  return [`${prefix(w)}warning in cell "${w.cell}": ${problem}`, ...excerpt(w)].join("\n");
}

/** `file:line:col: `, `cell "x":line:col: ` or nothing when only the cell is known (the message names it). */
function prefix(w: Where): string {
  const pos = [w.line, w.column].filter((v) => v !== undefined).join(":");
  if (w.file && w.relative && pos) return `${w.file}, equations line ${pos}: `;
  if (w.file) return `${[w.file, pos].filter((s) => s).join(":")}: `;
  return pos ? `cell "${w.cell}":${pos}: ` : "";
}

/** The line, and a caret under the spot. Tabs before the spot are kept so the caret lines up. */
function excerpt(w: Where): string[] {
  if (w.equation === undefined) return [];
  const out = [`  ${w.equation}`];
  if (w.eqColumn !== undefined) {
    const pad = [...w.equation.padEnd(w.eqColumn - 1).slice(0, w.eqColumn - 1)].map((ch) => (ch === "\t" ? "\t" : " ")).join("");
    out.push(`  ${pad}${"^".repeat(Math.max(1, w.width ?? 1))}`);
  }
  return out;
}

export interface Warning {
  readonly cell: string;
  readonly message: string;
}

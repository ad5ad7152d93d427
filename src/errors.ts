// Errors in the user's language: the cell, the equation, line and column with a caret, the shapes.

export interface Where {
  readonly cell: string;
  /** The equation as the user wrote it (one line). */
  readonly equation?: string;
  /** 1-based line and column, in the file when known, else in the equations text. */
  readonly line?: number;
  readonly column?: number;
  /** 1-based column of the caret within `equation`. */
  readonly eqColumn?: number;
  /** How many characters the caret underlines. */
  readonly width?: number;
  readonly file?: string;
}

export class CellError extends Error {
  constructor(readonly where: Where, readonly problem: string, readonly hint?: string) {
    super(formatError(where, problem, hint));
    this.name = "CellError";
  }
}

export function formatError(w: Where, problem: string, hint?: string): string {
  const loc = [w.file ?? `cell "${w.cell}"`, w.line, w.column].filter((v) => v !== undefined).join(":");
  const lines = [`${loc}: error in cell "${w.cell}": ${problem}`];
  if (w.equation !== undefined) {
    lines.push(`  ${w.equation}`);
    if (w.eqColumn !== undefined) lines.push(`  ${" ".repeat(w.eqColumn - 1)}${"^".repeat(Math.max(1, w.width ?? 1))}`);
  }
  if (hint) lines.push(`  hint: ${hint}`);
  return lines.join("\n");
}

export interface Warning {
  readonly cell: string;
  readonly message: string;
}

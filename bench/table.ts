// Plain-text tables: a header row, then rows; the first column left-aligned,
// the others right-aligned. A row given as a string is printed as a note
// spanning the columns after the first.

export type Row = string[] | { label: string; note: string };

export function formatTable(header: string[], rows: Row[], indent = "  "): string {
  const widths = header.map((h) => h.length);
  for (const row of rows) {
    if (Array.isArray(row)) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
    else widths[0] = Math.max(widths[0]!, row.label.length);
  }
  const line = (cells: string[]) =>
    indent +
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [line(header), indent + widths.map((w) => "─".repeat(w)).join("  ")];
  for (const row of rows) {
    out.push(Array.isArray(row) ? line(row) : `${indent}${row.label.padEnd(widths[0]!)}  ${row.note}`);
  }
  return out.join("\n");
}

/** ms with about four significant digits: 0.0123, 1.234, 12.34, 123.4, 12345 */
export function fmtMs(ms: number): string {
  if (ms >= 1000) return ms.toFixed(0);
  if (ms >= 100) return ms.toFixed(1);
  if (ms >= 10) return ms.toFixed(2);
  if (ms >= 1) return ms.toFixed(3);
  return ms.toFixed(4);
}

export function fmtRate(gflops: number): string {
  return gflops >= 100 ? gflops.toFixed(0) : gflops >= 10 ? gflops.toFixed(1) : gflops.toFixed(2);
}

/** a speed-up factor, "×2.31" (peer time / cellforge time: above 1, cellforge is faster) */
export function fmtRatio(r: number): string {
  return `×${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}`;
}

export function fmtGflop(flops: number): string {
  const g = flops / 1e9;
  return g >= 1 ? `${g.toFixed(2)} GFLOP` : `${(g * 1e3).toFixed(1)} MFLOP`;
}

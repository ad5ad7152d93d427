// Printing IR as equations a reader can check: the forward as written, the backward as one
// assignment a line, with shared subexpressions named once and single-use ones inlined.
import { type Node, topo } from "./ir.ts";
import { OPS } from "./ops.ts";
import type { Cell } from "./cell.ts";
import type { BackwardStep } from "./backward.ts";

/**
 * How long `n` would print, roughly, and how deep, without printing it. A value used twice prints
 * twice, so var(a - var(a - …)) doubles at every level: such an expression is not written out.
 */
export function printedSize(n: Node, names: ReadonlyMap<Node, string>, self?: Node): { readonly chars: number; readonly depth: number } {
  const named = (m: Node) => m !== self && names.has(m);
  const size = new Map<Node, { chars: number; depth: number }>();
  for (const m of topo([n], named)) {
    let chars = named(m) ? names.get(m)!.length : m.op.length + 3, depth = 0;
    if (!named(m)) for (const a of m.args) { const s = size.get(a)!; chars += s.chars + 2; depth = Math.max(depth, s.depth + 1); }
    size.set(m, { chars, depth });
  }
  return size.get(n)!;
}
/** Longer or deeper than this, an expression prints as a note of its size. */
const PRINT_MAX = { chars: 20_000, depth: 1_000 } as const;

/** Print `n` as an expression; nodes in `names` (other than `self`) print as their names. */
export function printExpr(n: Node, names: ReadonlyMap<Node, string>, self?: Node): string {
  const big = printedSize(n, names, self);
  if (big.chars > PRINT_MAX.chars || big.depth > PRINT_MAX.depth)
    return `(an expression ${big.depth > PRINT_MAX.depth ? `${big.depth.toLocaleString("en-US")} operations deep` : `of about ${big.chars.toLocaleString("en-US", { maximumSignificantDigits: 2 })} characters`}, not written out)`;
  const go = (m: Node, parentPrec: number): string => {
    const nm = m !== self ? names.get(m) : undefined;
    if (nm !== undefined) return nm;
    const def = OPS[m.op];
    // The right operand of - and / binds tighter (the op's `rightTighter`); a negated product reads better parenthesised.
    const argPrec = (i: number) => (def.prec === 3 ? -1 : def.prec + (i > 0 && def.rightTighter ? 1 : 0));
    const s = def.print(m.args.map((a, i) => go(a, argPrec(i))), m);
    return def.prec < parentPrec || (def.prec === 2 && parentPrec === 2) ? `(${s})` : s;
  };
  return go(n, -1);
}

export interface Line {
  readonly lhs: string;
  readonly rhs: string;
  readonly comment?: string;
}

export function forwardLines(cell: Cell): Line[] {
  // an equation whose expansion is too long to print (nested var) is shown as it was written
  const big = (eq: Cell["equations"][number]) => { const s = printedSize(eq.node, cell.names, eq.node); return s.chars > PRINT_MAX.chars || s.depth > PRINT_MAX.depth; };
  return cell.equations.map((eq) => ({ lhs: eq.lhs, rhs: big(eq) ? eq.text.slice(eq.text.indexOf("=") + 1).trim() : printExpr(eq.node, cell.names, eq.node) }));
}

/**
 * The backward step as lines. Named adjoints (dz, dWz) and values used more than once get a line;
 * forward values read by the backward are referred to by their forward names, or s1, s2, … when the
 * forward gave them none.
 */
export function backwardLines(bw: BackwardStep): { saved: Line[]; lines: Line[] } {
  const cell = bw.cell;
  const fwdNodes = new Set(topo([...cell.next, ...cell.outputs.map((o) => o.node)]));
  const names = new Map<Node, string>(cell.names);
  bw.seeds.forEach((s) => names.set(s, s.attrs.name!));
  const saved: Line[] = [];
  let k = 0;
  for (const s of bw.saved) {
    if (!names.has(s)) {
      names.set(s, `s${++k}`);
      saved.push({ lhs: `s${k}`, rhs: printExpr(s, names, s) });
    } else saved.push({ lhs: names.get(s)!, rhs: printExpr(s, names, s) });
  }
  // backward nodes: not forward, not leaves
  const order = topo(bw.outputs, (n) => fwdNodes.has(n)).filter((n) => !fwdNodes.has(n) && n.op !== "input" && n.op !== "const");
  const uses = new Map<Node, number>();
  for (const n of order) for (const a of n.args) uses.set(a, (uses.get(a) ?? 0) + 1);
  let t = 0;
  const lineNodes: Node[] = [];
  for (const n of order) {
    if (bw.names.has(n)) { names.set(n, bw.names.get(n)!); lineNodes.push(n); }
    else if ((uses.get(n) ?? 0) > 1 && OPS[n.op].kind !== "leaf") { names.set(n, `t${++t}`); lineNodes.push(n); }
  }
  const lines: Line[] = lineNodes.map((n) => {
    const from = bw.origin.get(n);
    return { lhs: names.get(n)!, rhs: printExpr(n, names, n), ...(from && from.length ? { comment: from.length === 1 ? `grad of: ${from[0]!.text}` : `grad of: ${from.map((e) => e.lhs).join(", ")}` } : {}) };
  });
  // outputs that are zero, or forward values, or plain seeds (dh = dh' for an identity) still get a line
  const wrtNames = [...cell.inputs, ...cell.states, ...cell.params.map((p) => p.node)].map((w) => `d${w.attrs.name}`);
  bw.outputs.forEach((o, i) => {
    if (lineNodes.includes(o) && names.get(o) === wrtNames[i]) return;
    lines.push({ lhs: wrtNames[i]!, rhs: names.get(o) ?? printExpr(o, names) });
  });
  return { saved, lines };
}

export function formatLines(lines: readonly Line[], indent = "  "): string {
  const w = Math.max(0, ...lines.map((l) => l.lhs.length));
  const body = lines.map((l) => `${indent}${l.lhs.padEnd(w)} = ${l.rhs}`);
  const cw = Math.min(72, Math.max(0, ...body.map((b) => b.length)));
  return body.map((b, i) => (lines[i]!.comment ? `${b.padEnd(cw)}  # ${lines[i]!.comment}` : b)).join("\n");
}

// The flat parameter buffer: one Float array holding every parameter, so an optimizer is one loop.
// Matrices that multiply the same vector are laid out next to each other, so their products are one
// packed product over the stacked weights ([Wir; Wiz; Win] · x) with no copying.
import type { Cell, Param } from "../src/cell.ts";
import { type Node, topo } from "../src/ir.ts";

export interface Layout {
  /** Parameters in buffer order. */
  readonly order: readonly Param[];
  readonly index: ReadonlyMap<Node, number>;
}

/** Order parameters: each forward matrix group (same vector operand) contiguous, then the rest. */
export function paramLayout(cell: Cell): Layout {
  const roots = [...cell.next, ...cell.outputs.map((o) => o.node)];
  const byNode = new Map(cell.params.map((p) => [p.node, p]));
  const order: Param[] = [];
  const placed = new Set<Param>();
  const groups = new Map<Node, Param[]>(); // vector operand -> matrices in order of use
  // equations in the order written, so stacked weights follow the paper's gate order
  const seen = new Set<Node>();
  const inOrder: Node[] = [];
  for (const eq of cell.equations) for (const n of topo([eq.node])) if (!seen.has(n)) { seen.add(n); inOrder.push(n); }
  for (const n of topo(roots)) if (!seen.has(n)) inOrder.push(n);
  for (const n of inOrder) {
    if (n.op !== "matvec") continue;
    const p = byNode.get(n.args[0]!);
    if (!p) continue;
    const g = groups.get(n.args[1]!) ?? [];
    if (!g.includes(p)) g.push(p);
    groups.set(n.args[1]!, g);
  }
  for (const g of groups.values()) for (const p of g) if (!placed.has(p)) { placed.add(p); order.push(p); }
  for (const p of cell.params) if (!placed.has(p)) { placed.add(p); order.push(p); }
  return { order, index: new Map(order.map((p, i) => [p.node, i])) };
}

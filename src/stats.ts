// What a cell costs: parameters (as a formula in the sizes and as a number), FLOPs per example per
// step for the forward and the derived backward, and floats saved per example per step for BPTT.
import { type Cell, stepRoots } from "./cell.ts";
import type { BackwardStep } from "./backward.ts";
import { type Poly, dimValue, polyAdd, polyOfShape, polyStr } from "./dims.ts";
import { type Node, topo } from "./ir.ts";
import { OPS } from "./ops.ts";
import type { Sizes } from "./eval.ts";

export function paramPoly(cell: Cell): Poly {
  return cell.params.reduce<Poly>((p, q) => polyAdd(p, polyOfShape(q.node.type.shape)), new Map());
}
export const paramFormula = (cell: Cell): string => polyStr(paramPoly(cell));

export function paramCount(cell: Cell, sizes: Sizes): number {
  return cell.params.reduce((s, p) => s + p.node.type.shape.reduce((a, d) => a * dimValue(d, sizes), 1), 0);
}

/** FLOPs per example of computing `nodes`: elementwise ops count 1 per element; matrix ops 2·M·N. */
function flops(nodes: readonly Node[], sizes: Sizes): number {
  const size = (d: Parameters<typeof dimValue>[0]) => dimValue(d, sizes);
  let f = 0;
  for (const n of nodes) {
    const def = OPS[n.op];
    if (def.kind === "leaf") continue;
    // per-example work: batched values, and reductions over the batch (weight gradients)
    const perExample = n.type.batched || n.args.some((a) => a.type.batched);
    if (!perExample) continue;
    f += def.kind === "tensor" ? def.flops(n, size) : n.type.shape.reduce((a, d) => a * size(d), 1);
  }
  return f;
}

export interface CellStats {
  readonly params: number;
  readonly paramFormula: string;
  readonly forwardFlops: number;
  readonly backwardFlops: number;
  /** Floats per example per step kept for the backward, besides the states (which BPTT keeps anyway). */
  readonly savedFloats: number;
}

export function cellStats(bw: BackwardStep, sizes: Sizes): CellStats {
  const cell = bw.cell;
  const fwd = topo(stepRoots(cell));
  const fwdSet = new Set(fwd);
  const bwdOnly = topo(bw.outputs, (n) => fwdSet.has(n) && !bw.recomputed.includes(n)).filter((n) => !fwdSet.has(n) || bw.recomputed.includes(n));
  const states = new Set(cell.next);
  const savedFloats = bw.saved.filter((n) => !states.has(n)).reduce((s, n) => s + n.type.shape.reduce((a, d) => a * dimValue(d, sizes), 1), 0);
  return { params: paramCount(cell, sizes), paramFormula: paramFormula(cell), forwardFlops: flops(fwd, sizes), backwardFlops: flops(bwdOnly, sizes), savedFloats };
}

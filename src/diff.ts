// Reverse-mode differentiation of an IR graph into an IR graph (micrograd's backward, symbolically).
// The engine knows nothing about ops: each op's vjp rule gives the contributions to its arguments,
// and `fit` makes each contribution the argument's type (summing over a broadcast batch or vector).
import { type Node, type Type, topo } from "./ir.ts";
import { apply, konst, vjpOf } from "./ops.ts";

export type VjpRule = (n: Node, g: Node) => readonly (Node | null)[];

/** Make a gradient contribution the type of the value it belongs to (undo a broadcast). */
export function fit(c: Node, t: Type): Node {
  if (c.type.shape.length > 0 && t.shape.length === 0) c = apply("sum", [c]);
  else if (c.type.shape.length === 0 && t.shape.length === 1) c = apply("bcast", [c], { dim: t.shape[0]! });
  if (c.type.batched && !t.batched) c = apply("sumb", [c]);
  else if (!c.type.batched && t.batched) c = apply("expandb", [c]);
  return c;
}

export interface Backward {
  /** The gradient of Σ <seed_i, output_i> with respect to each of `wrt` (zeros where it does not depend). */
  readonly grads: readonly Node[];
  /** The adjoint of every node on a path from `wrt` to the outputs, for naming and localisation. */
  readonly adjoint: ReadonlyMap<Node, Node>;
}

export function vjp(outputs: readonly Node[], seeds: readonly Node[], wrt: readonly Node[], rule: VjpRule = vjpOf): Backward {
  const order = topo(outputs);
  // Only nodes that depend on something in `wrt` carry gradient.
  const live = new Set<Node>(wrt);
  for (const n of order) if (n.args.some((a) => live.has(a))) live.add(n);

  const parts = new Map<Node, Node[]>();
  const push = (n: Node, c: Node) => {
    const list = parts.get(n);
    if (list) list.push(c);
    else parts.set(n, [c]);
  };
  outputs.forEach((o, i) => { if (live.has(o)) push(o, fit(seeds[i]!, o.type)); });

  const adjoint = new Map<Node, Node>();
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    const list = parts.get(n);
    if (!list) continue;
    const g = list.reduce((a, b) => apply("add", [a, b]));
    adjoint.set(n, g);
    if (n.args.length === 0) continue;
    const contribs = rule(n, g);
    n.args.forEach((a, i) => {
      const c = contribs[i];
      if (c && live.has(a)) push(a, fit(c, a.type));
    });
  }
  return { grads: wrt.map((w) => adjoint.get(w) ?? konst(0, w.type)), adjoint };
}

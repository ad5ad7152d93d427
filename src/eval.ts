// The reference evaluator: any IR graph on Float64Array data with a batch of B examples.
// Plain loops, no cleverness: it is the oracle the generated kernels are held to.
import { type Dim, dimValue } from "./dims.ts";
import { type Node, type Type, topo, typeStr } from "./ir.ts";
import { type EvalContext, OPS } from "./ops.ts";

export type Sizes = Readonly<Record<string, number>>;
export type Env = Map<Node, Float64Array>;

/** Number of float64 values a value of type `t` holds for a batch of B. */
export function numel(t: Type, B: number, sizes: Sizes): number {
  return t.shape.reduce((p, d) => p * dimValue(d, sizes), t.batched ? B : 1);
}

export interface EvalStats {
  /** How many op nodes were computed (not taken from the environment). */
  computed: number;
}

/**
 * Evaluate `roots`. Values already in `env` are used as they are (and not recomputed); every other
 * node is computed and added to `env`. An `input` leaf must be in `env`.
 */
export function evaluate(roots: readonly Node[], env: Env, B: number, sizes: Sizes, stats?: EvalStats): Float64Array[] {
  const cache = new Map<Dim, number>();
  const cx: EvalContext = {
    B,
    size: (d) => {
      let v = cache.get(d);
      if (v === undefined) cache.set(d, (v = dimValue(d, sizes)));
      return v;
    },
  };
  for (const n of topo(roots, (n) => env.has(n))) {
    if (env.has(n)) continue;
    env.set(n, compute(n, env, cx, sizes));
    if (stats && n.op !== "const") stats.computed++;
  }
  return roots.map((r) => env.get(r)!);
}

function compute(n: Node, env: Env, cx: EvalContext, sizes: Sizes): Float64Array {
  const def = OPS[n.op];
  const len = numel(n.type, cx.B, sizes);
  if (def.kind === "leaf") {
    if (n.op === "const") return new Float64Array(len).fill(n.attrs.value!);
    throw new Error(`no value given for ${n.attrs.role} ${n.attrs.name} (${typeStr(n.type)})`);
  }
  const args = n.args.map((a) => env.get(a)!);
  if (def.kind === "tensor") return def.eval(args, n, cx);
  // elementwise, with scalars broadcast over vectors and shared values over the batch
  const f = def.fn(n.attrs);
  const out = new Float64Array(len);
  const per = n.type.batched ? len / cx.B : len;
  const B = n.type.batched ? cx.B : 1;
  const lay = n.args.map((a, k) => ({ data: args[k]!, bstride: a.type.batched ? per : 0, scalar: args[k]!.length === (a.type.batched ? cx.B : 1) && a.type.shape.length === 0 }));
  const xs = new Array<number>(lay.length);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < per; i++) {
      for (let k = 0; k < lay.length; k++) {
        const l = lay[k]!;
        xs[k] = l.data[(l.scalar ? (l.bstride ? b : 0) : b * l.bstride + i)]!;
      }
      out[b * per + i] = f(...xs);
    }
  return out;
}

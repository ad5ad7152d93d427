// A cell's backward step, derived: reverse mode over the step's equations, simplified, with the
// set of forward values it reads (the saved set) kept small.
import { type Cell, type CompiledEquation, stepRoots } from "./cell.ts";
import { type Node, topo } from "./ir.ts";
import { OPS, leaf } from "./ops.ts";
import { type VjpRule, vjp } from "./diff.ts";
import { simplify } from "./simplify.ts";

export interface BackwardStep {
  readonly cell: Cell;
  /** Upstream gradient of each next state (`dh'`), then of each output, in that order. */
  readonly seeds: readonly Node[];
  readonly dInputs: readonly Node[];
  /** Gradient of each previous state (`dh`): what flows to the step before. */
  readonly dStates: readonly Node[];
  readonly dParams: readonly Node[];
  /** Forward values (not inputs, states or parameters) the backward reads, in forward order. */
  readonly saved: readonly Node[];
  /** Cheap forward values the backward recomputes from saved ones rather than saving (`1 - z`). */
  readonly recomputed: readonly Node[];
  /** Readable names for backward nodes: `dz`, `dWz`, `dh`. */
  readonly names: ReadonlyMap<Node, string>;
  /** For each named backward node, the equations it differentiates (the ones that read the value). */
  readonly origin: ReadonlyMap<Node, readonly CompiledEquation[]>;
  /** Every output of the backward step, in order: dInputs, dStates, dParams. */
  readonly outputs: readonly Node[];
}

export interface DeriveOptions {
  /** Replace the op table's vjp rules (tests use it to plant a wrong rule). */
  readonly rule?: VjpRule;
  /** Skip simplification (tests compare both). */
  readonly simplify?: boolean;
}

export const seedName = (name: string): string => `d${name}`;

export function deriveBackward(cell: Cell, opts: DeriveOptions = {}): BackwardStep {
  const roots = stepRoots(cell);
  const rootNames = [...cell.states.map((s) => `${s.attrs.name}'`), ...cell.outputs.map((o) => o.name)];
  const seeds = roots.map((r, i) => leaf(seedName(rootNames[i]!), "seed", r.type));
  const wrt = [...cell.inputs, ...cell.states, ...cell.params.map((p) => p.node)];
  const bw = vjp(roots, seeds, wrt, opts.rule);

  // Named forward values get named adjoints (dz), and so do the pre-activations of named values
  // (dn_pre for n = tanh(…)); simplify them with the gradients so the names follow the rewrites.
  const adjName = new Map<Node, string>();
  for (const [n, nm] of cell.names) {
    if (!bw.adjoint.has(n)) continue;
    adjName.set(n, roots.includes(n) && bw.adjoint.get(n) !== seeds[roots.indexOf(n)] ? `d${nm}_total` : `d${nm}`);
    const pre = n.args[0];
    if (OPS[n.op].kind === "elementwise" && n.args.length === 1 && pre && !cell.names.has(pre) && bw.adjoint.has(pre) && pre.op !== "input")
      adjName.set(pre, `d${nm}_pre`);
  }
  const named = [...adjName.keys()];
  const raw = [...bw.grads, ...named.map((n) => bw.adjoint.get(n)!)];
  const simple = opts.simplify === false ? raw : simplify(raw);
  const grads = simple.slice(0, wrt.length);

  const names = new Map<Node, string>();
  const name = (n: Node, s: string) => { if (!names.has(n) && n.op !== "const" && n.op !== "input") names.set(n, s); };
  wrt.forEach((w, i) => name(grads[i]!, `d${w.attrs.name}`));
  named.forEach((n, i) => name(simple[wrt.length + i]!, adjName.get(n)!));
  const namedFwd = named.filter((n) => cell.names.has(n));
  const namedAdj = simple.slice(wrt.length).filter((_a, i) => cell.names.has(named[i]!));

  const { saved, recomputed } = savedSet(roots, grads);
  const origin = originOf(cell, namedFwd, namedAdj, wrt, grads);
  const nIn = cell.inputs.length, nSt = cell.states.length;
  return {
    cell, seeds,
    dInputs: grads.slice(0, nIn), dStates: grads.slice(nIn, nIn + nSt), dParams: grads.slice(nIn + nSt),
    saved, recomputed, names, origin, outputs: grads,
  };
}

/**
 * The forward values the backward reads. A cheap elementwise value whose operands are all saved
 * (or are inputs, states, parameters, constants) is recomputed instead of saved: `1 - z` costs one
 * subtraction, saving it costs B×H floats a step.
 */
function savedSet(fwdRoots: readonly Node[], grads: readonly Node[]): { saved: Node[]; recomputed: Node[] } {
  const fwdOrder = topo(fwdRoots);
  const fwd = new Set(fwdOrder);
  const isLeafish = (n: Node) => n.op === "input" || n.op === "const" || n.op === "size";
  const needed = new Set<Node>();
  for (const n of topo(grads, (m) => fwd.has(m))) if (fwd.has(n) && !isLeafish(n)) needed.add(n);
  const recomputed: Node[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of [...fwdOrder].reverse()) {
      if (!needed.has(n) || OPS[n.op].kind !== "elementwise") continue;
      if (n.args.every((a) => isLeafish(a) || (needed.has(a) && a !== n))) {
        needed.delete(n);
        recomputed.push(n);
        changed = true;
      }
    }
  }
  return { saved: fwdOrder.filter((n) => needed.has(n)), recomputed: fwdOrder.filter((n) => recomputed.includes(n)) };
}

/** Which equations each named adjoint differentiates: those whose right-hand side reads the value. */
function originOf(cell: Cell, namedFwd: readonly Node[], adjoints: readonly Node[], wrt: readonly Node[], grads: readonly Node[]) {
  const owner = new Map<Node, CompiledEquation>();
  for (const eq of cell.equations) for (const n of topo([eq.node])) if (!owner.has(n)) owner.set(n, eq);
  const readers = (v: Node): CompiledEquation[] => {
    const eqs = new Set<CompiledEquation>();
    for (const [n, eq] of owner) if (n.args.includes(v)) eqs.add(eq);
    return cell.equations.filter((e) => eqs.has(e));
  };
  const origin = new Map<Node, readonly CompiledEquation[]>();
  wrt.forEach((w, i) => { if (!origin.has(grads[i]!)) origin.set(grads[i]!, readers(w)); });
  namedFwd.forEach((n, i) => { if (!origin.has(adjoints[i]!)) origin.set(adjoints[i]!, readers(n)); });
  return origin;
}

// The IR: immutable, hash-consed nodes. Two structurally equal expressions are the same object,
// so common subexpressions are shared for free and a Map<Node, …> is a memo table.
import { type Dim, dimEq } from "./dims.ts";
import type { OpName } from "./ops.ts";

/** A value's type: a scalar, vector or matrix over symbolic sizes, per example (batched) or shared. */
export interface Type {
  /** Batched values have one copy per example (x, h, gates); unbatched ones are shared (parameters, constants). */
  readonly batched: boolean;
  readonly shape: readonly Dim[];
}

export const scalar: Type = Object.freeze({ batched: false, shape: [] });
export const vec = (n: Dim, batched = true): Type => Object.freeze({ batched, shape: Object.freeze([n]) });
export const mat = (m: Dim, n: Dim): Type => Object.freeze({ batched: false, shape: Object.freeze([m, n]) });
export const withBatch = (t: Type, batched: boolean): Type => (t.batched === batched ? t : Object.freeze({ batched, shape: t.shape }));
export const shapeEq = (a: Type, b: Type): boolean =>
  a.shape.length === b.shape.length && a.shape.every((d, i) => dimEq(d, b.shape[i]!));
export const typeEq = (a: Type, b: Type): boolean => a.batched === b.batched && shapeEq(a, b);

/** `[H]`, `[H,D]`, `scalar`; batched values carry a `B×` prefix. */
export function shapeStr(t: Type): string {
  return t.shape.length === 0 ? "scalar" : `[${t.shape.map((d) => d.key.replace(/ /g, "")).join(",")}]`;
}
export const typeStr = (t: Type): string => (t.batched ? `B×${shapeStr(t)}` : shapeStr(t));

export type Role = "input" | "state" | "param" | "seed" | "var";

export interface Attrs {
  readonly name?: string;
  readonly role?: Role;
  readonly value?: number;
  readonly dim?: Dim;
  readonly start?: Dim;
  readonly len?: Dim;
  readonly p?: number;
  /** A block-diagonal matrix's number of blocks (a parameter declared with heads, and its products). */
  readonly heads?: number;
  /** A user-defined activation: its name and mathjs expression in `x`. */
  readonly fn?: { readonly name: string; readonly expr: string };
}

export class Node {
  private static nextId = 0;
  readonly id = Node.nextId++;
  constructor(
    readonly op: OpName,
    readonly args: readonly Node[],
    readonly attrs: Attrs,
    readonly type: Type,
    readonly key: string,
  ) {
    Object.freeze(this);
  }
}

/**
 * The hash-consing table. It holds its nodes weakly: a node no cell, derivation or kernel refers to
 * any more is collected, and its entry with it, so a long process (check over many cells, the
 * fuzzer) does not keep every node it ever made. While a node is alive, an equal one is that node.
 */
const table = new Map<string, WeakRef<Node>>();
const collected = new FinalizationRegistry<string>((key) => {
  if (!table.get(key)?.deref()) table.delete(key);
});

function attrKey(a: Attrs): string {
  return JSON.stringify(a, (_k, v) => (v && typeof v === "object" && "key" in v && "terms" in v ? v.key : v));
}

/** The one place nodes are made: returns the existing node when an equal one exists. */
/** How many nodes the table holds an entry for (alive, or collected and not yet swept). */
export const internedCount = (): number => table.size;

export function intern(op: OpName, args: readonly Node[], attrs: Attrs, type: Type): Node {
  const key = `${op}(${args.map((a) => a.id).join(",")})${attrKey(attrs)}:${typeStr(type)}`;
  let n = table.get(key)?.deref();
  if (!n) {
    n = new Node(op, Object.freeze([...args]), Object.freeze({ ...attrs }), type, key);
    table.set(key, new WeakRef(n));
    collected.register(n, key);
  }
  return n;
}

/**
 * All nodes reachable from `roots`, arguments before users (a topological order), deterministic.
 * The walk does not descend below nodes for which `stop` is true (values already known).
 */
export function topo(roots: readonly Node[], stop: (n: Node) => boolean = () => false): Node[] {
  const seen = new Set<Node>();
  const order: Node[] = [];
  const stack: [Node, number][] = roots.map((r) => [r, 0] as [Node, number]).reverse();
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [n, i] = top;
    if (i === 0 && seen.has(n)) { stack.pop(); continue; }
    if (i < n.args.length && !stop(n)) {
      top[1] = i + 1;
      const a = n.args[i]!;
      if (!seen.has(a)) stack.push([a, 0]);
    } else {
      stack.pop();
      if (!seen.has(n)) { seen.add(n); order.push(n); }
    }
  }
  return order;
}

// `cellforge eval`: one sequence forward and backward in float64, from and to JSON, so anyone can
// compare a cellforge cell with their own implementation in any framework.
//
// case.json:  { sizes: {D, H}, T, B, params: {name: nested arrays in the declared shape},
//               inputs: {x: [T][B][D], dt: [T][B] (a scalar input)}, initial: {h: [B][H]}, upstream: {h: [T][B][H], …} }
// A size that a constraint of the cell determines (D under D = H) may be left out; given, it must agree.
// result:     { outputs: {h: [T][B][H], …}, grads: { params: {…}, inputs: {x: …}, initial: {h: …} } }
// The loss is Σ_t Σ_name <upstream[name][t], value[name][t]>.
import { type Cell, resolveSizes } from "../src/cell.ts";
import { dimValue } from "../src/dims.ts";
import { type SequenceCase, checkCase } from "../src/sequence.ts";
import { isSize } from "../runtime/checks.ts";

export class CaseError extends Error {}

type Nested = number | Nested[];

function flatten(v: unknown, dims: readonly number[], field: string, shape: string): Float64Array {
  const out = new Float64Array(dims.reduce((a, b) => a * b, 1));
  let k = 0;
  const walk = (x: unknown, d: number, path: string) => {
    if (d === dims.length) {
      // JSON.parse reads 1e999 as Infinity, which JSON.stringify would show as null: say it as a number
      if (typeof x !== "number" || !Number.isFinite(x)) throw new CaseError(`${path}: expected a finite number, got ${typeof x === "number" ? `${x} (beyond float64's range, ±1.8e308)` : JSON.stringify(x)?.slice(0, 40)} (${field} has shape ${shape})`);
      out[k++] = x;
      return;
    }
    if (!Array.isArray(x) || x.length !== dims[d]) throw new CaseError(`${path}: expected an array of ${dims[d]} (${field} has shape ${shape} = [${dims.join(",")}]), got ${Array.isArray(x) ? `an array of ${x.length}` : JSON.stringify(x)?.slice(0, 40) ?? "nothing"}`);
    x.forEach((y, i) => walk(y, d + 1, `${path}[${i}]`));
  };
  walk(v, 0, field);
  return out;
}

function nest(a: Float64Array, dims: readonly number[]): Nested {
  let k = 0;
  const build = (d: number): Nested => (d === dims.length ? a[k++]! : Array.from({ length: dims[d]! }, () => build(d + 1)));
  return build(0);
}

const obj = (v: unknown, field: string): Record<string, unknown> => {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new CaseError(`${field}: expected an object`);
  return v as Record<string, unknown>;
};
const count = (v: unknown, field: string): number => {
  if (!isSize(v)) throw new CaseError(`${field}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
};

/** Refuse a key a table does not have: a misspelt name would otherwise be ignored, and its values silently not used. */
function onlyKeys(table: Record<string, unknown>, known: readonly string[], field: string, what: string): void {
  for (const k of Object.keys(table))
    if (!known.includes(k)) throw new CaseError(`${field ? `${field}.` : ""}${k}: not ${what} (${known.length ? known.join(", ") : "none"})`);
}

// "cell" too: a converted parameter file ({ cell, sizes, params }) is pasted into a case as it is
const CASE_KEYS = ["cell", "sizes", "T", "B", "params", "inputs", "initial", "upstream"];

/** Read and validate a case for `cell`; every error names the field and the shape it expects. */
export function readCase(cell: Cell, json: unknown): SequenceCase {
  const c = obj(json, "the case");
  onlyKeys(c, CASE_KEYS, "", "a field of a case");
  if (c.cell !== undefined && c.cell !== cell.name) throw new CaseError(`cell: the case is for ${JSON.stringify(c.cell)?.slice(0, 60)}, not ${cell.name}`);
  const sz = obj(c.sizes, "sizes");
  const given: Record<string, number> = {};
  // a case's tables are keyed by the cell's names: only own keys count (a size may be named toString)
  for (const s of cell.sizes) if (Object.hasOwn(sz, s)) given[s] = count(sz[s], `sizes.${s}`);
  for (const k of Object.keys(sz)) if (!cell.sizes.includes(k)) throw new CaseError(`sizes.${k}: ${cell.name} has no size ${k} (sizes: ${cell.sizes.join(", ")})`);
  const resolved = resolveSizes(cell, given, {
    fail: (problem, hint, c) => { throw new CaseError(`sizes: ${problem} (${c.where.file ? `${c.where.file}:${c.where.line ?? "?"}` : `cell ${cell.name}`})${hint ? `; ${hint}` : ""}`); },
  });
  const sizes: Record<string, number> = {};
  for (const s of cell.sizes) sizes[s] = count(Object.hasOwn(resolved, s) ? resolved[s] : undefined, `sizes.${s}`);
  const T = count(c.T, "T"), B = count(c.B, "B");
  checkCase(cell, sizes, B, T); // before any array of the case is made
  const dimsOf = (shape: readonly { key: string }[]) => shape.map((d) => dimValue(d as Parameters<typeof dimValue>[0], sizes));
  const shapeText = (lead: string[], shape: readonly { key: string }[]) => `[${[...lead, ...shape.map((d) => d.key.replace(/ /g, ""))].join(",")}]`;
  const params: Record<string, Float64Array> = {};
  const P = obj(c.params, "params");
  for (const p of cell.params) {
    if (!Object.hasOwn(P, p.name)) throw new CaseError(`params.${p.name}: missing (shape ${shapeText([], p.node.type.shape)})`);
    params[p.name] = flatten(P[p.name], dimsOf(p.node.type.shape), `params.${p.name}`, shapeText([], p.node.type.shape));
  }
  for (const k of Object.keys(P)) if (!cell.params.some((p) => p.name === k)) throw new CaseError(`params.${k}: ${cell.name} has no parameter ${k}`);
  const group = (field: string, nodes: readonly { name: string; shape: readonly { key: string }[] }[], lead: number[], leadText: string[]) => {
    const g = obj(c[field], field);
    onlyKeys(g, nodes.map((n) => n.name), field, `one of ${cell.name}'s ${field === "inputs" ? "inputs" : field === "initial" ? "states" : "states and outputs"}`);
    const out: Record<string, Float64Array> = {};
    for (const n of nodes) {
      if (!Object.hasOwn(g, n.name)) throw new CaseError(`${field}.${n.name}: missing (shape ${shapeText(leadText, n.shape)})`);
      out[n.name] = flatten(g[n.name], [...lead, ...dimsOf(n.shape)], `${field}.${n.name}`, shapeText(leadText, n.shape));
    }
    return out;
  };
  const named = (xs: readonly { attrs: { name?: string }; type: { shape: readonly { key: string }[] } }[]) => xs.map((x) => ({ name: x.attrs.name!, shape: x.type.shape }));
  const inputs = group("inputs", cell.inputs.map((x) => ({ name: x.attrs.name!, shape: inputShape(cell, x) })), [T, B], ["T", "B"]);
  const initial = group("initial", named(cell.states), [B], ["B"]);
  const upstream = group("upstream", [...named(cell.states), ...cell.outputs.map((o) => ({ name: o.name, shape: o.node.type.shape }))], [T, B], ["T", "B"]);
  return { sizes, T, B, params, inputs, initial, upstream };
}

/** An input's shape in a case: none for a scalar input ([T][B]), though a kernel holds it as a vector of 1. */
const inputShape = (cell: Cell, x: Cell["inputs"][number]) => (cell.scalarInputs.includes(x.attrs.name!) ? [] : x.type.shape);

export interface EvalResult {
  readonly outputs: Record<string, Float64Array>;
  readonly params: Record<string, Float64Array>;
  readonly inputs: Record<string, Float64Array>;
  readonly initial: Record<string, Float64Array>;
}

/** The result as nested arrays in the same shapes as the case. */
export function writeResult(cell: Cell, c: SequenceCase, r: EvalResult): unknown {
  const d = (shape: readonly { key: string }[]) => shape.map((x) => dimValue(x as Parameters<typeof dimValue>[0], c.sizes));
  const outs = [...cell.states.map((s, i) => ({ name: s.attrs.name!, node: cell.next[i]! })), ...cell.outputs.map((o) => ({ name: o.name, node: o.node }))];
  return {
    cell: cell.name,
    outputs: Object.fromEntries(outs.map((o) => [o.name, nest(r.outputs[o.name]!, [c.T, c.B, ...d(o.node.type.shape)])])),
    grads: {
      params: Object.fromEntries(cell.params.map((p) => [p.name, nest(r.params[p.name]!, d(p.node.type.shape))])),
      inputs: Object.fromEntries(cell.inputs.map((x) => [x.attrs.name!, nest(r.inputs[x.attrs.name!]!, [c.T, c.B, ...d(inputShape(cell, x))])])),
      initial: Object.fromEntries(cell.states.map((s) => [s.attrs.name!, nest(r.initial[s.attrs.name!]!, [c.B, ...d(s.type.shape)])])),
    },
  };
}

/** A case as JSON (for writing an example case to start from). */
export function caseToJson(cell: Cell, c: SequenceCase): unknown {
  const d = (shape: readonly { key: string }[]) => shape.map((x) => dimValue(x as Parameters<typeof dimValue>[0], c.sizes));
  return {
    sizes: c.sizes, T: c.T, B: c.B,
    params: Object.fromEntries(cell.params.map((p) => [p.name, nest(c.params[p.name]!, d(p.node.type.shape))])),
    inputs: Object.fromEntries(cell.inputs.map((x) => [x.attrs.name!, nest(c.inputs[x.attrs.name!]!, [c.T, c.B, ...d(inputShape(cell, x))])])),
    initial: Object.fromEntries(cell.states.map((s) => [s.attrs.name!, nest(c.initial[s.attrs.name!]!, [c.B, ...d(s.type.shape)])])),
    upstream: Object.fromEntries([...cell.states.map((s, i) => [s.attrs.name!, cell.next[i]!] as const), ...cell.outputs.map((o) => [o.name, o.node] as const)]
      .map(([n, node]) => [n, nest(c.upstream[n]!, [c.T, c.B, ...d(node.type.shape)])])),
  };
}

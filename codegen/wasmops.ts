// The whole-vector ops of a cell's plan that are not elementwise (codegen/schedule.ts's `op` stages:
// sums, broadcasts, slices, pads, concatenations) in WebAssembly SIMD, beside the loops in the cell's
// module (codegen/wasmloops.ts): one function per stage and precision, called the same way, over rows
// [b0, b1), four floats (f32x4) or two doubles (f64x2) at a time and then one at a time for the rest.
//
// Every op but sumb works a row at a time, so its rows may be split between threads like a loop's;
// sumb sums over the rows, and runs whole on one thread. The order the sums add in:
//   sum   a row's elements: lane k of one vector accumulator adds elements k, k + lanes, k + 2·lanes, …
//         in order, the lanes are added pairwise ((l0 + l1) + (l2 + l3); for doubles l0 + l1), then the
//         tail one element at a time. The TypeScript loop adds them in order from the first: the two
//         differ in the last bits (the check's 1e-12 holds), and a row is always summed by one thread.
//   sumb  each element over the rows in order, as the TypeScript loop does: the same float64 bits (in
//         float32 the TypeScript loop adds in doubles, this one in floats).
// The other ops move numbers, or add each one into its target once: the same bits as TypeScript.
//
// The scalar products (matvec, matvecT, outer) have no form here: every product of a cell goes to
// the GEMM paths, and those left (a product with a folded constant) stay in TypeScript.
import type { Node } from "../src/ir.ts";
import type { Expr, Place, Stage } from "./schedule.ts";
import { dimExpr, numelExpr } from "./schedule.ts";
import { precision } from "./gemm-wasm.ts";
import { type PlaceParams, type WasmLoop, functionParams, rowAddress } from "./wasmloops.ts";
import { commentText } from "./escape.ts";

type OpStage = Extract<Stage, { kind: "op" }>;

const isBatchedPlace = (pl: Place) => !pl.stride.isZero;

/** Whether an op stage walks the rows of the program (rows [b0, b1) of the call) or one row. */
export const opOverRows = (n: Node) => n.op === "sumb" || n.op === "expandb" || n.type.batched;

/** What each op does, for the comment above its function. */
const DOES: Readonly<Record<string, string>> = {
  sum: "per row, the sum of its elements",
  sumb: "per element, the sum over the rows",
  bcast: "per row, element 0 spread over the row",
  expandb: "per row, a copy of the one (unbatched) row",
  slice: "per row, a run of the row's elements",
  pad: "per row, the row between zeros",
  concat: "per row, the rows one after another",
};

/** A run of a row's elements, written (or added) from a source; the offsets and count are i32 expressions. */
interface Segment {
  readonly comment: string;
  /** the first element written, and how many */
  readonly at: string | null;
  readonly count: string;
  /** a place's row from an element on, zeros, or element 0 of a place's row spread */
  readonly src: { readonly kind: "load"; readonly place: PlaceParams; readonly from: string | null } | { readonly kind: "zero" } | { readonly kind: "splat"; readonly place: PlaceParams };
}

const get = (x: string) => `(local.get $${x})`;
const plus = (a: string | null, b: string) => (a === null ? b : `(i32.add ${a} ${b})`);

/**
 * Lower one op stage; null for an op without a form here, or a constant operand (folded away before
 * here in every cell). In three phases: the function's parameters (opParams), the runs of a row it
 * writes (opSegments), and its text in each precision (opFunction).
 */
export function wasmOp(st: OpStage, id: number): WasmLoop | null {
  if (!(st.node.op in DOES) || !st.args.every((a) => a.kind === "load")) return null;
  const op = opParams(st);
  const segments = opSegments(st.node, op);
  const text = { 32: opFunction(st, id, op, segments, 32), 64: opFunction(st, id, op, segments, 64) };
  // an engine takes at most 1000 parameters per function (a concat of hundreds of vectors): more, and the op stays in TypeScript
  if (op.fp.params.length + 2 > 1000) return null;
  // rows may be split between threads when each row is written by itself: a row-wise op into a batched place
  const splittable = op.overRows && op.perRow && op.out.row !== null;
  return { id, vector: true, splittable, params: op.fp.params, text, math: new Set() };
}

/** An op function's parameters: n (the elements of a row it walks), then its target's and operands' places. */
interface OpParams {
  readonly fp: ReturnType<typeof functionParams>;
  readonly out: PlaceParams;
  readonly ins: readonly PlaceParams[];
  /** whether it walks the rows [b0, b1) of the call, and whether it writes each row by itself (all but sumb) */
  readonly overRows: boolean;
  readonly perRow: boolean;
}

function opParams(st: OpStage): OpParams {
  const n = st.node;
  const overRows = opOverRows(n);
  const perRow = n.op !== "sumb";
  const fp = functionParams(["b0", "b1", "b", "i", "nv", "off", "to", "from", "acc", "sum", "v", "s"]);
  // n, the elements of a row the op walks, is the first parameter, as a loop's (the runtime weighs the work by it)
  const count: Expr = n.op === "sum" || n.op === "sumb" ? numelExpr(n.args[0]!.type) : n.op === "bcast" || n.op === "pad" ? dimExpr(n.attrs.dim!) : n.op === "slice" ? dimExpr(n.attrs.len!) : numelExpr(n.type);
  fp.size(count, "n");
  // a place steps with the rows where the TypeScript loop steps through it: a batched place of an op
  // over the rows, but expandb's operand, which is its row 0
  const rowed = (pl: Place, isOut: boolean) => overRows && isBatchedPlace(pl) && (isOut || n.op !== "expandb");
  const out = fp.place(st.out.place, perRow && rowed(st.out.place, true));
  const ins = st.args.flatMap((a) => (a.kind === "load" ? [fp.place(a.place, rowed(a.place, false))] : []));
  return { fp, out, ins, overRows, perRow };
}

/** The runs of its row an op that moves numbers writes (none for sum and sumb, which add). */
function opSegments(n: Node, { fp, ins }: OpParams): Segment[] {
  const size = (d: Expr) => get(fp.size(d));
  const len = (x: Node) => size(dimExpr(x.type.shape[0]!));
  switch (n.op) {
    case "bcast":
      return [{ comment: "element 0, spread", at: null, count: get("n"), src: { kind: "splat", place: ins[0]! } }];
    case "expandb":
      return [{ comment: "the one row", at: null, count: get("n"), src: { kind: "load", place: ins[0]!, from: null } }];
    case "slice":
      return [{ comment: "the slice", at: null, count: get("n"), src: { kind: "load", place: ins[0]!, from: size(dimExpr(n.attrs.start!)) } }];
    case "pad": {
      const s = size(dimExpr(n.attrs.start!)), L = len(n.args[0]!), end = `(i32.add ${s} ${L})`;
      return [
        { comment: "zeros before", at: null, count: s, src: { kind: "zero" } },
        { comment: "the operand", at: s, count: L, src: { kind: "load", place: ins[0]!, from: null } },
        { comment: "zeros after", at: end, count: `(i32.sub ${get("n")} ${end})`, src: { kind: "zero" } },
      ];
    }
    case "concat": {
      let at: string | null = null;
      return n.args.map((a, k) => {
        const sg: Segment = { comment: `operand ${k + 1} of ${n.args.length}`, at, count: len(a), src: { kind: "load", place: ins[k]!, from: null } };
        at = plus(at, len(a));
        return sg;
      });
    }
    default:
      return [];
  }
}

/** The pieces of WebAssembly an op's function is written with, in one precision. */
function opWriter(bits: 32 | 64, add: boolean) {
  const p = precision(bits);
  const sh = (e: string) => `(i32.shl ${e} (i32.const ${p.shift}))`;
  const addr = (pl: PlaceParams) => get(pl.row ?? pl.base);
  const T = (vec: boolean) => (vec ? p.v : p.f);
  const load = (vec: boolean, a: string) => `(${vec ? "v128" : p.f}.load ${a})`;
  return {
    p,
    addr,
    T,
    load,
    /** element i of a place's row, or the row's start */
    elem: (pl: PlaceParams, i: string | null) => (i === null ? addr(pl) : `(i32.add ${addr(pl)} ${sh(i)})`),
    zero: (vec: boolean) => (vec ? `(v128.const ${p.v} ${Array(p.lanes).fill(0).join(" ")})` : `(${p.f}.const 0)`),
    /** a value into the target at `a`: stored, or added to what is there */
    put: (vec: boolean, a: string, value: string) => `(${vec ? "v128" : p.f}.store ${a} ${add ? `(${T(vec)}.add ${load(vec, a)} ${value})` : value})`,
    rowSet: (e: PlaceParams, b: string) => `(local.set $${e.row} ${rowAddress(e, b, p.shift)})`,
    /** element `base` + $off, where $off is element i's byte offset */
    at: (base: string) => `(i32.add ${base} (local.get $off))`,
    /** elements i < count of a row: whole vectors, then the tail one at a time; $off is element i's byte offset */
    walk: (count: string, body: (vec: boolean) => string[], label: string, between: string[] = []): string[] => [
      `(local.set $nv (i32.sub ${count} (i32.rem_u ${count} (i32.const ${p.lanes}))))`,
      "(local.set $i (i32.const 0))",
      `(block $v_done${label} (loop $v_next${label}`,
      `  (br_if $v_done${label} (i32.ge_s (local.get $i) (local.get $nv)))`,
      `  (local.set $off ${sh("(local.get $i)")})`,
      ...body(true).map((l) => `  ${l}`),
      `  (local.set $i (i32.add (local.get $i) (i32.const ${p.lanes})))`,
      `  (br $v_next${label})))`,
      ...between,
      `(block $tail_done${label} (loop $tail_next${label}`,
      `  (br_if $tail_done${label} (i32.ge_s (local.get $i) ${count}))`,
      `  (local.set $off ${sh("(local.get $i)")})`,
      ...body(false).map((l) => `  ${l}`),
      "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
      `  (br $tail_next${label})))`,
    ],
  };
}
type OpWriter = ReturnType<typeof opWriter>;

/** An op's function in one precision: its comment, signature, locals, and its body. */
function opFunction(st: OpStage, id: number, op: OpParams, segments: readonly Segment[], bits: 32 | 64): string[] {
  const n = st.node;
  const w = opWriter(bits, st.out.add);
  const locals = ["(local $b i32) (local $i i32) (local $nv i32) (local $off i32)"];
  let body: string[];
  if (n.op === "sumb") {
    locals.push(`(local $acc v128) (local $sum ${w.p.f})`);
    body = sumOverRows(w, op);
  } else {
    let inRow: string[];
    if (n.op === "sum") {
      locals.push(`(local $acc v128) (local $sum ${w.p.f})`);
      inRow = sumOfRow(w, op);
    } else {
      locals.push(segments.some((sg) => sg.src.kind === "load") ? "(local $to i32) (local $from i32)" : "(local $to i32)", ...(n.op === "bcast" ? [`(local $v v128) (local $s ${w.p.f})`] : []));
      inRow = segmentsOfRow(w, op, segments);
    }
    body = [
      "(local.set $b (local.get $b0))",
      "(block $b_done (loop $b_next",
      "  (br_if $b_done (i32.ge_s (local.get $b) (local.get $b1)))",
      ...op.fp.places().filter((e) => e.row).map((e) => `  ${w.rowSet(e, "(local.get $b)")}`),
      ...inRow.map((l) => `  ${l}`),
      "  (local.set $b (i32.add (local.get $b) (i32.const 1)))",
      "  (br $b_next)))",
    ];
  }
  return [
    `;; op ${id}: ${n.op}, ${DOES[n.op]}${st.out.add ? ", added into its target" : ""}${st.note ? ` (${commentText(st.note.replace(/\s+/g, " "))})` : ""}`,
    `(func $f${bits}_${id} (export "f${bits}_${id}") (param $b0 i32) (param $b1 i32) ${op.fp.params.map((q) => `(param $${q.name} i32)`).join(" ")}`,
    ...locals.map((l) => `  ${l}`),
    ...op.fp.places().filter((e) => e.row).map((e) => `  (local $${e.row} i32)`),
    ...body.map((l) => `  ${l}`),
    ")",
  ];
}

/** sumb: per element (vector), the rows b0, b1, … added in order into an accumulator, then stored once. */
function sumOverRows(w: OpWriter, { out, ins }: OpParams): string[] {
  const x = ins[0]!;
  const acc = (vec: boolean) => (vec ? "$acc" : "$sum");
  return w.walk(get("n"), (vec) => [
    `(local.set ${acc(vec)} ${w.zero(vec)})`,
    "(local.set $b (local.get $b0))",
    "(block $b_done (loop $b_next",
    "  (br_if $b_done (i32.ge_s (local.get $b) (local.get $b1)))",
    ...(x.row ? [`  ${w.rowSet(x, "(local.get $b)")}`] : []),
    `  (local.set ${acc(vec)} (${w.T(vec)}.add (local.get ${acc(vec)}) ${w.load(vec, w.at(w.addr(x)))}))`,
    "  (local.set $b (i32.add (local.get $b) (i32.const 1)))",
    "  (br $b_next)))",
    w.put(vec, w.at(w.addr(out)), `(local.get ${acc(vec)})`),
  ], "");
}

/** sum, in a row: the vectors into the lanes of $acc, the lanes added pairwise, then the tail. */
function sumOfRow(w: OpWriter, { out, ins }: OpParams): string[] {
  const { p } = w;
  const lane = (k: number) => `(${p.v}.extract_lane ${k} (local.get $acc))`;
  const x = w.addr(ins[0]!);
  return [
    `(local.set $acc ${w.zero(true)})`,
    ...w.walk(get("n"), (vec) => [vec ? `(local.set $acc (${p.v}.add (local.get $acc) ${w.load(true, w.at(x))}))` : `(local.set $sum (${p.f}.add (local.get $sum) ${w.load(false, w.at(x))}))`], "", [
      ";; the lanes, pairwise; then the tail, one at a time",
      `(local.set $sum ${p.lanes === 4 ? `(${p.f}.add (${p.f}.add ${lane(0)} ${lane(1)}) (${p.f}.add ${lane(2)} ${lane(3)}))` : `(${p.f}.add ${lane(0)} ${lane(1)})`})`,
    ]),
    w.put(false, w.addr(out), "(local.get $sum)"),
  ];
}

/** An op that moves numbers, in a row: each segment written from its source. */
function segmentsOfRow(w: OpWriter, { out }: OpParams, segments: readonly Segment[]): string[] {
  return segments.flatMap((sg, k) => {
    const src = sg.src;
    const value = (vec: boolean) => (src.kind === "zero" ? w.zero(vec) : src.kind === "splat" ? get(vec ? "v" : "s") : w.load(vec, w.at(get("from"))));
    return [
      `;; ${sg.comment}`,
      `(local.set $to ${w.elem(out, sg.at)})`,
      ...(src.kind === "load" ? [`(local.set $from ${w.elem(src.place, src.from)})`] : []),
      ...(src.kind === "splat" ? [`(local.set $v (${w.p.splat} ${w.addr(src.place)}))`, `(local.set $s (${w.p.f}.load ${w.addr(src.place)}))`] : []),
      ...w.walk(sg.count, (vec) => [w.put(vec, w.at(get("to")), value(vec))], segments.length > 1 ? `_${k + 1}` : ""),
    ];
  });
}

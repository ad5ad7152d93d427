// Lowering: a cell's forward and derived backward graphs become loop programs a performance
// engineer would write by hand. The programs are data (stages over named buffers), so the
// TypeScript emitter and a second emitter (WebAssembly) can share them.
//
//   setup     values that depend on parameters alone, once per call
//   prologue  products with the inputs (W·x) for all T steps at once: one large packed product
//   step      per time step: the packed recurrent product, then fused elementwise loops
//   epilogue  (backward) dW for the input weights and dx for all T steps at once
//
// Within a program, nodes are placed in phases: a phase's matrix products (and other whole-vector
// ops) run first, then all of its elementwise work in as few loops as there are iteration spaces.
// Matrices multiplying the same vector are adjacent in the parameter buffer, so their products are
// one GEMM over the stacked weights.
import type { Cell } from "../src/cell.ts";
import type { BackwardStep } from "../src/backward.ts";
import { type Dim, denominator, dimAdd, dimConst, dimEq } from "../src/dims.ts";
import { type Node, type Type, topo } from "../src/ir.ts";
import { OPS, apply, blockOf } from "../src/ops.ts";
import { type Layout, paramLayout } from "./layout.ts";
import { Ix, ONE, ZERO } from "./ix.ts";

/** An index expression over the sizes, B, T, t and the kernel's offsets (codegen/ix.ts): typed, printed by its one printer. */
export type Expr = Ix;

/** Where a value lives: row r (an example, or a step×example) at buf[start + r*stride + i]. */
export interface Place {
  readonly buf: string;
  readonly start: Expr;
  readonly stride: Expr;
}

export interface Store {
  readonly place: Place;
  /** Add into the place instead of writing it (gradients accumulating over steps). */
  readonly add: boolean;
}

export type Operand =
  | { readonly kind: "load"; readonly place: Place; readonly type: Type }
  | { readonly kind: "local"; readonly name: string }
  | { readonly kind: "const"; readonly value: number }
  | { readonly kind: "size"; readonly expr: Expr }
  | { readonly kind: "node"; readonly node: Node; readonly args: readonly Operand[] };

export interface LoopItem {
  readonly node: Node;
  /** The local's name when the value is bound (used twice, stored, or named); else inlined. */
  readonly local: string | undefined;
  readonly value: Operand;
  readonly stores: readonly Store[];
  readonly comment: string | undefined;
}

export interface Space {
  readonly batched: boolean;
  /** Elements per example (1 for a scalar). */
  readonly n: Expr;
}

export type Stage =
  | {
      readonly kind: "gemm";
      /** NT: C[r,j] = Σk A[r,k]·W[j,k];  NN: C[r,k] = Σj A[r,j]·W[j,k];  TN: C[j,k] = Σr A[r,j]·V[r,k]. */
      readonly form: "NT" | "NN" | "TN";
      readonly rows: Expr;
      readonly M: Expr;
      readonly K: Expr;
      readonly a: Place;
      readonly b: Place;
      readonly c: Place;
      readonly accumulate: boolean;
      readonly note: string;
    }
  | { readonly kind: "loop"; readonly space: Space; readonly items: readonly LoopItem[] }
  | { readonly kind: "op"; readonly node: Node; readonly args: readonly Operand[]; readonly out: Store; readonly note: string }
  /** One value into one or more places (a gradient shared by two biases goes to both in one pass). */
  | { readonly kind: "copy"; readonly from: Operand; readonly space: Space; readonly to: readonly Store[] };

export interface Program {
  readonly name: string;
  /** Rows of batched values: "B" in a step, "T * B" in the prologue and epilogue. */
  readonly rows: Expr;
  readonly stages: readonly Stage[];
}

export interface BufferDecl {
  readonly name: string;
  readonly size: Expr;
  /**
   * scratch: reused by the memory plan; the rest persist across calls. saved: what the forward step
   * keeps for the backward, one slot per step of a segment (`seg` steps, T unless checkpointing);
   * tape: what the backward step keeps for the epilogue, every step.
   */
  readonly role: "scratch" | "saved" | "tape" | "prologue" | "setup" | "carry" | "seed";
  /** The values a saved or prologue buffer holds, each once per example per step. */
  readonly values?: readonly Node[];
}

export interface KernelPlan {
  readonly cell: Cell;
  readonly bw: BackwardStep;
  readonly layout: Layout;
  readonly buffers: readonly BufferDecl[];
  readonly fwdSetup: Program;
  readonly prologue: Program;
  readonly fwdStep: Program;
  readonly bwdSetup: Program;
  readonly bwdStep: Program;
  readonly epilogue: Program;
  /** The place of each forward value the backward reads at step t. */
  readonly names: ReadonlyMap<Node, string>;
  /** Inputs whose gradient the epilogue computes for all steps at once. */
  readonly deferredInputs: ReadonlySet<Node>;
}

// --------------------------------------------------------------------------------- helpers

/** A size as an index expression: `H`, `(3 * H)`, `(D + H)` when printed. */
export const dimExpr = (d: Dim): Expr => Ix.dim(d);
const mulE = Ix.mul;
const addE = Ix.add;
export const numelExpr = (t: Type): Expr => mulE(...t.shape.map(dimExpr));
const isInline = (n: Node) => n.op === "const" || n.op === "size";
const isParamLeaf = (n: Node) => n.op === "input" && n.attrs.role === "param";

/** A place shifted by a column offset. */
const shift = (p: Place, off: Expr): Place => ({ ...p, start: addE(p.start, off) });

// --------------------------------------------------------------------------------- scheduling

interface Run {
  /** Parameter matrices, contiguous in the flat buffer, in buffer order. */
  readonly ws: readonly Node[];
  /** The other operand of each: g_k (backward) or the common vector (forward). */
  readonly gs: readonly Node[];
  readonly M: Expr;
  readonly K: Expr;
  /** Column offset of each member within the run. */
  readonly offs: readonly Expr[];
}

export interface ScheduleInput {
  readonly name: string;
  /** What the program computes: the forward's values (W'*h is a product of the step), or gradients (notes say d(dh) from W). */
  readonly pass: "forward" | "backward";
  readonly rows: Expr;
  /** The most rows the program ever runs, which its scratch buffers are sized for: `rows` unless it varies (the prologue's `steps * B`). */
  readonly maxRows?: Expr;
  readonly roots: readonly Node[];
  /** Values available as buffers. */
  readonly given: ReadonlyMap<Node, Place>;
  /** Places some nodes must also be written (or added) to. */
  readonly required: ReadonlyMap<Node, readonly Store[]>;
  /** Packed buffers already provided for runs (keyed by runKey): tapes of the backward. */
  readonly runPlaces?: ReadonlyMap<string, Place>;
  readonly layout: Layout;
  readonly paramPlace: (w: Node) => Place;
  /** Roots that are the per-step gradient of parameters (accumulated into dp). */
  readonly gradOf: ReadonlyMap<Node, readonly Node[]>;
  readonly names: ReadonlyMap<Node, string>;
  /** A name for an unnamed value bound to a local, handed out in emission order (deterministic). */
  readonly temp: (n: Node) => string;
  readonly comments: ReadonlyMap<Node, string>;
  readonly alloc: Allocator;
}

export const runKey = (ws: readonly Node[], gs: readonly Node[]) => ws.map((w, i) => `${w.id}:${gs[i]!.id}`).join(",");

/** Split (matrix, operand) pairs into runs of matrices adjacent in the parameter buffer. */
export function packRuns(pairs: readonly (readonly [Node, Node])[], layout: Layout): Run[] {
  const sorted = [...pairs].sort((a, b) => layout.index.get(a[0])! - layout.index.get(b[0])!);
  const runs: [Node, Node][][] = [];
  for (const pr of sorted) {
    const last = runs[runs.length - 1];
    const prev = last?.[last.length - 1];
    const adjacent = prev && layout.index.get(pr[0]) === layout.index.get(prev[0])! + 1 && dimEq(pr[0].type.shape[1]!, prev[0].type.shape[1]!);
    if (last && adjacent) last.push([pr[0], pr[1]]);
    else runs.push([[pr[0], pr[1]]]);
  }
  return runs.map((r) => {
    const offs: Expr[] = [];
    let acc: Dim = dimConst(0);
    for (const [w] of r) {
      offs.push(dimExpr(acc));
      acc = dimAdd(acc, w.type.shape[0]!);
    }
    return { ws: r.map((x) => x[0]), gs: r.map((x) => x[1]), M: dimExpr(acc), K: dimExpr(r[0]![0].type.shape[1]!), offs };
  });
}

/** Flatten an add tree whose terms include products Wᵀ·g (a backward "gemm sum"). */
/** The terms of an add tree, not looking inside values that are `given`. */
export function addTerms(n: Node, given: ReadonlyMap<Node, Place> = new Map()): Node[] {
  const terms: Node[] = [];
  const walk = (m: Node) => (m.op === "add" && !given.has(m) ? m.args.forEach(walk) : terms.push(m));
  walk(n);
  return terms;
}

function gemmSumTerms(n: Node, given: ReadonlyMap<Node, Place>): { mts: Node[]; rest: Node[] } | undefined {
  // a product W'*g on its own (the forward's W'*h, or a backward dh = U'*g) is a sum of one term: an NN product too
  if (n.op !== "add" && n.op !== "matvecT") return undefined;
  const terms = addTerms(n, given);
  // a product of a shared vector inside a per-example sum stays a term of its own (the GEMM runs over one row or all)
  // a block-diagonal W'*g (a parameter with heads) is a term too: its per-head NN products add into the sum's place
  const mts = terms.filter((t) => (t.op === "matvecT" || t.op === "bdmatvecT") && isParamLeaf(t.args[0]!) && !given.has(t) && t.type.batched === n.type.batched && !isInline(t.args[1]!));
  if (mts.length === 0) return undefined;
  return { mts, rest: terms.filter((t) => !mts.includes(t)) };
}

/**
 * The memory plan for scratch. A program's scratch buffers are placed once it is scheduled, from
 * the stages each one is live over (the first that touches it, which writes it, to the last that
 * reads it): two values share a slot when their sizes are equal and their stages do not overlap, in
 * one program or in programs that run one after another. A stage never reads and writes one slot.
 */
export interface Allocator {
  assign(program: string, buffers: readonly ScratchUse[]): ReadonlyMap<string, string>;
}

/** A scratch buffer of a program, by its placeholder name: its size and the stages it is live over. */
export interface ScratchUse {
  readonly name: string;
  readonly size: Expr;
  readonly first: number;
  readonly last: number;
}

export function makeAllocator(fresh: (want: string) => string): Allocator & { decls(): BufferDecl[] } {
  const slots: { name: string; size: Expr; spans: Map<string, [number, number][]> }[] = [];
  return {
    assign(program, buffers) {
      const slotOf = new Map<string, string>();
      for (const u of [...buffers].sort((a, b) => a.first - b.first || a.last - b.last)) {
        const free = (x: (typeof slots)[number]) => x.size.equals(u.size) && (x.spans.get(program) ?? []).every(([f, l]) => l < u.first || u.last < f);
        let s = slots.find(free);
        if (!s) slots.push((s = { name: fresh(`scratch${slots.length}`), size: u.size, spans: new Map() }));
        s.spans.set(program, [...(s.spans.get(program) ?? []), [u.first, u.last]]);
        slotOf.set(u.name, s.name);
      }
      return slotOf;
    },
    decls: () => slots.map((s) => ({ name: s.name, size: s.size, role: "scratch" as const })),
  };
}

/** A stage with each place mapped by `f` (every place it reads or writes, in operands, stores and products). */
function mapPlaces(st: Stage, f: (p: Place, writes: boolean) => Place): Stage {
  const operand = (o: Operand): Operand => (o.kind === "load" ? { ...o, place: f(o.place, false) } : o.kind === "node" ? { ...o, args: o.args.map(operand) } : o);
  const store = (s: Store): Store => ({ ...s, place: f(s.place, !s.add) });
  switch (st.kind) {
    case "gemm": return { ...st, a: f(st.a, false), b: f(st.b, false), c: f(st.c, !st.accumulate) };
    case "loop": return { ...st, items: st.items.map((it) => ({ ...it, value: operand(it.value), stores: it.stores.map(store) })) };
    case "op": return { ...st, args: st.args.map(operand), out: store(st.out) };
    case "copy": return { ...st, from: operand(st.from), to: st.to.map(store) };
  }
}

type Kind = "ew" | "nt" | "gsum" | "tn" | "heads" | "op";

/**
 * A block-diagonal product (a parameter declared with heads) as one GEMM per head, each on that
 * head's block and slices, addressed by offsets with the rows' own strides:
 *   W*x    NT   y_k  = x_k · W_kᵀ        (rows × R/heads, over C/heads)
 *   W'*y   NN   x_k  = y_k · W_k         (rows × C/heads, over R/heads)
 *   dW     TN   dW_k = Σ_rows u_kᵀ · v_k (R/heads × C/heads, the blocks stored one under another)
 * so the work is R·C/heads per row, not R·C.
 */
function headGemms(n: Node, [a, b]: readonly [Place, Place], out: Store, rows: Expr, note: string): Stage[] {
  const heads = n.attrs.heads!;
  const [R, Cb] = n.op === "bdouter" ? [n.type.shape[0]!, n.type.shape[1]!] : [n.args[0]!.type.shape[0]!, n.args[0]!.type.shape[1]!];
  const Rb = dimExpr(blockOf(R, heads)), C = dimExpr(Cb);
  const at = (k: number, per: Expr) => (k === 0 ? ZERO : mulE(Ix.num(k), per));
  const R_ = n.args.some((x) => x.type.batched) ? rows : ONE;
  return Array.from({ length: heads }, (_, k): Stage => {
    const head = `head ${k + 1} of ${heads}: ${note}`;
    const block = at(k, mulE(Rb, C));
    switch (n.op) {
      case "bdmatvec": // a = W, b = x
        return { kind: "gemm", form: "NT", rows: R_, M: Rb, K: C, a: shift(b, at(k, C)), b: shift(a, block), c: shift(out.place, at(k, Rb)), accumulate: out.add, note: head };
      case "bdmatvecT": // a = W, b = y
        return { kind: "gemm", form: "NN", rows: R_, M: Rb, K: C, a: shift(b, at(k, Rb)), b: shift(a, block), c: shift(out.place, at(k, C)), accumulate: out.add, note: head };
      default: // bdouter: a = u, b = v
        return { kind: "gemm", form: "TN", rows: R_, M: Rb, K: C, a: shift(a, at(k, Rb)), b: shift(b, at(k, C)), c: shift(out.place, block), accumulate: out.add, note: head };
    }
  });
}
const isHeadProduct = (n: Node) => n.op === "bdmatvec" || n.op === "bdmatvecT" || n.op === "bdouter";

/**
 * Schedule the graph of `roots` into stages, in phases: the graph (`graphOf`: the nodes in order,
 * their kind and phase, who reads what), the packed operands of the products (`packOperands`), then
 * phase by phase its whole-vector stages (`productStages`, `wholeVectorStage`) and its fused
 * elementwise loops (`elementwiseLoops`), and last the copies of roots that are given (`rootCopies`).
 */
export function schedule(inp: ScheduleInput): Program {
  const s = new Scheduler(inp);
  for (let k = 0; k <= s.graph.maxPhase; k++) {
    const inPhase = s.graph.order.filter((n) => s.graph.phase.get(n) === k);
    s.productStages(inPhase);
    for (const n of inPhase) s.wholeVectorStage(n);
    s.elementwiseLoops(inPhase);
  }
  return { name: inp.name, rows: inp.rows, stages: s.placeScratch(resolveLocals(mergeCopies([...s.rootCopies(), ...s.stages]))) };
}

/** The graph a program computes: its nodes in dependency order, each one's kind and phase, and who reads each. */
function graphOf(inp: ScheduleInput) {
  const { given } = inp;
  const gsum = new Map<Node, { mts: Node[]; rest: Node | undefined }>();
  const deps = (n: Node): readonly Node[] => {
    const g = gsum.get(n);
    return g ? [...g.mts.map((m) => m.args[1]!), ...(g.rest ? [g.rest] : [])] : n.args;
  };
  // discover nodes, turning add trees of Wᵀ·g into gemm sums on the way
  const order: Node[] = [];
  const seen = new Set<Node>();
  const visit = (n: Node) => {
    if (seen.has(n) || given.has(n) || isInline(n)) return;
    seen.add(n);
    const t = gemmSumTerms(n, given);
    if (t) gsum.set(n, { mts: t.mts, rest: t.rest.length ? t.rest.reduce((a, b) => apply("add", [a, b])) : undefined });
    for (const a of deps(n)) visit(a);
    order.push(n);
  };
  for (const r of inp.roots) visit(r);

  const kind = (n: Node): Kind => {
    if (gsum.has(n)) return "gsum";
    // a product with a constant (W*sigmoid(0) after folding) has no buffer to multiply: a plain loop
    if ((n.op === "matvec" || n.op === "outer") && n.args.some(isInline)) return "op";
    if (n.op === "matvec" && isParamLeaf(n.args[0]!)) return "nt";
    if (n.op === "outer") return "tn";
    if (isHeadProduct(n)) return "heads";
    return OPS[n.op].kind === "elementwise" ? "ew" : "op";
  };
  const phase = new Map<Node, number>();
  for (const n of order) {
    let k = 0;
    for (const a of deps(n)) {
      if (given.has(a) || isInline(a)) continue;
      const pa = phase.get(a)!;
      k = Math.max(k, kind(n) === "ew" ? pa : kind(a) === "ew" ? pa + 1 : pa + 1);
    }
    phase.set(n, k);
  }
  const consumers = new Map<Node, Node[]>();
  for (const n of order) for (const a of deps(n)) consumers.set(a, [...(consumers.get(a) ?? []), n]);
  return { order, gsum, kind, phase, consumers, maxPhase: Math.max(0, ...order.map((n) => phase.get(n)!)) };
}

/** A program's placement as it is scheduled: where each value lives, the stages so far, the packed operands. */
class Scheduler {
  readonly graph: ReturnType<typeof graphOf>;
  readonly stages: Stage[] = [];
  /** places of computed values, and extra stores for packed operands */
  private readonly place = new Map<Node, Place>();
  private readonly extraStores = new Map<Node, Store[]>();
  private readonly runs = new Map<string, { run: Run; place: Place }>();
  /** backward operands of gemm sums and outer products, in packed places */
  private readonly gsumRuns = new Map<Node, { run: Run; place: Place }[]>();
  private readonly tnRuns = new Map<Node, { run: Run; place: Place }[]>();
  /** outer products that are a parameter's gradient and nothing else: they accumulate straight into dp */
  private readonly paramsOfOuter = new Map<Node, readonly Node[]>();
  private readonly maxRows: Expr;
  /** the program's scratch buffers, by placeholder name, and their sizes */
  private readonly scratchSizes = new Map<string, Expr>();

  constructor(readonly inp: ScheduleInput) {
    this.graph = graphOf(inp);
    this.maxRows = inp.maxRows ?? inp.rows;
    this.packOperands();
  }

  private operandOf(n: Node): Operand {
    if (n.op === "const") return { kind: "const", value: n.attrs.value! };
    if (n.op === "size") return { kind: "size", expr: dimExpr(n.attrs.dim!) };
    const p = this.inp.given.get(n) ?? this.place.get(n);
    if (!p) throw new Error(`internal: no place for ${n.op} node ${n.id} in ${this.inp.name}`);
    return { kind: "load", place: p, type: n.type };
  }
  private operandPlace(n: Node): Place {
    const p = this.inp.given.get(n) ?? this.place.get(n);
    if (!p) throw new Error(`internal: ${n.op} node ${n.id} has no place before its product in ${this.inp.name}`);
    return p;
  }
  private scratchPlace(n: Node): Place {
    return { buf: this.newScratch(n.type.batched ? mulE(this.maxRows, numelExpr(n.type)) : numelExpr(n.type)), start: ZERO, stride: n.type.batched ? numelExpr(n.type) : ZERO };
  }
  /** A scratch buffer of this program, by a placeholder name until placeScratch gives it a slot. */
  private newScratch(size: Expr): string {
    const name = `~${this.scratchSizes.size}`;
    this.scratchSizes.set(name, size);
    return name;
  }

  /** The program's scratch buffers in slots, from the stages each is live over (Allocator). */
  placeScratch(stages: readonly Stage[]): Stage[] {
    const spans = new Map<string, { first: number; last: number }>();
    stages.forEach((st, k) => mapPlaces(st, (p, writes) => {
      const span = spans.get(p.buf);
      if (span) span.last = k;
      else if (this.scratchSizes.has(p.buf)) {
        // what it holds was written in this program: a value kept from an earlier call is a buffer of its own role
        if (!writes) throw new Error(`internal: ${this.inp.name} reads a scratch buffer before it writes it (stage ${k + 1}, ${st.kind})`);
        spans.set(p.buf, { first: k, last: k });
      }
      return p;
    }));
    const slot = this.inp.alloc.assign(this.inp.name, [...spans].map(([name, { first, last }]) => ({ name, size: this.scratchSizes.get(name)!, first, last })));
    return stages.map((st) => mapPlaces(st, (p) => (slot.has(p.buf) ? { ...p, buf: slot.get(p.buf)! } : p)));
  }
  private requiredOf(n: Node): Store[] {
    return [...(this.inp.required.get(n) ?? []), ...(this.extraStores.get(n) ?? [])];
  }
  private copies(n: Node, to: Iterable<Store>): void {
    for (const s of to) this.stages.push({ kind: "copy", from: this.operandOf(n), space: spaceOf(n), to: [s] });
  }

  /** The packed places of runs of products (decided before any stage, so elementwise loops know where to store packed operands). */
  private runFor(ws: readonly Node[], gs: readonly Node[]): { run: Run; place: Place }[] {
    const { given } = this.inp;
    return packRuns(ws.map((w, i) => [w, gs[i]!] as const), this.inp.layout).map((run) => {
      const key = runKey(run.ws, run.gs);
      let r = this.runs.get(key);
      if (!r) {
        const single = run.ws.length === 1 && (given.get(run.gs[0]!) ?? undefined);
        const pre = this.inp.runPlaces?.get(key);
        const p = pre ?? (single ? single : { buf: this.newScratch(mulE(this.maxRows, run.M)), start: ZERO, stride: run.M });
        // the plan stores operands into provided (tape) places itself
        if (!single && !pre) run.gs.forEach((g, i) => {
          const tgt: Store = { place: shift(p, run.offs[i]!), add: false };
          if (given.has(g)) this.stages.push({ kind: "copy", from: this.operandOf(g), space: { batched: g.type.batched, n: dimExpr(run.ws[i]!.type.shape[0]!) }, to: [tgt] });
          else this.extraStores.set(g, [...(this.extraStores.get(g) ?? []), tgt]);
        });
        r = { run, place: p };
        this.runs.set(key, r);
      }
      return r;
    });
  }

  /** Backward operands of gemm sums and outer products get packed places. */
  private packOperands(): void {
    const { order, kind, phase, gsum, consumers } = this.graph;
    const tnGroups = new Map<number, Map<Node, Node[]>>(); // phase -> v -> outer nodes
    for (const n of order) {
      if (kind(n) === "gsum") {
        const dense = gsum.get(n)!.mts.filter((m) => m.op === "matvecT");
        this.gsumRuns.set(n, this.runFor(dense.map((m) => m.args[0]!), dense.map((m) => m.args[1]!)));
      }
      if (kind(n) === "tn") {
        const byV = tnGroups.get(phase.get(n)!) ?? new Map<Node, Node[]>();
        byV.set(n.args[1]!, [...(byV.get(n.args[1]!) ?? []), n]);
        tnGroups.set(phase.get(n)!, byV);
      }
    }
    // (two parameters can share one gradient node: W*x + V*x gives dW = dV = outer(g, x))
    for (const [n, ws] of this.inp.gradOf) if (n.op === "outer" && !consumers.has(n) && ws.every((w) => w.type.shape.length === 2)) this.paramsOfOuter.set(n, ws);
    for (const byV of tnGroups.values())
      for (const [, outs] of byV) {
        const packable = outs.filter((o) => this.paramsOfOuter.has(o) && o.args[0]!.type.batched);
        if (packable.length === 0) continue;
        const pairs = packable.flatMap((o) => this.paramsOfOuter.get(o)!.map((w) => [w, o.args[0]!] as const));
        const rs = this.runFor(pairs.map(([w]) => w), pairs.map(([, g]) => g));
        for (const o of packable) this.tnRuns.set(o, rs);
      }
  }

  /** A phase's packed forward products, grouped by their vector. */
  productStages(inPhase: readonly Node[]): void {
    const { inp } = this;
    const ntByV = new Map<Node, Node[]>();
    for (const n of inPhase) if (this.graph.kind(n) === "nt") ntByV.set(n.args[1]!, [...(ntByV.get(n.args[1]!) ?? []), n]);
    for (const [v, ns] of ntByV) {
      for (const run of packRuns(ns.map((n) => [n.args[0]!, n] as const), inp.layout)) {
        const pre = inp.runPlaces?.get(runKey(run.ws, run.gs));
        const req = run.gs.length === 1 && !pre ? (inp.required.get(run.gs[0]!) ?? []).filter((s) => !s.add) : [];
        // a shared vector (a parameter's product with a parameter) is one row, not one per example
        const R = v.type.batched ? inp.rows : ONE;
        const out = pre ?? (req.length === 1 ? req[0]!.place : { buf: this.newScratch(mulE(v.type.batched ? this.maxRows : ONE, run.M)), start: ZERO, stride: v.type.batched ? run.M : ZERO });
        run.gs.forEach((n, i) => this.place.set(n, shift(out, run.offs[i]!)));
        this.stages.push({ kind: "gemm", form: "NT", rows: R, M: run.M, K: run.K, a: this.operandPlace(v), b: inp.paramPlace(run.ws[0]!), c: out, accumulate: false, note: `${run.ws.map((w) => w.attrs.name).join(", ")} times ${inp.names.get(v) ?? v.attrs.name ?? "a vector"}` });
        for (const n of run.gs) this.copies(n, this.requiredOf(n).filter((s) => !(req.length === 1 && s === req[0])));
      }
    }
  }

  /** A node's whole-vector stage: a gemm sum, an outer product, a product by heads, or an op. */
  wholeVectorStage(n: Node): void {
    switch (this.graph.kind(n)) {
      case "gsum": return this.gemmSum(n);
      case "tn": return this.outerProduct(n);
      case "heads": return this.headProduct(n);
      case "op": return this.op(n);
      default: return;
    }
  }

  private gemmSum(n: Node): void {
    const { inp } = this;
    const req = this.requiredOf(n).filter((s) => !s.add);
    const out = req.length ? req[0]!.place : this.scratchPlace(n);
    this.place.set(n, out);
    const rows = n.type.batched ? inp.rows : ONE;
    this.gsumRuns.get(n)!.forEach(({ run, place: gp }, i) =>
      this.stages.push({ kind: "gemm", form: "NN", rows, M: run.M, K: run.K, a: gp, b: inp.paramPlace(run.ws[0]!), c: out, accumulate: i > 0, note: inp.pass === "forward" ? `${run.ws.map((w) => `${w.attrs.name}'`).join(", ")} times ${inp.names.get(run.gs[0]!) ?? run.gs[0]!.attrs.name ?? "a vector"}` : `d(${inp.names.get(n) ?? "…"}) from ${run.ws.map((w) => w.attrs.name).join(", ")}` }));
    // then the block-diagonal terms, one NN product per head, adding into the same place
    let first = this.gsumRuns.get(n)!.length === 0;
    const g = this.graph.gsum.get(n)!;
    for (const m of g.mts.filter((t) => t.op === "bdmatvecT")) {
      const note = inp.pass === "forward" ? `${m.args[0]!.attrs.name}' times ${inp.names.get(m.args[1]!) ?? m.args[1]!.attrs.name ?? "a vector"}` : `d(${inp.names.get(n) ?? "…"}) from ${m.args[0]!.attrs.name}`;
      this.stages.push(...headGemms(m, [inp.paramPlace(m.args[0]!), this.operandPlace(m.args[1]!)], { place: out, add: !first }, rows, note));
      first = false;
    }
    if (g.rest) this.stages.push({ kind: "copy", from: this.operandOf(g.rest), space: spaceOf(n), to: [{ place: out, add: true }] });
    for (const s of this.requiredOf(n)) if (s.place !== out) this.stages.push({ kind: "copy", from: { kind: "load", place: out, type: n.type }, space: spaceOf(n), to: [s] });
  }

  private outerProduct(n: Node): void {
    const { inp } = this;
    const rs = this.tnRuns.get(n);
    if (rs) {
      const ws = this.paramsOfOuter.get(n)!;
      // emitted once per run, by its first member
      for (const { run, place: gp } of rs) {
        if (!ws.includes(run.ws[0]!)) continue;
        this.stages.push({ kind: "gemm", form: "TN", rows: inp.rows, M: run.M, K: run.K, a: gp, b: this.operandPlace(n.args[1]!), c: { ...inp.paramPlace(run.ws[0]!), buf: "dp" }, accumulate: true, note: `d${run.ws.map((w) => w.attrs.name).join(", d")}` });
      }
      // the products above added n into the gradient of each of its parameters; other places get a copy
      const done = ws.map((w) => inp.paramPlace(w).start);
      this.copies(n, this.requiredOf(n).filter((s) => !(s.add && s.place.buf === "dp" && done.some((d) => d.equals(s.place.start)))));
      this.place.set(n, { buf: "dp", start: inp.paramPlace(ws[0]!).start, stride: ZERO });
    } else {
      const out = this.scratchPlace(n);
      this.place.set(n, out);
      // a sum over the batch only where an operand varies with the example
      const R = n.args[0]!.type.batched || n.args[1]!.type.batched ? inp.rows : ONE;
      this.stages.push({ kind: "gemm", form: "TN", rows: R, M: dimExpr(n.type.shape[0]!), K: dimExpr(n.type.shape[1]!), a: this.operandPlace(n.args[0]!), b: this.operandPlace(n.args[1]!), c: out, accumulate: false, note: "outer product" });
      this.copies(n, this.requiredOf(n));
    }
  }

  /** Where a node's value goes: straight to its one place, unless that place only accumulates and a later stage reads it. */
  private target(n: Node): { out: Store; direct: boolean; req: Store[] } {
    const req = this.requiredOf(n);
    const direct = req.length === 1 && !(req[0]!.add && this.graph.consumers.has(n)) ? req[0]! : undefined;
    const out: Store = direct ?? { place: this.scratchPlace(n), add: false };
    if (!direct || !direct.add) this.place.set(n, out.place);
    return { out, direct: direct !== undefined, req };
  }

  private headProduct(n: Node): void {
    const { inp } = this;
    const { out, direct, req } = this.target(n);
    // a constant operand (a product with 0 after folding) is written out first: a GEMM reads buffers
    const operands = n.args.map((x): Place => {
      if (!isInline(x)) return this.operandPlace(x);
      const p = this.scratchPlace(x);
      this.stages.push({ kind: "copy", from: this.operandOf(x), space: spaceOf(x), to: [{ place: p, add: false }] });
      return p;
    }) as [Place, Place];
    const note = n.op === "bdouter" ? `d${(inp.gradOf.get(n) ?? []).map((w) => w.attrs.name).join(", d") || "(a block-diagonal matrix)"}` : inp.pass === "backward" && n.op === "bdmatvecT" ? `d(${inp.names.get(n) ?? "…"}) from ${n.args[0]!.attrs.name ?? "a matrix"}` : `${n.args[0]!.attrs.name ?? "a matrix"}${n.op === "bdmatvecT" ? "'" : ""} times ${inp.names.get(n.args[1]!) ?? n.args[1]!.attrs.name ?? "a vector"}`;
    this.stages.push(...headGemms(n, operands, out, inp.rows, note));
    if (!direct) this.copies(n, req);
  }

  private op(n: Node): void {
    const { out, direct, req } = this.target(n);
    this.stages.push({ kind: "op", node: n, args: n.args.map((a) => this.operandOf(a)), out, note: this.inp.comments.get(n) ?? "" });
    if (!direct) this.copies(n, req);
  }

  /** A phase's fused elementwise loops, one per iteration space, smaller spaces first. */
  elementwiseLoops(inPhase: readonly Node[]): void {
    const { inp } = this;
    const { consumers } = this.graph;
    const spaces = new Map<string, { space: Space; members: Node[] }>();
    for (const n of inPhase.filter((x) => this.graph.kind(x) === "ew")) {
      const space = spaceOf(n);
      const key = `${space.batched ? 1 : 0}|${space.n}`;
      spaces.set(key, { space, members: [...(spaces.get(key)?.members ?? []), n] });
    }
    for (const key of [...spaces.keys()].sort((a, b) => rank(spaces.get(a)!.space) - rank(spaces.get(b)!.space) || (a < b ? -1 : 1))) {
      const { members } = spaces.get(key)!;
      const inLoop = new Set(members);
      const items: LoopItem[] = [];
      for (const n of members) {
        const outside = (consumers.get(n) ?? []).some((c) => !inLoop.has(c)) || inp.roots.includes(n);
        const stores = this.requiredOf(n);
        const own = outside && !stores.some((s) => !s.add) ? this.scratchPlace(n) : undefined;
        const allStores = own ? [{ place: own, add: false }, ...stores] : stores;
        const readable = allStores.find((s) => !s.add);
        if (readable) this.place.set(n, readable.place);
        const uses = (consumers.get(n) ?? []).filter((c) => inLoop.has(c)).length;
        const named = inp.names.get(n);
        const bind = allStores.length > 0 || uses > 1 || named !== undefined;
        items.push({ node: n, local: bind ? (named ?? inp.temp(n)) : undefined, value: { kind: "node", node: n, args: n.args.map((a) => (inLoop.has(a) ? { kind: "local", name: `#${a.id}` } : this.operandOf(a))) }, stores: allStores, comment: inp.comments.get(n) });
      }
      this.stages.push({ kind: "loop", space: spaceOf(members[0]!), items });
    }
  }

  /**
   * Roots that are inputs or constants still go where they are required (dh = dh', a zero
   * gradient), first: they read only what the program is given, and a product may read the place
   * they fill (dy is the upstream of an output and also the tape its weight gradient reads).
   */
  rootCopies(): Stage[] {
    const first: Stage[] = [];
    for (const r of new Set(this.inp.roots))
      if (this.inp.given.has(r) || isInline(r))
        for (const s of this.inp.required.get(r) ?? []) if (!(s.add && r.op === "const" && r.attrs.value === 0)) first.push({ kind: "copy", from: this.operandOf(r), space: spaceOf(r), to: [s] });
    return first;
  }
}

/** The order of a phase's loops: unbatched before batched, and in each a scalar's before a vector's. */
const rank = (space: Space): number => (space.batched ? 2 : 0) + (space.n.isOne ? 0 : 1);

/**
 * Copies of one value, one after another, as one copy to all their places: it is read once and
 * stored to each. Not when a place is in the buffer the value is read from (a store could change
 * what a later copy reads).
 */
function mergeCopies(stages: readonly Stage[]): Stage[] {
  const out: Stage[] = [];
  const key = (o: Operand) => (o.kind === "load" ? `load|${o.place.buf}|${o.place.start}|${o.place.stride}` : o.kind === "node" ? `node|${o.node.id}` : null);
  for (const st of stages) {
    const last = out[out.length - 1];
    if (st.kind === "copy" && last?.kind === "copy" && key(st.from) !== null && key(st.from) === key(last.from)
      && st.space.batched === last.space.batched && st.space.n.equals(last.space.n)
      && (st.from.kind !== "load" || [...last.to, ...st.to].every((s) => s.place.buf !== (st.from as { place: Place }).place.buf))) {
      out[out.length - 1] = { ...last, to: [...last.to, ...st.to] };
    } else out.push(st);
  }
  return out;
}

export const spaceOf = (n: Node): Space => ({ batched: n.type.batched, n: numelExpr(n.type) });

/** Replace `#id` local references with the bound names, and inline unbound single-use values. */
function resolveLocals(stages: Stage[]): Stage[] {
  return stages.map((st) => {
    if (st.kind !== "loop") return st;
    const byId = new Map(st.items.map((it) => [it.node.id, it]));
    const fix = (o: Operand): Operand => {
      if (o.kind === "local" && o.name.startsWith("#")) {
        const it = byId.get(Number(o.name.slice(1)))!;
        return it.local !== undefined ? { kind: "local", name: it.local } : fix(it.value);
      }
      if (o.kind === "node") return { ...o, args: o.args.map(fix) };
      return o;
    };
    return { ...st, items: st.items.map((it) => ({ ...it, value: fix(it.value) })).filter((it) => it.local !== undefined || it.stores.length > 0) };
  });
}


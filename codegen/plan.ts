// The kernel plan: which values live where, and the six programs of a cell's kernels.
import type { Cell } from "../src/cell.ts";
import type { BackwardStep } from "../src/backward.ts";
import { type Node, topo } from "../src/ir.ts";
import { add } from "../src/ops.ts";
import { dimValue } from "../src/dims.ts";
import { type Layout, paramLayout } from "./layout.ts";
import { Namer, sizeIdent } from "./names.ts";
import { Ix, ONE, ZERO } from "./ix.ts";
import {
  type BufferDecl, type Expr, type KernelPlan, type Operand, type Place, type Program, type Stage, type Store,
  addTerms, makeAllocator, numelExpr, packRuns, runKey, schedule,
} from "./schedule.ts";

const isLeaf = (n: Node) => n.op === "input" || n.op === "const" || n.op === "size";
const isParam = (n: Node) => n.op === "input" && n.attrs.role === "param";

/** Leaf roles each node depends on. */
function roles(roots: readonly Node[]): Map<Node, Set<string>> {
  const r = new Map<Node, Set<string>>();
  for (const n of topo(roots)) {
    const s = new Set<string>();
    if (n.op === "input") s.add(n.attrs.role!);
    for (const a of n.args) for (const x of r.get(a)!) s.add(x);
    r.set(n, s);
  }
  return r;
}

/**
 * The kernel plan of a cell, in three phases: the names (one namer hands out every identifier, in
 * an order that makes the text deterministic), the forward's programs and where its values live,
 * then the backward's.
 */
export function buildPlan(cell: Cell, bw: BackwardStep): FullPlan {
  const ctx = namesOf(cell, bw);
  const fwd = forwardPrograms(ctx);
  const bwd = backwardPrograms(ctx, fwd);
  const { layout, buffers, alloc, names, namer, vars } = ctx;
  return {
    cell, bw, layout, buffers: [...buffers, ...alloc.decls()], fwdSetup: fwd.fwdSetup, prologue: fwd.prologue, fwdStep: fwd.fwdStep,
    bwdSetup: bwd.bwdSetup, bwdStep: bwd.bwdStep, epilogue: bwd.epilogue, names, deferredInputs: bwd.deferredInputs,
    vars: { ...vars, ...bwd.vars },
    namer,
  } as FullPlan;
}

const vecN = (n: Node) => numelExpr(n.type);
/** Add a store to a node's list of places it must be written to. */
const req = (m: Map<Node, Store[]>, n: Node, s: Store) => m.set(n, [...(m.get(n) ?? []), s]);

/** What the phases share: the cell, its layout, the one namer and the names it gave, the buffers declared so far. */
interface PlanContext {
  readonly cell: Cell;
  readonly bw: BackwardStep;
  readonly layout: Layout;
  readonly namer: Namer;
  readonly alloc: ReturnType<typeof makeAllocator>;
  readonly buffers: BufferDecl[];
  /** Readable names of values (the equations', the derivation's) and the comment each carries. */
  readonly names: Map<Node, string>;
  readonly comments: Map<Node, string>;
  /** A name for an unnamed value, handed out when first asked for. */
  readonly temp: (n: Node) => string;
  /** A buffer the kernel allocates once, named after what it holds. */
  readonly decl: (want: string, size: Expr, role: BufferDecl["role"], values?: readonly Node[]) => string;
  readonly paramPlace: (w: Node) => Place;
  /** The kernel's variables the forward needs (the backward adds its own). */
  readonly vars: Pick<PlanVars, "paramOff" | "inputVar" | "stateVar" | "stateOff" | "initVar" | "dInitVar" | "outVar">;
}

/** The first phase: every name the forward needs, from one namer, in a fixed order. */
function namesOf(cell: Cell, bw: BackwardStep): PlanContext {
  const layout = paramLayout(cell);
  const buffers: BufferDecl[] = [];
  // every identifier below comes from one namer; sizes are spelled by sizeIdent everywhere
  const namer = new Namer();
  namer.reserve(...cell.sizes.map(sizeIdent));
  const alloc = makeAllocator((want) => namer.fresh(want));
  const paramOff = new Map<Node, string>();
  for (const p of layout.order) paramOff.set(p.node, namer.fresh(`o_${p.name}`));
  const paramPlace = (w: Node): Place => ({ buf: "p", start: Ix.var(paramOff.get(w)!), stride: ZERO });

  // readable local names for named values, forward and backward
  const names = new Map<Node, string>();
  const comments = new Map<Node, string>();
  for (const eq of cell.equations) if (!names.has(eq.node) && !isLeaf(eq.node)) { names.set(eq.node, namer.fresh(eq.lhs)); comments.set(eq.node, `${eq.text}`); }
  for (const [n, nm] of bw.names) if (!names.has(n)) names.set(n, namer.fresh(nm));
  for (const [n, eqs] of bw.origin) if (eqs.length) comments.set(n, eqs.length === 1 ? `grad of: ${eqs[0]!.text}` : `grad of: ${eqs.map((e) => e.lhs).join(", ")}`);

  const temps = new Map<Node, string>();
  const temp = (n: Node): string => {
    let t = temps.get(n);
    if (!t) temps.set(n, (t = namer.fresh(`t${temps.size + 1}`)));
    return t;
  };
  const decl = (want: string, size: Expr, role: BufferDecl["role"], values?: readonly Node[]) => {
    const name = namer.fresh(want);
    buffers.push({ name, size, role, ...(values ? { values } : {}) });
    return name;
  };
  const inputVar = new Map(cell.inputs.map((x) => [x, namer.fresh(x.attrs.name!)]));
  const stateVar = new Map(cell.states.map((s) => [s, namer.fresh(`${s.attrs.name}Prev`)]));
  const stateOff = new Map(cell.states.map((s) => [s, namer.fresh(`${s.attrs.name}PrevAt`)]));
  const initVar = new Map(cell.states.map((s) => [s, namer.fresh(`${s.attrs.name}Prev0`)]));
  const dInitVar = new Map(cell.states.map((s) => [s, namer.fresh(`d${s.attrs.name}Prev0`)]));
  const outVar = new Map<string, string>();
  cell.states.forEach((s) => outVar.set(s.attrs.name!, namer.fresh(`${s.attrs.name}Out`)));
  cell.outputs.forEach((o) => outVar.set(o.name, namer.fresh(`${o.name}Out`)));
  return {
    cell, bw, layout, namer, alloc, buffers, names, comments, temp, decl, paramPlace,
    vars: { paramOff, inputVar, stateVar, stateOff, initVar, dInitVar, outVar },
  };
}

/** The forward's programs, and where the backward finds what they computed. */
interface ForwardPlan {
  readonly fwdSetup: Program;
  readonly prologue: Program;
  readonly fwdStep: Program;
  readonly paramsGiven: ReadonlyMap<Node, Place>;
  /** Values of parameters alone, computed once per call (the backward's setup adds to it). */
  readonly setupPlace: Map<Node, Place>;
  /** The inputs of all steps, from row 0. */
  readonly inputsFull: ReadonlyMap<Node, Place>;
  /** What a step is given: parameters, setup values, its input products, inputs, states. */
  readonly stepGiven: ReadonlyMap<Node, Place>;
  /** Where the backward finds each saved value at step t. */
  readonly savedPlace: ReadonlyMap<Node, Place>;
}

/** The second phase: the forward's setup, prologue (products with the inputs) and step, and the places of what it saves. */
function forwardPrograms(ctx: PlanContext): ForwardPlan {
  const { cell, bw, layout, alloc, names, comments, temp, decl, paramPlace } = ctx;
  const { inputVar, stateVar, stateOff, outVar } = ctx.vars;
  const fwdRoots = [...cell.next, ...cell.outputs.map((o) => o.node)];
  const fr = roles(fwdRoots);
  const paramOnly = (n: Node) => !isLeaf(n) && [...fr.get(n)!].every((r) => r === "param");
  const stateIndep = (n: Node) => !fr.get(n)!.has("state") && fr.get(n)!.has("input");

  // setup: values of parameters alone, consumed by per-example work (or saved)
  const fwdNodes = topo(fwdRoots);
  const fwdNodeSet = new Set(fwdNodes);
  const users = new Map<Node, Node[]>();
  for (const n of fwdNodes) for (const a of n.args) users.set(a, [...(users.get(a) ?? []), n]);
  const savedSet = new Set(bw.saved);
  const setupRoots = fwdNodes.filter((n) => paramOnly(n) && ((users.get(n) ?? []).some((u) => !paramOnly(u)) || savedSet.has(n) || fwdRoots.includes(n)));
  const setupPlace = new Map<Node, Place>();
  for (const n of setupRoots) setupPlace.set(n, { buf: decl(`u_${names.get(n) ?? n.op}`, vecN(n), "setup"), start: ZERO, stride: ZERO });
  const paramsGiven = new Map<Node, Place>(cell.params.map((p) => [p.node, paramPlace(p.node)]));
  const fwdSetup = schedule({
    name: "setup", pass: "forward", rows: ONE, roots: setupRoots, given: paramsGiven,
    required: new Map(setupRoots.map((n) => [n, [{ place: setupPlace.get(n)!, add: false }]])),
    layout, paramPlace, gradOf: new Map(), names, temp, comments, alloc,
  });

  // prologue: products of parameter matrices with values that do not depend on the state, all steps at once
  const hoisted = fwdNodes.filter((n) => n.op === "matvec" && isParam(n.args[0]!) && (stateIndep(n.args[1]!) || (n.args[1]!.op === "input" && n.args[1]!.attrs.role === "input")));
  const prologueRuns = new Map<string, Place>(); // full T×B places
  const stepRunPlace = new Map<Node, Place>(); // per-step place of each hoisted product
  const byV = new Map<Node, Node[]>();
  for (const n of hoisted) byV.set(n.args[1]!, [...(byV.get(n.args[1]!) ?? []), n]);
  for (const [, ns] of byV)
    for (const run of packRuns(ns.map((n) => [n.args[0]!, n] as const), layout)) {
      // one segment's steps (all T unless checkpointing), step t's in slot t % seg
      const buf = decl(`xp${prologueRuns.size}`, Ix.mul(Ix.var("seg"), Ix.var("B"), run.M), "prologue", run.gs);
      prologueRuns.set(runKey(run.ws, run.gs), { buf, start: ZERO, stride: run.M });
      run.gs.forEach((n, i) => stepRunPlace.set(n, { buf, start: Ix.add(Ix.mul(Ix.var("slot"), Ix.var("B"), run.M), run.offs[i]!), stride: run.M }));
    }
  const inputsFull = new Map<Node, Place>(cell.inputs.map((x) => [x, { buf: inputVar.get(x)!, start: ZERO, stride: vecN(x) }]));
  // the prologue does the steps s0 … s0 + steps - 1 of a segment at once
  const inputsFrom = new Map<Node, Place>(cell.inputs.map((x) => [x, { buf: inputVar.get(x)!, start: Ix.mul(Ix.var("s0"), Ix.var("B"), vecN(x)), stride: vecN(x) }]));
  const prologue = schedule({
    name: "prologue", pass: "forward", rows: Ix.mul(Ix.var("steps"), Ix.var("B")), maxRows: Ix.mul(Ix.var("seg"), Ix.var("B")), roots: hoisted, given: new Map([...paramsGiven, ...inputsFrom, ...setupPlace]),
    required: new Map(), runPlaces: prologueRuns, layout, paramPlace, gradOf: new Map(), names, temp, comments, alloc,
  });

  // the step: tape places for saved values
  const stepGiven = new Map<Node, Place>([...paramsGiven, ...setupPlace, ...stepRunPlace]);
  cell.inputs.forEach((x) => stepGiven.set(x, { buf: inputVar.get(x)!, start: Ix.mul(Ix.var("t"), Ix.var("B"), vecN(x)), stride: vecN(x) }));
  cell.states.forEach((s) => stepGiven.set(s, { buf: stateVar.get(s)!, start: Ix.var(stateOff.get(s)!), stride: vecN(s) }));
  const outAt = (name: string, n: Node): Place => ({ buf: outVar.get(name)!, start: Ix.mul(Ix.var("t"), Ix.var("B"), vecN(n)), stride: vecN(n) });
  const savedPlace = new Map<Node, Place>(); // where the backward finds each saved value at step t
  const fwdRequired = new Map<Node, Store[]>();
  // the backward finds a new state or an output where the forward wrote it, unless it is a value the
  // step is given anyway (h' = h: the new state is the old one, which the backward reads as such)
  const keep = (n: Node, p: Place) => { if (!savedPlace.has(n) && !stepGiven.has(n)) savedPlace.set(n, p); };
  cell.states.forEach((s, i) => { const p = outAt(s.attrs.name!, cell.next[i]!); req(fwdRequired, cell.next[i]!, { place: p, add: false }); keep(cell.next[i]!, p); });
  cell.outputs.forEach((o) => { const p = outAt(o.name, o.node); req(fwdRequired, o.node, { place: p, add: false }); keep(o.node, p); });
  for (const n of bw.saved) {
    if (savedPlace.has(n)) continue;
    const known = stepGiven.get(n);
    if (known) { savedPlace.set(n, known); continue; }
    // the tape of a value is named after it: `tape_r` holds r, `tape_t1` the unnamed t1
    // step t's values are in slot t % seg: all T steps have a slot unless the kernel checkpoints
    // (KernelOptions.checkpoint), and then the backward recomputes a segment's before it reads them
    const buf = decl(`tape_${names.get(n) ?? temp(n)}`, Ix.mul(Ix.var("seg"), Ix.var("B"), vecN(n)), "saved", [n]);
    const p: Place = { buf, start: Ix.mul(Ix.var("slot"), Ix.var("B"), vecN(n)), stride: vecN(n) };
    savedPlace.set(n, p);
    req(fwdRequired, n, { place: p, add: false });
  }
  const fwdStep = schedule({
    // equations first, in the order written, so the loop reads like the cell
    name: "forward step", pass: "forward", rows: Ix.var("B"), roots: [...cell.equations.map((e) => e.node).filter((n) => fwdNodeSet.has(n)), ...fwdRoots, ...bw.saved.filter((n) => fwdRequired.has(n))], given: stepGiven,
    required: fwdRequired, layout, paramPlace, gradOf: new Map(), names, temp, comments, alloc,
  });
  return { fwdSetup, prologue, fwdStep, paramsGiven, setupPlace, inputsFull, stepGiven, savedPlace };
}

/**
 * What the backward leaves to the epilogue, one product over all steps each: the gradient of a
 * matrix times an input (dW = Σ g xᵀ), and an input's gradient when it is only such products (dx =
 * Σ Wᵀ g). Their g's are kept for every step (the backward's tapes).
 */
function epilogueWork(cell: Cell, bw: BackwardStep) {
  const deferredOuter = cell.params.map((p, i) => [p.node, bw.dParams[i]!] as const)
    .filter(([w, g]) => g.op === "outer" && w.type.shape.length === 2 && g.args[1]!.op === "input" && g.args[1]!.attrs.role === "input" && !isLeaf(g.args[0]!));
  const deferredInputs = new Set<Node>();
  const dxPairs: (readonly [Node, Node])[] = [];
  cell.inputs.forEach((x, i) => {
    const terms = addTerms(bw.dInputs[i]!);
    if (terms.length && terms.every((t) => t.op === "matvecT" && isParam(t.args[0]!) && !isLeaf(t.args[1]!))) {
      deferredInputs.add(x);
      for (const t of terms) dxPairs.push([t.args[0]!, t.args[1]!]);
    }
  });
  return { deferredOuter, deferredInputs, dxPairs };
}

/**
 * The first loops of the backward step: the seed of each new state's gradient, its upstream
 * gradient at step t plus what flows back from step t + 1 (loops like the others, so a backend
 * runs them where it runs them).
 */
function seedLoops(cell: Cell, bw: BackwardStep, upVar: ReadonlyMap<string, string>, carryVar: ReadonlyMap<Node, string>, bwdGiven: ReadonlyMap<Node, Place>): Stage[] {
  return cell.states.map((s, i): Stage => {
    const sum = add(s, s); // the op of the loop's one item; its operands are the two loads
    const load = (buf: string, start: Expr): Operand => ({ kind: "load", place: { buf, start, stride: vecN(s) }, type: s.type });
    return {
      kind: "loop", space: { batched: true, n: vecN(s) },
      items: [{
        node: sum, local: undefined, comment: `the gradient of ${s.attrs.name}' at step t: from upstream, and from step t + 1`,
        value: { kind: "node", node: sum, args: [load(upVar.get(s.attrs.name!)!, Ix.mul(Ix.var("t"), Ix.var("B"), vecN(s))), load(carryVar.get(s)!, ZERO)] },
        stores: [{ place: bwdGiven.get(bw.seeds[i]!)!, add: false }],
      }],
    };
  });
}

/** The third phase: the backward's setup, its step (seeds first) and the epilogue (the products over all steps), and its variables. */
function backwardPrograms(ctx: PlanContext, fwd: ForwardPlan) {
  const { cell, bw, layout, namer, alloc, names, comments, temp, decl, paramPlace } = ctx;
  const { paramsGiven, setupPlace, inputsFull, stepGiven, savedPlace } = fwd;
  const gradOfAll = new Map<Node, Node[]>();
  cell.params.forEach((p, i) => { const g = bw.dParams[i]!; gradOfAll.set(g, [...(gradOfAll.get(g) ?? []), p.node]); });

  const { deferredOuter, deferredInputs, dxPairs } = epilogueWork(cell, bw);
  const stepRunPlaces = new Map<string, Place>();
  const epiRunPlaces = new Map<string, Place>();
  const bwdRequired = new Map<Node, Store[]>();
  const epiGiven = new Map<Node, Place>([...paramsGiven, ...inputsFull, ...setupPlace]);
  const gTapes: Node[] = [];
  // runs for the outer products and the dx sums separately (they may pack differently), sharing tapes
  const tapeOf = new Map<string, Place>();
  const registerRuns = (pairs: readonly (readonly [Node, Node])[]) => {
    for (const run of packRuns(pairs, layout)) {
      const key = runKey(run.ws, run.gs);
      if (tapeOf.has(key)) continue;
      const buf = decl(`gx${tapeOf.size}`, Ix.mul(Ix.var("T"), Ix.var("B"), run.M), "tape");
      tapeOf.set(key, { buf, start: ZERO, stride: run.M });
      stepRunPlaces.set(key, { buf, start: Ix.mul(Ix.var("t"), Ix.var("B"), run.M), stride: run.M });
      epiRunPlaces.set(key, { buf, start: ZERO, stride: run.M });
      run.gs.forEach((g, i) => {
        req(bwdRequired, g, { place: { buf, start: Ix.add(Ix.mul(Ix.var("t"), Ix.var("B"), run.M), run.offs[i]!), stride: run.M }, add: false });
        if (!epiGiven.has(g)) epiGiven.set(g, { buf, start: run.offs[i]!, stride: run.M });
        gTapes.push(g);
      });
    }
  };
  registerRuns(deferredOuter.map(([w, o]) => [w, o.args[0]!] as const));
  registerRuns(dxPairs);

  const seedVar = new Map<Node, string>();
  const carryVar = new Map<Node, string>();
  const bwdGiven = new Map<Node, Place>([...stepGiven]);
  for (const [n, p] of savedPlace) bwdGiven.set(n, p);
  cell.states.forEach((s, i) => {
    const seed = bw.seeds[i]!;
    const v = decl(`seed_${s.attrs.name}`, Ix.mul(Ix.var("B"), vecN(s)), "seed");
    seedVar.set(seed, v);
    bwdGiven.set(seed, { buf: v, start: ZERO, stride: vecN(s) });
    const c = decl(`carry_${s.attrs.name}`, Ix.mul(Ix.var("B"), vecN(s)), "carry");
    carryVar.set(s, c);
    req(bwdRequired, bw.dStates[i]!, { place: { buf: c, start: ZERO, stride: vecN(s) }, add: false });
  });
  const upVar = new Map<string, string>();
  cell.states.forEach((s) => upVar.set(s.attrs.name!, namer.fresh(`d${s.attrs.name}Up`)));
  cell.outputs.forEach((o, i) => {
    upVar.set(o.name, namer.fresh(`d${o.name}Up`));
    const seed = bw.seeds[cell.states.length + i]!;
    bwdGiven.set(seed, { buf: upVar.get(o.name)!, start: Ix.mul(Ix.var("t"), Ix.var("B"), vecN(o.node)), stride: vecN(o.node) });
  });
  const dxVar = new Map(cell.inputs.map((x) => [x, namer.fresh(`d${x.attrs.name}`)]));
  cell.inputs.forEach((x, i) => {
    if (!deferredInputs.has(x)) req(bwdRequired, bw.dInputs[i]!, { place: { buf: dxVar.get(x)!, start: Ix.mul(Ix.var("t"), Ix.var("B"), vecN(x)), stride: vecN(x) }, add: false });
  });
  // a bias gradient sumb(g) whose g is kept for every step anyway (in a tape above) is one sum
  // over all T·B rows in the epilogue, not a sum per step
  const deferredSums = [...gradOfAll.keys()].filter((g) => g.op === "sumb" && gTapes.includes(g.args[0]!));
  const deferredGrads = new Set<Node>([...deferredOuter.map(([, o]) => o), ...deferredSums]);
  const stepGradOf = new Map<Node, Node[]>();
  for (const [g, ws] of gradOfAll) {
    if (deferredGrads.has(g)) continue;
    stepGradOf.set(g, ws);
    for (const w of ws) req(bwdRequired, g, { place: { ...paramPlace(w), buf: "dp" }, add: true });
  }
  // backward setup: parameter-only values the backward needs that the forward did not keep
  const bwdRoots = [...bw.dStates, ...[...stepGradOf.keys()], ...cell.inputs.filter((x) => !deferredInputs.has(x)).map((x) => bw.dInputs[cell.inputs.indexOf(x)]!), ...gTapes];
  const br = roles(bwdRoots);
  const bwdNodes = topo(bwdRoots, (n) => bwdGiven.has(n));
  const bUsers = new Map<Node, Node[]>();
  for (const n of bwdNodes) for (const a of n.args) bUsers.set(a, [...(bUsers.get(a) ?? []), n]);
  const bParamOnly = (n: Node) => !isLeaf(n) && !bwdGiven.has(n) && [...br.get(n)!].every((r) => r === "param");
  const bSetupRoots = bwdNodes.filter((n) => bParamOnly(n) && (bUsers.get(n) ?? []).some((u) => !bParamOnly(u)));
  // what the backward setup reads: the parameters and the forward's setup values (not its own roots)
  const bSetupGiven = new Map([...paramsGiven, ...setupPlace]);
  for (const n of bSetupRoots) { const p: Place = { buf: decl(`u_${names.get(n) ?? n.op}`, vecN(n), "setup"), start: ZERO, stride: ZERO }; setupPlace.set(n, p); bwdGiven.set(n, p); }
  const bwdSetup = schedule({
    name: "backward setup", pass: "backward", rows: ONE, roots: bSetupRoots, given: bSetupGiven,
    required: new Map(bSetupRoots.map((n) => [n, [{ place: setupPlace.get(n)!, add: false }]])),
    layout, paramPlace, gradOf: new Map(), names, temp, comments, alloc,
  });
  const bwdSchedule = schedule({
    name: "backward step", pass: "backward", rows: Ix.var("B"), roots: bwdRoots, given: bwdGiven, required: bwdRequired,
    runPlaces: stepRunPlaces, layout, paramPlace, gradOf: stepGradOf, names, temp, comments, alloc,
  });
  const bwdStep: Program = { ...bwdSchedule, stages: [...seedLoops(cell, bw, upVar, carryVar, bwdGiven), ...bwdSchedule.stages] };
  // epilogue: all steps at once
  const epiRequired = new Map<Node, Store[]>();
  const epiGradOf = new Map<Node, Node[]>();
  for (const [w, o] of deferredOuter) { req(epiRequired, o, { place: { ...paramPlace(w), buf: "dp" }, add: true }); epiGradOf.set(o, [...(epiGradOf.get(o) ?? []), w]); }
  for (const g of deferredSums) for (const w of gradOfAll.get(g)!) { req(epiRequired, g, { place: { ...paramPlace(w), buf: "dp" }, add: true }); epiGradOf.set(g, [...(epiGradOf.get(g) ?? []), w]); }
  cell.inputs.forEach((x, i) => { if (deferredInputs.has(x)) req(epiRequired, bw.dInputs[i]!, { place: { buf: dxVar.get(x)!, start: ZERO, stride: vecN(x) }, add: false }); });
  const epilogue = schedule({
    name: "epilogue", pass: "backward", rows: Ix.mul(Ix.var("T"), Ix.var("B")), roots: [...epiRequired.keys()], given: epiGiven, required: epiRequired,
    runPlaces: epiRunPlaces, layout, paramPlace, gradOf: epiGradOf, names, temp, comments, alloc,
  });

  return { bwdSetup, bwdStep, epilogue, deferredInputs, vars: { upVar, dxVar, seedVar, carryVar } };
}

/**
 * A kernel's floats per example per step in its buffers of a role: `saved`, what it keeps for its
 * backward (states and outputs are in `out` anyway); `prologue`, its products with the inputs. What
 * checkpointing keeps for one segment of steps instead of all T.
 */
export function floatsPerStep(plan: KernelPlan, role: "saved" | "prologue", sizes: Readonly<Record<string, number>>): number {
  return plan.buffers.filter((b) => b.role === role).reduce((s, b) => s + b.values!.reduce((t, v) => t + v.type.shape.reduce((a, d) => a * dimValue(d, sizes), 1), 0), 0);
}

export interface PlanVars {
  readonly paramOff: ReadonlyMap<Node, string>;
  readonly inputVar: ReadonlyMap<Node, string>;
  readonly stateVar: ReadonlyMap<Node, string>;
  readonly stateOff: ReadonlyMap<Node, string>;
  /** The initial state argument, and its gradient. */
  readonly initVar: ReadonlyMap<Node, string>;
  readonly dInitVar: ReadonlyMap<Node, string>;
  readonly outVar: ReadonlyMap<string, string>;
  readonly upVar: ReadonlyMap<string, string>;
  readonly dxVar: ReadonlyMap<Node, string>;
  readonly seedVar: ReadonlyMap<Node, string>;
  readonly carryVar: ReadonlyMap<Node, string>;
}

/** The plan with its variables, and the namer that gave them out (the emitter asks it for row variables). */
export type FullPlan = KernelPlan & { vars: PlanVars; namer: Namer };
export type { Program };

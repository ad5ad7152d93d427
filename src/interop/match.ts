// Is this cell a library's form? Its compiled IR is walked side by side with the form's, pairing
// nodes: leaves pair by role and type (that pairing is the parameter renaming), other nodes by op
// and attributes. A sum is compared as the set of its terms and a product .* in either order, since
// neither changes the function (`W*x + U*h + b` is the form of `W*x + b + U*h`); nothing else is
// taken as equal. Then the proof: the form's graph rebuilt with the cell's parameter names, and its
// sums and products in the cell's order, is the cell's graph; hash-consing makes that `===`.
import type { Cell, SizeConstraint } from "../cell.ts";
import { compileCell } from "../cell.ts";
import { type Node, topo, typeEq } from "../ir.ts";
import { apply, leaf } from "../ops.ts";
import { printExpr } from "../print.ts";
import { type Form, forms } from "./forms.ts";

export interface Recognition {
  readonly form: Form;
  /** Form parameter name → the cell's parameter name. */
  readonly rename: ReadonlyMap<string, string>;
}

const compiled = new Map<string, Cell>();
/**
 * A form compiled like any cell (once), under a cell's size constraints when it has some (a GRU
 * with D = H is the GRU form with D = H: its input matrices are [H,H] in both).
 */
export function formCell(form: Form, constraints: readonly SizeConstraint[] = []): Cell {
  const texts = constraints.map((c) => c.text);
  const key = [form.id, ...texts].join("\n");
  let c = compiled.get(key);
  if (!c) compiled.set(key, (c = compileCell(texts.length ? { ...form.spec, constraints: texts } : form.spec)));
  return c;
}

interface Pairs {
  readonly fwd: Map<Node, Node>;
  readonly back: Map<Node, Node>;
}
interface Failure {
  readonly a: Node;
  readonly b: Node;
  readonly why?: string;
  /** How far below the state update it was found: the deepest failure is the most precise one to report. */
  readonly depth: number;
}

const terms = (n: Node): Node[] => (n.op === "add" ? [...terms(n.args[0]!), ...terms(n.args[1]!)] : [n]);
const snapshot = (p: Pairs): Pairs => ({ fwd: new Map(p.fwd), back: new Map(p.back) });
const restore = (p: Pairs, s: Pairs) => {
  p.fwd.clear(); s.fwd.forEach((v, k) => p.fwd.set(k, v));
  p.back.clear(); s.back.forEach((v, k) => p.back.set(k, v));
};
const attrText = (n: Node) => JSON.stringify(n.attrs, (_k, v) => (v && typeof v === "object" && "key" in v && "terms" in v ? v.key : v));
const deeper = (x: Failure | null, y: Failure): Failure => (x && x.depth >= y.depth ? x : y);

/**
 * Pair form node `a` with cell node `b` (and everything below them); null when they are the same
 * form. Interchangeable terms of a sum (a gate's input and recurrent biases, which only enter as
 * their sum) pair in the order they are written.
 */
function pairUp(a: Node, b: Node, p: Pairs, depth = 0): Failure | null {
  const had = p.fwd.get(a);
  const fail = (why?: string): Failure => ({ a, b, depth, ...(why ? { why } : {}) });
  if (had) return had === b ? null : fail("the form has one value here and at another place where the cell has two different ones");
  if (p.back.has(b)) return fail("the cell uses one value where the form has two different ones");
  if (!typeEq(a.type, b.type)) return fail("the shapes differ");
  const ok = () => { p.fwd.set(a, b); p.back.set(b, a); return null; };
  if (a.op === "input") return b.op === "input" && b.attrs.role === a.attrs.role ? ok() : fail();
  if (a.op === "const") return b.op === "const" && b.attrs.value === a.attrs.value ? ok() : fail();
  if (a.op !== b.op || attrText(a) !== attrText(b)) return fail();
  if (a.op === "add") {
    const ta = terms(a), tb = terms(b);
    if (ta.length !== tb.length) return fail(`a sum of ${ta.length} terms in the form, of ${tb.length} in the cell`);
    const used = new Array<boolean>(tb.length).fill(false);
    let best: Failure | null = null;
    const place = (i: number): boolean => {
      if (i === ta.length) return true;
      for (let j = 0; j < tb.length; j++) {
        if (used[j]) continue;
        const s = snapshot(p);
        used[j] = true;
        const f = pairUp(ta[i]!, tb[j]!, p, depth + 1);
        if (!f && place(i + 1)) return true;
        if (f) best = deeper(best, f);
        used[j] = false;
        restore(p, s);
      }
      return false;
    };
    // a term that differs deep inside says more than "the terms differ"
    return place(0) ? ok() : best && (best as Failure).depth > depth + 1 ? best : fail("the terms of the sum differ");
  }
  if (a.op === "mul") {
    const s = snapshot(p);
    const straight = pairUp(a.args[0]!, b.args[0]!, p, depth + 1) ?? pairUp(a.args[1]!, b.args[1]!, p, depth + 1);
    if (!straight) return ok();
    restore(p, s);
    const crossed = pairUp(a.args[0]!, b.args[1]!, p, depth + 1) ?? pairUp(a.args[1]!, b.args[0]!, p, depth + 1);
    if (!crossed) return ok();
    restore(p, s);
    return deeper(straight, crossed);
  }
  for (let i = 0; i < a.args.length; i++) {
    const f = pairUp(a.args[i]!, b.args[i]!, p, depth + 1);
    if (f) return f;
  }
  return ok();
}

/** The form's graph with the cell's names, and sums and products in the cell's order. */
function rebuild(a: Node, p: Pairs, memo = new Map<Node, Node>()): Node {
  const done = memo.get(a);
  if (done) return done;
  const b = p.fwd.get(a)!;
  let r: Node;
  if (a.op === "input") r = leaf(b.attrs.name!, a.attrs.role!, a.type);
  else if (a.op === "const") r = a;
  else if (a.op === "add") {
    // the cell's association of the sum, over the form's terms (terms() flattened every add)
    const tree = (n: Node): Node => (n.op === "add" ? apply("add", [tree(n.args[0]!), tree(n.args[1]!)]) : rebuild(p.back.get(n)!, p, memo));
    r = tree(b);
  } else if (a.op === "mul") {
    const args = a.args.map((x) => rebuild(x, p, memo));
    r = p.fwd.get(a.args[0]!) === b.args[0] ? apply("mul", args) : apply("mul", [args[1]!, args[0]!]);
  } else r = apply(a.op, a.args.map((x) => rebuild(x, p, memo)), a.attrs);
  memo.set(a, r);
  return r;
}

/** The form equation that computes `n`, for messages. */
function equationOf(cell: Cell, n: Node): string | undefined {
  for (const eq of cell.equations) if (topo([eq.node], (m) => m !== eq.node && cell.names.has(m)).includes(n)) return `${eq.lhs} = ${eq.text.replace(/^[^=]*=\s*/, "")}`;
  return undefined;
}

/** Every order of 0 … n-1, the identity first. */
const permutations = (n: number): number[][] =>
  n <= 1 ? [[0].slice(0, n)] : permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, n - 1 - i), n - 1, ...p.slice(n - 1 - i)]));

/** The cell as `form`, or why it is not: the first place where the two differ. */
export function matchForm(cell: Cell, form: Form): Recognition | { readonly mismatch: string } {
  if ([...cell.sizes].sort().join() !== "D,H")
    return { mismatch: `${form.title} has sizes D (input) and H (hidden); cell "${cell.name}" has ${cell.sizes.join(", ") || "none"}` };
  const f = formCell(form, cell.constraints);
  const count = (what: string, a: number, b: number) => `${form.title} has ${a} ${what}${a === 1 ? "" : "s"}, cell "${cell.name}" has ${b}`;
  if (f.states.length !== cell.states.length) return { mismatch: count("state", f.states.length, cell.states.length) };
  if (f.inputs.length !== cell.inputs.length) return { mismatch: count("input", f.inputs.length, cell.inputs.length) };
  if (cell.outputs.length) return { mismatch: `${form.title} has no outputs besides its state, cell "${cell.name}" has ${cell.outputs.map((o) => o.name).join(", ")}` };
  if (f.params.length !== cell.params.length)
    return { mismatch: `${form.title} has ${f.params.length} parameters (${f.params.map((p) => p.name).join(", ")}), cell "${cell.name}" has ${cell.params.length}` };
  let first: string | undefined;
  for (const perm of permutations(f.states.length)) {
    const p: Pairs = { fwd: new Map(), back: new Map() };
    let fail: Failure | null = null;
    for (const [i, x] of f.inputs.entries()) fail ??= pairUp(x, cell.inputs[i]!, p);
    for (const [i, s] of f.states.entries()) fail ??= pairUp(s, cell.states[perm[i]!]!, p);
    for (const [i, n] of f.next.entries()) fail ??= pairUp(n, cell.next[perm[i]!]!, p);
    if (!fail) {
      const rename = new Map(f.params.map((q) => [q.name, p.fwd.get(q.node)?.attrs.name ?? ""]));
      // the proof: the renamed form is the cell's graph, node for node
      if (!f.next.every((n, i) => rebuild(n, p) === cell.next[perm[i]!])) throw new Error(`internal: ${form.id} paired with ${cell.name} but the rebuilt graph differs`);
      return { form, rename };
    }
    if (first === undefined) {
      const eq = equationOf(f, fail.a);
      const has = printExpr(fail.b, cell.names, fail.b), want = printExpr(fail.a, f.names, fail.a);
      first = `${form.title}${eq ? `, in ${eq}` : ""}: the form has ${want} where cell "${cell.name}" has ${has}${fail.why ? ` (${fail.why})` : ""}`;
    }
  }
  return { mismatch: first! };
}

/** Every library form the cell is (a PyTorch GRU is also Keras's reset_after GRU, renamed). */
export function recognize(cell: Cell): Recognition[] {
  return forms().map((f) => matchForm(cell, f)).filter((r): r is Recognition => "form" in r);
}

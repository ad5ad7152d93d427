// The equation language: mathjs syntax, one equation a line, as in a paper.
//   z  = sigmoid(Wz*x + Uz*h + bz)
//   h' = (1 - z) .* n + z .* h
// mathjs parses each right-hand side (after `h'` is renamed, since mathjs reads ' as a transpose);
// we walk its tree into IR nodes, keeping every node's source span for error messages.
import { parse, type MathNode } from "mathjs";
import { type Dim, dimAdd, dimConst, dimScale, dimSize } from "./dims.ts";
import { type Node, shapeStr } from "./ir.ts";
import { type OpName, ShapeError, apply, konst } from "./ops.ts";
import { CellError, type Where } from "./errors.ts";

export const NEXT = "__next"; // h' is parsed as h__next

interface MNode {
  type: string;
  name?: string;
  value?: unknown;
  op?: string;
  fn?: { name?: string } | string;
  args?: MathNode[];
  content?: MathNode;
  implicit?: boolean;
}

export interface Equation {
  /** `z` or `h'`. */
  readonly lhs: string;
  readonly name: string;
  readonly primed: boolean;
  /** The whole line as written, and its 1-based number in the equations text. */
  readonly text: string;
  readonly line: number;
  /** 0-based column in `text` where the right-hand side starts. */
  readonly rhsAt: number;
  readonly ast: MathNode;
  /** The names the right-hand side reads (h' read as `h'`). */
  readonly reads: readonly { name: string; primed: boolean; node: MathNode }[];
  /** Source spans of AST nodes, 0-based [start, end) in `text`. */
  readonly spans: ReadonlyMap<MathNode, readonly [number, number]>;
}

export type Locate = (eq: Equation | undefined, node?: MathNode) => Where;

export const IDENT = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Split the equations text into equations; comments start with # or //. */
export function parseEquations(source: string | readonly string[], where: (w: Partial<Where>) => Where): Equation[] {
  const lines = typeof source === "string" ? source.split(/\r?\n/) : source.flatMap((s) => s.split(/\r?\n/));
  const eqs: Equation[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    const text = raw.replace(/\s+$/, "");
    const code = text.replace(/(#|\/\/).*$/, "");
    if (code.trim() === "") return;
    const err = (col: number, width: number, problem: string, hint?: string): never => {
      throw new CellError(where({ equation: text, line, column: col + 1, eqColumn: col + 1, width }), problem, hint);
    };
    const eqAt = code.search(/(?<![<>=!])=(?!=)/);
    if (eqAt < 0) err(0, code.trim().length, "an equation needs the form `name = expression`");
    const lhsRaw = code.slice(0, eqAt);
    const lhs = lhsRaw.trim();
    const lhsCol = lhsRaw.length - lhsRaw.trimStart().length;
    const m = /^([A-Za-z_$][\w$]*)(')?$/.exec(lhs);
    if (!m) err(lhsCol, Math.max(1, lhs.length), `the left-hand side "${lhs}" is not a name (write \`z = …\`, or \`h' = …\` for the next value of a state)`);
    if (!IDENT.test(m![1]!) || m![1]!.includes(NEXT))
      err(lhsCol, lhs.length, `invalid identifier "${m![1]}": names are ASCII letters, digits and _, starting with a letter`);
    const rhsAt = eqAt + 1;
    const rhsText = code.slice(rhsAt);
    if (rhsText.trim() === "") err(rhsAt, 1, "the right-hand side is empty");
    // h' -> h__next, remembering where each character came from
    let rewritten = "";
    const from: number[] = [];
    const reId = /[A-Za-z_$][\w$]*'/y;
    for (let k = 0; k < rhsText.length; ) {
      reId.lastIndex = k;
      const id = (k === 0 || !/[\w$]/.test(rhsText[k - 1]!)) ? reId.exec(rhsText) : null;
      if (id) {
        const name = id[0].slice(0, -1);
        for (let c = 0; c < name.length; c++) { rewritten += name[c]; from.push(rhsAt + k + c); }
        for (let c = 0; c < NEXT.length; c++) { rewritten += NEXT[c]; from.push(rhsAt + k + name.length); }
        k += id[0].length;
      } else {
        rewritten += rhsText[k];
        from.push(rhsAt + k);
        k++;
      }
    }
    from.push(rhsAt + rhsText.length);
    let ast: MathNode;
    try {
      ast = parse(rewritten);
    } catch (e) {
      const msg = (e as Error).message;
      const at = /\(char (\d+)\)/.exec(msg);
      const col = at ? from[Math.min(Number(at[1]) - 1, from.length - 1)]! : rhsAt;
      err(col, 1, `cannot parse: ${msg.replace(/\s*\(char \d+\)/, "")}`);
    }
    const spans = new Map<MathNode, readonly [number, number]>();
    try {
      scanSpans(ast!, rewritten, spans);
    } catch {
      spans.clear(); // unusual formatting: fall back to pointing at the whole right-hand side
    }
    const mapped = new Map<MathNode, readonly [number, number]>();
    for (const [n, [s, e]] of spans) mapped.set(n, [from[s]!, from[Math.max(s, e - 1)]! + 1]);
    const reads: { name: string; primed: boolean; node: MathNode }[] = [];
    ast!.traverse((n) => {
      const s = n as unknown as MNode;
      if (s.type === "SymbolNode") {
        const name = s.name!;
        reads.push(name.endsWith(NEXT) ? { name: name.slice(0, -NEXT.length), primed: true, node: n } : { name, primed: false, node: n });
      }
    });
    // function names are SymbolNodes too in mathjs' traverse; drop those in call position
    const callees = new Set<MathNode>();
    ast!.traverse((n) => {
      const s = n as unknown as MNode & { fn?: MathNode };
      if (s.type === "FunctionNode" && s.fn && typeof s.fn === "object") callees.add(s.fn as MathNode);
    });
    eqs.push({ lhs, name: m![1]!, primed: !!m![2], text, line, rhsAt, ast: ast!, reads: reads.filter((r) => !callees.has(r.node)), spans: mapped });
  });
  return eqs;
}

/** Record each node's [start, end) in `src` by walking the tree in source order. */
function scanSpans(root: MathNode, src: string, out: Map<MathNode, readonly [number, number]>): void {
  let pos = 0;
  const ws = () => { while (pos < src.length && /\s/.test(src[pos]!)) pos++; };
  const expect = (tok: string): number => {
    ws();
    if (!src.startsWith(tok, pos)) throw new Error(`expected ${tok} at ${pos}`);
    const s = pos;
    pos += tok.length;
    return s;
  };
  const visit = (n: MathNode): [number, number] => {
    const m = n as unknown as MNode;
    let s: number;
    switch (m.type) {
      case "SymbolNode": s = expect(m.name!); break;
      case "ConstantNode": {
        ws();
        const num = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(src.slice(pos));
        if (!num) throw new Error("number");
        s = pos;
        pos += num[0].length;
        break;
      }
      case "ParenthesisNode": s = expect("("); visit(m.content!); expect(")"); break;
      case "FunctionNode": {
        const fname = typeof m.fn === "string" ? m.fn : m.fn?.name ?? "";
        s = expect(fname);
        expect("(");
        m.args!.forEach((a, i) => { if (i > 0) expect(","); visit(a); });
        expect(")");
        break;
      }
      case "OperatorNode": {
        const args = m.args!;
        if (args.length === 2) {
          s = visit(args[0]!)[0];
          if (!m.implicit) expect(m.op!);
          visit(args[1]!);
        } else if (m.op === "'") {
          s = visit(args[0]!)[0];
          expect("'");
        } else {
          s = expect(m.op!);
          visit(args[0]!);
        }
        break;
      }
      default: throw new Error(m.type);
    }
    const span: [number, number] = [s, pos];
    out.set(n, span);
    return span;
  };
  visit(root);
  ws();
  if (pos !== src.length) throw new Error("trailing");
}

// ------------------------------------------------------------------------------------- lowering

export interface Scope {
  /** The node a name stands for, or undefined when the name is unknown. */
  lookup(name: string, primed: boolean): Node | undefined;
  readonly sizes: ReadonlySet<string>;
  readonly activations: ReadonlyMap<string, string>;
}

type Fn = (args: Node[], raw: MathNode[], fail: (problem: string, hint?: string) => never, dims: (i: number) => Dim) => Node;

const un = (op: OpName): Fn => (a, _r, fail) => (a.length === 1 ? apply(op, a) : fail(`${op} takes 1 argument, not ${a.length}`));
const bin = (op: OpName): Fn => (a, _r, fail) => (a.length === 2 ? apply(op, a) : fail(`${op} takes 2 arguments, not ${a.length}`));
const vecLen = (v: Node, fail: (p: string) => never): Dim =>
  v.type.shape.length === 1 ? v.type.shape[0]! : fail(`expects a vector, but its argument is ${shapeStr(v.type)}`);
const mean = (v: Node, fail: (p: string) => never) => apply("div", [apply("sum", [v]), apply("size", [], { dim: vecLen(v, fail) })]);

/** The functions of the equation language. Each maps to ops of the table (or to a few of them). */
export const FUNCTIONS: Readonly<Record<string, { doc: string; fn: Fn; dimArgs?: number[] }>> = {
  sigmoid: { doc: "logistic sigmoid 1/(1+e^-x)", fn: un("sigmoid") },
  tanh: { doc: "hyperbolic tangent", fn: un("tanh") },
  relu: { doc: "max(x, 0)", fn: un("relu") },
  exp: { doc: "e^x", fn: un("exp") },
  log: { doc: "natural logarithm", fn: un("log") },
  softplus: { doc: "log(1 + e^x)", fn: un("softplus") },
  abs: { doc: "|x|", fn: un("abs") },
  sqrt: { doc: "square root", fn: un("sqrt") },
  square: { doc: "x^2", fn: un("square") },
  hardSigmoid: { doc: "tfjs and TF<=2.15 Keras: clip(0.2x + 0.5, 0, 1)", fn: un("hardSigmoid") },
  hardSigmoidKeras: { doc: "Keras 3: clip(x/6 + 0.5, 0, 1)", fn: un("hardSigmoidKeras") },
  max: { doc: "elementwise maximum of two values", fn: bin("max") },
  min: { doc: "elementwise minimum of two values", fn: bin("min") },
  clip: { doc: "clip(x, lo, hi) = min(max(x, lo), hi)", fn: (a, _r, fail) =>
    a.length === 3 ? apply("min", [apply("max", [a[0]!, a[1]!]), a[2]!]) : fail(`clip takes 3 arguments (x, lo, hi), not ${a.length}`) },
  sum: { doc: "sum of a vector's elements (a scalar per example)", fn: (a, _r, fail) => (a.length === 1 ? (vecLen(a[0]!, fail), apply("sum", a)) : fail("sum takes 1 argument")) },
  mean: { doc: "mean of a vector's elements", fn: (a, _r, fail) => (a.length === 1 ? mean(a[0]!, fail) : fail("mean takes 1 argument")) },
  var: { doc: "population variance of a vector's elements, mean((v - mean(v))^2)", fn: (a, _r, fail) =>
    a.length === 1 ? mean(apply("square", [apply("sub", [a[0]!, mean(a[0]!, fail)])]), fail) : fail("var takes 1 argument") },
  concat: { doc: "concat(a, b, …): vectors end to end", fn: (a, _r, fail) => {
    a.forEach((v) => vecLen(v, fail));
    return apply("concat", a);
  } },
  slice: { doc: "slice(v, start, len): len elements of v from start (0-based; start and len are sizes such as H or 2*H)", dimArgs: [1, 2], fn: (a, _r, fail, dims) => {
    if (a.length !== 1) fail("slice takes 3 arguments: slice(v, start, len)");
    vecLen(a[0]!, fail);
    return apply("slice", a, { start: dims(1), len: dims(2) });
  } },
};

export interface LowerContext {
  readonly eq: Equation;
  readonly scope: Scope;
  readonly locate: Locate;
}

/** Lower one right-hand side to IR. */
export function lower(root: MathNode, cx: LowerContext): Node {
  const { eq, scope, locate } = cx;
  const src = (n: MathNode) => {
    const sp = eq.spans.get(n);
    return sp ? eq.text.slice(sp[0], sp[1]) : (n as MathNode).toString();
  };
  const fail = (n: MathNode, problem: string, hint?: string): never => { throw new CellError(locate(eq, n), problem, hint); };

  const dimOf = (n: MathNode): Dim => {
    const m = n as unknown as MNode;
    if (m.type === "ConstantNode" && typeof m.value === "number" && Number.isInteger(m.value)) return dimConst(m.value);
    if (m.type === "SymbolNode" && scope.sizes.has(m.name!)) return dimSize(m.name!);
    if (m.type === "ParenthesisNode") return dimOf(m.content!);
    if (m.type === "OperatorNode" && m.args!.length === 2) {
      const [a, b] = m.args!;
      if (m.op === "+") return dimAdd(dimOf(a!), dimOf(b!));
      if (m.op === "-") return dimAdd(dimOf(a!), dimOf(b!), -1);
      if (m.op === "*") {
        const ca = a as unknown as MNode, cb = b as unknown as MNode;
        if (ca.type === "ConstantNode") return dimScale(dimOf(b!), Number(ca.value));
        if (cb.type === "ConstantNode") return dimScale(dimOf(a!), Number(cb.value));
      }
    }
    return fail(n, `"${src(n)}" is not a size: use integers and size names (${[...scope.sizes].join(", ")}) with + - and *`);
  };

  const shapeFail = (n: MathNode, ops: MathNode[], vals: Node[], e: ShapeError): never => {
    const detail = ops.map((o, i) => `${src(o)} is ${shapeStr(vals[i]!.type)}`).join(" but ");
    return fail(n, `shape mismatch in ${src(n)}: ${detail}`, e.message);
  };

  const visit = (n: MathNode): Node => {
    const m = n as unknown as MNode;
    switch (m.type) {
      case "ConstantNode":
        if (typeof m.value !== "number") return fail(n, `only numbers may appear as constants, not ${JSON.stringify(m.value)}`);
        return konst(m.value);
      case "ParenthesisNode":
        return visit(m.content!);
      case "SymbolNode": {
        const primed = m.name!.endsWith(NEXT);
        const name = primed ? m.name!.slice(0, -NEXT.length) : m.name!;
        const v = scope.lookup(name, primed);
        if (v) return v;
        if (!primed && (name in FUNCTIONS || scope.activations.has(name))) return fail(n, `"${name}" is a function; call it as ${name}(…)`);
        return fail(n, `unknown symbol "${primed ? name + "'" : name}"`, primed ? `only states have a next value (name')` : "declare it as an input, state, parameter or constant, or define it by an equation");
      }
      case "FunctionNode": {
        const fname = typeof m.fn === "string" ? m.fn : m.fn?.name ?? "";
        const args = m.args!;
        const user = scope.activations.get(fname);
        if (user !== undefined) {
          if (args.length !== 1) return fail(n, `${fname} is an activation and takes 1 argument, not ${args.length}`);
          const x = visit(args[0]!);
          return apply("act", [x], { fn: { name: fname, expr: user } });
        }
        const f = FUNCTIONS[fname];
        if (!f) return fail(n, `unknown function "${fname}"`, `known: ${[...Object.keys(FUNCTIONS), ...scope.activations.keys()].join(", ")}; add your own under \`activations\``);
        const dimArgs = f.dimArgs ?? [];
        const vals = args.filter((_a, i) => !dimArgs.includes(i)).map(visit);
        try {
          return f.fn(vals, args, (p, h) => fail(n, `${fname}: ${p}`, h), (i) => {
            if (i >= args.length) return fail(n, `${fname} is missing argument ${i + 1}`);
            return dimOf(args[i]!);
          });
        } catch (e) {
          if (e instanceof ShapeError) return shapeFail(n, args.filter((_a, i) => !dimArgs.includes(i)), vals, e);
          throw e;
        }
      }
      case "OperatorNode": {
        const args = m.args!;
        if (m.op === "'") return fail(n, "transposes are not part of the language", "a primed name (h') is the next value of a state; W*x multiplies by a matrix");
        const vals = args.map(visit);
        try {
          if (args.length === 1) {
            if (m.op === "-") return apply("neg", vals);
            if (m.op === "+") return vals[0]!;
            return fail(n, `operator "${m.op}" is not supported`);
          }
          const [a, b] = vals as [Node, Node];
          const isScalar = (v: Node) => v.type.shape.length === 0;
          switch (m.op) {
            case "+": return apply("add", vals);
            case "-": return apply("sub", vals);
            case ".*": return apply("mul", vals);
            case "./": return apply("div", vals);
            case "*":
              if (isScalar(a) || isScalar(b)) return apply("mul", vals);
              if (a.type.shape.length === 2) return apply("matvec", vals);
              return fail(n, `"*" is a matrix product, but ${src(args[0]!)} is ${shapeStr(a.type)} and ${src(args[1]!)} is ${shapeStr(b.type)}`, "use .* for an elementwise product");
            case "/":
              if (isScalar(b)) return apply("div", vals);
              return fail(n, `"/" divides by a scalar, but ${src(args[1]!)} is ${shapeStr(b.type)}`, "use ./ for an elementwise quotient");
            case "^":
            case ".^": {
              const e = args[1] as unknown as MNode;
              const p = e.type === "ConstantNode" ? Number(e.value) : e.type === "OperatorNode" && e.op === "-" && (e.args![0] as unknown as MNode).type === "ConstantNode" ? -Number((e.args![0] as unknown as MNode).value) : NaN;
              if (!Number.isFinite(p)) return fail(args[1]!, "an exponent must be a number", "write exp(b .* log(a)) for a variable power");
              if (p === 2) return apply("square", [a]);
              if (p === 1) return a;
              if (p === 0.5) return apply("sqrt", [a]);
              return apply("pow", [a], { p });
            }
            default:
              return fail(n, `operator "${m.op}" is not supported`, "the operators are + - * / .* ./ ^");
          }
        } catch (e) {
          if (e instanceof ShapeError) return shapeFail(n, args, vals, e);
          throw e;
        }
      }
      case "AccessorNode":
      case "IndexNode":
        return fail(n, "indexing is not supported", "use slice(v, start, len), e.g. slice(g, H, H)");
      default:
        return fail(n, `${m.type.replace(/Node$/, "").toLowerCase()} expressions are not supported`);
    }
  };
  return visit(root);
}

// The equation language: mathjs syntax, one equation a line, as in a paper.
//   z  = sigmoid(Wz*x + Uz*h + bz)
//   h' = (1 - z) .* n + z .* h
// mathjs parses each right-hand side (after `h'` is renamed, since mathjs reads ' as a transpose);
// we walk its tree into IR nodes, keeping every node's source span for error messages.
import { parse, type MathNode } from "mathjs";
import { type Dim, dimAdd, dimConst, dimEq, dimScale, dimSize } from "./dims.ts";
import { type Type, Node, mat, shapeEq, shapeStr } from "./ir.ts";
import { FUNCTION_OPS, OPS, ShapeError, apply, konst, matrixType, product as matProduct, unitsAsScalars } from "./ops.ts";
import { CellError, type Where } from "./errors.ts";
import { CELL_OPERANDS, scanExpression } from "./limits.ts";

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

const OPERATORS = "the operators are + - * / .* ./ .+ .- ^";

export const IDENT = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * The only names a cell may not declare, each with its reason: they are part of the equation
 * language (mathjs' grammar), so an equation could not tell the name from the operator or literal.
 * Every other identifier works in every role (JavaScript words and the kernels' own variables too:
 * the generated code renames, see codegen/names.ts), and `e`, `pi`, `i` are names like any other.
 */
export const RESERVED_WORDS: Readonly<Record<string, string>> = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, {
  not: "an operator of the equation language (logical not)",
  and: "an operator of the equation language (logical and)",
  or: "an operator of the equation language (logical or)",
  xor: "an operator of the equation language (logical xor)",
  mod: "an operator of the equation language (modulo)",
  to: "an operator of the equation language (unit conversion)",
  in: "an operator of the equation language (unit conversion)",
  true: "a literal of the equation language",
  false: "a literal of the equation language",
  null: "a literal of the equation language",
  undefined: "a literal of the equation language",
  NaN: "a literal of the equation language",
  Infinity: "a literal of the equation language",
}));
export const IDENT_RULE = 'names are ASCII letters, digits and _, starting with a letter, without "__"';

/** The value of arithmetic on numbers (`1/4`, `-(2 + 1)`, `2^-1`); NaN for anything else. */
function constantValue(m: MNode): number {
  if (m.type === "ConstantNode") return typeof m.value === "number" ? m.value : NaN;
  if (m.type === "ParenthesisNode") return constantValue(m.content!);
  if (m.type !== "OperatorNode") return NaN;
  const v = m.args!.map((a) => constantValue(a as unknown as MNode));
  if (v.length === 1) return m.op === "-" ? -v[0]! : m.op === "+" ? v[0]! : NaN;
  const [a, b] = v as [number, number];
  switch (m.op) {
    case "+": return a + b;
    case "-": return a - b;
    case "*": case ".*": return a * b;
    case "/": case "./": return a / b;
    case "^": case ".^": return a ** b;
    default: return NaN;
  }
}

/** mathjs' parse errors, reworded for an equation (the caret already shows where). */
function syntaxProblem(msg: string, rhs: string): [string, string?] {
  const opens = (rhs.match(/\(/g) ?? []).length, closes = (rhs.match(/\)/g) ?? []).length;
  const parens = opens !== closes ? `the line has ${opens} "(" and ${closes} ")"` : undefined;
  let m: RegExpExecArray | null;
  if (msg === "Value expected") return ["a value is missing here (a name, a number or a parenthesis)", parens];
  if (msg === "Unexpected end of expression") return ["the right-hand side ends too early: an operand or a closing parenthesis is missing", parens];
  if ((m = /^Parenthesis (.) expected$/.exec(msg))) return [`"${m[1]}" expected here`, parens];
  if ((m = /^Unexpected operator (.+)$/.exec(msg))) return [`unexpected "${m[1]}"`, m[1] === "," ? "commas separate the arguments of a function call" : parens];
  if ((m = /^Syntax error in part "(.+)"$/.exec(msg))) return [`unexpected "${[...m[1]!][0]}"`, OPERATORS];
  return [msg.charAt(0).toLowerCase() + msg.slice(1), parens];
}

/** Split the equations text into equations; comments start with # or //. */
export function parseEquations(source: string | readonly string[], where: (w: Partial<Where>) => Where): Equation[] {
  const lines = typeof source === "string" ? source.split(/\r?\n/) : source.flatMap((s) => s.split(/\r?\n/));
  const eqs: Equation[] = [];
  let operands = 0; // in the equations so far
  lines.forEach((raw, i) => {
    const line = i + 1;
    const text = raw.replace(/\s+$/, "");
    const code = text.replace(/(#|\/\/)[^]*$/, "");
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
    if (!IDENT.test(m![1]!) || m![1]!.includes("__"))
      err(lhsCol, m![1]!.length, `invalid identifier "${m![1]}": ${IDENT_RULE}`);
    if (Object.hasOwn(RESERVED_WORDS, m![1]!)) err(lhsCol, m![1]!.length, `invalid identifier "${m![1]}": it is reserved, as ${RESERVED_WORDS[m![1]!]}`);
    const rhsAt = eqAt + 1;
    const rhsText = code.slice(rhsAt);
    if (rhsText.trim() === "") err(rhsAt, 1, "the right-hand side is empty");
    // bounded work: a right-hand side past the limits (src/limits.ts) is refused before mathjs reads it
    const size = scanExpression(rhsText, "the right-hand side");
    if (size.problem) err(rhsAt + size.problem.at, size.problem.width, size.problem.problem, size.problem.hint);
    operands += size.count;
    if (operands > CELL_OPERANDS) {
      const rest = lines.slice(i + 1).map((l) => l.replace(/(#|\/\/)[^]*$/, "")).map((l) => l.slice(l.search(/(?<![<>=!])=(?!=)/) + 1 || l.length));
      const total = operands + rest.reduce((a, r) => a + scanExpression(r, "").count, 0);
      const [at, width] = size.operands[size.operands.length - (operands - CELL_OPERANDS)]!;
      err(rhsAt + at, width, `the equations have ${total.toLocaleString("en-US")} operands (names and numbers) in all; the limit is ${CELL_OPERANDS.toLocaleString("en-US")} per cell`,
        "make the cell smaller: its backward pass and kernels grow with all of its equations together");
    }
    // `__` is ours (h' is read as h__next), so a name the user writes may not contain it
    for (const id of rhsText.matchAll(/[A-Za-z_$][\w$]*/g))
      if (id[0].includes("__")) err(rhsAt + id.index, id[0].length, `invalid identifier "${id[0]}": ${IDENT_RULE}`);
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
        // `.+` and `.-` (elementwise, broadcasting a scalar over a matrix too) are read as + and -;
        // lower() tells them apart by the source text between the operands
        rewritten += rhsText[k] === "." && /[+-]/.test(rhsText[k + 1] ?? "") ? " " : rhsText[k];
        from.push(rhsAt + k);
        k++;
      }
    }
    from.push(rhsAt + rhsText.length);
    let ast: MathNode;
    try {
      ast = parse(rewritten);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const at = /\(char (\d+)\)/.exec(msg);
      const col = at ? from[Math.min(Number(at[1]) - 1, from.length - 1)]! : rhsAt;
      const [problem, hint] = syntaxProblem(msg.replace(/\s*\(char \d+\)/, ""), rhsText);
      // a reserved word used as a name reads as an operator or a literal: say so
      const word = [...rhsText.matchAll(/[A-Za-z][\w]*/g)].find((w) => Object.hasOwn(RESERVED_WORDS, w[0]));
      if (word) err(rhsAt + word.index, word[0].length, `syntax error: "${word[0]}" cannot be a name here: it is reserved, as ${RESERVED_WORDS[word[0]]}`);
      err(col, 1, `syntax error: ${problem}`, hint);
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
  /** What a declared or defined name is ("a parameter", "defined by an equation"), for messages. */
  kind?(name: string): string | undefined;
  /** Every name a right-hand side may read, for "did you mean …?". */
  readonly names?: readonly string[];
  readonly sizes: ReadonlySet<string>;
  /** A size name as the shapes use it: D is H under the constraint D = H (default: the size itself). */
  readonly dim?: (size: string) => Dim;
  readonly activations: ReadonlyMap<string, string>;
}

/** A call being lowered: its value arguments, and ways to complain about it or one of them. */
export interface Call {
  /** The values of the arguments that are not sizes, in the order written (size arguments come last). */
  readonly args: readonly Node[];
  /** Argument i (0-based, as written) read as a size such as H or 2*H. */
  dim(i: number): Dim;
  /** Value argument i must be a vector: its length. */
  vector(i: number): Dim;
  fail(problem: string, hint?: string): never;
}

export interface FunctionDef {
  /** How a call is written: `clip(x, lo, hi)`. */
  readonly usage: string;
  readonly doc: string;
  /** How many arguments, or "1+" for one or more. */
  readonly arity: number | "1+";
  /** Arguments that are sizes (H, 2*H), not values. */
  readonly dimArgs?: readonly number[];
  readonly fn: (c: Call) => Node;
}

const meanOf = (v: Node, len: Dim) => apply("div", [apply("sum", [v]), apply("size", [], { dim: len })]);
/** d < 0 at every size (sizes are at least 1). */
const alwaysNegative = (d: Dim) => d.c <= 0 && Object.values(d.terms).every((v) => v <= 0) && (d.c < 0 || Object.keys(d.terms).length > 0);
/** d <= 0 at every size. */
const neverPositive = (d: Dim) => d.c <= 0 && Object.values(d.terms).every((v) => v <= 0);

/**
 * The functions that are not one op applied to its arguments: several ops (clip, mean, var), or a
 * language form that checks its arguments as the equations read them (vectors, sizes). The one
 * place they are listed; the functions that are one op come from the op table (an op's `call`).
 */
export const COMPOSITES: Readonly<Record<string, FunctionDef>> = {
  clip: { usage: "clip(x, lo, hi)", doc: "`min(max(x, lo), hi)`", arity: 3, fn: ({ args: [x, lo, hi] }) =>
    apply("min", [apply("max", [x!, lo!]), hi!]) },
  sum: { usage: "sum(v)", doc: "sum of a vector's elements, a scalar per example", arity: 1, fn: (c) => (c.vector(0), apply("sum", c.args)) },
  mean: { usage: "mean(v)", doc: "mean of a vector's elements, a scalar per example", arity: 1, fn: (c) => meanOf(c.args[0]!, c.vector(0)) },
  var: { usage: "var(v)", doc: "population variance of a vector's elements, `mean((v - mean(v))^2)`, as layer norm uses", arity: 1, fn: (c) => {
    const v = c.args[0]!, n = c.vector(0);
    return meanOf(apply("square", [apply("sub", [v, meanOf(v, n)])]), n);
  } },
  concat: { usage: "concat(a, b, …)", doc: "vectors end to end", arity: "1+", fn: (c) => {
    c.args.forEach((_v, i) => c.vector(i));
    return apply("concat", c.args);
  } },
  slice: { usage: "slice(v, start, len)", doc: "`len` elements of `v` from `start` (0-based); `start` and `len` are sizes: `slice(g, H, H)`, `slice(v, 0, 2*H)`", arity: 3, dimArgs: [1, 2], fn: (c) => {
    const n = c.vector(0), start = c.dim(1), len = c.dim(2), end = dimAdd(start, len);
    if (alwaysNegative(start)) c.fail(`slice starts at ${start.key}, before the first element`);
    if (neverPositive(len)) c.fail(`slice length ${len.key} is not positive`);
    if (alwaysNegative(dimAdd(n, end, -1))) c.fail(`slice ends at ${end.key}, past the end of a vector of ${n.key}`, "slice(v, start, len) takes len elements from start, counting from 0");
    return apply("slice", c.args, { start, len });
  } },
};

/** The functions of the equation language: each function op of the table (src/ops.ts), then the composites. */
export const FUNCTIONS: Readonly<Record<string, FunctionDef>> = {
  ...Object.fromEntries(FUNCTION_OPS.map((name) => {
    const def = OPS[name];
    return [name, { usage: def.call!.usage, doc: def.call!.doc, arity: def.arity as number, fn: (c: Call) => apply(name, c.args) }];
  })),
  ...COMPOSITES,
};

const isFunction = (name: string, scope: Scope) => Object.hasOwn(FUNCTIONS, name) || scope.activations.has(name);

/** The closest name (edit distance at most 2, or equal ignoring case), for "did you mean …?". */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined, bestD = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, c);
    if (d < bestD && d <= (name.length <= 1 ? 0 : name.length <= 4 ? 1 : 2)) { best = c; bestD = d; }
  }
  return best;
}
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length]!;
}
export const didYouMean = (guess: string | undefined) => (guess ? ` (did you mean ${guess}?)` : "");

// ----------------------------------------------------------------------------- matrix expressions

/**
 * The language forms that make a matrix rather than a value: they are not ops (no matrix is ever
 * formed), so they are not in FUNCTIONS; lower() reads them into a MatExpr.
 */
export const MATRIX_FUNCTIONS: Readonly<Record<"transpose" | "eye", { readonly usage: string; readonly doc: string }>> = {
  transpose: { usage: "transpose(W)", doc: "`W'`, the transpose of a matrix, to multiply a vector" },
  eye: { usage: "eye(n)", doc: "the n×n identity (n a size), to multiply a vector: `(W + gamma*eye(H))*h`" },
};

/**
 * A linear combination of matrices as written before a vector: W, W' (its transpose), eye(n), and
 * sums, differences, negations and scalar multiples of them. It is never formed as a matrix:
 *   (A + B)*v -> A*v + B*v,  (c*A)*v -> c*(A*v),  W'*v -> matvecT(W, v),  eye(n)*v -> v
 * so every product is one of a matrix itself (a GEMM in the kernels, NT for W, NN for W'), and a
 * matrix used plain and transposed gets both outer products in its gradient.
 */
export type MatExpr = { readonly type: Type } & (
  | { readonly k: "mat"; readonly m: Node; readonly t: boolean }
  | { readonly k: "eye"; readonly n: Dim }
  | { readonly k: "add" | "sub"; readonly a: MatExpr; readonly b: MatExpr }
  | { readonly k: "neg"; readonly a: MatExpr }
  | { readonly k: "scale"; readonly op: "mul" | "div"; readonly a: MatExpr; readonly c: Node; readonly left: boolean }
);

const isMatExpr = (x: Node | MatExpr): x is MatExpr => !(x instanceof Node);
// a parameter declared with heads is the block-diagonal matrix it stands for ([H, H]), not its stored blocks
const liftMat = (x: Node | MatExpr): MatExpr => (isMatExpr(x) ? x : { k: "mat", m: x, t: false, type: matrixType(x) });

/** (A + B)' = A' + B',  (c*A)' = c*A',  eye' = eye,  W'' = W. */
function transposed(e: MatExpr): MatExpr {
  const type = mat(e.type.shape[1]!, e.type.shape[0]!);
  switch (e.k) {
    case "mat": return { ...e, type, t: !e.t };
    case "eye": return e;
    case "add": case "sub": return { ...e, type, a: transposed(e.a), b: transposed(e.b) };
    case "neg": case "scale": return { ...e, type, a: transposed(e.a) };
  }
}

/** The matrix itself, where it is one of elementwise ops (W + U, 2*W); undefined with a transpose or an eye. */
function denseOf(e: MatExpr): Node | undefined {
  switch (e.k) {
    case "mat": return e.t || e.m.attrs.heads ? undefined : e.m;
    case "eye": return undefined;
    case "add": case "sub": { const a = denseOf(e.a), b = denseOf(e.b); return a && b ? apply(e.k, [a, b]) : undefined; }
    case "neg": { const a = denseOf(e.a); return a && apply("neg", [a]); }
    case "scale": { const a = denseOf(e.a); return a && apply(e.op, e.left ? [e.c, a] : [a, e.c]); }
  }
}

/** Whether a term is a matrix declared with heads (its blocks are stored, never the matrix). */
function hasHeads(e: MatExpr): boolean {
  switch (e.k) {
    case "mat": return !!e.m.attrs.heads;
    case "eye": return false;
    case "add": case "sub": return hasHeads(e.a) || hasHeads(e.b);
    case "neg": case "scale": return hasHeads(e.a);
  }
}

/** e*v, distributed over the terms (the caller has checked that v has as many elements as e has columns). */
function times(e: MatExpr, v: Node): Node {
  switch (e.k) {
    case "mat": return matProduct(e.m, v, e.t);
    case "eye": return v;
    case "add": case "sub": return apply(e.k, [times(e.a, v), times(e.b, v)]);
    case "neg": return apply("neg", [times(e.a, v)]);
    case "scale": { const p = times(e.a, v); return apply(e.op, e.left ? [e.c, p] : [p, e.c]); }
  }
}

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
    return sp ? eq.text.slice(sp[0], sp[1]) : n.toString().replaceAll(NEXT, "'");
  };
  const fail = (n: MathNode, problem: string, hint?: string, width?: number): never => {
    const w = locate(eq, n);
    throw new CellError(width === undefined ? w : { ...w, width }, problem, hint);
  };
  const sizeList = [...scope.sizes].join(", ");
  /** The operator between two operands was written .+ or .- (read as + and -, see parseEquations). */
  const dotted = (l: MathNode, r: MathNode) => {
    const [sl, sr] = [eq.spans.get(l), eq.spans.get(r)];
    return !!sl && !!sr && eq.text.slice(sl[1], sr[0]).trim().startsWith(".");
  };

  const dimOf = (n: MathNode): Dim => {
    const m = n as unknown as MNode;
    if (m.type === "ConstantNode" && typeof m.value === "number" && Number.isInteger(m.value)) return dimConst(m.value);
    if (m.type === "SymbolNode" && scope.sizes.has(m.name!)) return scope.dim?.(m.name!) ?? dimSize(m.name!);
    if (m.type === "ParenthesisNode") return dimOf(m.content!);
    if (m.type === "OperatorNode" && m.args!.length === 2) {
      const [a, b] = m.args!;
      if (m.op === "+") return dimAdd(dimOf(a!), dimOf(b!));
      if (m.op === "-") return dimAdd(dimOf(a!), dimOf(b!), -1);
      if (m.op === "*") {
        const ca = a as unknown as MNode, cb = b as unknown as MNode;
        if (ca.type === "ConstantNode" && Number.isInteger(ca.value)) return dimScale(dimOf(b!), Number(ca.value));
        if (cb.type === "ConstantNode" && Number.isInteger(cb.value)) return dimScale(dimOf(a!), Number(cb.value));
      }
    }
    return fail(n, `"${src(n)}" is not a size`, `a size is made of integers and size names (${sizeList}) with + - and *, like H or 2*H`);
  };

  /** "a is [D] but b is [H]", or "a is [D], b is [H] and c is scalar". */
  const shapesOf = (ops: readonly MathNode[], vals: readonly { readonly type: Type }[]) => {
    const parts = ops.map((o, i) => `${src(o)} is ${shapeStr(vals[i]!.type)}`);
    return parts.length <= 2 ? parts.join(" but ") : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
  };
  const shapeFail = (n: MathNode, ops: readonly MathNode[], vals: readonly { readonly type: Type }[], hint: string): never =>
    fail(n, `shape mismatch in ${src(n)}: ${shapesOf(ops, vals)}`, hint);
  const elementwiseHint = (what: string) => `${what} works elementwise: its operands need the same shape (a scalar is broadcast)`;

  /** `(W - W')`, but `W'` and `eye(H)` as they are: the left operand of a product written back. */
  const operand = (n: MathNode) => ((n as unknown as MNode).type === "ParenthesisNode" || /^[\w']+(\([^()]*\))?$/.test(src(n)) ? src(n) : `(${src(n)})`);
  /** A value, or a matrix expression outside a product: formed when it is elementwise ops (W + U), refused with a transpose or an eye. */
  const asNode = (x: Node | MatExpr, n: MathNode): Node => {
    if (!isMatExpr(x)) return x;
    let d: Node | undefined;
    try {
      d = denseOf(x);
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      return fail(n, `"${src(n)}" is a matrix that varies per example`, `a matrix scaled by a value of each example can only multiply a vector: ${operand(n)}*v`);
    }
    const what = hasHeads(x) ? "a block-diagonal matrix (declared with heads), or an expression of one"
      : x.k === "eye" ? "the identity" : x.k === "mat" ? "a transpose" : "a matrix expression with a transpose or an identity";
    return d ?? fail(n, `"${src(n)}" is ${what}: it can only multiply a vector`,
      `write ${operand(n)}*v: the product is computed term by term (W'*v, eye(n)*v = v), and the matrix is never formed`);
  };
  const visit = (n: MathNode): Node => asNode(visitAny(n), n);
  const isMatrix = (x: Node | MatExpr) => x.type.shape.length === 2;
  /** A matrix times a vector, with the shapes checked: "*" of the equations. */
  const product = (n: MathNode, ops: readonly MathNode[], a: MatExpr, v: Node): Node => {
    const cols = a.type.shape[1]!;
    if (!dimEq(cols, v.type.shape[0]!)) return shapeFail(n, ops, [a, v], `${src(ops[0]!)} has ${cols.key.replace(/ /g, "")} columns, so it multiplies a vector of ${cols.key.replace(/ /g, "")}`);
    return times(a, v);
  };

  const visitAny = (n: MathNode): Node | MatExpr => {
    const m = n as unknown as MNode;
    switch (m.type) {
      case "ConstantNode":
        if (typeof m.value !== "number") return fail(n, `only numbers may appear as constants, not ${JSON.stringify(m.value)}`);
        return konst(m.value);
      case "ParenthesisNode":
        return visitAny(m.content!);
      case "SymbolNode": {
        const primed = m.name!.endsWith(NEXT);
        const name = primed ? m.name!.slice(0, -NEXT.length) : m.name!;
        const v = scope.lookup(name, primed);
        // a matrix declared with heads is only ever a product's matrix: -R*h distributes, R .- a is refused
        if (v && v.attrs.heads && v.type.shape.length === 2) return liftMat(v);
        if (v) return v;
        // h' is the next value of a state; W' of a matrix (a parameter, or a matrix defined by an equation) is its transpose
        const plain = primed ? scope.lookup(name, false) : undefined;
        if (plain && isMatrix(plain)) return transposed(liftMat(plain));
        const kind = scope.kind?.(name);
        if (primed && kind)
          return fail(n, `"${name}'": only a state has a next value, and ${name} is ${kind}`,
            plain ? `a prime is the next value of a state (h') or the transpose of a matrix (W'*v), but ${name} is ${shapeStr(plain.type)}`
            : kind === "defined by an equation" ? `if ${name} is a matrix, ${name}' is its transpose: define ${name} on a line above this one` : undefined);
        if (primed) return fail(n, `unknown symbol "${name}'"`, "only a state has a next value (h' for a state h)");
        if (isFunction(name, scope)) return fail(n, `"${name}" is a function; call it as ${name}(…)`);
        const hint = name === "pi" ? "write the number, 3.141592653589793"
          : name === "e" ? "write exp(…) for powers of e"
          : "declare it as an input, state, parameter or constant, or define it by an equation";
        return fail(n, `unknown symbol "${name}"${didYouMean(closest(name, scope.names ?? []))}`, hint);
      }
      case "FunctionNode": {
        const fname = typeof m.fn === "string" ? m.fn : m.fn?.name ?? "";
        const args = m.args!;
        if (fname === "") return fail(n, "only a named function can be called");
        const failName = (problem: string, hint?: string): never => fail(n, problem, hint, fname.length);
        const user = scope.activations.get(fname);
        if (user !== undefined) {
          if (args.length !== 1) return failName(`${fname} is an activation: it takes 1 argument, but ${args.length} ${args.length === 1 ? "is" : "are"} given`);
          return apply("act", [visit(args[0]!)], { fn: { name: fname, expr: user } });
        }
        // a name the cell declares or defines hides a function of the same name (one added later breaks no cell)
        const kind = scope.kind?.(fname);
        if (kind) return failName(`"${fname}" is ${kind}, not a function`, args.length === 1 ? `for a product write ${fname}*${src(args[0]!)}` : undefined);
        if (fname === "transpose" || fname === "eye") {
          if (args.length !== 1) return failName(`${fname} takes 1 argument, but ${args.length} are given`, `write ${MATRIX_FUNCTIONS[fname].usage}`);
          if (fname === "eye") {
            const d = dimOf(args[0]!);
            if (neverPositive(d)) return fail(args[0]!, `eye(${d.key}) has no rows: its size must be positive`);
            return { k: "eye", n: d, type: mat(d, d) };
          }
          const x = visitAny(args[0]!);
          if (!isMatrix(x)) return fail(n, `transpose expects a matrix, but ${src(args[0]!)} is ${shapeStr(x.type)}`, "only a matrix has a transpose: transpose(W)*v, or W'*v");
          return transposed(liftMat(x));
        }
        const f = Object.hasOwn(FUNCTIONS, fname) ? FUNCTIONS[fname]! : undefined;
        if (!f) {
          const known = [...Object.keys(FUNCTIONS).filter((k) => !scope.activations.has(k)), ...Object.keys(MATRIX_FUNCTIONS), ...scope.activations.keys()];
          return failName(`unknown function "${fname}"${didYouMean(closest(fname, known))}`, `the functions are ${known.join(", ")}; define your own under \`activations\``);
        }
        if (f.arity === "1+" ? args.length < 1 : args.length !== f.arity) {
          const want = f.arity === "1+" ? "at least 1 argument" : `${f.arity} argument${f.arity === 1 ? "" : "s"}`;
          return failName(`${fname} takes ${want}, but ${args.length} ${args.length === 1 ? "is" : "are"} given`, `write ${f.usage}`);
        }
        const dimArgs = f.dimArgs ?? [];
        const valueAt = args.map((_a, i) => i).filter((i) => !dimArgs.includes(i));
        const given = valueAt.map((i) => visit(args[i]!));
        // an elementwise function broadcasts a vector of 1 as the operators do (clip is max and min)
        const vals = fname === "clip" || (Object.hasOwn(OPS, fname) && OPS[fname as keyof typeof OPS].kind === "elementwise") ? unitsAsScalars(given) : given;
        const call: Call = {
          args: vals,
          dim: (i) => dimOf(args[i]!),
          vector: (i) => {
            const t = vals[i]!.type;
            return t.shape.length === 1 ? t.shape[0]! : fail(args[valueAt[i]!]!, `${fname} expects a vector, but ${src(args[valueAt[i]!]!)} is ${shapeStr(t)}`);
          },
          fail: (problem, hint) => fail(n, problem, hint),
        };
        try {
          return f.fn(call);
        } catch (e) {
          if (e instanceof ShapeError) return shapeFail(n, valueAt.map((i) => args[i]!), vals, elementwiseHint(fname));
          throw e;
        }
      }
      case "OperatorNode": {
        const args = m.args!;
        const raw = args.map(visitAny);
        const isScalar = (v: { readonly type: Type }) => v.type.shape.length === 0;
        if (m.op === "'") {
          // (W - U)' (a prime after a name, W', is read as a name: see SymbolNode)
          if (!isMatrix(raw[0]!)) return fail(n, `a transpose needs a matrix, but ${src(args[0]!)} is ${shapeStr(raw[0]!.type)}`, "a prime is the next value of a state (h') or the transpose of a matrix (W'*v)");
          return transposed(liftMat(raw[0]!));
        }
        if (args.length === 1 && isMatExpr(raw[0]!) && (m.op === "-" || m.op === "+"))
          return m.op === "-" ? { k: "neg", a: raw[0]!, type: raw[0]!.type } : raw[0]!;
        if (args.length === 2) {
          const [a, b] = raw as [Node | MatExpr, Node | MatExpr];
          const scaled = (op: "mul" | "div", x: Node | MatExpr, c: Node, left: boolean): MatExpr => ({ k: "scale", op, a: liftMat(x), c, left, type: liftMat(x).type });
          if ((m.op === "+" || m.op === "-") && (isScalar(a) || isScalar(b)) && a.type.shape.length + b.type.shape.length === 2 && !dotted(args[0]!, args[1]!)) {
            // W - gamma subtracts gamma from every entry of W: almost always meant as W - gamma*eye(H)
            const [mx, sc] = isScalar(b) ? [args[0]!, args[1]!] : [args[1]!, args[0]!];
            const [rows, cols] = (isScalar(b) ? a : b).type.shape as [Dim, Dim];
            const eye = `${src(sc)}*eye(${rows.key.replace(/ /g, "")})`;
            const asEye = `(${isScalar(b) ? `${src(mx)} ${m.op} ${eye}` : `${eye} ${m.op} ${src(mx)}`})*v`;
            const every = `to ${m.op === "+" ? "add it to" : "subtract it from"} every entry, write ${src(args[0]!)} .${m.op} ${src(args[1]!)}`;
            return fail(n, `"${src(n)}" ${m.op === "+" ? "adds" : "subtracts"} the scalar ${src(sc)} ${m.op === "+" ? "to" : "from"} every entry of the matrix ${src(mx)}`,
              dimEq(rows, cols) ? `for ${src(sc)} times the identity, write ${asEye}; ${every}` : every);
          }
          // matrix expressions: sums and scalar multiples of matrices, and their products with a vector
          if ((m.op === "+" || m.op === "-") && isMatrix(a) && isMatrix(b) && !dotted(args[0]!, args[1]!)) {
            if (!shapeEq(liftMat(a).type, liftMat(b).type)) return shapeFail(n, args, raw, `"${m.op}" between matrices works entry by entry: they need the same shape`);
            return { k: m.op === "+" ? "add" : "sub", a: liftMat(a), b: liftMat(b), type: liftMat(a).type };
          }
          if (m.op === "*" && isScalar(a) && isMatrix(b)) return scaled("mul", b, a as Node, true);
          if (m.op === "*" && isMatrix(a) && isScalar(b)) return scaled("mul", a, b as Node, false);
          if (m.op === "/" && isMatrix(a) && isScalar(b)) return scaled("div", a, b as Node, false);
          if (m.op === "*" && isMatExpr(a) && b.type.shape.length === 1) return product(n, args, a, b as Node);
          if (m.op === "*" && isMatrix(a) && isMatrix(b) && (isMatExpr(a) || isMatExpr(b)))
            return shapeFail(n, args, raw, `"*" multiplies a matrix by a vector; there are no matrix-matrix products`);
          if (m.op === "*" && isMatExpr(b) && b.type.shape.length === 2)
            return fail(n, `"*" multiplies a matrix by a vector, but ${src(args[0]!)} is ${shapeStr(a.type)} and ${src(args[1]!)} is ${shapeStr(b.type)}`, `the matrix goes on the left: ${operand(args[1]!)}*${src(args[0]!)}`);
        }
        // a vector of 1 beside a longer vector is the scalar it holds (ta .* t with t of size 1)
        const vals = unitsAsScalars(raw.map((x, i) => asNode(x, args[i]!)));
        const [a, b] = vals as [Node, Node];
        try {
          if (args.length === 1) {
            if (m.op === "-") return apply("neg", vals);
            if (m.op === "+") return vals[0]!;
            return fail(n, `operator "${m.op}" is not supported`, Object.hasOwn(RESERVED_WORDS, m.op!) ? `"${m.op}" is reserved, as ${RESERVED_WORDS[m.op!]}: it cannot be a name` : OPERATORS);
          }
          switch (m.op) {
            case "+": return apply("add", vals);
            case "-": return apply("sub", vals);
            case ".*": return apply("mul", vals);
            case "./": return apply("div", vals);
            case "*":
              if (isScalar(a) || isScalar(b)) return apply("mul", vals);
              if (a.type.shape.length === 2) return matProduct(a, b);
              if (b.type.shape.length === 2)
                return fail(n, `"*" multiplies a matrix by a vector, but ${src(args[0]!)} is ${shapeStr(a.type)} and ${src(args[1]!)} is ${shapeStr(b.type)}`, `the matrix goes on the left: ${src(args[1]!)}*${src(args[0]!)}`);
              return fail(n, `"*" between two vectors: ${src(args[0]!)} is ${shapeStr(a.type)} and ${src(args[1]!)} is ${shapeStr(b.type)}`, "use .* for an elementwise product (W*x is for a matrix W)");
            case "/":
              if (isScalar(b)) return apply("div", vals);
              return fail(n, `"/" divides by a scalar, but ${src(args[1]!)} is ${shapeStr(b.type)}`, "use ./ for an elementwise quotient");
            case "^":
            case ".^": {
              const p = constantValue(args[1] as unknown as MNode);
              if (!Number.isFinite(p)) return fail(args[1]!, "an exponent must be a finite number, or arithmetic on numbers that gives one (2, -1.5, 1/3)", "write exp(b .* log(a)) for a variable power");
              if (p === 2) return apply("square", [a]);
              if (p === 1) return a;
              if (p === 0.5) return apply("sqrt", [a]);
              return apply("pow", [a], { p });
            }
            default:
              return fail(n, `operator "${m.op}" is not supported`, Object.hasOwn(RESERVED_WORDS, m.op!) ? `"${m.op}" is reserved, as ${RESERVED_WORDS[m.op!]}: it cannot be a name` : OPERATORS);
          }
        } catch (e) {
          if (!(e instanceof ShapeError)) throw e;
          if (m.op === "*" && a.type.shape.length === 2) {
            const cols = a.type.shape[1]!.key.replace(/ /g, "");
            return shapeFail(n, args, vals, b.type.shape.length === 1
              ? `${src(args[0]!)} has ${cols} columns, so it multiplies a vector of ${cols}`
              : `"*" multiplies a matrix by a vector; there are no matrix-matrix products`);
          }
          return shapeFail(n, args, vals, elementwiseHint(`"${m.op}"`));
        }
      }
      case "AccessorNode":
      case "IndexNode":
        return fail(n, "indexing is not supported", "use slice(v, start, len), e.g. slice(g, H, H)");
      case "RangeNode":
        return fail(n, "ranges (a:b) are not supported", "use slice(v, start, len), e.g. slice(g, H, H)");
      case "AssignmentNode":
      case "FunctionAssignmentNode":
        return fail(n, "an equation has one \"=\"", "write each definition on its own line");
      case "BlockNode":
        return fail(n, "one equation a line: \";\" is not allowed", "write each equation on its own line");
      default:
        return fail(n, `${m.type.replace(/Node$/, "").toLowerCase()} expressions are not supported`);
    }
  };
  return visit(root);
}

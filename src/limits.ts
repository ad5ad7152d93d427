// How long and how deep an expression may be, checked on its text before mathjs parses it.
//
// mathjs' parser recurses on nesting, and the TypeScript compiler and prettier, which check and
// format the generated kernels, recurse on an expression's depth: an equation far longer than any
// paper's would overflow the stack somewhere down the pipeline, or take minutes. Up to these limits
// every stage works (test/limits.test.ts runs equations at the limits through all of them); beyond
// them the cell is refused with the count and the limit, at the spot in the file. The longest
// equation among the built-in cells has 9 operands and nests 3 deep; the largest cell has 46.

export const EXPRESSION_LIMITS = {
  /** Characters of one right-hand side, or of one activation's expression. */
  characters: 10_000,
  /** Names and numbers in it. */
  operands: 200,
  /** Operators in it: + - * / ^ .* ./ .+ .- and unary minus count one each. */
  operators: 200,
  /** Parentheses (a call's included) inside one another. */
  nesting: 32,
} as const;

/**
 * An activation's expression (in x). Tighter: mathjs differentiates it, and its derivative, which
 * grows as the product of the expression's size and depth, is inlined into the kernels' loops.
 */
export const ACTIVATION_LIMITS = { characters: 1_000, operands: 40, operators: 40, nesting: 8 } as const;

/** Operands in all the equations of one cell: the derived backward and the kernels grow with the whole cell. */
export const CELL_OPERANDS = 1_000;

/**
 * The builder form builds IR without text: a definition may be this many operations deep below
 * the values it names (an equation at the limits above makes at most about 220), and a cell may
 * have this many operations in all (about what CELL_OPERANDS allows an equations text).
 */
export const BUILDER_LIMITS = { depth: 250, operations: 2_000 } as const;

export interface LimitProblem {
  readonly problem: string;
  readonly hint: string;
  /** 0-based offset in the text of the spot to point at, and how many characters. */
  readonly at: number;
  readonly width: number;
}

export const SPLIT_HINT = "split it: give a part a name in an equation of its own (s = …) and use the name";
const fmt = (x: number) => x.toLocaleString("en-US");
// a name (h' included), a number, an operator, an opening or a closing bracket, anything else
const TOKEN = /\s+|([A-Za-z_$][\w$]*'?)|((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(\.[*/^+-]|[=!<>]=|<<|>>>?|[-+*/^%!'&|<>=~?:])|([([{])|([)\]}])|[^]/gy;

/**
 * Count an expression's operands (names and numbers; a called name is not one), operators and
 * nesting, without parsing it: the count of operands, where the first ones are (as many as the
 * limit allows, and one more), and the first limit it breaks.
 */
export function scanExpression(text: string, what: string, L: typeof EXPRESSION_LIMITS | typeof ACTIVATION_LIMITS = EXPRESSION_LIMITS): { count: number; operands: readonly (readonly [number, number])[]; problem?: LimitProblem } {
  const over = (problem: string, at: number, width: number): LimitProblem => ({ problem, hint: SPLIT_HINT, at, width });
  const operands: [number, number][] = [];
  let count = 0, operators = 0, depth = 0, deepest = 0;
  let operatorAt: [number, number] | undefined, nestAt: number | undefined;
  const operand = (at: number, width: number) => { if (count++ <= L.operands) operands.push([at, width]); };
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null && m[0] !== ""; m = TOKEN.exec(text)) {
    const at = m.index;
    if (m[1] !== undefined) {
      if (!/^\s*\(/.test(text.slice(TOKEN.lastIndex, TOKEN.lastIndex + 80))) operand(at, m[0].length);
    } else if (m[2] !== undefined) operand(at, m[0].length);
    else if (m[3] !== undefined) {
      if (++operators === L.operators + 1) operatorAt = [at, m[0].length];
    } else if (m[4] !== undefined) {
      deepest = Math.max(deepest, ++depth);
      if (depth === L.nesting + 1) nestAt ??= at;
    } else if (m[5] !== undefined) depth = Math.max(0, depth - 1);
  }
  const result = (problem?: LimitProblem) => (problem ? { count, operands, problem } : { count, operands });
  const o = operands[L.operands];
  if (o) return result(over(`${what} has ${fmt(count)} operands (names and numbers); the limit is ${fmt(L.operands)}`, o[0], o[1]));
  if (operatorAt) return result(over(`${what} has ${fmt(operators)} operators; the limit is ${fmt(L.operators)}`, ...operatorAt));
  if (nestAt !== undefined) return result(over(`parentheses nest ${fmt(deepest)} deep; the limit is ${L.nesting}`, nestAt, 1));
  if (text.length > L.characters) return result(over(`${what} has ${fmt(text.length)} characters; the limit is ${fmt(L.characters)}`, L.characters, 1));
  return result();
}

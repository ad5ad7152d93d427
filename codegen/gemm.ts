// Register-blocked matrix products, generated for a tile (rows × columns of accumulators).
// The three forms the kernels need, all as "accumulate outer products over a reduction index p":
//   NT  C[i,j] = Σp A[i,p]·W[j,p]   forward: x·Wᵀ (rows × stacked gates)
//   NN  C[i,j] = Σp A[i,p]·W[p,j]   backward: g·W (gradient to the vector)
//   TN  C[i,j] = Σp A[p,i]·V[p,j]   backward: gᵀ·v (weight gradient, summed over rows)
// Each writes C, or adds into it when its last argument `acc` is true.

export interface Tile {
  readonly rows: number;
  readonly cols: number;
}

export const DEFAULT_TILE: Tile = { rows: 4, cols: 4 };

type Form = "NT" | "NN" | "TN";

interface Index {
  /** The extent of i, j and p in terms of the function's arguments. */
  readonly I: string;
  readonly J: string;
  readonly P: string;
  /** Row base of A for row i (hoisted out of the p loop) and the load at p. */
  readonly aBase: (i: string) => string;
  readonly aAt: (base: string, p: string) => string;
  readonly bBase: (j: string) => string;
  readonly bAt: (base: string, p: string) => string;
  readonly c: (i: string, j: string) => string;
  /** Running offsets stepped with p, so the inner loop does no multiplication. */
  readonly steps: readonly (readonly [string, string])[];
}

const FORMS: Record<Form, Index> = {
  NT: {
    I: "rows", J: "m", P: "k",
    aBase: (i) => `aOff + (${i}) * aStride`, aAt: (b, p) => `a[${b} + ${p}]!`,
    bBase: (j) => `bOff + (${j}) * k`, bAt: (b, p) => `w[${b} + ${p}]!`,
    c: (i, j) => `c[cOff + (${i}) * cStride + ${j}]`,
    steps: [],
  },
  NN: {
    I: "rows", J: "k", P: "m",
    aBase: (i) => `aOff + (${i}) * aStride`, aAt: (b, p) => `a[${b} + ${p}]!`,
    bBase: (j) => `bOff + ${j}`, bAt: (b) => `w[${b} + pk]!`,
    c: (i, j) => `c[cOff + (${i}) * cStride + ${j}]`,
    steps: [["pk", "k"]],
  },
  TN: {
    I: "m", J: "k", P: "rows",
    aBase: (i) => `aOff + ${i}`, aAt: (b) => `a[${b} + pa]!`,
    bBase: (j) => `bOff + ${j}`, bAt: (b) => `w[${b} + pb]!`,
    c: (i, j) => `c[cOff + (${i}) * k + ${j}]`,
    steps: [["pa", "aStride"], ["pb", "bStride"]],
  },
};

const DOC: Record<Form, string> = {
  NT: "C[i, j] (+)= Σ_p A[i, p] · W[j, p] for i < rows, j < m, p < k: rows of A times the stacked matrix W (m × k), transposed.",
  NN: "C[i, j] (+)= Σ_p A[i, p] · W[p, j] for i < rows, j < k, p < m: rows of A (the gradients of m outputs) times W (m × k).",
  TN: "C[i, j] (+)= Σ_p A[p, i] · V[p, j] for i < m, j < k, p < rows: a weight gradient (m × k) summed over rows.",
};

/** A block of r × c accumulators at (i, j): loads, multiply-adds, and the store. */
function block(f: Index, rs: number, cs: number, i: string, j: string, acc: string, pLoop: string): string[] {
  const ii = [...Array(rs).keys()], jj = [...Array(cs).keys()];
  const at = (base: string, k: number) => (k ? `${base} + ${k}` : base);
  const lines: string[] = [];
  for (const r of ii) lines.push(`const a${r} = ${f.aBase(at(i, r))};`);
  for (const c of jj) lines.push(`const b${c} = ${f.bBase(at(j, c))};`);
  lines.push(`let ${ii.flatMap((r) => jj.map((c) => `s${r}${c} = 0`)).join(", ")};`);
  lines.push(`${pLoop} {`);
  for (const r of ii) lines.push(`const x${r} = ${f.aAt(`a${r}`, "p")};`);
  for (const c of jj) lines.push(`const y${c} = ${f.bAt(`b${c}`, "p")};`);
  for (const r of ii) for (const c of jj) lines.push(`s${r}${c} += x${r} * y${c};`);
  lines.push("}");
  const store = (op: string) => ii.flatMap((r) => jj.map((c) => `${f.c(at(i, r), at(j, c))}${op} s${r}${c};`));
  lines.push(`if (${acc}) {`, ...store("! +="), "} else {", ...store(" ="), "}");
  return lines;
}

/** The body of one product function; its signature is in `gemmFunctions`. */
function body(form: Form, t: Tile, bits: 32 | 64): string {
  const f = FORMS[form];
  const R = t.rows, C = t.cols;
  const pLoop = `for (let p = 0${f.steps.map(([v]) => `, ${v} = 0`).join("")}; p < ${f.P}; p++${f.steps.map(([v, st]) => `, ${v} += ${st}`).join("")})`;
  // Columns go in panels whose share of the second operand (P × panel elements) stays in cache
  // (64 KB) while every row block passes over it.
  const panel = 65536 / (bits / 8);
  return [
    `const iEnd = ${f.I} - (${f.I} % ${R}), jEnd = ${f.J} - (${f.J} % ${C});`,
    `const panel = Math.max(${C}, Math.floor(${panel} / Math.max(1, ${f.P}) / ${C}) * ${C});`,
    `for (let j0 = 0; j0 < jEnd; j0 += panel) {`,
    `const j1 = Math.min(j0 + panel, jEnd);`,
    `// full ${R}×${C} tiles, then the last rows ${C} columns at a time`,
    `for (let i = 0; i < iEnd; i += ${R}) {`,
    `for (let j = j0; j < j1; j += ${C}) {`, ...block(f, R, C, "i", "j", "acc", pLoop), "}",
    "}",
    `for (let i = iEnd; i < ${f.I}; i++) {`,
    `for (let j = j0; j < j1; j += ${C}) {`, ...block(f, 1, C, "i", "j", "acc", pLoop), "}",
    "}",
    "}",
    `// the last columns: ${R} rows at a time, then one by one`,
    `for (let i = 0; i < iEnd; i += ${R}) {`,
    `for (let j = jEnd; j < ${f.J}; j++) {`, ...block(f, R, 1, "i", "j", "acc", pLoop), "}",
    "}",
    `for (let i = iEnd; i < ${f.I}; i++) {`,
    `for (let j = jEnd; j < ${f.J}; j++) {`, ...block(f, 1, 1, "i", "j", "acc", pLoop), "}",
    "}",
  ].join("\n");
}

export interface GemmFunction {
  readonly name: string;
  readonly doc: string;
  readonly params: readonly { name: string; type: string }[];
  readonly body: string;
}

/** The product functions for one precision. */
export function gemmFunctions(bits: 32 | 64, tile: Tile = DEFAULT_TILE): GemmFunction[] {
  const A = `Float${bits}Array`;
  return (["NT", "NN", "TN"] as const).map((form) => {
    const shape =
      form === "TN"
        ? [["m", "number"], ["k", "number"], ["rows", "number"], ["a", A], ["aOff", "number"], ["aStride", "number"], ["w", A], ["bOff", "number"], ["bStride", "number"], ["c", A], ["cOff", "number"], ["acc", "boolean"]]
        : [["rows", "number"], ["m", "number"], ["k", "number"], ["a", A], ["aOff", "number"], ["aStride", "number"], ["w", A], ["bOff", "number"], ["c", A], ["cOff", "number"], ["cStride", "number"], ["acc", "boolean"]];
    return { name: `gemm${form}${bits}`, doc: DOC[form], params: shape.map(([name, type]) => ({ name: name!, type: type! })), body: body(form, tile, bits) };
  });
}

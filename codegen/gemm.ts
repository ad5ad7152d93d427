// Register-blocked matrix products, generated for a tile (rows × columns of accumulators).
// The three forms the kernels need, all as "accumulate outer products over a reduction index p":
//   NT  C[i,j] = Σp A[i,p]·W[j,p]   forward: x·Wᵀ (rows × stacked gates)
//   NN  C[i,j] = Σp A[i,p]·W[p,j]   backward: g·W (gradient to the vector)
//   TN  C[i,j] += Σp A[p,i]·V[p,j]  backward: gᵀ·v (weight gradient, summed over rows)

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
  TN: "C[i, j] += Σ_p A[p, i] · V[p, j] for i < m, j < k, p < rows: a weight gradient (m × k) summed over rows.",
};

/** The body of one product function; its signature is in `gemmFunctions`. */
function body(form: Form, t: Tile): string {
  const f = FORMS[form];
  const R = t.rows, C = t.cols;
  const ii = [...Array(R).keys()], jj = [...Array(C).keys()];
  const acc = form === "TN" ? "true" : "acc";
  const lines: string[] = [];
  lines.push(`const iEnd = ${f.I} - (${f.I} % ${R}), jEnd = ${f.J} - (${f.J} % ${C});`);
  lines.push(`for (let i = 0; i < iEnd; i += ${R}) {`);
  for (const r of ii) lines.push(`const a${r} = ${f.aBase(`i + ${r}`)};`);
  lines.push(`for (let j = 0; j < jEnd; j += ${C}) {`);
  for (const c of jj) lines.push(`const b${c} = ${f.bBase(`j + ${c}`)};`);
  lines.push(`let ${ii.flatMap((r) => jj.map((c) => `s${r}${c} = 0`)).join(", ")};`);
  const pLoop = `for (let p = 0${f.steps.map(([v]) => `, ${v} = 0`).join("")}; p < ${f.P}; p++${f.steps.map(([v, st]) => `, ${v} += ${st}`).join("")})`;
  lines.push(`${pLoop} {`);
  for (const r of ii) lines.push(`const x${r} = ${f.aAt(`a${r}`, "p")};`);
  for (const c of jj) lines.push(`const y${c} = ${f.bAt(`b${c}`, "p")};`);
  for (const r of ii) for (const c of jj) lines.push(`s${r}${c} += x${r} * y${c};`);
  lines.push("}");
  lines.push(`if (${acc}) {`);
  for (const r of ii) for (const c of jj) lines.push(`${f.c(`i + ${r}`, `j + ${c}`)}! += s${r}${c};`);
  lines.push("} else {");
  for (const r of ii) for (const c of jj) lines.push(`${f.c(`i + ${r}`, `j + ${c}`)} = s${r}${c};`);
  lines.push("}");
  lines.push("}");
  lines.push("}");
  // the edges: rows past the last full tile, and columns past the last full tile
  lines.push(`for (let i = 0; i < ${f.I}; i++) {`);
  lines.push(`const a0 = ${f.aBase("i")};`);
  lines.push(`for (let j = i < iEnd ? jEnd : 0; j < ${f.J}; j++) {`);
  lines.push(`const b0 = ${f.bBase("j")};`);
  lines.push("let s = 0;");
  lines.push(`${pLoop} s += ${f.aAt("a0", "p")} * ${f.bAt("b0", "p")};`);
  lines.push(`if (${acc}) ${f.c("i", "j")}! += s; else ${f.c("i", "j")} = s;`);
  lines.push("}");
  lines.push("}");
  return lines.join("\n");
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
        ? [["m", "number"], ["k", "number"], ["rows", "number"], ["a", A], ["aOff", "number"], ["aStride", "number"], ["w", A], ["bOff", "number"], ["bStride", "number"], ["c", A], ["cOff", "number"]]
        : [["rows", "number"], ["m", "number"], ["k", "number"], ["a", A], ["aOff", "number"], ["aStride", "number"], ["w", A], ["bOff", "number"], ["c", A], ["cOff", "number"], ["cStride", "number"], ["acc", "boolean"]];
    return { name: `gemm${form}${bits}`, doc: DOC[form], params: shape.map(([name, type]) => ({ name: name!, type: type! })), body: body(form, tile) };
  });
}

// WebAssembly SIMD products: the text of one module, generated for a register tile and cache
// blocks, assembled, validated and optimized by binaryen (https://github.com/WebAssembly/binaryen,
// its JS build).
//
// Every product the kernels need (codegen/gemm.ts's NT, NN and TN forms) is one strided form,
//
//   C[i, j] (+)= Σ_p A[i·aRS + p·aPS] · B[p·bPS + j]      i < I, j < J, p < P
//
// with j contiguous in B and C, so columns go four (f32x4) or two (f64x2) to a vector. NN and TN
// fit the form as they are; NT (x·Wᵀ) runs on a transposed copy of W that the runtime makes once
// per call (runtime/memory.ts).
//
// The micro-kernel keeps R rows × V vectors of C in registers and, for each p, splats one element
// of A per row and multiplies it into the V vectors of B's row p. Around it, as in BLIS (Van Zee &
// van de Geijn, 2015): the sum runs in blocks of KC terms; for each block, a panel of NC columns
// of B and then a block of MC rows of A are copied ("packed") into a work area in the order the
// micro-kernel reads them, so its loads are sequential and stay in cache. Products with fewer than
// `directRows` rows (a recurrent step with a small batch) skip the packing: copying B would cost
// as much as using it.
//
// Either way each C element is computed the same way: per block of KC terms, start from C (or 0
// for the first block of a product that overwrites), add the block's products in order, a multiply
// then an add per term (no fused multiply-add), store. So splitting the rows or columns of C between
// threads, or taking the packed or the direct path, changes no bit of any result.
import { Worker } from "node:worker_threads";

export interface WasmTile {
  /** rows of C held in registers */
  readonly rows: number;
  /** vectors of C per row (4 floats or 2 doubles each) */
  readonly vectors: number;
  /** terms of the sum per block */
  readonly kc: number;
  /** rows of A per packed block (a multiple of rows) */
  readonly mc: number;
  /** columns of B per packed panel, in floats (a multiple of 4·vectors) */
  readonly nc: number;
  /** products with fewer rows than this are not packed */
  readonly directRows: number;
}

export const DEFAULT_WASM_TILE: WasmTile = { rows: 4, vectors: 2, kc: 256, mc: 64, nc: 512, directRows: 48 };

/** Floats (of either precision) of the work area one thread needs: packed B, packed A, an edge tile. */
export function workFloats(tile: WasmTile): number {
  return tile.kc * tile.nc + tile.mc * tile.kc + tile.rows * tile.vectors * 4;
}

type Bits = 32 | 64;

/** One precision's names in WebAssembly text: lanes per vector, the scalar and vector types, the splat load. */
export const precision = (bits: Bits) => ({
  bits,
  lanes: bits === 32 ? 4 : 2,
  bytes: bits / 8,
  shift: bits === 32 ? 2 : 3,
  f: `f${bits}`,
  v: bits === 32 ? "f32x4" : "f64x2",
  splat: bits === 32 ? "v128.load32_splat" : "v128.load64_splat",
});
const T = precision;

// A few helpers to keep the text below readable.
const get = (x: string) => `(local.get $${x})`;
const set = (x: string, e: string) => `(local.set $${x} ${e})`;
const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
const mul = (a: string, b: string) => `(i32.mul ${a} ${b})`;
const k = (n: number) => `(i32.const ${n})`;
const shl = (e: string, s: number) => (s ? `(i32.shl ${e} ${k(s)})` : e);
const min = (a: string, b: string) => `(select ${a} ${b} (i32.lt_s ${a} ${b}))`;
const range = (n: number) => [...Array(n).keys()];

function indent(lines: readonly string[], by = "  "): string[] {
  return lines.map((l) => (l ? by + l : l));
}

/** `for (x = from; x < to; x += step) body`, as a block and a loop. */
function forLoop(x: string, from: string, to: string, step: string, body: readonly string[]): string[] {
  return [
    set(x, from),
    `(block $${x}_done`,
    `  (loop $${x}_next`,
    `    (br_if $${x}_done (i32.ge_s ${get(x)} ${to}))`,
    ...indent(body, "    "),
    `    ${set(x, add(get(x), step))}`,
    `    (br $${x}_next)))`,
  ];
}

interface Fn {
  readonly doc: string[];
  readonly name: string;
  readonly exported: boolean;
  readonly params: readonly string[];
  readonly locals: readonly (readonly [string, string])[];
  readonly body: readonly string[];
}

function fnText(f: Fn): string[] {
  return [
    ...f.doc.map((d) => `;; ${d}`),
    `(func $${f.name}${f.exported ? ` (export "${f.name}")` : ""}`,
    `  ${f.params.map((p) => `(param $${p} i32)`).join(" ")}`,
    ...f.locals.map(([n, ty]) => `  (local $${n} ${ty})`),
    ...indent(f.body),
    ")",
  ];
}

// ------------------------------------------------------------------------------ the direct path

/**
 * One block of r rows × v vectors (or, `scalar`, one column) of C at (i, j), over the terms
 * p0 ≤ p < p1: the sums start from C when `load` is set, else from zero.
 */
function directBlock(bits: Bits, r: number, v: number, scalar: boolean): string[] {
  const t = T(bits);
  const pre = scalar ? "f" : "";
  const acc = (ri: number, vi: number) => `${pre}s${ri}_${vi}`;
  const X = `${pre}x`, Y = (vi: number) => `${pre}y${vi}`;
  const op = scalar ? t.f : t.v;
  const row = (ri: number) => (ri === 0 ? get("pc") : add(get("pc"), mul(k(ri), get("cRSb"))));
  const cAt = (ri: number, vi: number) => (scalar ? `(${t.f}.load ${row(ri)})` : `(v128.load offset=${16 * vi} ${row(ri)})`);
  const zero = scalar ? `(${t.f}.const 0)` : "(v128.const i64x2 0 0)";
  const lines: string[] = [`;; ${r} row${r > 1 ? "s" : ""} × ${scalar ? "1 column" : `${v * t.lanes} columns`}`];
  lines.push(set("pc", add(add(get("c"), mul(get("i"), get("cRSb"))), shl(get("j"), t.shift))));
  for (const ri of range(r)) for (const vi of range(v)) lines.push(set(acc(ri, vi), `(select ${cAt(ri, vi)} ${zero} ${get("load")})`));
  lines.push(set("pa", add(get("a"), add(mul(get("i"), get("aRSb")), mul(get("p0"), get("aPSb"))))));
  lines.push(set("pb", add(get("b"), add(mul(get("p0"), get("bPSb")), shl(get("j"), t.shift)))));
  lines.push(set("p", get("kc")));
  const body: string[] = [];
  for (const vi of range(v)) body.push(set(Y(vi), scalar ? `(${t.f}.load ${get("pb")})` : `(v128.load offset=${16 * vi} ${get("pb")})`));
  for (const ri of range(r)) {
    const at = ri === 0 ? get("pa") : add(get("pa"), get(`aR${ri}`));
    body.push(set(X, scalar ? `(${t.f}.load ${at})` : `(${t.splat} ${at})`));
    for (const vi of range(v)) body.push(set(acc(ri, vi), `(${op}.add ${get(acc(ri, vi))} (${op}.mul ${get(X)} ${get(Y(vi))}))`));
  }
  body.push(set("pa", add(get("pa"), get("aPSb"))), set("pb", add(get("pb"), get("bPSb"))));
  lines.push("(loop $p_next", ...indent(body), `  (br_if $p_next (local.tee $p (i32.sub ${get("p")} ${k(1)}))))`);
  for (const ri of range(r))
    for (const vi of range(v)) lines.push(scalar ? `(${t.f}.store ${row(ri)} ${get(acc(ri, vi))})` : `(v128.store offset=${16 * vi} ${row(ri)} ${get(acc(ri, vi))})`);
  return lines;
}

function directFunction(bits: Bits, tile: WasmTile): Fn {
  const t = T(bits);
  const R = tile.rows, V = tile.vectors, W = V * t.lanes;
  const body: string[] = [
    ";; strides in bytes, and the offsets of rows 1… of a tile in A",
    set("aRSb", shl(get("aRS"), t.shift)), set("aPSb", shl(get("aPS"), t.shift)),
    set("bPSb", shl(get("bPS"), t.shift)), set("cRSb", shl(get("cRS"), t.shift)),
    ...range(R).slice(1).map((ri) => set(`aR${ri}`, mul(k(ri), get("aRSb")))),
    `;; the rows and columns that fill whole ${R} × ${W} tiles, then whole vectors`,
    set("iEnd", `(i32.sub ${get("I")} (i32.rem_u ${get("I")} ${k(R)}))`),
    set("jEnd", `(i32.sub ${get("J")} (i32.rem_u ${get("J")} ${k(W)}))`),
    set("j4End", `(i32.sub ${get("J")} (i32.rem_u ${get("J")} ${k(t.lanes)}))`),
    ...forLoop("p0", k(0), get("P"), k(tile.kc), [
      set("kc", min(k(tile.kc), `(i32.sub ${get("P")} ${get("p0")})`)),
      set("load", `(i32.or ${get("acc")} (i32.gt_s ${get("p0")} ${k(0)}))`),
      ...forLoop("i", k(0), get("iEnd"), k(R), forLoop("j", k(0), get("jEnd"), k(W), directBlock(bits, R, V, false))),
      ...forLoop("i", get("iEnd"), get("I"), k(1), forLoop("j", k(0), get("jEnd"), k(W), directBlock(bits, 1, V, false))),
      ...forLoop("i", k(0), get("iEnd"), k(R), forLoop("j", get("jEnd"), get("j4End"), k(t.lanes), directBlock(bits, R, 1, false))),
      ...forLoop("i", get("iEnd"), get("I"), k(1), forLoop("j", get("jEnd"), get("j4End"), k(t.lanes), directBlock(bits, 1, 1, false))),
      ...forLoop("i", k(0), get("iEnd"), k(R), forLoop("j", get("j4End"), get("J"), k(1), directBlock(bits, R, 1, true))),
      ...forLoop("i", get("iEnd"), get("I"), k(1), forLoop("j", get("j4End"), get("J"), k(1), directBlock(bits, 1, 1, true))),
    ]),
  ];
  const i32s = ["aRSb", "aPSb", "bPSb", "cRSb", ...range(R).slice(1).map((ri) => `aR${ri}`), "iEnd", "jEnd", "j4End", "p0", "kc", "load", "i", "j", "p", "pa", "pb", "pc"];
  const v128s = [...range(R).flatMap((ri) => range(V).map((vi) => `s${ri}_${vi}`)), "x", ...range(V).map((vi) => `y${vi}`)];
  const floats = [...range(R).map((ri) => `fs${ri}_0`), "fx", "fy0"];
  return {
    doc: [`The product without packing (few rows): tiles of ${R} × ${W} read A and B where they are.`],
    name: `direct${bits}`, exported: false,
    params: ["I", "J", "P", "a", "aRS", "aPS", "b", "bPS", "c", "cRS", "acc"],
    locals: [...i32s.map((n) => [n, "i32"] as const), ...v128s.map((n) => [n, "v128"] as const), ...floats.map((n) => [n, t.f] as const)],
    body,
  };
}

// ------------------------------------------------------------------------------ the packed path

/** B[p, jr + l] for p < kc, l < W, panel after panel of W columns (zero past nc). */
function packBFunction(bits: Bits, tile: WasmTile): Fn {
  const t = T(bits);
  const V = tile.vectors, W = V * t.lanes;
  const full = [
    ...range(V).map((vi) => `(v128.store offset=${16 * vi} ${get("dst")} (v128.load offset=${16 * vi} ${get("src")}))`),
  ];
  // past the last column nothing is loaded (it may be past the end of memory)
  const partial = range(W).map((l) =>
    `(${t.f}.store offset=${l * t.bytes} ${get("dst")} (if (result ${t.f}) (i32.lt_s ${k(l)} ${get("cols")}) (then (${t.f}.load offset=${l * t.bytes} ${get("src")})) (else (${t.f}.const 0))))`);
  return {
    doc: [`Pack kc rows × nc columns of B (row stride bPSb bytes) into panels of ${W} columns, each kc × ${W}, zero-padded.`],
    name: `packB${bits}`, exported: false,
    params: ["kc", "nc", "b", "bPSb", "dst"],
    locals: [["jr", "i32"], ["p", "i32"], ["src", "i32"], ["cols", "i32"]],
    body: forLoop("jr", k(0), get("nc"), k(W), [
      set("cols", `(i32.sub ${get("nc")} ${get("jr")})`),
      set("src", add(get("b"), shl(get("jr"), t.shift))),
      ...forLoop("p", k(0), get("kc"), k(1), [
        `(if (i32.ge_s ${get("cols")} ${k(W)}) (then`,
        ...indent(full),
        ") (else",
        ...indent(partial),
        "))",
        set("src", add(get("src"), get("bPSb"))),
        set("dst", add(get("dst"), k(W * t.bytes))),
      ]),
    ]),
  };
}

/** A[ir + r, p] for r < R, p < kc, block after block of R rows (zero past mc). */
function packAFunction(bits: Bits, tile: WasmTile): Fn {
  const t = T(bits);
  const R = tile.rows;
  const at = (r: number) => (r === 0 ? get("src") : add(get("src"), mul(k(r), get("aRSb"))));
  const elem = (r: number) => `(${t.f}.store offset=${r * t.bytes} ${get("dst")} (${t.f}.load ${at(r)}))`;
  return {
    doc: [`Pack mc rows × kc terms of A (strides aRSb, aPSb bytes) into blocks of ${R} rows, each kc × ${R}, zero-padded.`],
    name: `packA${bits}`, exported: false,
    params: ["kc", "mc", "a", "aRSb", "aPSb", "dst"],
    locals: [["ir", "i32"], ["p", "i32"], ["src", "i32"], ["rows", "i32"]],
    body: forLoop("ir", k(0), get("mc"), k(R), [
      set("rows", `(i32.sub ${get("mc")} ${get("ir")})`),
      set("src", add(get("a"), mul(get("ir"), get("aRSb")))),
      `(if (i32.ge_s ${get("rows")} ${k(R)}) (then`,
      ...indent(forLoop("p", k(0), get("kc"), k(1), [...range(R).map((r) => elem(r)), set("src", add(get("src"), get("aPSb"))), set("dst", add(get("dst"), k(R * t.bytes)))])),
      ") (else",
      // past the last row nothing is loaded (it may be past the end of memory)
      ...indent(forLoop("p", k(0), get("kc"), k(1), [...range(R).map((r) => `(${t.f}.store offset=${r * t.bytes} ${get("dst")} (if (result ${t.f}) (i32.lt_s ${k(r)} ${get("rows")}) (then (${t.f}.load ${at(r)})) (else (${t.f}.const 0))))`), set("src", add(get("src"), get("aPSb"))), set("dst", add(get("dst"), k(R * t.bytes)))])),
      "))",
    ]),
  };
}

/** The micro-kernel: R × W of C at c (row stride cRSb bytes) over kc packed terms. */
function tileFunction(bits: Bits, tile: WasmTile): Fn {
  const t = T(bits);
  const R = tile.rows, V = tile.vectors, W = V * t.lanes;
  const acc = (ri: number, vi: number) => `s${ri}_${vi}`;
  const row = (ri: number) => (ri === 0 ? get("c") : add(get("c"), mul(k(ri), get("cRSb"))));
  const body: string[] = [];
  for (const ri of range(R)) for (const vi of range(V)) body.push(set(acc(ri, vi), `(select (v128.load offset=${16 * vi} ${row(ri)}) (v128.const i64x2 0 0) ${get("load")})`));
  const inner: string[] = [];
  for (const vi of range(V)) inner.push(set(`y${vi}`, `(v128.load offset=${16 * vi} ${get("bp")})`));
  for (const ri of range(R)) {
    inner.push(set("x", `(${t.splat} offset=${ri * t.bytes} ${get("ap")})`));
    for (const vi of range(V)) inner.push(set(acc(ri, vi), `(${t.v}.add ${get(acc(ri, vi))} (${t.v}.mul ${get("x")} ${get(`y${vi}`)}))`));
  }
  inner.push(set("ap", add(get("ap"), k(R * t.bytes))), set("bp", add(get("bp"), k(W * t.bytes))));
  body.push("(loop $p_next", ...indent(inner), `  (br_if $p_next (local.tee $kc (i32.sub ${get("kc")} ${k(1)}))))`);
  for (const ri of range(R)) for (const vi of range(V)) body.push(`(v128.store offset=${16 * vi} ${row(ri)} ${get(acc(ri, vi))})`);
  return {
    doc: [`The micro-kernel: ${R} × ${W} of C (from C when load is set, else from zero) plus kc packed terms, in registers.`],
    name: `tile${bits}`, exported: false,
    params: ["kc", "ap", "bp", "c", "cRSb", "load"],
    locals: [...range(R).flatMap((ri) => range(V).map((vi) => [acc(ri, vi), "v128"] as const)), ["x", "v128"], ...range(V).map((vi) => [`y${vi}`, "v128"] as const)],
    body,
  };
}

/** A tile at the edge (rows × cols of it in C): through an R × W scratch tile. */
function edgeFunction(bits: Bits, tile: WasmTile): Fn {
  const t = T(bits);
  const R = tile.rows, W = tile.vectors * t.lanes;
  const cAt = add(get("c"), add(mul(get("r"), get("cRSb")), shl(get("l"), t.shift)));
  const tAt = add(get("tmp"), shl(add(mul(get("r"), k(W)), get("l")), t.shift));
  return {
    doc: ["A tile that C does not fill: copied to a scratch tile, computed there, and copied back."],
    name: `edge${bits}`, exported: false,
    params: ["kc", "ap", "bp", "c", "cRSb", "load", "rows", "cols", "tmp"],
    locals: [["r", "i32"], ["l", "i32"]],
    body: [
      ...forLoop("r", k(0), k(R), k(1), forLoop("l", k(0), k(W), k(1), [
        `(${t.f}.store ${tAt} (if (result ${t.f}) (i32.and ${get("load")} (i32.and (i32.lt_s ${get("r")} ${get("rows")}) (i32.lt_s ${get("l")} ${get("cols")}))) (then (${t.f}.load ${cAt})) (else (${t.f}.const 0))))`,
      ])),
      `(call $tile${bits} ${get("kc")} ${get("ap")} ${get("bp")} ${get("tmp")} ${k(W * t.bytes)} ${k(1)})`,
      ...forLoop("r", k(0), get("rows"), k(1), forLoop("l", k(0), get("cols"), k(1), [`(${t.f}.store ${cAt} (${t.f}.load ${tAt}))`])),
    ],
  };
}

function productFunction(bits: Bits, tile: WasmTile): Fn {
  const t = T(bits);
  const R = tile.rows, W = tile.vectors * t.lanes;
  const { kc: KC, mc: MC, nc: NC } = tile;
  return {
    doc: [
      `C[i, j] (+)= Σ_p A[i·aRS + p·aPS] · B[p·bPS + j] for i < I, j < J, p < P, in ${bits}-bit floats.`,
      "a, b, c and work are byte addresses, strides count elements; acc ≠ 0 adds the products to C.",
      `work: ${workFloats(tile)} floats for this call alone (packed B, packed A, an edge tile).`,
    ],
    name: `mm${bits}`, exported: true,
    params: ["I", "J", "P", "a", "aRS", "aPS", "b", "bPS", "c", "cRS", "acc", "work"],
    locals: ["wa", "tmp", "j0", "nc", "p0", "kc", "load", "i0", "mc", "jr", "ir", "cRSb", "cp", "i", "j"].map((n) => [n, "i32"] as const),
    body: [
      ";; no terms: C is zero (or unchanged)",
      `(if (i32.eqz ${get("P")}) (then`,
      `  (if (i32.eqz ${get("acc")}) (then`,
      ...indent(forLoop("i", k(0), get("I"), k(1), forLoop("j", k(0), get("J"), k(1), [`(${t.f}.store ${add(get("c"), shl(add(mul(get("i"), get("cRS")), get("j")), t.shift))} (${t.f}.const 0))`])), "    "),
      "  ))",
      "  (return)))",
      `(if (i32.lt_s ${get("I")} ${k(tile.directRows)}) (then`,
      `  (call $direct${bits} ${["I", "J", "P", "a", "aRS", "aPS", "b", "bPS", "c", "cRS", "acc"].map(get).join(" ")})`,
      "  (return)))",
      set("wa", add(get("work"), k(KC * NC * t.bytes))),
      set("tmp", add(get("wa"), k(MC * KC * t.bytes))),
      set("cRSb", shl(get("cRS"), t.shift)),
      ...forLoop("j0", k(0), get("J"), k(NC), [
        set("nc", min(k(NC), `(i32.sub ${get("J")} ${get("j0")})`)),
        ...forLoop("p0", k(0), get("P"), k(KC), [
          set("kc", min(k(KC), `(i32.sub ${get("P")} ${get("p0")})`)),
          set("load", `(i32.or ${get("acc")} (i32.gt_s ${get("p0")} ${k(0)}))`),
          `(call $packB${bits} ${get("kc")} ${get("nc")} ${add(get("b"), shl(add(mul(get("p0"), get("bPS")), get("j0")), t.shift))} ${shl(get("bPS"), t.shift)} ${get("work")})`,
          ...forLoop("i0", k(0), get("I"), k(MC), [
            set("mc", min(k(MC), `(i32.sub ${get("I")} ${get("i0")})`)),
            `(call $packA${bits} ${get("kc")} ${get("mc")} ${add(get("a"), shl(add(mul(get("i0"), get("aRS")), mul(get("p0"), get("aPS"))), t.shift))} ${shl(get("aRS"), t.shift)} ${shl(get("aPS"), t.shift)} ${get("wa")})`,
            ...forLoop("jr", k(0), get("nc"), k(W), forLoop("ir", k(0), get("mc"), k(R), [
              set("cp", add(get("c"), shl(add(mul(add(get("i0"), get("ir")), get("cRS")), add(get("j0"), get("jr"))), t.shift))),
              `(if (i32.and (i32.le_s ${add(get("ir"), k(R))} ${get("mc")}) (i32.le_s ${add(get("jr"), k(W))} ${get("nc")}))`,
              `  (then (call $tile${bits} ${get("kc")} ${add(get("wa"), shl(mul(get("ir"), get("kc")), t.shift))} ${add(get("work"), shl(mul(get("jr"), get("kc")), t.shift))} ${get("cp")} ${get("cRSb")} ${get("load")}))`,
              `  (else (call $edge${bits} ${get("kc")} ${add(get("wa"), shl(mul(get("ir"), get("kc")), t.shift))} ${add(get("work"), shl(mul(get("jr"), get("kc")), t.shift))} ${get("cp")} ${get("cRSb")} ${get("load")} ${min(k(R), `(i32.sub ${get("mc")} ${get("ir")})`)} ${min(k(W), `(i32.sub ${get("nc")} ${get("jr")})`)} ${get("tmp")})))`,
            ])),
          ]),
        ]),
      ]),
    ],
  };
}

/** dst[j·rows + i] = src[i·srcRS + j] for i < rows, j < cols: a row-major block, transposed. */
function transposeFunction(bits: Bits): Fn {
  const t = T(bits);
  return {
    doc: [`dst[j·rows + i] = src[i·srcRS + j] for i < rows, j < cols (${bits}-bit): W becomes Wᵀ for the NT form.`],
    name: `transpose${bits}`, exported: true,
    params: ["rows", "cols", "src", "srcRS", "dst"],
    locals: [["i", "i32"], ["j", "i32"]],
    body: forLoop("i", k(0), get("rows"), k(1), forLoop("j", k(0), get("cols"), k(1), [
      `(${t.f}.store ${add(get("dst"), shl(add(mul(get("j"), get("rows")), get("i")), t.shift))}`,
      `  (${t.f}.load ${add(get("src"), shl(add(mul(get("i"), get("srcRS")), get("j")), t.shift))}))`,
    ])),
  };
}

function checkTile(tile: WasmTile): void {
  const ok = (n: number) => Number.isInteger(n) && n >= 1;
  if (![tile.rows, tile.vectors, tile.kc, tile.mc, tile.nc, tile.directRows].every(ok)) throw new RangeError(`wasm tile: every field must be a positive integer: ${JSON.stringify(tile)}`);
  if (tile.mc % tile.rows) throw new RangeError(`wasm tile: mc (${tile.mc}) must be a multiple of rows (${tile.rows})`);
  if (tile.nc % (tile.vectors * 4)) throw new RangeError(`wasm tile: nc (${tile.nc}) must be a multiple of 4·vectors (${tile.vectors * 4})`);
}

/** The module's text. Its memory is imported shared, with a maximum (so one byte tells the variants apart). */
export function wasmText(tile: WasmTile = DEFAULT_WASM_TILE): string {
  checkTile(tile);
  const fns = ([32, 64] as const).flatMap((bits) => [productFunction(bits, tile), directFunction(bits, tile), packBFunction(bits, tile), packAFunction(bits, tile), tileFunction(bits, tile), edgeFunction(bits, tile), transposeFunction(bits)]);
  return [
    `;; Generated by cellforge from codegen/gemm-wasm.ts: WebAssembly SIMD (128-bit) products, register tile ${tile.rows} rows × ${tile.vectors} vectors,`,
    `;; blocks kc ${tile.kc}, mc ${tile.mc}, nc ${tile.nc}; products under ${tile.directRows} rows unpacked.`,
    ";; Do not edit: regenerate with `npm run generate` (check with `npm run generate -- --check`).",
    ";; runtime/gemm-wasm.ts holds the binary binaryen makes of this text.",
    "(module",
    `  (import "env" "memory" (memory 1 65536 shared))`,
    ...indent(fns.flatMap((f) => [...fnText(f), ""])),
    ")",
    "",
  ].join("\n");
}

export interface WasmBuild {
  /** the module's text, as generated (comments and all) */
  readonly text: string;
  /** the optimized binary; its memory is imported as shared (the runtime clears the flag for one thread) */
  readonly binary: Uint8Array;
}

let assembler: Worker | null = null;
const pending = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
let nextRequest = 0;

/**
 * Text to an optimized binary, with binaryen (parse, validate, optimize at -O3, validate again,
 * emit); rejects if the text or the result does not validate. binaryen runs on a worker thread
 * (codegen/binaryen-worker.js), kept for the process and released when nothing is pending.
 */
export function assemble(text: string): Promise<Uint8Array> {
  if (!assembler) {
    assembler = new Worker(new URL("./binaryen-worker.js", import.meta.url), { execArgv: [] });
    assembler.on("message", ({ id, binary, error }: { id: number; binary?: Uint8Array; error?: string }) => {
      const p = pending.get(id)!;
      pending.delete(id);
      if (pending.size === 0) assembler?.unref();
      if (error !== undefined) p.reject(new Error(`internal: binaryen: ${error}`));
      else p.resolve(binary!);
    });
    assembler.on("error", (e) => { for (const p of pending.values()) p.reject(e); pending.clear(); assembler = null; });
  }
  const id = nextRequest++;
  assembler.ref();
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    assembler!.postMessage({ id, text });
  });
}

export async function buildWasm(tile: WasmTile = DEFAULT_WASM_TILE): Promise<WasmBuild> {
  const text = wasmText(tile);
  return { text, binary: await assemble(text) };
}

// WebAssembly SIMD products: the text of one module, generated for a register tile, assembled,
// validated and optimized by binaryen (https://github.com/WebAssembly/binaryen, its JS build).
//
// Every product the kernels need (codegen/gemm.ts's NT, NN and TN forms) is one strided form,
//
//   C[i, j] (+)= Σ_p A[i·aRS + p·aPS] · B[p·bPS + j]      i < I, j < J, p < P
//
// with j contiguous in B and C, so columns go four (f32x4) or two (f64x2) to a vector. The
// micro-kernel keeps R rows × V vectors of C in registers and, for each p, splats one element of
// A per row and multiplies it into the V vectors of B's row p. NN and TN fit the form as they are;
// NT (x·Wᵀ) runs on a transposed copy of W that the runtime makes once per call (src/wasm.ts).
//
// Each C element is one sum over p in order, a multiply then an add per term (no fused
// multiply-add), exactly as the TypeScript products do it: the float64 results equal the
// TypeScript kernels' bit for bit, and splitting the rows or columns of C between threads
// changes no result.
import binaryen from "binaryen";

export interface WasmTile {
  /** rows of C held in registers */
  readonly rows: number;
  /** vectors of C per row (4 floats or 2 doubles each) */
  readonly vectors: number;
}

export const DEFAULT_WASM_TILE: WasmTile = { rows: 4, vectors: 2 };

type Bits = 32 | 64;

const T = (bits: Bits) => ({
  lanes: bits === 32 ? 4 : 2,
  bytes: bits / 8,
  shift: bits === 32 ? 2 : 3,
  f: `f${bits}`,
  v: bits === 32 ? "f32x4" : "f64x2",
  splat: bits === 32 ? "v128.load32_splat" : "v128.load64_splat",
});

/** A few helpers to keep the text below readable. */
const get = (x: string) => `(local.get $${x})`;
const set = (x: string, e: string) => `(local.set $${x} ${e})`;
const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
const mul = (a: string, b: string) => `(i32.mul ${a} ${b})`;

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

/**
 * One block of r rows × v vectors of C at (i, j): the accumulators start at zero, run over p,
 * and are stored (added to C when `acc` is set). With `scalar`, one column without SIMD.
 */
function block(bits: Bits, r: number, v: number, scalar: boolean): string[] {
  const t = T(bits);
  const ty = scalar ? t.f : "v128";
  const zero = scalar ? `(${t.f}.const 0)` : "(v128.const i64x2 0 0)";
  // scalar blocks keep their sums in float locals (prefixed f), vector blocks in v128 locals
  const pre = scalar ? "f" : "";
  const acc = (ri: number, vi: number) => `${pre}s${ri}_${vi}`;
  const X = `${pre}x`, Y = (vi: number) => `${pre}y${vi}`;
  const lines: string[] = [];
  for (let ri = 0; ri < r; ri++) for (let vi = 0; vi < v; vi++) lines.push(set(acc(ri, vi), zero));
  // pa: A at (i, p); pb: B at (p, j)
  lines.push(set("pa", add(get("a"), mul(get("i"), get("aRSb")))));
  lines.push(set("pb", add(get("b"), `(i32.shl ${get("j")} (i32.const ${t.shift}))`)));
  lines.push(set("p", get("P")));
  const body: string[] = [];
  for (let vi = 0; vi < v; vi++) body.push(set(Y(vi), scalar ? `(${t.f}.load ${get("pb")})` : `(v128.load offset=${16 * vi} ${get("pb")})`));
  for (let ri = 0; ri < r; ri++) {
    const at = ri === 0 ? get("pa") : add(get("pa"), get(`aR${ri}`));
    body.push(set(X, scalar ? `(${t.f}.load ${at})` : `(${t.splat} ${at})`));
    const op = scalar ? t.f : t.v;
    for (let vi = 0; vi < v; vi++) body.push(set(acc(ri, vi), `(${op}.add ${get(acc(ri, vi))} (${op}.mul ${get(X)} ${get(Y(vi))}))`));
  }
  body.push(set("pa", add(get("pa"), get("aPSb"))), set("pb", add(get("pb"), get("bPSb"))));
  lines.push(
    "(if (i32.gt_s (local.get $p) (i32.const 0))",
    "  (then",
    "    (loop $p_next",
    ...indent(body, "      "),
    `      (br_if $p_next (local.tee $p (i32.sub ${get("p")} (i32.const 1)))))))`,
  );
  // store: C at (i + ri, j + vi·lanes)
  lines.push(set("pc", add(add(get("c"), mul(get("i"), get("cRSb"))), `(i32.shl ${get("j")} (i32.const ${t.shift}))`)));
  for (let ri = 0; ri < r; ri++) {
    const row = ri === 0 ? get("pc") : add(get("pc"), mul(`(i32.const ${ri})`, get("cRSb")));
    for (let vi = 0; vi < v; vi++) {
      const off = scalar ? 0 : 16 * vi;
      const load = scalar ? `(${t.f}.load ${row})` : `(v128.load offset=${off} ${row})`;
      const sum = `(${scalar ? t.f : t.v}.add ${load} ${get(acc(ri, vi))})`;
      const store = scalar ? `${t.f}.store` : `v128.store offset=${off}`;
      lines.push(`(if ${get("acc")} (then (${store} ${row} ${sum})) (else (${store} ${row} ${get(acc(ri, vi))})))`);
    }
  }
  lines.splice(0, 0, `;; ${r} row${r > 1 ? "s" : ""} × ${scalar ? "1 column" : `${v * t.lanes} columns`}`);
  return lines;
}

/** The product function for one precision: see the form at the top of this file. */
function productFunction(bits: Bits, tile: WasmTile): string[] {
  const t = T(bits);
  const R = tile.rows, V = tile.vectors, W = V * t.lanes;
  const accs = [...Array(R).keys()].flatMap((ri) => [...Array(V).keys()].map((vi) => `s${ri}_${vi}`));
  const body: string[] = [
    ";; strides in bytes, and the offsets of rows 1… of a tile in A",
    set("aRSb", `(i32.shl ${get("aRS")} (i32.const ${t.shift}))`),
    set("aPSb", `(i32.shl ${get("aPS")} (i32.const ${t.shift}))`),
    set("bPSb", `(i32.shl ${get("bPS")} (i32.const ${t.shift}))`),
    set("cRSb", `(i32.shl ${get("cRS")} (i32.const ${t.shift}))`),
    ...[...Array(R).keys()].slice(1).map((ri) => set(`aR${ri}`, mul(`(i32.const ${ri})`, get("aRSb")))),
    `;; the rows and columns that fill whole ${R} × ${W} tiles`,
    set("iEnd", `(i32.sub ${get("I")} (i32.rem_u ${get("I")} (i32.const ${R})))`),
    set("jEnd", `(i32.sub ${get("J")} (i32.rem_u ${get("J")} (i32.const ${W})))`),
    set("j4End", `(i32.sub ${get("J")} (i32.rem_u ${get("J")} (i32.const ${t.lanes})))`),
    `;; columns in panels whose rows of B (P × panel) stay in a 128 KB cache share as every row block passes`,
    set("panel", `(i32.mul (i32.const ${W}) (i32.div_u (i32.const ${Math.floor(131072 / t.bytes / W)}) (select ${get("P")} (i32.const 1) (i32.gt_s ${get("P")} (i32.const 0)))))`),
    `(if (i32.lt_s ${get("panel")} (i32.const ${W})) (then ${set("panel", `(i32.const ${W})`)}))`,
    ...forLoop("j0", "(i32.const 0)", get("jEnd"), get("panel"), [
      set("j1", `(select ${get("jEnd")} ${add(get("j0"), get("panel"))} (i32.lt_s ${get("jEnd")} ${add(get("j0"), get("panel"))}))`),
      ...forLoop("i", "(i32.const 0)", get("iEnd"), `(i32.const ${R})`, forLoop("j", get("j0"), get("j1"), `(i32.const ${W})`, block(bits, R, V, false))),
      ...forLoop("i", get("iEnd"), get("I"), "(i32.const 1)", forLoop("j", get("j0"), get("j1"), `(i32.const ${W})`, block(bits, 1, V, false))),
    ]),
    `;; the last columns: a vector (${t.lanes}) at a time, then one by one`,
    ...forLoop("i", "(i32.const 0)", get("iEnd"), `(i32.const ${R})`, forLoop("j", get("jEnd"), get("j4End"), `(i32.const ${t.lanes})`, block(bits, R, 1, false))),
    ...forLoop("i", get("iEnd"), get("I"), "(i32.const 1)", forLoop("j", get("jEnd"), get("j4End"), `(i32.const ${t.lanes})`, block(bits, 1, 1, false))),
    ...forLoop("i", "(i32.const 0)", get("iEnd"), `(i32.const ${R})`, forLoop("j", get("j4End"), get("J"), "(i32.const 1)", block(bits, R, 1, true))),
    ...forLoop("i", get("iEnd"), get("I"), "(i32.const 1)", forLoop("j", get("j4End"), get("J"), "(i32.const 1)", block(bits, 1, 1, true))),
  ];
  const i32Locals = ["aRSb", "aPSb", "bPSb", "cRSb", ...[...Array(R).keys()].slice(1).map((ri) => `aR${ri}`), "iEnd", "jEnd", "j4End", "panel", "j0", "j1", "i", "j", "p", "pa", "pb", "pc"];
  const vLocals = [...accs, "x", ...[...Array(V).keys()].map((vi) => `y${vi}`)];
  const fLocals = [...[...Array(R).keys()].map((ri) => `fs${ri}_0`), "fx", "fy0"];
  return [
    `;; C[i, j] (+)= Σ_p A[i·aRS + p·aPS] · B[p·bPS + j] for i < I, j < J, p < P, in ${bits}-bit floats.`,
    ";; a, b, c are byte addresses; strides count elements; acc ≠ 0 adds the products to C.",
    `(func $mm${bits} (export "mm${bits}")`,
    `  (param $I i32) (param $J i32) (param $P i32)`,
    `  (param $a i32) (param $aRS i32) (param $aPS i32)`,
    `  (param $b i32) (param $bPS i32)`,
    `  (param $c i32) (param $cRS i32) (param $acc i32)`,
    ...i32Locals.map((l) => `  (local $${l} i32)`),
    ...vLocals.map((l) => `  (local $${l} v128)`),
    ...fLocals.map((l) => `  (local $${l} f${bits})`),
    ...indent(body),
    ")",
  ];
}

/** dst[j·rows + i] = src[i·srcRS + j] for i < rows, j < cols: a row-major block, transposed. */
function transposeFunction(bits: Bits): string[] {
  const t = T(bits);
  return [
    `;; dst[j·rows + i] = src[i·srcRS + j] for i < rows, j < cols (${bits}-bit): W (cols of p) becomes Wᵀ for the NT form.`,
    `(func $transpose${bits} (export "transpose${bits}")`,
    "  (param $rows i32) (param $cols i32) (param $src i32) (param $srcRS i32) (param $dst i32)",
    "  (local $i i32) (local $j i32)",
    ...indent(forLoop("i", "(i32.const 0)", get("rows"), "(i32.const 1)", forLoop("j", "(i32.const 0)", get("cols"), "(i32.const 1)", [
      `(${t.f}.store (i32.add ${get("dst")} (i32.shl ${add(mul(get("j"), get("rows")), get("i"))} (i32.const ${t.shift})))`,
      `  (${t.f}.load (i32.add ${get("src")} (i32.shl ${add(mul(get("i"), get("srcRS")), get("j"))} (i32.const ${t.shift})))))`,
    ]))),
    ")",
  ];
}

/** The module's text. `shared`: the memory is imported as shared (for worker threads). */
export function wasmText(tile: WasmTile = DEFAULT_WASM_TILE, shared = false): string {
  return [
    `;; Generated by cellforge from codegen/wasm.ts: WebAssembly SIMD (128-bit) products, register tile ${tile.rows} rows × ${tile.vectors} vectors.`,
    ";; Do not edit: regenerate with `npm run generate` (check with `npm run generate -- --check`).",
    ";; generated/gemm-wasm.ts holds the binaries binaryen makes of this text (and of the same with a shared memory).",
    "(module",
    `  (import "env" "memory" (memory 1${shared ? " 65536 shared" : ""}))`,
    ...indent([...productFunction(32, tile), ...productFunction(64, tile), ...transposeFunction(32), ...transposeFunction(64)]),
    ")",
    "",
  ].join("\n");
}

export interface WasmBuild {
  /** the module's text, as generated (comments and all) */
  readonly text: string;
  /** the optimized binary, memory not shared */
  readonly binary: Uint8Array;
  /** the same with the memory imported as shared, for worker threads */
  readonly sharedBinary: Uint8Array;
}

function assemble(text: string): Uint8Array {
  const m = binaryen.parseText(text);
  try {
    m.setFeatures(binaryen.Features.MVP | binaryen.Features.SIMD128 | binaryen.Features.Atomics | binaryen.Features.BulkMemory | binaryen.Features.MutableGlobals | binaryen.Features.SignExt);
    if (!m.validate()) throw new Error("internal: the generated WebAssembly does not validate");
    binaryen.setOptimizeLevel(3);
    binaryen.setShrinkLevel(0);
    m.optimize();
    if (!m.validate()) throw new Error("internal: the optimized WebAssembly does not validate");
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

export function buildWasm(tile: WasmTile = DEFAULT_WASM_TILE): WasmBuild {
  const text = wasmText(tile, false);
  return { text, binary: assemble(text), sharedBinary: assemble(wasmText(tile, true)) };
}

// The fused elementwise loops of a cell's plan, in WebAssembly SIMD: one function per loop stage,
// per precision, in a module of the cell's own (generated/<cell>.wat).
//
// A loop stage (codegen/schedule.ts) walks rows b (examples, or steps × examples) and, within a row,
// elements i of a vector, computing each item's expression tree and storing it. Here the i loop
// goes four floats (f32x4) or two doubles (f64x2) at a time, then one at a time for the rest; the
// TypeScript side passes each place's base address and row stride, the sizes the expressions use,
// and the rows [b0, b1) to do, so the rows of one loop can be split between threads.
//
// The transcendental functions are computed here (no calls out to JavaScript): exp by range
// reduction (x = k·ln 2 + r, ln 2 in two parts) and a Taylor polynomial, log from the exponent and
// 2·atanh((m − 1)/(m + 1)) of the mantissa, tanh, sigmoid, softplus and pow from those. In float64
// they are within a couple of ulps of Math.exp and Math.log; the scalar path calls the vector
// functions on a splat, so a value never depends on where in a vector it falls.
//
// A loop qualifies when every op in it has a WebAssembly form: each op's form is in its block of the
// op table (src/ops.ts), written with the helpers here; an op without one says why there (a
// user-defined activation, a mathjs expression), and its loops stay in TypeScript on both backends.
//
// The whole-vector ops of the plan (sums, broadcasts, slices, pads) join the loops in the same
// module, numbered with them: codegen/wasmops.ts.
import { wasmForm } from "../src/ops.ts";
import type { Expr, Operand, Place, Stage, Store } from "./schedule.ts";
import { ZERO } from "./ix.ts";
import { precision } from "./gemm-wasm.ts";
import { NPM_RUN_GENERATE, type Regenerate, commentText, lineCommentText, watText } from "./escape.ts";

type Bits = 32 | 64;

const P = precision;
type Prec = ReturnType<typeof P>;

/** A float literal in WebAssembly text. */
function lit(c: number): string {
  if (Number.isNaN(c)) return "nan";
  if (c === Infinity) return "inf";
  if (c === -Infinity) return "-inf";
  if (Object.is(c, -0)) return "-0";
  return String(c);
}
const vconst = (p: Prec, c: number) => `(v128.const ${p.v} ${Array(p.lanes).fill(lit(c)).join(" ")})`;
const sconst = (p: Prec, c: number) => `(${p.f}.const ${lit(c)})`;

// ------------------------------------------------------------------------------ math

/** Integer powers up to this are repeated squarings (exact to a few ulps); larger ones are e^(p·log|x|). */
const POWI_MAX = 64;

/** The vector math functions, by name: exp, log, log1p, tanh (each v128 → v128), and powi (v128, i32 → v128). */
function mathFunctions(p: Prec, used: ReadonlySet<string>): string[] {
  const V = p.v, c = (x: number) => vconst(p, x);
  const g = (x: string) => `(local.get $${x})`;
  const out: string[] = [];
  const need = new Set(used);
  if (need.has("tanh") || need.has("log1p")) need.add("exp");
  if (need.has("log1p")) need.add("log");
  if (need.has("exp")) {
    const f64 = p.bits === 64;
    // Taylor coefficients 1/n! (degree 13 for doubles, 7 for floats; |r| ≤ ln2/2)
    const degree = f64 ? 13 : 7;
    let poly = c(1 / factorial(degree));
    for (let n = degree - 1; n >= 0; n--) poly = `(${V}.add (${V}.mul ${poly} ${g("r")}) ${c(1 / factorial(n))})`;
    const ln2hi = f64 ? 6.93147180369123816490e-1 : 0.693359375, ln2lo = f64 ? 1.90821492927058770002e-10 : -2.12194440e-4;
    const kmax = f64 ? 1100 : 300, hi = f64 ? 709.782712893384 : 88.72283935546875, lo = f64 ? -745.1332191019412 : -103.97208;
    const scale = (k: string) => (f64
      ? `(i64x2.shl (i64x2.add (i64x2.extend_low_i32x4_s ${k}) (v128.const i64x2 1023 1023)) (i32.const 52))`
      : `(i32x4.shl (i32x4.add ${k} (v128.const i32x4 127 127 127 127)) (i32.const 23))`);
    out.push(
      `;; e^x: x = k·ln2 + r, e^r by its Taylor polynomial (degree ${degree}), times 2^k in two halves (so 2^k never overflows before the product does)`,
      `(func $exp (param $x v128) (result v128) (local $k v128) (local $r v128) (local $ki v128) (local $k1 v128) (local $y v128)`,
      `  (local.set $k (${V}.min (${V}.max (${V}.nearest (${V}.mul ${g("x")} ${c(Math.LOG2E)})) ${c(-kmax)}) ${c(kmax)}))`,
      `  (local.set $r (${V}.sub (${V}.sub ${g("x")} (${V}.mul ${g("k")} ${c(ln2hi)})) (${V}.mul ${g("k")} ${c(ln2lo)})))`,
      `  (local.set $ki ${f64 ? `(i32x4.trunc_sat_f64x2_s_zero ${g("k")})` : `(i32x4.trunc_sat_f32x4_s ${g("k")})`})`,
      `  (local.set $k1 (i32x4.shr_s ${g("ki")} (i32.const 1)))`,
      `  (local.set $y (${V}.mul (${V}.mul ${poly} ${scale(g("k1"))}) ${scale(`(i32x4.sub ${g("ki")} ${g("k1")})`)}))`,
      `  ;; past the ends: inf and 0 (NaN stays NaN through the arithmetic)`,
      `  (local.set $y (v128.bitselect ${c(Infinity)} ${g("y")} (${V}.gt ${g("x")} ${c(hi)})))`,
      `  (v128.bitselect ${c(0)} ${g("y")} (${V}.lt ${g("x")} ${c(lo)})))`,
    );
  }
  if (need.has("log")) {
    const f64 = p.bits === 64;
    const terms = f64 ? 11 : 5; // log m = 2s(1 + z/3 + z²/5 + …), z = s² ≤ 0.0295
    let poly = c(1 / (2 * terms + 1));
    for (let n = terms - 1; n >= 0; n--) poly = `(${V}.add (${V}.mul ${poly} ${g("z")}) ${c(1 / (2 * n + 1))})`;
    const I = f64 ? "i64x2" : "i32x4";
    const mant = f64 ? "(v128.const i64x2 0x000FFFFFFFFFFFFF 0x000FFFFFFFFFFFFF)" : "(v128.const i32x4 0x007FFFFF 0x007FFFFF 0x007FFFFF 0x007FFFFF)";
    const one = f64 ? "(v128.const i64x2 0x3FF0000000000000 0x3FF0000000000000)" : "(v128.const i32x4 0x3F800000 0x3F800000 0x3F800000 0x3F800000)";
    const sh = f64 ? 52 : 23, bias = f64 ? 1023 : 127, tiny = f64 ? 2.2250738585072014e-308 : 1.1754943508222875e-38, up = f64 ? 54 : 24;
    // the exponent as floats: for doubles, the low halves of the two i64 lanes into i32 lanes 0 and 1 first
    const eFloat = f64
      ? `(f64x2.convert_low_i32x4_s (i8x16.shuffle 0 1 2 3 8 9 10 11 0 1 2 3 8 9 10 11 ${g("e")} ${g("e")}))`
      : `(f32x4.convert_i32x4_s ${g("e")})`;
    const ln2hi = f64 ? 6.93147180369123816490e-1 : 0.693359375, ln2lo = f64 ? 1.90821492927058770002e-10 : -2.12194440e-4;
    out.push(
      ";; log x: x = m·2^e with m in [√½, √2), log m = 2·atanh(s), s = (m − 1)/(m + 1), by its series; subnormals scaled up first",
      `(func $log (param $x v128) (result v128) (local $sub v128) (local $xs v128) (local $e v128) (local $m v128) (local $big v128) (local $s v128) (local $z v128) (local $ef v128) (local $y v128)`,
      `  (local.set $sub (${V}.lt ${g("x")} ${c(tiny)}))`,
      `  (local.set $xs (v128.bitselect (${V}.mul ${g("x")} ${c(2 ** up)}) ${g("x")} ${g("sub")}))`,
      `  (local.set $e (${I}.sub (${I}.shr_u ${g("xs")} (i32.const ${sh})) (${I}.add (v128.const ${I} ${Array(p.bits === 64 ? 2 : 4).fill(bias).join(" ")}) (v128.and ${g("sub")} (v128.const ${I} ${Array(p.bits === 64 ? 2 : 4).fill(up).join(" ")})))))`,
      `  (local.set $m (v128.or (v128.and ${g("xs")} ${mant}) ${one}))`,
      `  (local.set $big (${V}.gt ${g("m")} ${c(Math.SQRT2)}))`,
      `  (local.set $m (v128.bitselect (${V}.mul ${g("m")} ${c(0.5)}) ${g("m")} ${g("big")}))`,
      `  (local.set $e (${I}.sub ${g("e")} ${g("big")})) ;; big is all ones (−1) where m was halved`,
      `  (local.set $s (${V}.div (${V}.sub ${g("m")} ${c(1)}) (${V}.add ${g("m")} ${c(1)})))`,
      `  (local.set $z (${V}.mul ${g("s")} ${g("s")}))`,
      `  (local.set $ef ${eFloat})`,
      `  (local.set $y (${V}.add (${V}.mul ${g("ef")} ${c(ln2hi)}) (${V}.add (${V}.mul (${V}.mul ${c(2)} ${g("s")}) ${poly}) (${V}.mul ${g("ef")} ${c(ln2lo)}))))`,
      "  ;; log 0 = −inf, log of a negative number is NaN, log inf = inf, NaN stays NaN",
      `  (local.set $y (v128.bitselect ${c(-Infinity)} ${g("y")} (${V}.eq ${g("x")} ${c(0)})))`,
      `  (local.set $y (v128.bitselect ${c(NaN)} ${g("y")} (${V}.lt ${g("x")} ${c(0)})))`,
      `  (local.set $y (v128.bitselect ${c(Infinity)} ${g("y")} (${V}.eq ${g("x")} ${c(Infinity)})))`,
      `  (v128.bitselect ${g("x")} ${g("y")} (${V}.ne ${g("x")} ${g("x")})))`,
    );
  }
  if (need.has("log1p")) {
    out.push(
      ";; log(1 + u), accurate for small u: log w − ((w − 1) − u)/w with w = 1 + u",
      `(func $log1p (param $u v128) (result v128) (local $w v128)`,
      `  (local.set $w (${V}.add ${c(1)} ${g("u")}))`,
      `  (${V}.sub (call $log ${g("w")}) (${V}.div (${V}.sub (${V}.sub ${g("w")} ${c(1)}) ${g("u")}) ${g("w")})))`,
    );
  }
  if (need.has("tanh")) {
    // near 0, 1 − 2/(e^{2|x|} + 1) cancels: there, the odd Taylor series (to x^15, or x^7 for floats)
    const coef = [1, -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075, -929569 / 638512875].slice(0, p.bits === 64 ? 8 : 4);
    let series = c(coef[coef.length - 1]!);
    for (let n = coef.length - 2; n >= 0; n--) series = `(${V}.add (${V}.mul ${series} ${g("z")}) ${c(coef[n]!)})`;
    out.push(
      ";; tanh x = sign(x)·(1 − 2/(e^{2|x|} + 1)); for |x| < 0.1, x·(1 − x²/3 + 2x⁴/15 − …)",
      `(func $tanh (param $x v128) (result v128) (local $t v128) (local $z v128)`,
      `  (local.set $t (${V}.sub ${c(1)} (${V}.div ${c(2)} (${V}.add (call $exp (${V}.mul ${c(2)} (${V}.abs ${g("x")}))) ${c(1)}))))`,
      `  (local.set $t (v128.bitselect (${V}.neg ${g("t")}) ${g("t")} (${V}.lt ${g("x")} ${c(0)})))`,
      `  (local.set $z (${V}.mul ${g("x")} ${g("x")}))`,
      `  (v128.bitselect (${V}.mul ${g("x")} ${series}) ${g("t")} (${V}.lt (${V}.abs ${g("x")}) ${c(0.1)})))`,
    );
  }
  if (need.has("powi")) {
    out.push(
      `;; x^n for 1 ≤ n ≤ ${POWI_MAX}: repeated squaring over the bits of n, lowest first`,
      `(func $powi (param $x v128) (param $n i32) (result v128) (local $r v128)`,
      `  (local.set $r ${c(1)})`,
      "  (block $done (loop $next",
      `    (if (i32.and ${g("n")} (i32.const 1)) (then (local.set $r (${V}.mul ${g("r")} ${g("x")}))))`,
      `    (local.set $n (i32.shr_u ${g("n")} (i32.const 1)))`,
      `    (br_if $done (i32.eqz ${g("n")}))`,
      `    (local.set $x (${V}.mul ${g("x")} ${g("x")}))`,
      "    (br $next)))",
      `  ${g("r")})`,
    );
  }
  return out;
}

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

// ------------------------------------------------------------------------------ expressions

/** What a loop function takes besides b0 and b1, as TypeScript expressions for the caller. */
export interface LoopParam {
  readonly name: string;
  /** "at": a place's base address (buf, start); "int": an integer (a row stride, a size, n) */
  readonly kind: "at" | "int";
  readonly buf?: string;
  readonly expr: Expr;
}

export interface WasmLoop {
  readonly id: number;
  /** vector space: the first parameter is n, the elements per row */
  readonly vector: boolean;
  /** rows may be split between threads: no store goes to a place shared by all rows */
  readonly splittable: boolean;
  readonly params: readonly LoopParam[];
  /** the function's text per precision */
  readonly text: Record<Bits, string[]>;
  readonly math: ReadonlySet<string>;
}

/** An op has a form here when its block in the op table gives one (`wasm`), and so does every operand. */
function operandOk(o: Operand): boolean {
  if (o.kind !== "node") return true;
  return wasmForm(o.node.op) !== null && o.args.every(operandOk);
}

const isBatchedPlace = (pl: Place) => !pl.stride.isZero;

/**
 * A place's parameters in a function: its base address, and when rows step through it, its row
 * stride (an i32 expression: a size parameter's `(local.get $3*H)`, or a constant's `(i32.const 1)`)
 * and the local holding the current row's address.
 */
export interface PlaceParams {
  readonly base: string;
  readonly stride: string | null;
  readonly row: string | null;
  /** Elements past the base's row where this place's row starts (an i32 expression), or null: places in the same rows share a base. */
  readonly column: string | null;
}

/** The address of a rowed place's row `b` (an i32 expression): its base, plus b rows and its column, in bytes. */
export const rowAddress = (e: PlaceParams, b: string, shift: number) =>
  `(i32.add (local.get $${e.base}) (i32.shl ${e.column ? `(i32.add (i32.mul ${b} ${e.stride}) ${e.column})` : `(i32.mul ${b} ${e.stride})`} (i32.const ${shift})))`;

/**
 * The parameters of one function, handed out as its text is written, each named after what it
 * holds: `$x` (the address of x's first row) and `$x_row`, the local holding the current row's
 * address; a second place in the same buffer is `$xp0_2`; a parameter `$bir` and its gradient
 * `$dbir`; a size its own expression (`$H`, `$3*H`), or `$n` for a row's elements. A row stride is
 * a size, so places whose rows are equally far apart share one. No name is one of `taken`, the
 * function's other parameters and locals ($b, $i, $v_r, …).
 */
export function functionParams(taken: Iterable<string>) {
  const names = new Set(taken);
  const fresh = (want: string) => {
    let name = want;
    for (let k = 2; names.has(name); k++) name = `${want}_${k}`;
    names.add(name);
    return name;
  };
  const params: LoopParam[] = [];
  const places = new Map<string, PlaceParams>();
  const sizes = new Map<string, string>();
  const bases = new Map<string, string>();
  /** The parameter holding the address of buffer `buf` at element `start`, added once. */
  function baseOf(buf: string, start: Expr): string {
    const key = `${buf}|${start}`;
    let base = bases.get(key);
    if (!base) {
      // a parameter (p at o_bir) or its gradient (dp at o_bir) is named after it: $bir, $dbir
      const param = (buf === "p" || buf === "dp") && /^o_([\w$]+)$/.exec(start.variable ?? "");
      base = fresh(param ? `${buf === "dp" ? "d" : ""}${param[1]}` : buf);
      bases.set(key, base);
      params.push({ name: base, kind: "at", buf, expr: start });
    }
    return base;
  }
  /** An i32 expression for size `expr`: a constant, or its parameter. */
  const int = (expr: Expr) => (expr.literal !== undefined ? `(i32.const ${expr.literal})` : `(local.get $${size(expr)})`);
  function place(pl: Place, rowed: boolean): PlaceParams {
    const key = `${pl.buf}|${pl.start}|${pl.stride}`;
    let e = places.get(key);
    if (!e) {
      // places whose rows step together share one base, at the rows' start, and each adds its column
      // (xp0's three gates: slot * B * (3 * H), then H and 2 * H further); a row stride is a size
      const { rows, column } = rowed ? pl.start.split() : { rows: pl.start, column: ZERO };
      const base = baseOf(pl.buf, rows);
      e = { base, stride: rowed ? int(pl.stride) : null, row: rowed ? fresh(`${column.isZero ? base : pl.buf}_row`) : null, column: column.isZero ? null : int(column) };
      places.set(key, e);
    }
    return e;
  }
  /** The parameter holding size `expr` (`n` when it is the elements of a row, given first as `want`), added once. */
  function size(expr: Expr, want?: string): string {
    let s = sizes.get(String(expr));
    if (!s) {
      // `H`, `3*H`, `D+H` (characters a WebAssembly name may hold); anything with parentheses is `size`
      const bare = String(expr).replace(/^\((.*)\)$/, "$1").replace(/ /g, "");
      s = fresh(want ?? (/^[\w$*+]+$/.test(bare) ? bare : "size"));
      sizes.set(String(expr), s);
      params.push({ name: s, kind: "int", expr });
    }
    return s;
  }
  return {
    params,
    /** Every place so far, in the order of their parameters. */
    places: () => [...places.values()],
    place,
    size,
  };
}

/** One value a loop computes: the operand tree, the local it is bound to (if any), where it is stored, and the equation it is. */
interface LoopValue {
  readonly local: string | undefined;
  readonly value: Operand;
  readonly stores: readonly Store[];
  readonly comment: string | undefined;
}

/**
 * Lower one loop (or copy) stage; null when it has an op without a WebAssembly form. In phases:
 * the values it computes (`loopValues`), its parameters (`functionParams`), each precision's
 * statements for them (`lowerValues`) and the function around those (`loopFunction`).
 */
export function wasmLoop(st: Extract<Stage, { kind: "loop" | "copy" }>, id: number): WasmLoop | null {
  const items = loopValues(st);
  if (!items.every((it) => operandOk(it.value))) return null;
  const vector = !st.space.n.isOne;
  const batched = st.space.batched;
  // parameters: n, then each place (base address, and row stride when rows step through it), then sizes
  const fp = functionParams(["b0", "b1", "b", "i", "nv", "off", ...items.flatMap((it) => (it.local === undefined ? [] : [`v_${it.local}`, `f_${it.local}`]))]);
  if (vector) fp.size(st.space.n, "n");
  // rows may be split between threads unless a store goes to a place all rows share
  const splittable = batched && items.every((it) => it.stores.every((s) => isBatchedPlace(s.place)));
  const math = new Set<string>();
  const text = {} as Record<Bits, string[]>;
  for (const bits of [32, 64] as const) {
    const p = P(bits);
    const lowered = lowerValues(items, p, (pl) => fp.place(pl, batched && isBatchedPlace(pl)), fp.size, math);
    text[bits] = loopFunction(p, id, fp, vector ? lowered.body(true, false) : null, lowered.body(false, !vector), lowered.locals);
  }
  // an engine takes at most 1000 parameters per function (V8, SpiderMonkey): more, and the loop stays in TypeScript
  if (fp.params.length + 2 > 1000) return null;
  return { id, vector, splittable, params: fp.params, text, math };
}

function loopValues(st: Extract<Stage, { kind: "loop" | "copy" }>): LoopValue[] {
  if (st.kind === "loop") return st.items.map((it) => ({ local: it.local, value: it.value, stores: it.stores, comment: it.comment }));
  return [{ local: undefined, value: st.from, stores: st.to, comment: st.to.some((s) => s.add) ? "an accumulation (+=)" : "a copy" }];
}

/**
 * One precision's statements for a loop's values: `body(true, …)` over whole vectors, `body(false, …)`
 * one element at a time (the tail, or a loop over scalars). The locals they bind, and the math
 * functions they call (added to `math`), are known once both bodies are written.
 */
function lowerValues(items: readonly LoopValue[], p: Prec, placeOf: (pl: Place) => PlaceParams, sizeOf: (e: Expr) => string, math: Set<string>) {
  const locals = new Set<string>();
  let reused = 0;
  // the address of a place's element: its row's address (set per row) or its base, plus the element offset
  const addrOf = (pl: Place, scalar: boolean) => {
    const e = placeOf(pl);
    const base = e.row ? `(local.get $${e.row})` : `(local.get $${e.base})`;
    return scalar ? base : `(i32.add ${base} (local.get $off))`;
  };
  const expr = (o: Operand, vec: boolean): string => {
    const T = vec ? p.v : p.f;
    const k = (x: number) => (vec ? vconst(p, x) : sconst(p, x));
    switch (o.kind) {
      case "load": {
        const scalarVal = o.type.shape.length === 0;
        const a = addrOf(o.place, scalarVal);
        if (!vec) return `(${p.f}.load ${a})`;
        return scalarVal ? `(${p.splat} ${a})` : `(v128.load ${a})`;
      }
      case "local": { locals.add(o.name); return `(local.get $${vec ? "v" : "f"}_${o.name})`; }
      case "const": return k(o.value);
      case "size": { const z = sizeOf(o.expr); return vec ? `(${p.v}.splat (${p.f}.convert_i32_s (local.get $${z})))` : `(${p.f}.convert_i32_s (local.get $${z}))`; }
      case "node": {
        const a = o.args.map((x) => expr(x, vec));
        // operand i where a form reads it more than once: a computed one is evaluated once into a
        // local (local.tee where it is read first, local.get after), so nesting does not double the text
        const twice = (i: number): [string, string] => {
          if (o.args[i]!.kind !== "node") return [a[i]!, a[i]!];
          const l = `.r${reused++}`;
          locals.add(l);
          const name = `$${vec ? "v" : "f"}_${l}`;
          return [`(local.tee ${name} ${a[i]})`, `(local.get ${name})`];
        };
        const fn = (name: string, x: string) => {
          math.add(name);
          return vec ? `(call $${name} ${x})` : `(${p.v}.extract_lane 0 (call $${name} (${p.v}.splat ${x})))`;
        };
        const sel = (yes: string, no: string, cond: string) => (vec ? `(v128.bitselect ${yes} ${no} ${cond})` : `(select ${yes} ${no} ${cond})`);
        // the op's own form, from its block in the op table (src/ops.ts)
        const form = wasmForm(o.node.op);
        if (!form) throw new Error(`internal: no WebAssembly form for ${o.node.op}`);
        const powi = (x: string, n: number) => {
          math.add("powi");
          return vec ? `(call $powi ${x} (i32.const ${n}))` : `(${p.v}.extract_lane 0 (call $powi (${p.v}.splat ${x}) (i32.const ${n})))`;
        };
        return form({ T, bits: p.bits, vector: vec, powiMax: POWI_MAX, k, twice, math: fn, powi, select: sel }, a, o.node.attrs);
      }
    }
  };
  const store = (s: Store, value: string, vec: boolean, scalarVal: boolean) => {
    const a = addrOf(s.place, scalarVal);
    const T = vec ? p.v : p.f;
    const op = vec && !scalarVal ? "v128" : p.f;
    const v = s.add ? `(${T}.add ${vec && !scalarVal ? `(v128.load ${a})` : `(${p.f}.load ${a})`} ${value})` : value;
    return `(${op}.store ${a} ${v})`;
  };
  const body = (vec: boolean, scalarSpace: boolean): string[] => {
    const lines: string[] = [];
    for (const it of items) {
      // every equation is named where it is computed: in the vector loop and again in the scalar tail
      if (it.comment) lines.push(`;; ${commentText(it.comment.replace(/\s+/g, " "))}`);
      const v = expr(it.value, vec);
      if (it.local !== undefined) {
        locals.add(it.local);
        lines.push(`(local.set $${vec ? "v" : "f"}_${it.local} ${v})`);
        for (const s of it.stores) lines.push(store(s, `(local.get $${vec ? "v" : "f"}_${it.local})`, vec, scalarSpace));
      } else for (const s of it.stores) lines.push(store(s, v, vec, scalarSpace));
    }
    return lines;
  };
  return { body, locals };
}

/** The function around a loop's statements: rows b0 ≤ b < b1, each row's whole vectors (`vecBody`, null over scalars) and then its tail. */
function loopFunction(p: Prec, id: number, fp: ReturnType<typeof functionParams>, vecBody: readonly string[] | null, scalarBody: readonly string[], locals: ReadonlySet<string>): string[] {
  const rowSets = fp.places().filter((e) => e.row).map((e) => `(local.set $${e.row} ${rowAddress(e, "(local.get $b)", p.shift)})`);
  const inner = vecBody
    ? [
        `(local.set $nv (i32.sub (local.get $n) (i32.rem_u (local.get $n) (i32.const ${p.lanes}))))`,
        ";; whole vectors",
        "(local.set $i (i32.const 0))",
        "(block $v_done (loop $v_next",
        "  (br_if $v_done (i32.ge_s (local.get $i) (local.get $nv)))",
        `  (local.set $off (i32.shl (local.get $i) (i32.const ${p.shift})))`,
        ...vecBody.map((l) => `  ${l}`),
        `  (local.set $i (i32.add (local.get $i) (i32.const ${p.lanes})))`,
        "  (br $v_next)))",
        ";; the tail: the rest, one at a time",
        "(block $tail_done (loop $tail_next",
        "  (br_if $tail_done (i32.ge_s (local.get $i) (local.get $n)))",
        `  (local.set $off (i32.shl (local.get $i) (i32.const ${p.shift})))`,
        ...scalarBody.map((l) => `  ${l}`),
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br $tail_next)))",
      ]
    : scalarBody;
  return [
    `(func $f${p.bits}_${id} (export "f${p.bits}_${id}") (param $b0 i32) (param $b1 i32) ${fp.params.map((q) => `(param $${q.name} i32)`).join(" ")}`,
    "  (local $b i32) (local $i i32) (local $nv i32) (local $off i32)",
    ...fp.places().filter((e) => e.row).map((e) => `  (local $${e.row} i32)`),
    ...[...locals].flatMap((l) => [`  (local $v_${l} v128)`, `  (local $f_${l} ${p.f})`]),
    "  (local.set $b (local.get $b0))",
    "  (block $b_done (loop $b_next",
    "    (br_if $b_done (i32.ge_s (local.get $b) (local.get $b1)))",
    ...rowSets.map((l) => `    ${l}`),
    ...inner.map((l) => `    ${l}`),
    "    (local.set $b (i32.add (local.get $b) (i32.const 1)))",
    "    (br $b_next)))",
    ")",
  ];
}

/** The module of a cell's loops (and ops, codegen/wasmops.ts): both precisions, the math functions they call, the memory imported. */
export function loopsModuleText(cellName: string, source: string, loops: readonly WasmLoop[], how: Regenerate = NPM_RUN_GENERATE): string {
  const used = new Set(loops.flatMap((l) => [...l.math]));
  return watText([
    `;; Generated by cellforge from ${commentText(source)}: the elementwise loops and whole-vector ops of the cell "${commentText(cellName)}" in WebAssembly SIMD.`,
    `;; Do not edit: regenerate with \`${lineCommentText(how.run)}\` (check with \`${lineCommentText(how.check)}\`).`,
    `;; f32_<k> and f64_<k> are loop (or op) k of the kernel (its comment in ${commentText(cellName)}.ts beside this file says which), rows b0 ≤ b < b1.`,
    ";; Parameters are named after what they hold: $n the elements of a row, $x the address of buffer x at the loop's first row,",
    ";; $x_row the current row's address; $bir a parameter, $dbir its gradient; a size is named after itself ($H, $3*H), and a row stride is a size.",
    "(module",
    `  (import "env" "memory" (memory 1 65536 shared))`,
    ...([32, 64] as const).flatMap((bits) => [
      `  ;; ---------------------------------------------------------------- ${bits}-bit`,
      ...mathFunctions(P(bits), used).map((l) => `  ${l.replace(/\(func \$(\w+)/, `(func $$$1${bits}`).replace(/call \$(exp|log|log1p|tanh|powi)\b/g, `call $$$1${bits}`)}`),
      ...loops.flatMap((l) => l.text[bits].map((x) => `  ${x.replace(/call \$(exp|log|log1p|tanh|powi)\b/g, `call $$$1${bits}`)}`)),
    ]),
    ")",
    "",
  ].join("\n"));
}

/**
 * For tests: the math functions of one precision as a module of scalar exports (exp, log, log1p,
 * tanh: f → f, each through its vector form on a splat, as the loops call them).
 */
export function mathModuleText(bits: Bits): string {
  const p = P(bits);
  const names = ["exp", "log", "log1p", "tanh"];
  return [
    "(module",
    "  (memory 1)",
    ...mathFunctions(p, new Set(names)).map((l) => `  ${l}`),
    ...names.map((n) => `  (func (export "${n}") (param $x ${p.f}) (result ${p.f}) (${p.v}.extract_lane 0 (call $${n} (${p.v}.splat (local.get $x)))))`),
    ")",
  ].join("\n");
}

// Bounded work for any equation (issue 11, item 7). A huge power costs what a small one does, on
// every path; an equation past the limits of src/limits.ts is refused before mathjs reads it, with
// the count, the limit and the spot; a cell at every limit at once goes through every stage; and
// sizes, batches or lengths too big for memory are refused before anything is allocated, stating
// the bytes, from the library and from the command line (exit 1, no stack trace).
//
// Timeouts: measured on the 2-core machine with other test runs keeping the load near 10 (in
// brackets), then about 3x that.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compileCell, type CellSpec, type CompileOptions } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { deriveBackward } from "../src/backward.ts";
import { buildCell, add, matmul, mul, tanh } from "../src/builder.ts";
import { checkReference, gradients, randomCase, type SequenceCase } from "../src/sequence.ts";
import { ACTIVATION_LIMITS, BUILDER_LIMITS, CELL_OPERANDS, EXPRESSION_LIMITS, scanExpression } from "../src/limits.ts";
import { LimitError, MAX_BUFFER_BYTES } from "../runtime/checks.ts";
import { OPS, apply, konst, leaf } from "../src/ops.ts";
import { vec } from "../src/ir.ts";
import { dimSize } from "../src/dims.ts";
import { simdAvailable } from "../runtime/memory.ts";
import { loadCell } from "../src/load.ts";
import { loadKernels, runKernel } from "../check/kernelcheck.ts";
import { readCase } from "../cli/evalcase.ts";
import { wasmLoop, loopsModuleText } from "../codegen/wasmloops.ts";
import { Ix, ZERO } from "../codegen/ix.ts";
import { assemble } from "../codegen/gemm-wasm.ts";
import type { Operand, Stage } from "../codegen/schedule.ts";
import * as gru from "../generated/gru.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "cellforge.js");
const DIR = mkdtempSync(join(tmpdir(), "cellforge-limits-"));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

const base = {
  doc: "a test cell for the limits (test/limits.test.ts)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
} as const;
const spec = (name: string, equations: string, more: Record<string, unknown> = {}) => ({ name, ...base, ...more, equations }) as unknown as CellSpec;

function errorOf(s: CellSpec, opts?: CompileOptions): CellError {
  try {
    compileCell(s, opts);
  } catch (e) {
    if (e instanceof CellError) return e;
    throw new Error(`expected a CellError, got ${String(e)}`);
  }
  throw new Error("expected a CellError, but the cell compiled");
}

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }
function cellforge(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
/** A stack trace (ours or a dependency's): never shown for a user's mistake. */
const STACK = /^ {4}at |node:internal/m;

// ------------------------------------------------------------------------------------------ powers

describe("large powers", () => {
  const P = 1048576;

  // [14 s: the kernel's emission, typecheck and gate; before the fix its WebAssembly text held 2^20 copies of x and took minutes and 3.4 GB]
  it("h' = tanh(W*x + U*h + b)^1048576 compiles in seconds and matches Math.pow on the reference and both kernels", async () => {
    const cell = compileCell(spec("hugepow", `h' = tanh(W*x + U*h + b)^${P}`));
    const t0 = performance.now();
    const mod = await loadKernels(cell);
    expect(performance.now() - t0).toBeLessThan(90_000);
    // pre-activations near 7.5, where tanh^(2^20) is between 0.01 and 0.9: the power matters
    const sizes = { D: 3, H: 5 }, B = 2, T = 3;
    const c0 = randomCase(cell, { sizes, B, T, seed: 4 });
    const c: SequenceCase = { ...c0, params: { ...c0.params, W: c0.params.W!.map((w) => w * 0.1), U: c0.params.U!.map((u) => u * 0.1), b: c0.params.b!.map((_, i) => 7 + 0.25 * i) } };
    // the expected states, by Math.pow on Math.tanh, in the test's own loop
    const want = new Float64Array(T * B * sizes.H);
    let prev = c.initial.h!;
    for (let t = 0; t < T; t++) {
      const next = new Float64Array(B * sizes.H);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < sizes.H; i++) {
          let z = c.params.b![i]!;
          for (let j = 0; j < sizes.D; j++) z += c.params.W![i * sizes.D + j]! * c.inputs.x![(t * B + b) * sizes.D + j]!;
          for (let j = 0; j < sizes.H; j++) z += c.params.U![i * sizes.H + j]! * prev[b * sizes.H + j]!;
          next[b * sizes.H + i] = Math.pow(Math.tanh(z), P);
        }
      want.set(next, t * B * sizes.H);
      prev = next;
    }
    expect(Math.min(...want)).toBeGreaterThan(1e-3);
    const ref = gradients(deriveBackward(cell), c);
    const close = (got: Float64Array, rel: number, what: string) =>
      got.forEach((v, k) => expect(Math.abs(v - want[k]!), `${what} at ${k}: ${v} vs ${want[k]}`).toBeLessThanOrEqual(rel * want[k]!));
    close(ref.forward.outputs.h!, 1e-12, "reference");
    const ts = runKernel(mod, c, 64, { backend: "ts" });
    close(ts.outputs.h!, 1e-12, "ts kernel");
    for (const q of mod.paramLayout(sizes).params) {
      const r = ref.grads.params[q.name]!, scale = Math.max(1, ...r.map(Math.abs));
      r.forEach((v, i) => expect(Math.abs(ts.params[q.offset + i]! - v), `d${q.name}[${i}]`).toBeLessThanOrEqual(1e-10 * scale));
    }
    if (simdAvailable()) {
      // x^p magnifies the last bit of x p times: WebAssembly's own tanh (within an ulp of Math.tanh)
      // gives p · 1.1e-16 ≈ 1.2e-10 at most, relative
      const wasm = runKernel(mod, c, 64, { backend: "wasm" });
      close(wasm.outputs.h!, 1e-9, "wasm kernel");
      const scale = Math.max(...ts.params.map(Math.abs));
      wasm.params.forEach((v, k) => expect(Math.abs(v - ts.params[k]!)).toBeLessThanOrEqual(1e-8 * scale));
    }
  }, 180_000);

  // [2 s: binaryen assembles one small module]
  it.runIf(simdAvailable())("the WebAssembly form of x^p is JavaScript's x ** p: negative and fractional p, ±0, ±inf, NaN, float32 too", async () => {
    const ps = [0, 0.5, 1, 2, 3, 7, -1, -2, -3, 64, -64, 65, -65, 1.5, -0.5, 1 / 3, 1048575, 1048576, -1048575, 2 ** 31 + 1, 1e300, -1e300];
    const xs = [-Infinity, -2, -1, -0.5, -1e-300, -0, 0, 5e-324, 1e-300, 0.5, 0.9999999, 1, 1.0000001, 2, 1e300, Infinity, NaN];
    const x = leaf("x", "input", vec(dimSize("H")));
    const place = (buf: string) => ({ buf, start: ZERO, stride: Ix.var("H") });
    const loops = ps.map((p, id) => {
      const node = apply("pow", [x], { p });
      const st: Stage = { kind: "loop", space: { batched: true, n: Ix.var("H") }, items: [{ node, local: undefined, value: { kind: "node", node, args: [{ kind: "load", place: place("x"), type: x.type }] }, stores: [{ place: place("y"), add: false }], comment: undefined }] };
      return wasmLoop(st as Extract<Stage, { kind: "loop" }>, id)!;
    });
    const text = loopsModuleText("pow", "test/limits.test.ts", loops);
    expect(text.length).toBeLessThan(100_000);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const ex = new WebAssembly.Instance(new WebAssembly.Module(await assemble(text) as Uint8Array<ArrayBuffer>), { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
    for (const bits of [64, 32] as const) {
      const F = bits === 64 ? Float64Array : Float32Array, round = bits === 64 ? (v: number) => v : Math.fround;
      const n = xs.length, X = new F(memory.buffer, 0, n), Y = new F(memory.buffer, 4096, n);
      ps.forEach((p, id) => {
        const call = (from: number, count: number) => {
          X.set(xs.slice(from, from + count));
          // every loop's parameters: n, then the places' base addresses and row strides
          ex[`f${bits}_${id}`]!(0, 1, ...loops[id]!.params.map((q) => (q.kind === "at" ? (q.buf === "x" ? 0 : 4096) : count)));
          return [...Y.subarray(0, count)];
        };
        // all at once (vectors, then the remainder one at a time), and each alone (the scalar form)
        const together = call(0, n), alone = xs.map((_, i) => call(i, 1)[0]!);
        xs.forEach((xv, i) => {
          const want = round(round(xv) ** p);
          for (const got of [together[i]!, alone[i]!]) {
            // e^(p·log|x|) errs by about |p·log x| ulps: at most 709 (f64) or 88 (f32) before it overflows
            const ok = Object.is(got, want) || (Number.isFinite(want) && want !== 0 && Math.abs(got - want) <= (bits === 64 ? 1e-12 : 3e-5) * Math.abs(want));
            expect(ok, `f${bits}: (${xv}) ** ${p} = ${want}, got ${got}`).toBe(true);
          }
        });
      });
    }
  }, 60_000);

  it("the TypeScript form and the printed form read p back exactly (0.3333333333333333 is not 1/3)", () => {
    const third = 0.3333333333333333;
    const js = OPS.pow.kind === "elementwise" ? OPS.pow.js(["x"], { p: third }) : "";
    const f = new Function("x", `return ${js};`) as (x: number) => number;
    for (const x of [0.125, 2, 27, 1e-8]) expect(f(x)).toBe(x ** third);
    const cell = compileCell(spec("third", `h' = tanh(W*x + U*h + b)^${third}`));
    expect(OPS.pow.print(["y"], cell.next[0]!)).toBe("y^(1/3)");
  });

  // Before the fix, square, softplus, sign (and an activation) of a computed operand wrote it out
  // two or three times, so nesting doubled the text at every level. The lowering binds the values
  // the backward reads to locals, so equations rarely nest them unbound; the forms must not care.
  it("square, softplus, sign and activations of a computed operand do not double the emitted text at each level", async () => {
    const depth = 30;
    // TypeScript: each form applied to the last, on a computed operand
    const js = (op: "square" | "softplus" | "act", a: string) => {
      const d = OPS[op];
      return d.kind === "elementwise" ? `(${d.js([a], op === "act" ? { fn: { name: "softsign", expr: "x / (1 + abs(x))" } } : {})})` : "";
    };
    for (const op of ["square", "softplus", "act"] as const) {
      let t = "(x - 0.5)";
      for (let k = 0; k < depth; k++) t = js(op, `(0.5 * ${t})`);
      expect(t.length, op).toBeLessThan(20_000);
      const f = new Function("x", `return ${t.replaceAll("(x: number) =>", "(x) =>")};`) as (x: number) => number; // TypeScript to JavaScript
      const g = OPS[op].kind === "elementwise" ? (OPS[op] as Extract<(typeof OPS)[typeof op], { kind: "elementwise" }>).fn(op === "act" ? { fn: { name: "softsign", expr: "x / (1 + abs(x))" } } : {}) : () => 0;
      let want = 0.3 - 0.5;
      for (let k = 0; k < depth; k++) want = g(0.5 * want);
      expect(f(0.3), op).toBe(want);
    }
    // WebAssembly: the same nestings (and sign's), run on special values against the evaluator's own functions
    if (!simdAvailable()) return;
    const x = leaf("x", "input", vec(dimSize("H")));
    const place = (buf: string) => ({ buf, start: ZERO, stride: Ix.var("H") });
    const ops = ["square", "softplus", "sign", "pow"] as const;
    const chains = ops.map((op) => {
      let n = apply("sub", [x, konst(0.5)]);
      let o: Operand = { kind: "node", node: n, args: [{ kind: "load", place: place("x"), type: x.type }, { kind: "const", value: 0.5 }] };
      for (let k = 0; k < depth; k++) {
        const half = apply("mul", [konst(0.5), n]);
        n = apply(op, [half], op === "pow" ? { p: 3 } : {});
        o = { kind: "node", node: n, args: [{ kind: "node", node: half, args: [{ kind: "const", value: 0.5 }, o] }] };
      }
      return { n, o };
    });
    const loops = chains.map(({ n, o }, id) => wasmLoop({ kind: "loop", space: { batched: true, n: Ix.var("H") }, items: [{ node: n, local: undefined, value: o, stores: [{ place: place("y"), add: false }], comment: undefined }] }, id)!);
    const text = loopsModuleText("nested", "test/limits.test.ts", loops);
    expect(text.length).toBeLessThan(200_000);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const ex = new WebAssembly.Instance(new WebAssembly.Module(await assemble(text) as Uint8Array<ArrayBuffer>), { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
    const xs = [-3, -1, -0.25, 0, 0.3, 0.5, 0.75, 2.5, NaN];
    const X = new Float64Array(memory.buffer, 0, xs.length), Y = new Float64Array(memory.buffer, 4096, xs.length);
    X.set(xs);
    ops.forEach((op, id) => {
      ex[`f64_${id}`]!(0, 1, ...loops[id]!.params.map((q) => (q.kind === "at" ? (q.buf === "x" ? 0 : 4096) : xs.length)));
      const f = (OPS[op] as Extract<(typeof OPS)["square"], { kind: "elementwise" }>).fn(op === "pow" ? { p: 3 } : {});
      xs.forEach((v, i) => {
        let want = v - 0.5;
        for (let k = 0; k < depth; k++) want = f(0.5 * want);
        expect(Math.abs(Y[i]! - want) <= 1e-12 * Math.max(1, Math.abs(want)) || Object.is(Y[i], want) || (Number.isNaN(Y[i]) && Number.isNaN(want)), `${op} at ${v}: ${Y[i]} vs ${want}`).toBe(true);
      });
    });
  }, 60_000);
});

// ---------------------------------------------------------------------------------- expression limits

describe("expression limits", () => {
  const L = EXPRESSION_LIMITS;
  const source = (eqs: string) => `import { defineCell } from "cellforge";\n\nexport default defineCell({\n  name: "long",\n  equations: \`\n    a = W*x + U*h + b\n    ${eqs}\n  \`,\n});\n`;

  // before the fix: mathjs parsed it, then the lowering overflowed the stack (a RangeError, no location)
  it("a sum of 2,400 terms is refused before mathjs reads it, at its place in the file, with the count and the limit", () => {
    const rhs = ["a", ...Array.from({ length: 2399 }, (_, k) => `${(k + 1) / 1000}`)].join(" + ");
    const eq = `h' = tanh(${rhs})`;
    const t0 = performance.now();
    const e = errorOf(spec("long", `a = W*x + U*h + b\n${eq}`), { file: "cells/long.ts", source: source(eq) });
    expect(performance.now() - t0).toBeLessThan(2_000);
    const col = 4 + eq.indexOf("+ 0.2 ") + 3; // the first operand past the limit (1-based, after the 4 spaces of indentation)
    expect(e.message.split("\n")[0]).toBe(`cells/long.ts:7:${col}: error in cell "long": the right-hand side has 2,400 operands (names and numbers); the limit is ${L.operands}`);
    expect(e.where).toMatchObject({ cell: "long", file: "cells/long.ts", line: 7, column: col });
    expect(e.hint).toMatch(/give a part a name in an equation of its own/);
  });

  it("past the operators, the nesting, the characters, or the cell's operands in all, likewise", () => {
    const cases: [string, RegExp][] = [
      [`h' = tanh(${"- ".repeat(L.operators + 1)}a)`, new RegExp(`^cell "long":2:\\d+: error in cell "long": the right-hand side has ${L.operators + 1} operators; the limit is ${L.operators}$`)],
      [`h' = ${"tanh(".repeat(L.nesting + 3)}a${")".repeat(L.nesting + 3)}`, new RegExp(`^cell "long":2:${5 + 5 * L.nesting + 5}: error in cell "long": parentheses nest ${L.nesting + 3} deep; the limit is ${L.nesting}$`)],
      [`h' = ${" ".repeat(L.characters)}a`, new RegExp(`^cell "long":2:\\d+: error in cell "long": the right-hand side has 10,002 characters; the limit is 10,000$`)],
    ];
    for (const [eq, re] of cases) expect(errorOf(spec("long", `a = W*x + U*h + b\n${eq}`)).message.split("\n")[0]).toMatch(re);
    // the cell's operands in all: equations each within the limit, together past it
    const n = L.operands - 10, eqs = Array.from({ length: Math.ceil(CELL_OPERANDS / n) + 1 }, (_, k) => `s${k} = ${Array(n).fill("a").join(" + ")}`);
    const total = 5 + eqs.length * n + eqs.length; // W*x + U*h + b has 5
    const e = errorOf(spec("long", ["a = W*x + U*h + b", ...eqs, `h' = tanh(${eqs.map((_, k) => `s${k}`).join(" + ")})`].join("\n")));
    expect(e.message.split("\n")[0]).toMatch(new RegExp(`^cell "long":\\d+:\\d+: error in cell "long": the equations have ${total.toLocaleString("en-US")} operands \\(names and numbers\\) in all; the limit is ${CELL_OPERANDS.toLocaleString("en-US")} per cell$`));
  });

  // [the large derivative: 0.1 s; before the fix mathjs' simplify searched for minutes]
  it("an activation past its limits is refused at its spot in the file; one at its limits is differentiated in moments", () => {
    const A = ACTIVATION_LIMITS;
    const long = Array(A.operands + 1).fill("x").join(" * ");
    const src = `import { defineCell } from "cellforge";\n\nexport default defineCell({\n  name: "act",\n  activations: { f: "${long}" },\n  equations: "h' = f(W*x + U*h + b)",\n});\n`;
    const e = errorOf(spec("act", "h' = f(W*x + U*h + b)", { activations: { f: long } }), { file: "cells/act.ts", source: src });
    const col = src.split("\n")[4]!.indexOf(long) + 4 * A.operands + 1;
    expect(e.message.split("\n")[0]).toBe(`cells/act.ts:5:${col}: error in cell "act": activation f: its expression has ${A.operands + 1} operands (names and numbers); the limit is ${A.operands}`);
    const t0 = performance.now();
    const cell = compileCell(spec("act", "h' = tanh(f(W*x + U*h + b))", { activations: { f: Array(A.operands).fill("x").join(" * ") } }));
    deriveBackward(cell);
    expect(performance.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  // before the fix, nothing was refused: the printer and the emitters recursed to any depth
  it("a builder definition too deep, or a builder cell too big, is refused with the count and the limit", () => {
    const decl = { name: "deep", ...base } as const;
    const e = (() => {
      try {
        buildCell(decl, ({ x, h, W, U, b }) => {
          let s = add(matmul(W, x), matmul(U, h), b);
          for (let k = 0; k < BUILDER_LIMITS.depth + 50; k++) s = add(s, k / 1000);
          return { "h'": tanh(s) };
        });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(CellError);
    expect((e as CellError).message).toMatch(new RegExp(`builder: h' is ${BUILDER_LIMITS.depth + 54} operations deep; the limit is ${BUILDER_LIMITS.depth}`));
    // shallow but wide: a balanced sum of 1,100 terms tanh(c*h) is 13 deep and 3,300 operations
    const wide = () => buildCell({ ...decl, name: "wide" }, ({ x, h, W, U, b }) => {
      let terms = Array.from({ length: 1100 }, (_, k) => tanh(mul((k + 1) / 1000, h)));
      while (terms.length > 1) terms = Array.from({ length: Math.ceil(terms.length / 2) }, (_, i) => (terms[2 * i + 1] ? add(terms[2 * i]!, terms[2 * i + 1]!) : terms[2 * i]!));
      return { "h'": tanh(add(matmul(W, x), matmul(U, h), b, terms[0]!)) };
    });
    expect(wide).toThrow(CellError);
    expect(wide).toThrow(new RegExp(`builder: the cell has 3,\\d{3} operations; the limit is ${BUILDER_LIMITS.operations.toLocaleString("en-US")}`));
  });
});

// --------------------------------------------------------------------------------- a cell at the limits

/** One cell at every limit at once: equations at the operands, operators and nesting limits, an activation at its limits, CELL_OPERANDS in all. */
function cellAtLimits(): CellSpec {
  const L = EXPRESSION_LIMITS, A = ACTIVATION_LIMITS, D = L.nesting;
  const eqs: Record<string, string> = {};
  eqs.a = "W*x + U*h + b";
  eqs.s = ["a", ...Array.from({ length: L.operands - 1 }, (_, k) => `${(k + 1) / 1000}`)].join(" + "); // the longest chain
  eqs.p = `tanh(${Array.from({ length: L.operands }, (_, k) => (k % 2 ? "h" : "a")).join(" .* ")})`; // the longest product
  let e = "a";
  for (let k = 0; k < D - 1; k++) e = `var(a - ${e})`; // var reads its argument twice, at every level
  eqs.v = e;
  e = "a";
  for (let k = 0; k < D - 1; k++) e = `(0.5 * ${e})^2`;
  eqs.q = `tanh(${e})`;
  eqs.u = `tanh(${"- ".repeat(L.operators)}a)`;
  e = "a";
  for (let k = 0; k < D; k++) e = `f(${e})`;
  eqs.g = e;
  // fan-out: many values that read h, so dh is a sum of as many terms
  const used = () => Object.values(eqs).reduce((s, r) => s + scanExpression(r, "").operands.length, 0);
  const m = Math.floor((CELL_OPERANDS - used() - 8) / 3);
  for (let k = 0; k < m; k++) eqs[`f${k}`] = `tanh(${(k + 1) / 1000} * h)`;
  eqs.t = Array.from({ length: m }, (_, k) => `f${k}`).join(" + ");
  const pad = CELL_OPERANDS - used() - 8;
  eqs["h'"] = `tanh(0.01 * s + p + v + q + u + g + t${" + 0".repeat(pad)})`;
  // the activation: A.nesting parentheses, A.operands operands, near A.operators operators
  const terms = Array.from({ length: (A.operands - 2) / 2 }, (_, k) => `${(k + 1) / 100} * x`).join(" + ");
  const act = `x / (1 + abs(${"tanh(".repeat(A.nesting - 2)}${terms}${")".repeat(A.nesting - 2)}))`;
  return spec("at-limits", Object.entries(eqs).map(([k, r]) => `${k} = ${r}`).join("\n"), { activations: { f: act } });
}

describe("a cell at every limit at once", () => {
  // [show 9 s, check 40-60 s (reference and finite differences, ts and wasm kernels in f64 and f32,
  // 1 and 2 threads); the same passes with half of Node's stack (--stack-size=492). Before the
  // fix, show never finished: var(a - var(a - …)) printed its argument twice at every level]
  it("goes through show and check: the reference, both kernels, float32 and two threads", async () => {
    // exactly at the limits
    const s = cellAtLimits(), L = EXPRESSION_LIMITS;
    const rhs = (s.equations as string).split("\n").map((l) => l.slice(l.indexOf("=") + 1));
    const counts = rhs.map((r) => scanExpression(r, ""));
    expect(counts.every((c) => c.problem === undefined)).toBe(true);
    expect(counts.reduce((t, c) => t + c.operands.length, 0)).toBe(CELL_OPERANDS);
    expect(Math.max(...counts.map((c) => c.operands.length))).toBe(L.operands);
    const act = (s.activations as Record<string, string>).f!;
    expect(scanExpression(act, "", ACTIVATION_LIMITS).operands.length).toBe(ACTIVATION_LIMITS.operands);
    expect(() => compileCell(s)).not.toThrow();
    const file = join(DIR, "at-limits.json");
    writeFileSync(file, JSON.stringify(cellAtLimits(), null, 1));
    const [show, check] = await Promise.all([cellforge("show", file), cellforge("check", file, "--sizes", "D=3,H=5", "--B", "2", "--T", "2", "--mode", "fast")]);
    expect(show.stderr).toBe("");
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^backward \(derived, simplified\)/m);
    expect(check.stderr).toBe("");
    expect(check.stdout).toMatch(/^at-limits .* PASS$/m);
    expect(check.code).toBe(0);
  }, 240_000);
});

// ------------------------------------------------------------------------------------------ memory

describe("sizes, batches and lengths too big for memory", () => {
  const bytesMessage = (what: string, unit: string) => new RegExp(`${what} needs [\\d.]+ [kMGTPE]B of buffers \\(float64\\); the limit is 4 GiB per ${unit}`);
  const limitError = (f: () => unknown): LimitError => {
    try {
      f();
    } catch (e) {
      if (e instanceof Error && e.name === "LimitError") return e as LimitError;
      throw new Error(`expected a LimitError, got ${String(e)}`);
    }
    throw new Error("expected a LimitError, but nothing was refused");
  };

  // before the fix: RangeError: Invalid typed array length (or an allocation of 240 GB attempted)
  it("the library refuses them up front, stating the bytes: a case, the reference evaluator, a kernel on either path, a case read from JSON", async () => {
    const cell = await loadCell("gru");
    expect(limitError(() => randomCase(cell, { sizes: { D: 3, H: 100_000 } })).message).toMatch(bytesMessage("a case of gru at D=3, H=100000, B=2, T=3", "case"));
    expect(limitError(() => randomCase(cell, { B: 1_000_000_000 })).message).toMatch(bytesMessage("a case of gru at D=3, H=4, B=1000000000, T=3", "case"));
    expect(limitError(() => checkReference(deriveBackward(cell), { sizes: { D: 3, H: 4 }, B: 2, T: 300_000_000 })).message).toMatch(bytesMessage("the reference evaluator for gru at D=3, H=4, B=2, T=300000000", "run"));
    for (const backend of simdAvailable() ? (["ts", "wasm"] as const) : (["ts"] as const)) {
      expect(limitError(() => gru.createKernel64({ D: 3, H: 100_000 }, 2, 3, { backend })).message).toMatch(bytesMessage("gru: the kernel for these sizes, B and T", "kernel"));
      expect(limitError(() => gru.createKernel32({ D: 3, H: 4 }, 2 ** 40, 3, { backend })).message).toMatch(/gru: the kernel for these sizes, B and T needs [\d.]+ [kMGTPE]B of buffers \(float32\); the limit is 4 GiB per kernel/);
    }
    // sizes whose products no double holds exactly are refused too
    expect(limitError(() => randomCase(cell, { sizes: { D: 3, H: 2 ** 40 } })).message).toMatch(/needs [\d.e+]+ bytes of buffers/);
    const json = { sizes: { D: 3, H: 4 }, T: 3, B: 1_000_000_000, params: {}, inputs: {}, initial: {}, upstream: {} };
    expect(limitError(() => readCase(cell, json)).message).toMatch(bytesMessage("a case of gru at D=3, H=4, B=1000000000, T=3", "case"));
    expect(MAX_BUFFER_BYTES).toBe(2 ** 32);
  });

  // [each command 3-8 s, run concurrently]
  it("the command line refuses them with the bytes, exit 1 and no stack trace", async () => {
    const caseFile = join(DIR, "huge-b.json");
    const example = await cellforge("eval", "gru", "--example", caseFile);
    expect(example.code).toBe(0);
    const { readFileSync } = await import("node:fs");
    const c = JSON.parse(readFileSync(caseFile, "utf8")) as { B: number };
    c.B = 1_000_000_000;
    writeFileSync(caseFile, JSON.stringify(c));
    const runs = await Promise.all([
      cellforge("check", "gru", "--sizes", "H=100000"),
      cellforge("check", "gru", "--B", "1000000000"),
      cellforge("check", "gru", "--sizes", "H=99999999999"),
      cellforge("eval", "gru", "--in", caseFile),
      cellforge("bench", "gru", "--size", "100000"),
    ]);
    const want = [
      /^a case of gru at D=3, H=100000, B=2, T=3 needs [\d.]+ GB of buffers \(float64\); the limit is 4 GiB per case$/,
      /^a case of gru at D=3, H=4, B=1000000000, T=3 needs [\d.]+ GB of buffers \(float64\); the limit is 4 GiB per case$/,
      /^a case of gru at D=3, H=99999999999, B=2, T=3 needs [\d.e+]+ (EB|bytes) of buffers \(float64\); the limit is 4 GiB per case$/,
      /^a case of gru at D=3, H=4, B=1000000000, T=3 needs [\d.]+ GB of buffers \(float64\); the limit is 4 GiB per case$/,
      /^a case of gru at D=100000, H=100000, B=32, T=50 needs [\d.]+ GB of buffers \(float64\); the limit is 4 GiB per case$/, // bench times a random case
    ];
    runs.forEach((r, i) => {
      expect(r.stderr.trim(), r.stderr).toMatch(want[i]!);
      expect(r.stderr).not.toMatch(STACK);
      expect(r.code).toBe(1);
    });
  }, 240_000); // measured: 85 s for the six commands while other jobs held the 2-core machine's load at 25-30
});

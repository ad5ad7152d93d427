// The WebAssembly path: its math against Math's, the thread split, the fallback without SIMD, the
// workers' lifetime. (Every cell's wasm kernels against the ts kernels and finite differences:
// test/codegen.test.ts and test/zoo.test.ts, through checkKernels.)
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { runNode } from "./spawn.ts";
import { join } from "node:path";
import { assemble } from "../codegen/gemm-wasm.ts";
import { mathModuleText } from "../codegen/wasmloops.ts";
import { ROOT } from "../src/load.ts";
import { reportSimd, simdAvailable } from "../runtime/memory.ts";
import { workerPool } from "../runtime/pool.ts";
import * as gru from "../generated/gru.ts";
import * as lstm from "../generated/lstm.ts";

type F = (x: number) => number;
async function mathExports(bits: 32 | 64): Promise<Record<string, F>> {
  const m = new WebAssembly.Module((await assemble(mathModuleText(bits))) as Uint8Array<ArrayBuffer>);
  return new WebAssembly.Instance(m, {}).exports as unknown as Record<string, F>;
}

/** Distance in units of the last place at the reference value (float64 or float32). */
function ulps(a: number, b: number, bits: 32 | 64): number {
  if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const eps = bits === 64 ? Number.EPSILON : 2 ** -23;
  const tiny = bits === 64 ? 2 ** -1074 : 2 ** -149;
  return Math.abs(a - b) / Math.max(Math.abs(b) * eps, tiny);
}

const specials = [0, -0, Infinity, -Infinity, NaN, 1e-320, -1e-320, 5e-324, 1e-300, 709.7, 709.8, -745, -746, 88.7, -103, 1e300];

describe("WebAssembly math, against Math", () => {
  const sample = (n: number, lo: number, hi: number) => Array.from({ length: n }, (_, i) => lo + ((hi - lo) * (i + 0.5)) / n);
  const cases: [string, F, number[]][] = [
    ["exp", Math.exp, [...sample(4001, -40, 40), ...specials]],
    ["log", Math.log, [...sample(4001, 1e-6, 50), ...sample(1000, 0.5, 2), ...specials]],
    ["log1p", Math.log1p, [...sample(2001, 0, 1), ...[1e-10, 1e-17, 0]]],
    ["tanh", Math.tanh, [...sample(4001, -20, 20), ...specials]],
  ];
  // tanh: 1 − 2/(e^{2|x|} + 1) loses up to ~10 ulps just above 0.1, where the series stops
  const allowed = (name: string, bits: 32 | 64) => (name === "tanh" ? 16 : bits === 64 ? 4 : 8);
  for (const [name, ref, xs] of cases)
    it(`${name}: float64 within ${allowed(name, 64)} ulps of Math's, special values (±0, ±inf, NaN, subnormals) as Math's`, async () => {
      const f = (await mathExports(64))[name]!;
      let worst = 0;
      for (const x of [...xs, 1e-10, -1e-10, 1e-20, 0.0999, 0.1, 0.1001]) {
        const got = f(x), want = ref(x);
        const err = ulps(got, want, 64);
        if (!(err <= allowed(name, 64))) throw new Error(`${name}(${x}) = ${got}, Math says ${want} (${err} ulps)`);
        worst = Math.max(worst, err);
      }
      expect(worst).toBeLessThanOrEqual(allowed(name, 64));
    });
  for (const [name, ref, xs] of cases)
    it(`${name}: float32 within ${allowed(name, 32)} float32 ulps of Math's (rounded)`, async () => {
      const f = (await mathExports(32))[name]!;
      for (const x0 of [...xs, 1e-5, -1e-8, 0.0999, 0.1001]) {
        const x = Math.fround(x0);
        const got = f(x), want = Math.fround(ref(x));
        const err = ulps(got, want, 32);
        if (!(err <= allowed(name, 32))) throw new Error(`${name}(${x}) = ${got}, Math says ${want} (${err} float32 ulps)`);
      }
    });
});

/** A whole forward and backward of gru or lstm; every result as one Float64Array. */
function run(mod: typeof gru | typeof lstm, bits: 32 | 64, options: object, sizes = { D: 24, H: 40 }, B = 9, T = 4): Float64Array {
  const F = (bits === 64 ? Float64Array : Float32Array) as Float64ArrayConstructor;
  const k = (bits === 64 ? mod.createKernel64(sizes, B, T, options) : mod.createKernel32(sizes, B, T, options)) as unknown as gru.Kernel<Float64Array>;
  try {
    const p = F.from(mod.initParams(sizes, 7)) as Float64Array;
    const seq = (n: number, s: number) => F.from({ length: T * B * n }, (_: unknown, i: number) => Math.sin(i * s));
    const states = mod === gru ? ["h"] : ["h", "c"];
    const inputs = { x: seq(sizes.D, 0.37) };
    const initial = Object.fromEntries(states.map((s) => [s, F.from({ length: B * sizes.H }, (_: unknown, i: number) => Math.cos(i))])) as { h: Float64Array };
    const out = Object.fromEntries(states.map((s) => [s, new F(T * B * sizes.H) as Float64Array])) as { h: Float64Array };
    const up = Object.fromEntries(states.map((s, i) => [s, seq(sizes.H, 0.11 + i)])) as { h: Float64Array };
    const grads = { params: new F(p.length) as Float64Array, inputs: { x: new F(inputs.x.length) as Float64Array }, initial: Object.fromEntries(states.map((s) => [s, new F(B * sizes.H) as Float64Array])) as { h: Float64Array } };
    k.forward(p, inputs, initial, out);
    k.backward(p, inputs, initial, out, up, grads);
    return Float64Array.from([...Object.values(out).flatMap((a) => [...a]), ...grads.params, ...grads.inputs.x, ...Object.values(grads.initial).flatMap((a) => [...a])]);
  } finally {
    k.dispose();
  }
}

const bitsEqual = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

describe.runIf(simdAvailable())("the wasm path", () => {
  for (const [name, mod] of [["gru", gru], ["lstm", lstm]] as const)
    for (const bits of [32, 64] as const)
      it(`${name} f${bits}: 2 threads give the same bits as 1 (products and loops split, and not)`, () => {
        const one = run(mod, bits, { backend: "wasm", threads: 1 });
        expect(bitsEqual(run(mod, bits, { backend: "wasm", threads: 2 }), one)).toBe(true);
        expect(bitsEqual(run(mod, bits, { backend: "wasm", threads: 2, minSplitFlops: 0 }), one)).toBe(true);
        expect(bitsEqual(run(mod, bits, { backend: "wasm", threads: 3, minSplitFlops: 0 }), one)).toBe(true);
        // at sizes where the products are packed (rows ≥ 48) and split by rows and by columns
        const big = { D: 70, H: 66 };
        const oneBig = run(mod, bits, { backend: "wasm", threads: 1 }, big, 50, 2);
        expect(bitsEqual(run(mod, bits, { backend: "wasm", threads: 2, minSplitFlops: 0 }, big, 50, 2), oneBig)).toBe(true);
        expect(bitsEqual(run(mod, bits, { backend: "wasm", threads: 2, minSplitFlops: 0 }, big, 1, 3), run(mod, bits, { backend: "wasm", threads: 1 }, big, 1, 3))).toBe(true);
      });

  it("f64 agrees with the ts path to 1e-12, f32 within float32 rounding", () => {
    for (const mod of [gru, lstm]) {
      const ts = run(mod, 64, { backend: "ts" });
      const scale = Math.max(1, ...ts.map(Math.abs));
      const err = (a: Float64Array) => Math.max(...a.map((x, i) => Math.abs(x - ts[i]!))) / scale;
      expect(err(run(mod, 64, { backend: "wasm" }))).toBeLessThanOrEqual(1e-12);
      expect(err(run(mod, 32, { backend: "wasm" }))).toBeLessThanOrEqual(1e-4);
    }
  });

  it("is the default, and the kernel says which path and how many threads it has", () => {
    const k = gru.createKernel32({ D: 3, H: 4 }, 2, 3);
    expect(k.backend).toBe("wasm");
    expect(k.threads).toBe(1);
    const k2 = gru.createKernel32({ D: 3, H: 4 }, 2, 3, { threads: 2 });
    expect(k2.threads).toBe(2);
    k2.dispose();
    expect(gru.createKernel32({ D: 3, H: 4 }, 2, 3, { threads: "auto" }).threads).toBe(workerPool.cores());
  });

  it("a disposed kernel refuses to run, on either path", () => {
    for (const options of [{ backend: "wasm", threads: 2 }, { backend: "wasm" }, { backend: "ts" }] as const) {
      const k = gru.createKernel64({ D: 3, H: 4 }, 2, 3, options);
      k.dispose();
      expect(() => k.forward(gru.initParams({ D: 3, H: 4 }, 1), { x: new Float64Array(18) }, { h: new Float64Array(8) }, { h: new Float64Array(24) })).toThrow(/this kernel was disposed/);
    }
  });

  it("after workerPool.close(), a kernel made before says so, and a new one starts new workers", async () => {
    const sizes = { D: 8, H: 8 };
    const args = [Float32Array.from(gru.initParams(sizes, 1)), { x: new Float32Array(3 * 4 * 8) }, { h: new Float32Array(4 * 8) }, { h: new Float32Array(3 * 4 * 8) }] as const;
    const old = gru.createKernel32(sizes, 4, 3, { threads: 2, minSplitFlops: 0 });
    old.forward(...args);
    await workerPool.close();
    expect(workerPool.size()).toBe(0);
    expect(() => old.forward(...args)).toThrow(/worker threads were closed/);
    const fresh = gru.createKernel32(sizes, 4, 3, { threads: 2, minSplitFlops: 0 });
    fresh.forward(...args);
    expect(workerPool.size()).toBe(1);
    fresh.dispose();
  });

  it("workerPool.start(n) starts n - 1 workers ahead under Node (a browser's way; here harmless), and refuses a bad n", async () => {
    await workerPool.close();
    await workerPool.start(3);
    expect(workerPool.size()).toBe(2);
    await workerPool.start(2); // never fewer
    expect(workerPool.size()).toBe(2);
    const k = gru.createKernel32({ D: 8, H: 8 }, 4, 3, { threads: 3, minSplitFlops: 0 });
    k.forward(Float32Array.from(gru.initParams({ D: 8, H: 8 }, 1)), { x: new Float32Array(96) }, { h: new Float32Array(32) }, { h: new Float32Array(96) });
    expect(workerPool.size()).toBe(2);
    k.dispose();
    await expect(workerPool.start(0)).rejects.toThrow(/workerPool.start\(n\) takes n = 1, 2, … 64, got 0/);
    await workerPool.close();
  });

  it("refuses wrong lengths at entry, as the ts path does", () => {
    const sizes = { D: 3, H: 4 };
    const k = gru.createKernel64(sizes, 2, 3, { backend: "wasm" });
    const p = gru.initParams(sizes, 1);
    const h0 = { h: new Float64Array(8) }, out = { h: new Float64Array(24) };
    expect(() => k.forward(p, { x: new Float64Array(17) }, h0, out)).toThrow(/inputs\.x must have length 18 \(T×B×D\), got 17/);
    expect(() => k.forward(p, { x: new Float64Array(18) }, h0, { h: new Float64Array(23) })).toThrow(/out\.h must have length 24/);
  });

  it("refuses bad options with a clear message", () => {
    expect(() => gru.createKernel32({ D: 3, H: 4 }, 2, 3, { backend: "gpu" as "wasm" })).toThrow(/backend must be "wasm", "ts" or "auto"/);
    expect(() => gru.createKernel32({ D: 3, H: 4 }, 2, 3, { threads: 0 })).toThrow(/threads must be 1, 2, … or "auto"/);
    expect(() => gru.createKernel32({ D: 3, H: 4 }, 2, 3, { backend: "ts", threads: 2 })).toThrow(/threads > 1 needs the wasm backend/);
  });
});

describe("without WebAssembly SIMD", () => {
  it("falls back to the ts path, with the same results, and refuses an explicit wasm", () => {
    reportSimd(false);
    try {
      const k = gru.createKernel64({ D: 24, H: 40 }, 9, 4);
      expect(k.backend).toBe("ts");
      expect(bitsEqual(run(gru, 64, {}), run(gru, 64, { backend: "ts" }))).toBe(true);
      expect(() => gru.createKernel64({ D: 3, H: 4 }, 2, 3, { backend: "wasm" })).toThrow(/needs WebAssembly SIMD, which this engine does not have/);
    } finally {
      reportSimd(undefined);
    }
  });

  it("CELLFORGE_NO_SIMD=1: cellforge check runs the ts kernels and says the wasm columns did not run", async () => {
    const r = await runNode([join(ROOT, "bin", "cellforge.js"), "check", "rnn"], { cwd: ROOT, env: { ...process.env, CELLFORGE_NO_SIMD: "1" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("no WebAssembly SIMD: the wasm columns are not run");
    expect(r.stdout).toMatch(/rnn .* PASS/);
  }, 300_000);
});

describe.runIf(simdAvailable())("worker threads", () => {
  const script = (close: boolean) => `
    const gru = await import(${JSON.stringify(join(ROOT, "generated", "gru.ts"))});
    const { workerPool } = await import(${JSON.stringify(join(ROOT, "runtime", "pool.ts"))});
    const sizes = { D: 16, H: 16 };
    const k = gru.createKernel32(sizes, 8, 3, { threads: 2, minSplitFlops: 0 });
    const p = Float32Array.from(gru.initParams(sizes, 1));
    const out = { h: new Float32Array(3 * 8 * 16) };
    k.forward(p, { x: new Float32Array(3 * 8 * 16).fill(0.5) }, { h: new Float32Array(8 * 16) }, out);
    console.log("workers", workerPool.size(), "h", out.h[5].toFixed(6));
    ${close ? "await workerPool.close(); console.log('closed', workerPool.size());" : ""}
  `;
  const node = (code: string) => spawnSync(process.execPath, ["--conditions=cellforge-source", "--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });

  it("start once, and the process exits by itself without closing them", () => {
    const r = node(script(false));
    expect(r.error).toBeUndefined(); // no timeout: nothing kept the process alive
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/workers 1 h -?\d/);
  }, 60_000);

  it("close explicitly", () => {
    const r = node(script(true));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("closed 0");
  }, 60_000);
});

// The generated kernels: equal to the reference evaluator, checked against finite differences,
// float32 close to float64, fresh, typechecked, and strict about their arguments.
import { describe, expect, it } from "vitest";
import { runNode, runNodeOk } from "./spawn.ts";
import { existsSync, mkdtempSync, readFileSync, writeFileSync, cpSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCell, ROOT } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";
import { checkKernels, F32_TOL, F64_TOL } from "../check/kernelcheck.ts";
import { findConfig, generateAll } from "../cli/generate.ts";
import { buildPlan, type FullPlan } from "../codegen/plan.ts";
import { cellWasm, emitKernelModule } from "../codegen/emit.ts";
import { deriveBackward } from "../src/backward.ts";
import { CaseError, readCase } from "../cli/evalcase.ts";
import * as gru from "../generated/gru.ts";

const CELLS = ["rnn", "gru-cs224n", "gru", "lstm"];
const CONFIGS = [
  { B: 1, T: 1, sizes: undefined },
  { B: 3, T: 4, sizes: undefined },
  { B: 2, T: 3, sizes: { D: 6, H: 5 } },
  { B: 5, T: 2, sizes: { D: 9, H: 9 } }, // sizes past the 4×4 tile, with remainders
];

describe("generated kernels against the reference evaluator and finite differences", () => {
  for (const name of CELLS)
    for (const cf of CONFIGS)
      it(`${name} B=${cf.B} T=${cf.T} ${cf.sizes ? JSON.stringify(cf.sizes) : "default sizes"}`, async () => {
        const cell = await loadCell(name);
        const rows = await checkKernels(cell, randomCase(cell, { B: cf.B, T: cf.T, ...(cf.sizes ? { sizes: cf.sizes } : {}), seed: 3 }));
        for (const r of rows) expect(r.pass, `${r.what}: ${r.maxErr}`).toBe(true);
        expect(rows.find((r) => r.what.startsWith("ts f64 ="))!.maxErr).toBeLessThanOrEqual(F64_TOL);
        expect(rows.find((r) => r.what.startsWith("ts f32"))!.maxErr).toBeLessThanOrEqual(F32_TOL);
        // the wasm path: same numbers as the ts path in f64, within float32 rounding in f32, same bits on 2 threads
        expect(rows.find((r) => r.what.startsWith("wasm f64 ="))!.maxErr).toBeLessThanOrEqual(F64_TOL);
        expect(rows.find((r) => r.what.startsWith("wasm f32"))!.maxErr).toBeLessThanOrEqual(F32_TOL);
        expect(rows.find((r) => r.what.startsWith("wasm 2 threads"))!.maxErr).toBe(0);
      });
});

describe("generated files", () => {
  it("read as the GRU's equations: one body text, offsets once, each equation before its line, wasm arguments named alike on both sides", async () => {
    // emitted now, in memory, from dsl/gru.ts (not the committed file, which could be stale)
    const cell = await loadCell("gru");
    const plan = buildPlan(cell, deriveBackward(cell)) as FullPlan;
    const wasm = await cellWasm(plan, "dsl/gru.ts");
    const ts = await emitKernelModule(plan, { source: "dsl/gru.ts", wasm });
    const lines = ts.split("\n"), wat = wasm.text.split("\n").map((l) => l.trim());
    const count = (re: RegExp) => (ts.match(re) ?? []).length;
    // one kernel body for both precisions, and the exported entries are thin calls into it
    expect(count(/\nfunction createKernel<A extends FloatArray>\(/g)).toBe(1);
    expect(count(/const forward: Kernel<A>\["forward"\] = /g)).toBe(1);
    expect(count(/const backward: Kernel<A>\["backward"\] = /g)).toBe(1);
    expect(count(/function forwardStep\(/g)).toBe(1);
    for (const bits of [32, 64]) expect(ts).toMatch(new RegExp(`export function createKernel${bits}\\([^)]*\\): Kernel<Float${bits}Array> \\{\\n\\s*return createKernel\\(FLOAT${bits}, sizes, B, T, options\\);`));
    // the memory is sized by one closed form over the sizes, B, T and seg, not a list of buffers
    expect(ts).toMatch(/const need = \{\s*floats: [^;]*\bB \* H \* T\b[^;]*buffers: \d+,?\s*\};/);
    // places whose rows step together share one row variable: no two in a loop compute the same row
    for (const [, decls] of ts.matchAll(/for \(let b = 0; b < [^;]+; b\+\+\) \{\n((?:\s*const \w+ = [^;]+;\n)+)/g)) {
      const rows = decls!.trim().split("\n").map((l) => l.trim().replace(/^const \w+ = /, ""));
      expect(new Set(rows).size, decls).toBe(rows.length);
    }
    // every offset is computed once, where the layout is written
    for (const q of cell.params) expect(count(new RegExp(`const o_${q.name} =`, "g")), q.name).toBe(1);
    // each equation is a comment on the line before the value it defines: in TypeScript, and in the
    // .wat in both precisions, in the vector loop and in its scalar tail
    for (const eq of cell.equations) {
      const local = eq.lhs.replace(/'/g, "_next");
      const at = lines.findIndex((l) => l.trim() === `// ${eq.text}`);
      expect(at, eq.text).toBeGreaterThan(0);
      expect(lines[at + 1]!.trim(), eq.text).toMatch(new RegExp(`^const ${local} =`));
      const w = wat.flatMap((l, i) => (l === `;; ${eq.text.replace(/\s+/g, " ")}` ? [wat[i + 1]!] : []));
      expect(w.filter((l) => l.startsWith(`(local.set $v_${local} `)).length, eq.text).toBe(2);
      expect(w.filter((l) => l.startsWith(`(local.set $f_${local} `)).length, eq.text).toBe(2);
    }
    // a saved value has one name: the tape of r is tape_r, of the unnamed t1 tape_t1
    for (const [, tape] of ts.matchAll(/const tape_(\w+) = mem\.alloc/g)) expect(ts, tape).toMatch(new RegExp(`const ${tape} =\\s`));
    // no wasm parameter is a bare letter and a number ($a0, $s0, $z0): each is named after its place
    // (the rows b0 ≤ b < b1 excepted)
    expect(wasm.text).not.toMatch(/\(param \$(?!b[01] )[a-z]\d+ /);
    // each loop call passes, in order, the parameters its .wat function takes, and says which is which
    const calls = [...ts.matchAll(/wl\((\d+), [^,]+, \[\n([^\]]*)\]\)/g)];
    expect(calls.length).toBe(wasm.loops.size); // each loop called from the one body
    for (const [, id, body] of calls) {
      const named = body!.trim().split("\n").map((l) => /\/\/ \$(\S+)$/.exec(l)?.[1]);
      const fn = wat.find((l) => l.startsWith(`(func $f32_${id} `))!;
      const params = [...fn.matchAll(/\(param \$(\S+) i32\)/g)].map((m) => m[1]).slice(2); // after b0 and b1
      expect(named, `loop ${id}`).toEqual(params);
    }
  });

  it("are byte-deterministic and fresh", async () => {
    const cfg = findConfig(ROOT);
    const a = await generateAll(cfg), b = await generateAll(cfg);
    expect(a.map((f) => f.text)).toEqual(b.map((f) => f.text));
    for (const f of a) expect(readFileSync(f.path, "utf8"), `${f.path} is stale: npm run generate`).toBe(f.text);
    for (const f of a) {
      expect(f.text.startsWith(f.path.endsWith(".wat") ? ";; Generated by cellforge from " : "// Generated by cellforge from ")).toBe(true);
      expect(f.text).not.toMatch(/\/work\/|\d{4}-\d\d-\d\dT/); // no absolute paths, no timestamps
      expect(f.text).not.toMatch(/@ts-nocheck|@ts-ignore/);
    }
  });

  it("generate --check notices a stale file and a stray one, and names them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellforge-stale-"));
    try {
      for (const f of ["package.json", "tsconfig.json", "bin", "src", "runtime", "codegen", "check", "cli", "nn", "dsl", "generated"]) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
      cpSync(join(ROOT, "node_modules"), join(dir, "node_modules"), { recursive: true, dereference: false, verbatimSymlinks: true });
      const run = () => runNode([join(dir, "bin", "cellforge.js"), "generate", "--check"], { cwd: dir });
      expect((await run()).status).toBe(0);
      writeFileSync(join(dir, "generated", "lstm.ts"), readFileSync(join(dir, "generated", "lstm.ts"), "utf8").replace("Math.tanh", "Math.sinh"));
      // a kernel whose cell was removed from dsl/ is stray; a file cellforge did not write is not, and stays
      writeFileSync(join(dir, "generated", "old-cell.ts"), readFileSync(join(dir, "generated", "gru.ts"), "utf8"));
      writeFileSync(join(dir, "generated", "notes.ts"), "// mine\n");
      const r = await run();
      expect(r.status).toBe(1);
      expect(r.stdout).toContain("generated/lstm.ts");
      expect(r.stdout).toContain("generated/old-cell.ts");
      expect(r.stdout).not.toContain("notes.ts");
      expect((await runNode([join(dir, "bin", "cellforge.js"), "generate"], { cwd: dir })).status).toBe(0);
      expect(existsSync(join(dir, "generated", "old-cell.ts"))).toBe(false);
      expect(readFileSync(join(dir, "generated", "notes.ts"), "utf8")).toBe("// mine\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it("typecheck in strict mode", async () => {
    const out = await runNode([join(ROOT, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", join(ROOT, "tsconfig.json")]);
    // the whole project, generated/ included, under strict and noUncheckedIndexedAccess
    expect(out.stdout + out.stderr).toBe("");
    expect(out.status).toBe(0);
    const cfg = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8"));
    expect(cfg.compilerOptions.strict).toBe(true);
  }, 120_000);
});

describe("kernel arguments", () => {
  const sizes = { D: 3, H: 4 };
  const k = gru.createKernel64(sizes, 2, 3);
  const p = gru.initParams(sizes, 1);
  const ok = { x: new Float64Array(3 * 2 * 3) }, h0 = { h: new Float64Array(2 * 4) }, out = { h: new Float64Array(3 * 2 * 4) };

  it("accept the right lengths and run", () => {
    expect(() => k.forward(p, ok, h0, out)).not.toThrow();
  });
  it("refuse a wrong length, naming the argument and its shape", () => {
    expect(() => k.forward(p, { x: new Float64Array(17) }, h0, out)).toThrow(/inputs\.x must have length 18 \(T×B×D\), got 17/);
    expect(() => k.forward(p.subarray(1), ok, h0, out)).toThrow(/params must have length/);
    expect(() => k.forward(p, ok, { h: new Float64Array(7) }, out)).toThrow(/initial\.h must have length 8 \(B×H\)/);
  });
  it("refuse the wrong precision and missing arrays", () => {
    expect(() => k.forward(Float32Array.from(p) as unknown as Float64Array, ok, h0, out)).toThrow(/params must be a Float64Array/);
    expect(() => k.forward(p, {} as typeof ok, h0, out)).toThrow(/inputs\.x must be a Float64Array .* got undefined/);
  });
  it("refuse bad sizes, batch and steps", () => {
    expect(() => gru.createKernel64({ D: 0, H: 4 }, 2, 3)).toThrow(/size D must be a positive integer/);
    expect(() => gru.createKernel32(sizes, 2.5, 3)).toThrow(/B must be a positive integer/);
    expect(() => gru.createKernel32(sizes, 2, 0)).toThrow(/T must be a positive integer/);
  });
  it("lay parameters out in one flat buffer, in gate order", () => {
    const l = gru.paramLayout(sizes);
    expect(l.total).toBe(3 * 4 * (3 + 4 + 2));
    expect(l.params.map((q) => q.name).slice(0, 6)).toEqual(["Wir", "Wiz", "Win", "Whr", "Whz", "Whn"]);
  });
});

describe("eval case files", () => {
  it("refuse malformed cases, naming the field and the shape", async () => {
    const cell = await loadCell("gru");
    const file = join(mkdtempSync(join(tmpdir(), "cellforge-case-")), "case.json");
    await runNodeOk([join(ROOT, "bin", "cellforge.js"), "eval", "gru", "--example", file]);
    const good = JSON.parse(readFileSync(file, "utf8"));
    expect(() => readCase(cell, good)).not.toThrow();
    const bad = (f: (c: any) => void) => { const c = structuredClone(good); f(c); return () => readCase(cell, c); };
    expect(bad((c) => (c.params.Wir[1] = [1, 2]))).toThrow(/params\.Wir\[1\]: expected an array of 3 \(params\.Wir has shape \[H,D\] = \[4,3\]\)/);
    expect(bad((c) => delete c.params.bhn)).toThrow(/params\.bhn: missing \(shape \[H\]\)/);
    expect(bad((c) => (c.inputs.x[0][0][0] = "a"))).toThrow(/inputs\.x\[0\]\[0\]\[0\]: expected a finite number/);
    expect(bad((c) => (c.T = 0))).toThrow(CaseError);
    expect(bad((c) => (c.sizes.Q = 3))).toThrow(/sizes\.Q: gru has no size Q/);
    expect(bad((c) => delete c.upstream)).toThrow(/upstream: expected an object/);
  });

  it("round-trips through the CLI, generated kernel equal to the reference", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellforge-eval-"));
    const cli = (...a: string[]) => runNodeOk([join(ROOT, "bin", "cellforge.js"), ...a]);
    await cli("eval", "lstm", "--example", join(dir, "case.json"));
    await cli("eval", "lstm", "--in", join(dir, "case.json"), "--out", join(dir, "k.json"));
    await cli("eval", "lstm", "--in", join(dir, "case.json"), "--reference", "--out", join(dir, "r.json"));
    const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : typeof x === "object" && x ? Object.keys(x).sort().flatMap((k) => flat((x as Record<string, unknown>)[k])) : typeof x === "number" ? [x] : []);
    const a = flat(JSON.parse(readFileSync(join(dir, "k.json"), "utf8"))), b = flat(JSON.parse(readFileSync(join(dir, "r.json"), "utf8")));
    expect(a.length).toBe(b.length);
    expect(a.length).toBeGreaterThan(100);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(b[i]!)));
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});

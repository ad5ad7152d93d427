// The gate every kernel passes before it is used or written (check/kernelcheck.ts `proveKernel`):
// planted wrong kernels are refused on each path and by each command that hands a kernel out, with
// the cell, the path and the quantity named. Kernels for cells outside dsl/ are made in memory
// (nothing in a shared temporary folder) and typechecked; the verdict is kept in a private cache
// (check/privatecache.ts) that is checked, written atomically, never follows a link, and cleaned.
import { spawn } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { F64_TOL, type KernelModule, gateCase, loadKernels, plantKernelFault, proveKernel, runKernel } from "../check/kernelcheck.ts";
import { type KernelPath, KernelRefusedError } from "../check/kernelerror.ts";
import { CacheError, openPrivateCache, privateCacheDir } from "../check/privatecache.ts";
import { typecheckKernel } from "../check/typecheck.ts";
import { caseToJson, readCase, writeResult } from "../cli/evalcase.ts";
import { deriveBackward } from "../src/backward.ts";
import { loadCell } from "../src/load.ts";
import { gradients, randomCase } from "../src/sequence.ts";
import { simdAvailable } from "../runtime/memory.ts";
import { wrongKernel } from "./fixtures/wrongkernel.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "cellforge.js");
const FAULTY = join(ROOT, "test", "fixtures", "faulty-cli.mjs");
const JSON_CELL = join(ROOT, "test", "fixtures", "cells", "gru.json"); // the cell "gru-json", outside dsl/
const TMP = mkdtempSync(join(tmpdir(), "cellforge-gate-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
// this file's typecheck verdicts go to a cache of its own
process.env.XDG_CACHE_HOME = join(TMP, "xdg-inprocess");

/** A stack trace or Node's own error output: never shown for a refused kernel. */
const STACK = /^\s+at |node:internal|ERR_[A-Z_]+/m;
const WASM = simdAvailable() ? "wasm" : "ts";
const PATHS: KernelPath[] = [{ backend: "ts", bits: 64 }, { backend: "ts", bits: 32 }, ...(simdAvailable() ? [{ backend: "wasm", bits: 64 }, { backend: "wasm", bits: 32 }] as const : [])];
const refusal = (cell: string, p: KernelPath, what: string) => new RegExp(`^kernel for cell "${cell}" disagrees with the reference evaluator on the ${p.backend} path, float${p.bits}: ${what} differs by `, "m"); // at a line's start: generate prints its progress before

// The doubled recurrence whose dU the lowering once got wrong (issue 11): a natural test while it lasted.
const DOUBLED = join(TMP, "doubled.json");
writeFileSync(DOUBLED, JSON.stringify({
  name: "doubled", doc: "a plain RNN with a doubled recurrence", sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" }, state: { h: "H" }, params: { W: ["H", "D"], U: ["H", "H"], b: "H" }, equations: ["h' = tanh(W*x + 2 * U*h + b)"],
}));

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }
function node(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd, env: { ...process.env, XDG_CACHE_HOME: join(TMP, "xdg-cli"), NO_COLOR: "1", ...env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
const faulty = (fault: string, ...args: string[]) => node([FAULTY, fault, ...args]);

/** Every number of a nested JSON value, keys sorted. */
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : typeof x === "object" && x ? Object.keys(x).sort().flatMap((k) => flat((x as Record<string, unknown>)[k])) : typeof x === "number" ? [x] : []);

/** A case file for a cell, and its result by the reference evaluator (as `eval --reference` writes it). */
async function caseAndReference(ref: string, file: string): Promise<number[]> {
  const cell = await loadCell(ref);
  const c = readCase(cell, caseToJson(cell, randomCase(cell, { B: 2, T: 3, seed: 5 })));
  writeFileSync(file, JSON.stringify(caseToJson(cell, c)));
  const { forward, grads } = gradients(deriveBackward(cell), c);
  return flat(writeResult(cell, c, { outputs: forward.outputs, params: grads.params, inputs: grads.inputs, initial: grads.initial }));
}

describe("the gate, in process", () => {
  it("passes the kernels of cells in dsl/ and outside it, on every path this engine has", async () => {
    for (const ref of ["gru", "lstm", "sru", JSON_CELL]) {
      const cell = await loadCell(ref);
      const proof = proveKernel(cell, await loadKernels(cell));
      expect(proof.paths).toEqual(PATHS);
    }
  }, 240_000);

  it("refuses a planted wrong gradient on each path, naming the cell, the path and the parameter", async () => {
    const cell = await loadCell("gru");
    const mod = await loadKernels(cell);
    for (const p of PATHS) {
      let err: unknown;
      try {
        proveKernel(cell, wrongKernel(mod, p, { param: "Whz" }));
      } catch (e) {
        err = e;
      }
      expect(err, `${p.backend} ${p.bits}`).toBeInstanceOf(KernelRefusedError);
      const e = err as KernelRefusedError;
      expect(e.message).toMatch(refusal("gru", p, "dWhz"));
      expect(e.message).toMatch(/a random case at D=3 H=4 B=2 T=3\)\n  the kernel was not used\. .*`cellforge check gru`/);
      expect(e.cell).toBe("gru");
      expect(e.path).toEqual(p);
    }
  }, 120_000);

  it("names the first quantity that differs: the forward's values, an input's gradient; refuses NaN and a kernel that throws", async () => {
    const cell = await loadCell("lstm");
    const mod = await loadKernels(cell);
    const ts64: KernelPath = { backend: "ts", bits: 64 }, w32: KernelPath = { backend: WASM, bits: 32 };
    expect(() => proveKernel(cell, wrongKernel(mod, ts64, { where: "forward" }))).toThrow(refusal("lstm", ts64, "the forward's h"));
    expect(() => proveKernel(cell, wrongKernel(mod, w32, { where: "input" }))).toThrow(refusal("lstm", w32, "dx"));
    expect(() => proveKernel(cell, wrongKernel(mod, w32, { by: NaN }))).toThrow(/differs by NaN/);
    expect(() => proveKernel(cell, wrongKernel(mod, ts64, { where: "throw" }))).toThrow(/^kernel for cell "lstm" fails on the ts path, float64, on a random case at D=3 H=4 B=2 T=3: a planted failure/);
  }, 120_000);

  it("holds each path to its rule: float64 to 1e-12 of the reference, float32 to 1e-4 of float64", async () => {
    const cell = await loadCell("rnn");
    const mod = await loadKernels(cell);
    const p64: KernelPath = { backend: WASM, bits: 64 }, p32: KernelPath = { backend: WASM, bits: 32 };
    expect(() => proveKernel(cell, wrongKernel(mod, p64, { by: 1e-9 }))).toThrow(refusal("rnn", p64, "dWih"));
    expect(() => proveKernel(cell, wrongKernel(mod, p32, { by: 1e-6 }))).not.toThrow();
    expect(() => proveKernel(cell, wrongKernel(mod, p32, { by: 1e-3 }))).toThrow(refusal("rnn", p32, "dWih"));
  }, 120_000);

  it("loadKernels proves before it hands a kernel out, once per kernel and process (a planted fault always)", async () => {
    const cell = await loadCell(JSON_CELL);
    const mod = await loadKernels(cell); // proven now, or earlier in this file
    const p: KernelPath = { backend: WASM, bits: 64 };
    plantKernelFault((m) => wrongKernel(m, p, { param: "bhn" }));
    try {
      await expect(loadKernels(cell)).rejects.toThrow(refusal("gru-json", p, "dbhn"));
      await expect(loadKernels(cell)).rejects.toThrow(KernelRefusedError);
    } finally {
      plantKernelFault();
    }
    // the verdict is kept: the same kernel again does not run the gate (which would create kernels)
    const m = mod as { -readonly [K in keyof KernelModule]: KernelModule[K] };
    const create = m.createKernel64;
    let created = 0;
    m.createKernel64 = (...a) => (created++, create(...a));
    try {
      expect(await loadKernels(cell)).toBe(mod);
      expect(created).toBe(0);
      proveKernel(cell, mod);
      // each float64 path runs whole, then checkpointed
      expect(created).toBe(2 * PATHS.filter((q) => q.bits === 64).length);
    } finally {
      m.createKernel64 = create;
    }
  }, 240_000);

  it("the doubled recurrence: its kernel equals the reference or is refused, never silently wrong", async () => {
    const cell = await loadCell(DOUBLED);
    let mod: KernelModule;
    try {
      mod = await loadKernels(cell);
    } catch (e) {
      expect(e).toBeInstanceOf(KernelRefusedError);
      expect((e as Error).message).toMatch(/^kernel for cell "doubled" disagrees with the reference evaluator on the ts path, float64: d\w+ differs by /);
      return;
    }
    const c = randomCase(cell, { sizes: { D: 5, H: 6 }, B: 3, T: 4, seed: 7 });
    const k = runKernel(mod, c, 64), ref = gradients(deriveBackward(cell), c);
    const layout = mod.paramLayout(c.sizes);
    for (const q of layout.params) {
      const g = ref.grads.params[q.name]!, s = Math.max(1, ...g.map(Math.abs));
      for (let i = 0; i < g.length; i++) expect(Math.abs(k.params[q.offset + i]! - g[i]!) / s, `d${q.name}`).toBeLessThanOrEqual(F64_TOL);
    }
  }, 240_000);

  it("the gate's case is small and fixed: the default sizes, B=2, T=3", async () => {
    const cell = await loadCell("gru");
    const c = gateCase(cell);
    expect([c.sizes, c.B, c.T]).toEqual([cell.defaults, 2, 3]);
    expect(gateCase(cell).inputs).toEqual(c.inputs);
  });
});

describe("typechecking a kernel made on the fly", () => {
  it("refuses a kernel text with a type error, naming the line; passes the committed text and remembers it in the private cache", async () => {
    const cache = join(TMP, "xdg-typecheck", "cellforge");
    const text = readFileSync(join(ROOT, "generated", "rnn.ts"), "utf8");
    const bad = text + "export const wrong: number = spec.name;\n";
    const line = bad.split("\n").length - 1;
    expect(() => typecheckKernel({ name: "rnn" }, bad, cache)).toThrow(new RegExp(`^kernel for cell "rnn" does not typecheck under tsconfig.json's options \\(strict, noUncheckedIndexedAccess\\):\\n    line ${line}: Type 'string' is not assignable to type 'number'`));
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]); // a failure is not remembered
    expect(typecheckKernel({ name: "rnn" }, text, cache).checked).toBe(true);
    const entries = readdirSync(cache);
    expect(entries).toEqual([expect.stringMatching(/^typecheck-[0-9a-f]{64}\.ok$/)]);
    expect(readFileSync(join(cache, entries[0]!), "utf8")).toMatch(/^typecheck passed: kernel for cell "rnn"/);
    expect(typecheckKernel({ name: "rnn" }, text, cache).checked).toBe(false);
  }, 180_000);
});

describe("the private cache", () => {
  const fresh = (name: string) => join(mkdtempSync(join(TMP, `${name}-`)), "cellforge");

  it("lives in $XDG_CACHE_HOME/cellforge, or ~/.cache/cellforge when that is unset or relative", () => {
    expect(privateCacheDir({ XDG_CACHE_HOME: "/x/cache" })).toBe("/x/cache/cellforge");
    expect(privateCacheDir({ XDG_CACHE_HOME: "rel" })).toMatch(/\/\.cache\/cellforge$/);
    expect(privateCacheDir({})).toMatch(/\/\.cache\/cellforge$/);
  });

  it("is created with mode 0700, its entries written whole (mode 0600, no temporary file left)", () => {
    const dir = fresh("create");
    const c = openPrivateCache(dir);
    expect(lstatSync(dir).isDirectory()).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    c.put("a.ok", "yes\n");
    expect(c.get("a.ok")).toBe("yes\n");
    expect(statSync(join(dir, "a.ok")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["a.ok"]);
    expect(() => c.put("../escape", "x")).toThrow(/not a cache entry's name/);
  });

  it("refuses a folder that is a link, a file, open to others, or someone else's, saying what to do", () => {
    const real = fresh("real");
    mkdirSync(real, { mode: 0o700 });
    const link = fresh("link");
    symlinkSync(real, link);
    expect(() => openPrivateCache(link)).toThrow(CacheError);
    expect(() => openPrivateCache(link)).toThrow(/cache folder .* is a symbolic link: remove it/);
    const file = fresh("file");
    writeFileSync(file, "");
    expect(() => openPrivateCache(file)).toThrow(/is not a folder/);
    const open = fresh("open");
    mkdirSync(open, { mode: 0o700 });
    chmodSync(open, 0o755);
    expect(() => openPrivateCache(open)).toThrow(/has mode 0755, so others may read or write it: it must be 0700 \(chmod 700 /);
    if (process.getuid?.() === 0) {
      const other = fresh("other");
      mkdirSync(other, { mode: 0o700 });
      chownSync(other, 12345, 12345);
      expect(() => openPrivateCache(other)).toThrow(/belongs to user 12345, not to you \(0\)/);
    }
  });

  it("never follows a link planted at an entry: not read, and a write replaces the link, not its target", () => {
    const dir = fresh("links");
    const c = openPrivateCache(dir);
    const target = join(TMP, "target.txt");
    writeFileSync(target, "verdict\n");
    symlinkSync(target, join(dir, "v.ok"));
    expect(c.get("v.ok")).toBeUndefined();
    c.put("v.ok", "mine\n");
    expect(readFileSync(target, "utf8")).toBe("verdict\n");
    expect(lstatSync(join(dir, "v.ok")).isSymbolicLink()).toBe(false);
    expect(c.get("v.ok")).toBe("mine\n");
  });

  it("drops entries unused for 7 days, left-over temporary files, and the oldest beyond its limit; reading keeps an entry fresh", () => {
    const dir = fresh("clean");
    const c = openPrivateCache(dir);
    const now = Date.now() / 1000, day = 86400;
    const put = (name: string, ageDays: number) => {
      writeFileSync(join(dir, name), name);
      utimesSync(join(dir, name), now - ageDays * day, now - ageDays * day);
    };
    put("old.ok", 8);
    put("used.ok", 8);
    put("recent.ok", 6);
    put(".x.ok.1.ab.tmp", 0.1);
    put(".y.ok.1.cd.tmp", 0);
    expect(c.get("used.ok")).toBe("used.ok"); // read: its time is now
    openPrivateCache(dir);
    expect(readdirSync(dir).sort()).toEqual([".y.ok.1.cd.tmp", "recent.ok", "used.ok"]);
    for (let i = 0; i < 5; i++) put(`n${i}.ok`, 1 + i / 10);
    openPrivateCache(dir, { maxEntries: 3 });
    expect(readdirSync(dir).filter((f) => !f.startsWith(".")).sort()).toEqual(["n0.ok", "n1.ok", "used.ok"]);
  });
});

describe.concurrent("the commands refuse a planted wrong kernel: exit 1, the cell, the path and the quantity, no stack trace, nothing written", () => {
  const refused = (r: Run, cell: string, p: KernelPath) => {
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toMatch(refusal(cell, p, "d\\w+"));
    expect(r.code).toBe(1);
  };

  it("eval of a cell in dsl/", async () => {
    const file = join(TMP, "eval-gru.json"), out = join(TMP, "eval-gru-out.json");
    await caseAndReference("gru", file);
    refused(await faulty("gru:ts:64", "eval", "gru", "--in", file, "--out", out), "gru", { backend: "ts", bits: 64 });
    expect(existsSync(out)).toBe(false);
  }, 600_000);

  it("eval of a cell outside dsl/ (made in memory and typechecked)", async () => {
    const file = join(TMP, "eval-json.json"), out = join(TMP, "eval-json-out.json");
    await caseAndReference(JSON_CELL, file);
    refused(await faulty(`gru-json:${WASM}:32`, "eval", JSON_CELL, "--in", file, "--out", out), "gru-json", { backend: WASM, bits: 32 });
    expect(existsSync(out)).toBe(false);
  }, 600_000);

  it("train", async () => {
    const out = join(TMP, "train-run");
    const r = await faulty("gru:ts:32", "train", "gru", "--task", "adding", "--T", "5", "--steps", "2", "--hidden", "4", "--B", "2", "--out", out);
    refused(r, "gru", { backend: "ts", bits: 32 });
    expect(existsSync(out)).toBe(false);
  }, 600_000);

  it("compare: before any cell trains", async () => {
    const out = join(TMP, "compare-run");
    const r = await faulty(`lstm:${WASM}:64`, "compare", "gru", "lstm", "--task", "adding", "--T", "5", "--steps", "2", "--hidden", "4", "--B", "2", "--out", out);
    refused(r, "lstm", { backend: WASM, bits: 64 });
    expect(r.stdout).toBe("");
    expect(existsSync(out)).toBe(false);
  }, 600_000);

  it("bench", async () => {
    const r = await faulty(`gru:${WASM}:32`, "bench", "gru", "--B", "2", "--T", "3", "--size", "4");
    refused(r, "gru", { backend: WASM, bits: 32 });
    expect(r.stdout).toBe("");
  }, 600_000);

  it("generate: refuses before it writes any file", async () => {
    // a copy of the checkout (node_modules linked), where generated/lstm.ts is stale: generate would rewrite it
    const dir = mkdtempSync(join(TMP, "generate-"));
    for (const f of ["package.json", "tsconfig.json", "bin", "src", "runtime", "codegen", "check", "cli", "nn", "dsl", "generated", "test/fixtures"]) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
    const stale = join(dir, "generated", "lstm.ts");
    writeFileSync(stale, readFileSync(stale, "utf8").replace("Math.tanh", "Math.sinh"));
    const before = new Map(readdirSync(join(dir, "generated")).map((f) => [f, readFileSync(join(dir, "generated", f), "utf8")]));
    const r = await node([join(dir, "test", "fixtures", "faulty-cli.mjs"), "lstm:ts:64", "generate"], {}, dir);
    refused(r, "lstm", { backend: "ts", bits: 64 });
    expect(r.stdout).toBe("");
    const after = new Map(readdirSync(join(dir, "generated")).map((f) => [f, readFileSync(join(dir, "generated", f), "utf8")]));
    expect(after).toEqual(before);
  }, 600_000);
});

describe.concurrent("kernels are made in memory: nothing from the shared temporary folder", () => {
  it("eval of a cell outside dsl/ writes nothing through a link planted at the old kernel folder, and is right", async () => {
    const tmp = mkdtempSync(join(TMP, "tmpdir-")), attacker = mkdtempSync(join(TMP, "attacker-"));
    symlinkSync(attacker, join(tmp, "cellforge-kernels")); // the old, shared and predictable kernel folder
    const file = join(TMP, "inmemory-case.json"), out = join(TMP, "inmemory-out.json");
    const ref = await caseAndReference(JSON_CELL, file);
    const xdg = join(TMP, "xdg-inmemory");
    const r = await node([BIN, "eval", JSON_CELL, "--in", file, "--out", out], { TMPDIR: tmp, XDG_CACHE_HOME: xdg });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readdirSync(attacker)).toEqual([]);
    const { backend, precision, ...result } = JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>;
    expect([backend, precision]).toEqual(["wasm", 64]); // what ran is said beside the result, and is not part of it
    const got = flat(result);
    expect(got.length).toBe(ref.length);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(F64_TOL * Math.max(1, Math.abs(ref[i]!)));
    // its typecheck verdict went to the private cache, mode 0700
    const cache = join(xdg, "cellforge");
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    const entries = readdirSync(cache);
    expect(entries).toEqual([expect.stringMatching(/^typecheck-[0-9a-f]{64}\.ok$/)]);
    // a link planted at that entry is not followed: the next run checks again and puts a file in its place
    const entry = join(cache, entries[0]!), decoy = join(TMP, "decoy.txt");
    writeFileSync(decoy, readFileSync(entry, "utf8"));
    rmSync(entry);
    symlinkSync(decoy, entry);
    const again = await node([BIN, "eval", JSON_CELL, "--in", file, "--out", out], { TMPDIR: tmp, XDG_CACHE_HOME: xdg });
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(lstatSync(entry).isSymbolicLink()).toBe(false);
    expect(readFileSync(entry, "utf8")).toBe(readFileSync(decoy, "utf8"));
    // a cache folder that is a link is refused, with a message and no stack trace
    const moved = join(TMP, "xdg-inmemory-real");
    renameSync(cache, moved);
    symlinkSync(moved, cache);
    const refused = await node([BIN, "eval", JSON_CELL, "--in", file, "--out", out], { TMPDIR: tmp, XDG_CACHE_HOME: xdg });
    expect(refused.stderr).not.toMatch(STACK);
    expect(refused.stderr).toMatch(/^the cellforge cache folder .*xdg-inmemory\/cellforge is a symbolic link: remove it, or set XDG_CACHE_HOME to a folder of your own$/m);
    expect(refused.code).toBe(1);
  }, 600_000);
});

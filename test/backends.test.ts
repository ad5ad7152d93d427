// The backend registry (runtime/memory.ts BACKENDS): a backend added to it is taken up by the kernel
// check, the gate, `check`'s columns and the bench without editing them. A planted third backend:
// the ts one under another name passes; one whose product is wrong is caught (mutation testing, as in
// test/gradcheck.test.ts); one this engine cannot run is refused with what it lacks.
import { afterEach, describe, expect, it } from "vitest";
import type { FloatArray } from "../runtime/checks.ts";
import { BACKENDS, type BackendMemory, type KernelBackend, type MemoryRequest, type Products, REFERENCE_BACKEND, registerBackend, resolveBackend, simdAvailable, tsBackend } from "../runtime/memory.ts";
import { checkKernels, loadKernels, proveKernel } from "../check/kernelcheck.ts";
import { type KernelPath, KernelRefusedError } from "../check/kernelerror.ts";
import { loadCell } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";
import * as gru from "../generated/gru.ts";

/** The ts backend under another name: the same numbers, so every comparison passes. */
const copy = (name: string): KernelBackend => ({ ...tsBackend, name, description: `the ts backend, registered again as ${name}` });

/** The ts backend with one product wrong: every NT product (x·Wᵀ, the forward's) has its first element moved by `by`. */
const wrongProduct = (name: string, by: number): KernelBackend => ({
  ...copy(name),
  memory<A extends FloatArray>(req: MemoryRequest<A>): BackendMemory<A> {
    const m = tsBackend.memory(req);
    const NT: Products<A>["NT"] = (rows, mm, k, a, aOff, aStride, w, bOff, c, cOff, cStride, acc) => {
      m.mm.NT(rows, mm, k, a, aOff, aStride, w, bOff, c, cOff, cStride, acc);
      c[cOff]! += by;
    };
    return { ...m, mm: { ...m.mm, NT } };
  },
});

let unregister: (() => void)[] = [];
const register = (b: KernelBackend) => unregister.push(registerBackend(b));
afterEach(() => {
  for (const u of unregister.splice(0)) u();
});

describe("the registry", () => {
  it("holds the ts and wasm backends, ts the reference; auto picks the first available", () => {
    expect(BACKENDS.map((b) => b.name)).toEqual(["wasm", "ts"]);
    expect(REFERENCE_BACKEND.name).toBe("ts");
    expect(resolveBackend("c", {}).name).toBe(simdAvailable() ? "wasm" : "ts");
  });

  it("refuses a second backend of the same name, and one named auto", () => {
    expect(() => registerBackend(copy("ts"))).toThrow(/already registered/);
    expect(() => registerBackend(copy("auto"))).toThrow(/already registered, or the name is "auto"/);
  });

  it("a registered backend runs kernels, reports its name, and is named in the errors", () => {
    register(copy("ts-copy"));
    const k = gru.createKernel64({ D: 3, H: 4 }, 2, 3, { backend: "ts-copy" });
    expect(k.backend).toBe("ts-copy");
    expect(() => gru.createKernel64({ D: 3, H: 4 }, 2, 3, { backend: "gpu" })).toThrow(/backend must be "wasm", "ts", "ts-copy" or "auto", got "gpu"/);
    expect(() => gru.createKernel64({ D: 3, H: 4 }, 2, 3, { backend: "ts-copy", threads: 2 })).toThrow(/threads > 1 needs the wasm backend \(the ts-copy kernels run on one thread\)/);
    // "auto" still prefers the backends registered before it
    expect(resolveBackend("c", {}).name).not.toBe("ts-copy");
  });

  it("a backend this engine cannot run is refused with what it lacks, and skipped by the check", async () => {
    register({ ...copy("device"), available: () => ({ ok: false, missing: "a planted device" }) });
    expect(() => gru.createKernel64({ D: 3, H: 4 }, 2, 3, { backend: "device" })).toThrow(/backend "device" needs a planted device, which this engine does not have \(use backend (.*, )?"ts" or "auto"\)/);
    const cell = await loadCell("rnn");
    const rows = await checkKernels(cell, randomCase(cell, { B: 2, T: 3, seed: 1 }));
    expect(rows.some((r) => r.backend === "device")).toBe(false);
  }, 120_000);
});

describe("a third backend gets checked", () => {
  it("the check has its rows (f64 against the reference backend, f32 against that f64), and they pass", async () => {
    register(copy("ts-copy"));
    const cell = await loadCell("rnn");
    const rows = await checkKernels(cell, randomCase(cell, { B: 2, T: 3, seed: 1 }));
    const mine = rows.filter((r) => r.backend === "ts-copy");
    expect(mine.map((r) => r.what)).toEqual(["ts-copy f64 = ts f64", "ts-copy f32 ≈ ts f64", "ts-copy checkpointed = whole"]);
    expect(mine.every((r) => r.pass)).toBe(true);
    // same code, same numbers: the f64 kernels agree exactly
    expect(mine[0]!.maxErr).toBe(0);
    // the gate runs it too, after the built-in ones
    const proof = proveKernel(cell, await loadKernels(cell));
    expect(proof.paths.slice(-2)).toEqual([{ backend: "ts-copy", bits: 64 }, { backend: "ts-copy", bits: 32 }]);
  }, 120_000);

  it("a wrong product is caught: its check rows fail and the gate refuses the kernel on its path", async () => {
    register(wrongProduct("ts-wrong", 0.5));
    const cell = await loadCell("rnn");
    const rows = await checkKernels(cell, randomCase(cell, { B: 2, T: 3, seed: 1 }));
    const mine = rows.filter((r) => r.backend === "ts-wrong");
    // (its checkpointed row compares it with itself, and the fault, once per product call, moves with
    // the calls a checkpointed kernel makes per segment: that row says nothing either way)
    expect(mine.map((r) => [r.what, r.pass]).slice(0, 2)).toEqual([["ts-wrong f64 = ts f64", false], ["ts-wrong f32 ≈ ts f64", false]]);
    expect(mine[2]!.what).toBe("ts-wrong checkpointed = whole");
    // every other row still passes: the fault is blamed on its backend alone
    expect(rows.filter((r) => r.backend !== "ts-wrong").every((r) => r.pass)).toBe(true);
    let err: unknown;
    try {
      proveKernel(cell, await loadKernels(cell));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelRefusedError);
    expect((err as Error).message).toMatch(/^kernel for cell "rnn" disagrees with the reference evaluator on the ts-wrong path, float64: .+ differs by [\d.e+-]+ from the ts path's float64 result, which equals the reference/);
    expect((err as KernelRefusedError).path).toEqual({ backend: "ts-wrong", bits: 64 } as unknown as KernelPath);
  }, 120_000);

  it("`check` prints a column for it, between the reference's and the f32 one", async () => {
    register(copy("ts-copy"));
    const { main } = await import("../cli/main.ts");
    let text = "";
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => ((text += s), true)) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(["check", "rnn", "--B", "2", "--T", "3"]);
    } finally {
      process.stdout.write = write;
    }
    expect(code).toBe(0);
    const head = text.split("\n").find((l) => l.startsWith("cell "))!;
    const columns = head.split(/\s{2,}/);
    const at = (c: string) => columns.indexOf(c);
    expect(at("ts f64=ref")).toBeGreaterThan(0);
    expect(at("ts-copy f64=ts")).toBeGreaterThan(at("ts f64=ref"));
    expect(at("f32~f64")).toBeGreaterThan(at("ts-copy f64=ts"));
    if (simdAvailable()) expect(at("wasm f64=ts")).toBeGreaterThan(at("ts f64=ref"));
    expect(text).toMatch(/^\s+ts-copy f64 = ts f64\s+max err\s+0\.0e\+0\s.*\bok$/m);
    if (simdAvailable()) expect(text).toContain("ts-copy: the ts backend, registered again as ts-copy");
    // the row has a value in its column
    const row = text.split("\n").find((l) => l.startsWith("rnn "))!.split(/\s{2,}/);
    expect(row[at("ts-copy f64=ts")]).toBe("0.0e+0");
  }, 180_000);

  it("the bench has a contender for it", async () => {
    register(copy("ts-copy"));
    const { contenders } = await import("../bench/cellforge.ts");
    expect(contenders.map((c) => c.name)).toEqual(["cellforge", "cellforge-wasm", "cellforge-wasm-2t", "cellforge-ts-copy"]);
  });
});

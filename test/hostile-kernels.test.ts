// A generated kernel used out of its contract, by a user's own cell generated into a folder of theirs:
// initParams refuses a seed the Rng would wrap or cut (NaN, a string, 1.5, -1, 2^32), and backward
// refuses to run before a forward has finished (it would read zeros or a half-written tape). The
// kernel is the one `generate` writes (proven, then typechecked under tsconfig.json's options).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kernelModule } from "../cli/generate.ts";
import { typecheckKernel } from "../check/typecheck.ts";
import { KernelOrderError, MAX_SEED } from "../runtime/checks.ts";
import { ROOT } from "../src/load.ts";

const TMP = mkdtempSync(join(tmpdir(), "cellforge-hostile-kernels-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const CELL = `import { defineCell } from "cellforge";

export default defineCell({
  name: "mymgu",
  doc: "a minimal gated unit, a user's cell",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wf: ["H", "D"], Uf: ["H", "H"], bf: "H", Wh: ["H", "D"], Uh: ["H", "H"], bh: "H" },
  equations: \`
    f  = sigmoid(Wf*x + Uf*h + bf)
    n  = tanh(Wh*x + Uh*(f .* h) + bh)
    h' = (1 - f) .* h + f .* n
  \`,
});
`;

type Arr = Float64Array;
interface Mod {
  initParams(sizes: { D: number; H: number }, seed: unknown): Arr;
  createKernel64(sizes: { D: number; H: number }, B: number, T: number, options?: { backend?: string }): {
    nParams: number;
    forward(p: Arr, inputs: { x: Arr }, initial: { h: Arr }, out: { h: Arr }): void;
    backward(p: Arr, inputs: { x: Arr }, initial: { h: Arr }, out: { h: Arr }, upstream: { h: Arr }, grads: { params: Arr; inputs: { x: Arr }; initial: { h: Arr } }): void;
    dispose(): void;
  };
}
let mod: Mod;
let text: string;

// measured on the loaded 2-core machine: the kernel made and proven in 10-25 s, its typecheck 10-20 s; ×3
beforeAll(async () => {
  const file = join(TMP, "mymgu.ts");
  writeFileSync(file, CELL);
  const made = await kernelModule(file, TMP);
  text = made.ts;
  typecheckKernel(made.cell, text);
  // imported from the user's folder, its runtime import bound to this checkout's runtime
  writeFileSync(join(TMP, "mymgu.kernel.ts"), text.replace('from "cellforge/runtime"', `from ${JSON.stringify(join(ROOT, "runtime", "index.ts"))}`));
  mod = (await import(join(TMP, "mymgu.kernel.ts"))) as Mod;
}, 150_000);

const sizes = { D: 2, H: 3 };

describe("initParams's seed", () => {
  it("goes to the runtime's initAll, which checks it (below: what it refuses)", () => {
    expect(text).toMatch(/return initAll\(spec, paramLayout\(sizes\), seed, /);
  });

  it("an integer from 0 to 2^32 - 1 draws parameters within the cell's bound 1/sqrt(H)", () => {
    for (const seed of [0, 7, MAX_SEED]) {
      const p = mod.initParams(sizes, seed);
      expect(p.length).toBe(2 * (3 * 2 + 3 * 3 + 3));
      // uniform ±1/sqrt(3), as the cell declares no other rule
      expect(Math.max(...p.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(3));
      expect(new Set(p).size).toBe(p.length);
    }
    expect(MAX_SEED).toBe(4294967295);
  });

  it("anything else is refused, naming the cell and the seed", () => {
    const refused: [unknown, ErrorConstructor, RegExp][] = [
      [NaN, RangeError, /^mymgu: initParams: the seed must be an integer from 0 to 4294967295, got NaN$/],
      [1.5, RangeError, /, got 1\.5$/],
      [-1, RangeError, /, got -1$/],
      [2 ** 32, RangeError, /, got 4294967296$/],
      [Infinity, RangeError, /, got Infinity$/],
      ["abc", TypeError, /^mymgu: initParams: the seed must be an integer from 0 to 4294967295, got the string "abc"$/],
      ["7", TypeError, /got the string "7"$/],
      [undefined, TypeError, /got undefined$/],
      [null, TypeError, /got null$/],
    ];
    for (const [seed, kind, said] of refused) {
      expect(() => mod.initParams(sizes, seed), String(seed)).toThrow(kind);
      expect(() => mod.initParams(sizes, seed), String(seed)).toThrow(said);
    }
  });
});

describe("backward before forward", () => {
  const B = 2, T = 3;
  const args = (nParams: number) => {
    const x = new Float64Array(T * B * sizes.D).map((_, i) => Math.sin(i + 1));
    const up = new Float64Array(T * B * sizes.H).fill(1);
    return {
      p: mod.initParams(sizes, 3), inputs: { x }, initial: { h: new Float64Array(B * sizes.H).fill(0.25) }, out: { h: new Float64Array(T * B * sizes.H) },
      upstream: { h: up }, grads: { params: new Float64Array(nParams), inputs: { x: new Float64Array(x.length) }, initial: { h: new Float64Array(B * sizes.H) } },
    };
  };

  for (const backend of ["ts", "wasm"]) {
    it(`is refused on a fresh kernel and after a refused forward, and runs after a finished one (${backend})`, () => {
      const k = mod.createKernel64(sizes, B, T, { backend });
      try {
        const a = args(k.nParams);
        const backward = () => k.backward(a.p, a.inputs, a.initial, a.out, a.upstream, a.grads);
        expect(backward).toThrow(KernelOrderError);
        expect(backward).toThrow(/^mymgu: backward needs a forward first: call kernel\.forward\(params, inputs, initial, out\) and let it finish/);
        expect(a.grads.params.every((v) => v === 0)).toBe(true); // refused before it wrote anything

        k.forward(a.p, a.inputs, a.initial, a.out);
        backward();
        // dLoss/dh0 for loss = sum of every h: finite differences in float64 on the kernel's forward
        const sumH = (h0: Float64Array) => { const out = { h: new Float64Array(T * B * sizes.H) }; k.forward(a.p, a.inputs, { h: h0 }, out); return out.h.reduce((s, v) => s + v, 0); };
        const dh0 = Float64Array.from(a.grads.initial.h);
        for (let i = 0; i < dh0.length; i++) {
          const e = 1e-6, hp = Float64Array.from(a.initial.h), hm = Float64Array.from(a.initial.h);
          hp[i]! += e; hm[i]! -= e;
          expect(Math.abs((sumH(hp) - sumH(hm)) / (2 * e) - dh0[i]!)).toBeLessThan(1e-7);
        }

        // a forward stopped part way (a wrong length, found after it began) is no finished forward: backward is refused again
        expect(() => k.forward(a.p, { x: new Float64Array(1) }, a.initial, a.out)).toThrow(/mymgu: inputs\.x must have length 12/);
        expect(backward).toThrow(KernelOrderError);
      } finally {
        k.dispose();
      }
    });
  }
});

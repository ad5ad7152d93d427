// The matrix init rules "glorot" and "orthogonal" (runtime/checks.ts initSlice): Glorot's bound and
// variance; orthogonal blocks whose QᵀQ = I to 1e-12, and whose Q is the QR factor of the Gaussian
// matrix the seed draws (QᵀG upper triangular with a positive diagonal: torch.nn.init.orthogonal_'s
// sign rule), for square, stacked [k·H, H], tall and wide matrices; the same numbers from the same
// seed. The old rules are bit-identical to what the code drew before these rules existed (sha256
// fixtures computed then, on the committed kernels and on a kernel emitted now). A cell declaring the
// rules compiles, its emitted kernel typechecks, and its initParams obeys them; a vector is refused.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type Init, InitError, initSlice, Rng } from "../runtime/checks.ts";
import type { KernelModule } from "../runtime/kernel.ts";
import { type CellSpec, compileCell, type Cell } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { buildPlan, type FullPlan } from "../codegen/plan.ts";
import { emitKernelModule } from "../codegen/emit.ts";
import { moduleFromText } from "../check/kernelmodule.ts";
import { typecheckKernel } from "../check/typecheck.ts";
import * as gru from "../generated/gru.ts";
import * as slstm from "../generated/slstm.ts";
import * as lstmKeras from "../generated/lstm-keras.ts";

const sha = (a: Float64Array) => createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");
const matrixRule = (init: Init, rows: number, cols: number, seed: number) => {
  const a = new Float64Array(rows * cols);
  initSlice(a, 0, a.length, init, 0.1, new Rng(seed), rows);
  return a;
};

/** max |AᵀA − I| over the n columns of the m×n row-major block at `off` (row stride `stride`). */
function gramError(a: Float64Array, off: number, m: number, n: number, stride: number, transpose = false): number {
  const at = (i: number, j: number) => (transpose ? a[off + j * stride + i]! : a[off + i * stride + j]!);
  let worst = 0;
  for (let p = 0; p < n; p++)
    for (let q = 0; q < n; q++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += at(i, p) * at(i, q);
      worst = Math.max(worst, Math.abs(s - (p === q ? 1 : 0)));
    }
  return worst;
}

/**
 * Q (m×n, orthonormal columns) is the QR factor of G (m×n) with R's diagonal positive exactly when
 * R = QᵀG is upper triangular with a positive diagonal: the largest violation (below-diagonal size,
 * or a non-positive diagonal entry) is returned.
 */
function qrViolation(q: (i: number, j: number) => number, g: (i: number, j: number) => number, m: number, n: number): number {
  let worst = 0;
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += q(i, r) * g(i, c);
      if (r > c) worst = Math.max(worst, Math.abs(s));
      if (r === c && s <= 0) worst = Infinity;
    }
  return worst;
}

describe("the old rules draw what they always drew (sha256 of values computed before glorot and orthogonal existed)", () => {
  it("initSlice's rules in sequence, sharing one generator", () => {
    const a = new Float64Array(600), rng = new Rng(5);
    const rules: Init[] = ["uniform", { uniform: 0.7 }, "zeros", "ones", { constant: 2.5 }, "uniform"];
    rules.forEach((r, i) => initSlice(a, i * 100, 100, r, 0.3, rng));
    expect(sha(a)).toBe("a581d9c0b4375714f1eef24b0bc4d7824197d2905c28c3e60fb0ed6e338a1f55");
    expect([a[0], a[150], a[599]]).toEqual([-0.1696839896030724, 0.44104504897259167, -0.06380928112193943]);
  });

  it("the committed kernels' initParams (they call initSlice without the row count)", () => {
    expect(sha(gru.initParams({ D: 3, H: 5 }, 7))).toBe("6950dc0d088e84626aaef5d1d24ce757450d78f7f00298dd0ed9125932785100");
    expect(sha(slstm.initParams({ D: 3, H: 8 }, 11))).toBe("195b13791375b5c4669eef81cb6315d3655392febe663ca035bfbd4c8bb79c03");
    expect(sha(lstmKeras.initParams({ D: 4, H: 6 }, 2))).toBe("a7ba47eae804f588d8fb76a252f8e045b0109ff7487d9fa9751e45f2d7bbfd07");
  });

  it("a gru kernel emitted now (passing the row count) draws the same", async () => {
    const mod = await emitted(await loadCell("gru"));
    expect(sha(mod.initParams({ D: 3, H: 5 }, 7))).toBe("6950dc0d088e84626aaef5d1d24ce757450d78f7f00298dd0ed9125932785100");
  }, 180_000);
});

describe("glorot: U(±sqrt(6/(fan_in + fan_out))), fan_in = columns, fan_out = rows", () => {
  it("bound, mean and variance (a²/3 of U(±a)) on a 300×100 matrix", () => {
    const a = matrixRule("glorot", 300, 100, 3), bound = Math.sqrt(6 / 400);
    let max = 0, sum = 0, sq = 0;
    for (const x of a) {
      max = Math.max(max, Math.abs(x));
      sum += x;
      sq += x * x;
    }
    const n = a.length, mean = sum / n, variance = sq / n - mean * mean;
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.999 * bound);
    // the sample mean's standard error is bound/sqrt(3n) ≈ 4e-4; the variance's ≈ 0.5% of it: 6 sigma either way
    expect(Math.abs(mean)).toBeLessThan(6 * bound / Math.sqrt(3 * n));
    expect(Math.abs(variance / (bound * bound / 3) - 1)).toBeLessThan(0.03);
  });

  it("the fans are the matrix's own: a 2×8 matrix has bound sqrt(6/10), not 1/sqrt(H)", () => {
    const a = matrixRule("glorot", 2, 8, 1);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(0.6));
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.1);
  });
});

describe("orthogonal: Q of a Gaussian matrix's QR, R's diagonal made positive", () => {
  /** The Gaussian numbers the seed's generator gives, in order. */
  const normals = (seed: number, n: number) => {
    const rng = new Rng(seed);
    return Float64Array.from({ length: n }, () => rng.normal());
  };

  for (const [rows, cols, what] of [[7, 7, "square"], [12, 4, "stacked [3·H, H]: three blocks"], [32, 8, "sLSTM-style heads [H, H/4]: four blocks"], [7, 3, "tall, rows not a multiple"]] as const)
    it(`${rows}×${cols}, ${what}: each block's QᵀQ = I to 1e-12 and QᵀG upper triangular`, () => {
      const a = matrixRule("orthogonal", rows, cols, 9);
      const blocks = rows % cols === 0 ? rows / cols : 1, m = rows / blocks;
      const g = normals(9, rows * cols);
      for (let b = 0; b < blocks; b++) {
        const off = b * m * cols;
        expect(gramError(a, off, m, cols, cols)).toBeLessThan(1e-12);
        expect(qrViolation((i, j) => a[off + i * cols + j]!, (i, j) => g[off + i * cols + j]!, m, cols)).toBeLessThan(1e-12);
      }
      if (blocks > 1) expect(gramError(a, 0, rows, cols, cols)).toBeGreaterThan(0.5); // the blocks are not one tall orthonormal matrix
    });

  it("3×7, wide: QQᵀ = I (orthonormal rows), the transpose of a tall 7×3 Q", () => {
    const a = matrixRule("orthogonal", 3, 7, 4), g = normals(4, 21);
    expect(gramError(a, 0, 7, 3, 7, true)).toBeLessThan(1e-12);
    // G is drawn 7×3 (the tall shape); a = Qᵀ
    expect(qrViolation((i, j) => a[j * 7 + i]!, (i, j) => g[i * 3 + j]!, 7, 3)).toBeLessThan(1e-12);
  });

  it("an ill-conditioned draw still gives QᵀQ = I to 1e-12 (64×64)", () => {
    expect(gramError(matrixRule("orthogonal", 64, 64, 21), 0, 64, 64, 64)).toBeLessThan(1e-12);
  });
});

describe("determinism and misuse", () => {
  it("the same seed gives the same bits, another seed other numbers", () => {
    for (const init of ["glorot", "orthogonal"] as const) {
      expect(sha(matrixRule(init, 8, 4, 5))).toBe(sha(matrixRule(init, 8, 4, 5)));
      expect(sha(matrixRule(init, 8, 4, 5))).not.toBe(sha(matrixRule(init, 8, 4, 6)));
    }
  });

  it("a matrix rule without a row count that divides the slice is an InitError", () => {
    const a = new Float64Array(12);
    expect(() => initSlice(a, 0, 12, "glorot", 0.1, new Rng(1))).toThrow(InitError);
    expect(() => initSlice(a, 0, 12, "orthogonal", 0.1, new Rng(1), 5)).toThrow('init "orthogonal" needs the parameter\'s row count, a divisor of its 12 numbers, got 5');
  });
});

/** A cell's kernel module emitted in memory and typechecked like a committed one (no proof: that would run the reference evaluator's init). */
async function emitted(cell: Cell): Promise<KernelModule> {
  const text = await emitKernelModule(buildPlan(cell, deriveBackward(cell)) as FullPlan, { source: `cell "${cell.name}"` });
  typecheckKernel(cell, text);
  return moduleFromText(text, `${cell.name}.ts`) as unknown as KernelModule;
}

const spec = (params: Record<string, unknown>): CellSpec => ({
  name: "inits", doc: "a cell with glorot and orthogonal parameters (test/nn-init.test.ts)", sizes: ["D", "H"], defaults: { D: 3, H: 4 },
  inputs: { x: "D" }, state: { h: "H", c: "H" }, params,
  equations: "g = W*x + U*h + b\nh' = tanh(slice(g, 0, H)) .* (R*c)\nc' = tanh(slice(g, H, H)) + S*h",
} as unknown as CellSpec);

describe("cells declare the rules", () => {
  const params = {
    W: { shape: ["2*H", "D"], init: "glorot" }, U: { shape: ["2*H", "H"], init: "orthogonal" },
    R: { shape: ["H", "H"], heads: 2, init: "orthogonal" }, S: { shape: ["H", "H"], init: "glorot" }, b: "2*H",
  };

  it("a vector or scalar with a matrix rule is refused, naming it; an unknown rule lists them all", () => {
    const problem = (p: Record<string, unknown>) => {
      try {
        compileCell(spec({ ...params, ...p }));
      } catch (e) {
        if (e instanceof CellError) return e.problem;
        throw e;
      }
      throw new Error("the cell compiled");
    };
    expect(problem({ b: { shape: "2*H", init: "glorot" } })).toBe('parameter b: init "glorot" is for a matrix, and b is a vector ("2*H")');
    expect(problem({ b: { shape: ["2*H"], init: "orthogonal" } })).toBe('parameter b: init "orthogonal" is for a matrix, and b is a vector (["2*H"])');
    expect(problem({ b: { shape: "2*H", init: "gaussian" } })).toBe('parameter b: init must be "uniform", "zeros", "ones", "glorot", "orthogonal", { constant: c } or { uniform: a }, not "gaussian"');
  });

  it("compiles, its emitted kernel typechecks, and initParams obeys each rule (stacked, heads, expressions as rows)", async () => {
    const cell = compileCell(spec(params));
    expect(cell.params.map((p) => p.init)).toEqual(["glorot", "orthogonal", "orthogonal", "glorot", "uniform"]);
    const mod = await emitted(cell), sizes = { D: 5, H: 6 };
    const p = mod.initParams(sizes, 3), at = Object.fromEntries(mod.paramLayout(sizes).params.map((q) => [q.name, q]));
    const slice = (n: string) => p.subarray(at[n]!.offset, at[n]!.offset + at[n]!.length);
    const W = slice("W"), S = slice("S"), b = slice("b");
    expect(Math.max(...W.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / (12 + 5)));
    expect(Math.max(...W.map(Math.abs))).toBeGreaterThan(Math.sqrt(6 / (12 + 5)) / 2);
    expect(Math.max(...S.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 12));
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(6));
    // U is [2H, H]: two H×H blocks, each orthogonal; R has 2 heads, stored [H, H/2]: two (H/2)×(H/2) blocks
    const U = slice("U"), R = slice("R");
    for (const off of [0, 36]) expect(gramError(U, off, 6, 6, 6)).toBeLessThan(1e-12);
    for (const off of [0, 9]) expect(gramError(R, off, 3, 3, 3)).toBeLessThan(1e-12);
    expect(sha(mod.initParams(sizes, 3))).toBe(sha(p));
  }, 180_000);
});

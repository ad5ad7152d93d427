// nn/optim.ts and nn/schedule.ts against PyTorch: test/fixtures/nn-optim/*.json, written by
// scripts/nn-optim-fixtures.py from torch.optim.SGD/Adam/AdamW, StepLR, CosineAnnealingLR and
// clip_grad_norm_ in float64. Every parameter after every step must agree to 1e-12.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OptimizerError, adam, adamw, clipFactor, clipGradNorm, makeOptimizer, sgd, type OptimizerConfig } from "../nn/optim.ts";
import { ScheduleError, constant, cosine, stepLR, type Schedule } from "../nn/schedule.ts";

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`fixtures/nn-optim/${name}`, import.meta.url), "utf8"));
const optim = fixture("optim.json") as {
  p0: number[]; grads: number[][];
  cases: { name: string; optimizer: OptimizerConfig; schedule: { kind: string } & Record<string, number>; lrs: number[]; params: number[][] }[];
};
const clip = fixture("clip.json") as { cases: { maxNorm: number; grad: number[]; norm: number; clipped: number[] }[] };

function scheduleOf(s: { kind: string } & Record<string, number>): Schedule {
  if (s.kind === "constant") return constant(s.lr!);
  if (s.kind === "stepLR") return stepLR({ lr: s.lr!, stepSize: s.stepSize!, gamma: s.gamma });
  if (s.kind === "cosine") return cosine({ lr: s.lr!, steps: s.steps!, min: s.min });
  throw new Error(`fixture schedule ${s.kind}`);
}

/** Largest |a - b| over two equal-length arrays. */
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

describe("optimizers and schedules against PyTorch (float64)", () => {
  it("the fixtures cover SGD (nesterov, dampening, weight decay), Adam, AdamW, StepLR and cosine", () => {
    const kinds = new Set(optim.cases.map((c) => `${c.optimizer.kind}/${c.schedule.kind}`));
    for (const k of ["sgd/stepLR", "sgd/constant", "adam/cosine", "adam/stepLR", "adamw/cosine"]) expect(kinds).toContain(k);
  });
  for (const c of optim.cases)
    it(c.name, () => {
      const p = Float64Array.from(optim.p0), o = makeOptimizer(c.optimizer, p.length), lr = scheduleOf(c.schedule);
      c.params.forEach((want, s) => {
        o.lr = lr(s);
        expect(Math.abs(o.lr - c.lrs[s]!)).toBeLessThan(1e-15);
        o.step(p, Float64Array.from(optim.grads[s]!));
        expect(maxDiff(p, want), `${c.name}, step ${s + 1}`).toBeLessThan(1e-12);
      });
      expect(o.t).toBe(c.params.length);
    });

  it("a float32 buffer follows the float64 trajectory to float32 precision (state stays float64)", () => {
    const c = optim.cases.find((x) => x.optimizer.kind === "adamw")!;
    const p = Float32Array.from(optim.p0), o = makeOptimizer(c.optimizer, p.length), lr = scheduleOf(c.schedule);
    c.params.forEach((_, s) => ((o.lr = lr(s)), o.step(p, Float32Array.from(optim.grads[s]!))));
    expect(maxDiff(p, c.params.at(-1)!)).toBeLessThan(1e-5);
    expect(o.state.m).toBeInstanceOf(Float64Array);
  });

  it("step(p, g, scale) is the step with gradient scale·g", () => {
    const c = optim.cases[0]!, a = Float64Array.from(optim.p0), b = Float64Array.from(optim.p0);
    const oa = makeOptimizer(c.optimizer, a.length), ob = makeOptimizer(c.optimizer, b.length);
    for (const g of optim.grads) {
      oa.step(a, Float64Array.from(g), 0.25);
      ob.step(b, Float64Array.from(g, (x) => x * 0.25));
    }
    expect(maxDiff(a, b)).toBeLessThan(1e-15);
  });

  for (const c of clip.cases)
    it(`clip_grad_norm_ to ${c.maxNorm}`, () => {
      const g = Float64Array.from(c.grad);
      expect(Math.abs(clipGradNorm(g, c.maxNorm) - c.norm)).toBeLessThan(1e-12);
      expect(maxDiff(g, c.clipped)).toBeLessThan(1e-12);
      const f = clipFactor(Float64Array.from(c.grad), c.maxNorm);
      expect(maxDiff(Float64Array.from(c.grad, (x) => x * f.scale), c.clipped)).toBeLessThan(1e-12);
    });
  it("the clip fixtures include one that clips and one that does not", () => {
    expect(clip.cases.some((c) => c.norm > c.maxNorm)).toBe(true);
    expect(clip.cases.some((c) => c.norm < c.maxNorm)).toBe(true);
  });
});

describe("configs, schedules by hand, and mistakes", () => {
  it("the config helpers carry PyTorch's defaults", () => {
    expect(adam()).toEqual({ kind: "adam", lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    expect(adamw({ lr: 0.1, betas: [0.5, 0.6] })).toEqual({ kind: "adamw", lr: 0.1, beta1: 0.5, beta2: 0.6, eps: 1e-8, weightDecay: 1e-2 });
    expect(sgd({ lr: 0.1 })).toEqual({ kind: "sgd", lr: 0.1, momentum: 0 });
  });
  it("warmup rises linearly, then the cosine runs over the remaining steps", () => {
    const f = cosine({ lr: 1, steps: 6, warmup: 2 });
    const want = [0.5, 1, 1, 0.5, 0];
    [0, 1, 2, 4, 6].forEach((s, i) => expect(f(s)).toBeCloseTo(want[i]!, 15));
  });
  it("bad settings are specific errors", () => {
    expect(() => makeOptimizer({ kind: "sgd", lr: 0.1, momentum: 0, nesterov: true }, 3)).toThrow(/nesterov needs momentum > 0/);
    expect(() => makeOptimizer(adam({ betas: [1, 0.9] }), 3)).toThrow(OptimizerError);
    expect(() => makeOptimizer({ kind: "rmsprop" } as unknown as OptimizerConfig, 3)).toThrow(/unknown optimizer kind "rmsprop"/);
    expect(() => stepLR({ lr: 1, stepSize: 0 })).toThrow(ScheduleError);
    expect(() => cosine({ lr: 1, steps: 4, warmup: 4 })).toThrow(/warmup in \[0, steps\)/);
  });
});

// Optimizers over ONE flat parameter buffer (a model's layers and readout sit in one array), so an
// update is one loop, with float64 state whatever the parameters' precision. The formulas are
// PyTorch's single-tensor loops (torch/optim/sgd.py _single_tensor_sgd, adam.py _single_tensor_adam,
// adamw.py _single_tensor_adamw; maximize=False, amsgrad=False), in the same order of operations:
//
//   SGD    g ← g + λ p;  v ← g at the first step, else μ v + (1-dampening) g;  g ← g + μ v (nesterov) or v;  p ← p - lr g
//   Adam   g ← g + λ p (L2);  m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  t ← t + 1
//          p ← p - (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + ε)
//   AdamW  p ← p (1 - lr λ) (decoupled decay), then Adam's update without the L2 term
//
// `step(p, g, scale)` takes the gradient as scale·g, so clipping (clipFactor) costs no pass over g.
import type { FloatArray } from "../runtime/kernel.ts";

export type SgdConfig = { readonly kind: "sgd"; readonly lr: number; readonly momentum: number; readonly dampening?: number; readonly nesterov?: boolean; readonly weightDecay?: number };
export type AdamConfig = { readonly kind: "adam" | "adamw"; readonly lr: number; readonly beta1: number; readonly beta2: number; readonly eps: number; readonly weightDecay?: number };
/** What an optimizer is, as plain data (for logs, checkpoints and model files). */
export type OptimizerConfig = SgdConfig | AdamConfig;

/** An optimizer configured or used wrongly (a user's mistake). */
export class OptimizerError extends Error {}

export interface Optimizer {
  readonly config: OptimizerConfig;
  /** The learning rate of the next step: config.lr until a schedule sets it. */
  lr: number;
  /** Updates taken so far. */
  t: number;
  /** The state arrays by name, for checkpoints (restored by writing into them, and `t`). */
  readonly state: Readonly<Record<string, Float64Array>>;
  /** One update of `p` with gradient `scale · g`. */
  step(p: FloatArray, g: FloatArray, scale?: number): void;
}

function check(config: OptimizerConfig, n: number): void {
  const bad = (what: string, v: unknown) => new OptimizerError(`${config.kind}: ${what}, got ${String(v)}`);
  if (!Number.isSafeInteger(n) || n < 0) throw bad("the parameter count must be an integer >= 0", n);
  if (!(config.lr >= 0)) throw bad("lr must be a number >= 0", config.lr);
  if (!((config.weightDecay ?? 0) >= 0)) throw bad("weightDecay must be a number >= 0", config.weightDecay);
  if (config.kind === "sgd") {
    if (!(config.momentum >= 0)) throw bad("momentum must be a number >= 0", config.momentum);
    // torch/optim/sgd.py: "Nesterov momentum requires a momentum and zero dampening"
    if (config.nesterov && (config.momentum <= 0 || (config.dampening ?? 0) !== 0)) throw bad("nesterov needs momentum > 0 and dampening 0", `momentum ${config.momentum}, dampening ${config.dampening ?? 0}`);
  } else {
    for (const k of ["beta1", "beta2"] as const) if (!(config[k] >= 0 && config[k] < 1)) throw bad(`${k} must be in [0, 1)`, config[k]);
    if (!(config.eps >= 0)) throw bad("eps must be a number >= 0", config.eps);
  }
}

export class Sgd implements Optimizer {
  t = 0;
  lr: number;
  /** "velocity" is PyTorch's momentum_buffer (and the CLI trainer's checkpoint section name). */
  readonly state: { velocity: Float64Array };
  constructor(n: number, readonly config: SgdConfig) {
    check(config, n);
    this.lr = config.lr;
    this.state = { velocity: new Float64Array(n) };
  }
  step(p: FloatArray, g: FloatArray, scale = 1): void {
    const { momentum: mu, dampening = 0, nesterov = false, weightDecay: wd = 0 } = this.config, v = this.state.velocity, lr = this.lr;
    const first = this.t === 0;
    for (let i = 0; i < p.length; i++) {
      let d = scale * g[i]!;
      if (wd !== 0) d += wd * p[i]!;
      if (mu !== 0) {
        v[i] = first ? d : mu * v[i]! + (1 - dampening) * d;
        d = nesterov ? d + mu * v[i]! : v[i]!;
      }
      p[i] = p[i]! - lr * d;
    }
    this.t++;
  }
}

/** Adam (config.kind "adam", weight decay as L2 in the gradient) and AdamW ("adamw", decoupled decay). */
export class Adam implements Optimizer {
  t = 0;
  lr: number;
  readonly state: { m: Float64Array; v: Float64Array };
  constructor(n: number, readonly config: AdamConfig) {
    check(config, n);
    this.lr = config.lr;
    this.state = { m: new Float64Array(n), v: new Float64Array(n) };
  }
  step(p: FloatArray, g: FloatArray, scale = 1): void {
    const { beta1, beta2, eps, weightDecay: wd = 0 } = this.config, { m, v } = this.state, lr = this.lr;
    const decoupled = this.config.kind === "adamw", shrink = 1 - lr * wd;
    this.t++;
    const stepSize = lr / (1 - beta1 ** this.t), root2 = Math.sqrt(1 - beta2 ** this.t);
    for (let i = 0; i < p.length; i++) {
      let gi = scale * g[i]!;
      if (decoupled) p[i] = p[i]! * shrink;
      else if (wd !== 0) gi += wd * p[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * gi;
      v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi;
      p[i] = p[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / root2 + eps);
    }
  }
}

export function makeOptimizer(config: OptimizerConfig, n: number): Optimizer {
  if (config.kind === "sgd") return new Sgd(n, config);
  if (config.kind === "adam" || config.kind === "adamw") return new Adam(n, config);
  throw new OptimizerError(`unknown optimizer kind ${JSON.stringify((config as { kind: unknown }).kind)}: use "sgd", "adam" or "adamw"`);
}

// Configs with PyTorch's defaults (torch.optim.SGD, Adam, AdamW).
type Betas = { readonly betas?: readonly [number, number]; readonly eps?: number; readonly weightDecay?: number };
export const sgd = (o: { lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }): SgdConfig => ({ kind: "sgd", momentum: 0, ...o });
const adamLike = (kind: "adam" | "adamw", o: { lr?: number } & Betas, wd: number): AdamConfig => {
  const [beta1, beta2] = o.betas ?? [0.9, 0.999];
  return { kind, lr: o.lr ?? 1e-3, beta1, beta2, eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? wd };
};
export const adam = (o: { lr?: number } & Betas = {}): AdamConfig => adamLike("adam", o, 0);
export const adamw = (o: { lr?: number } & Betas = {}): AdamConfig => adamLike("adamw", o, 1e-2);

/**
 * The global norm of `g` and the factor that clips it to `maxNorm` (1 when it needs no clipping, or
 * maxNorm is 0): torch/nn/utils/clip_grad.py clip_grad_norm_, coefficient maxNorm / (norm + 1e-6).
 */
export function clipFactor(g: FloatArray, maxNorm: number): { norm: number; scale: number } {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  const norm = Math.sqrt(s);
  const c = maxNorm / (norm + 1e-6);
  return { norm, scale: maxNorm > 0 && c < 1 ? c : 1 };
}

/** Scale `g` in place to global norm at most `maxNorm`, as clip_grad_norm_; returns the norm before clipping. */
export function clipGradNorm(g: FloatArray, maxNorm: number): number {
  const { norm, scale } = clipFactor(g, maxNorm);
  if (scale !== 1) for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
  return norm;
}

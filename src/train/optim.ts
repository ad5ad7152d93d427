// Optimizers over ONE flat parameter buffer (every layer's kernel parameters and the readout sit in
// one array), so each update is one loop. The formulas are PyTorch's (torch/optim/sgd.py, adam.py,
// torch/nn/utils/clip_grad.py), and their state is float64 whatever the parameters' precision.
//
//   SGD with momentum μ:  v ← μ v + g;   p ← p - lr v
//   Adam:                 m ← β1 m + (1-β1) g;   v ← β2 v + (1-β2) g²;   t ← t + 1
//                         p ← p - (lr / (1-β1^t)) m / (sqrt(v) / sqrt(1-β2^t) + ε)
//   clipping by global norm c:  g ← g · c / (‖g‖ + 1e-6) when that factor is below 1
import type { FloatArray } from "./model.ts";

export type OptimizerConfig =
  | { readonly kind: "sgd"; readonly lr: number; readonly momentum: number }
  | { readonly kind: "adam"; readonly lr: number; readonly beta1: number; readonly beta2: number; readonly eps: number };

export interface Optimizer {
  readonly config: OptimizerConfig;
  /** Updates taken so far. */
  t: number;
  /** The state arrays by name, for checkpoints (restored by writing into them). */
  readonly state: Readonly<Record<string, Float64Array>>;
  /** One update of `p` with gradient `scale · g`. */
  step(p: FloatArray, g: FloatArray, scale?: number): void;
}

export class Sgd implements Optimizer {
  t = 0;
  readonly state: { velocity: Float64Array };
  constructor(n: number, readonly config: Extract<OptimizerConfig, { kind: "sgd" }>) {
    this.state = { velocity: new Float64Array(n) };
  }
  step(p: FloatArray, g: FloatArray, scale = 1): void {
    const { lr, momentum } = this.config, v = this.state.velocity;
    for (let i = 0; i < p.length; i++) {
      v[i] = momentum * v[i]! + scale * g[i]!;
      p[i] = p[i]! - lr * v[i]!;
    }
    this.t++;
  }
}

export class Adam implements Optimizer {
  t = 0;
  readonly state: { m: Float64Array; v: Float64Array };
  constructor(n: number, readonly config: Extract<OptimizerConfig, { kind: "adam" }>) {
    this.state = { m: new Float64Array(n), v: new Float64Array(n) };
  }
  step(p: FloatArray, g: FloatArray, scale = 1): void {
    const { lr, beta1, beta2, eps } = this.config, { m, v } = this.state;
    this.t++;
    const stepSize = lr / (1 - beta1 ** this.t), root2 = Math.sqrt(1 - beta2 ** this.t);
    for (let i = 0; i < p.length; i++) {
      const gi = scale * g[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * gi;
      v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi;
      p[i] = p[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / root2 + eps);
    }
  }
}

export function makeOptimizer(config: OptimizerConfig, n: number): Optimizer {
  return config.kind === "sgd" ? new Sgd(n, config) : new Adam(n, config);
}

/** The global norm of `g` and the factor that clips it to `maxNorm` (1 when it needs no clipping, or maxNorm is 0). */
export function clipFactor(g: FloatArray, maxNorm: number): { norm: number; scale: number } {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  const norm = Math.sqrt(s);
  const c = maxNorm / (norm + 1e-6);
  return { norm, scale: maxNorm > 0 && c < 1 ? c : 1 };
}

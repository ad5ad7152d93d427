// Losses over the readout's output, each returning the loss and writing its gradient. Sums run in
// float64 whatever the model's precision.
//
//   mse   L = Σ_r w_r Σ_k (p_rk - y_rk)² / (O Σ_r w_r)               dp_rk = 2 w_r (p_rk - y_rk) / (O Σ w)
//   xent  L = -Σ_r w_r Σ_k y_rk log softmax(z_r)_k / Σ_r w_r         dz_rk = w_r (softmax(z_r)_k Σ_j y_rj - y_rk) / Σ w
//
// r runs over rows (B at the last step, T×B at every step), w_r = 1 when no weights are given;
// y_r is a probability vector for xent (one-hot, or soft as for the Reber grammar's allowed sets).
import type { FloatArray } from "./model.ts";
import type { LossKind } from "./task.ts";

export function lossAndGrad(kind: LossKind, pred: FloatArray, y: Float64Array, w: Float64Array | null, O: number, grad: FloatArray): number {
  return kind === "mse" ? mse(pred, y, w, O, grad) : softmaxXent(pred, y, w, O, grad);
}

function totalWeight(w: Float64Array | null, rows: number): number {
  if (!w) return rows;
  let s = 0;
  for (let r = 0; r < rows; r++) s += w[r]!;
  return s;
}

export function mse(pred: FloatArray, y: Float64Array, w: Float64Array | null, O: number, grad: FloatArray): number {
  const rows = pred.length / O, W = totalWeight(w, rows) * O;
  let L = 0;
  for (let r = 0; r < rows; r++) {
    const wr = w ? w[r]! : 1;
    for (let k = 0; k < O; k++) {
      const i = r * O + k, e = pred[i]! - y[i]!;
      L += wr * e * e;
      grad[i] = W > 0 ? (2 * wr * e) / W : 0;
    }
  }
  return W > 0 ? L / W : 0;
}

export function softmaxXent(logits: FloatArray, y: Float64Array, w: Float64Array | null, O: number, grad: FloatArray): number {
  const rows = logits.length / O, W = totalWeight(w, rows);
  let L = 0;
  for (let r = 0; r < rows; r++) {
    const wr = w ? w[r]! : 1, off = r * O;
    if (wr === 0 || W === 0) {
      grad.fill(0, off, off + O);
      continue;
    }
    let m = -Infinity;
    for (let k = 0; k < O; k++) m = Math.max(m, logits[off + k]!);
    let z = 0;
    for (let k = 0; k < O; k++) z += Math.exp(logits[off + k]! - m);
    const logZ = m + Math.log(z);
    let ysum = 0;
    for (let k = 0; k < O; k++) ysum += y[off + k]!;
    for (let k = 0; k < O; k++) {
      const yk = y[off + k]!, lp = logits[off + k]! - logZ;
      if (yk) L -= wr * yk * lp;
      grad[off + k] = (wr * (Math.exp(lp) * ysum - yk)) / W;
    }
  }
  return W > 0 ? L / W : 0;
}

// Losses over a readout's output rows, each returning the loss and WRITING its gradient dPred. Rows
// are the B examples (readout at the last step) or the T·B steps (at every step); a row's weight w_r
// is 1, or 0 for a step past its example's length (padding), so a mean runs over the real steps only,
// as PyTorch's losses with ignore_index. Sums run in float64 whatever the model's precision.
//
//   mse           L = Σ_r w_r Σ_k (p_rk - y_rk)² / (O Σ_r w_r)            dp_rk = 2 w_r (p_rk - y_rk) / (O Σ w)   (nn.MSELoss, mean)
//   crossEntropy  L = -Σ_r w_r log softmax(z_r)_{c_r} / Σ_r w_r            dz_rk = w_r (softmax(z_r)_k - [k = c_r]) / Σ w
//                 with class indices c_r (nn.CrossEntropyLoss, mean)
//   softmaxXent   the same with a probability vector y_r per row (one-hot, or soft targets)
//
// log softmax(z)_k = z_k - (m + log Σ_j exp(z_j - m)) with m = max_j z_j, which cannot overflow.
import type { FloatArray } from "../runtime/kernel.ts";

export type LossName = "mse" | "crossEntropy";

/** A target that does not fit the loss (a class index out of range). */
export class LossError extends Error {}

/**
 * Row weights for a readout at every step: 1 where step t < lengths[b], else 0, in the output's row
 * order (T×B, or B×T when batchFirst). Null when every step counts.
 */
export function stepWeights(batch: number, steps: number, lengths: ArrayLike<number> | undefined, batchFirst = false): Float64Array | null {
  if (!lengths) return null;
  const w = new Float64Array(batch * steps);
  for (let b = 0; b < batch; b++) for (let t = 0; t < lengths[b]!; t++) w[batchFirst ? b * steps + t : t * batch + b] = 1;
  return w;
}

function totalWeight(w: ArrayLike<number> | null, rows: number): number {
  if (!w) return rows;
  let s = 0;
  for (let r = 0; r < rows; r++) s += w[r]!;
  return s;
}

export function mse(pred: FloatArray, y: ArrayLike<number>, w: ArrayLike<number> | null, O: number, grad: FloatArray): number {
  const rows = pred.length / O, W = totalWeight(w, rows) * O;
  let L = 0;
  for (let r = 0; r < rows; r++) {
    const wr = w ? w[r]! : 1;
    for (let k = 0; k < O; k++) {
      const i = r * O + k, e = wr === 0 ? 0 : pred[i]! - y[i]!;
      L += wr * e * e;
      grad[i] = W > 0 ? (2 * wr * e) / W : 0;
    }
  }
  return W > 0 ? L / W : 0;
}

/** log Σ_k exp(z_k) over one row, shifted by its maximum. */
function logSumExp(z: FloatArray, off: number, O: number): number {
  let m = -Infinity;
  for (let k = 0; k < O; k++) m = Math.max(m, z[off + k]!);
  let s = 0;
  for (let k = 0; k < O; k++) s += Math.exp(z[off + k]! - m);
  return m + Math.log(s);
}

/** Cross-entropy of softmax(logits) against probability rows y (rows×O). */
export function softmaxXent(logits: FloatArray, y: ArrayLike<number>, w: ArrayLike<number> | null, O: number, grad: FloatArray): number {
  const rows = logits.length / O, W = totalWeight(w, rows);
  let L = 0;
  for (let r = 0; r < rows; r++) {
    const wr = w ? w[r]! : 1, off = r * O;
    if (wr === 0 || W === 0) {
      grad.fill(0, off, off + O);
      continue;
    }
    const logZ = logSumExp(logits, off, O);
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

/** Cross-entropy of softmax(logits) against one class index per row (rows entries). */
export function crossEntropy(logits: FloatArray, classes: ArrayLike<number>, w: ArrayLike<number> | null, O: number, grad: FloatArray): number {
  const rows = logits.length / O, W = totalWeight(w, rows);
  let L = 0;
  for (let r = 0; r < rows; r++) {
    const wr = w ? w[r]! : 1, off = r * O, c = classes[r]!;
    if (wr === 0 || W === 0) {
      grad.fill(0, off, off + O);
      continue;
    }
    if (!Number.isInteger(c) || c < 0 || c >= O) throw new LossError(`row ${r}: class ${c} is not an integer in [0, ${O})`);
    const logZ = logSumExp(logits, off, O);
    L -= wr * (logits[off + c]! - logZ);
    for (let k = 0; k < O; k++) grad[off + k] = (wr * (Math.exp(logits[off + k]! - logZ) - (k === c ? 1 : 0))) / W;
  }
  return W > 0 ? L / W : 0;
}

/** `name`'s loss and gradient: targets are rows×O values for "mse", one class index per row for "crossEntropy". */
export function lossAndGrad(name: LossName, pred: FloatArray, target: ArrayLike<number>, w: ArrayLike<number> | null, O: number, dPred: FloatArray): number {
  return name === "mse" ? mse(pred, target, w, O, dPred) : crossEntropy(pred, target, w, O, dPred);
}

/** Rows whose largest logit is the target class, and rows counted (weight > 0). */
export function correct(logits: ArrayLike<number>, classes: ArrayLike<number>, w: ArrayLike<number> | null, O: number): { correct: number; count: number } {
  let n = 0, count = 0;
  for (let r = 0; r * O < logits.length; r++) {
    if (w && w[r] === 0) continue;
    let best = 0;
    for (let k = 1; k < O; k++) if (logits[r * O + k]! > logits[r * O + best]!) best = k;
    if (best === classes[r]) n++;
    count++;
  }
  return { correct: n, count };
}

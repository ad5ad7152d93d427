// The tasks' losses, by the library's functions (nn/loss.ts): "mse", and "xent", softmax
// cross-entropy against a probability vector per row (one-hot for the copy task, uniform over the
// allowed next symbols for the Reber grammar, which class indices cannot express).
import type { FloatArray } from "../../runtime/kernel.ts";
import { mse, softmaxXent } from "../../nn/loss.ts";
import type { LossKind } from "./task.ts";

export { mse, softmaxXent };

export function lossAndGrad(kind: LossKind, pred: FloatArray, y: Float64Array, w: Float64Array | null, O: number, grad: FloatArray): number {
  return kind === "mse" ? mse(pred, y, w, O, grad) : softmaxXent(pred, y, w, O, grad);
}

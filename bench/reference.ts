// The loss of the PyTorch-form cells, in float64 with plain loops: what every
// contender of variant "torch" must reproduce on the shared inputs.
//
//   GRU:  r = σ(x·Wr + br_x + h·Ur + br_h)     z likewise
//         n = tanh(x·Wn + bn_x + r ⊙ (h·Un + bn_h))
//         h' = (1 − z) ⊙ n + z ⊙ h
//   LSTM: i, f, o = σ(·), g = tanh(·) of x·W + h·U + b_x + b_h
//         c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')
//   loss = Σ_t Σ h_t ⊙ dy_t

import { gates, type Cell, type Inputs, type Workload } from "./workloads.ts";

export function referenceLoss(w: Workload, cell: Cell, inp: Inputs): number {
  const { B, D, H, T } = w;
  const GH = gates(cell) * H;
  const h = new Float64Array(B * H);
  const c = new Float64Array(B * H);
  const xg = new Float64Array(GH);
  const hg = new Float64Array(GH);
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  let loss = 0;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      // gate pre-activations for example b: xg = x·Wx + bx, hg = h·Wh + bh
      xg.set(inp.bx);
      hg.set(inp.bh);
      const xRow = (t * B + b) * D;
      for (let k = 0; k < D; k++) {
        const v = inp.x[xRow + k]!;
        for (let j = 0; j < GH; j++) xg[j]! += v * inp.Wx[k * GH + j]!;
      }
      for (let k = 0; k < H; k++) {
        const v = h[b * H + k]!;
        for (let j = 0; j < GH; j++) hg[j]! += v * inp.Wh[k * GH + j]!;
      }
      for (let j = 0; j < H; j++) {
        const o = b * H + j;
        if (cell === "gru") {
          const r = sigmoid(xg[j]! + hg[j]!);
          const z = sigmoid(xg[H + j]! + hg[H + j]!);
          const n = Math.tanh(xg[2 * H + j]! + r * hg[2 * H + j]!);
          h[o] = (1 - z) * n + z * h[o]!;
        } else {
          const a = (q: number) => xg[q * H + j]! + hg[q * H + j]!;
          c[o] = sigmoid(a(1)) * c[o]! + sigmoid(a(0)) * Math.tanh(a(2));
          h[o] = sigmoid(a(3)) * Math.tanh(c[o]!);
        }
      }
    }
    // h now holds h_t for the whole batch (each example only read its own row)
    for (let i = 0; i < B * H; i++) loss += h[i]! * inp.dy[t * B * H + i]!;
  }
  return loss;
}

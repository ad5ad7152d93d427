import { defineCell } from "cellforge";

// Batch norm over (time, batch) is not a per-example equation, so it is left out: what is kept is BN's
// affine part (as BN at inference with running mean 0 and variance 1), a gain g (init 1) on W*x and
// BN's beta, which serves as the gate's bias (init 0). This keeps the paper's 2HD + 2H^2 + 4H parameters.
export default defineCell({
  name: "gru-light",
  doc: "Light GRU (Li-GRU), Ravanelli et al. 2018 (arXiv 1803.10225) WITHOUT batch norm: no reset gate, ReLU candidate; BN(W*x) becomes gz .* (W*x) + bz (BN's gamma and beta, no statistics)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wz: ["H", "D"], Uz: ["H", "H"],
    gz: { shape: "H", init: "ones" }, bz: { shape: "H", init: "zeros" },
    Wh: ["H", "D"], Uh: ["H", "H"],
    gh: { shape: "H", init: "ones" }, bh: { shape: "H", init: "zeros" },
  },
  equations: `
    z  = sigmoid(gz .* (Wz*x) + bz + Uz*h)
    hh = relu(gh .* (Wh*x) + bh + Uh*h)
    h' = z .* h + (1 - z) .* hh
  `,
});

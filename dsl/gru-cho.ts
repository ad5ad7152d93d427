import { defineCell } from "cellforge";

export default defineCell({
  name: "gru-cho",
  doc: "GRU of Cho et al. 2014 (arXiv 1406.1078, eqs 5-8), with biases: reset BEFORE the matmul U(r .* h), z keeps the old state",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wr: ["H", "D"], Ur: ["H", "H"], br: "H",
    Wz: ["H", "D"], Uz: ["H", "H"], bz: "H",
    W: ["H", "D"], U: ["H", "H"], b: "H",
  },
  equations: `
    r  = sigmoid(Wr*x + Ur*h + br)        # eq 5
    z  = sigmoid(Wz*x + Uz*h + bz)        # eq 6
    hh = tanh(W*x + U*(r .* h) + b)       # eq 8
    h' = z .* h + (1 - z) .* hh           # eq 7
  `,
});

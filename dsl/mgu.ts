import { defineCell } from "cellforge";

export default defineCell({
  name: "mgu",
  doc: "Minimal gated unit, Zhou et al. 2016 (arXiv 1603.09420): one forget gate; it resets h before U_h and mixes toward the candidate, h' = (1 - f) .* h + f .* h~",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wf: ["H", "D"], Uf: ["H", "H"], bf: "H",
    Wh: ["H", "D"], Uh: ["H", "H"], bh: "H",
  },
  equations: `
    f  = sigmoid(Wf*x + Uf*h + bf)
    hh = tanh(Wh*x + Uh*(f .* h) + bh)
    # f weights the NEW candidate (Chung et al.'s convention), unlike the GRU's z
    h' = (1 - f) .* h + f .* hh
  `,
});

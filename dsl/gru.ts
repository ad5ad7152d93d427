import { defineCell } from "cellforge";

export default defineCell({
  name: "gru",
  doc: "PyTorch nn.GRU / nn.GRUCell (torch/nn/modules/rnn.py): gates [r|z|n], reset after W_hn*h + b_hn",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wir: ["H", "D"], Wiz: ["H", "D"], Win: ["H", "D"],
    Whr: ["H", "H"], Whz: ["H", "H"], Whn: ["H", "H"],
    bir: "H", biz: "H", bin: "H",
    bhr: "H", bhz: "H", bhn: "H",
  },
  equations: `
    r  = sigmoid(Wir*x + bir + Whr*h + bhr)
    z  = sigmoid(Wiz*x + biz + Whz*h + bhz)
    n  = tanh(Win*x + bin + r .* (Whn*h + bhn))
    h' = (1 - z) .* n + z .* h
  `,
});

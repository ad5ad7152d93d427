import { defineCell } from "cellforge";

export default defineCell({
  name: "rnn",
  doc: "Elman RNN with tanh, as PyTorch nn.RNN / nn.RNNCell (nonlinearity='tanh'), two biases",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wih: ["H", "D"],
    Whh: ["H", "H"],
    bih: "H",
    bhh: "H",
  },
  equations: `
    h' = tanh(Wih*x + bih + Whh*h + bhh)
  `,
});

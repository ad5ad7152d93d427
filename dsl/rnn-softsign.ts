import { defineCell } from "cellforge";

export default defineCell({
  name: "rnn-softsign",
  doc: "Elman RNN in PyTorch nn.RNN's layout (two biases) with a user-defined softsign activation x / (1 + |x|), as Keras activations.softsign",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  activations: { softsign: "x / (1 + abs(x))" },
  params: {
    Wih: ["H", "D"],
    Whh: ["H", "H"],
    bih: "H",
    bhh: "H",
  },
  equations: `
    h' = softsign(Wih*x + bih + Whh*h + bhh)
  `,
});

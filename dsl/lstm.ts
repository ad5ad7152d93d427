import { defineCell } from "cellforge";

export default defineCell({
  name: "lstm",
  doc: "PyTorch nn.LSTM / nn.LSTMCell (torch/nn/modules/rnn.py): gates [i|f|g|o], two biases",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  params: {
    Wii: ["H", "D"], Wif: ["H", "D"], Wig: ["H", "D"], Wio: ["H", "D"],
    Whi: ["H", "H"], Whf: ["H", "H"], Whg: ["H", "H"], Who: ["H", "H"],
    bii: "H", bif: "H", big: "H", bio: "H",
    bhi: "H", bhf: "H", bhg: "H", bho: "H",
  },
  equations: `
    i  = sigmoid(Wii*x + bii + Whi*h + bhi)
    f  = sigmoid(Wif*x + bif + Whf*h + bhf)
    g  = tanh(Wig*x + big + Whg*h + bhg)
    o  = sigmoid(Wio*x + bio + Who*h + bho)
    c' = f .* c + i .* g
    h' = o .* tanh(c')
  `,
});

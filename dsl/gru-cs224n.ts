import { defineCell } from "cellforge";

export default defineCell({
  name: "gru-cs224n",
  doc: "GRU of the Stanford cs224n notes (winter 2017, notes5.tex): no biases, reset after U*h, z keeps the old state",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wz: ["H", "D"], Uz: ["H", "H"],
    Wr: ["H", "D"], Ur: ["H", "H"],
    W: ["H", "D"], U: ["H", "H"],
  },
  equations: `
    z  = sigmoid(Wz*x + Uz*h)          # update gate
    r  = sigmoid(Wr*x + Ur*h)          # reset gate
    n  = tanh(r .* (U*h) + W*x)        # new memory
    h' = (1 - z) .* n + z .* h
  `,
});

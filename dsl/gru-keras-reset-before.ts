import { defineCell } from "cellforge";

export default defineCell({
  name: "gru-keras-reset-before",
  doc: "Keras 3 GRUCell, reset_after=False (keras/src/layers/rnn/gru.py; arXiv 1406.1078v3 form): kernel and recurrent_kernel [z|r|h], single bias (3H)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  // Keras: kernel glorot_uniform, recurrent kernel orthogonal (not init rules here), bias zeros.
  params: {
    Kz: ["H", "D"], Kr: ["H", "D"], Kh: ["H", "D"],
    Rz: ["H", "H"], Rr: ["H", "H"], Rh: ["H", "H"],
    bz: { shape: "H", init: "zeros" }, br: { shape: "H", init: "zeros" }, bh: { shape: "H", init: "zeros" },
  },
  equations: `
    # recurrent_activation='sigmoid' (Keras 3 default)
    z  = sigmoid(Kz*x + bz + Rz*h)
    r  = sigmoid(Kr*x + br + Rr*h)
    # reset BEFORE the recurrent matmul
    hh = tanh(Kh*x + bh + Rh*(r .* h))
    h' = z .* h + (1 - z) .* hh
  `,
});

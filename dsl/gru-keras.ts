import { defineCell } from "cellforge";

export default defineCell({
  name: "gru-keras",
  doc: "Keras 3 GRUCell, reset_after=True (keras/src/layers/rnn/gru.py): kernel and recurrent_kernel [z|r|h], bias (2, 3H) = [input; recurrent]; the cuDNN-compatible form",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  // Keras initialises the kernel glorot_uniform and the recurrent kernel orthogonal (neither is an
  // init rule here, so they keep the default uniform); the biases start at zero as in Keras.
  params: {
    Kz: ["H", "D"], Kr: ["H", "D"], Kh: ["H", "D"],
    Rz: ["H", "H"], Rr: ["H", "H"], Rh: ["H", "H"],
    bz: { shape: "H", init: "zeros" }, br: { shape: "H", init: "zeros" }, bh: { shape: "H", init: "zeros" },
    rbz: { shape: "H", init: "zeros" }, rbr: { shape: "H", init: "zeros" }, rbh: { shape: "H", init: "zeros" },
  },
  equations: `
    # recurrent_activation='sigmoid' (Keras 3 default)
    z  = sigmoid(Kz*x + bz + Rz*h + rbz)
    r  = sigmoid(Kr*x + br + Rr*h + rbr)
    # reset AFTER the recurrent matmul, recurrent bias inside
    hh = tanh(Kh*x + bh + r .* (Rh*h + rbh))
    h' = z .* h + (1 - z) .* hh
  `,
});

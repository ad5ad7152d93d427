import { defineCell } from "cellforge";

export default defineCell({
  name: "lstm-keras",
  doc: "Keras 3 LSTMCell (keras/src/layers/rnn/lstm.py): kernel and recurrent_kernel [i|f|c|o], a single bias; unit_forget_bias=True starts b_f at 1 (Jozefowicz et al. 2015)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  // Keras: kernel glorot_uniform, recurrent kernel orthogonal (not init rules here); bias zeros but b_f = 1.
  params: {
    Ki: ["H", "D"], Kf: ["H", "D"], Kc: ["H", "D"], Ko: ["H", "D"],
    Ri: ["H", "H"], Rf: ["H", "H"], Rc: ["H", "H"], Ro: ["H", "H"],
    bi: { shape: "H", init: "zeros" }, bf: { shape: "H", init: { constant: 1 } },
    bc: { shape: "H", init: "zeros" }, bo: { shape: "H", init: "zeros" },
  },
  equations: `
    i  = sigmoid(Ki*x + Ri*h + bi)
    f  = sigmoid(Kf*x + Rf*h + bf)
    # the block Keras calls c: the candidate, activation='tanh'
    g  = tanh(Kc*x + Rc*h + bc)
    o  = sigmoid(Ko*x + Ro*h + bo)
    c' = f .* c + i .* g
    h' = o .* tanh(c')
  `,
});

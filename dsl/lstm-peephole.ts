import { defineCell } from "cellforge";

// Greff et al.'s notation: z is the block input (activation g = tanh), i, f, o the gates, p_* the
// diagonal peephole weights; i and f see the old cell state c, o sees the new one c'. As TF1's
// LSTMCell: W = kernel [i|j|f|o] with j = z, p_* = w_*_diag, and its forget_bias (1.0, added in the
// forward pass) folded into bf.
export default defineCell({
  name: "lstm-peephole",
  doc: "Peephole LSTM (Gers & Schmidhuber 2000) as TF1 LSTMCell(use_peepholes=True) (tensorflow/python/ops/rnn_cell_impl.py): i, f see c, o sees the new c'; the vanilla LSTM of Greff et al. 2017 (arXiv 1503.04069, sec. 2) [U: not confirmed against the paper text]",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  params: {
    Wz: ["H", "D"], Rz: ["H", "H"], bz: "H",
    Wi: ["H", "D"], Ri: ["H", "H"], bi: "H",
    Wf: ["H", "D"], Rf: ["H", "H"], bf: "H",
    Wo: ["H", "D"], Ro: ["H", "H"], bo: "H",
    p_i: "H", p_f: "H", p_o: "H",
  },
  equations: `
    # block input
    z  = tanh(Wz*x + Rz*h + bz)
    i  = sigmoid(Wi*x + Ri*h + p_i .* c + bi)
    f  = sigmoid(Wf*x + Rf*h + p_f .* c + bf)
    c' = z .* i + c .* f
    # the output gate sees the NEW cell state
    o  = sigmoid(Wo*x + Ro*h + p_o .* c' + bo)
    h' = tanh(c') .* o
  `,
});

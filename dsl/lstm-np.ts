import { defineCell } from "cellforge";

export default defineCell({
  name: "lstm-np",
  doc: "Greff et al. 2017 (arXiv 1503.04069, sec. 2) NP, no peepholes: the peephole LSTM without p_i, p_f, p_o (the standard LSTM with one bias per gate); [U] the paper text is not confirmed: follows the TF1 LSTMCell(use_peepholes=True) code path, tensorflow/python/ops/rnn_cell_impl.py",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  params: {
    Wz: ["H", "D"], Rz: ["H", "H"], bz: "H",
    Wi: ["H", "D"], Ri: ["H", "H"], bi: "H",
    Wf: ["H", "D"], Rf: ["H", "H"], bf: "H",
    Wo: ["H", "D"], Ro: ["H", "H"], bo: "H",
  },
  equations: `
    z  = tanh(Wz*x + Rz*h + bz)
    i  = sigmoid(Wi*x + Ri*h + bi)
    f  = sigmoid(Wf*x + Rf*h + bf)
    c' = z .* i + c .* f
    o  = sigmoid(Wo*x + Ro*h + bo)
    h' = tanh(c') .* o
  `,
});

import { defineCell } from "cellforge";

// haste's kernel (D, 4H), recurrent_kernel (H, 4H) and gamma (2, 4H) are stored here transposed or
// split: K = kernel', R = recurrent_kernel', gx = gamma[0], gr = gamma[1]; gate order [i|g|f|o]. Layer
// norm runs over all 4H pre-activations at once (haste lib/layer_norm_forward_gpu.cu.cc, eps 1e-5).
// haste's bias (4H) is split per gate here, so that b_f alone can start at forget_bias = 1.
export default defineCell({
  name: "lstm-layernorm",
  doc: "haste LayerNormLSTM (frameworks/pytorch/layer_norm_lstm.py, lib/layer_norm_lstm_forward_gpu.cu.cc), after Ba et al. 2016 (arXiv 1607.06450, supp. eqs 20-22): gates [i|g|f|o], LN(R*h) + LN(K*x) with gains and no beta, h' = o .* tanh(LN(c') with gain and beta)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  constants: { eps: 1e-5 },
  // haste: kernel xavier_uniform and recurrent kernel orthogonal per gate (not init rules here).
  params: {
    K: ["4*H", "D"],
    R: ["4*H", "H"],
    gx: { shape: "4*H", init: "ones" },
    gr: { shape: "4*H", init: "ones" },
    bi: { shape: "H", init: "zeros" },
    bg: { shape: "H", init: "zeros" },
    bf: { shape: "H", init: { constant: 1 } },
    bo: { shape: "H", init: "zeros" },
    gamma_h: { shape: "H", init: "ones" },
    beta_h: { shape: "H", init: "zeros" },
  },
  equations: `
    # layer norm of the input product, over its 4H elements
    a  = K*x
    na = (a - mean(a)) / sqrt(var(a) + eps)
    # layer norm of the recurrent product
    u  = R*h
    nu = (u - mean(u)) / sqrt(var(u) + eps)
    v  = gr .* nu + gx .* na
    i  = sigmoid(slice(v, 0, H) + bi)
    g  = tanh(slice(v, H, H) + bg)
    f  = sigmoid(slice(v, 2*H, H) + bf)
    o  = sigmoid(slice(v, 3*H, H) + bo)
    c' = f .* c + i .* g
    # layer norm of the new cell state, with gain and beta; the state c' itself is not normalised
    nc = (c' - mean(c')) / sqrt(var(c') + eps)
    h' = o .* tanh(gamma_h .* nc + beta_h)
  `,
});

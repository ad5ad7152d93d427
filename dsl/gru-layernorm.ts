import { defineCell } from "cellforge";

// haste's kernel (D, 3H), recurrent_kernel (H, 3H) and gamma (2, 3H) are stored here transposed or
// split: K = kernel', R = recurrent_kernel', gx = gamma[0], gr = gamma[1]; gate order [z|r|g]. Layer
// norm runs over all 3H elements of each product (F.layer_norm(..., (3H,)), eps 1e-5), with gains and no beta.
export default defineCell({
  name: "gru-layernorm",
  doc: "haste LayerNormGRU (frameworks/pytorch/layer_norm_gru.py, LayerNormGRUScript): layout [z|r|g], Wx = LN(K*x) .* gamma[0] + bias, Rh = LN(R*h) .* gamma[1] + recurrent_bias, reset after the product, h' = z .* h + (1 - z) .* g",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  constants: { eps: 1e-5 },
  // haste: kernel xavier_uniform and recurrent kernel orthogonal per gate (not init rules here).
  params: {
    K: ["3*H", "D"],
    R: ["3*H", "H"],
    b: { shape: "3*H", init: "zeros" },
    rb: { shape: "3*H", init: "zeros" },
    gx: { shape: "3*H", init: "ones" },
    gr: { shape: "3*H", init: "ones" },
  },
  equations: `
    a  = K*x
    wx = gx .* ((a - mean(a)) / sqrt(var(a) + eps)) + b
    u  = R*h
    rh = gr .* ((u - mean(u)) / sqrt(var(u) + eps)) + rb
    z  = sigmoid(slice(wx, 0, H) + slice(rh, 0, H))
    r  = sigmoid(slice(wx, H, H) + slice(rh, H, H))
    g  = tanh(slice(wx, 2*H, H) + r .* slice(rh, 2*H, H))
    h' = z .* h + (1 - z) .* g
  `,
});

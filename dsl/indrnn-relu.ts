import { defineCell } from "cellforge";

export default defineCell({
  name: "indrnn-relu",
  doc: "IndRNN, Li et al. CVPR 2018 (arXiv 1803.04831) with ReLU as in the paper: h' = relu(W*x + u .* h + b), u a vector; init as haste (frameworks/pytorch/indrnn.py): u ~ U(-0.5, 0.5), b = 0",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  // haste: kernel xavier_uniform (not an init rule here, so the default uniform), recurrent_scale U(-0.5, 0.5), bias zeros.
  params: {
    W: ["H", "D"],
    u: { shape: "H", init: { uniform: 0.5 } },
    b: { shape: "H", init: "zeros" },
  },
  equations: `
    # each unit sees only its own past: u is a vector, not a matrix
    h' = relu(W*x + u .* h + b)
  `,
});

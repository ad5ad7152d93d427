import { defineCell } from "cellforge";

// One size, D == H, so the highway term is the input itself (asappresearch/sru's k = 3 case, no W'x
// projection): 3HD + 4H parameters. sru stores W as one (D, 3H) matrix interleaved per unit
// (column 3j + m is matrix m of unit j: m = 0 for W, 1 for Wf, 2 for Wr); here they are three [H, D]
// matrices. weight_c = [v_f; v_r], bias = [b_f; b_r]. scale_x = sqrt(1 + 2 exp(highway_bias)) is a
// constant (the buffer scale_x); SRUCell's rescale=True makes it sqrt(3) at highway_bias = 0 (the SRU
// wrapper's default is rescale=False, scale 1). c is the state; h is an output that is not fed back.
export default defineCell({
  name: "sru",
  doc: "SRU, Lei et al. EMNLP 2018 (arXiv 1709.02755), as asappresearch/sru sru/ops.py elementwise_recurrence_naive with SRUCell defaults (highway_bias 0, rescale=True, use_tanh=False), D == H",
  sizes: { H: "hidden size = input size" },
  inputs: { x: "H" },
  state: { c: "H" },
  outputs: { h: "H" },
  constants: { highway_bias: 0 },
  // sru: weight U(±sqrt(3/D)) with the f and r columns times sqrt(1/2) and weight_c U(±sqrt(3/2))
  // (size-dependent ranges are not init rules here, so W, Wf, Wr keep the default); bias zeros, b_r = highway_bias.
  params: {
    W: ["H", "H"], Wf: ["H", "H"], Wr: ["H", "H"],
    v_f: { shape: "H", init: { uniform: 1.224744871391589 } },
    v_r: { shape: "H", init: { uniform: 1.224744871391589 } },
    b_f: { shape: "H", init: "zeros" },
    b_r: { shape: "H", init: { constant: 0 } },
  },
  equations: `
    f  = sigmoid(Wf*x + v_f .* c + b_f)
    r  = sigmoid(Wr*x + v_r .* c + b_r)
    c' = f .* c + (1 - f) .* (W*x)
    scale_x = sqrt(1 + 2*exp(highway_bias))
    # g = identity (use_tanh=False); the highway term is the scaled input
    h  = r .* c' + (1 - r) .* (scale_x * x)
  `,
});

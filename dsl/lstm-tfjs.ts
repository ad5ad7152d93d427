import { defineCell } from "cellforge";

export default defineCell({
  name: "lstm-tfjs",
  doc: "tfjs-layers LSTMCell (tfjs-layers/src/layers/recurrent.ts): kernel [i|f|c|o], a single bias, recurrentActivation 'hardSigmoid' = clip(0.2x + 0.5, 0, 1) by default; unitForgetBias has no default (no +1)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  // tfjs: kernel glorotNormal, recurrent kernel orthogonal (not init rules here), bias zeros.
  params: {
    Ki: ["H", "D"], Kf: ["H", "D"], Kc: ["H", "D"], Ko: ["H", "D"],
    Ri: ["H", "H"], Rf: ["H", "H"], Rc: ["H", "H"], Ro: ["H", "H"],
    bi: { shape: "H", init: "zeros" }, bf: { shape: "H", init: "zeros" },
    bc: { shape: "H", init: "zeros" }, bo: { shape: "H", init: "zeros" },
  },
  equations: `
    i  = hardSigmoid(Ki*x + Ri*h + bi)
    f  = hardSigmoid(Kf*x + Rf*h + bf)
    # the block tfjs calls c: the candidate, activation 'tanh'
    g  = tanh(Kc*x + Rc*h + bc)
    o  = hardSigmoid(Ko*x + Ro*h + bo)
    c' = f .* c + i .* g
    h' = o .* tanh(c')
  `,
});

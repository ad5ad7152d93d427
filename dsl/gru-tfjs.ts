import { defineCell } from "cellforge";

export default defineCell({
  name: "gru-tfjs",
  doc: "tfjs-layers GRUCell (tfjs-layers/src/layers/recurrent.ts): reset-before only, kernel [z|r|h], single bias, recurrentActivation 'hardSigmoid' = clip(0.2x + 0.5, 0, 1)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  // tfjs: kernel glorotNormal, recurrent kernel orthogonal (not init rules here), bias zeros.
  params: {
    Kz: ["H", "D"], Kr: ["H", "D"], Kh: ["H", "D"],
    Rz: ["H", "H"], Rr: ["H", "H"], Rh: ["H", "H"],
    bz: { shape: "H", init: "zeros" }, br: { shape: "H", init: "zeros" }, bh: { shape: "H", init: "zeros" },
  },
  equations: `
    z  = hardSigmoid(Kz*x + bz + Rz*h)
    r  = hardSigmoid(Kr*x + br + Rr*h)
    # activation 'tanh'; reset BEFORE the recurrent matmul
    hh = tanh(Kh*x + bh + Rh*(r .* h))
    h' = z .* h + (1 - z) .* hh
  `,
});

import { defineCell } from "cellforge";

export default defineCell({
  name: "gru-cudnn",
  doc: "cuDNN CUDNN_GRU (cuDNN guide, as quoted by tf.contrib.cudnn_rnn CudnnCompatibleGRUCell): linLayerID 0-2 = W_r, W_u, W_h, 3-5 = R_r, R_u, R_h; biases b_W*, b_R*; the same function as PyTorch nn.GRU",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: {
    Wr: ["H", "D"], Wu: ["H", "D"], Wh: ["H", "D"],
    Rr: ["H", "H"], Ru: ["H", "H"], Rh: ["H", "H"],
    bWr: "H", bWu: "H", bWh: "H",
    bRr: "H", bRu: "H", bRh: "H",
  },
  equations: `
    r  = sigmoid(Wr*x + Rr*h + bWr + bRr)
    u  = sigmoid(Wu*x + Ru*h + bWu + bRu)
    hh = tanh(Wh*x + r .* (Rh*h + bRh) + bWh)
    h' = (1 - u) .* hh + u .* h
  `,
});

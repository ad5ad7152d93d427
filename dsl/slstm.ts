import { defineCell } from "cellforge";

export default defineCell({
  name: "slstm",
  doc: "sLSTM of xLSTM, Beck et al. 2024 (arXiv 2405.04517, Sec. 2.2, eqs 8-17): exponential input gate, sigmoid forget gate, normalizer n and max-stabilizer m, recurrent matrices block-diagonal in 4 heads (memory mixing within a head); gate order i|f|z|o and the vanilla pointwise step of NX-AI/xlstm's slstm_forward_pointwise, except that step 1 takes the max too (the code takes m = i~ while n = 0)",
  sizes: { D: "input size", H: "hidden size (a multiple of the 4 heads)" },
  defaults: { D: 3, H: 8 },
  inputs: { x: "D" },
  state: { h: "H", c: "H", n: "H", m: "H" },
  params: {
    Wi: ["H", "D"], Wf: ["H", "D"], Wz: ["H", "D"], Wo: ["H", "D"],
    Ri: { shape: ["H", "H"], heads: 4 }, Rf: { shape: ["H", "H"], heads: 4 },
    Rz: { shape: ["H", "H"], heads: 4 }, Ro: { shape: ["H", "H"], heads: 4 },
    bi: "H", bf: "H", bz: "H", bo: "H",
  },
  equations: `
    iraw = Wi*x + Ri*h + bi                 # (12) i~: the input gate is i = exp(i~)
    fraw = Wf*x + Rf*h + bf                 # (13) f~: the forget gate is f = sigmoid(f~)
    z    = tanh(Wz*x + Rz*h + bz)           # (11) cell input
    o    = sigmoid(Wo*x + Ro*h + bo)        # (14) output gate
    logf = -softplus(-fraw)                 # log f = log sigmoid(f~)
    m'   = max(logf + m, iraw)              # (15) stabilizer state
    i    = exp(iraw - m')                   # (16) stabilized input gate
    f    = exp(logf + m - m')               # (17) stabilized forget gate
    c'   = f .* c + i .* z                  # (8) cell state
    n'   = f .* n + i                       # (9) normalizer state
    h'   = o .* (c' ./ n')                  # (10) hidden state
  `,
});

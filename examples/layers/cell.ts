// A cell of our own, in the equation language: one gate that both forgets and writes (coupled, as
// JANET keeps only the forget gate: van der Westhuizen & Lasenby 2018, arXiv 1804.04849), with a
// peephole on the cell state (Gers & Schmidhuber 2000). cellforge derives its backward pass;
// `cellforge generate examples/layers/cell.ts --out examples/layers/kernels` writes its kernels.
import { defineCell } from "cellforge";

export default defineCell({
  name: "peepgate",
  doc: "one coupled gate with a peephole on the cell: c' = f .* c + (1 - f) .* g, h' = tanh(c')",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H", c: "H" },
  params: {
    Wf: ["H", "D"], Uf: ["H", "H"], pf: "H", bf: { shape: "H", init: { constant: 1 } },
    Wg: ["H", "D"], Ug: ["H", "H"], bg: { shape: "H", init: "zeros" },
  },
  equations: `
    f  = sigmoid(Wf*x + Uf*h + pf .* c + bf)   # the gate peeks at the cell; bf = 1: it starts remembering
    g  = tanh(Wg*x + Ug*h + bg)                # the candidate
    c' = f .* c + (1 - f) .* g                 # what the gate forgets is what it writes
    h' = tanh(c')
  `,
});

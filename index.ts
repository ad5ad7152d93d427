// cellforge, the package's main entry: the equation language and the builder (src/index.ts, which
// is all a cell file needs), the derivation, the reference evaluator, the gradient check and the
// weight converters. Kernels are generated (`cellforge generate`, or `cellforge/generate`) and run
// on `cellforge/runtime`.
export * from "./src/index.ts";
export { forwardSequence, backwardSequence, gradients, randomCase, type SequenceCase } from "./src/sequence.ts";
export { checkGradients, formatReport, PASS_RULE, type CheckOptions, type CheckReport, type CheckRow } from "./check/gradcheck.ts";
export { readWeights, writeWeights, readCellParams, writeCellParams, InteropError, type Framework, type CellParams } from "./src/interop/convert.ts";
export { recognize } from "./src/interop/match.ts";

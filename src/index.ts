// cellforge's public API.
export { defineCell, compileCell, type Cell, type CellSpec, type ParamSpec, type Init, type ShapeSpec } from "./cell.ts";
export { CellError } from "./errors.ts";
export { deriveBackward, type BackwardStep } from "./backward.ts";
export {
  buildCell, type Declaration, type Value,
  add, sub, mul, div, neg, matmul, constant, pow, sigmoid, tanh, relu, exp, log, softplus, abs, sqrt, square,
  hardSigmoid, hardSigmoidKeras, max, min, clip, sum, mean, variance, concat, slice, activation,
} from "./builder.ts";

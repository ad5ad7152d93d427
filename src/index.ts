// cellforge's public API.
export { defineCell, compileCell, type Cell, type CellSpec, type ParamSpec, type Init, type ShapeSpec } from "./cell.ts";
export { CellError } from "./errors.ts";
export { deriveBackward, type BackwardStep } from "./backward.ts";
// the builder: buildCell, the operators, and every function of the equations (src/builder.ts)
export * from "./builder.ts";

// Stored tensors as JSON nested arrays, and how a form's parameters are packed into them and cut
// out of them (PyTorch row blocks, Keras transposed column blocks, Keras's (2, 3H) bias).
import type { TensorLayout } from "./forms.ts";

/** A tensor as JSON: a number, or arrays of arrays of numbers. */
export type Nested = number | Nested[];

/** A converter's refusal: a weight that does not fit, a cell that is not the library's form. */
export class InteropError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InteropError";
  }
}

export const shapeText = (dims: readonly number[]): string => `[${dims.join(", ")}]`;

/** Deeper nesting than this is not a tensor of a recurrent cell (they are vectors and matrices; Keras's GRU bias is [2, 3H]). */
export const MAX_TENSOR_DIMS = 8;

/** A short description of a JSON value that never walks into it (a value nested 20,000 deep would overflow JSON.stringify). */
export function preview(x: unknown): string {
  if (x === undefined) return "nothing";
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (typeof x === "object" && x !== null) return "an object";
  return (JSON.stringify(x) ?? String(x)).slice(0, 40);
}

/** The shape of a rectangular nested array of finite numbers, and its elements row-major. */
export function readTensor(v: unknown, name: string): { shape: number[]; data: Float64Array } {
  const shape: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) {
    if (x.length === 0) throw new InteropError(`${name}: an empty array (a tensor has at least one element)`);
    if (shape.length === MAX_TENSOR_DIMS) {
      let depth = shape.length;
      for (let y: unknown = x; Array.isArray(y); y = y[0]) depth++;
      throw new InteropError(`${name}: arrays nested ${depth} deep; a weight here has at most ${MAX_TENSOR_DIMS} dimensions (a cell's weights are vectors and matrices)`);
    }
    shape.push(x.length);
  }
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  let k = 0;
  const walk = (x: unknown, d: number, path: string) => {
    if (d === shape.length) {
      if (typeof x !== "number" || !Number.isFinite(x)) throw new InteropError(`${path}: expected a finite number, got ${preview(x)}`);
      data[k++] = x;
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[d])
      throw new InteropError(`${path}: expected an array of ${shape[d]} like ${name}${"[0]".repeat(d)}, got ${preview(x)} (a tensor is a rectangular array of numbers)`);
    x.forEach((y, i) => walk(y, d + 1, `${path}[${i}]`));
  };
  walk(v, 0, name);
  return { shape, data };
}

/** Row-major data as nested arrays of the given shape. */
export function nest(a: ArrayLike<number>, dims: readonly number[]): Nested {
  let k = 0;
  const build = (d: number): Nested => (d === dims.length ? a[k++]! : Array.from({ length: dims[d]! }, () => build(d + 1)));
  return build(0);
}

/** A form parameter's value: its shape ([H, n] or [H]) and row-major data. */
export interface Block {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/** The shape a tensor has given its parts' shapes (all parts of a tensor have one shape). */
export function layoutShape(layout: TensorLayout, part: readonly number[]): number[] {
  const [H, n] = part as [number, number | undefined];
  if (layout.kind === "grid") return [layout.rows.length, layout.rows[0]!.length * H];
  const k = layout.parts.length;
  if (layout.kind === "rows") return n === undefined ? [k * H] : [k * H, n];
  return [n!, k * H];
}

/** The parts of a tensor (already checked to have `layoutShape`), by form parameter name. */
export function unpack(layout: TensorLayout, data: Float64Array, part: readonly number[]): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  const size = part.reduce((a, b) => a * b, 1);
  if (layout.kind === "rows") layout.parts.forEach((p, i) => (out[p] = data.slice(i * size, (i + 1) * size)));
  else if (layout.kind === "grid") layout.rows.flat().forEach((p, i) => (out[p] = data.slice(i * size, (i + 1) * size)));
  else {
    // kernel [n, k·H]: part i is the transpose of columns i·H … i·H + H - 1
    const [H, n] = part as [number, number];
    const width = layout.parts.length * H;
    layout.parts.forEach((p, i) => {
      const w = new Float64Array(H * n);
      for (let r = 0; r < H; r++) for (let c = 0; c < n; c++) w[r * n + c] = data[c * width + i * H + r]!;
      out[p] = w;
    });
  }
  return out;
}

/** The inverse of `unpack`: a tensor's data from its parts. */
export function pack(layout: TensorLayout, parts: Readonly<Record<string, Float64Array>>, part: readonly number[]): Float64Array {
  const size = part.reduce((a, b) => a * b, 1);
  const names = layout.kind === "grid" ? layout.rows.flat() : layout.parts;
  const out = new Float64Array(names.length * size);
  if (layout.kind !== "cols") names.forEach((p, i) => out.set(parts[p]!, i * size));
  else {
    const [H, n] = part as [number, number];
    const width = names.length * H;
    names.forEach((p, i) => {
      const w = parts[p]!;
      for (let r = 0; r < H; r++) for (let c = 0; c < n; c++) out[c * width + i * H + r] = w[r * n + c]!;
    });
  }
  return out;
}

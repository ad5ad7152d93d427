// Weights in safetensors files, for `cellforge convert` and `cellforge train --init`. A file becomes
// the same JSON the converters read from a .json file, so every check of convert.ts applies unchanged:
//
//   another tool's file (safetensors.torch.save_file(gru.state_dict(), …)), read by nn/file.ts's
//     readSafetensors: each tensor as nested arrays of its shape (a state_dict's, or Keras's weights)
//   cellforge's own files (sha256 checked by nn/file.ts's decodeContainer), by their meta.kind:
//     "cellforge parameters"  what convert writes: { kind, cell, framework, sizes, config? } and the tensors
//     "cellforge model"       a model file: one tensor per parameter, named as the model names them
//     a checkpoint            its meta.params lists [name, length] in the model's order, and the "params"
//                             section holds them one after another (Model's one flat buffer, nn/model.ts)
//   A model's layer k is its parameters "l{k-1}.<name>", the reverse direction "l{k-1}_reverse.<name>",
//   and a layer's input projection "l{k-1}.proj.W/b" (nn/recurrent.ts planOf names them).
import type { Cell } from "../cell.ts";
import { dimValue } from "../dims.ts";
import type { FloatArray } from "../../runtime/kernel.ts";
import { ModelFileError, containerKind, decodeContainer, encodeContainer, readSafetensors } from "../../nn/file.ts";
import { checkTrainMeta } from "../train/meta.ts";
import { FRAMEWORK_NAME, type Framework, type Sizes } from "./convert.ts";
import { InteropError, nest } from "./tensors.ts";

export type Side = Framework | "cellforge";
export type Direction = "forward" | "reverse";
const SIDE_NAME: Readonly<Record<Side, string>> = { ...FRAMEWORK_NAME, cellforge: "cellforge" };

/** What `cellforge convert` writes to a .safetensors file, in its __metadata__.meta. */
export interface ParametersMeta {
  readonly kind: "cellforge parameters";
  readonly cell: string;
  readonly framework: Side;
  readonly sizes: Sizes;
  /** Keras's layer config, as the JSON output's "config". */
  readonly config?: Readonly<Record<string, unknown>>;
}

/**
 * Whether the bytes are a safetensors file: cellforge's own (its header's fixed beginning), or any
 * other whose first 8 bytes are a header length within the file and whose header opens with "{".
 * A JSON file is never one: its bytes 4-7 are text, a length beyond any file. An earlier cellforge's
 * file counts too, for decodeContainer to refuse by name.
 */
export function isSafetensors(b: Uint8Array): boolean {
  if (containerKind(b) !== null) return true;
  if (b.length < 9 || b[8] !== 0x7b) return false;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32 <= b.length - 8;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * A safetensors file's tensors as the JSON `from`'s reader takes (readWeights or readCellParams), and
 * notes to print. `layer` (1-based) and `direction` pick a model's layer; a cellforge file's errors
 * are ModelFileErrors (or CheckpointErrors) naming `source`, the others InteropErrors.
 */
export function weightsJson(cell: Cell, from: Side, bytes: Uint8Array, source: string, pick: { layer?: number; direction?: Direction } = {}): { json: unknown; notes: string[] } {
  const { layer = 1, direction = "forward" } = pick;
  if (containerKind(bytes) === null) {
    if (from === "cellforge") throw new InteropError(`a safetensors file without cellforge's metadata (another tool's): --from pytorch or --from keras reads its tensors`);
    if (layer !== 1 || direction !== "forward") throw new InteropError(`--layer and --direction pick a layer of a cellforge model file or checkpoint; this file is another tool's: give one layer's tensors (as a state_dict names them, _l0)`);
    const { tensors } = readSafetensors(bytes, source);
    return { json: Object.fromEntries(tensors.map((t) => [t.name, nest(t.data, t.shape)])), notes: [] };
  }
  const { header, sections } = decodeContainer<unknown>(bytes, source), meta = header.meta;
  const shapes = new Map(header.sections.map((s) => [s.name, s.shape]));
  if (isRecord(meta) && meta.kind === "cellforge parameters") {
    const m = meta as unknown as ParametersMeta;
    if (m.framework !== from) throw new InteropError(`holds ${SIDE_NAME[m.framework] ?? JSON.stringify(m.framework)} ${m.framework === "cellforge" ? "parameters" : "weights"} (cellforge convert --to ${m.framework} wrote it), not ${SIDE_NAME[from]}'s: use --from ${m.framework}`);
    if (layer !== 1 || direction !== "forward") throw new InteropError(`holds one cell's parameters, written by cellforge convert; --layer and --direction pick a layer of a model file or checkpoint`);
    const tensors = Object.fromEntries([...sections].map(([k, a]) => [k, nest(a, shapes.get(k)!)]));
    return { json: from === "cellforge" ? { cell: m.cell, sizes: m.sizes, params: tensors } : { ...tensors, ...(m.config ? { config: m.config } : {}) }, notes: [] };
  }
  // a model file or a checkpoint: the model's parameters by name, each with its shape (a checkpoint's are flat)
  const model = isRecord(meta) && meta.kind === "cellforge model";
  const what = model ? "a cellforge model file" : "a cellforge training checkpoint";
  if (from !== "cellforge") throw new InteropError(`${what}, not ${SIDE_NAME[from]} weights: convert it with --from cellforge (--layer k picks the layer)`);
  const arrays = new Map<string, { data: FloatArray; shape: readonly number[] | null }>();
  let named: string;
  if (model) {
    named = String(meta.cell);
    for (const [k, a] of sections) arrays.set(k, { data: a, shape: shapes.get(k)! });
  } else {
    const m = checkTrainMeta(source, meta), flat = sections.get("params");
    if (!flat) throw new ModelFileError(`${source}: the checkpoint's section params is missing`);
    named = m.cellName;
    let at = 0;
    for (const [k, n] of m.params) arrays.set(k, { data: flat.subarray(at, (at += n)), shape: null });
    if (at !== flat.length) throw new ModelFileError(`${source}: the checkpoint's meta.params add up to ${at} numbers; its section params holds ${flat.length}`);
  }
  if (named !== cell.name) throw new InteropError(`${what} of cell "${named}", not of cell "${cell.name}" (the cell given): convert it as ${named}`);
  const names = [...arrays.keys()], layers = new Set(names.flatMap((k) => /^l(\d+)\./.exec(k)?.[1] ?? [])).size;
  if (!Number.isInteger(layer) || layer < 1 || layer > layers) throw new InteropError(`the model has ${layers} layer${layers === 1 ? "" : "s"}, no layer ${layer} (--layer 1${layers > 1 ? ` to ${layers}` : ""})`);
  const bidirectional = names.some((k) => k.startsWith(`l${layer - 1}_reverse.`));
  if (direction === "reverse" && !bidirectional) throw new InteropError(`the model is not bidirectional: layer ${layer} has no reverse direction (drop --direction reverse)`);
  const prefix = `l${layer - 1}${direction === "reverse" ? "_reverse" : ""}.`;
  const notes: string[] = [];
  if (bidirectional && direction === "forward") notes.push(`the model is bidirectional: this is layer ${layer}'s forward direction (${prefix}*); --direction reverse converts the other (l${layer - 1}_reverse.*)`);
  if (names.includes(`l${layer - 1}.proj.W`)) notes.push(`layer ${layer}'s input projection (l${layer - 1}.proj.W, .b) is the model's, not the cell's: it is not converted`);
  const mine = new Map([...arrays].filter(([k]) => k.startsWith(prefix) && !k.startsWith(`${prefix}proj.`)).map(([k, v]) => [k.slice(prefix.length), v]));
  const sizes = sizesOf(cell, mine);
  const params = Object.fromEntries([...mine].map(([k, v]) => [k, nest(v.data, v.shape ?? shapeOf(cell, k, sizes) ?? [v.data.length])]));
  return { json: { cell: named, sizes, params }, notes };
}

/** A cell parameter's shape at these sizes, or null when the cell has no such parameter (readCellParams names it). */
function shapeOf(cell: Cell, name: string, sizes: Readonly<Record<string, number>>): number[] | null {
  const p = cell.params.find((q) => q.name === name);
  return p ? p.node.type.shape.map((d) => dimValue(d, sizes)) : null;
}

/**
 * The cell's sizes (D, H) in a model's layer, from its parameters' lengths: a parameter whose
 * dimensions are plain sizes and all but one known gives that one (Whr, [H, H], gives H; then Wir,
 * [H, D], gives D). readCellParams then checks every parameter's shape at these sizes.
 */
function sizesOf(cell: Cell, arrays: ReadonlyMap<string, { data: FloatArray }>): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (let progress = true; progress; ) {
    progress = false;
    for (const p of cell.params) {
      const n = arrays.get(p.name)?.data.length, dims = p.node.type.shape;
      if (n === undefined || !dims.every((d) => d.c === 0 && Object.values(d.terms).join() === "1")) continue;
      const names = dims.map((d) => Object.keys(d.terms)[0]!), unknown = names.filter((k) => sizes[k] === undefined);
      if (unknown.length === 0 || new Set(unknown).size !== 1) continue;
      const known = names.filter((k) => sizes[k] !== undefined).reduce((a, k) => a * sizes[k]!, 1);
      sizes[unknown[0]!] = Math.round((n / known) ** (1 / unknown.length));
      progress = true;
    }
  }
  return sizes;
}

/**
 * Tensors as a safetensors file of `meta`, in their order and shapes, float64 or rounded to float32;
 * sealed with cellforge's sha256, so cellforge checks it when it reads it back.
 */
export function parametersFile(meta: ParametersMeta, tensors: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: ArrayLike<number> }>>, dtype: "f32" | "f64"): Uint8Array {
  const F = dtype === "f32" ? Float32Array : Float64Array;
  const data = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, F.from(t.data)]));
  return encodeContainer(meta, data, Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.shape])));
}

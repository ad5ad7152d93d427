// Weight converters between a cell's parameters and the tensors PyTorch and Keras/tfjs store.
//
// A conversion goes: the framework's tensors → the framework form's parameters (forms.ts layouts)
// → [a bridge between forms, for PyTorch's two LSTM biases and Keras's one] → the form the cell is
// (match.ts) → the cell's own parameter names; and back. Every tensor's shape is checked against the
// sizes read from the weights, and a cell that is not a known form is refused, with where it differs.
//
// JSON (README, "Which GRU is this?"):
//   pytorch:   { "weight_ih_l0": [[…]], "weight_hh_l0": …, "bias_ih_l0": […], "bias_hh_l0": […] }  (state_dict; "_l0" optional)
//   keras:     { "kernel": [[…]], "recurrent_kernel": …, "bias": …, "config"?: { units, reset_after, recurrent_activation } }
//              or the list [kernel, recurrent_kernel, bias] that get_weights() returns
//   cellforge: { "cell": "gru", "sizes": { "D": 3, "H": 4 }, "params": { "Wir": [[…]], … } }  (as in case.json)
import { type Cell, resolveSizes } from "../cell.ts";
import { dimValue } from "../dims.ts";
import { ACTIVATION_TEXT, BRIDGES, type Bridge, type Form, type Framework, type RecurrentActivation, RECURRENT_ACTIVATIONS, forms, formById } from "./forms.ts";
import { type Recognition, formCell, matchForm, recognize } from "./match.ts";
import { InteropError, type Nested, layoutShape, nest, pack, readTensor, shapeText, unpack } from "./tensors.ts";

export { InteropError, type Nested } from "./tensors.ts";
export type { Framework } from "./forms.ts";

export type Sizes = { readonly D: number; readonly H: number };
export type Params = Record<string, Float64Array>;
/** A cell's parameters by its own names, flat row-major in their declared shapes. */
export interface CellParams {
  readonly sizes: Sizes;
  readonly params: Params;
}

export const FRAMEWORK_NAME: Readonly<Record<Framework, string>> = { pytorch: "PyTorch", keras: "Keras/tfjs" };

/** How a cell reaches a framework's layout: the form it is, and the framework's form (the same one, or across a bridge). */
export interface Route {
  readonly recognition: Recognition;
  readonly form: Form;
  readonly bridge?: { readonly bridge: Bridge; readonly cellIsA: boolean };
}

/** The way from `cell` to `framework`'s tensors, or an InteropError saying why there is none. */
export function route(cell: Cell, framework: Framework): Route {
  const known = recognize(cell);
  const direct = known.find((r) => r.form.framework === framework);
  if (direct) return { recognition: direct, form: direct.form };
  for (const r of known)
    for (const b of BRIDGES) {
      if (b.a === r.form.id && formById(b.b).framework === framework) return { recognition: r, form: formById(b.b), bridge: { bridge: b, cellIsA: true } };
      if (b.b === r.form.id && formById(b.a).framework === framework) return { recognition: r, form: formById(b.a), bridge: { bridge: b, cellIsA: false } };
    }
  if (known.length) {
    const is = known.map((r) => r.form.title).join("; ");
    const why = known.map((r) => noRouteReason(r.form, framework)).find((w) => w) ?? "";
    throw new InteropError(`cell "${cell.name}" is ${is}: ${FRAMEWORK_NAME[framework]} has no layer that computes it, so there are no ${FRAMEWORK_NAME[framework]} weights for it.${why ? `\n  ${why}` : ""}`);
  }
  // where the cell differs from each form with as many states (the hard-sigmoid variants would repeat the sigmoid ones)
  const tried = forms().filter((f) => formCell(f).states.length === cell.states.length && (f.config?.recurrent_activation ?? "sigmoid") === "sigmoid")
    .sort((a, b) => Number(b.framework === framework) - Number(a.framework === framework));
  const lines = tried.map((f) => matchForm(cell, f)).map((m) => `  ${"mismatch" in m ? m.mismatch : m.form.title}`);
  throw new InteropError(
    `cell "${cell.name}"${cell.file ? ` (${cell.file})` : ""} is not one of the forms the converters know, so its parameters have no place in ${FRAMEWORK_NAME[framework]}'s tensors:\n${lines.join("\n")}\n` +
      `  (known: PyTorch nn.RNN (tanh), nn.GRU, nn.LSTM; Keras/tfjs GRU with reset_after True or False, and LSTM, each with recurrent activation sigmoid, hardSigmoid or hardSigmoidKeras; ` +
      `a form is recognized from the cell's equations up to parameter names and the order of terms in a sum, not from its name)`,
  );
}

function noRouteReason(form: Form, framework: Framework): string | undefined {
  if (framework === "pytorch" && form.id.startsWith("keras-gru-reset-before"))
    return "PyTorch's nn.GRU applies the reset gate after the recurrent product, r .* (W_hn*h + b_hn); this cell applies it before, R_h*(r .* h): a different function, which no nn.GRU weights reproduce (Keras: reset_after=True is PyTorch's form).";
  const act = form.config?.recurrent_activation;
  if (framework === "pytorch" && act && act !== "sigmoid") return `PyTorch's gates use sigmoid; this cell's use ${ACTIVATION_TEXT[act as RecurrentActivation]}.`;
  if (framework === "keras" && form.id === "pytorch-rnn") return "the converters have no Keras layout for nn.RNN (Keras's SimpleRNN has a single bias).";
  return undefined;
}

// ------------------------------------------------------------------ form parameters

/** Each form parameter's shape at these sizes. */
function shapesOf(form: Form, sizes: Sizes): Record<string, number[]> {
  return Object.fromEntries(formCell(form).params.map((p) => [p.name, p.node.type.shape.map((d) => dimValue(d, sizes))]));
}

/** Parameters of one form from those of the other across a bridge. */
function acrossBridge(map: Bridge["aToB"], src: Params, shapes: Record<string, number[]>): Params {
  const out: Params = {};
  for (const [dst, from] of Object.entries(map)) {
    const n = shapes[dst]!.reduce((a, b) => a * b, 1);
    if (from === null) out[dst] = new Float64Array(n);
    else if (typeof from === "string") out[dst] = Float64Array.from(src[from]!);
    else out[dst] = from.map((s) => src[s]!).reduce((acc, v) => acc.map((x, k) => x + v[k]!), new Float64Array(n));
  }
  return out;
}

/** The cell's parameters from the framework form's parameters (renamed, and across the bridge if any). */
function formToCell(r: Route, fp: Params, sizes: Sizes): Params {
  let p = fp;
  if (r.bridge) {
    const b = r.bridge.bridge, map = r.bridge.cellIsA ? b.bToA : b.aToB;
    p = acrossBridge(map, fp, shapesOf(r.recognition.form, sizes));
  }
  return Object.fromEntries([...r.recognition.rename].map(([f, c]) => [c, p[f]!]));
}

function cellToForm(r: Route, cp: Params, sizes: Sizes): Params {
  const p = Object.fromEntries([...r.recognition.rename].map(([f, c]) => [f, cp[c]!]));
  if (!r.bridge) return p;
  const b = r.bridge.bridge, map = r.bridge.cellIsA ? b.aToB : b.bToA;
  return acrossBridge(map, p, shapesOf(r.form, sizes));
}

function bridgeNote(r: Route, reading: boolean): string[] {
  if (!r.bridge) return [];
  const { bridge, cellIsA } = r.bridge;
  // reading goes framework → cell; writing goes cell → framework
  const aToB = reading ? !cellIsA : cellIsA;
  const n = aToB ? bridge.noteAToB : bridge.noteBToA;
  return n ? [n] : [];
}

// ------------------------------------------------------------------ reading framework weights

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The stored tensors by the layout's names, from a PyTorch state_dict or Keras weights JSON. */
function collect(form: Form, json: unknown): Record<string, unknown> {
  const names = Object.keys(form.layout);
  if (form.framework === "keras") {
    if (Array.isArray(json)) {
      if (json.length !== names.length) throw new InteropError(`Keras weights as a list hold ${names.join(", ")} in that order (get_weights()), ${names.length} arrays; got ${json.length}${json.length === 2 ? " (no bias: use_bias=False is not supported; add a zero bias)" : ""}`);
      return Object.fromEntries(names.map((n, i) => [n, json[i]]));
    }
    if (!isRecord(json)) throw new InteropError(`Keras weights are an object { ${names.join(", ")} } or the list get_weights() returns, not ${json === null ? "null" : typeof json}`);
    for (const k of Object.keys(json))
      if (!names.includes(k) && k !== "config") throw new InteropError(`Keras weights: unknown entry "${k}" (expected ${names.join(", ")} and optionally config)`);
    for (const n of names) if (!(n in json)) throw new InteropError(`Keras weights: "${n}" is missing${n === "bias" ? " (use_bias=False is not supported; add a zero bias)" : ""} (expected ${names.join(", ")})`);
    if (json.config !== undefined) checkKerasConfig(form, json.config);
    return json;
  }
  if (!isRecord(json)) throw new InteropError(`a PyTorch state_dict is an object { ${names.map((n) => `${n}_l0`).join(", ")} }, not ${Array.isArray(json) ? "a list" : json === null ? "null" : typeof json}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    const base = k.replace(/_l0$/, "");
    if (names.includes(base)) {
      if (base in out) throw new InteropError(`PyTorch state_dict: both ${base} and ${base}_l0 are given`);
      out[base] = v;
      continue;
    }
    if (/_reverse$/.test(k)) throw new InteropError(`PyTorch state_dict: ${k} belongs to the reverse direction of a bidirectional module; convert one direction at a time (a cell is one direction)`);
    if (/_l[1-9]\d*$/.test(k)) throw new InteropError(`PyTorch state_dict: ${k} belongs to layer ${/_l(\d+)$/.exec(k)![1]}; a cell is one layer: convert each layer's ${names.map((n) => `${n}_lK`).join(", ")} on its own (renamed to _l0)`);
    if (/^weight_hr/.test(k)) throw new InteropError(`PyTorch state_dict: ${k} is an LSTM projection (proj_size > 0), which the built-in cells do not have`);
    throw new InteropError(`PyTorch state_dict: unknown entry "${k}" for ${form.title} (expected ${names.map((n) => `${n}_l0`).join(", ")})`);
  }
  for (const n of names) if (!(n in out)) throw new InteropError(`PyTorch state_dict: ${n}_l0 is missing${n.startsWith("bias") ? " (bias=False is not supported; add zero biases)" : ""} (expected ${names.map((m) => `${m}_l0`).join(", ")})`);
  return out;
}

function checkKerasConfig(form: Form, config: unknown): void {
  if (!isRecord(config)) throw new InteropError(`Keras weights: config must be an object like { "units": 4, "reset_after": true, "recurrent_activation": "sigmoid" }`);
  const want = form.config ?? {};
  if (config.reset_after !== undefined && "reset_after" in want && config.reset_after !== want.reset_after)
    throw new InteropError(`Keras config: reset_after is ${JSON.stringify(config.reset_after)}, but the cell is ${form.title}: the reset gate applies ${want.reset_after ? "after" : "before"} the recurrent product`);
  if ("reset_after" in config && !("reset_after" in want)) throw new InteropError(`Keras config: reset_after is a GRU setting, but the cell is ${form.title}`);
  if (config.use_bias === false) throw new InteropError("Keras config: use_bias=false is not supported (the forms have biases); set zero biases");
  if (config.activation !== undefined && config.activation !== "tanh") throw new InteropError(`Keras config: activation ${JSON.stringify(config.activation)}; the forms use tanh`);
  const ra = config.recurrent_activation;
  if (ra === undefined) return;
  if (ra === "hard_sigmoid")
    throw new InteropError(`Keras config: recurrent_activation "hard_sigmoid" means clip(0.2x + 0.5, 0, 1) in Keras <= 2.15 and clip(x/6 + 0.5, 0, 1) in Keras 3: write "hardSigmoid" for the first (also tfjs's default) or "hardSigmoidKeras" for the second`);
  if (typeof ra !== "string" || !RECURRENT_ACTIVATIONS.includes(ra as RecurrentActivation))
    throw new InteropError(`Keras config: recurrent_activation ${JSON.stringify(ra)} is not one of ${RECURRENT_ACTIVATIONS.join(", ")}`);
  if (ra !== want.recurrent_activation)
    throw new InteropError(`Keras config: recurrent_activation is ${ra}, but the cell's gates use ${want.recurrent_activation} (${form.title}); weights of one do not compute the other`);
}

/** Sizes from the axes named in `form.sizeFrom`, then every tensor's shape checked against them. */
function readTensors(form: Form, raw: Record<string, unknown>, name: (t: string) => string): { sizes: Sizes; parts: Params } {
  const read = Object.fromEntries(Object.keys(form.layout).map((t) => [t, readTensor(raw[t], name(t))]));
  const gates = (t: string) => { const l = form.layout[t]!; return l.kind === "grid" ? l.rows[0]!.length : l.parts.length; };
  const matrix = (s: "D" | "H") => {
    const [t, axis] = form.sizeFrom[s];
    const shape = read[t]!.shape;
    if (shape.length !== 2) throw new InteropError(`${name(t)}: ${form.title} stores it as a matrix, but its shape is ${shapeText(shape)}`);
    return { at: shape[axis]!, across: shape[1 - axis]!, k: gates(t) };
  };
  // H from the recurrent matrix [k·H, H] (Keras: [H, k·H]); a transposed one is read as what it is, and refused below with a hint
  const rh = matrix("H");
  const H = rh.across !== rh.k * rh.at && rh.at === rh.k * rh.across ? rh.across : rh.at;
  // D from the input matrix [k·H, D] (Keras: [D, k·H]), likewise
  const ri = matrix("D");
  const D = ri.across !== ri.k * H && ri.at === ri.k * H ? ri.across : ri.at;
  const sizes = { D, H };
  const shapes = shapesOf(form, sizes);
  const parts: Params = {};
  for (const [t, layout] of Object.entries(form.layout)) {
    const first = layout.kind === "grid" ? layout.rows[0]![0]! : layout.parts[0]!;
    const want = layoutShape(layout, shapes[first]!);
    const got = read[t]!.shape;
    if (shapeText(got) !== shapeText(want)) throw new InteropError(shapeMismatch(form, t, name, layout, formCell(form).params.find((p) => p.name === first)!.node.type.shape.map((d) => d.key), want, got, sizes));
    Object.assign(parts, unpack(layout, read[t]!.data, shapes[first]!));
  }
  return { sizes, parts };
}

function shapeMismatch(form: Form, t: string, name: (t: string) => string, layout: Form["layout"][string], part: readonly string[], want: number[], got: number[], sizes: Sizes): string {
  const k = layout.kind === "grid" ? layout.rows[0]!.length : layout.parts.length;
  const kH = `${k === 1 ? "" : k}H`;
  const sym = layout.kind === "grid" ? `[${layout.rows.length}, ${kH}]` : layout.kind === "rows" ? (part.length === 1 ? `[${kH}]` : `[${kH}, ${part[1]}]`) : `[${part[1]}, ${kH}]`;
  const [dT, dA] = form.sizeFrom.D, [hT, hA] = form.sizeFrom.H;
  const axis = (a: number) => (a === 0 ? "rows" : "columns");
  const msg = `${name(t)}: ${form.title} stores it as ${sym} = ${shapeText(want)} (H = ${sizes.H} from the ${axis(hA)} of ${name(hT)}, D = ${sizes.D} from the ${axis(dA)} of ${name(dT)}), but it is ${shapeText(got)}`;
  const hints: string[] = [];
  if (got.length === 2 && want.length === 2 && got[0] === want[1] && got[1] === want[0])
    hints.push(form.framework === "pytorch" ? "it is the transpose: PyTorch stores (gates·H, n), Keras (n, gates·H): is it a Keras weight?" : "it is the transpose: Keras stores (n, gates·H), PyTorch (gates·H, n): is it a PyTorch weight?");
  const gateAxis = got.length === 2 ? (layout.kind === "cols" ? 1 : layout.kind === "grid" ? 1 : 0) : 0;
  const g = got[gateAxis];
  if (g !== undefined && g !== want[gateAxis] && sizes.H > 0 && g % sizes.H === 0 && (got.length === want.length)) {
    const n = g / sizes.H;
    if (n !== k) hints.push(`${g} = ${n}H: ${n} gates where ${form.title} has ${k}${n === 4 ? " (an LSTM's weights?)" : n === 3 ? " (a GRU's weights?)" : n === 1 ? " (an RNN's weights?)" : ""}`);
  }
  if (t === "bias" && form.framework === "keras") {
    if (layout.kind === "grid" && got.length === 1) hints.push("a single bias (3H) is Keras's reset_after=False form (and tfjs's); this cell resets after the recurrent product, whose bias is (2, 3H)");
    if (layout.kind === "rows" && got.length === 2 && got[0] === 2) hints.push("a (2, 3H) bias is Keras's reset_after=True form; this cell's form has one bias (3H)");
  }
  return msg + (hints.length ? `\n  hint: ${hints.join("; ")}` : "");
}

export interface Read extends CellParams {
  /** The framework's form the weights were read as. */
  readonly form: Form;
  readonly route: Route;
  readonly notes: readonly string[];
}

/** A framework's weights (parsed JSON) as `cell`'s parameters. */
export function readWeights(cell: Cell, framework: Framework, json: unknown): Read {
  const r = route(cell, framework);
  const raw = collect(r.form, json);
  const suffix = framework === "pytorch" && isRecord(json) && Object.keys(json).some((k) => k.endsWith("_l0")) ? "_l0" : "";
  const { sizes, parts } = readTensors(r.form, raw, (t) => t + suffix);
  const units = framework === "keras" && isRecord(json) && isRecord(json.config) ? json.config.units : undefined;
  if (units !== undefined && units !== sizes.H) throw new InteropError(`Keras config: units is ${JSON.stringify(units)}, but recurrent_kernel has H = ${sizes.H} rows`);
  checkConstraints(cell, sizes, "the weights' tensors");
  return { sizes, params: formToCell(r, parts, sizes), form: r.form, route: r, notes: bridgeNote(r, true) };
}

export interface Written {
  /** The JSON to write: a state_dict, or Keras weights with their config. */
  readonly json: Record<string, Nested | Record<string, unknown>>;
  /** Tensors with their shapes, flat row-major, in the framework's order. */
  readonly tensors: Readonly<Record<string, { readonly shape: readonly number[]; readonly data: Float64Array }>>;
  readonly form: Form;
  readonly route: Route;
  readonly notes: readonly string[];
}

/**
 * `cell`'s parameters (or gradients: they have the same shapes) as a framework's tensors. PyTorch
 * names carry nn.GRU's "_l0" unless `torchSuffix` is "" (nn.GRUCell's names).
 */
export function writeWeights(cell: Cell, framework: Framework, cp: CellParams, opts: { torchSuffix?: "_l0" | "" } = {}): Written {
  const r = route(cell, framework);
  checkParams(cell, cp);
  const fp = cellToForm(r, cp.params, cp.sizes);
  const shapes = shapesOf(r.form, cp.sizes);
  const suffix = framework === "pytorch" ? opts.torchSuffix ?? "_l0" : "";
  const tensors: Record<string, { shape: number[]; data: Float64Array }> = {};
  for (const [t, layout] of Object.entries(r.form.layout)) {
    const first = layout.kind === "grid" ? layout.rows[0]![0]! : layout.parts[0]!;
    const part = shapes[first]!;
    tensors[t + suffix] = { shape: layoutShape(layout, part), data: pack(layout, fp, part) };
  }
  const json: Record<string, Nested | Record<string, unknown>> = Object.fromEntries(Object.entries(tensors).map(([t, v]) => [t, nest(v.data, v.shape)]));
  if (framework === "keras") json.config = { units: cp.sizes.H, activation: "tanh", use_bias: true, ...r.form.config };
  return { json, tensors, form: r.form, route: r, notes: bridgeNote(r, false) };
}

// ------------------------------------------------------------------ cellforge's own JSON

/** Each of the cell's parameters' shapes at these sizes. */
export function paramShapes(cell: Cell, sizes: Sizes): Record<string, number[]> {
  return Object.fromEntries(cell.params.map((p) => [p.name, p.node.type.shape.map((d) => dimValue(d, sizes))]));
}

/** Sizes that break one of the cell's constraints (D = H) are refused, naming it. */
function checkConstraints(cell: Cell, sizes: Sizes, from: string): void {
  resolveSizes(cell, sizes, {
    fail: (problem, hint, c) => { throw new InteropError(`cell "${cell.name}": ${problem} (sizes from ${from}; the constraint is at ${c.where.file ? `${c.where.file}:${c.where.line ?? "?"}` : "the cell's constraints"})${hint ? `; ${hint}` : ""}`); },
  });
}

function checkParams(cell: Cell, cp: CellParams): void {
  checkConstraints(cell, cp.sizes, "the parameters");
  const shapes = paramShapes(cell, cp.sizes);
  for (const p of cell.params) {
    const v = cp.params[p.name];
    const n = shapes[p.name]!.reduce((a, b) => a * b, 1);
    if (!v) throw new InteropError(`cell "${cell.name}": parameter ${p.name} is missing`);
    if (v.length !== n) throw new InteropError(`cell "${cell.name}": parameter ${p.name} has ${v.length} numbers, but its shape is ${shapeText(shapes[p.name]!)} at D = ${cp.sizes.D}, H = ${cp.sizes.H}`);
  }
}

/** `{ cell, sizes, params }` as `cell`'s parameters; shapes as declared (params.Wir is [H][D]). */
export function readCellParams(cell: Cell, json: unknown): CellParams {
  if (!isRecord(json) || !isRecord(json.sizes) || !isRecord(json.params))
    throw new InteropError(`cellforge parameters are { "cell": "${cell.name}", "sizes": { "D": …, "H": … }, "params": { ${cell.params.map((p) => `"${p.name}": …`).join(", ")} } }`);
  const sz = json.sizes;
  const size = (s: "D" | "H") => {
    const v = sz[s];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new InteropError(`sizes.${s}: expected a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  for (const k of Object.keys(sz)) if (k !== "D" && k !== "H") throw new InteropError(`sizes.${k}: cell "${cell.name}" has sizes D and H`);
  const sizes = { D: size("D"), H: size("H") };
  checkConstraints(cell, sizes, "sizes");
  const shapes = paramShapes(cell, sizes);
  const params: Params = {};
  for (const k of Object.keys(json.params)) if (!(k in shapes)) throw new InteropError(`params.${k}: cell "${cell.name}" has no parameter ${k} (it has ${cell.params.map((p) => p.name).join(", ")})`);
  for (const p of cell.params) {
    if (!(p.name in json.params)) throw new InteropError(`params.${p.name}: missing (shape ${shapeText(shapes[p.name]!)})`);
    const t = readTensor(json.params[p.name], `params.${p.name}`);
    const decl = `[${p.node.type.shape.map((d) => d.key.replace(/ /g, "")).join(",")}]`;
    if (shapeText(t.shape) !== shapeText(shapes[p.name]!)) throw new InteropError(`params.${p.name}: expected shape ${decl} = ${shapeText(shapes[p.name]!)}, got ${shapeText(t.shape)}`);
    params[p.name] = t.data;
  }
  return { sizes, params };
}

export function writeCellParams(cell: Cell, cp: CellParams): { cell: string; sizes: Sizes; params: Record<string, Nested> } {
  checkParams(cell, cp);
  const shapes = paramShapes(cell, cp.sizes);
  return { cell: cell.name, sizes: { D: cp.sizes.D, H: cp.sizes.H }, params: Object.fromEntries(cell.params.map((p) => [p.name, nest(cp.params[p.name]!, shapes[p.name]!)])) };
}

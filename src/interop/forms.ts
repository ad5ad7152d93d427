// The library forms the converters know: each one the equations a framework computes (as a cell
// spec, compiled like any cell) and where each parameter sits in that framework's stored tensors.
// A cell converts to or from a framework only when its compiled IR is one of these forms up to
// parameter names (see match.ts), never because of its name.
//
// Gate orders (CELLS.md): PyTorch/cuDNN GRU [r|z|n], LSTM [i|f|g|o]; Keras/tfjs GRU [z|r|h],
// LSTM [i|f|c|o]. PyTorch stores W as (k·H, n) and computes x@Wᵀ; Keras stores kernel (n, k·H).
import type { CellSpec } from "../cell.ts";

export type Framework = "pytorch" | "keras";

/** A gate function as the DSL names it: tfjs's default hardSigmoid is 0.2x + 0.5, Keras 3's hard_sigmoid is x/6 + 0.5. */
export type RecurrentActivation = "sigmoid" | "hardSigmoid" | "hardSigmoidKeras";
export const RECURRENT_ACTIVATIONS: readonly RecurrentActivation[] = ["sigmoid", "hardSigmoid", "hardSigmoidKeras"];
export const ACTIVATION_TEXT: Readonly<Record<RecurrentActivation, string>> = {
  sigmoid: "sigmoid",
  hardSigmoid: "hardSigmoid = clip(0.2x + 0.5, 0, 1) (tfjs 'hardSigmoid', Keras <= 2.15 'hard_sigmoid')",
  hardSigmoidKeras: "hardSigmoidKeras = clip(x/6 + 0.5, 0, 1) (Keras 3 'hard_sigmoid')",
};

/**
 * Where a stored tensor's blocks come from, in the form's parameter names:
 * - `rows`: PyTorch: the parts stacked along the first axis, a matrix [k·H, n] from [H, n] parts, a
 *   vector [k·H] from [H] parts;
 * - `cols`: Keras kernels: the transposes of [H, n] parts side by side, [n, k·H];
 * - `grid`: Keras's reset_after bias (2, 3H): row i is the vectors `rows[i]` end to end.
 */
export type TensorLayout =
  | { readonly kind: "rows"; readonly parts: readonly string[] }
  | { readonly kind: "cols"; readonly parts: readonly string[] }
  | { readonly kind: "grid"; readonly rows: readonly (readonly string[])[] };

export interface Form {
  /** `pytorch-gru`, `keras-gru-reset-after/sigmoid`, … */
  readonly id: string;
  readonly framework: Framework;
  /** What a reader calls it: `PyTorch nn.GRU / nn.GRUCell`. */
  readonly title: string;
  /** The equations, with the parameter names used by `layout` (those of the built-in cell of this form). */
  readonly spec: CellSpec;
  /** The built-in cell in dsl/ that is this form, when there is one. */
  readonly builtin?: string;
  /** Stored tensors in the order the framework lists them, by their names in that framework. */
  readonly layout: Readonly<Record<string, TensorLayout>>;
  /** Which tensor and axis give each size (the axis that is not a stack of gates). */
  readonly sizeFrom: Readonly<Record<"D" | "H", readonly [tensor: string, axis: number]>>;
  /** Keras layer settings that select this form, written next to the weights. */
  readonly config?: Readonly<Record<string, string | boolean>>;
}

const SIZES = { D: "input size", H: "hidden size" } as const;

// ------------------------------------------------------------------ PyTorch (torch/nn/modules/rnn.py)

const pytorchRnn: Form = {
  id: "pytorch-rnn",
  framework: "pytorch",
  title: "PyTorch nn.RNN / nn.RNNCell (nonlinearity='tanh')",
  builtin: "rnn",
  spec: {
    name: "pytorch-rnn", doc: "PyTorch nn.RNN, tanh", sizes: SIZES, inputs: { x: "D" }, state: { h: "H" },
    params: { Wih: ["H", "D"], Whh: ["H", "H"], bih: "H", bhh: "H" },
    equations: "h' = tanh(Wih*x + bih + Whh*h + bhh)",
  },
  layout: { weight_ih: { kind: "rows", parts: ["Wih"] }, weight_hh: { kind: "rows", parts: ["Whh"] }, bias_ih: { kind: "rows", parts: ["bih"] }, bias_hh: { kind: "rows", parts: ["bhh"] } },
  sizeFrom: { D: ["weight_ih", 1], H: ["weight_hh", 1] },
};

const pytorchGru: Form = {
  id: "pytorch-gru",
  framework: "pytorch",
  title: "PyTorch nn.GRU / nn.GRUCell",
  builtin: "gru",
  spec: {
    name: "pytorch-gru", doc: "PyTorch nn.GRU", sizes: SIZES, inputs: { x: "D" }, state: { h: "H" },
    params: {
      Wir: ["H", "D"], Wiz: ["H", "D"], Win: ["H", "D"], Whr: ["H", "H"], Whz: ["H", "H"], Whn: ["H", "H"],
      bir: "H", biz: "H", bin: "H", bhr: "H", bhz: "H", bhn: "H",
    },
    equations: [
      "r  = sigmoid(Wir*x + bir + Whr*h + bhr)",
      "z  = sigmoid(Wiz*x + biz + Whz*h + bhz)",
      "n  = tanh(Win*x + bin + r .* (Whn*h + bhn))",
      "h' = (1 - z) .* n + z .* h",
    ],
  },
  layout: {
    weight_ih: { kind: "rows", parts: ["Wir", "Wiz", "Win"] },
    weight_hh: { kind: "rows", parts: ["Whr", "Whz", "Whn"] },
    bias_ih: { kind: "rows", parts: ["bir", "biz", "bin"] },
    bias_hh: { kind: "rows", parts: ["bhr", "bhz", "bhn"] },
  },
  sizeFrom: { D: ["weight_ih", 1], H: ["weight_hh", 1] },
};

const pytorchLstm: Form = {
  id: "pytorch-lstm",
  framework: "pytorch",
  title: "PyTorch nn.LSTM / nn.LSTMCell",
  builtin: "lstm",
  spec: {
    name: "pytorch-lstm", doc: "PyTorch nn.LSTM", sizes: SIZES, inputs: { x: "D" }, state: { h: "H", c: "H" },
    params: {
      Wii: ["H", "D"], Wif: ["H", "D"], Wig: ["H", "D"], Wio: ["H", "D"], Whi: ["H", "H"], Whf: ["H", "H"], Whg: ["H", "H"], Who: ["H", "H"],
      bii: "H", bif: "H", big: "H", bio: "H", bhi: "H", bhf: "H", bhg: "H", bho: "H",
    },
    equations: [
      "i  = sigmoid(Wii*x + bii + Whi*h + bhi)",
      "f  = sigmoid(Wif*x + bif + Whf*h + bhf)",
      "g  = tanh(Wig*x + big + Whg*h + bhg)",
      "o  = sigmoid(Wio*x + bio + Who*h + bho)",
      "c' = f .* c + i .* g",
      "h' = o .* tanh(c')",
    ],
  },
  layout: {
    weight_ih: { kind: "rows", parts: ["Wii", "Wif", "Wig", "Wio"] },
    weight_hh: { kind: "rows", parts: ["Whi", "Whf", "Whg", "Who"] },
    bias_ih: { kind: "rows", parts: ["bii", "bif", "big", "bio"] },
    bias_hh: { kind: "rows", parts: ["bhi", "bhf", "bhg", "bho"] },
  },
  sizeFrom: { D: ["weight_ih", 1], H: ["weight_hh", 1] },
};

// ------------------------------------------------------------------ Keras 3 / tfjs-layers (keras/src/layers/rnn/{gru,lstm}.py, tfjs-layers/src/layers/recurrent.ts)

const KERAS_GRU_PARAMS = { Kz: ["H", "D"], Kr: ["H", "D"], Kh: ["H", "D"], Rz: ["H", "H"], Rr: ["H", "H"], Rh: ["H", "H"], bz: "H", br: "H", bh: "H" } as const;
const kerasKernels = { kernel: { kind: "cols", parts: ["Kz", "Kr", "Kh"] }, recurrent_kernel: { kind: "cols", parts: ["Rz", "Rr", "Rh"] } } as const;
const BUILTIN_KERAS: Readonly<Record<string, string>> = {
  "keras-gru-reset-after/sigmoid": "gru-keras",
  "keras-gru-reset-before/sigmoid": "gru-keras-reset-before",
  "keras-gru-reset-before/hardSigmoid": "gru-tfjs",
  "keras-lstm/sigmoid": "lstm-keras",
  "keras-lstm/hardSigmoid": "lstm-tfjs",
};

function kerasGru(resetAfter: boolean, act: RecurrentActivation): Form {
  const id = `keras-gru-reset-${resetAfter ? "after" : "before"}/${act}`;
  const builtin = BUILTIN_KERAS[id];
  return {
    id,
    framework: "keras",
    title: `Keras GRU (reset_after=${resetAfter ? "True" : "False"}, recurrent_activation ${act})${!resetAfter && act === "hardSigmoid" ? ", the tfjs default" : ""}`,
    ...(builtin ? { builtin } : {}),
    spec: {
      name: id.replace("/", "-"), doc: `Keras GRU, reset_after=${resetAfter}`, sizes: SIZES, inputs: { x: "D" }, state: { h: "H" },
      params: resetAfter ? { ...KERAS_GRU_PARAMS, rbz: "H", rbr: "H", rbh: "H" } : KERAS_GRU_PARAMS,
      equations: resetAfter
        ? [`z = ${act}(Kz*x + bz + Rz*h + rbz)`, `r = ${act}(Kr*x + br + Rr*h + rbr)`, "hh = tanh(Kh*x + bh + r .* (Rh*h + rbh))", "h' = z .* h + (1 - z) .* hh"]
        : [`z = ${act}(Kz*x + bz + Rz*h)`, `r = ${act}(Kr*x + br + Rr*h)`, "hh = tanh(Kh*x + bh + Rh*(r .* h))", "h' = z .* h + (1 - z) .* hh"],
    },
    layout: {
      ...kerasKernels,
      bias: resetAfter ? { kind: "grid", rows: [["bz", "br", "bh"], ["rbz", "rbr", "rbh"]] } : { kind: "rows", parts: ["bz", "br", "bh"] },
    },
    sizeFrom: { D: ["kernel", 0], H: ["recurrent_kernel", 0] },
    config: { reset_after: resetAfter, recurrent_activation: act },
  };
}

function kerasLstm(act: RecurrentActivation): Form {
  const id = `keras-lstm/${act}`;
  const builtin = BUILTIN_KERAS[id];
  return {
    id,
    framework: "keras",
    title: `Keras LSTM (recurrent_activation ${act})${act === "hardSigmoid" ? ", the tfjs default" : ""}`,
    ...(builtin ? { builtin } : {}),
    spec: {
      name: id.replace("/", "-"), doc: "Keras LSTM", sizes: SIZES, inputs: { x: "D" }, state: { h: "H", c: "H" },
      params: { Ki: ["H", "D"], Kf: ["H", "D"], Kc: ["H", "D"], Ko: ["H", "D"], Ri: ["H", "H"], Rf: ["H", "H"], Rc: ["H", "H"], Ro: ["H", "H"], bi: "H", bf: "H", bc: "H", bo: "H" },
      equations: [
        `i = ${act}(Ki*x + Ri*h + bi)`,
        `f = ${act}(Kf*x + Rf*h + bf)`,
        "g = tanh(Kc*x + Rc*h + bc)",
        `o = ${act}(Ko*x + Ro*h + bo)`,
        "c' = f .* c + i .* g",
        "h' = o .* tanh(c')",
      ],
    },
    layout: {
      kernel: { kind: "cols", parts: ["Ki", "Kf", "Kc", "Ko"] },
      recurrent_kernel: { kind: "cols", parts: ["Ri", "Rf", "Rc", "Ro"] },
      bias: { kind: "rows", parts: ["bi", "bf", "bc", "bo"] },
    },
    sizeFrom: { D: ["kernel", 0], H: ["recurrent_kernel", 0] },
    config: { recurrent_activation: act },
  };
}

export const FORMS: readonly Form[] = [
  pytorchRnn, pytorchGru, pytorchLstm,
  ...RECURRENT_ACTIVATIONS.flatMap((a) => [kerasGru(true, a), kerasGru(false, a), kerasLstm(a)]),
];

export const formById = (id: string): Form => FORMS.find((f) => f.id === id) ?? (() => { throw new Error(`no form ${id}`); })();

/**
 * Forms that compute the same function with other parameters: PyTorch's LSTM has two biases per gate
 * where Keras has one. `to` gives each parameter of `b` from those of `a`: a name (a copy), a list
 * (the sum) or null (zeros). Sums make a conversion one-way exact: the function is the same, the
 * numbers are not those you started from.
 */
export interface Bridge {
  readonly a: string;
  readonly b: string;
  readonly aToB: Readonly<Record<string, string | readonly string[] | null>>;
  readonly bToA: Readonly<Record<string, string | readonly string[] | null>>;
  /** Printed when a conversion goes through the bridge in that direction. */
  readonly noteAToB?: string;
  readonly noteBToA?: string;
}

export const BRIDGES: readonly Bridge[] = [
  {
    a: "pytorch-lstm",
    b: "keras-lstm/sigmoid",
    aToB: {
      Ki: "Wii", Kf: "Wif", Kc: "Wig", Ko: "Wio", Ri: "Whi", Rf: "Whf", Rc: "Whg", Ro: "Who",
      bi: ["bii", "bhi"], bf: ["bif", "bhf"], bc: ["big", "bhg"], bo: ["bio", "bho"],
    },
    bToA: {
      Wii: "Ki", Wif: "Kf", Wig: "Kc", Wio: "Ko", Whi: "Ri", Whf: "Rf", Whg: "Rc", Who: "Ro",
      bii: "bi", bif: "bf", big: "bc", bio: "bo", bhi: null, bhf: null, bhg: null, bho: null,
    },
    noteAToB: "Keras's LSTM has one bias per gate: bias = bias_ih + bias_hh (the same function; converting back gives bias_ih = that sum and bias_hh = 0, not the numbers you started from)",
    noteBToA: "PyTorch's LSTM has two biases per gate: bias_ih = Keras's bias, bias_hh = 0",
  },
];

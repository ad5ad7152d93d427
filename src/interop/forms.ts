// The library forms the converters know: each one the equations a framework computes (as a cell
// spec, compiled like any cell) and where each parameter sits in that framework's stored tensors.
// A cell converts to or from a framework only when its compiled IR is one of these forms up to
// parameter names (see match.ts), never because of its name.
//
// Gate orders (CELLS.md): PyTorch/cuDNN GRU [r|z|n], LSTM [i|f|g|o]; Keras/tfjs GRU [z|r|h],
// LSTM [i|f|c|o]. PyTorch stores W as (k·H, n) and computes x@Wᵀ; Keras stores kernel (n, k·H).
//
// The equations are the built-in cells' (dsl/), never restated here: a form with another gate
// function than its built-in cell is that cell with the gate function replaced (`withGate`).
import type { CellSpec } from "../cell.ts";
import rnn from "../../dsl/rnn.ts";
import gru from "../../dsl/gru.ts";
import lstm from "../../dsl/lstm.ts";
import gruKeras from "../../dsl/gru-keras.ts";
import gruKerasResetBefore from "../../dsl/gru-keras-reset-before.ts";
import gruTfjs from "../../dsl/gru-tfjs.ts";
import lstmKeras from "../../dsl/lstm-keras.ts";
import lstmTfjs from "../../dsl/lstm-tfjs.ts";

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
  /** The equations, with the parameter names used by `layout`: a built-in cell's, or one with its gate function replaced. */
  readonly spec: CellSpec;
  /** The built-in cell in dsl/ that is this form, when there is one (`spec` is then that cell's). */
  readonly builtin?: string;
  /** Stored tensors in the order the framework lists them, by their names in that framework. */
  readonly layout: Readonly<Record<string, TensorLayout>>;
  /** Which tensor and axis give each size (the axis that is not a stack of gates). */
  readonly sizeFrom: Readonly<Record<"D" | "H", readonly [tensor: string, axis: number]>>;
  /** Keras layer settings that select this form, written next to the weights. */
  readonly config?: Readonly<Record<string, string | boolean>>;
}

/**
 * A Keras cell with another recurrent activation: every call of the base cell's `sigmoid` (the only
 * gate function in those cells; a name followed by `(` is always a call) becomes `act`.
 */
function withGate(base: CellSpec, act: RecurrentActivation): CellSpec {
  if (act === "sigmoid") return base;
  const swap = (e: string) => e.replace(/\bsigmoid\(/g, `${act}(`);
  const equations = typeof base.equations === "string" ? swap(base.equations) : base.equations.map(swap);
  return { ...base, name: `${base.name}-${act}`, doc: `${base.doc ?? base.name}, recurrent activation ${act}`, equations };
}

// ------------------------------------------------------------------ PyTorch (torch/nn/modules/rnn.py)

const pytorchRnn = (): Form => ({
  id: "pytorch-rnn",
  framework: "pytorch",
  title: "PyTorch nn.RNN / nn.RNNCell (nonlinearity='tanh')",
  builtin: "rnn",
  spec: rnn,
  layout: { weight_ih: { kind: "rows", parts: ["Wih"] }, weight_hh: { kind: "rows", parts: ["Whh"] }, bias_ih: { kind: "rows", parts: ["bih"] }, bias_hh: { kind: "rows", parts: ["bhh"] } },
  sizeFrom: { D: ["weight_ih", 1], H: ["weight_hh", 1] },
});

const pytorchGru = (): Form => ({
  id: "pytorch-gru",
  framework: "pytorch",
  title: "PyTorch nn.GRU / nn.GRUCell",
  builtin: "gru",
  spec: gru,
  layout: {
    weight_ih: { kind: "rows", parts: ["Wir", "Wiz", "Win"] },
    weight_hh: { kind: "rows", parts: ["Whr", "Whz", "Whn"] },
    bias_ih: { kind: "rows", parts: ["bir", "biz", "bin"] },
    bias_hh: { kind: "rows", parts: ["bhr", "bhz", "bhn"] },
  },
  sizeFrom: { D: ["weight_ih", 1], H: ["weight_hh", 1] },
});

const pytorchLstm = (): Form => ({
  id: "pytorch-lstm",
  framework: "pytorch",
  title: "PyTorch nn.LSTM / nn.LSTMCell",
  builtin: "lstm",
  spec: lstm,
  layout: {
    weight_ih: { kind: "rows", parts: ["Wii", "Wif", "Wig", "Wio"] },
    weight_hh: { kind: "rows", parts: ["Whi", "Whf", "Whg", "Who"] },
    bias_ih: { kind: "rows", parts: ["bii", "bif", "big", "bio"] },
    bias_hh: { kind: "rows", parts: ["bhi", "bhf", "bhg", "bho"] },
  },
  sizeFrom: { D: ["weight_ih", 1], H: ["weight_hh", 1] },
});

// ------------------------------------------------------------------ Keras 3 / tfjs-layers (keras/src/layers/rnn/{gru,lstm}.py, tfjs-layers/src/layers/recurrent.ts)

const kerasKernels = { kernel: { kind: "cols", parts: ["Kz", "Kr", "Kh"] }, recurrent_kernel: { kind: "cols", parts: ["Rz", "Rr", "Rh"] } } as const;
const builtinSpecs = (): Readonly<Record<string, CellSpec>> => ({
  "gru-keras": gruKeras, "gru-keras-reset-before": gruKerasResetBefore, "gru-tfjs": gruTfjs, "lstm-keras": lstmKeras, "lstm-tfjs": lstmTfjs,
});
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
    spec: builtin ? builtinSpecs()[builtin]! : withGate(resetAfter ? gruKeras : gruKerasResetBefore, act),
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
    spec: builtin ? builtinSpecs()[builtin]! : withGate(lstmKeras, act),
    layout: {
      kernel: { kind: "cols", parts: ["Ki", "Kf", "Kc", "Ko"] },
      recurrent_kernel: { kind: "cols", parts: ["Ri", "Rf", "Rc", "Ro"] },
      bias: { kind: "rows", parts: ["bi", "bf", "bc", "bo"] },
    },
    sizeFrom: { D: ["kernel", 0], H: ["recurrent_kernel", 0] },
    config: { recurrent_activation: act },
  };
}

let made: readonly Form[] | undefined;
/**
 * Every form, made on first use rather than when this module loads: the built-in cells' modules
 * import "cellforge", whose entry exports the converters, so a program that loads a built-in cell
 * first reaches this module before that cell's spec exists.
 */
export function forms(): readonly Form[] {
  return (made ??= [
    pytorchRnn(), pytorchGru(), pytorchLstm(),
    ...RECURRENT_ACTIVATIONS.flatMap((a) => [kerasGru(true, a), kerasGru(false, a), kerasLstm(a)]),
  ]);
}

export const formById = (id: string): Form => forms().find((f) => f.id === id) ?? (() => { throw new Error(`no form ${id}`); })();

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

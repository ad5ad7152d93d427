// A sequence model: a Recurrent layer (nn/recurrent.ts) and a linear readout y = W·h + b, with every
// parameter in ONE flat buffer (the layer gets views of its slice), so an optimizer is one loop.
//
//   at "last":  h is the top layer's value at each example's own last step; bidirectional, it is
//               [forward at step length-1, reverse at step 0]: both directions' final values (h_n's)
//   at "every": h is the top layer's value at every step, pred has the output's layout (T×B×O, or
//               B×T×O when batchFirst); steps past an example's length read zeros (pad_packed_sequence)
//
// The readout starts U(±1/sqrt(fan-in)), as nn.Linear (torch/nn/modules/linear.py reset_parameters).
import type { FloatArray, KernelModule } from "../runtime/kernel.ts";
import { Rng } from "../runtime/rng.ts";
import { type Parameter, Recurrent, type RecurrentOptions, dense, denseBack } from "./recurrent.ts";

export interface ModelOptions extends Omit<RecurrentOptions, "params" | "grads"> {
  /** Readout size: classes, or regression targets. */
  readonly outputs: number;
  /** Readout at each example's last step, or at every step; default "last". */
  readonly at?: "last" | "every";
}

/** A model configured or called wrongly (a user's mistake). */
export class ModelError extends Error {}

export class Model {
  readonly cell: string;
  readonly recurrent: Recurrent;
  readonly params: FloatArray;
  readonly grads: FloatArray;
  /** The recurrent layer's parameters, then "readout.W" (outputs×width) and "readout.b". */
  readonly parameters: readonly Parameter[];
  /** Values the readout reads per row: hidden, or 2·hidden when bidirectional. */
  readonly width: number;
  private readonly W: Parameter;
  private readonly b: Parameter;
  private readonly alloc: (n: number) => FloatArray;
  private last: { h: FloatArray; B: number; T: number; lengths: ArrayLike<number> | undefined } | null = null;

  constructor(mod: KernelModule, readonly options: ModelOptions) {
    const { outputs: O, at = "last", ...layer } = options;
    if (!Number.isInteger(O) || O < 1) throw new ModelError(`outputs must be a positive integer, got ${String(O)}`);
    if (at !== "last" && at !== "every") throw new ModelError(`at must be "last" or "every", got ${JSON.stringify(at)}`);
    const n = Recurrent.size(mod, layer), width = (this.width = (layer.bidirectional ? 2 : 1) * layer.hidden);
    const F = (layer.precision ?? 32) === 64 ? Float64Array : Float32Array;
    this.alloc = (k) => new F(k);
    this.params = new F(n + O * width + O);
    this.grads = new F(this.params.length);
    this.recurrent = new Recurrent(mod, { ...layer, params: this.params.subarray(0, n), grads: this.grads.subarray(0, n) });
    this.cell = this.recurrent.cell;
    this.W = { name: "readout.W", offset: n, length: O * width, shape: [O, width] };
    this.b = { name: "readout.b", offset: n + O * width, length: O, shape: [O] };
    this.parameters = [...this.recurrent.parameters, this.W, this.b];
    // a stream of its own: the layer's streams are derived from the same seed by other constants
    const rng = new Rng(Math.imul((layer.seed ?? 0) ^ 0x72656164, 0x9e3779b1) >>> 0), k = 1 / Math.sqrt(width);
    for (let i = n; i < this.params.length; i++) this.params[i] = rng.uniform(-k, k);
  }

  get at(): "last" | "every" {
    return this.options.at ?? "last";
  }
  get training(): boolean {
    return this.recurrent.training;
  }
  set training(on: boolean) {
    this.recurrent.training = on;
  }

  /** The output's row of step t of example b (T×B order, or B×T when batchFirst). */
  private row(b: number, t: number, B: number, T: number): number {
    return this.recurrent.options.batchFirst ? b * T + t : t * B + b;
  }

  /** B×outputs at "last"; at "every" T×B×outputs (B×T×outputs when batchFirst). */
  forward(x: FloatArray, opts: { batch: number; steps: number; lengths?: ArrayLike<number> }): FloatArray {
    const { output } = this.recurrent.forward(x, opts), { batch: B, steps: T, lengths } = opts, w = this.width, H = this.recurrent.options.hidden;
    let h = output;
    if (this.at === "last") {
      h = this.alloc(B * w);
      for (let b = 0; b < B; b++) {
        const end = this.row(b, (lengths?.[b] ?? T) - 1, B, T), start = this.row(b, 0, B, T);
        h.set(output.subarray(end * w, end * w + H), b * w);
        if (w > H) h.set(output.subarray(start * w + H, start * w + w), b * w + H);
      }
    }
    this.last = { h, B, T, lengths };
    const O = this.b.length, rows = h.length / w;
    return dense(h, this.params, this.W, this.b, rows, w, O, this.alloc(rows * O));
  }

  /** Backpropagate dPred (pred's layout) through the last forward; ADDS into grads. */
  backward(dPred: FloatArray): void {
    if (!this.last) throw new ModelError("backward needs a forward first: it backpropagates through the last forward");
    const { h, B, T, lengths } = this.last, w = this.width, H = this.recurrent.options.hidden, O = this.b.length, rows = h.length / w;
    if (dPred.length !== rows * O) throw new ModelError(`backward: dPred has ${dPred.length} numbers; the last forward's output has ${rows * O}`);
    const dh = denseBack(h, dPred, this.params, this.grads, this.W, this.b, rows, w, O, this.alloc(h.length));
    let dOutput = dh;
    if (this.at === "last") {
      dOutput = this.alloc(T * B * w);
      for (let b = 0; b < B; b++) {
        const end = this.row(b, (lengths?.[b] ?? T) - 1, B, T), start = this.row(b, 0, B, T);
        dOutput.set(dh.subarray(b * w, b * w + H), end * w);
        if (w > H) dOutput.set(dh.subarray(b * w + H, b * w + w), start * w + H);
      }
    }
    this.recurrent.backward(dOutput);
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }
  dispose(): void {
    this.recurrent.dispose();
  }
}

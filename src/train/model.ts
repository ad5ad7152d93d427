// The model a task run trains is the library's Model (nn/model.ts): a Recurrent layer (nn/recurrent.ts)
// and a linear readout in one flat buffer, the same model fit() and `cellforge train --data` train.
// This module builds it from a run's configuration and turns the layer's refusals into ModelErrors.
import type { FloatArray, KernelModule, Precision } from "../../runtime/kernel.ts";
import { Model, ModelError } from "../../nn/model.ts";
import { LayerError, type Parameter } from "../../nn/recurrent.ts";

export type { FloatArray, Parameter, Precision };
export { Model, ModelError };

/** What the training runtime needs of a generated kernel module (generated/<cell>.ts, or check/kernelcheck.ts loadKernels). */
export type CellKernels = KernelModule;

export interface ModelConfig {
  readonly layers: number;
  readonly hidden: number;
  readonly inputSize: number;
  readonly outputSize: number;
  /** The readout runs at the last step only, or at every step. */
  readonly at: "last" | "every";
  /** Sizes of the cell besides its input and hidden sizes. */
  readonly sizes?: Readonly<Record<string, number>>;
  readonly precision: Precision;
  /** Seeds the initialisation (each layer by its cell's rules, the readout as nn.Linear) and dropout. */
  readonly seed: number;
  readonly bidirectional?: boolean;
  /** Between layers, in training only (as nn.GRU's dropout). */
  readonly dropout?: number;
}

/** The model, time-major (the tasks' batches are T×B×features); a configuration it cannot have is a ModelError naming why. */
export function buildModel(mod: CellKernels, c: ModelConfig): Model {
  try {
    return new Model(mod, { inputSize: c.inputSize, hidden: c.hidden, layers: c.layers, outputs: c.outputSize, at: c.at, sizes: c.sizes, precision: c.precision, seed: c.seed, bidirectional: c.bidirectional ?? false, dropout: c.dropout ?? 0 });
  } catch (e) {
    // the command line gives a cell's other sizes with --sizes M=4, where the library takes { M: 4 }
    if (e instanceof LayerError) throw new ModelError(e.message.replace(/give them in sizes, e\.g\. \{ (.*) \}$/, (_, s: string) => `give them with --sizes ${s.replace(/: /g, "=").replace(/, /g, ",")}`));
    throw e;
  }
}

/** The sizes of the cell in the model's first layer: its input size is the data's (or H after an input projection), its exposed value's H. */
export function firstLayerSizes(mod: CellKernels, c: Pick<ModelConfig, "hidden" | "inputSize" | "sizes">): { sizes: Record<string, number>; hiddenSize: string; projected: boolean } {
  const spec = mod.spec, exposed = spec.outputs[0] ?? spec.states.find((s) => s.name === "h") ?? spec.states[0]!, input = spec.inputs[0]!;
  const projected = input.size === exposed.size && c.inputSize !== c.hidden;
  return { sizes: { ...c.sizes, [exposed.size]: c.hidden, ...(input.size !== exposed.size ? { [input.size]: c.inputSize } : {}) }, hiddenSize: exposed.size, projected };
}

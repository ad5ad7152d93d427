// TensorFlow.js peers: tf.layers.gru / tf.layers.lstm (returnSequences) on the
// plain-JS "cpu" backend and on the "wasm" backend (XNNPACK, SIMD, one thread:
// the wasm backend never starts threads under Node). Gradients come from
// tf.variableGrads of loss = Σ output·dy, over x and the three weights.

import path from "node:path";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { gates, type Cell, type Contender, type Inputs, type Kernels, type Workload } from "../workloads.ts";

// The .wasm binaries ship in the package's dist/ folder; a plain file path
// prefix (ending in a separator) is what the Node build reads them from.
const require = createRequire(import.meta.url);
setWasmPaths(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")) + path.sep);

// Production mode: no debug checks, and no console banner recommending
// tfjs-node on the first tensor the cpu backend writes.
tf.enableProdMode();

export function tfjs(backend: "cpu" | "wasm"): Contender {
  return {
    name: `tfjs-${backend}`,
    describe:
      backend === "cpu"
        ? `@tensorflow/tfjs-layers ${tf.version_core} on tfjs-backend-cpu (plain JS)`
        : `@tensorflow/tfjs-layers ${tf.version_core} on tfjs-backend-wasm (XNNPACK, SIMD, 1 thread)`,
    async setup(w: Workload, cell: Cell, inputs: Inputs): Promise<Kernels> {
      if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} failed to start`);
      await tf.ready();
      return build(w, cell, inputs);
    },
  };
}

function build(w: Workload, cell: Cell, inputs: Inputs): Kernels {
  const { B, D, H, T } = w;
  const GH = gates(cell) * H;
  const options = {
    units: H,
    returnSequences: true,
    recurrentActivation: "sigmoid" as const,
    // The default orthogonal initializer calls chained ops (t.flatten()) that
    // only the tfjs union package registers; the weights are set below anyway.
    recurrentInitializer: "glorotUniform" as const,
  };
  const layer = cell === "gru" ? tfl.layers.gru(options) : tfl.layers.lstm(options);

  // tfjs wants batch-major [B, T, ·]; ours are time-major [T, B, ·].
  // (Tensor methods such as t.transpose() are not registered without the union package.)
  const x = tf.variable(tf.tidy(() => tf.transpose(tf.tensor3d(inputs.x, [T, B, D]), [1, 0, 2])), true);
  const dy = tf.tidy(() => tf.transpose(tf.tensor3d(inputs.dy, [T, B, H]), [1, 0, 2]));
  tf.dispose(layer.apply(x) as tf.Tensor); // builds the weights
  // Keras layouts match ours ([D, G·H], [H, G·H]); one bias. The LSTM's gate
  // order i|f|c|o is PyTorch's, so with bias = bx + bh it is the same function.
  const bias = new Float32Array(GH);
  for (let i = 0; i < GH; i++) bias[i] = inputs.bx[i]! + (cell === "lstm" ? inputs.bh[i]! : 0);
  const weights = [tf.tensor2d(inputs.Wx, [D, GH]), tf.tensor2d(inputs.Wh, [H, GH]), tf.tensor1d(bias)];
  layer.setWeights(weights);
  tf.dispose(weights);

  const varList = [x, ...layer.trainableWeights.map((v) => v.read() as tf.Variable)];
  const loss = () => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar;

  return {
    // tfjs GRU is Keras's reset-before form, tanh(Wx + U(r⊙h)), with one bias.
    variant: cell === "gru" ? "keras (reset before U)" : "torch",
    forward() {
      tf.tidy(() => loss().dataSync());
    },
    forwardBackward() {
      const { value, grads } = tf.variableGrads(loss, varList);
      value.dataSync();
      value.dispose();
      tf.dispose(grads);
    },
    loss: () => tf.tidy(() => loss().dataSync()[0]!),
    dispose() {
      layer.dispose();
      x.dispose();
      dy.dispose();
    },
  };
}

// What is measured: the workloads, their FLOP counts, the shared inputs, and
// the interface every contender (cellforge, each peer) implements.

export type Cell = "gru" | "lstm";
export const CELLS: readonly Cell[] = ["gru", "lstm"];

export interface Workload {
  name: string;
  /** batch */
  B: number;
  /** input size */
  D: number;
  /** hidden size */
  H: number;
  /** sequence length */
  T: number;
}

export const WORKLOADS: readonly Workload[] = [
  { name: "W1", B: 32, D: 128, H: 128, T: 50 },
  { name: "W2", B: 1, D: 32, H: 32, T: 100 },
  { name: "W3", B: 64, D: 512, H: 512, T: 20 },
];

/** Gates per cell: the width of the fused gate product is G·H. */
export function gates(cell: Cell): 3 | 4 {
  return cell === "gru" ? 3 : 4;
}

/**
 * FLOPs counted from the matrix products alone (elementwise work is left out):
 * forward = 2·T·B·(D+H)·G·H, one multiply-add per weight per example per step;
 * backward ≈ 2 × forward (dX/dH through both weights, and dW for both).
 */
export function flops(w: Workload, cell: Cell): { forward: number; forwardBackward: number } {
  const forward = 2 * w.T * w.B * (w.D + w.H) * gates(cell) * w.H;
  return { forward, forwardBackward: 3 * forward };
}

/**
 * The same numbers for every contender, so losses can be compared.
 * Layout: time-major, row-major, "x times W" weights, gates side by side in
 * PyTorch order (GRU r|z|n, LSTM i|f|g|o).
 */
export interface Inputs {
  /** [T, B, D] */
  x: Float32Array;
  /** upstream gradient of the output sequence, [T, B, H]; loss = Σ h·dy */
  dy: Float32Array;
  /** [D, G·H] */
  Wx: Float32Array;
  /** [H, G·H] */
  Wh: Float32Array;
  /** [G·H], added to the input product */
  bx: Float32Array;
  /** [G·H], added to the recurrent product (inside r⊙(…) for the GRU's n) */
  bh: Float32Array;
}

export function makeInputs(w: Workload, cell: Cell): Inputs {
  const GH = gates(cell) * w.H;
  const rand = mulberry32(0x5eed ^ (w.B * 131 + w.D * 31 + w.H * 7 + w.T) ^ GH);
  const fill = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (2 * rand() - 1) * scale;
    return a;
  };
  const k = 1 / Math.sqrt(w.H); // PyTorch's default init range for RNN weights
  return {
    x: fill(w.T * w.B * w.D, 1),
    dy: fill(w.T * w.B * w.H, 1),
    Wx: fill(w.D * GH, k),
    Wh: fill(w.H * GH, k),
    bx: fill(GH, k),
    bh: fill(GH, k),
  };
}

/**
 * One gate's block of a shared weight, in PyTorch's W·x layout: from
 * `m` = Wx [D, G·H] (rows = D) or Wh [H, G·H] (rows = H), the [H, rows]
 * matrix of gate `g` (0-based, in the cell's gate order), e.g. GRU Wir, Whz.
 * A gate's bias is `bx.subarray(g·H, (g+1)·H)`.
 */
export function gateMatrix(m: Float32Array, rows: number, H: number, g: number): Float32Array {
  const GH = m.length / rows;
  const out = new Float32Array(H * rows);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) out[h * rows + r] = m[r * GH + g * H + h]!;
  }
  return out;
}

/** A small seeded generator, so every run measures the same numbers. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What a contender hands back for one workload and cell. Each closure runs the
 * whole sequence and returns when the results are computed (it may be async,
 * e.g. to wait for a device).
 *
 * - `forwardBackward`: the loss Σ_t Σ h_t·dy_t and its gradient with respect
 *   to the input sequence x and every parameter (state starts at zero).
 * - `forward`: the loss alone, if the contender can run it without the tape.
 * - `loss`: the loss value for the shared inputs, to check that contenders
 *   which claim the same `variant` compute the same thing.
 */
export interface Kernels {
  forward?: () => void | Promise<void>;
  forwardBackward: () => void | Promise<void>;
  loss?: () => number | Promise<number>;
  /** the cell's math: "torch" (PyTorch GRU/LSTM) or a name for a different variant */
  variant?: string;
  dispose?: () => void;
}

/** Returned by `setup` instead of kernels when the contender cannot run here. */
export interface Skip {
  skip: string;
}

export interface Contender {
  name: string;
  /** one line: library, version, backend */
  describe?: string;
  setup(w: Workload, cell: Cell, inputs: Inputs): Promise<Kernels | Skip>;
}

export function isSkip(k: Kernels | Skip): k is Skip {
  return "skip" in k;
}

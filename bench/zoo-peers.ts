// The zoo's peers (npm run bench -- --zoo): the custom cells written as their users write them, in
// PyTorch (scripts/bench-torch.py, eager and torch.jit.script) and, for lstm-layernorm, in jax-js;
// and the conversion of cellforge's flat parameter buffer into each peer's own layout, which is
// where a peer and a kernel can silently disagree, so it is one table here, tested by
// test/bench-zoo.test.ts.
//
// Every peer returns, besides its times, the check: on cellforge's parameters, inputs and initial
// states, the loss Σ_t Σ_k out_k[t]·up_k[t] over every state and output, and the norms of its
// gradient with respect to the parameters, x and the initial states.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ParamLayout } from "../runtime/kernel.ts";
import type { Budget, Timing } from "./timing.ts";
import { callPython, NotInstalled } from "./peers/torch.ts";

export type Sizes = Readonly<Record<string, number>>;

/** A tensor in a peer's layout: row-major, in the peer's own shape. */
export interface PeerTensor {
  shape: number[];
  data: Float64Array;
}

/** One cellforge parameter by name, row-major in its own shape (a copy). */
export type GetParam = (name: string) => Float64Array;

export function paramGetter(flat: ArrayLike<number>, layout: ParamLayout): GetParam {
  return (name) => {
    const q = layout.params.find((x) => x.name === name);
    if (!q) throw new Error(`no parameter ${name} in the kernel's layout (${layout.params.map((x) => x.name).join(", ")})`);
    return Float64Array.from({ length: q.length }, (_, i) => flat[q.offset + i]!);
  };
}

/** [rows, cols] row-major → [cols, rows]: a W·x matrix as the x @ kernel one. */
export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

export function concat(...parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const t = (shape: number[], data: Float64Array): PeerTensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`a peer tensor of shape [${shape.join(", ")}] with ${data.length} numbers`);
  return { shape, data };
};

/**
 * The layouts: from cellforge's parameters (dsl/<cell>.ts's names, W·x matrices [out, in]) to the
 * state_dict of the PyTorch module of the same name in scripts/bench-torch.py (loaded strictly there).
 */
export const PEER_LAYOUTS = {
  // haste LayerNormLSTM: kernel [D,4H] = K', recurrent_kernel [H,4H] = R', gamma [2,4H] = [gx; gr],
  // one bias [4H] in gate order [i|g|f|o]
  "lstm-layernorm": ({ D, H }: Sizes, p: GetParam) => ({
    kernel: t([D!, 4 * H!], transpose(p("K"), 4 * H!, D!)),
    recurrent_kernel: t([H!, 4 * H!], transpose(p("R"), 4 * H!, H!)),
    bias: t([4 * H!], concat(p("bi"), p("bg"), p("bf"), p("bo"))),
    gamma: t([2, 4 * H!], concat(p("gx"), p("gr"))),
    gamma_h: t([H!], p("gamma_h")),
    beta_h: t([H!], p("beta_h")),
  }),
  // haste LayerNormGRU: kernel [D,3H] = K', recurrent_kernel [H,3H] = R', bias = b,
  // recurrent_bias = rb, gamma [2,3H] = [gx; gr]
  "gru-layernorm": ({ D, H }: Sizes, p: GetParam) => ({
    kernel: t([D!, 3 * H!], transpose(p("K"), 3 * H!, D!)),
    recurrent_kernel: t([H!, 3 * H!], transpose(p("R"), 3 * H!, H!)),
    bias: t([3 * H!], p("b")),
    recurrent_bias: t([3 * H!], p("rb")),
    gamma: t([2, 3 * H!], concat(p("gx"), p("gr"))),
  }),
  // nn.Linear(D, 2H) for both input products, [Wf; Wh] and [bf; bh]; Uf, Uh as bias-free nn.Linear(H, H)
  mgu: ({ D, H }: Sizes, p: GetParam) => ({
    "x2h.weight": t([2 * H!, D!], concat(p("Wf"), p("Wh"))),
    "x2h.bias": t([2 * H!], concat(p("bf"), p("bh"))),
    "Uf.weight": t([H!, H!], p("Uf")),
    "Uh.weight": t([H!, H!], p("Uh")),
  }),
  // asappresearch/sru: weight [D, 3H] interleaved per unit, column 3j + m is row j of matrix m
  // (0 W, 1 Wf, 2 Wr); weight_c = [v_f; v_r], bias = [b_f; b_r]. D == H.
  sru: ({ H }: Sizes, p: GetParam) => {
    const n = H!;
    const ms = [p("W"), p("Wf"), p("Wr")];
    const weight = new Float64Array(n * 3 * n);
    for (let j = 0; j < n; j++) for (let m = 0; m < 3; m++) for (let k = 0; k < n; k++) weight[k * 3 * n + 3 * j + m] = ms[m]![j * n + k]!;
    return {
      weight: t([n, 3 * n], weight),
      weight_c: t([2 * n], concat(p("v_f"), p("v_r"))),
      bias: t([2 * n], concat(p("b_f"), p("b_r"))),
    };
  },
  // haste IndRNN: kernel [D,H] = W', recurrent_scale = u, bias = b
  "indrnn-relu": ({ D, H }: Sizes, p: GetParam) => ({
    kernel: t([D!, H!], transpose(p("W"), H!, D!)),
    recurrent_scale: t([H!], p("u")),
    bias: t([H!], p("b")),
  }),
  // torch.nn.RNN's own names (inside the wrapper module as .rnn): the same [out, in] matrices
  rnn: ({ D, H }: Sizes, p: GetParam) => ({
    "rnn.weight_ih_l0": t([H!, D!], p("Wih")),
    "rnn.weight_hh_l0": t([H!, H!], p("Whh")),
    "rnn.bias_ih_l0": t([H!], p("bih")),
    "rnn.bias_hh_l0": t([H!], p("bhh")),
  }),
} satisfies Record<string, (sizes: Sizes, p: GetParam) => Record<string, PeerTensor>>;

export type PeerCell = keyof typeof PEER_LAYOUTS;
export const TORCH_CELLS = Object.keys(PEER_LAYOUTS) as PeerCell[];
/** The cells with a jax-js peer (its layout is haste's, as for PyTorch). */
export const JAX_CELLS: readonly string[] = ["lstm-layernorm"];

export function hasTorchPeer(cell: string): cell is PeerCell {
  return cell in PEER_LAYOUTS;
}

/** What every peer computes on the check's inputs. */
export interface CheckNumbers {
  loss: number;
  /** norms of the gradient w.r.t. all parameters, the input sequence x, the initial states */
  gradParams: number;
  gradX: number;
  gradInitial: number;
}

/** The case a peer runs: cellforge's parameters (flat), inputs, initial states and upstream, float64. */
export interface ZooCase {
  cell: string;
  sizes: Sizes;
  B: number;
  T: number;
  layout: ParamLayout;
  params: Float64Array;
  x: Float64Array;
  /** the kernel's order: states, then outputs; each [B, n] / [T, B, n] */
  initial: Record<string, Float64Array>;
  upstream: Record<string, Float64Array>;
}

export interface PeerRun {
  /** float64, on the case */
  check: CheckNumbers;
  /** float32, after the timed runs */
  f32: CheckNumbers;
  forwardBackward: Timing;
  forward?: Timing;
  forwardNote?: string;
}

export type TorchKind = "eager" | "torchscript";

/** The PyTorch peers of one cell, eager and TorchScript, in one Python subprocess; `missing` when torch is not there. */
export async function torchZoo(c: ZooCase, budget: Budget, forwardCutoffMs: number, kinds: TorchKind[] = ["eager", "torchscript"]): Promise<Record<TorchKind, PeerRun> | { missing: string }> {
  if (!hasTorchPeer(c.cell)) throw new Error(`no PyTorch peer for ${c.cell}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellforge-zoo-"));
  try {
    const file = (name: string, a: Float64Array, shape: number[]) => {
      const f = path.join(dir, `${name.replace(/[^\w.-]/g, "_")}.f64`);
      const bytes = Buffer.alloc(a.length * 8);
      for (let i = 0; i < a.length; i++) bytes.writeDoubleLE(a[i]!, 8 * i);
      fs.writeFileSync(f, bytes);
      return { file: f, shape };
    };
    const peerParams = PEER_LAYOUTS[c.cell](c.sizes, paramGetter(c.params, c.layout));
    const width = (a: Float64Array, rows: number) => a.length / rows;
    const request = {
      budget,
      // JSON has no Infinity: without a cutoff the script's default (none) holds
      ...(Number.isFinite(forwardCutoffMs) ? { forwardCutoffMs } : {}),
      zoo: {
        cell: c.cell,
        B: c.B,
        T: c.T,
        sizes: c.sizes,
        peers: kinds,
        names: Object.keys(c.upstream),
        params: Object.fromEntries(Object.entries(peerParams).map(([k, v]) => [k, file(`p.${k}`, v.data, v.shape)])),
        x: file("x", c.x, [c.T, c.B, width(c.x, c.T * c.B)]),
        initial: Object.fromEntries(Object.entries(c.initial).map(([k, v]) => [k, file(`h0.${k}`, v, [c.B, width(v, c.B)])])),
        upstream: Object.fromEntries(Object.entries(c.upstream).map(([k, v]) => [k, file(`up.${k}`, v, [c.T, c.B, width(v, c.T * c.B)])])),
      },
    };
    const reply = await callPython(request);
    return reply.zoo as Record<TorchKind, PeerRun>;
  } catch (err) {
    if (err instanceof NotInstalled) return { missing: err.message };
    throw err;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ── jax-js: lstm-layernorm ──────────────────────────────────────────────────

/**
 * lstm-layernorm in jax-js's numpy API, in haste's layout (the PyTorch peer's), compiled with
 * jit(valueAndGrad(loss)) on its "wasm" device as bench/peers/jaxjs.ts does for the GRU and LSTM;
 * float32 (under Node 20 jax-js cannot make a float64 array: its array() tests `instanceof
 * Float16Array`, which Node 20 lacks), so its check is the float32 one.
 */
export async function jaxZoo(c: ZooCase, budget: Budget, forwardCutoffMs: number): Promise<Omit<PeerRun, "check"> | { missing: string }> {
  if (c.cell !== "lstm-layernorm") throw new Error(`no jax-js peer for ${c.cell}`);
  let jax: typeof import("@jax-js/jax");
  try {
    jax = await import("@jax-js/jax");
  } catch (err) {
    return { missing: `@jax-js/jax cannot be imported: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}` };
  }
  const { measure } = await import("./timing.ts");
  const { init, jit, nn, numpy: np, tree, valueAndGrad, blockUntilReady } = jax;
  const devices = await init("wasm");
  if (!devices.includes("wasm")) return { missing: `jax-js init("wasm") gave ${devices.join(", ")}` };
  type A = ReturnType<typeof np.array>;
  const { B, T } = c;
  const D = c.sizes.D!, H = c.sizes.H!;
  const f32 = (a: Float64Array, shape: number[]) => np.array(Float32Array.from(a)).reshape(shape);
  const peer = PEER_LAYOUTS["lstm-layernorm"](c.sizes, paramGetter(c.params, c.layout));
  const params: Record<string, A> = Object.fromEntries(Object.entries(peer).map(([k, v]) => [k, f32(v.data, v.shape)]));
  const x = f32(c.x, [T, B, D]);
  const initial = { h: f32(c.initial.h!, [B, H]), c: f32(c.initial.c!, [B, H]) };
  const up = { h: f32(c.upstream.h!, [T, B, H]), c: f32(c.upstream.c!, [T, B, H]) };

  // layer norm over the last axis with a gain (haste: F.layer_norm(v, (n,), weight=gain), eps 1e-5)
  const ln = (v: A, gain: A) => nn.standardize(v, -1, { epsilon: 1e-5 }).mul(gain);
  // consumes p, xs and s
  const loss = (p: Record<string, A>, xs: A, s: { h: A; c: A }, u: { h: A; c: A }): A => {
    const gate = (v: A, k: number) => v.slice([], [k * H, (k + 1) * H]);
    const Wx = ln(np.matmul(xs.reshape([T * B, D]), p.kernel!), p.gamma!.ref.slice(0)).reshape([T, B, 4 * H]);
    const g1 = p.gamma!.slice(1);
    let h = s.h, cc = s.c;
    const hs: A[] = [], cs: A[] = [];
    for (let t = 0; t < T; t++) {
      const v = ln(np.matmul(h, p.recurrent_kernel!.ref), g1.ref).add(Wx.ref.slice(t)).add(p.bias!.ref);
      const i = nn.sigmoid(gate(v.ref, 0)), g = np.tanh(gate(v.ref, 1)), f = nn.sigmoid(gate(v.ref, 2)), o = nn.sigmoid(gate(v, 3));
      cc = f.mul(cc).add(i.mul(g));
      h = o.mul(np.tanh(ln(cc.ref, p.gamma_h!.ref).add(p.beta_h!.ref)));
      hs.push(h.ref);
      cs.push(cc.ref);
    }
    for (const a of [Wx, g1, h, cc, p.recurrent_kernel!, p.bias!, p.gamma_h!, p.beta_h!]) a.dispose();
    return np.stack(hs).mul(u.h).sum().add(np.stack(cs).mul(u.c).sum());
  };
  const fwd = jit(loss);
  const fwdBwd = jit(valueAndGrad(loss, { argnums: [0, 1, 2] }));
  try {
    const forwardBackward = await measure(async () => {
      const [v, g] = fwdBwd(tree.ref(params), x.ref, tree.ref(initial), tree.ref(up));
      await blockUntilReady([v, g]);
      v.dispose();
      tree.dispose(g);
    }, budget);
    const fw = await measure(async () => {
      const v = fwd(tree.ref(params), x.ref, tree.ref(initial), tree.ref(up));
      await blockUntilReady(v);
      v.dispose();
    }, budget, forwardCutoffMs);
    // the float32 check numbers: the loss and the norms of its gradient
    const [v, g] = fwdBwd(tree.ref(params), x.ref, tree.ref(initial), tree.ref(up)) as [A, [Record<string, A>, A, { h: A; c: A }]];
    const norm = async (as: A[]) => {
      let s = 0;
      for (const a of as) for (const y of (await a.data()) as Float32Array) s += y * y;
      return Math.sqrt(s);
    };
    const f32Check: CheckNumbers = {
      loss: v.item(),
      gradParams: await norm(Object.values(g[0])),
      gradX: await norm([g[1]]),
      gradInitial: await norm([g[2].h, g[2].c]),
    };
    return {
      f32: f32Check,
      forwardBackward,
      ...("abandonedAfterMs" in fw ? { forwardNote: `not measured: its first call took ${(fw.abandonedAfterMs / 1000).toFixed(1)} s` } : { forward: fw }),
    };
  } finally {
    fwd.dispose();
    fwdBwd.dispose();
    tree.dispose(params);
    tree.dispose(initial);
    tree.dispose(up);
    x.dispose();
  }
}

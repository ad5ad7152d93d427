// jax-js peer: the same cells written with its numpy API, compiled with
// jit(valueAndGrad(loss)) on the "wasm" device. Under Node 20 there is no
// global Worker, so jax-js runs its wasm kernels on the calling thread.
//
// The input projection is hoisted out of the time loop: one product
// (T·B, D) @ (D, G·H) for the whole sequence. The loop over T is unrolled at
// trace time (jax-js has no scan).
//
// jax-js arrays are reference-counted: every function consumes its array
// arguments, so an array used again later is passed as `a.ref`.

import { blockUntilReady, init, jit, nn, numpy as np, tree, valueAndGrad } from "@jax-js/jax";
import { gates, type Cell, type Contender, type Inputs, type Kernels, type Workload } from "../workloads.ts";

type Params = { Wx: np.Array; Wh: np.Array; bx: np.Array; bh: np.Array };

let ready: Promise<unknown> | undefined;

export function jaxjs(version: string): Contender {
  return {
    name: "jax-js",
    describe: `@jax-js/jax ${version}, jit(valueAndGrad) on device "wasm", 1 thread`,
    async setup(w: Workload, cell: Cell, inputs: Inputs): Promise<Kernels> {
      // A bare init() also tries WebGPU/WebGL, which fails under Node 20.
      ready ??= init("wasm").then((devices) => {
        if (!devices.includes("wasm")) throw new Error(`jax-js init("wasm") gave ${devices.join(", ")}`);
      });
      await ready;
      return build(w, cell, inputs);
    },
  };
}

function build(w: Workload, cell: Cell, inputs: Inputs): Kernels {
  const { B, D, H, T } = w;
  const GH = gates(cell) * H;
  const params: Params = {
    Wx: np.array(inputs.Wx).reshape([D, GH]),
    Wh: np.array(inputs.Wh).reshape([H, GH]),
    bx: np.array(inputs.bx),
    bh: np.array(inputs.bh),
  };
  const x = np.array(inputs.x).reshape([T, B, D]);
  const dy = np.array(inputs.dy).reshape([T, B, H]);

  const loss = (p: Params, xs: np.Array, dys: np.Array): np.Array =>
    np.stack(sequence(cell, w, p, xs)).mul(dys).sum();
  const fwd = jit(loss);
  // Gradient with respect to the parameters and the input sequence.
  const fwdBwd = jit(valueAndGrad(loss, { argnums: [0, 1] }));

  return {
    variant: "torch",
    async forward() {
      const value = fwd(tree.ref(params), x.ref, dy.ref);
      await blockUntilReady(value);
      value.dispose();
    },
    async forwardBackward() {
      const [value, grads] = fwdBwd(tree.ref(params), x.ref, dy.ref);
      await blockUntilReady([value, grads]);
      value.dispose();
      tree.dispose(grads);
    },
    loss: () => fwd(tree.ref(params), x.ref, dy.ref).item(),
    dispose() {
      fwd.dispose();
      fwdBwd.dispose();
      tree.dispose(params);
      x.dispose();
      dy.dispose();
    },
  };
}

/** The hidden states h_1 … h_T, each [B, H]; consumes p and xs. */
function sequence(cell: Cell, w: Workload, p: Params, xs: np.Array): np.Array[] {
  const { B, D, H, T } = w;
  const GH = gates(cell) * H;
  const gate = (a: np.Array, k: number) => a.slice([], [k * H, (k + 1) * H]);
  const xp = np.matmul(xs.reshape([T * B, D]), p.Wx).add(p.bx).reshape([T, B, GH]);
  const hs: np.Array[] = [];
  let h = np.zeros([B, H]);
  let c = np.zeros([B, H]);
  for (let t = 0; t < T; t++) {
    const xt = xp.ref.slice(t);
    const hp = np.matmul(h.ref, p.Wh.ref).add(p.bh.ref);
    if (cell === "gru") {
      // r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r⊙h_n), h' = n + z⊙(h − n)
      const r = nn.sigmoid(gate(xt.ref, 0).add(gate(hp.ref, 0)));
      const z = nn.sigmoid(gate(xt.ref, 1).add(gate(hp.ref, 1)));
      const n = np.tanh(gate(xt, 2).add(r.mul(gate(hp, 2))));
      h = n.ref.add(z.mul(h.sub(n)));
    } else {
      // i, f, o = σ(·), g = tanh(·), c' = f⊙c + i⊙g, h' = o⊙tanh(c')
      const a = xt.add(hp);
      const i = nn.sigmoid(gate(a.ref, 0));
      const f = nn.sigmoid(gate(a.ref, 1));
      const g = np.tanh(gate(a.ref, 2));
      const o = nn.sigmoid(gate(a, 3));
      c = f.mul(c).add(i.mul(g));
      h.dispose();
      h = o.mul(np.tanh(c.ref));
    }
    hs.push(h.ref);
  }
  xp.dispose();
  p.Wh.dispose();
  p.bh.dispose();
  h.dispose();
  c.dispose();
  return hs;
}

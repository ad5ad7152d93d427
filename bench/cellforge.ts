// cellforge's own generated kernels (generated/gru.ts, generated/lstm.ts), float32, as contenders:
// one per backend of runtime/memory.ts's BACKENDS on one thread ("cellforge" for the reference
// backend, ts; "cellforge-NAME" for the others), and on two threads for a parallel one ("cellforge-wasm-2t").
// The shared inputs are PyTorch's GRU and LSTM; each gate's block is placed by name into the
// kernel's flat parameter buffer, so the loss can be checked against the other contenders.
import * as gru from "../generated/gru.ts";
import * as lstm from "../generated/lstm.ts";
import { BACKENDS, type KernelBackend, type KernelOptions, REFERENCE_BACKEND } from "../runtime/memory.ts";
import { type Cell, type Contender, type Inputs, type Kernels, type Skip, type Workload, gateMatrix } from "./workloads.ts";

const GATES: Record<Cell, readonly string[]> = { gru: ["r", "z", "n"], lstm: ["i", "f", "g", "o"] };

function contender(name: string, describe: string, backend: KernelBackend, threads: number): Contender {
  return {
    name,
    describe,
    setup: async (w, cell, inp): Promise<Kernels | Skip> => {
      const a = backend.available();
      return a.ok ? setup(w, cell, inp, { backend: backend.name, threads }) : { skip: `this engine has no ${a.missing}` };
    },
  };
}

/** Per backend (the reference one first): one thread, and two on a parallel backend. */
export const contenders: Contender[] = [REFERENCE_BACKEND, ...BACKENDS.filter((b) => b !== REFERENCE_BACKEND)].flatMap((b) => {
  const name = b === REFERENCE_BACKEND ? "cellforge" : `cellforge-${b.name}`;
  const one = contender(name, `generated kernels on the ${b.name} backend: ${b.description} (float32, one thread)`, b, 1);
  return b.parallel ? [one, contender(`${name}-2t`, "the same on two threads (float32)", b, 2)] : [one];
});

export const cellforge = contenders[0]!;

async function setup(w: Workload, cell: Cell, inp: Inputs, options: KernelOptions): Promise<Kernels> {
    const mod = cell === "gru" ? gru : lstm;
    const sizes = { D: w.D, H: w.H };
    const k = mod.createKernel32(sizes, w.B, w.T, options);
    const layout = mod.paramLayout(sizes);
    const p = new Float32Array(layout.total);
    const put = (name: string, a: Float32Array) => {
      const slot = layout.params.find((q) => q.name === name);
      if (!slot || slot.length !== a.length) throw new Error(`cellforge bench: no parameter ${name} of length ${a.length}`);
      p.set(a, slot.offset);
    };
    GATES[cell].forEach((g, i) => {
      put(`Wi${g}`, gateMatrix(inp.Wx, w.D, w.H, i));
      put(`Wh${g}`, gateMatrix(inp.Wh, w.H, w.H, i));
      put(`bi${g}`, inp.bx.subarray(i * w.H, (i + 1) * w.H));
      put(`bh${g}`, inp.bh.subarray(i * w.H, (i + 1) * w.H));
    });
    const zeros = () => new Float32Array(w.B * w.H);
    const seq = () => new Float32Array(w.T * w.B * w.H);
    const initial = cell === "gru" ? { h: zeros() } : { h: zeros(), c: zeros() };
    const out = cell === "gru" ? { h: seq() } : { h: seq(), c: seq() };
    const upstream = cell === "gru" ? { h: inp.dy } : { h: inp.dy, c: seq() };
    const grads = { params: new Float32Array(layout.total), inputs: { x: new Float32Array(inp.x.length) }, initial: cell === "gru" ? { h: zeros() } : { h: zeros(), c: zeros() } };
    const inputs = { x: inp.x };
    // the generated modules' types are per cell; both kernels take the same arguments
    const run = k as unknown as gru.Kernel<Float32Array> & { forward(p: Float32Array, i: object, s: object, o: object): void; backward(p: Float32Array, i: object, s: object, o: object, u: object, g: object): void };
    return {
      variant: "torch",
      forward: () => run.forward(p, inputs, initial, out),
      forwardBackward: () => {
        run.forward(p, inputs, initial, out);
        run.backward(p, inputs, initial, out, upstream, grads);
      },
      loss: () => {
        run.forward(p, inputs, initial, out);
        let l = 0;
        for (let i = 0; i < out.h.length; i++) l += out.h[i]! * inp.dy[i]!;
        return l;
      },
      dispose: () => k.dispose(),
    };
}

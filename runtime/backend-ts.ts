// The ts backend: buffers are ordinary typed arrays, the products the generated TypeScript ones
// (runtime/gemm.ts), and the loops run in TypeScript. It runs everywhere, on one thread, and its
// float64 kernels are the ones the check compares with the reference evaluator.
import { type BackendMemory, type KernelBackend, type MemoryRequest, floatArray } from "./backend.ts";
import type { FloatArray } from "./checks.ts";

export const tsBackend: KernelBackend = {
  name: "ts",
  description: "the plain TypeScript kernels",
  available: () => ({ ok: true }),
  parallel: false,
  memory<A extends FloatArray>(req: MemoryRequest<A>): BackendMemory<A> {
    const Ctor = floatArray<A>(req.bits);
    return {
      mm: req.ts,
      wl: null,
      at: () => { throw new Error("internal: addresses exist on the wasm backend only"); },
      alloc: (n) => {
        try {
          return new Ctor(n);
        } catch (e) {
          throw e instanceof RangeError ? req.outOfMemory(n * (req.bits / 8)) : e;
        }
      },
      region: () => null,
      input: (_r, given) => given,
      output: (_r, given) => given,
      flush: () => {},
      begin: () => {},
      dispose: () => {},
    };
  },
};

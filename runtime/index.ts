// cellforge/runtime: the one module generated kernels import. The argument checks and parameter
// initialisation, the kernel memory and its backends, the worker threads, and the generated
// products (GEMM in TypeScript and in WebAssembly SIMD). Nothing here imports a `node:` module:
// under Node the worker threads come from `process.getBuiltinModule` (runtime/pool.ts), so the same
// code bundles for a browser without any bundler setting.
export * from "./checks.ts";
export * from "./memory.ts";
export type { Arrays, Grads, Kernel, KernelModule, KernelSpec, NamedSize, ParamLayout, Precision } from "./kernel.ts";
export { initAll, layoutOf } from "./kernel.ts";
export * from "./gemm.ts";
export { GEMM_WASM } from "./gemm-wasm.ts";

// Assembles WebAssembly text for codegen/gemm-wasm.ts with binaryen, on a worker thread of its own:
// plain JavaScript started without the TypeScript loader, because binaryen's 15 MB module loads in
// half a second natively and in eight through a transforming loader.
import { parentPort } from "node:worker_threads";
import binaryen from "binaryen";

parentPort.on("message", ({ id, text }) => {
  let m;
  try {
    m = binaryen.parseText(text);
    const F = binaryen.Features;
    m.setFeatures(F.MVP | F.SIMD128 | F.Atomics | F.BulkMemory | F.MutableGlobals | F.SignExt);
    if (!m.validate()) throw new Error("the generated WebAssembly does not validate");
    binaryen.setDebugInfo(true); // keep the function names: a profile then says tile32, not wasm-function[1]
    binaryen.setOptimizeLevel(3);
    binaryen.setShrinkLevel(0);
    m.optimize();
    if (!m.validate()) throw new Error("the optimized WebAssembly does not validate");
    parentPort.postMessage({ id, binary: m.emitBinary() });
  } catch (e) {
    // binaryen's parser throws a plain object { message } (not an Error): its message says where the text is wrong
    const message = e !== null && typeof e === "object" && typeof e.message === "string" ? e.message : String(e);
    parentPort.postMessage({ id, error: message });
  } finally {
    m?.dispose();
  }
});

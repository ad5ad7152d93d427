// An emitted kernel module made a module object in memory: its TypeScript transpiled to JavaScript
// and run with its imports bound to modules this process already holds. Nothing is written to disk
// and nothing is imported from a path, so nobody can put a file where a kernel is read from; and it
// works the same under every module loader (tsx for the CLI, vite for vitest), which a `data:` URL
// import does not (vitest hands it to Node, which cannot load the .ts files it imports).
import { transformSync } from "esbuild";
import { commentText } from "../codegen/escape.ts";
import * as runtime from "../runtime/index.ts";
import { RUNTIME_IMPORT } from "../codegen/emit.ts";

/** A kernel's imports by specifier, as emit.ts writes them, and the modules they stand for. */
export type KernelImports = Readonly<Record<string, object>>;

/** The runtime with the committed products. */
export const KERNEL_IMPORTS: KernelImports = { [RUNTIME_IMPORT]: runtime };

/** The runtime with other products (`generate`, proving kernels against the products it is about to write). */
export function importsWithProducts(gemmText: string, gemmWasmText: string): KernelImports {
  const products = { ...moduleFromText(gemmText, "gemm.ts", { "./memory.ts": runtime }), ...moduleFromText(gemmWasmText, "gemm-wasm.ts", { "./memory.ts": runtime }) };
  return { [RUNTIME_IMPORT]: { ...runtime, ...products } };
}

/** Run a module's text (emitted for generated/) with its imports bound to `imports`; `label` names it in stack traces. */
export function moduleFromText(text: string, label: string, imports: KernelImports = KERNEL_IMPORTS): Record<string, unknown> {
  // esbuild strips the types (a few milliseconds; TypeScript's own transpiler took a quarter second a kernel)
  const js = transformSync(text, { loader: "ts", format: "cjs", target: "es2022" }).code;
  const require = (specifier: string) => {
    const m = imports[specifier];
    if (!m) throw new Error(`internal: the kernel module ${label} imports "${specifier}", which is none of ${Object.keys(imports).join(", ")}`);
    return m;
  };
  const module = { exports: {} as Record<string, unknown> };
  new Function("require", "module", "exports", `${js}\n//# sourceURL=cellforge-kernel:///${commentText(label)}`)(require, module, module.exports);
  return { ...module.exports }; // plain properties (esbuild's CommonJS exports are getters)
}

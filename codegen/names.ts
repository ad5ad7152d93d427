// The one place emitted identifiers come from. Every identifier in a generated kernel module is
// either one of the words the emitter writes itself (KERNEL_WORDS: loop indices, the kernel's own
// variables, its imports and exports, the globals it calls) or handed out by a Namer, which never
// gives out a kernel word or a name it gave before. A user's name (`z`, `h'`, `dWz`) becomes an
// identifier only through the Namer, so no user name — `s0`, `k`, `Math`, `constructor` — can
// collide with the kernel's own.

/** Words JavaScript or TypeScript will not take as a variable name, or that name a global the kernels use. */
const LANGUAGE_WORDS = [
  "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else", "enum", "export",
  "extends", "false", "finally", "for", "function", "if", "import", "in", "instanceof", "new", "null", "return", "super",
  "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while", "with", "yield", "let", "static",
  "implements", "interface", "package", "private", "protected", "public", "await", "arguments", "eval", "async", "of",
  "as", "type", "undefined", "NaN", "Infinity", "globalThis", "Math", "Object", "Array", "Number", "Error", "RangeError",
  "TypeError", "Float32Array", "Float64Array", "Uint8Array", "Buffer",
];

/** What the emitted module writes literally: codegen/emit.ts, the generated module's imports and exports. */
const EMITTER_WORDS = [
  // loop indices and scalars of emitted loops
  "b", "i", "j", "k", "s", "sum", "t",
  // the kernel's parameters, arguments and variables (its precision: bits, F, gemm)
  "bits", "F", "gemm", "sizes", "B", "T", "options", "nParams", "need", "mem", "mm", "wl", "at", "io", "p", "dp", "rng",
  "o", "total", "offset", "length", "rows",
  // checkpointing: steps per segment, step t's slot in the saved values, the first step they hold, the step
  // function, and the input products of the steps s0 … s0 + steps - 1
  "seg", "slot", "onTape", "forwardStep", "segmentSteps", "inputProducts", "s0", "steps",
  "forward", "backward", "params", "inputs", "initial", "out", "upstream", "grads",
  // module scope: imports, exports, types
  "spec", "Sizes", "Inputs", "States", "Outputs", "Grads", "Kernel", "A", "KernelOptions", "LoopsModuleSource",
  "kernelMemory", "GEMM_WASM", "LOOPS_WASM", "Rng", "checkArray", "checkCount", "checkSizes", "initSlice",
  "FloatArray", "Products", "offsets", "paramLayout", "initParams", "createKernel", "createKernel32", "createKernel64", "createStep32", "createStep64",
  "gemmNN32", "gemmNN64", "gemmNT32", "gemmNT64", "gemmTN32", "gemmTN64",
];

/** Every identifier a Namer will never hand out. */
export const KERNEL_WORDS: ReadonlySet<string> = new Set([...LANGUAGE_WORDS, ...EMITTER_WORDS]);

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `h'` -> `h_next`, `dc'_total` -> `dc_next_total`. Throws on anything that is not then an identifier. */
export function jsName(name: string): string {
  const id = name.replace(/'/g, "_next");
  if (!IDENT.test(id)) throw new Error(`internal: "${name}" cannot be an identifier`);
  return id;
}

/**
 * The variable holding a size in the kernels: its own name, or `$name` where the name is a kernel
 * word (a size `o`, `Math` or `class`). A cell's names have no `$`, so this never meets another
 * user name, and it needs no context: every index expression can spell a size the same way.
 */
export function sizeIdent(size: string): string {
  return KERNEL_WORDS.has(size) ? `$${size}` : jsName(size);
}

/** Hands out unique identifiers, never a kernel word, never one already taken. */
export class Namer {
  private readonly taken = new Set<string>(KERNEL_WORDS);
  reserve(...names: string[]): void {
    for (const n of names) this.taken.add(n);
  }
  fresh(want: string): string {
    const base = jsName(want);
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }
}

// The shape of the code: lines per folder against a budget, and which folder imports which.
// `npm run layout` prints both and exits 1 when a folder is over its budget or an import goes
// against the data flow (runtime ← nn ← src ← codegen ← check ← cli ← plugin; generated code imports runtime only).
// CI runs it (.ci/run); test/layout.test.ts checks the import rules on every test run.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Hand-written folders and the lines each may hold; generated/ has a budget of its own (issue #12). */
export const BUDGETS: Readonly<Record<string, number>> = {
  runtime: 1_300, // hand-written runtime; its generated products (gemm*.ts) are counted under "runtime (generated)"; the one Kernel type, layoutOf, initAll, argument regions that check themselves, which every generated file repeated (issue #12)
  src: 4_300, // the DSL grew transposes, matrix expressions, scalar inputs, constraints and heads (issue #18)
  "src/interop": 1_300,
  "src/train": 1_900,
  nn: 2_400, // layers, optimizers, fit, model files: the library API over any kernel module (issue #17)
  codegen: 4_400, // with the PyTorch emitter, codegen/pytorch.ts: its hoisted backward, load_cellforge and save_cellforge (issue #16); the whole-vector ops in WebAssembly, codegen/wasmops.ts, and checkpointing (issue #14); buildPlan, schedule, wasmLoop and the module emitter in named phases, and the typed index expressions of codegen/ix.ts (issue #12), the scratch plan by live stages and wasmOp in phases
  check: 1_100,
  cli: 1_900, // generate for any cells, its config and --watch (issue #13), export (issue #16), eval --backend/--precision (issue #15), train --data (issue #17), convert to and from safetensors with --layer, --direction, --dtype (issue #15); generate never overwriting a file it did not write, and its stray rule by the cell each header names
  plugin: 200, // the bundler plugin (unplugin) and the types of its imports (issue #13)
  dsl: 700,
  generated: 17_359, // the TypeScript kernels (28 cells with sLSTM): 60% of the 28 932 lines issue #12 found, its target. One body for both precisions (37 560 lines with two); each loop and whole-vector op a call to its WebAssembly function besides its TypeScript loop; their WebAssembly text is "generated (wat)"
};

/** Who may import whom: each folder's allowed targets (itself always). */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  runtime: [],
  nn: ["runtime"], // the layers run in a browser: they import the runtime and nothing else
  src: ["runtime", "dsl", "nn"], // the interop forms are the built-in cells
  dsl: ["src"], // through the package name "cellforge"
  codegen: ["src", "runtime"],
  check: ["codegen", "src", "runtime", "dsl"],
  cli: ["check", "codegen", "src", "runtime", "nn"],
  plugin: ["cli", "check", "src", "runtime"], // kernels from cli/generate.ts, its errors, and runtime's types
  generated: ["runtime"],
};

const GENERATED_IN_RUNTIME = new Set(["runtime/gemm.ts", "runtime/gemm-wasm.ts", "runtime/gemm.wat"]);

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = posix.join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...files(rel));
    else if (/\.(ts|js|wat)$/.test(name)) out.push(rel);
  }
  return out;
}

/** The folder a file counts under: its top folder, or src/<sub> for src's subfolders. */
export function folderOf(file: string): string {
  const parts = file.split("/");
  if (parts[0] === "src" && parts.length > 2) return `src/${parts[1]}`;
  if (GENERATED_IN_RUNTIME.has(file)) return "runtime (generated)";
  if (parts[0] === "generated") return file.endsWith(".wat") ? "generated (wat)" : "generated";
  return parts[0]!;
}
/** The layer a file belongs to, for the import rules (src's subfolders are src). */
const layerOf = (file: string) => file.split("/")[0]!;

/** Every relative import of the code folders, as [from file, to file]. */
export function imports(): [string, string][] {
  const out: [string, string][] = [];
  for (const top of Object.keys(ALLOWED))
    for (const f of files(top)) {
      if (f.endsWith(".wat")) continue;
      const text = readFileSync(join(ROOT, f), "utf8");
      for (const m of text.matchAll(/(?:from\s+|import\(\s*|new URL\(\s*)["'](\.{1,2}\/[^"']+)["']/g))
        out.push([f, posix.normalize(posix.join(posix.dirname(f), m[1]!))]);
      if (/from\s+["']cellforge["']/.test(text)) out.push([f, "src/index.ts"]);
      if (/from\s+["']cellforge\/runtime["']/.test(text)) out.push([f, "runtime/index.ts"]);
    }
  return out;
}

/** Imports against the data flow. */
export function violations(): string[] {
  return imports()
    .filter(([a, b]) => layerOf(a) !== layerOf(b) && !(ALLOWED[layerOf(a)] ?? []).includes(layerOf(b)))
    .map(([a, b]) => `${a} imports ${b}`);
}

function main(): number {
  const counts = new Map<string, number>();
  for (const top of ["runtime", "nn", "src", "codegen", "check", "cli", "plugin", "dsl", "generated"])
    for (const f of files(top)) counts.set(folderOf(f), (counts.get(folderOf(f)) ?? 0) + readFileSync(join(ROOT, f), "utf8").split("\n").length - 1);
  let bad = 0;
  console.log("lines by folder (budget):");
  for (const [folder, n] of [...counts].sort()) {
    const budget = BUDGETS[folder];
    const over = budget !== undefined && n > budget;
    if (over) bad++;
    console.log(`  ${folder.padEnd(20)} ${String(n).padStart(7)}${budget ? `  (${budget})` : ""}${over ? "  OVER BUDGET" : ""}`);
  }
  const edges = new Map<string, number>();
  for (const [a, b] of imports()) if (layerOf(a) !== layerOf(b)) edges.set(`${layerOf(a)} -> ${layerOf(b)}`, (edges.get(`${layerOf(a)} -> ${layerOf(b)}`) ?? 0) + 1);
  console.log("imports between folders:");
  for (const [e, n] of [...edges].sort()) console.log(`  ${e.padEnd(22)} ${n}`);
  const v = violations();
  for (const x of v) console.log(`against the data flow: ${x}`);
  return bad || v.length ? 1 : 0;
}

if (process.argv[1] && relative(process.argv[1], fileURLToPath(import.meta.url)).split(sep).join("/") === "") process.exitCode = main();

// `cellforge generate`: regenerate generated/ from every cell in dsl/, and the products the runtime
// runs (runtime/gemm.ts, runtime/gemm-wasm.ts), or check that they are fresh.
// Every kernel is proven against the reference evaluator before anything is written.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, rmSync } from "node:fs";
import { basename, dirname, extname, join, relative } from "node:path";
import { builtinCellFiles, loadCell, ROOT } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { buildPlan, type FullPlan } from "../codegen/plan.ts";
import { cellWasm, emitGemmModule, emitKernelModule, emitWasmModule } from "../codegen/emit.ts";
import { DEFAULT_TILE, type Tile } from "../codegen/gemm.ts";
import { DEFAULT_WASM_TILE, type WasmTile, buildWasm } from "../codegen/gemm-wasm.ts";
import type { Cell } from "../src/cell.ts";
import { proveKernelText } from "../check/kernelcheck.ts";
import { KERNEL_IMPORTS, moduleFromText } from "../check/kernelmodule.ts";

export const GENERATED_DIR = join(ROOT, "generated");
/** The runtime generated kernels import; its products (GEMM) are generated too. */
export const RUNTIME_DIR = join(ROOT, "runtime");

export interface GeneratedFile {
  readonly path: string;
  readonly text: string;
  /** The cell, for a kernel module. */
  readonly cell?: Cell;
}

/** Every generated file, in memory. */
export async function generateAll(tile: Tile = DEFAULT_TILE, wasmTile: WasmTile = DEFAULT_WASM_TILE): Promise<GeneratedFile[]> {
  const wasm = await buildWasm(wasmTile);
  const files: GeneratedFile[] = [
    { path: join(RUNTIME_DIR, "gemm.ts"), text: await emitGemmModule(tile) },
    { path: join(RUNTIME_DIR, "gemm.wat"), text: wasm.text },
    { path: join(RUNTIME_DIR, "gemm-wasm.ts"), text: await emitWasmModule(wasm, wasmTile) },
  ];
  for (const f of builtinCellFiles()) {
    const cell = await loadCell(f);
    const plan = buildPlan(cell, deriveBackward(cell)) as FullPlan;
    const source = relative(ROOT, f);
    const wasm = await cellWasm(plan, source);
    files.push({ path: join(GENERATED_DIR, `${basename(f, extname(f))}.ts`), text: await emitKernelModule(plan, { source, wasm }), cell });
    files.push({ path: join(GENERATED_DIR, `${basename(f, extname(f))}.wat`), text: wasm.text });
  }
  return files;
}

export interface GenerateResult {
  readonly written: string[];
  readonly stale: string[];
  readonly removed: string[];
}

/** Write (or with `check`, only compare) generated/ and the runtime's products. Files in generated/ no cell produces any more are stale too. */
export async function generate(check: boolean, tile: Tile = DEFAULT_TILE, wasmTile: WasmTile = DEFAULT_WASM_TILE): Promise<GenerateResult> {
  const files = await generateAll(tile, wasmTile);
  if (!check) proveAll(files);
  const stale: string[] = [], written: string[] = [], removed: string[] = [];
  const want = new Set(files.map((f) => f.path));
  for (const f of files) {
    const old = existsSync(f.path) ? readFileSync(f.path, "utf8") : undefined;
    if (old === f.text) continue;
    stale.push(relative(ROOT, f.path));
    if (!check) {
      mkdirSync(dirname(f.path), { recursive: true });
      writeFileSync(f.path, f.text);
      written.push(relative(ROOT, f.path));
    }
  }
  if (existsSync(GENERATED_DIR))
    for (const f of readdirSync(GENERATED_DIR))
      if ((f.endsWith(".ts") || f.endsWith(".wat")) && !want.has(join(GENERATED_DIR, f))) {
        stale.push(relative(ROOT, join(GENERATED_DIR, f)));
        if (!check) { rmSync(join(GENERATED_DIR, f)); removed.push(f); }
      }
  return { written, stale, removed };
}

/** Prove every kernel (check/kernelcheck.ts `proveKernel`), run in memory on the products as generated now; throws at the first refused. */
function proveAll(files: readonly GeneratedFile[]): void {
  const text = (name: string) => files.find((f) => f.path === join(RUNTIME_DIR, name))!.text;
  const imports = { ...KERNEL_IMPORTS, "../runtime/gemm.ts": moduleFromText(text("gemm.ts"), "gemm.ts"), "../runtime/gemm-wasm.ts": moduleFromText(text("gemm-wasm.ts"), "gemm-wasm.ts") };
  for (const f of files) if (f.cell) proveKernelText(f.cell, f.text, imports);
}

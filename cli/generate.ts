// `cellforge generate`: kernels for any cells, into any folder, or a check that they are fresh.
//
//   cellforge generate <files|folders|globs>… --out <dir> [--check] [--watch] [--standalone] [--js]
//   cellforge generate                 the same, from the `cellforge` field of package.json
//                                      (or cellforge.config.json): { "cells": [...], "out": "..." }
//
// Every kernel is proven against the reference evaluator (check/kernelcheck.ts) before anything is
// written. A kernel imports only `cellforge/runtime`; with `standalone` the runtime is vendored
// beside the kernels (cellforge-runtime/), so the output depends on nothing. This repository uses
// the same command for dsl/ → generated/; its config also names runtime/, whose products (the GEMM
// modules the runtime runs) are generated too.
import { type FSWatcher, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, watch, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, relative, resolve, sep } from "node:path";
import { glob } from "tinyglobby";
import { format } from "prettier";
import { ts } from "ts-morph";
import { COMPILED, LoadError, PACKAGE_ROOT, ROOT, loadCell } from "../src/load.ts";
import { deriveBackward } from "../src/backward.ts";
import { CellError } from "../src/errors.ts";
import { buildPlan, type FullPlan } from "../codegen/plan.ts";
import { type Regenerate, RUNTIME_IMPORT, cellWasm, emitGemmModule, emitKernelModule, emitWasmModule } from "../codegen/emit.ts";
import { DEFAULT_TILE, type Tile } from "../codegen/gemm.ts";
import { DEFAULT_WASM_TILE, type WasmTile, buildWasm } from "../codegen/gemm-wasm.ts";
import type { Cell } from "../src/cell.ts";
import { proveKernelText } from "../check/kernelcheck.ts";
import { KERNEL_IMPORTS, type KernelImports, importsWithProducts } from "../check/kernelmodule.ts";
import { KernelRefusedError } from "../check/kernelerror.ts";
import { LimitError } from "../runtime/checks.ts";
import { shellWord } from "./sizes.ts";

/** What to generate, from the command line or a config; paths are absolute. */
export interface GenerateConfig {
  /** The folder paths in headers are relative to: the config's, or the working directory. */
  readonly root: string;
  /** Files, folders and globs of cells. */
  readonly cells: readonly string[];
  readonly out: string;
  /** Vendor the runtime beside the kernels (cellforge-runtime/) instead of importing cellforge/runtime. */
  readonly standalone: boolean;
  /** JavaScript and .d.ts files instead of TypeScript. */
  readonly js: boolean;
  /** cellforge's own runtime folder, whose products are generated too (this repository's config only). */
  readonly runtime?: string;
  /** The commands that regenerate and check, for the headers. */
  readonly regenerate: Regenerate;
  /** Where the config came from, for messages. */
  readonly from: string;
}

const CONFIG_FILE = "cellforge.config.json";
const CONFIG_KEYS = ["cells", "out", "standalone", "js", "runtime"] as const;
/** The folder a standalone kernel's runtime is vendored into, beside the kernels. */
export const VENDORED_RUNTIME = "cellforge-runtime";
const CELL_EXTS = [".ts", ".mts", ".json"];
const GLOB = /[*?[\]{}]/;
/** A pattern is a glob when it has a wildcard and nothing exists at its exact path. */
const isGlob = (pattern: string, path: string) => GLOB.test(pattern) && !existsSync(path);


/** The config from the command line: cells and --out given. */
export function configFromArgs(cells: readonly string[], v: Readonly<Record<string, unknown>>, cwd = process.cwd()): GenerateConfig {
  if (typeof v.out !== "string" || v.out === "") throw new LoadError(`generate: say where the kernels go: cellforge generate ${cells.map(shellWord).join(" ")} --out <folder>`);
  const flags = [...(v.standalone ? ["--standalone"] : []), ...(v.js ? ["--js"] : [])];
  const run = ["npx cellforge generate", ...cells.map(shellWord), "--out", shellWord(v.out), ...flags].join(" ");
  return { root: cwd, cells, out: resolve(cwd, v.out), standalone: !!v.standalone, js: !!v.js, regenerate: { run, check: `${run} --check` }, from: "the command line" };
}

/** The config of the project at `cwd`: cellforge.config.json there, or the `cellforge` field of the nearest package.json. */
export function findConfig(cwd = process.cwd()): GenerateConfig {
  const file = join(cwd, CONFIG_FILE);
  if (existsSync(file)) return readConfig(file, parseJson(file), { run: "npx cellforge generate", check: "npx cellforge generate --check" });
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const pkgFile = join(dir, "package.json");
    if (existsSync(pkgFile)) {
      const pkg = parseJson(pkgFile) as { cellforge?: unknown; scripts?: Record<string, unknown> };
      if (pkg.cellforge !== undefined) {
        // the npm script that runs `cellforge generate`, if there is one, is how a user regenerates
        const script = Object.entries(pkg.scripts ?? {}).find(([, s]) => typeof s === "string" && /\bcellforge(\.js)? generate\s*$/.test(s))?.[0];
        const how = script ? { run: `npm run ${script}`, check: `npm run ${script} -- --check` } : { run: "npx cellforge generate", check: "npx cellforge generate --check" };
        return readConfig(pkgFile, pkg.cellforge, how, "the \"cellforge\" field of ");
      }
    }
    if (dirname(dir) === dir) break;
  }
  throw new LoadError(
    `generate: no cells named and no config found from ${cwd}\n` +
      `  name them: cellforge generate src/cells --out src/kernels\n` +
      `  or add to package.json: "cellforge": { "cells": ["src/cells"], "out": "src/kernels" }`,
  );
}

function parseJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new LoadError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

function readConfig(file: string, raw: unknown, regenerate: Regenerate, what = ""): GenerateConfig {
  const where = `${what}${file}`;
  const bad = (msg: string): never => { throw new LoadError(`${where}: ${msg}`); };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return bad(`the config is an object like { "cells": ["src/cells"], "out": "src/kernels" }`);
  const c = raw as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!(CONFIG_KEYS as readonly string[]).includes(k)) bad(`unknown key "${k}" (the keys are ${CONFIG_KEYS.join(", ")})`);
  const cells = typeof c.cells === "string" ? [c.cells] : c.cells;
  if (!Array.isArray(cells) || cells.length === 0 || !cells.every((x) => typeof x === "string" && x !== ""))
    bad(`"cells" is a file, folder or glob, or a list of them, like ["src/cells"]`);
  if (typeof c.out !== "string" || c.out === "") bad(`"out" is the folder the kernels go to, like "src/kernels"`);
  for (const k of ["standalone", "js"] as const) if (c[k] !== undefined && typeof c[k] !== "boolean") bad(`"${k}" is true or false`);
  if (c.runtime !== undefined && typeof c.runtime !== "string") bad(`"runtime" is a folder`);
  const root = dirname(file);
  return {
    root, cells: cells as string[], out: resolve(root, c.out as string), standalone: c.standalone === true, js: c.js === true,
    ...(typeof c.runtime === "string" ? { runtime: resolve(root, c.runtime) } : {}), regenerate, from: where,
  };
}

/** The cell files the config names, sorted, each once. */
export async function cellFiles(cfg: GenerateConfig): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of cfg.cells) {
    const p = resolve(cfg.root, pattern);
    // a file or folder whose name holds * ? [ ] { } is itself, not a glob (whose backslash would escape)
    if (isGlob(pattern, p)) {
      const hits = await glob(pattern, { cwd: cfg.root, absolute: true, onlyFiles: true });
      const cellsHit = hits.filter(isCellFile);
      if (cellsHit.length === 0) throw new LoadError(`generate: the pattern ${pattern} (in ${cfg.from}) matches no cell files (${CELL_EXTS.join(", ")})`);
      for (const f of cellsHit) found.add(resolve(f));
    } else if (!existsSync(p)) {
      throw new LoadError(`generate: no file or folder ${p} (in ${cfg.from})`);
    } else if (statSync(p).isDirectory()) {
      const inDir = readdirSync(p).filter((f) => isCellFile(f) && statSync(join(p, f)).isFile()).map((f) => join(p, f));
      if (inDir.length === 0) throw new LoadError(`generate: the folder ${p} has no cell files (${CELL_EXTS.join(", ")})`);
      for (const f of inDir) found.add(f);
    } else {
      if (!isCellFile(p)) throw new LoadError(`generate: ${p} is not a cell file (${CELL_EXTS.join(", ")})`);
      found.add(p);
    }
  }
  const files = [...found].sort();
  const byName = new Map<string, string>();
  for (const f of files) {
    const other = byName.get(kernelName(f));
    if (other) throw new LoadError(`generate: ${other} and ${f} would both write the kernel ${kernelName(f)}: rename one`);
    byName.set(kernelName(f), f);
  }
  return files;
}

const isCellFile = (f: string) => CELL_EXTS.includes(extname(f)) && !basename(f).startsWith("_") && !/\.(d|test|spec)\.[mc]?ts$/.test(f);
/** A kernel file's name: the cell file's, without its extension (and a `.cell` before it). */
export const kernelName = (f: string) => basename(f, extname(f)).replace(/\.cell$/, "");
/** A path as written in headers and messages: relative to the config, with forward slashes. */
const shown = (root: string, f: string) => relative(root, f).split(sep).join("/");

/** What a kernel imports the runtime as. */
const runtimeSpecifier = (cfg: Pick<GenerateConfig, "standalone">) => (cfg.standalone ? `./${VENDORED_RUNTIME}/index.js` : RUNTIME_IMPORT);

export interface GeneratedFile {
  readonly path: string;
  readonly text: string;
  /** The cell and the kernel's TypeScript, for a kernel module (proven before it is written). */
  readonly kernel?: { readonly cell: Cell; readonly ts: string };
}

/** The files one cell makes: its kernel (TypeScript, or JavaScript with its .d.ts) and its loops' WebAssembly text. */
export async function cellOutputs(file: string, cfg: Pick<GenerateConfig, "root" | "out" | "standalone" | "js" | "regenerate">): Promise<GeneratedFile[]> {
  const cell = await loadCell(file);
  const plan = buildPlan(cell, deriveBackward(cell)) as FullPlan;
  const source = shown(cfg.root, file);
  const how = cfg.regenerate;
  const name = kernelName(file);
  const wasm = await cellWasm(plan, source, how);
  const runtimeImport = runtimeSpecifier(cfg);
  const text = await emitKernelModule(plan, { source, wasm, regenerate: how, runtimeImport, watFile: `${name}.wat` });
  const kernel = { cell, ts: text };
  const wat = { path: join(cfg.out, `${name}.wat`), text: wasm.text };
  if (!cfg.js) return [{ path: join(cfg.out, `${name}.ts`), text, kernel }, wat];
  // ES modules: .js in a "type": "module" package, .mjs elsewhere (a CommonJS project requires them, Node 20.19 and later)
  const [js, dts] = isModulePackage(cfg.out) ? [".js", ".d.ts"] : [".mjs", ".d.mts"];
  return [{ path: join(cfg.out, name + js), text: await toJs(text), kernel }, { path: join(cfg.out, name + dts), text: toDts(text, name) }, wat];
}

/** Whether .js files in `dir` are ES modules: the nearest package.json says "type": "module". */
function isModulePackage(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const pkg = join(d, "package.json");
    if (existsSync(pkg)) return (parseJson(pkg) as { type?: unknown }).type === "module";
    if (dirname(d) === d) return false;
  }
}

/** A module's JavaScript: its types stripped by TypeScript's transpiler (which keeps every comment), formatted like the TypeScript. */
async function toJs(text: string): Promise<string> {
  const js = ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true } }).outputText;
  return format(js, { parser: "babel", printWidth: 120, trailingComma: "all" });
}

/** A module's declarations, from its text alone (it annotates everything it exports). */
function toDts(text: string, name: string): string {
  const r = ts.transpileDeclaration(text, { fileName: `${name}.ts`, reportDiagnostics: true, compilerOptions: { declaration: true, strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
  if (r.diagnostics?.length) throw new Error(`internal: the declarations of ${name}: ${ts.flattenDiagnosticMessageText(r.diagnostics[0]!.messageText, " ")}`);
  // the header (source, and how to regenerate) heads the declarations too
  const header = text.slice(0, text.search(/^(?!\/\/)/m));
  return r.outputText.startsWith(header) ? r.outputText : header + r.outputText;
}

/**
 * One cell's kernel module as JavaScript, proven, for a bundler's plugin (plugin/index.ts) or any
 * build script: the same kernel `generate` writes, importing `cellforge/runtime`. `root` is the folder
 * the header's source path is relative to.
 */
export async function kernelModule(file: string, root = process.cwd()): Promise<{ readonly cell: Cell; readonly ts: string; readonly js: string; readonly wat: string }> {
  const cfg = { root, out: dirname(file), standalone: false, js: false, regenerate: { run: "your bundler's cellforge plugin", check: "cellforge generate --check" } };
  const [kernel, wat] = await cellOutputs(resolve(file), cfg);
  prove(kernel!.kernel!.cell, kernel!.text, KERNEL_IMPORTS);
  return { cell: kernel!.kernel!.cell, ts: kernel!.text, js: await toJs(kernel!.text), wat: wat!.text };
}

/** The runtime's files, vendored into `out`/cellforge-runtime/ for a standalone kernel. */
function vendoredRuntime(cfg: GenerateConfig): GeneratedFile[] {
  // the TypeScript sources ship in the package (runtime/), the compiled runtime in dist/runtime/
  const dir = join(cfg.js ? ROOT : PACKAGE_ROOT, "runtime");
  const dest = join(cfg.out, VENDORED_RUNTIME);
  const header = (f: string) => `// Vendored by cellforge from its runtime (runtime/${f}) for the standalone kernels beside this folder.\n// Do not edit: regenerate with \`${cfg.regenerate.run}\`.\n`;
  const files = readdirSync(dir).sort();
  if (cfg.js) {
    if (!COMPILED) throw new LoadError("generate: --js with --standalone vendors the compiled runtime: run `npm run build` in the cellforge checkout first, or use the installed package");
    // its .js files are ES modules wherever the folder is, in a CommonJS project too (whose kernels are .mjs)
    const scope = { path: join(dest, "package.json"), text: `${JSON.stringify({ "//": `Vendored by cellforge: its runtime, ES modules. Do not edit: regenerate with \`${cfg.regenerate.run}\`.`, type: "module" }, null, 2)}\n` };
    return [scope, ...files.filter((f) => f.endsWith(".js") || f.endsWith(".d.ts")).map((f) => ({ path: join(dest, f), text: header(f) + readFileSync(join(dir, f), "utf8") }))];
  }
  // TypeScript: .ts sources, their relative imports written with .js (which every resolver maps to .ts)
  return files
    .filter((f) => (f.endsWith(".ts") && !f.endsWith(".d.ts")) || /^wasm-worker(-web)?\.js$/.test(f)) // the workers: Node's and browsers'
    .map((f) => ({ path: join(dest, f), text: header(f) + readFileSync(join(dir, f), "utf8").replace(/(from\s+"\.\/[\w-]+)\.ts"/g, '$1.js"') }));
}

export interface Progress {
  (done: number, total: number, what: string): void;
}

/** Every file the config makes, in memory, each kernel proven. */
export async function generateAll(cfg: GenerateConfig, progress: Progress = () => {}, tile: Tile = DEFAULT_TILE, wasmTile: WasmTile = DEFAULT_WASM_TILE): Promise<GeneratedFile[]> {
  const files: GeneratedFile[] = [];
  let imports: KernelImports = KERNEL_IMPORTS;
  if (cfg.runtime) {
    progress(0, 1, "the runtime's products (GEMM in TypeScript and WebAssembly)");
    const wasm = await buildWasm(wasmTile);
    const gemm = await emitGemmModule(tile), gemmWasm = await emitWasmModule(wasm, wasmTile);
    files.push({ path: join(cfg.runtime, "gemm.ts"), text: gemm }, { path: join(cfg.runtime, "gemm.wat"), text: wasm.text }, { path: join(cfg.runtime, "gemm-wasm.ts"), text: gemmWasm });
    imports = importsWithProducts(gemm, gemmWasm);
  }
  const cells = await cellFiles(cfg);
  for (const [i, f] of cells.entries()) {
    progress(i, cells.length, shown(cfg.root, f));
    const made = await cellOutputs(f, cfg);
    // a standalone kernel's vendored runtime is a copy of this one: it is proven with this one's modules
    const bound = cfg.standalone ? { [runtimeSpecifier(cfg)]: imports[RUNTIME_IMPORT]! } : imports;
    for (const g of made) if (g.kernel) prove(g.kernel.cell, g.kernel.ts, bound);
    files.push(...made);
  }
  progress(cells.length, cells.length, "done");
  if (cfg.standalone) files.push(...vendoredRuntime(cfg));
  return files;
}

/** The kernel proven against the reference evaluator, its cell file named if it is refused. */
function prove(cell: Cell, text: string, imports: KernelImports): void {
  try {
    proveKernelText(cell, text, imports);
  } catch (e) {
    if (e instanceof KernelRefusedError) throw e;
    // the gate runs a case at the cell's default sizes: sizes too large for any kernel are the cell's to change
    if (e instanceof LimitError) throw new LoadError(`${cell.file ?? `cell "${cell.name}"`}: its kernel is proven on a case at the cell's default sizes, and ${e.message}: give the cell smaller defaults (defaults: { … })`);
    throw new KernelRefusedError(cell, null, `could not be run to be proven: ${(e as Error).message}`);
  }
}

export interface GenerateResult {
  readonly written: string[];
  /** Files that differ from what would be written, are missing, or are stray (a generated file no cell makes any more). */
  readonly stale: string[];
  readonly removed: string[];
}

/** A file cellforge wrote: its first line says so. Only these are ever overwritten, or removed as stray. */
const isGenerated = (path: string) => /^((\/\/|;;) (Generated|Vendored) by cellforge |\{\n {2}"\/\/": "Vendored by cellforge)/.test(readFileSync(path, "utf8").slice(0, 40));

/** The cell file a generated file's header names ("Generated by cellforge from src/cells/a.ts: …"), from the config's folder. */
function sourceOf(root: string, text: string): string | undefined {
  const m = /^(?:\/\/|;;) Generated by cellforge from (.+?): /.exec(text.slice(0, 4096));
  // the .wat's header writes a character beyond the BMP as \u{…} (codegen/escape.ts, watText)
  return m ? resolve(root, m[1]!.replace(/\\u\{([0-9a-f]+)\}/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))) : undefined;
}

/** The generated files in `out` (and its vendored runtime), for stray files. */
function generatedIn(out: string): string[] {
  const found: string[] = [];
  for (const dir of [out, join(out, VENDORED_RUNTIME)])
    if (existsSync(dir) && statSync(dir).isDirectory())
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (/\.([mc]?[tj]s|wat|json)$/.test(f) && statSync(p).isFile() && isGenerated(p)) found.push(p);
      }
  return found;
}

/**
 * Write the files (or with `check`, only compare). A file at one of their paths that cellforge did
 * not write is never overwritten: nothing is written, and the error names it. A generated file in
 * `out` that this run does not make is stray when the cell its header names is gone, or is one of
 * this run's cells (whose kernel is now elsewhere); the kernels of other cells that still exist
 * stay (another run made them into the same folder), and so does the vendored runtime while a
 * kernel there imports it.
 */
export function writeFiles(cfg: GenerateConfig, files: readonly GeneratedFile[], check: boolean): GenerateResult {
  const stale: string[] = [], written: string[] = [], removed: string[] = [];
  if (existsSync(cfg.out) && !statSync(cfg.out).isDirectory()) throw new LoadError(`generate: the output ${cfg.out} is a file, not a folder`);
  const theirs = files.filter((f) => existsSync(f.path) && (!statSync(f.path).isFile() || !isGenerated(f.path)));
  if (theirs.length)
    throw new LoadError(`generate: ${theirs.map((f) => shown(cfg.root, f.path)).join(", ")} ${theirs.length === 1 ? "is" : "are"} in the way: cellforge did not write ${theirs.length === 1 ? "it" : "them"} (the first line is not "Generated by cellforge"), and will not overwrite ${theirs.length === 1 ? "it" : "them"}; nothing was written. Move ${theirs.length === 1 ? "it" : "them"}, or choose another --out`);
  const want = new Set(files.map((f) => f.path));
  const runCells = new Set(files.flatMap((f) => sourceOf(cfg.root, f.text) ?? []));
  const others = generatedIn(cfg.out).filter((p) => !want.has(p));
  const isStray = (p: string) => {
    if (dirname(p) === join(cfg.out, VENDORED_RUNTIME)) return false; // decided below, from the kernels that stay
    const src = sourceOf(cfg.root, readFileSync(p, "utf8"));
    return src === undefined || runCells.has(src) || !existsSync(src);
  };
  const stray = new Set(others.filter(isStray));
  const kept = [...files.map((f) => f.text), ...others.filter((p) => !stray.has(p) && dirname(p) === cfg.out).map((p) => readFileSync(p, "utf8"))];
  if (!kept.some((text) => text.includes(`./${VENDORED_RUNTIME}/`))) for (const p of others) if (dirname(p) === join(cfg.out, VENDORED_RUNTIME)) stray.add(p);
  for (const f of files) {
    const old = existsSync(f.path) ? readFileSync(f.path, "utf8") : undefined;
    if (old === f.text) continue;
    stale.push(shown(cfg.root, f.path));
    if (!check) {
      mkdirSync(dirname(f.path), { recursive: true });
      writeFileSync(f.path, f.text);
      written.push(shown(cfg.root, f.path));
    }
  }
  for (const p of stray) {
    stale.push(shown(cfg.root, p));
    if (!check) { rmSync(p); removed.push(shown(cfg.root, p)); }
  }
  return { written, stale, removed };
}

/** Regenerate on every change of a cell file (or a file in a named folder); errors are reported, not fatal. Resolves when `signal` aborts. */
export async function watchCells(cfg: GenerateConfig, say: (line: string) => void, signal?: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined, running = false, again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try {
      const r = writeFiles(cfg, await generateAll(cfg), false);
      say(r.written.length || r.removed.length ? [...r.written.map((f) => `wrote ${f}`), ...r.removed.map((f) => `removed ${f}`)].join("\n") : "up to date");
    } catch (e) {
      say(errorText(e));
    } finally {
      running = false;
      if (again) { again = false; void run(); }
    }
  };
  await run();
  // watch each named file, and each folder (a glob's folder up to its first wildcard)
  const targets = new Set(cfg.cells.map((c) => {
    const p = resolve(cfg.root, isGlob(c, resolve(cfg.root, c)) ? c.slice(0, c.search(GLOB)) || "." : c);
    return existsSync(p) && statSync(p).isDirectory() ? p : dirname(p);
  }));
  const closers = [...targets].map((dir) => watchTree(dir, (f) => {
    if (f && !isCellFile(f)) return;
    clearTimeout(timer);
    timer = setTimeout(() => void run(), 100);
  }));
  say(`watching ${[...targets].map((t) => shown(cfg.root, t) || ".").join(", ")} (Ctrl-C stops)`);
  await new Promise<void>((done) => {
    const stop = () => { for (const close of closers) close(); clearTimeout(timer); done(); };
    if (signal?.aborted) stop();
    signal?.addEventListener("abort", stop);
    process.once("SIGINT", stop);
  });
}

/**
 * Watch `root` and the folders under it (but node_modules and dot folders), each folder on its own.
 * Node's recursive watch on Linux follows files, and an editor that saves by writing a new file and
 * renaming it over the old one left it watching a file that was gone: one change was seen, none
 * after. A folder's watch sees every rename into it. A folder made later is watched when it appears.
 */
function watchTree(root: string, changed: (file: string) => void): () => void {
  const watchers = new Map<string, FSWatcher>();
  const scan = (dir: string) => {
    if (watchers.has(dir)) return;
    try {
      watchers.set(dir, watch(dir, (_e, f) => {
        const name = f ? String(f) : "";
        const p = join(dir, name);
        if (name && existsSync(p) && statSync(p).isDirectory()) scan(p);
        changed(name);
      }));
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "node_modules") scan(join(dir, e.name));
    } catch {
      // a folder removed while it was scanned: its parent's watch reports the change
    }
  };
  scan(root);
  return () => { for (const w of watchers.values()) w.close(); };
}

/** A user's error as its message, anything else with its stack. */
export function errorText(e: unknown): string {
  return e instanceof CellError || e instanceof LoadError || e instanceof KernelRefusedError ? e.message : (e as Error).stack ?? String(e);
}

/** The config's `out`, for messages. */
export const outShown = (cfg: GenerateConfig) => `${shown(cfg.root, cfg.out) || "."}/`; // out is absolute

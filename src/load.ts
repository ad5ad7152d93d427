// Finding and loading cells: a name in dsl/, or a .ts / .json file anywhere on disk. A .ts cell
// outside this checkout may `import { defineCell } from "cellforge"`: a module hook resolves that
// specifier to this package, and cell files load as ES modules wherever they are.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { register } from "node:module";
import { basename, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Cell, type CellSpec, compileCell } from "./cell.ts";
import { CellError } from "./errors.ts";

export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
export const DSL_DIR = join(ROOT, "dsl");
const EXTS = [".ts", ".mts", ".json"];

/** A user's mistake in naming or loading a cell (not in its equations). */
export class LoadError extends Error {}

let hooked = false;
/** Let `import "cellforge"` resolve to this package, and .ts files load as ES modules, anywhere. */
export function hookModules(): void {
  if (hooked) return;
  hooked = true;
  const entry = pathToFileURL(join(ROOT, "src", "index.ts")).href;
  const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === "cellforge") return next(${JSON.stringify(entry)}, context);
  return next(specifier, context);
}
export async function load(url, context, next) {
  const path = url.split("?")[0];
  if (path.startsWith("file:") && /\\.ts$/.test(path) && !path.includes("/node_modules/")) return next(url, { ...context, format: "module" });
  return next(url, context);
}`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}

/** The cell files in dsl/, sorted. */
export function builtinCellFiles(): string[] {
  if (!existsSync(DSL_DIR)) return [];
  return readdirSync(DSL_DIR)
    .filter((f) => EXTS.includes(extname(f)) && !f.startsWith("_") && !f.endsWith(".d.ts"))
    .sort()
    .map((f) => join(DSL_DIR, f));
}

/** Resolve `ref` (a built-in name or a path) to a file. */
export function findCellFile(ref: string): string {
  const looksLikePath = ref.includes("/") || ref.includes("\\") || EXTS.includes(extname(ref));
  if (looksLikePath) {
    const p = resolve(ref);
    if (existsSync(p)) return p;
    throw new LoadError(`no cell file at ${p}`);
  }
  for (const ext of EXTS) {
    const p = join(DSL_DIR, ref + ext);
    if (existsSync(p)) return p;
  }
  const names = builtinCellFiles().map((f) => basename(f, extname(f)));
  throw new LoadError(`no cell named "${ref}" in dsl/ (cells: ${names.join(", ")}); give a path to use a file elsewhere`);
}

const isBuilt = (x: unknown): x is Cell => typeof x === "object" && x !== null && Array.isArray((x as Cell).next) && Array.isArray((x as Cell).states);

/** Read a cell file's spec without compiling it (or the cell itself, for the builder form). */
export async function readSpec(file: string): Promise<CellSpec | Cell> {
  const text = readFileSync(file, "utf8");
  if (extname(file) === ".json") {
    try {
      return JSON.parse(text) as CellSpec;
    } catch (e) {
      throw new LoadError(`${file}: not valid JSON: ${(e as Error).message}`);
    }
  }
  hookModules();
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    if (e instanceof CellError) throw e;
    const msg = (e as Error).message ?? String(e);
    throw new LoadError(`${file}: cannot load the cell file: ${msg.split("\n").slice(0, 6).join("\n")}`);
  }
  if (!mod.default || typeof mod.default !== "object")
    throw new LoadError(`${file}: the file must \`export default defineCell({ ... })\``);
  return mod.default as CellSpec | Cell;
}

/** Load and compile a cell by name or path. */
export async function loadCell(ref: string): Promise<Cell> {
  const file = findCellFile(ref);
  const spec = await readSpec(file);
  const shown = file.startsWith(ROOT + "/") ? file.slice(ROOT.length + 1) : file;
  if (isBuilt(spec)) return { ...spec, file: shown };
  return compileCell(spec, { file: shown, source: readFileSync(file, "utf8") });
}

// Finding and loading cells: a name in dsl/, or a .ts / .json file anywhere on disk. A .ts cell
// anywhere may `import { defineCell } from "cellforge"`, and a kernel `from "cellforge/runtime"`: a
// module hook resolves both to this copy of cellforge (its sources in a checkout, its compiled
// JavaScript in an installed package), and cell files load as ES modules wherever they are.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { register } from "node:module";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Cell, type CellSpec, compileCell } from "./cell.ts";
import { CellError } from "./errors.ts";

/** The tree of src/, runtime/, dsl/, generated/: the checkout, or dist/ in an installed package. */
export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
/** Whether this is the compiled package (dist/*.js) rather than the TypeScript sources. */
export const COMPILED = extname(fileURLToPath(import.meta.url)) === ".js";
/** Where package.json is. */
export const PACKAGE_ROOT = COMPILED ? dirname(ROOT) : ROOT;
export const DSL_DIR = join(ROOT, "dsl");
const EXTS = COMPILED ? [".ts", ".mts", ".json", ".js"] : [".ts", ".mts", ".json"];
const OWN_EXT = COMPILED ? ".js" : ".ts";

/** The longest name of one file or folder on the file systems Node runs on (NAME_MAX: 255 bytes on Linux and macOS). */
const NAME_MAX = 255;

/** A user's mistake in naming or loading a cell (not in its equations). */
export class LoadError extends Error {}

let hooked = false;
/** Let `import "cellforge"` resolve to this package, and .ts files load as ES modules, anywhere. */
export function hookModules(): void {
  if (hooked) return;
  hooked = true;
  const entries = {
    cellforge: pathToFileURL(join(ROOT, "src", `index${OWN_EXT}`)).href,
    "cellforge/runtime": pathToFileURL(join(ROOT, "runtime", `index${OWN_EXT}`)).href,
  };
  // Node's resolver refuses a file URL holding an encoded backslash (%5C), though a backslash is an ordinary
  // character of a file name on POSIX (lib/internal/modules/esm/resolve.js, finalizeResolution, checks
  // it for every platform): such a file that exists is resolved here, and loads like any other.
  const hooks = `
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
const entries = ${JSON.stringify(entries)};
const isFile = (url) => { try { return statSync(fileURLToPath(url)).isFile(); } catch { return false; } };
export async function resolve(specifier, context, next) {
  if (Object.hasOwn(entries, specifier)) return next(entries[specifier], context);
  if (process.platform !== "win32" && /^(file:|\\.{0,2}\\/)/.test(specifier)) {
    const url = new URL(specifier, context.parentURL);
    if (url.protocol === "file:" && /%5c/i.test(url.pathname) && isFile(url)) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  const path = url.split("?")[0];
  if (path.startsWith("file:") && /\\.ts$/.test(path) && !path.includes("/node_modules/")) return next(url, { ...context, format: "module" });
  return next(url, context);
}`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}

/** Each cell file's modification time when it was last imported, and the URL it was imported as. */
const imported = new Map<string, { mtime: number; url: string }>();
/** A cell file's URL; a file changed since it was imported (`generate --watch`) gets a new one, as modules are cached by URL. */
function moduleUrl(file: string): string {
  const mtime = statSync(file).mtimeMs, before = imported.get(file);
  if (before?.mtime === mtime) return before.url;
  // a whole number: a fraction would read as the file's extension to Vite's loader
  const url = pathToFileURL(file).href + (before ? `?v=${imported.size}-${Math.round(mtime)}` : "");
  imported.set(file, { mtime, url });
  return url;
}

/**
 * Import a module that may be TypeScript. The CLI and vitest load .ts themselves; anywhere else (a
 * bundler's plugin, a user's script) Node cannot, and tsx's loader is registered on first need.
 */
async function importTs(url: string): Promise<{ default?: unknown }> {
  try {
    return (await import(url)) as { default?: unknown };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e;
    const { register } = await import("tsx/esm/api");
    register();
    return (await import(url)) as { default?: unknown };
  }
}

/** The cell files in dsl/, sorted. */
export function builtinCellFiles(): string[] {
  if (!existsSync(DSL_DIR)) return [];
  return readdirSync(DSL_DIR)
    .filter((f) => EXTS.includes(extname(f)) && !f.startsWith("_") && !f.endsWith(".d.ts") && !f.endsWith(".map"))
    .sort()
    .map((f) => join(DSL_DIR, f));
}

/** Resolve `ref` (a built-in name or a path) to a file. */
export function findCellFile(ref: string): string {
  const looksLikePath = ref.includes("/") || ref.includes("\\") || EXTS.includes(extname(ref));
  if (looksLikePath) {
    const p = resolve(ref);
    if (existsSync(p) && statSync(p).isDirectory()) throw new LoadError(`${p} is a folder: a cell is one ${EXTS.join(", ")} file (generate takes folders of them)`);
    if (existsSync(p)) return p;
    // existsSync says only "no" when the name cannot exist (ENAMETOOLONG): say why
    const long = p.split("/").find((part) => Buffer.byteLength(part) > NAME_MAX);
    if (long) throw new LoadError(`no cell file at ${p}: the name ${JSON.stringify(`${long.slice(0, 24)}…`)} is ${Buffer.byteLength(long)} bytes long, and a file or folder name holds at most ${NAME_MAX}`);
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
    mod = await importTs(moduleUrl(file));
  } catch (e) {
    if (e instanceof CellError) throw e;
    const msg = (e as Error).message ?? String(e);
    throw new LoadError(`${file}: cannot load the cell file: ${msg.split("\n").slice(0, 6).join("\n")}`);
  }
  if (!mod.default || typeof mod.default !== "object")
    throw new LoadError(`${file}: the file must \`export default defineCell({ ... })\``);
  // an object with none of a cell's fields is something else the file exports, not a cell with a mistake
  const keys = Object.keys(mod.default);
  if (!["name", "equations", "state", "states", "params"].some((k) => keys.includes(k)))
    throw new LoadError(`${file}: its default export is not a cell (an object with ${keys.length ? `the keys ${keys.slice(0, 5).join(", ")}${keys.length > 5 ? ", …" : ""}` : "no keys"}): the file must \`export default defineCell({ ... })\``);
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

// cellforge/plugin: kernels imported straight from cell files, in any bundler unplugin serves
// (Vite, Rollup, esbuild, webpack, …).
//
//   import { createKernel32, initParams } from "./mycell.cell.ts?kernel";
//
// The import is the cell's kernel module: the same proven kernel `cellforge generate` writes, as
// JavaScript importing `cellforge/runtime` (which the bundler resolves to the installed package).
// The cell file is a watch file, so a dev server or a watch build regenerates the kernel when the
// cell changes. A cell that does not compile, or a kernel refused by the check, fails the build with
// cellforge's own message (file, line, column), never a stack trace. Types for the import are in
// plugin/kernel.d.ts (`"types": ["cellforge/kernel"]`).
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { type ExternalIdResult, type UnpluginInstance, type UnpluginMessage, createUnplugin } from "unplugin";
import { kernelModule } from "../cli/generate.ts";
import { KernelRefusedError } from "../check/kernelerror.ts";
import { CellError } from "../src/errors.ts";
import { LoadError } from "../src/load.ts";

export interface CellforgeOptions {
  /** The folder the kernel header's source path is relative to: Vite's root, else the working directory. */
  readonly root?: string;
}

/** The query that asks for a cell's kernel. */
const QUERY = "?kernel";
/**
 * Rollup and Vite name the kernel by a virtual id ("\0" + …): no other plugin touches it, so Vite's
 * own TypeScript transform, which goes by the file's extension even behind a query, leaves the
 * JavaScript alone. esbuild and webpack keep the cell's path with the query: esbuild loads it in a
 * namespace of the plugin's own, webpack as a virtual module, and both resolve its imports from a
 * real folder.
 */
const VIRTUAL = "\0cellforge-kernel:";
const VIRTUAL_FRAMEWORKS = new Set(["rollup", "vite", "rolldown"]);

/** Rollup's and Vite's `this.resolve`, which unplugin's context does not declare. */
type Resolve = (source: string, importer: string, options: { skipSelf: boolean }) => Promise<ExternalIdResult | null>;
type Kernel = Awaited<ReturnType<typeof kernelModule>>;
/** One plugin per bundler (not a list), its types by reference to unplugin's, whose bundler types a user has installed or not. */
type Instance = UnpluginInstance<CellforgeOptions | undefined, false>;

export const unplugin: Instance = createUnplugin<CellforgeOptions | undefined, false>((options, meta) => {
  let root = options?.root ?? process.cwd();
  const virtual = VIRTUAL_FRAMEWORKS.has(meta.framework);
  const idOf = (cell: string) => (virtual ? VIRTUAL + cell : cell + QUERY);
  /** The cell file of a kernel's id, or undefined for any other module. */
  const cellOf = (id: string) => (virtual ? (id.startsWith(VIRTUAL) ? id.slice(VIRTUAL.length) : undefined) : id.endsWith(QUERY) ? id.slice(0, -QUERY.length) : undefined);

  /** Each cell's kernel, kept while the cell file's text is the same (a watch build loads it again on every rebuild). */
  const kernels = new Map<string, { readonly text: string; readonly kernel: Promise<Kernel> }>();
  const kernelOf = (file: string): Promise<Kernel> => {
    const text = existsSync(file) ? readFileSync(file, "utf8") : "";
    const known = kernels.get(file);
    if (known?.text === text) return known.kernel;
    const kernel = kernelModule(file, root);
    kernels.set(file, { text, kernel });
    kernel.catch(() => { if (kernels.get(file)?.kernel === kernel) kernels.delete(file); });
    return kernel;
  };

  return {
    name: "cellforge",
    // before Vite's resolver, which would keep the cell's own path and hand it to its TypeScript transform
    enforce: "pre",
    resolveId: {
      filter: virtual ? undefined : { id: /\?kernel$/ },
      handler(source, importer) {
        const inKernel = importer === undefined ? undefined : cellOf(importer);
        if (source.endsWith(QUERY)) {
          const path = source.slice(0, -QUERY.length);
          if (!isAbsolute(path) && !path.startsWith("./") && !path.startsWith("../")) return null;
          const from = inKernel ?? importer?.replace(/[?#].*$/, "");
          let file = resolve(from !== undefined && isAbsolute(from) ? dirname(from) : root, path);
          // a Vite dev server asks for /src/x.cell.ts?kernel: a path from its root
          if (!existsSync(file) && path.startsWith("/") && existsSync(join(root, path))) file = join(root, path);
          return idOf(file);
        }
        // the kernel's own imports (cellforge/runtime) resolve as if the cell file made them
        const native = (this as unknown as { resolve?: Resolve }).resolve;
        if (inKernel !== undefined && virtual && native) return native.call(this, source, inKernel, { skipSelf: true });
        return null;
      },
    },
    load: {
      filter: { id: virtual ? /^\0cellforge-kernel:/ : /\?kernel$/ },
      async handler(id) {
        const file = cellOf(id);
        if (file === undefined) return null;
        this.addWatchFile(file);
        try {
          return { code: (await kernelOf(file)).js, map: null };
        } catch (e) {
          if (!(e instanceof CellError || e instanceof LoadError || e instanceof KernelRefusedError)) throw e;
          this.error(userError(e, file, meta.framework !== "esbuild"));
          // Rollup and Vite throw in `error`; esbuild and webpack collect the error and go on, and
          // whatever still runs this module meets the same message
          return `throw new Error(${JSON.stringify(e.message)});\n`;
        }
      },
    },
    vite: {
      configResolved(config) {
        if (options?.root === undefined) root = config.root;
      },
    },
    esbuild: {
      onResolveFilter: /\?kernel$/,
      onLoadFilter: /\?kernel$/,
      loader: "js",
    },
  };
});

/**
 * cellforge's message for a bundler, and the spot in the cell file when it is known (columns from 0,
 * as Rollup counts), from which Vite's overlay shows the lines around it. Not for esbuild, which
 * would print the spot's line empty (it is given no line text) under the message's own excerpt.
 */
function userError(e: CellError | LoadError | KernelRefusedError, file: string, withSpot: boolean): UnpluginMessage {
  const w = e instanceof CellError ? e.where : undefined;
  const loc = withSpot && w?.line !== undefined && w.column !== undefined && !w.relative ? { file, line: w.line, column: w.column - 1 } : undefined;
  // no stack: the message is the whole story, and a bundler prints a stack when it has one
  return { message: e.message, id: file, plugin: "cellforge", stack: "", ...(loc ? { loc } : {}) };
}

export const vite: Instance["vite"] = unplugin.vite;
export const rollup: Instance["rollup"] = unplugin.rollup;
export const esbuild: Instance["esbuild"] = unplugin.esbuild;
export const webpack: Instance["webpack"] = unplugin.webpack;
export default unplugin;

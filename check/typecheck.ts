// Typechecking an emitted kernel in memory, as the committed ones are by `tsc` in the test suite:
// tsconfig.json's options (strict, noUncheckedIndexedAccess, …), the text placed in generated/ so
// its imports resolve to the committed products and the runtime. A check costs seconds (the
// TypeScript program with its libraries and @types/node), so a pass is remembered in the private
// cache (check/privatecache.ts) under a key of the kernel's text, every file it imports, the
// options and the compiler's version: each kernel is checked once per machine.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Project, ts } from "ts-morph";
import { COMPILED, PACKAGE_ROOT, ROOT } from "../src/load.ts";
import { KernelRefusedError } from "./kernelerror.ts";
import { openPrivateCache, privateCacheDir, type PrivateCache } from "./privatecache.ts";

const TSCONFIG = join(PACKAGE_ROOT, "tsconfig.json");
/** An installed package has no tsconfig.json: the same strictness, with the runtime's types from its .d.ts files. */
const PACKAGED_OPTIONS: ts.CompilerOptions = {
  strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, noEmit: true, skipLibCheck: true, types: [],
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
};
/** The runtime a kernel imports as `cellforge/runtime`, as a file here. */
const RUNTIME_ENTRY = join(ROOT, "runtime", COMPILED ? "index.d.ts" : "index.ts");
let project: Project | undefined;
/** Opened (checked and cleaned) once per process. */
const caches = new Map<string, PrivateCache>();
const passed = new Set<string>();

/** The text of every file a module imports, transitively, by relative specifier ("./x.ts", "../runtime/y.ts") or as `cellforge/runtime`. */
function localImports(text: string, dir: string, seen = new Map<string, string>()): Map<string, string> {
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+|cellforge\/runtime)"/gm)) {
    const named = m[1] === "cellforge/runtime" ? RUNTIME_ENTRY : resolve(dir, m[1]!);
    // the compiled package's declarations keep their sources' specifiers: "./checks.ts" is checks.d.ts there
    const file = !existsSync(named) && named.endsWith(".ts") ? named.replace(/\.ts$/, ".d.ts") : named;
    if (seen.has(file)) continue;
    const t = readFileSync(file, "utf8");
    seen.set(file, t);
    localImports(t, dirname(file), seen);
  }
  return seen;
}

/** The verdict's key: everything the result depends on. */
function verdictKey(text: string): string {
  const h = createHash("sha256").update(`typescript ${ts.version}\0`).update(existsSync(TSCONFIG) ? readFileSync(TSCONFIG) : JSON.stringify(PACKAGED_OPTIONS)).update("\0").update(text);
  for (const [file, t] of [...localImports(text, join(ROOT, "generated"))].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(`\0${relative(ROOT, file)}\0${t}`);
  return h.digest("hex");
}

/**
 * Throw a KernelRefusedError naming the first errors when the kernel's text does not typecheck.
 * Returns whether it was checked now (false: a pass from this process or the private cache).
 */
export function typecheckKernel(cell: { readonly name: string; readonly file?: string }, text: string, cacheDir?: string): { checked: boolean; ms: number } {
  const t0 = performance.now();
  const key = verdictKey(text);
  const name = `typecheck-${key}.ok`;
  const verdict = `typecheck passed: kernel for cell ${JSON.stringify(cell.name)}, TypeScript ${ts.version}\n`;
  if (passed.has(key)) return { checked: false, ms: performance.now() - t0 };
  const dir = cacheDir ?? privateCacheDir();
  let cache = caches.get(dir);
  if (!cache) caches.set(dir, (cache = openPrivateCache(dir)));
  if (cache.get(name) === verdict) {
    passed.add(key);
    return { checked: false, ms: performance.now() - t0 };
  }
  project ??= existsSync(TSCONFIG) ? new Project({ tsConfigFilePath: TSCONFIG, skipAddingFilesFromTsConfig: true }) : new Project({ compilerOptions: PACKAGED_OPTIONS });
  const sf = project.createSourceFile(join(ROOT, "generated", `.typecheck-${key.slice(0, 16)}.ts`), text, { overwrite: true });
  try {
    const program = project.getProgram().compilerObject;
    const diags = [...program.getSyntacticDiagnostics(sf.compilerNode), ...program.getSemanticDiagnostics(sf.compilerNode)];
    if (diags.length) {
      const where = (d: ts.Diagnostic) => (d.start === undefined ? "" : `line ${sf.compilerNode.getLineAndCharacterOfPosition(d.start).line + 1}: `);
      const shown = diags.slice(0, 3).map((d) => `    ${where(d)}${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
      throw new KernelRefusedError(cell, null, `does not typecheck under tsconfig.json's options (strict, noUncheckedIndexedAccess):\n${shown.join("\n")}${diags.length > 3 ? `\n    … and ${diags.length - 3} more` : ""}`);
    }
  } finally {
    project.removeSourceFile(sf);
  }
  passed.add(key);
  cache.put(name, verdict);
  return { checked: true, ms: performance.now() - t0 };
}

// cellforge/plugin in the bundlers themselves: a user's cell imported with `?kernel` in a project
// of its own, bundled by Vite (its build API) and by esbuild, the bundle run in a Node process of
// its own and compared with the same kernel from `kernelModule` run directly; a mistake in the
// cell fails the build with cellforge's message; a Vite watch build, in a Node process as a user's
// build runs, regenerates the kernel when the cell changes and goes on past a mistake.
//
// The project's node_modules/cellforge is this checkout (a link), and both bundlers are given the
// "cellforge-source" condition, so the kernel's `cellforge/runtime` is the runtime's sources.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build as viteBuild } from "vite";
import { build as esbuildBuild } from "esbuild";
import type { KernelModule } from "../runtime/index.ts";
import { ROOT } from "../src/load.ts";
import { kernelModule } from "../cli/generate.ts";
import { esbuild as esbuildPlugin, vite as vitePlugin } from "../plugin/index.ts";
import { runNodeOk } from "./spawn.ts";

// The declared type of a `?kernel` import (plugin/kernel.d.ts) is a kernel module as the runtime sees it.
type KernelImport = typeof import("./mycell.cell.ts?kernel");
({}) as KernelImport satisfies KernelModule;

const CELL = (equations: string, name = "mycell") => `import { defineCell } from "cellforge";

export default defineCell({
  name: "${name}",
  doc: "a minimal gated unit, a user's copy",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wf: ["H", "D"], Uf: ["H", "H"], bf: "H", Wh: ["H", "D"], Uh: ["H", "H"], bh: "H" },
  equations: \`${equations}\`,
});
`;
const GOOD = `
    f  = sigmoid(Wf*x + Uf*h + bf)
    n  = tanh(Wh*x + Uh*(f .* h) + bh)
    h' = (1 - f) .* h + f .* n
  `;
// line 12 of the file, column 22: "Uq"
const BAD = GOOD.replace("Uh*(f", "Uq*(f");

/** What a user's program does with the kernel: T steps forward from a seed's parameters. */
const RUN = `
export function forward(k) {
  const sizes = { D: 3, H: 4 }, B = 2, T = 5;
  const p = k.initParams(sizes, 7);
  const x = Float64Array.from({ length: T * B * sizes.D }, (_, i) => Math.sin(i + 1));
  const h0 = Float64Array.from({ length: B * sizes.H }, (_, i) => Math.cos(i) / 2);
  const out = { h: new Float64Array(T * B * sizes.H) };
  const kernel = k.createKernel64(sizes, B, T);
  kernel.forward(p, { x }, { h: h0 }, out);
  kernel.dispose();
  return Array.from(out.h);
}
`;
const ENTRY = `import * as kernel from "./mycell.cell.ts?kernel";
import { forward } from "./run.js";
export const name = kernel.spec.name;
export const h = () => forward(kernel);
`;

let dir: string;
const at = (...p: string[]) => join(dir, ...p);
const write = (p: string, text: string) => { mkdirSync(join(at(p), ".."), { recursive: true }); writeFileSync(at(p), text); };
/** The bundle's forward, run by a Node process of its own. */
const runBundle = async (file: string) =>
  JSON.parse(await runNodeOk(["--input-type=module", "-e", `const m = await import(${JSON.stringify(pathToFileURL(file).href)}); console.log(JSON.stringify({ name: m.name, h: m.h() }));`])) as { name: string; h: number[] };

// A browser build, as a web app's (lib mode: one file, which Node runs too); the runtime needs no setting
const viteConfig = (entry: string, outDir: string) => ({
  root: dir,
  configFile: false as const,
  logLevel: "silent" as const,
  plugins: [vitePlugin()],
  resolve: { conditions: ["cellforge-source", "module", "browser", "development|production"] },
  build: { lib: { entry: at(entry), formats: ["es" as const], fileName: "bundle" }, outDir: at(outDir), minify: false, emptyOutDir: true },
});

/**
 * A Vite watch build that writes each of `cells` to `cell` after each build, and prints the cell
 * name in each bundle (or the build's error) once all are built.
 */
const WATCH = (config: object, cell: string, bundle: string, cells: string[]) => `import { readFileSync, writeFileSync } from "node:fs";
import { build } from "vite";
import { vite as cellforge } from "cellforge/plugin";

const config = ${JSON.stringify(config)};
const cells = ${JSON.stringify(cells)};
const seen = [];
setTimeout(() => { console.log(JSON.stringify([...seen, "timed out"])); process.exit(1); }, 240_000).unref();
const watcher = await build({ ...config, plugins: [cellforge()], build: { ...config.build, watch: {} } });
watcher.on("event", (ev) => {
  if (ev.code === "BUNDLE_END") seen.push(/\\bspec = \\{\\s*name: "([^"]+)"/.exec(readFileSync(${JSON.stringify(bundle)}, "utf8"))?.[1] ?? "no spec");
  else if (ev.code === "ERROR") seen.push(ev.error.message);
  else return;
  if (seen.length <= cells.length) writeFileSync(${JSON.stringify(cell)}, cells[seen.length - 1]);
  else { console.log(JSON.stringify(seen)); void watcher.close(); }
});
`;

let expected: number[];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cellforge-plugin-"));
  write("package.json", JSON.stringify({ name: "my-app", type: "module", private: true }));
  mkdirSync(at("node_modules"));
  symlinkSync(ROOT, at("node_modules", "cellforge"), "dir");
  write("mycell.cell.ts", CELL(GOOD));
  write("bad.cell.ts", CELL(BAD));
  write("run.js", RUN);
  write("entry.ts", ENTRY);
  write("bad-entry.ts", ENTRY.replace("./mycell.cell.ts", "./bad.cell.ts"));
  // the same kernel, from kernelModule, run directly
  const direct = await kernelModule(at("mycell.cell.ts"), dir);
  write("direct.ts", direct.ts);
  const { forward } = (await import(pathToFileURL(at("run.js")).href)) as { forward: (k: unknown) => number[] };
  expected = forward(await import(pathToFileURL(at("direct.ts")).href));
  expect(expected).toHaveLength(5 * 2 * 4);
}, 240_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("vite", () => {
  it("bundles a cell's ?kernel import as its kernel, which runs as kernelModule's does", async () => {
    await viteBuild(viteConfig("entry.ts", "out-vite"));
    expect(await runBundle(at("out-vite", "bundle.js"))).toEqual({ name: "mycell", h: expected });
  }, 240_000);

  it("fails the build on a mistake in the cell, with cellforge's message: file, line and column", async () => {
    const e = await viteBuild(viteConfig("bad-entry.ts", "out-bad")).then(() => undefined, (e: Error) => e);
    expect(e).toBeInstanceOf(Error);
    expect(e!.message).toContain(`${at("bad.cell.ts")}:12:22: error in cell "mycell": unknown symbol "Uq"`);
    expect(e!.message).not.toMatch(/^\s+at /m);
  }, 120_000);

  it("regenerates the kernel when the cell file changes, in a watch build in a Node process, and goes on past a mistake", async () => {
    // Node and tsx, as a user's build runs: the plugin from "cellforge/plugin", the cells imported by Node
    write("watched.cell.ts", CELL(GOOD, "first"));
    write("watch-entry.ts", ENTRY.replace("./mycell.cell.ts", "./watched.cell.ts"));
    symlinkSync(join(ROOT, "node_modules", "vite"), at("node_modules", "vite"), "dir");
    const { plugins: _, ...config } = viteConfig("watch-entry.ts", "out-watch");
    write("watch.mjs", WATCH(config, at("watched.cell.ts"), at("out-watch", "bundle.js"), [CELL(GOOD, "second"), CELL(BAD, "third"), CELL(GOOD, "fourth")]));
    const out = await runNodeOk(["--conditions=cellforge-source", "--import", "tsx", at("watch.mjs")], { cwd: ROOT });
    const seen = JSON.parse(out.trim().split("\n").at(-1)!) as string[];
    expect(seen).toHaveLength(4);
    expect(seen.slice(0, 2)).toEqual(["first", "second"]);
    expect(seen[2]).toContain(`${at("watched.cell.ts")}:12:22: error in cell "third": unknown symbol "Uq"`);
    expect(seen[3]).toBe("fourth");
  }, 300_000);
});

describe("esbuild", () => {
  const options = (entry: string, outfile: string) => ({
    absWorkingDir: dir, entryPoints: [at(entry)], outfile: at(outfile), bundle: true, format: "esm" as const, platform: "node" as const,
    conditions: ["cellforge-source"], plugins: [esbuildPlugin()], logLevel: "silent" as const,
  });

  it("bundles a cell's ?kernel import as its kernel, which runs as kernelModule's does", async () => {
    await esbuildBuild(options("entry.ts", "out-esbuild/bundle.js"));
    expect(await runBundle(at("out-esbuild", "bundle.js"))).toEqual({ name: "mycell", h: expected });
  }, 240_000);

  it("fails the build on a mistake in the cell, with cellforge's message: file, line and column", async () => {
    const e = await esbuildBuild(options("bad-entry.ts", "out-bad/bundle.js")).then(() => undefined, (e: Error & { errors?: { text: string }[] }) => e);
    expect(e?.errors).toHaveLength(1);
    expect(e!.errors![0]!.text).toContain(`${at("bad.cell.ts")}:12:22: error in cell "mycell": unknown symbol "Uq"`);
    expect(e!.message).not.toMatch(/^\s+at /m);
  }, 120_000);
});

// Bundle the page: browser.ts and what it imports (cellforge/nn, the runtime, the kernels) into
// browser.js, beside index.html and the model.cfm that train.ts wrote. With --serve, serve the folder.
//
//   node --conditions=cellforge-source --import tsx examples/layers/build.ts [folder] [--serve]   (in this repository)
//   npx tsx build.ts [folder] [--serve]                                                          (in a project of your own)
import { copyFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build, context } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url)), args = process.argv.slice(2);
const out = resolve(args.find((a) => !a.startsWith("--")) ?? here);
if (out !== resolve(here)) copyFileSync(resolve(here, "index.html"), resolve(out, "index.html"));
const options: BuildOptions = {
  entryPoints: [resolve(here, "browser.ts")], outfile: resolve(out, "browser.js"),
  bundle: true, format: "esm", platform: "browser", target: "es2022", logLevel: "warning",
  // resolve packages as this Node process does: in the cellforge repository it runs with
  // --conditions=cellforge-source, which points "cellforge/nn" at its sources
  conditions: process.execArgv.flatMap((a) => (a.startsWith("--conditions=") ? [a.slice("--conditions=".length)] : [])),
};
await build(options);
console.log(`wrote ${resolve(out, "browser.js")}`);
if (args.includes("--serve")) {
  const { port } = await (await context(options)).serve({ servedir: out, host: "127.0.0.1", port: 8000 });
  console.log(`open http://127.0.0.1:${port}/ (Ctrl-C stops)`);
}

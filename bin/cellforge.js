#!/usr/bin/env node
// The command. In a checkout it runs the TypeScript sources (tsx registers the loader, so there is
// no build step); in an installed package, the compiled JavaScript in dist/. Either way tsx loads
// the user's cells, which are TypeScript files.
import { existsSync } from "node:fs";
import { register } from "tsx/esm/api";

// `cellforge show gru | head` closes the pipe early: that is not an error.
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});
register();
const source = new URL("../cli/main.ts", import.meta.url);
const inCheckout = existsSync(source);
// "cellforge" and "cellforge/runtime" resolve to this copy's own modules before anything loads a
// built-in cell (the converters import dsl/, whose cells import "cellforge"): in a checkout there is
// no dist/ for the package's exports to point to.
const { hookModules } = await import(inCheckout ? "../src/load.ts" : "../dist/src/load.js");
hookModules();
const { main } = await import(inCheckout ? source.href : new URL("../dist/cli/main.js", import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));

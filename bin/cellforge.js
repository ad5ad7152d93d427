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
const { main } = await import(existsSync(source) ? source.href : new URL("../dist/cli/main.js", import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx registers the loader): no build step.
import { register } from "tsx/esm/api";

// `cellforge show gru | head` closes the pipe early: that is not an error.
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});
register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));

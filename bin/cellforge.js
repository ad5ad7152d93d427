#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx registers the loader): no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../codegen/cli.ts");
process.exitCode = await main(process.argv.slice(2));

// Two tiers, as vitest projects: `npm run test:unit` (project "unit"), `npm run test:e2e` (project
// "e2e"), and `npm test` runs both, unit first (sequence.groupOrder), e2e after it.
//
// unit: logic and property tests, in worker threads that keep their module cache between files; the
//       tier took 19-27 s on a quiet 2-core machine (2026-12-02), 56 s at load 5.
// e2e:  what starts processes (the CLI, worker threads, child processes), generates or typechecks
//       kernels, the browser, the PyTorch and tfjs comparisons, the fuzz tier and the kernel gate.
// A test file is unit unless it is listed in E2E; the times that decided each file's tier are in
// README.md, "Tests".
import { defineConfig } from "vitest/config";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const E2E = [
  "backends", // a planted backend's kernels generated, checked and gated (one test 21 s: loading the generator)
  "bench-zoo-torch", // the zoo bench's PyTorch peers in Python subprocesses, float64 (about 1 s of import torch each)
  "bench-zoo", // the zoo bench's peers' layouts, and its jax-js peer against generated kernels (7 s)
  "browser", // headless Chromium (skipped, with the reason, when there is none)
  "checkpointed-bptt", // checkpointed kernels generated, proven and run against the whole backward, both backends (8 s)
  "cli", // every command, spawned
  "convert-safetensors-torch", // safetensors written and read by Python and torch, train --init spawned
  "codegen", // generate --check in a copied checkout, tsc over the repository, spawned commands
  "example-layers", // trains the README's layers example (28-74 s), bundles its page and runs it in headless Chromium
  "escape", // emits and typechecks kernels for each planted vector
  "export-pytorch", // exported PyTorch modules vs the reference, gradcheck, jit, two-process DDP (15-24 s; DDP 7-12 s)
  "export-weights", // cellforge train -> the exported PyTorch module -> train --init, in child processes (93-207 s)
  "fuzz", // the fuzz tier: 200 cells in child processes
  "fuzz-grammar", // includes the fuzz tier's planted failure, in two child processes
  "fuzz-regressions", // every fixture's kernels generated and run
  "generate", // generate in a project of its own, spawned, and --watch
  "heads-kernels", // sLSTM's and four headed forms' kernels on both backends (16 s)
  "hostile", // hostile inputs to every command, spawned, many at once (about 160 s)
  "hostile-kernels", // kernels generated for hostile cells and run, both backends (about 60 s)
  "kernelgate", // planted wrong kernels, spawned commands, typechecking, the private cache
  "limits", // x^1048576 compiled and run, a cell at every limit through show and check, spawned
  "lowering", // kernels generated and checked for each form of a product (96 s)
  "names", // kernels generated for every reserved word in every role (116 s, one test)
  "nn-file", // the Python reader of model files, in child processes (about 2 s)
  "nn-init", // kernels of cells with glorot and orthogonal parameters emitted and typechecked (16-45 s)
  "optable", // a kernel generated and checked for every tensor op (43 s)
  "plugin", // Vite and esbuild builds of a user's cell through cellforge/plugin, a Vite watch build in a child process (27-47 s at load 5-6, the watch 15-30 s)
  "package", // npm pack, four projects installing the tarball, generate, tsc, esbuild and Vite builds, the plugin in Vite, esbuild, webpack and Rollup and a webpack watch, Chromium (496 s at load 11-13; its setup 48-94 s)
  "readme", // README.md executed: every command parsed by the CLI, its sections run in copies of the checkout (479-890 s at load 27-31)
  "scalars-constraints-kernels", // kernels of the scalar-input and D = H fixtures, both backends (about 10 s a cell)
  "transpose-kernels", // kernels of cells with W', W - W' and eye, both backends (11-20 s)
  "stable", // kernels of a cell run at inputs of ±1000, and a float32 LSTM from c = ±1e30, both backends (20-60 s)
  "tfjs", // the tfjs comparison
  "torch", // the PyTorch comparison (fixtures, through the generated kernels)
  "train", // training runs, a checkpoint after SIGINT in a child process
  "wasm", // worker threads, a process without SIMD
  "wasm-ops", // wasm kernels generated for every elementwise op (72 s)
  "zoo", // the zoo's generated kernels against the reference
].map((f) => `test/${f}.test.ts`);
// A renamed file must not fall into the unit tier unnoticed.
for (const f of E2E) if (!existsSync(fileURLToPath(new URL(f, import.meta.url)))) throw new Error(`vitest.config.ts: E2E lists ${f}, which does not exist`);

export default defineConfig({
  resolve: {
    // cells import { defineCell } from "cellforge", and kernels import "cellforge/runtime": the package's sources
    alias: [
      { find: /^cellforge$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
      { find: /^cellforge\/runtime$/, replacement: fileURLToPath(new URL("./runtime/index.ts", import.meta.url)) },
      { find: /^cellforge\/plot$/, replacement: fileURLToPath(new URL("./src/train/fitplot.ts", import.meta.url)) },
      { find: /^cellforge\/nn$/, replacement: fileURLToPath(new URL("./nn/index.ts", import.meta.url)) },
    ],
  },
  test: {
    // The unit tier's threads keep their module cache from file to file. vitest 3 reads a pool's
    // isolation from the root config only, so this is set here, for the threads pool, which only the
    // unit tier uses: the end-to-end tier keeps its default, a fresh process for each file. Importing
    // mathjs takes 1.4-2.2 s; imported once per file it was half of the unit tier's 67-72 s.
    poolOptions: { threads: { isolate: false } },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: E2E,
          sequence: { groupOrder: 0 },
          pool: "threads",
          // Measured on the 2-core machine with other jobs holding the load at 24-33: the slowest unit
          // test without a timeout of its own 6.2 s (errors.test.ts, random equations; 5.2 s in a second
          // run), the slowest hook 0.8 s (interop.test.ts's beforeAll, loading 14 cells). About 10x and
          // 75x that. (property.test.ts sets its own: 32.6 s measured at load 30.)
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: E2E,
          sequence: { groupOrder: 1 },
          // Measured on the 2-core machine while other work held the load at 10-15: a spawned CLI command
          // 30-60 s, generate --check in a copied checkout 130 s, the fuzz tier's planted failure 56 s.
          // Tests that take longer set their own timeout from their own measurement.
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});

import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

export default defineConfig({
  resolve: {
    // cells import { defineCell } from "cellforge": the package itself
    alias: { cellforge: fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
  },
  test: {
    include: ["test/**/*.test.ts"],
    // Measured on the 2-core machine while other work held the load at 10-15: a spawned CLI command
    // 30-60 s, generate --check in a copied checkout 130 s, the fuzz tier's planted failure 56 s.
    // Tests that take longer set their own timeout from their own measurement.
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});

// `npm run build` (and `prepack`): the package's JavaScript and declarations in dist/, by TypeScript's
// own compiler (tsconfig.build.json: relative imports rewritten from .ts to .js). The sources stay
// the truth in a checkout; dist/ is what an installed package runs.
import { rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });

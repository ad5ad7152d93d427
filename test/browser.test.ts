// A generated kernel in a browser: `npm run browser-check` (scripts/browser-check.ts) bundles
// generated/gru.ts as it is, runs it in a page in headless Chromium on the wasm and the ts path, and
// compares with Node's numbers for the same case. It needs Debian's chromium, which .ci/run installs
// when it is missing; without it this test is reported skipped, and says why.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runNode } from "./spawn.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? "" : `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`;
if (missing) console.warn(`SKIPPED test/browser.test.ts: ${missing}`);

describe("a generated kernel in a browser", () => {
  it.skipIf(missing)(`generated/gru.ts in headless Chromium gives Node's numbers on both paths${missing ? ` (skipped: ${missing})` : ""}`, async () => {
    const r = await runNode(["--import", "tsx", join(ROOT, "scripts", "browser-check.ts")], { cwd: ROOT });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^wasm: the page ran on wasm, /m);
    expect(r.stdout).toMatch(/^ts: the page ran on ts, /m);
    expect(r.stdout).toMatch(/: PASS$/m);
    // Not measured here (this machine has no Chromium): the script bounds Chromium at 60 s and the
    // bundle takes seconds, so 180 s leaves room for a loaded 2-core machine.
  }, 180_000);
});

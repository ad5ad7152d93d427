// The command line, run as a user runs it: `node bin/cellforge.js …` in a child process, from the
// checkout, on built-in cells, on fixture files and on a .ts cell written outside the checkout that
// imports { defineCell } from "cellforge". The commands run concurrently (each one is a Node start).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "cellforge.js");
const BROKEN = "test/fixtures/cells/broken.ts";
const JSON_CELL = "test/fixtures/cells/gru.json";
const BUILTIN = ["gru", "gru-cs224n", "lstm", "rnn"];

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

function cellforge(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A dependency's stack trace or Node's own error output: never shown for a user's mistake. */
const STACK = /^\s+at |node:internal|ERR_[A-Z_]+/m;

// The README's MGU, written outside the checkout: `cellforge` must resolve to this package there.
const OUTSIDE = mkdtempSync(join(tmpdir(), "cellforge-cli-"));
const MGU = join(OUTSIDE, "mgu.ts");
writeFileSync(MGU, `import { defineCell } from "cellforge";

export default defineCell({
  name: "mgu",
  doc: "Minimal gated unit, Zhou et al. 2016 (arXiv 1603.09420)",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wf: ["H", "D"], Uf: ["H", "H"], bf: "H", Wh: ["H", "D"], Uh: ["H", "H"], bh: "H" },
  equations: \`
    f  = sigmoid(Wf*x + Uf*h + bf)
    n  = tanh(Wh*x + Uh*(f .* h) + bh)
    h' = (1 - f) .* h + f .* n
  \`,
});
`);
afterAll(() => rmSync(OUTSIDE, { recursive: true, force: true }));

// Measured with the eight commands started at once on the 2-core machine while other jobs held the
// load at 25-30: 71-267 s each, and one (list --json) past the 300 s default; 600 s is twice that.
describe.concurrent("cellforge CLI", { timeout: 600_000 }, () => {
  it("show gru: forward equations, the derived backward with dWhz, the saved set and the parameter count", async ({ expect }) => {
    const r = await cellforge("show", "gru");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^gru: PyTorch nn\.GRU/);
    expect(out).toMatch(/^forward:$/m);
    expect(out).toMatch(/^\s+z\s+= sigmoid\(Wiz\*x \+ biz \+ Whz\*h \+ bhz\)$/m);
    expect(out).toMatch(/^\s+h'\s+= \(1 - z\) \.\* n \+ z \.\* h$/m);
    expect(out).toMatch(/^backward \(derived, simplified\): upstream dh'/m);
    expect(out).toMatch(/^\s+dWhz\s+= outer\(dz_pre, h\)\s+# grad of: z\s+= sigmoid\(/m);
    expect(out).toMatch(/^\s+dn\s+= dh' \.\* \(1 - z\)/m);
    expect(out).toMatch(/^\s+dz\s+= dh' \.\* \(h - n\)/m);
    expect(out).toMatch(/^\s+dh\s+= /m);
    // forward before backward, and the saved set in between
    expect(out.indexOf("forward:")).toBeLessThan(out.indexOf("saved for the backward"));
    expect(out.indexOf("saved for the backward")).toBeLessThan(out.indexOf("backward (derived"));
    // 3H(D+H+2) at D = H = 128 (CELLS.md)
    expect(out).toContain(`parameters: 3*D*H + 3*H^2 + 6*H = ${(3 * 128 * (128 + 128 + 2)).toLocaleString("en-US")}`);
  });

  it("check lstm: a passing table for every parameter, input and state, exit 0", async ({ expect }) => {
    const r = await cellforge("check", "lstm");
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(STACK);
    const out = r.stdout;
    expect(out).toMatch(/^gradient check: lstm\s+sizes D=3 H=4\s+B=2 T=3\s+full mode/m);
    expect(out).toContain("pass rule: |analytic - numeric| <= atol + rtol*|numeric|");
    for (const row of ["Wii", "Whi", "bho", "x", "h", "c"]) expect(out).toMatch(new RegExp(`^\\s+(param|input|initial)\\s+${row}\\s+\\[.*\\bok$`, "m"));
    expect(out).not.toMatch(/FAIL/);
    expect(out).toMatch(/^PASS$/m);
    expect(out).toMatch(/^lstm\s.*\bPASS$/m);
    expect(out).toMatch(/^1 passed, 0 failed/m);
  });

  it("check of a cell with an unknown symbol: exit 1, the file, line and column, a caret, no stack trace", async ({ expect }) => {
    const r = await cellforge("check", BROKEN);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toMatch(STACK);
    const lines = readFileSync(join(ROOT, BROKEN), "utf8").split("\n");
    const line = lines.findIndex((l) => l.includes("Uq*h"));
    const col = lines[line]!.indexOf("Uq") + 1;
    const err = r.stderr.split("\n");
    expect(err[0]).toBe(`${BROKEN}:${line + 1}:${col}: error in cell "broken": unknown symbol "Uq" (did you mean Uz?)`);
    expect(err[1]).toContain("z  = sigmoid(Wz*x + Uq*h + bz)");
    // the caret sits under Uq
    expect(err[2]!.indexOf("^^")).toBe(err[1]!.indexOf("Uq"));
    expect(err[2]!.trim()).toBe("^^");
  });

  it("list --json: parses, lists the 4 built-in cells with parameter counts as CELLS.md gives them", async ({ expect }) => {
    const r = await cellforge("list", "--json");
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { name: string; source: string; params: number; paramFormula: string; forwardFlops: number; backwardFlops: number; savedFloats: number }[];
    expect(rows.length).toBeGreaterThanOrEqual(4);
    const by = new Map(rows.map((x) => [x.name, x]));
    for (const n of BUILTIN) expect(by.has(n), n).toBe(true);
    const H = 128, D = 128;
    expect(by.get("rnn")!.params).toBe(H * D + H * H + 2 * H);
    expect(by.get("gru-cs224n")!.params).toBe(3 * H * (D + H));
    expect(by.get("gru")!.params).toBe(3 * H * (D + H + 2));
    expect(by.get("lstm")!.params).toBe(4 * H * (D + H + 2));
    // GRU saves z, r, Whn*h + bhn and n; LSTM its four gates and tanh(c'): H floats each
    expect(by.get("gru")!.savedFloats).toBe(4 * H);
    expect(by.get("lstm")!.savedFloats).toBe(5 * H);
    for (const x of rows) {
      expect(x.source.length).toBeGreaterThan(0);
      expect(x.backwardFlops).toBeGreaterThan(x.forwardFlops);
    }
  });

  it("a .ts cell outside the checkout importing { defineCell } from \"cellforge\": show", async ({ expect }) => {
    const r = await cellforge("show", MGU);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mgu: Minimal gated unit/);
    expect(r.stdout).toContain(`file: ${MGU}`);
    expect(r.stdout).toMatch(/^\s+h'\s+= \(1 - f\) \.\* h \+ f \.\* n$/m);
    expect(r.stdout).toMatch(/^\s+dWf\s+= outer\(df_pre, x\)/m);
    expect(r.stdout).toContain("parameters: 2*D*H + 2*H^2 + 2*H"); // 2H(D+H+1), CELLS.md §5
  });

  it("check of that .ts cell and of a .json cell together: both pass, exit 0", async ({ expect }) => {
    const r = await cellforge("check", MGU, JSON_CELL);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mgu\s.*\bPASS$/m);
    expect(r.stdout).toMatch(/^gru-json\s.*\bPASS$/m);
    expect(r.stdout).toMatch(/^2 passed, 0 failed/m);
  });

  // KNOWN BUG (check/kernelcheck.ts + src/load.ts): `check` of .json cells alone crashes with
  // ERR_REQUIRE_CYCLE_MODULE and a stack trace: the generated kernel (a .ts file in the temp dir) is
  // imported before anything registered the ESM load hook, which only a .ts cell file installs, so
  // tsx loads it as CommonJS. Together with a .ts cell (above) it works. When this is fixed, this
  // test starts failing: remove `.fails`.
  it("check of a .json cell alone: passes, exit 0", async ({ expect }) => {
    const r = await cellforge("check", JSON_CELL);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^gru-json\s.*\bPASS$/m);
  });

  it("an unknown cell name: exit 1, a clear message listing the cells, no stack trace", async ({ expect }) => {
    const r = await cellforge("show", "nosuch");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).toMatch(/^no cell named "nosuch" in dsl\/ \(cells: [^)]*\)/);
    const listed = /\(cells: ([^)]*)\)/.exec(r.stderr)![1]!.split(", ");
    expect(listed.sort()).toEqual(expect.arrayContaining(BUILTIN));
  });
});

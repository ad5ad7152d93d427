// Every failure the differential fuzzer found, minimized (test/fixtures/fuzz/*.json, cell files
// that `node bin/cellforge.js check <file>` also runs): each must compile, its derived gradients
// must match finite differences, and every kernel path must pass checkKernels on the case the
// fuzzer found it with (the `[case B= T= seed=]` tag of its doc line).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CellSpec, compileCell } from "../src/cell.ts";
import { randomCase } from "../src/sequence.ts";
import { checkGradients } from "../check/gradcheck.ts";
import { checkKernels } from "../check/kernelcheck.ts";

const DIR = join(import.meta.dirname, "fixtures", "fuzz");
const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

describe("fuzz regressions (test/fixtures/fuzz)", () => {
  it("has fixtures", () => expect(files.length).toBeGreaterThan(0));
  it.each(files)("%s", async (file) => {
    const spec = JSON.parse(readFileSync(join(DIR, file), "utf8")) as CellSpec;
    const m = /\[case B=(\d+) T=(\d+) seed=(\d+)\]/.exec(spec.doc);
    const [B, T, seed] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [2, 3, 1];
    const cell = compileCell(spec);
    const c = randomCase(cell, { B, T, seed });
    const ref = checkGradients(cell, c, { mode: "fast" });
    expect(ref.rows.filter((r) => !r.pass).map((r) => `${r.group} ${r.name}`), `${spec.doc}: reference gradient vs finite differences`).toEqual([]);
    const rows = await checkKernels(cell, c);
    expect(rows.filter((r) => !r.pass).map((r) => `${r.what}: error ${r.maxErr.toExponential(2)} (${r.rule})`), spec.doc).toEqual([]);
  }, 60_000); // measured: 0.5–3 s a fixture, 14 s for the first (loading the code generator)
});

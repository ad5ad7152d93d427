// The README's "Cells from recent papers": each cell there is a fixture file, character for
// character; each compiles and its derived gradients pass the check against finite differences; and
// the forward pass the README pastes from `show` is the one printed now.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadCell } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";
import { checkGradients } from "../check/gradcheck.ts";
import { formatLines, forwardLines } from "../src/print.ts";

const readme = readFileSync("README.md", "utf8");
const start = readme.indexOf("## Cells from recent papers");
const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
const blocks = [...section.matchAll(/```ts\n([^]*?)```/g)].map((m) => m[1]!);
const files = blocks.map((b) => /^\/\/ (test\/fixtures\/cells\/[\w-]+\.ts)\n/.exec(b)?.[1]);

describe("the README's cells from recent papers", () => {
  it("are three fixture files, as written there", () => {
    expect(start).toBeGreaterThan(0);
    expect(files).toEqual(["test/fixtures/cells/paper-antisymmetric.ts", "test/fixtures/cells/paper-cfc.ts", "test/fixtures/cells/paper-sru.ts"]);
    blocks.forEach((b, i) => expect(readFileSync(files[i]!, "utf8"), files[i]).toBe(b));
  });

  for (const [i, file] of ["paper-antisymmetric", "paper-cfc", "paper-sru"].entries())
    it(`${file} compiles, prints the forward pasted there, and its gradients pass the check`, async () => {
      const cell = await loadCell(`test/fixtures/cells/${file}.ts`);
      expect(cell.warnings).toEqual([]);
      expect(section).toContain(formatLines(forwardLines(cell)));
      for (const c of [{ B: 2, T: 3 }, { B: 3, T: 4, sizes: { H: 5 } }]) {
        const r = checkGradients(cell, randomCase(cell, { ...c, ...(c.sizes ? { sizes: { ...cell.defaults, ...c.sizes } } : {}), seed: 11 + i }));
        expect(r.pass, `${file} B=${c.B} T=${c.T}`).toBe(true);
      }
    });

  it("say what each cell needs: a transpose and an identity, a scalar input, a size equality", async () => {
    const [anti, cfc, sru] = await Promise.all(["paper-antisymmetric", "paper-cfc", "paper-sru"].map((f) => loadCell(`test/fixtures/cells/${f}.ts`)));
    expect(anti!.equations[0]!.text).toContain("(W - W' - gamma*eye(H))*h");
    expect(cfc!.scalarInputs).toEqual(["dt"]);
    expect(sru!.constraints.map((c) => c.text)).toEqual(["D = H"]);
  });
});

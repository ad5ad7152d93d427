// `cellforge generate` for a user's cells, in a project of their own: the config (package.json's
// "cellforge" field, cellforge.config.json, or the command line), files, folders and globs, the
// headers, --check on stale and stray files, --js, and --watch going on past a mistake.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../src/load.ts";
import { LoadError } from "../src/load.ts";
import { cellFiles, configFromArgs, findConfig } from "../cli/generate.ts";
import { runNode } from "./spawn.ts";

const CLI = join(ROOT, "bin", "cellforge.js");
const MGU = (name: string, extra = "") => `import { defineCell } from "cellforge";

export default defineCell({
  name: "${name}",
  doc: "a minimal gated unit (Zhou et al. 2016), a user's copy",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wf: ["H", "D"], Uf: ["H", "H"], bf: "H", Wh: ["H", "D"], Uh: ["H", "H"], bh: "H" },
  equations: \`
    f  = sigmoid(Wf*x + Uf*h + bf)
    n  = tanh(Wh*x + Uh*(f .* h) + bh)${extra}
    h' = (1 - f) .* h + f .* n
  \`,
});
`;

let dir: string;
const at = (...p: string[]) => join(dir, ...p);
const write = (p: string, text: string) => { mkdirSync(join(at(p), ".."), { recursive: true }); writeFileSync(at(p), text); };
const thrown = (f: () => unknown): string => {
  try { f(); } catch (e) { expect(e).toBeInstanceOf(LoadError); return (e as Error).message; }
  throw new Error("did not throw");
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cellforge-project-"));
  write("package.json", JSON.stringify({ name: "my-project", type: "module", scripts: { kernels: "cellforge generate" }, cellforge: { cells: ["src/cells"], out: "src/kernels" } }));
  write("src/cells/mgu.ts", MGU("mgu"));
  write("src/cells/notes.md", "not a cell");
  write("other/gated.cell.ts", MGU("gated"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the config", () => {
  it("comes from package.json's cellforge field, paths relative to it, with the npm script that runs it", () => {
    const cfg = findConfig(at("src", "cells")); // from a subfolder: the nearest package.json
    expect(cfg.root).toBe(dir);
    expect(cfg.out).toBe(at("src", "kernels"));
    expect(cfg.regenerate).toEqual({ run: "npm run kernels", check: "npm run kernels -- --check" });
  });

  it("or from cellforge.config.json, which wins", () => {
    const sub = at("sub");
    write("sub/cellforge.config.json", JSON.stringify({ cells: "../other/*.cell.ts", out: "k", js: true }));
    const cfg = findConfig(sub);
    expect(cfg.out).toBe(join(sub, "k"));
    expect(cfg.js).toBe(true);
    expect(cfg.regenerate.run).toBe("npx cellforge generate");
  });

  it("names the file and the key when it is wrong", () => {
    write("bad/package.json", JSON.stringify({ cellforge: { cells: ["x"], out: "k", standalon: true } }));
    expect(thrown(() => findConfig(at("bad")))).toMatch(/bad\/package\.json: unknown key "standalon" \(the keys are cells, out, standalone, js, runtime\)/);
    write("bad/package.json", JSON.stringify({ cellforge: { cells: 3, out: "k" } }));
    expect(thrown(() => findConfig(at("bad")))).toMatch(/"cells" is a file, folder or glob/);
    write("bad/package.json", "{ not json");
    expect(thrown(() => findConfig(at("bad")))).toMatch(/bad\/package\.json: not valid JSON/);
  });

  it("from the command line needs --out, and its header command is the command given", () => {
    expect(thrown(() => configFromArgs(["src/cells"], {}, dir))).toMatch(/say where the kernels go: cellforge generate src\/cells --out <folder>/);
    const cfg = configFromArgs(["src/cells", "my cells/*.ts"], { out: "k", js: true }, dir);
    expect(cfg.regenerate.run).toBe("npx cellforge generate src/cells 'my cells/*.ts' --out k --js");
  });

  it("finds cells in folders, by glob and by name, and refuses what is not there", async () => {
    const cfg = (cells: string[]) => ({ ...configFromArgs(cells, { out: "k" }, dir) });
    expect(await cellFiles(cfg(["src/cells"]))).toEqual([at("src", "cells", "mgu.ts")]);
    expect(await cellFiles(cfg(["**/*.cell.ts"]))).toEqual([at("other", "gated.cell.ts")]);
    expect(await cellFiles(cfg(["other/gated.cell.ts", "src/cells/mgu.ts", "src/cells"]))).toHaveLength(2);
    await expect(cellFiles(cfg(["nowhere"]))).rejects.toThrow(/no file or folder .*nowhere \(in the command line\)/);
    await expect(cellFiles(cfg(["src/cells/notes.md"]))).rejects.toThrow(/is not a cell file/);
    await expect(cellFiles(cfg(["src/**/*.py"]))).rejects.toThrow(/matches no cell files/);
    write("more/mgu.ts", MGU("mgu2"));
    await expect(cellFiles(cfg(["src/cells", "more"]))).rejects.toThrow(/would both write the kernel mgu: rename one/);
  });
});

describe("cellforge generate in a project", () => {
  it("writes proven kernels headed with their source and command; --check passes, then names a stale and a stray file", async () => {
    const gen = (...a: string[]) => runNode([CLI, "generate", ...a], { cwd: dir });
    const r = await gen();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("wrote src/kernels/mgu.ts");
    expect(r.stderr).toContain("generate: [1/1] src/cells/mgu.ts"); // progress, on stderr
    const kernel = readFileSync(at("src", "kernels", "mgu.ts"), "utf8");
    expect(kernel.split("\n").slice(0, 2)).toEqual([
      '// Generated by cellforge from src/cells/mgu.ts: kernels for the cell "mgu".',
      "// Do not edit: regenerate with `npm run kernels` (check with `npm run kernels -- --check`).",
    ]);
    expect(kernel).toMatch(/} from "cellforge\/runtime";/);
    expect(kernel).not.toMatch(/from "\.\.?\//); // nothing else
    expect((await gen("--check")).status).toBe(0);

    write("src/cells/mgu.ts", MGU("mgu", "\n    q  = 2 * f"));
    writeFileSync(at("src", "kernels", "old.ts"), kernel); // a kernel whose cell is gone
    writeFileSync(at("src", "kernels", "mine.ts"), "export const mine = 1;\n"); // not cellforge's
    const c = await gen("--check");
    expect(c.status).toBe(1);
    expect(c.stdout).toContain("regenerate with `npm run kernels`");
    expect(c.stdout).toMatch(/^ {2}src\/kernels\/mgu\.ts$/m);
    expect(c.stdout).toMatch(/^ {2}src\/kernels\/old\.ts$/m);
    expect(c.stdout).not.toContain("mine.ts");
    const again = await gen();
    expect(again.stdout).toContain("removed src/kernels/old.ts");
    expect(existsSync(at("src", "kernels", "old.ts"))).toBe(false);
    expect(readFileSync(at("src", "kernels", "mine.ts"), "utf8")).toBe("export const mine = 1;\n");
  }, 240_000);

  it("loses nothing: a file cellforge did not write is never overwritten (the cell itself, with --out its own folder), and another cell's kernels in the same folder stay until their cell is gone", async () => {
    const gen = (...a: string[]) => runNode([CLI, "generate", ...a], { cwd: dir });
    write("twins/a.ts", MGU("a"));
    write("twins/b.ts", MGU("b"));
    const self = await gen("twins/a.ts", "--out", "twins");
    expect(self.status).toBe(1);
    expect(self.stderr).toMatch(/^generate: twins\/a\.ts is in the way: cellforge did not write it .*nothing was written/m);
    expect(readFileSync(at("twins", "a.ts"), "utf8")).toBe(MGU("a"));
    expect(existsSync(at("twins", "a.wat"))).toBe(false);

    expect((await gen("twins/a.ts", "--out", "shared")).status).toBe(0);
    const b = await gen("twins/b.ts", "--out", "shared");
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).not.toContain("removed");
    expect(readdirSync(at("shared")).sort()).toEqual(["a.ts", "a.wat", "b.ts", "b.wat"]);
    expect((await gen("twins/b.ts", "--out", "shared", "--check")).status).toBe(0);
    rmSync(at("twins", "a.ts"));
    const gone = await gen("twins/b.ts", "--out", "shared");
    expect(gone.stdout).toContain("removed shared/a.ts");
    expect(readdirSync(at("shared")).sort()).toEqual(["b.ts", "b.wat"]);
  }, 240_000);

  it("a cell whose defaults no kernel can hold: the defaults are named as the cell's to change, not a generator bug, and nothing is written", async () => {
    const r = await runNode([CLI, "generate", join(ROOT, "test", "fixtures", "cells", "huge-defaults.ts"), "--out", "huge"], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/huge-defaults\.ts: its kernel is proven on a case at the cell's default sizes, and a case of huge-defaults at D=1000000000, H=1000000000, B=2, T=3 needs .* of buffers .*: give the cell smaller defaults/);
    expect(r.stderr).not.toMatch(/bug in cellforge/);
    expect(existsSync(at("huge"))).toBe(false);
  }, 120_000);

  it("--js writes JavaScript and declarations, headed the same, which plain Node runs", async () => {
    const r = await runNode([CLI, "generate", "other/gated.cell.ts", "--out", "js", "--js"], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    for (const f of ["gated.js", "gated.d.ts", "gated.wat"]) expect(readFileSync(at("js", f), "utf8")).toMatch(/^(\/\/|;;) Generated by cellforge from other\/gated\.cell\.ts/);
    expect(readFileSync(at("js", "gated.d.ts"), "utf8")).toMatch(/export declare function createKernel64\(/);
    // "cellforge/runtime" resolves to this checkout through the loader hook
    write("run.mjs", `import { hookModules } from ${JSON.stringify(join(ROOT, "src", "load.ts"))};
hookModules();
const k = await import("./js/gated.js");
const kernel = k.createKernel64({ D: 2, H: 3 }, 1, 2);
const out = { h: new Float64Array(6) };
kernel.forward(k.initParams({ D: 2, H: 3 }, 1), { x: new Float64Array(4).fill(0.5) }, { h: new Float64Array(3) }, out);
console.log(out.h.every(Number.isFinite) && out.h.some((v) => v !== 0) ? "ran" : "wrong");`);
    const ran = await runNode(["--import", "tsx", at("run.mjs")], { cwd: ROOT });
    expect(ran.stdout.trim(), ran.stderr).toBe("ran");
  }, 240_000);

  it("--watch regenerates on a change, an editor's save by rename too, and a mistake is printed without ending the watch", async () => {
    const w = spawn(process.execPath, [CLI, "generate", "--watch"], { cwd: dir });
    let text = "";
    w.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
    w.stderr.setEncoding("utf8").on("data", (d: string) => (text += d));
    const seen = async (re: RegExp, ms = 120_000) => {
      for (const t0 = Date.now(); !re.test(text); await new Promise((r) => setTimeout(r, 100)))
        if (Date.now() - t0 > ms || w.exitCode !== null) throw new Error(`waited for ${re}; the watch printed:\n${text}`);
    };
    try {
      await seen(/watching src\/cells/);
      text = "";
      write("src/cells/mgu.ts", MGU("mgu", "\n    q  = f .* nope"));
      await seen(/unknown symbol "nope"|nope/);
      expect(text).toMatch(/src\/cells\/mgu\.ts:\d+:\d+/); // the file, line and column
      expect(w.exitCode).toBe(null);
      text = "";
      write("src/cells/mgu.ts", MGU("mgu-renamed")); // a change the kernel shows: "up to date" would mean the old cell was read again
      await seen(/wrote src\/kernels\/mgu\.ts/);
      // an editor's save: a new file renamed over the cell. Twice: Node's recursive watch saw the first
      // and, following the file it replaced, no other
      for (const name of ["mgu-saved", "mgu-saved-again"]) {
        text = "";
        write("src/cells/.mgu.ts.swp", MGU(name));
        renameSync(at("src", "cells", ".mgu.ts.swp"), at("src", "cells", "mgu.ts"));
        await seen(/wrote src\/kernels\/mgu\.ts/);
        expect(readFileSync(at("src", "kernels", "mgu.ts"), "utf8")).toContain(`the cell "${name}"`);
      }
    } finally {
      w.kill("SIGINT");
    }
  }, 360_000);
});

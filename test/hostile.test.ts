// A hostile user at the command line (spawned, so the e2e tier): a cell in a folder whose name holds
// a newline, quotes, a backslash, a `*`, a comment's end and non-ASCII letters works with every
// command and reaches emitted files escaped, with a regenerate command a shell reads back; a
// builder's refused activation() names the line that called it; a name too long for the file system
// is said so; eval runs the backend and precision it is given and says which; Adam at lr 1e6 is
// stopped as diverged. Never a stack trace, never "[object Object]".
//
// The spawned commands are independent: they run concurrently (the tests, and the commands within
// each), at most POOL at a time, so the file takes about as long as its slowest chains of commands.
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Ran, runNode } from "./spawn.ts";
import { assemble } from "../codegen/gemm-wasm.ts";
import { CaseError, caseToJson, readCase } from "../cli/evalcase.ts";
import { cellFiles, configFromArgs } from "../cli/generate.ts";
import { loadCell } from "../src/load.ts";
import { randomCase } from "../src/sequence.ts";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "cellforge.js");
const TMP = mkdtempSync(join(tmpdir(), "cellforge-hostile-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** At most this many commands at once: the CI machine has 2 cores, and a command spends part of its time loading. */
const POOL = 3;
let running = 0;
const waiting: (() => void)[] = [];
async function pooled<T>(f: () => Promise<T>): Promise<T> {
  if (running >= POOL) await new Promise<void>((go) => waiting.push(go));
  running++;
  try {
    return await f();
  } finally {
    running--;
    waiting.shift()?.();
  }
}
const cli = (args: readonly string[], cwd = TMP): Promise<Ran> => pooled(() => runNode([BIN, ...args], { cwd }));
/** What no message to a user may hold: a stack frame, an object printed as such. */
const clean = (text: string) => {
  expect(text).not.toMatch(/\n\s+at .*:\d+:\d+/);
  expect(text).not.toContain("[object Object]");
};
/** The word bash reads from `word` (as a user pastes it from a header). */
const bashReads = (word: string) => new Promise<string>((done, fail) =>
  execFile("bash", ["-c", `printf %s ${word}`], { encoding: "utf8", env: { ...process.env, LC_ALL: "C.UTF-8" } }, (e, out) => (e ? fail(e) : done(out))));
// measured on the loaded 2-core machine, one command at a time: generate 20-50 s, check 15-35 s,
// eval 3-8 s; run concurrently, a test waits for the others' commands too: the file's whole run, ×3
const LONG = 900_000;

/** A cell in a folder with every hostile character, and a case for it (the built-in GRU's, which it is a copy of). */
const HOSTILE_DIR = join(TMP, "a\nb'q\"\\s*/ü名");
const HOSTILE_CELL = join(HOSTILE_DIR, "gru.ts");
mkdirSync(HOSTILE_DIR, { recursive: true });
copyFileSync(join(ROOT, "dsl", "gru.ts"), HOSTILE_CELL);
const GRU_CASE = join(TMP, "gru-case.json");
/** Written once, by the hostile cell's `eval --example` (which the first test checks), for whichever test asks first. */
let gruCaseRun: Promise<Ran> | undefined;
const gruCase = () => (gruCaseRun ??= cli(["eval", HOSTILE_CELL, "--example", GRU_CASE]));

/** The largest difference between two results' numbers, walking both alike. */
function maxDiff(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) / Math.max(1, Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) {
    expect(a.length).toBe(b.length);
    return Math.max(0, ...a.map((x, i) => maxDiff(x, b[i])));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = Object.keys(b).filter((k) => k !== "backend" && k !== "precision" && k !== "cell");
    return Math.max(0, ...keys.map((k) => maxDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])));
  }
  throw new Error(`results differ in kind: ${JSON.stringify(a)?.slice(0, 40)} and ${JSON.stringify(b)?.slice(0, 40)}`);
}

describe.concurrent("hostile", () => {
  describe("a cell in a folder with a hostile name", () => {
    it("check, eval, generate and export work, and the emitted files hold the path escaped, with a command bash reads back", async () => {
      const out = join(TMP, "hostile-out"), py = join(TMP, "hostile.py");
      const [c, example, g, x] = await Promise.all([
        cli(["check", HOSTILE_CELL, "--B", "1", "--T", "1"]),
        gruCase(),
        // a path with * and a backslash is a file, not a glob (whose backslash would escape)
        cli(["generate", HOSTILE_CELL, "--out", out]),
        cli(["export", relative(TMP, HOSTILE_CELL), "--target", "pytorch", "--out", py]),
      ]);
      expect(c.stderr).toBe("");
      expect(c.status).toBe(0);
      expect(c.stdout).toMatch(/1 passed, 0 failed/);
      expect(example.status, example.stderr).toBe(0);

      const [kernel, reference] = await Promise.all([cli(["eval", HOSTILE_CELL, "--in", GRU_CASE]), cli(["eval", "gru", "--in", GRU_CASE, "--backend", "reference"])]);
      for (const r of [kernel, reference]) { clean(r.stderr); expect(r.status).toBe(0); }
      // the cell read from that folder computes what the built-in GRU's reference evaluator does
      expect(maxDiff(JSON.parse(kernel.stdout), JSON.parse(reference.stdout))).toBeLessThan(1e-12);

      clean(g.stderr);
      expect(g.status, g.stderr).toBe(0);
      for (const f of ["gru.ts", "gru.wat"]) {
        const text = readFileSync(join(out, f), "utf8");
        const comment = f.endsWith(".ts") ? "//" : ";;";
        // the header's two lines are comments: the newline is written \u000a, and "*/" cannot close a comment
        const head = text.split("\n").slice(0, 2);
        for (const line of head) expect(line.startsWith(comment), line).toBe(true);
        expect(head[0]).toContain("a\\u000ab'q\"\\s*\\/ü名/gru.ts");
        // the command that regenerates: its cell and --out are words bash reads back as they were given
        const [, cellWord, outWord] = /regenerate with `npx cellforge generate (.+) --out (\S+)` \(check with/.exec(head[1]!) ?? [];
        expect(cellWord, head[1]).toMatch(/^\$'.*'$/);
        expect(await bashReads(cellWord!)).toBe(HOSTILE_CELL);
        expect(await bashReads(outWord!)).toBe(out);
      }

      clean(x.stderr);
      expect(x.status, x.stderr).toBe(0);
      const pyHead = readFileSync(py, "utf8").split("\n").slice(0, 2);
      for (const line of pyHead) expect(line.startsWith("#"), line).toBe(true);
      const [, exportWord] = /regenerate with `cellforge export (.+) --target pytorch --out hostile\.py`/.exec(pyHead[1]!) ?? [];
      expect(await bashReads(exportWord!)).toBe(relative(TMP, HOSTILE_CELL));
    }, LONG);

    it("a path with glob characters that names a file is that file, even where its glob would match others", async () => {
      // x*/gru.ts, as a glob, matches xy/gru.ts as well; as a path it is one file; r[1].ts, as a glob, would match r1.ts only
      for (const d of ["x*", "xy"]) { mkdirSync(join(TMP, "globs", d), { recursive: true }); copyFileSync(join(ROOT, "dsl", "gru.ts"), join(TMP, "globs", d, "gru.ts")); }
      copyFileSync(join(ROOT, "dsl", "rnn.ts"), join(TMP, "globs", "r[1].ts"));
      const files = (cells: string[]) => cellFiles(configFromArgs(cells, { out: "k" }, join(TMP, "globs")));
      expect(await files(["x*/gru.ts"])).toEqual([join(TMP, "globs", "x*", "gru.ts")]);
      expect(await files(["r[1].ts"])).toEqual([join(TMP, "globs", "r[1].ts")]);
      // a pattern that names no file is still a glob
      expect(await files(["x[y]/gru.ts"])).toEqual([join(TMP, "globs", "xy", "gru.ts")]);
      expect(await files([HOSTILE_CELL])).toEqual([HOSTILE_CELL]);
    });
  });

  describe("a builder cell's refused activation()", () => {
    const cellWith = (name: string, act: string, inBody = false) => {
      const file = join(TMP, `${name}.ts`);
      writeFileSync(file, [
        'import { buildCell, add, matmul, tanh, activation } from "cellforge";',
        "",
        inBody ? "" : `const act = ${act} as any;`,
        "export default buildCell(",
        `  { name: "${name}", doc: "a builder cell", sizes: ["D", "H"], inputs: { x: "D" }, state: { h: "H" }, params: { W: ["H", "D"], U: ["H", "H"] } },`,
        "  ({ x, h, W, U }) => {",
        `    const a = ${inBody ? `(${act} as any)` : "act"}(add(matmul(W, x), matmul(U, h)));`,
        '    return { "h\'": tanh(a) };',
        "  },",
        ");",
      ].join("\n"));
      return file;
    };
    const cases: [string, string, boolean, string, RegExp][] = [
      ["badname", 'activation("2bad", "x^2")', false, ":3:13", /error: activation\("2bad", …\): its name is the string "2bad": names are ASCII letters/],
      ["numname", 'activation(42, "x")', false, ":3:13", /error: activation\(…, …\): its name is a number/],
      ["badexpr", 'activation("sq", "x^^2 +")', false, ":3:13", /error: activation\("sq", …\): its expression "x\^\^2 \+": Value expected/],
      ["unknownfn", 'activation("sq", "frob(x)")', false, ":3:13", /function "frob" is not supported in activations\n {2}hint: the functions an activation may use: sigmoid, tanh/],
      ["nonfunc", 'activation("sq", (x: number) => x * x)', false, ":3:13", /its expression is a function, not mathjs text in x\n {2}hint: write it as text/],
      ["inbody", 'activation("sq", "x^^2")', true, ":7:16", /error in cell "inbody": activation\("sq", …\): its expression "x\^\^2"/],
    ];
    it("names the file and line that called it, the problem, and exits 1", async () => {
      const shown = await Promise.all(cases.map(([name, act, inBody]) => cli(["show", cellWith(name, act, inBody)])));
      for (const [k, [name, , , at, said]] of cases.entries()) {
        const file = join(TMP, `${name}.ts`), r = shown[k]!;
        expect(r.status, name).toBe(1);
        clean(r.stderr);
        expect(r.stderr.startsWith(`${file}${at}: `), `${name}: ${r.stderr}`).toBe(true);
        expect(r.stderr, name).toMatch(said);
      }
    }, LONG);

    it("an operand that is no value of the cell is named, at its line", async () => {
      const file = cellWith("operand", 'activation("sq", "x^2")', false);
      writeFileSync(file, readFileSync(file, "utf8").replace("act(add(matmul(W, x), matmul(U, h)))", 'act("x")'));
      const r = await cli(["show", file]);
      expect(r.status).toBe(1);
      clean(r.stderr);
      expect(r.stderr).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:7:15: error in cell "operand": builder: an operand is the string "x", not a value of the cell or a number`));
    }, LONG);
  });

  describe("names too long for the file system", () => {
    it("a 300-character cell file name, and an --out of one, are said to be too long", async () => {
      const long = `${"g".repeat(300)}.ts`;
      const cmds = [["show"], ["eval", "--in", "x.json"], ["train", "--task", "adding"]];
      for (const [cmd, r] of (await Promise.all(cmds.map((cmd) => cli([cmd[0]!, `./${long}`, ...cmd.slice(1)])))).map((r, i) => [cmds[i]!, r] as const)) {
        expect(r.status, cmd[0]).toBe(1);
        clean(r.stderr);
        expect(r.stderr, cmd[0]).toMatch(/the name "g{24}…" is 303 bytes long, and a file or folder name holds at most 255/);
      }
      expect((await gruCase()).status).toBe(0);
      const r = await cli(["eval", "gru", "--in", GRU_CASE, "--backend", "reference", "--out", join(TMP, `${"r".repeat(300)}.json`)]);
      expect(r.status).toBe(1);
      clean(r.stderr);
      expect(r.stderr).toMatch(/^cellforge eval: ".*r{300}\.json": the name is too long \(a file or folder name holds at most 255 bytes\)/);
    }, LONG);
  });

  describe("eval --backend and --precision", () => {
    it("runs the kernels asked for, says which, and agrees with the reference evaluator to each precision's tolerance", async () => {
      const caseFile = join(TMP, "eval-case.json");
      expect((await cli(["eval", "rnn", "--example", caseFile])).status).toBe(0);
      const res = async (...flags: string[]) => {
        const out = join(TMP, `r${flags.join("")}.json`);
        const r = await cli(["eval", "rnn", "--in", caseFile, "--out", out, ...flags]);
        expect(r.status, flags.join(" ")).toBe(0);
        return { said: r.stdout, json: JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown> };
      };
      // the reference, the default (auto's backend in float64), ts in float64, and each backend in float32
      const f32s = ["ts", "wasm"] as const;
      const [ref, dflt, ts64, ...f32runs] = await Promise.all([res("--backend", "reference"), res(), res("--backend", "ts"), ...f32s.map((b) => res("--backend", b, "--precision", "32"))]);
      expect(ref.said).toMatch(/computed by the reference evaluator in float64/);
      expect(ref.json.backend).toBe("reference");
      expect(dflt.said).toMatch(/computed by the generated (wasm|ts) kernels in float64/);
      expect(maxDiff(dflt.json, ref.json)).toBeLessThan(1e-12);
      expect(ts64.said).toMatch(/computed by the generated ts kernels in float64/);
      expect([ts64.json.backend, ts64.json.precision]).toEqual(["ts", 64]);
      expect(maxDiff(ts64.json, ref.json)).toBeLessThan(1e-12);
      for (const [i, backend] of f32s.entries()) {
        const f32 = f32runs[i]!;
        expect(f32.said).toMatch(new RegExp(`computed by the generated ${backend} kernels in float32`));
        expect([f32.json.backend, f32.json.precision]).toEqual([backend, 32]);
        const d32 = maxDiff(f32.json, ref.json);
        // float32 rounding shows (so float32 really ran), within the kernel check's F32 tolerance
        expect(d32).toBeGreaterThan(1e-10);
        expect(d32).toBeLessThan(1e-4);
      }
    }, LONG);

    it("refuses what does not exist or does not go together, before any work (exit 2)", async () => {
      const refusals = [
        [["--backend", "cuda"], /--backend is wasm, ts, reference or auto, not "cuda"/],
        [["--precision", "16"], /--precision is 32 or 64/],
        [["--backend", "reference", "--precision", "32"], /the reference evaluator computes in float64 only/],
        [["--reference", "--backend", "ts"], /--reference is --backend reference/],
      ] as const;
      const ran = await Promise.all(refusals.map(([flags]) => cli(["eval", "gru", "--in", "nonexistent.json", ...flags])));
      for (const [i, [flags, said]] of refusals.entries()) {
        const r = ran[i]!;
        expect(r.status, flags.join(" ")).toBe(2);
        expect(r.stderr).toMatch(said);
      }
    }, LONG);
  });

  describe("divergence at the command line", () => {
    it("Adam at lr 1e6 without clipping stops, naming the step, exit 1", async () => {
      const out = join(TMP, "runaway");
      const r = await cli(["train", "gru", "--task", "adding", "--T", "10", "--hidden", "8", "--steps", "50", "--eval-every", "2", "--optimizer", "adam", "--lr", "1e6", "--clip", "0", "--out", out]);
      expect(r.status).toBe(1);
      clean(r.stderr);
      expect(r.stderr).toMatch(/training diverged at step \d+: the evaluation loss rose above 100 × .* and stayed there for 3 evaluations/);
      const log = JSON.parse(readFileSync(join(out, "log.json"), "utf8")) as { diverged?: { step: number } };
      expect(log.diverged?.step).toBeGreaterThan(0);
    }, LONG);
  });

  describe("case files", () => {
    it("refuse a key the cell does not have at any level, and say 1e999 is beyond float64, not null", async () => {
      const cell = await loadCell("gru");
      const good = JSON.parse(JSON.stringify(caseToJson(cell, randomCase(cell, { B: 2, T: 3, seed: 3 })))) as Record<string, Record<string, unknown>>;
      const bad = (f: (c: Record<string, Record<string, unknown>>) => void) => { const c = structuredClone(good); f(c); return () => readCase(cell, c); };
      expect(bad(() => {})).not.toThrow();
      expect(bad((c) => (c.cell = "gru" as never))).not.toThrow(); // a converted parameter file's field, pasted in
      expect(bad((c) => (c.cell = "lstm" as never))).toThrow(/^cell: the case is for "lstm", not gru$/);
      expect(bad((c) => (c.extra = 1 as never))).toThrow(/^extra: not a field of a case \(cell, sizes, T, B, params, inputs, initial, upstream\)$/);
      expect(bad((c) => (c.inputs!.y = [1]))).toThrow(/^inputs\.y: not one of gru's inputs \(x\)$/);
      expect(bad((c) => (c.initial!.c = [1]))).toThrow(/^initial\.c: not one of gru's states \(h\)$/);
      expect(bad((c) => (c.upstream!.q = [1]))).toThrow(/^upstream\.q: not one of gru's states and outputs \(h\)$/);
      const inf = JSON.parse(JSON.stringify(good).replace(/("Wir":\[\[)[^,\]]+/, "$11e999")) as unknown;
      expect(() => readCase(cell, inf)).toThrow(/^params\.Wir\[0\]\[0\]: expected a finite number, got Infinity \(beyond float64's range/);
      expect(() => readCase(cell, inf)).toThrow(CaseError);
    });
  });

  describe("binaryen's refusals", () => {
    it("are its message, not [object Object]", async () => {
      await expect(assemble("(modul")).rejects.toThrow(/^internal: binaryen: 1:0: error: /);
    }, LONG);
  });
});

// The command line's edges, in process: each command takes its own options and refuses the others,
// --help prints that command's help and does nothing else, a misspelled command or option gets a
// "did you mean", usage mistakes exit 2 and other mistakes 1, and a file error is a sentence.
import { describe, expect, it, vi } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../cli/main.ts";

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "", stderr = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => ((stdout += String(s)), true));
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe("the command line", () => {
  it("show counts the parameters at sizes the cell allows: a size a constraint fixes follows, and heads divide theirs", async () => {
    const r = await run("show", "test/fixtures/cells/show-sizes.ts");
    expect(r.code).toBe(0);
    // 128 is not divisible by 3 (the heads): the count is whole at 129, and E = 2*H is 258, not 128
    expect(r.stdout).toMatch(/^parameters: D\*H\/3 \+ 13\*H\^2\/3 = 77,658 at D=129, H=129, E=258$/m);
    expect(r.stdout).toMatch(/^  init U\(±1\/sqrt\(H\)\): /m);
  });

  it("refuses another command's option, naming the ones it takes", async () => {
    const r = await run("show", "gru", "--steps", "5");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cellforge show: unknown option --steps; show takes no options/);
    const b = await run("bench", "gru", "--sise", "3");
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/unknown option --sise \(did you mean --size\?\); bench takes --B, --T, --size, --backend, --threads/);
  });

  it("a bad option value is a usage mistake (exit 2) with the option's own message, a negative number too", async () => {
    const cases = [
      [["check", "gru", "--sizes", "D=abc"], /^--sizes: "D=abc" is not SIZE=n with a size of the cell \(D, H\), n a positive integer/],
      [["check", "gru", "--B", "NaN"], /^--B takes a positive integer, not "NaN"/],
      [["check", "gru", "--mode", "turbo"], /^--mode is full or fast, not turbo/],
      [["check", "gru", "--seed", "-3"], /^--seed takes an integer >= 0, not "-3"/],
      [["bench", "gru", "--threads", "abc"], /^--threads takes a positive integer or auto, not "abc"/],
      [["bench", "gru", "--threads", "-1"], /^--threads takes a positive integer or auto, not "-1"/],
      [["bench", "gru", "--backend", "foo"], /^--backend is wasm, ts or auto, not foo/],
    ] as const;
    for (const [argv, said] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr, argv.join(" ")).toMatch(said);
    }
  });

  it("eval --example writes a case but never over a file already there; --in a folder says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellforge-example-"));
    try {
      const file = join(dir, "case.json");
      expect((await run("eval", "gru", "--example", file)).code).toBe(0);
      writeFileSync(file, "mine\n");
      const again = await run("eval", "gru", "--example", file);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`--example ${file}: a file is already there, and is not overwritten`);
      expect(readFileSync(file, "utf8")).toBe("mine\n");
      const folder = await run("eval", "gru", "--in", dir);
      expect(folder.code).toBe(1);
      expect(folder.stderr).toContain(`${dir}: is a folder, not a case file`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a file whose default export is not a cell says so, naming its keys", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellforge-notcell-"));
    try {
      const file = join(dir, "n.ts");
      writeFileSync(file, "export default { hello: 1 };\n");
      const r = await run("show", file);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${file}: its default export is not a cell (an object with the keys hello): the file must \`export default defineCell({ ... })\``);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("bench --checkpoint takes steps per segment or sqrt, and gives the time and the memory of both", async () => {
    for (const bad of ["0", "1.5", "half"]) {
      const r = await run("bench", "gru", "--checkpoint", bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain(`--checkpoint takes a positive integer (steps per segment) or sqrt, not ${bad}`);
    }
    const r = await run("bench", "gru", "--B", "2", "--T", "9", "--size", "4", "--backend", "ts", "--checkpoint", "sqrt");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/checkpointed, segments of 3 steps \(--checkpoint sqrt\):\n\s+forward\+backward\s+[\d.]+ ms\s+[\d.]+× the whole/);
    // the GRU saves r, z, n and Whn*h + bhn (4H floats per example per step) and its input products are 3H
    // (4·4 floats × B 2 × 4 bytes × 3 steps = 384 bytes, of 9 steps 1.2 kB; 3H: 288 and 864 bytes)
    expect(r.stdout).toMatch(/saved values\s+384 bytes\s+instead of 1\.2 kB\n\s+input products\s+288 bytes\s+instead of 864 bytes/);
  }, 60_000);

  it("--help prints the command's help and does nothing else", async () => {
    for (const cmd of ["show", "check", "list", "generate", "eval", "bench", "convert", "train", "compare"]) {
      const r = await run(cmd, "--help");
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(/^usage:\n {2}cellforge /);
      expect(r.stdout, cmd).toContain(`cellforge ${cmd === "compare" ? "compare" : cmd}`);
      expect(r.stdout, cmd).not.toMatch(/^wrote |up to date|PASS|FAIL/m); // nothing ran
    }
    expect((await run("train", "gru", "--help")).stdout).toContain("--optimizer adam|sgd");
    expect((await run("check", "-h")).stdout).toContain("--atol x --rtol x");
    expect((await run("help", "generate")).stdout).toContain("--standalone");
  });

  it("a misspelled command gets a did-you-mean and exit 2; no command prints the usage with exit 2", async () => {
    const r = await run("chek", "gru");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "chek" \(did you mean check\?\)/);
    expect((await run()).code).toBe(2);
    expect((await run("--help")).code).toBe(0);
    expect((await run("--steps", "3")).stderr).toMatch(/a command comes first/);
  });

  it("checks numeric options before any work", async () => {
    for (const [flag, bad] of [["--atol", "abc"], ["--rtol", "-1"], ["--seed", "1.5"], ["--atol", ""]] as const) {
      const r = await run("check", "rnn", `${flag}=${bad}`);
      expect(r.code, `${flag} ${bad}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^${flag} takes `));
    }
  });

  it("usage mistakes exit 2, a folder given as a cell exits 1 with a sentence, never a stack trace", async () => {
    expect((await run("eval")).code).toBe(2);
    expect((await run("show")).code).toBe(2);
    expect((await run("list", "extra")).code).toBe(2);
    const r = await run("show", "/tmp");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\/tmp is a folder: a cell is one \.ts, \.mts, \.json file/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

// The command line's edges, in process: each command takes its own options and refuses the others,
// --help prints that command's help and does nothing else, a misspelled command or option gets a
// "did you mean", usage mistakes exit 2 and other mistakes 1, and a file error is a sentence.
import { describe, expect, it, vi } from "vitest";
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
  it("refuses another command's option, naming the ones it takes", async () => {
    const r = await run("show", "gru", "--steps", "5");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cellforge show: unknown option --steps; show takes no options/);
    const b = await run("bench", "gru", "--sise", "3");
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/unknown option --sise \(did you mean --size\?\); bench takes --B, --T, --size, --backend, --threads/);
  });

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

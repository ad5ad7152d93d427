// README.md, executed: no example in it can drift from the tool again (issue #15). Driven by the
// README's own text and its markers (test/readme-blocks.ts says what each marker means); the test
// keeps no list of expected strings.
//
// - Every cellforge command of every shell block, skipped or not, and every `output of:` command is
//   parsed by the real CLI: run with `--help` appended, it must exit 0. A command that does not exist
//   or a flag it does not take exits 2 (the CLI parses every flag before it looks at --help), and
//   --help does no work. `npm run X` needs the script X, `npx X` an installed X (so nothing downloads).
// - The blocks run in folders of their own, a `##` section at a time and in the README's order: a
//   fresh copy of the checkout (its node_modules linked), as a user with a clone runs them, or, for
//   sections marked `project`, one user's project shared by them, with cellforge linked into its
//   node_modules (an installed package runs its compiled dist/; the link runs the sources, so that
//   project's commands run with NODE_OPTIONS=--conditions=cellforge-source, which nothing else gets).
//   Sections run concurrently.
// - A shell block runs in bash (-e, pipefail), where `cellforge` and `npx cellforge` are that copy's
//   bin/cellforge.js and `npm` runs only `npm run` (npm ci, install, pack and test must be marked skip).
// - A TypeScript block is written to its `file:` paths (or a file of its own) and typechecked by tsc
//   with the repository's compiler options (strict, the cellforge-source condition), after the
//   section's commands have run (a block may import a kernel the section generated); a block that
//   defines a cell is also shown by `cellforge show`.
// - An `output of:` block is an excerpt of what its command prints there (test/readme-blocks.ts,
//   matchOutput: `…` elides, durations are masked).
// - A json block must parse. Other blocks (equations, diagrams, Python) are listed, not run.
// It prints every block it did not run, with the reason.
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { type Block, SHELL, TYPESCRIPT, cellforgeArgs, matchOutput, readmeBlocks, shellCommands, synopsisCommand, trimBlock } from "./readme-blocks.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README = readmeBlocks(readFileSync(join(ROOT, "README.md"), "utf8"));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };

type Kind = "run" | "compare" | "typecheck" | "json" | "parse" | "skipped" | "fragment" | "text";

/** What the test does with a block, from its language and marker alone. */
function kind(b: Block): Kind {
  if (b.marks.outputOf !== undefined) return "compare";
  if (SHELL.has(b.lang)) return b.marks.synopsis ? "parse" : b.marks.skip ? "skipped" : "run";
  if (TYPESCRIPT.has(b.lang)) return b.marks.fragment ? "fragment" : b.marks.skip ? "skipped" : "typecheck";
  if (b.lang === "json") return b.marks.fragment ? "fragment" : "json";
  return "text";
}
const where = (b: Block) => `README.md:${b.line} (${b.heading})`;

/** A child process, awaited (a synchronous spawn would block vitest's worker), killed with its children after `ms`. */
function run(cmd: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; ms: number }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // a group of its own, so that a timeout ends the commands a shell block started too
    const p = spawn(cmd, args, { cwd: opts.cwd, detached: true, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...opts.env } });
    let stdout = "", stderr = "";
    const timer = setTimeout(() => { stderr += `\n(killed after ${opts.ms / 1000} s)`; process.kill(-p.pid!, "SIGKILL"); }, opts.ms);
    p.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/** At most `n` of the jobs at once. */
async function pooled<T>(jobs: readonly (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, async () => {
    while (next < jobs.length) { const i = next++; out[i] = await jobs[i]!(); }
  }));
  return out;
}

// ------------------------------------------------------------------ the folders the blocks run in

const made: string[] = [];
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

/** A copy of the checkout as a clone has it: everything but node_modules (linked) and .git. */
function checkoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "cellforge-readme-"));
  made.push(dir);
  for (const f of readdirSync(ROOT)) if (f !== "node_modules" && f !== ".git") cpSync(join(ROOT, f), join(dir, f), { recursive: true, verbatimSymlinks: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** A user's project with cellforge installed: its dependencies hoisted beside it, as npm does. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), "cellforge-readme-project-"));
  made.push(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "readme-project", private: true, type: "module" }, null, 2) + "\n");
  mkdirSync(join(dir, "node_modules"));
  for (const m of readdirSync(join(ROOT, "node_modules"))) if (m !== ".bin" && !m.startsWith(".")) symlinkSync(join(ROOT, "node_modules", m), join(dir, "node_modules", m));
  symlinkSync(ROOT, join(dir, "node_modules", "cellforge"));
  return dir;
}

// `cellforge` is this folder's command; npx runs only what is installed; npm only runs scripts.
const SHIMS = (bin: string) => `
cellforge() { node ${JSON.stringify(bin)} "$@"; }
npx() {
  if [ "$1" = cellforge ]; then shift; cellforge "$@"; return; fi
  if [ ! -e "node_modules/.bin/$1" ]; then echo "README test: npx $1 is not installed here, and would download it" >&2; return 127; fi
  command npx --no "$@"
}
npm() {
  if [ "$1" = run ] || [ "$1" = run-script ]; then command npm "$@"; return; fi
  echo "README test: npm $1 is not run here; mark the block <!-- readme-test: skip: REASON -->" >&2; return 97
}
set -e -o pipefail
`;

// Measured on the 2-core machine while other jobs held the load at 16-31: a `cellforge … --help` 11-44 s,
// and past 60 s while the sections ran beside it at load 30; the slowest block, the UGRNN
// walkthrough's `generate` (every cell of dsl/ proven before it writes), 192 s; the slowest section,
// that walkthrough, 427-482 s; parsing every command, 3 at a time, 179 s alone and 401 s beside the
// sections. About three times each.
const COMMAND_MS = 180_000;
const BLOCK_MS = 600_000;
const SECTION_MS = 1_500_000;
const PARSE_MS = 1_200_000;

interface Workspace { readonly dir: string; readonly bin: string; readonly env: NodeJS.ProcessEnv }

function workspaceFor(isProject: boolean): Workspace {
  if (isProject) {
    const dir = project();
    return { dir, bin: join(dir, "node_modules", "cellforge", "bin", "cellforge.js"), env: { NODE_OPTIONS: "--conditions=cellforge-source" } };
  }
  const dir = checkoutCopy();
  return { dir, bin: join(dir, "bin", "cellforge.js"), env: {} };
}

const bash = (ws: Workspace, script: string, ms = BLOCK_MS) => run("bash", ["-c", SHIMS(ws.bin) + script], { cwd: ws.dir, env: ws.env, ms });

/** The blocks of one folder: a checkout section, or every project section together. */
const groups = new Map<string, Block[]>();
for (const b of README.blocks) {
  if (!["run", "compare", "typecheck", "json"].includes(kind(b))) continue;
  const key = README.projectSections.has(b.section) ? "a user's project" : b.section;
  groups.set(key, [...(groups.get(key) ?? []), b]);
}

const counts: Record<Kind, number> = { run: 0, compare: 0, typecheck: 0, json: 0, parse: 0, skipped: 0, fragment: 0, text: 0 };
for (const b of README.blocks) counts[kind(b)]++;

describe.concurrent("README.md, every block", () => {
  it("is accounted for: what is not run says why, and each marker fits its block", ({ expect }) => {
    const notRun = README.blocks.filter((b) => ["skipped", "fragment", "text", "parse"].includes(kind(b)));
    const lines = notRun.map((b) => `  ${where(b)}, ${b.lang || "untagged"}: ${b.marks.skip ? `skipped: ${b.marks.skip}` : b.marks.fragment ? `a fragment: ${b.marks.fragment}` : kind(b) === "parse" ? "a usage line: parsed by the CLI, not run" : b.lang ? "not run: the test runs shell and TypeScript" : "text (equations, an error, a diagram), not run"}`);
    console.log(`README.md: ${README.blocks.length} blocks: ${counts.run} shell blocks run, ${counts.compare} outputs compared, ${counts.typecheck} TypeScript blocks typechecked, ${counts.json} json parsed; not run:\n${lines.join("\n")}`);
    // a marker that would be ignored is a mistake in the README
    for (const b of README.blocks) {
      const ts = TYPESCRIPT.has(b.lang), sh = SHELL.has(b.lang);
      for (const d of ["files", "prelude", "then"] as const) if (b.marks[d] !== undefined) expect(ts, `${where(b)}: ${d} is said of a TypeScript block`).toBe(true);
      if (b.marks.outputOf !== undefined) expect(!ts && !sh, `${where(b)}: output of: is said of a block of output, not of a program`).toBe(true);
      if (b.marks.synopsis) expect(sh, `${where(b)}: synopsis is said of a shell block`).toBe(true);
      if (b.marks.fragment) expect(ts || b.lang === "json", `${where(b)}: fragment is said of TypeScript or json`).toBe(true);
      if (b.marks.exit !== undefined) expect(Number.isInteger(b.marks.exit) && (sh || b.marks.outputOf !== undefined), `${where(b)}: exit: N is said of a shell block or an output`).toBe(true);
    }
  });

  it("json blocks parse", ({ expect }) => {
    for (const b of README.blocks.filter((x) => kind(x) === "json")) expect(() => JSON.parse(b.text), where(b)).not.toThrow();
  });

  it("every command names a real command, with flags it takes (the CLI parses it, --help does no work)", async ({ expect }) => {
    const lines: { b: Block; words: string[] }[] = [];
    for (const b of README.blocks) {
      for (const c of [b.marks.outputOf, b.marks.then]) if (c !== undefined) for (const words of shellCommands(c)) lines.push({ b, words });
      if (!SHELL.has(b.lang)) continue;
      if (b.marks.synopsis) lines.push({ b, words: synopsisCommand(b.text) });
      else for (const words of shellCommands(b.text)) lines.push({ b, words });
    }
    // one command line per command and set of flags (the values and cells do not change the parse)
    const cli = new Map<string, { b: Block; args: string[] }>();
    const add = (b: Block, args: string[]) => {
      const key = JSON.stringify([args[0], ...args.filter((a) => a.startsWith("-")).sort()]);
      if (!cli.has(key)) cli.set(key, { b, args });
    };
    for (const { b, words } of lines) {
      const args = cellforgeArgs(words);
      if (args) { add(b, args); continue; }
      if (words[0] === "npm" && (words[1] === "run" || words[1] === "test")) {
        const script = words[1] === "test" ? "test" : words[2]!;
        expect(Object.hasOwn(PACKAGE.scripts, script), `${where(b)}: npm run ${script}: package.json has no such script`).toBe(true);
        // a script that is the CLI: its arguments after -- are the CLI's
        const cmd = /^node bin\/cellforge\.js (.*)$/.exec(PACKAGE.scripts[script]!);
        const dash = words.indexOf("--");
        if (cmd) add(b, [...cmd[1]!.split(" "), ...(dash > 0 ? words.slice(dash + 1) : [])]);
      }
      if (words[0] === "npx" && words[1] !== "cellforge") expect(existsSync(join(ROOT, "node_modules", ".bin", words[1]!)), `${where(b)}: npx ${words[1]} is not a dependency`).toBe(true);
    }
    expect(cli.size, "the README's cellforge commands").toBeGreaterThan(5);
    // in a copy: a command whose --help did work would do it there, not in this checkout
    const copy = checkoutCopy();
    const refused = (await pooled([...cli.values()].map(({ b, args }) => async () => {
      const r = await run(process.execPath, [join(copy, "bin", "cellforge.js"), ...args, "--help"], { cwd: copy, ms: COMMAND_MS });
      return r.status === 0 ? [] : [`${where(b)}: cellforge ${args.join(" ")}: exit ${r.status}\n${r.stderr}`];
    }), 3)).flat();
    expect(refused).toEqual([]);
  }, PARSE_MS);

  it("the parse can fail: a flag of another command is refused", async ({ expect }) => {
    const r = await run(process.execPath, [join(ROOT, "bin", "cellforge.js"), "show", "gru", "--steps", "5", "--help"], { cwd: ROOT, ms: COMMAND_MS });
    expect(r.status).toBe(2);
  }, COMMAND_MS);
});

// The rules the run relies on, on text made up here: each can fail.
describe("reading the README", () => {
  it("an output excerpt matches only what is printed: … elides lines or text, durations and their columns vary", () => {
    const printed = "head\nforward:\n  z  = sigmoid(a)\n  h' = z\n\nbackward:\n  dz = dh'\ntail 12.5s  PASS (3.1 s)";
    expect(matchOutput("forward:\n  z  = sigmoid(a)", printed)).toBe(1);
    expect(matchOutput("forward:\n  z  = tanh(a)", printed)).toBeUndefined();
    expect(matchOutput("forward:\n  z = sigmoid(a)", printed), "alignment is compared").toBeUndefined();
    expect(matchOutput("forward:\n…\nbackward:\n  dz = dh'", printed)).toBe(1);
    expect(matchOutput("forward:\nbackward:", printed), "without …, lines are consecutive").toBeUndefined();
    expect(matchOutput("backward: …\n  dz = …", printed)).toBe(5);
    expect(matchOutput("tail 1.25s    PASS (29.1 s)  \n", printed)).toBe(7);
    expect(matchOutput("tail 1.25s FAIL (29.1 s)", printed)).toBeUndefined();
  });

  it("a shell block's commands: comments, heredocs, redirections, variables, continuations", () => {
    const block = [
      "npm ci && npx cellforge check   # all",
      "cat > a.ts <<'X'",
      "npx cellforge show not-a-command",
      "X",
      'CELLS="rnn gru"',
      "npx cellforge compare $CELLS --out 'my dir' \\",
      "  --T 5 > log.txt",
      "(cd x && npm pack)",
    ].join("\n");
    expect(shellCommands(block)).toEqual([
      ["npm", "ci"], ["npx", "cellforge", "check"], ["cat"],
      ["npx", "cellforge", "compare", "rnn", "gru", "--out", "my dir", "--T", "5"],
      ["cd", "x"], ["npm", "pack"],
    ]);
    expect(synopsisCommand("cellforge convert --from a|b [--out f] <cell>")).toEqual(["cellforge", "convert", "--from", "a", "--out", "f", "cell"]);
  });

  it("blocks carry their marker, heading and section; a mistaken marker is refused", () => {
    const r = readmeBlocks("## S\n\n<!-- readme-test: project -->\n\n### T\n\n<!-- readme-test: skip: slow; exit: 1 -->\n```sh\nx\n```\n\n```\ny\n```\n");
    expect(r.blocks.map((b) => [b.line, b.lang, b.heading, b.section, b.marks])).toEqual([[8, "sh", "T", "S", { skip: "slow", exit: 1 }], [12, "", "T", "S", {}]]);
    expect([...r.projectSections]).toEqual(["S"]);
    expect(() => readmeBlocks("<!-- readme-test: skipp: x -->\n```sh\nx\n```\n")).toThrow(/unknown readme-test directive "skipp: x"/);
  });
});

describe.concurrent("README.md, run section by section", () => {
  for (const [name, blocks] of groups)
    it(`${name}: ${blocks.map((b) => `${kind(b)} :${b.line}`).join(", ")}`, async ({ expect }) => {
      const ws = workspaceFor(name === "a user's project");
      const typecheck: string[] = [];
      const cellFiles: { b: Block; file: string }[] = [];
      const ran: string[] = [];
      for (const b of blocks) {
        const k = kind(b);
        if (k === "json") continue;
        if (k === "typecheck") {
          const files = b.marks.files ?? [`readme-block-${b.line}.ts`];
          for (const f of files) {
            mkdirSync(dirname(join(ws.dir, f)), { recursive: true });
            writeFileSync(join(ws.dir, f), (b.marks.prelude ? `${b.marks.prelude}\n` : "") + b.text + "\n");
          }
          typecheck.push(...files);
          if (/\b(defineCell|buildCell)\(/.test(b.text)) cellFiles.push({ b, file: files[0]! });
          if (b.marks.then) {
            const r = await bash(ws, b.marks.then);
            ran.push(b.marks.then);
            expect(r.status, `${where(b)}: ${b.marks.then} exited ${r.status}:\n${r.stderr.slice(-3000)}`).toBe(0);
          }
          continue;
        }
        if (k === "run") {
          const r = await bash(ws, b.text);
          ran.push(b.text);
          expect(r.status, `${where(b)} exited ${r.status}:\n${r.stderr.slice(-3000)}`).toBe(b.marks.exit ?? 0);
          continue;
        }
        // an output: the command run here, and the block found in what it prints
        const r = await bash(ws, b.marks.outputOf!);
        ran.push(b.marks.outputOf!);
        expect(r.status, `${where(b)}: ${b.marks.outputOf} exited ${r.status}:\n${r.stderr.slice(-3000)}`).toBe(b.marks.exit ?? 0);
        if (matchOutput(b.text, r.stdout) === undefined) {
          // the vitest diff shows the nearest lines of the output against the block
          const want = trimBlock(b.text), have = trimBlock(r.stdout).split("\n");
          const first = want.split("\n")[0]!.split("…")[0]!.trimEnd();
          const at = Math.max(0, have.findIndex((l) => l.startsWith(first)));
          expect(have.slice(at, at + want.split("\n").length).join("\n"), `${where(b)} is not what \`${b.marks.outputOf}\` prints (… elides; the whole output:\n${r.stdout})`).toBe(want);
        }
      }
      // a cell of the README that no command above showed or checked is shown now
      for (const { b, file } of cellFiles) {
        if (ran.some((t) => shellCommands(t).some((w) => { const a = cellforgeArgs(w); return !!a && (a[0] === "show" || a[0] === "check") && a.slice(1).some((x) => x.replace(/^\.\//, "") === file); }))) continue;
        const r = await bash(ws, `cellforge show ${JSON.stringify(file)}`);
        expect(r.status, `${where(b)}: cellforge show ${file} exited ${r.status}:\n${r.stderr}`).toBe(0);
      }
      if (typecheck.length) {
        const options = (JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8")) as { compilerOptions: object }).compilerOptions;
        writeFileSync(join(ws.dir, "readme-tsconfig.json"), JSON.stringify({ compilerOptions: options, files: typecheck }, null, 2));
        const r = await run(process.execPath, [TSC, "--noEmit", "-p", "readme-tsconfig.json"], { cwd: ws.dir, ms: BLOCK_MS });
        expect(r.status, `tsc over ${typecheck.join(", ")} (README.md ${blocks.filter((b) => kind(b) === "typecheck").map((b) => `:${b.line}`).join(", ")}):\n${r.stdout}${r.stderr}`).toBe(0);
      }
    }, SECTION_MS);
});

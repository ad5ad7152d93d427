// npm run fuzz -- --cells N --seed S [--start I | --only I] [--out dir] [--minimize-ms M] [--typecheck-every K]
// The differential fuzzer (test/fuzz/): N random cells from seed S, each compiled and checked on
// every kernel path against the reference evaluator and finite differences; every failure is
// minimized and written as a cell file to --out (default fuzz-failures/). Exit 1 on any failure.
// `--only I` runs cell I alone (as `--start I --cells 1`), to reproduce one from a report.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { workerPool } from "../runtime/pool.ts";
import { type FuzzFailure, type Progress, distinctFailures, formatSummary, oneLine, runFuzz, writeFailure } from "../test/fuzz/run.ts";

const USAGE = "usage: npm run fuzz -- --cells N --seed S [--start I | --only I] [--out dir] [--minimize-ms M] [--typecheck-every K]";

function parseArgs(argv: readonly string[]): { cells: number; seed: number; start: number; out: string; minimizeMs: number; typecheckEvery: number } {
  const opts = { cells: 50, seed: 1, start: 0, out: "fuzz-failures" as string, minimizeMs: 120_000, typecheckEvery: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, v = argv[i + 1];
    const int = () => {
      const n = Number(v);
      if (v === undefined || !Number.isInteger(n) || n < 0) { console.error(`${a} needs a non-negative integer\n${USAGE}`); process.exit(2); }
      i++;
      return n;
    };
    if (a === "--cells") opts.cells = int();
    else if (a === "--seed") opts.seed = int();
    else if (a === "--start") opts.start = int();
    else if (a === "--only") { opts.start = int(); opts.cells = 1; }
    else if (a === "--minimize-ms") opts.minimizeMs = int();
    else if (a === "--typecheck-every") opts.typecheckEvery = Math.max(1, int());
    else if (a === "--out") { if (!v) { console.error(USAGE); process.exit(2); } opts.out = v; i++; }
    else if (a === "--help" || a === "-h") { console.log(USAGE); process.exit(0); }
    else { console.error(`unknown argument ${a}\n${USAGE}`); process.exit(2); }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const DEFAULT_OUT = "fuzz-failures";
if (opts.out === DEFAULT_OUT && !existsSync(join(DEFAULT_OUT, ".gitignore"))) {
  // the default folder keeps itself out of git
  mkdirSync(DEFAULT_OUT, { recursive: true });
  writeFileSync(join(DEFAULT_OUT, ".gitignore"), "# written by npm run fuzz: minimized failing cells, not for committing\n*\n");
}
const tty = !!process.stdout.isTTY;
let lastLine = 0, lastStatus = "";
/** One updating line on a terminal; otherwise a plain line every few seconds. */
function status(text: string, force = false): void {
  lastStatus = text;
  if (tty) { process.stdout.write(`\r\x1b[K${text.slice(0, (process.stdout.columns || 120) - 1)}`); return; }
  const now = performance.now();
  if (force || now - lastLine > 5000) { console.log(text); lastLine = now; }
}
const say = (text: string) => { if (tty) process.stdout.write("\r\x1b[K"); console.log(text); if (tty && lastStatus) status(lastStatus); };

const secs = (ms: number) => `${(ms / 1000).toFixed(0)}s`;
let cellLine = "";
const onProgress = (p: Progress) => {
  if (p.phase === "start") {
    cellLine = `fuzz seed ${opts.seed}: cell ${p.done + 1}/${p.total} (index ${p.index}, ${p.equations} equations), ${p.failures} failing, ${p.refused} with a refused name, ${secs(p.elapsedMs)}`;
    status(`${cellLine}: checking`);
  } else if (p.phase === "cell") {
    const eta = p.done < p.total ? `, about ${secs((p.elapsedMs / p.done) * (p.total - p.done))} left` : "";
    cellLine = `fuzz seed ${opts.seed}: cell ${p.done}/${p.total} (index ${p.index}), ${p.failures} failing, ${p.refused} with a refused name, ${secs(p.elapsedMs)}${eta}`;
    status(cellLine, p.done === p.total);
  } else {
    status(`${cellLine} | minimizing cell ${p.index} (${p.kind}): ${p.tries} tried, ${p.taken} taken, ${p.equations} equations: ${p.what}`);
  }
};
const written: string[] = [];
const onFailure = (f: FuzzFailure) => {
  const file = writeFailure(opts.out, f);
  written.push(file);
  say(`FAIL cell ${f.index}: ${f.findings.map((x) => x.detail).join("\n    ")}\n  minimized${f.complete ? "" : " (time ran out)"} in ${secs(f.minimizeMs)}: ${oneLine(f)}\n  written to ${file}`);
};

// between events (a cell can take seconds), a heartbeat: the line with a clock, updated on a terminal, repeated every 5 s otherwise
const t0 = performance.now();
const heartbeat = setInterval(() => {
  if (!lastStatus) return;
  status(lastStatus.replace(/ \[\d+s\]$/, "") + ` [${secs(performance.now() - t0)}]`);
}, 1000);
heartbeat.unref();
console.log(`fuzz: ${opts.cells} cells from seed ${opts.seed}${opts.start ? `, starting at cell ${opts.start}` : ""}; failures minimized (up to ${secs(opts.minimizeMs)} each) into ${resolve(opts.out)}/`);
const summary = await runFuzz({ seed: opts.seed, cells: opts.cells, start: opts.start, minimizeMs: opts.minimizeMs, typecheckEvery: opts.typecheckEvery, onProgress, onFailure });
if (tty) process.stdout.write("\r\x1b[K");
console.log(formatSummary(summary));
const distinct = distinctFailures(summary.failures);
if (distinct.length) {
  console.log(`${distinct.length} distinct failure${distinct.length === 1 ? "" : "s"} (minimized cells in ${resolve(opts.out)}/):`);
  for (const f of distinct) console.log(`  cell ${f.index}  ${oneLine(f)}`);
}
workerPool.close();
process.exit(summary.failures.length ? 1 : 0);

// The fixed-seed fuzz tier of the test suite (test/fuzz.test.ts): TIER_CELLS cells from TIER_SEED,
// split over one child process per core (vitest runs one test file at a time when a machine has
// 2 cores, so separate test files would not run side by side). A failure is minimized within a
// time budget, and the test fails listing each failing cell's minimized spec, ready to save as a
// file and run with `node bin/cellforge.js check <file>`.
import { execFile } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../src/load.ts";
import { type FuzzSummary } from "./run.ts";
import { REPORT, summaryFromJson } from "./shard.ts";

export const TIER_SEED = 20261128;
export const TIER_CELLS = 200;
/** Minimizing: per failure, and in all per process (spent only when something fails). */
export const MINIMIZE_MS = 20_000;
export const TOTAL_MINIMIZE_MS = 60_000;
/** The kernels of every 5th cell are typechecked too (a second a cell; the numbers are checked on every cell). */
export const TYPECHECK_EVERY = 5;

/** Run cells [start, start + cells) in `parts` processes at once (each stopped after `timeoutMs`); their summaries merged. */
export async function runParallel(seed: number, start: number, cells: number, timeoutMs: number, parts = Math.max(1, Math.min(2, availableParallelism()))): Promise<FuzzSummary> {
  const per = Math.ceil(cells / parts);
  const runs = Array.from({ length: parts }, (_v, k) => {
    const from = start + k * per, n = Math.min(per, start + cells - from);
    return new Promise<FuzzSummary>((resolve, reject) => {
      execFile(process.execPath, ["--conditions=cellforge-source", "--import", "tsx", join(ROOT, "test", "fuzz", "shard.ts"), "--seed", String(seed), "--start", String(from), "--cells", String(n),
        "--minimize-ms", String(MINIMIZE_MS), "--total-minimize-ms", String(TOTAL_MINIMIZE_MS), "--typecheck-every", String(TYPECHECK_EVERY)],
      { cwd: ROOT, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
        const line = stdout.split("\n").find((l) => l.startsWith(REPORT));
        if (!line) return reject(new Error(`fuzz shard ${from}–${from + n - 1} gave no report${err ? ` (${err.message})` : ""}:\n${stderr.slice(-2000)}`));
        resolve(summaryFromJson(JSON.parse(line.slice(REPORT.length))));
      });
    });
  });
  const all = await Promise.all(runs);
  const merged: FuzzSummary = { seed, cells, generated: 0, compiled: 0, refusedCells: 0, refusals: new Map(), kernelChecks: 0, failures: [], checkMs: 0, minimizeMs: 0 };
  for (const s of all) {
    merged.generated += s.generated;
    merged.compiled += s.compiled;
    merged.refusedCells += s.refusedCells;
    merged.kernelChecks += s.kernelChecks;
    merged.checkMs += s.checkMs;
    merged.minimizeMs += s.minimizeMs;
    merged.failures.push(...s.failures);
    for (const [name, r] of s.refusals) {
      const m = merged.refusals.get(name);
      if (!m) { merged.refusals.set(name, { ...r, roles: new Map(r.roles) }); continue; }
      m.count += r.count;
      for (const [role, n] of r.roles) m.roles.set(role, (m.roles.get(role) ?? 0) + n);
    }
  }
  return merged;
}

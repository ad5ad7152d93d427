// One part of a fuzz run in a process of its own (the test tier starts one per core, since vitest
// runs one test file at a time on a 2-core machine):
//   node --conditions=cellforge-source --import tsx test/fuzz/shard.ts --seed S --start I --cells N [--minimize-ms M] [--total-minimize-ms M] [--typecheck-every K]
// The last line of its output is `FUZZ-REPORT <json>`: the summary with every failure, minimized.
import { workerPool } from "../../runtime/pool.ts";
import { type FuzzSummary, runFuzz } from "./run.ts";

export const REPORT = "FUZZ-REPORT ";

/** A summary as JSON (its refusals as a list). */
export const summaryToJson = (s: FuzzSummary): unknown => ({
  ...s,
  refusals: [...s.refusals].map(([name, r]) => ({ name, ...r, roles: [...r.roles] })),
});

export function summaryFromJson(j: unknown): FuzzSummary {
  const o = j as FuzzSummary & { refusals: { name: string; count: number; roles: [string, number][]; problem: string; clear: boolean }[] };
  return { ...o, refusals: new Map(o.refusals.map((r) => [r.name, { count: r.count, roles: new Map(r.roles), problem: r.problem, clear: r.clear }])) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const s = await runFuzz({
    seed: arg("seed", 1), start: arg("start", 0), cells: arg("cells", 10),
    minimizeMs: arg("minimize-ms", 20_000), totalMinimizeMs: arg("total-minimize-ms", 60_000), typecheckEvery: arg("typecheck-every", 1),
  });
  workerPool.close();
  process.stdout.write(`\n${REPORT}${JSON.stringify(summaryToJson(s))}\n`);
  process.exit(0);
}

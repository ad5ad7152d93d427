// npm run bench [-- options]: cellforge's kernels against TensorFlow.js,
// jax-js and a hand-tuned plain-JS gemm, float32, one thread, one process.

import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_BUDGET, measure, type Budget } from "./timing.ts";
import { benchGemm, checkGemm, gemmBoundMs, gemmShapes, type GemmResult } from "./gemmbench.ts";
import { referenceLoss } from "./reference.ts";
import { addSpeedups, measured, type BlockResult, type ContenderResult } from "./results.ts";
import { formatBlock, formatGemm, headerText, type Environment } from "./report.ts";
import {
  CELLS,
  WORKLOADS,
  flops,
  isSkip,
  makeInputs,
  type Cell,
  type Contender,
  type Inputs,
  type Kernels,
  type Workload,
} from "./workloads.ts";

const USAGE = `npm run bench [-- options]

  --only W1,W3         workloads to run (default: all of ${WORKLOADS.map((w) => w.name).join(", ")})
  --cell gru|lstm      one cell (default: both)
  --contender a,b      contenders to run (cellforge, jax-js, tfjs-wasm, tfjs-cpu; default: all)
  --budget SECONDS     time for the measured runs of one measurement (default ${DEFAULT_BUDGET.measureMs / 1000})
  --no-gemm            skip the plain-JS gemm table
  --json               write the results as JSON: to stdout (the table then goes to stderr;
                       use npm run -s to keep npm's banner out), or to the file given by --out
  --out FILE           with --json, the file to write
  -h, --help           this text`;

/** Forward alone is measured only when its first call takes less than this. */
const FORWARD_CUTOFF_MS = 5_000;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// ── contenders ───────────────────────────────────────────────────────────────

interface Entry {
  name: string;
  load: () => Promise<Contender | null>;
}

const ENTRIES: Entry[] = [
  { name: "cellforge", load: loadCellforge },
  { name: "jax-js", load: async () => (await import("./peers/jaxjs.ts")).jaxjs(packageVersion("@jax-js/jax")) },
  { name: "tfjs-wasm", load: async () => (await import("./peers/tfjs.ts")).tfjs("wasm") },
  { name: "tfjs-cpu", load: async () => (await import("./peers/tfjs.ts")).tfjs("cpu") },
];

/** bench/cellforge.ts is optional: null when the file is not there. */
async function loadCellforge(): Promise<Contender | null> {
  const file = path.join(ROOT, "bench", "cellforge.ts");
  if (!fs.existsSync(file)) return null;
  const specifier = "./cellforge.ts"; // not a literal: the file may be absent
  const mod = (await import(specifier)) as { cellforge?: Contender; default?: Contender };
  const c = mod.cellforge ?? mod.default;
  if (!c) throw new Error("bench/cellforge.ts exports neither `cellforge` nor a default contender");
  return c;
}

// ── main ─────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const { values } = parseCommandLine();
  if (values.help) return void console.log(USAGE);

  const workloads = pick(WORKLOADS, values.only, (w) => w.name, "workload");
  const cells = pick(CELLS, values.cell, (c) => c, "cell");
  const entries = pick(ENTRIES, values.contender, (e) => e.name, "contender");
  const budget: Budget = { ...DEFAULT_BUDGET };
  if (values.budget !== undefined) {
    const s = Number(values.budget);
    if (!(s > 0)) usage(`--budget wants a positive number of seconds, not "${values.budget}"`);
    budget.measureMs = s * 1000;
  }
  if (values.out !== undefined && !values.json) usage("--out goes with --json");

  // With --json and no --out, stdout carries the JSON alone.
  const toStdout = !(values.json && values.out === undefined);
  const say = (s = "") => (toStdout ? process.stdout : process.stderr).write(s + "\n");
  const status = (s: string) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${s}`);
  };

  const started = performance.now();
  const env = environment(budget);
  say(headerText(env, budget));

  // The plain-JS gemm at each workload's shapes.
  const gemm = new Map<string, GemmResult[]>();
  if (!values["no-gemm"]) {
    checkGemm();
    const gemmBudget: Budget = { ...budget, measureMs: Math.min(budget.measureMs, 1500) };
    for (const w of workloads) {
      for (const cell of cells) {
        const results: GemmResult[] = [];
        for (const shape of gemmShapes(w, cell)) {
          status(`gemm ${shape.M}x${shape.K}x${shape.N}`);
          results.push(await benchGemm(shape, gemmBudget));
        }
        gemm.set(`${w.name}/${cell}`, results);
      }
    }
    status("");
    say();
    say(formatGemm([...gemm.values()].flat()));
  }

  // Load the contenders once; a contender that fails to load gets a row saying so.
  const contenders: { name: string; contender?: Contender; missing?: string; error?: string }[] = [];
  for (const e of entries) {
    status(`loading ${e.name}`);
    try {
      const c = await e.load();
      contenders.push(c ? { name: e.name, contender: c } : { name: e.name, missing: "no bench/cellforge.ts" });
    } catch (err) {
      contenders.push({ name: e.name, error: `failed to load: ${message(err)}` });
    }
  }
  status("");
  const described = contenders.filter((c) => c.contender?.describe);
  if (described.length > 0) {
    say();
    for (const c of described) say(`  ${c.name.padEnd(10)} ${c.contender!.describe}`);
  }

  const blocks: BlockResult[] = [];
  for (const w of workloads) {
    for (const cell of cells) {
      const inputs = makeInputs(w, cell);
      status(`${w.name} ${cell} reference loss`);
      const block: BlockResult = {
        workload: w,
        cell,
        flops: flops(w, cell),
        referenceLoss: referenceLoss(w, cell, inputs),
        contenders: [],
      };
      const g = gemm.get(`${w.name}/${cell}`);
      if (g) block.gemmBoundMs = gemmBoundMs(w, g);
      for (const c of contenders) {
        if (!c.contender) {
          block.contenders.push({ name: c.name, status: c.error ? "failed" : "skipped", reason: c.error ?? c.missing });
          continue;
        }
        status(`${w.name} ${cell} ${c.name}`);
        block.contenders.push(await runContender(c.contender, w, cell, inputs, budget, block.flops));
      }
      status("");
      addSpeedups(block);
      blocks.push(block);
      say();
      say(formatBlock(block));
    }
  }

  const seconds = (performance.now() - started) / 1000;
  say();
  say(`total ${seconds.toFixed(0)} s; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);

  if (values.json) {
    const json = JSON.stringify({ environment: env, seconds, gemm: [...gemm.values()].flat(), results: blocks }, null, 2);
    if (values.out !== undefined) {
      fs.writeFileSync(values.out, json + "\n");
      say(`JSON written to ${values.out}`);
    } else {
      process.stdout.write(json + "\n");
    }
  }
}

async function runContender(
  c: Contender,
  w: Workload,
  cell: Cell,
  inputs: Inputs,
  budget: Budget,
  f: { forward: number; forwardBackward: number },
): Promise<ContenderResult> {
  let kernels: Kernels | undefined;
  try {
    const setup = await c.setup(w, cell, inputs);
    if (isSkip(setup)) return { name: c.name, status: "skipped", reason: setup.skip };
    kernels = setup;
    const result: ContenderResult = { name: c.name, status: "ok", variant: kernels.variant };
    result.forwardBackward = measured(await measure(kernels.forwardBackward, budget), f.forwardBackward);
    if (!kernels.forward) result.forwardNote = "not provided";
    else {
      const t = await measure(kernels.forward, budget, FORWARD_CUTOFF_MS);
      if ("abandonedAfterMs" in t) {
        result.forwardNote = `not measured: its first call took ${(t.abandonedAfterMs / 1000).toFixed(1)} s`;
      } else result.forward = measured(t, f.forward);
    }
    if (kernels.loss) result.loss = await kernels.loss();
    return result;
  } catch (err) {
    return { name: c.name, status: "failed", reason: message(err) };
  } finally {
    try {
      kernels?.dispose?.();
    } catch {
      // a failed dispose must not hide the measurement
    }
  }
}

// ── helpers ──────────────────────────────────────────────────────────────────

function environment(budget: Budget): Environment {
  const cpus = os.cpus();
  return {
    node: process.versions.node,
    cpu: cpus[0]?.model.trim() ?? "unknown cpu",
    cores: cpus.length,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: os.loadavg(),
    packages: Object.fromEntries(
      [
        "@tensorflow/tfjs-core",
        "@tensorflow/tfjs-layers",
        "@tensorflow/tfjs-backend-cpu",
        "@tensorflow/tfjs-backend-wasm",
        "@jax-js/jax",
      ].map((p) => [p, packageVersion(p)]),
    ),
    budget,
    forwardCutoffMs: FORWARD_CUTOFF_MS,
  };
}

/** The installed version, read from node_modules (some packages do not export package.json). */
function packageVersion(name: string): string {
  try {
    const file = path.join(ROOT, "node_modules", ...name.split("/"), "package.json");
    return (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version;
  } catch {
    return "not installed";
  }
}

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        only: { type: "string" },
        cell: { type: "string" },
        contender: { type: "string" },
        budget: { type: "string" },
        "no-gemm": { type: "boolean" },
        json: { type: "boolean" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return usage(message(err));
  }
}

function pick<T>(all: readonly T[], wanted: string | undefined, key: (t: T) => string, what: string): T[] {
  if (wanted === undefined) return [...all];
  const names = wanted.split(",").map((s) => s.trim().toLowerCase());
  for (const n of names) {
    if (!all.some((t) => key(t).toLowerCase() === n)) {
      usage(`unknown ${what} "${n}"; choose from ${all.map(key).join(", ")}`);
    }
  }
  return all.filter((t) => names.includes(key(t).toLowerCase()));
}

function usage(problem: string): never {
  process.stderr.write(`bench: ${problem}\n\n${USAGE}\n`);
  process.exit(2);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

await main();

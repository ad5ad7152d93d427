// npm run bench [-- options]: cellforge's kernels against TensorFlow.js, jax-js,
// PyTorch and a hand-tuned plain-JS gemm (and numpy's sgemm), float32, one thread (and cellforge's
// wasm path on two).
// Everything runs in this process except PyTorch and numpy, which are timed in a
// Python subprocess (peers/torch.ts, an "external" contender).

import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_BUDGET, measure, type Budget } from "./timing.ts";
import { attachSgemm, benchGemm, checkGemm, gemmBoundMs, gemmShapes, type GemmResult } from "./gemmbench.ts";
import { referenceLoss } from "./reference.ts";
import {
  addSpeedups,
  measured,
  type BlockResult,
  type ContenderResult,
  type ExternalContender,
} from "./results.ts";
import { formatBlock, formatGemm, headerText, type Environment, type SgemmSummary } from "./report.ts";
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
import type { PythonInfo } from "./peers/torch.ts";
import { benchExportPytorch, type ExportResult } from "./export-pytorch.ts";

const USAGE = `npm run bench [-- options]

  --only W1,W3         workloads to run (default: all of ${WORKLOADS.map((w) => w.name).join(", ")})
  --cell gru|lstm      one cell (default: both)
  --contender a,b      contenders to run (cellforge and any other contender bench/cellforge.ts
                       exports, jax-js, tfjs-wasm, tfjs-cpu, pytorch; default: all); a name
                       ending in * picks every contender it begins, e.g. cellforge*
  --budget SECONDS     time for the measured runs of one measurement (default ${DEFAULT_BUDGET.measureMs / 1000})
  --no-gemm            skip the plain-JS gemm table (and numpy's sgemm beside it)
  --no-export          skip the exported-to-PyTorch table (run with the pytorch contender, at W1 and W3:
                       cellforge export's modules of lstm-layernorm, gru-layernorm and gru against the
                       same cells hand-written in eager PyTorch and nn.GRU/nn.LSTM; bench/export-pytorch.ts)
  --zoo                the cell zoo instead: every cell in dsl/ at W1 and W2 on the wasm backend (fwd, fwd+bwd,
                       their ratio, GFLOP/s, saved floats per step), with PyTorch eager and TorchScript peers
                       of lstm-layernorm, gru-layernorm, mgu, sru, indrnn-relu and rnn (nn.RNN), and jax-js of
                       lstm-layernorm, each checked to compute the same cell (the loss check; a FAIL exits 1).
                       With it, --cell takes cell names (e.g. --cell 'lstm*,sru'), --only W1 or W2, and
                       --contender cellforge, pytorch or jax-js (cellforge always runs)
  --markdown           with --zoo, also print the zoo table as the README's markdown
  --json               write the results as JSON: to stdout (the table then goes to stderr;
                       use npm run -s to keep npm's banner out), or to the file given by --out
  --out FILE           with --json, the file to write
  -h, --help           this text

  PyTorch and numpy run under /usr/bin/python3 (Debian's python3-torch), or $CELLFORGE_PYTHON.`;

/** Forward alone is measured only when its first call takes less than this. */
const FORWARD_CUTOFF_MS = 5_000;

/** numpy's and torch's sgemm at n×n×n: the reference for what one core's BLAS does. */
const SGEMM_PEAK_N = 1024;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// ── contenders ───────────────────────────────────────────────────────────────

/** A contender ready to run, or why it cannot run here (shown as a skipped row). */
type Loaded = Contender | ExternalContender | { missing: string };

interface Entry {
  name: string;
  load: () => Promise<Loaded>;
}

const PEERS: Entry[] = [
  { name: "jax-js", load: async () => (await import("./peers/jaxjs.ts")).jaxjs(packageVersion("@jax-js/jax")) },
  { name: "tfjs-wasm", load: async () => (await import("./peers/tfjs.ts")).tfjs("wasm") },
  { name: "tfjs-cpu", load: async () => (await import("./peers/tfjs.ts")).tfjs("cpu") },
  { name: "pytorch", load: async () => (await import("./peers/torch.ts")).pytorch() },
];

/**
 * cellforge's own contenders, from bench/cellforge.ts: every one in its `contenders` array when
 * it exports one (e.g. cellforge and cellforge-wasm), else `cellforge` (or the default export).
 * The module is imported here, before --contender is applied, to learn their names; when it is
 * absent or fails to import, a single "cellforge" entry says so.
 */
async function cellforgeEntries(): Promise<Entry[]> {
  const file = path.join(ROOT, "bench", "cellforge.ts");
  const one = (load: () => Promise<Loaded>): Entry[] => [{ name: "cellforge", load }];
  if (!fs.existsSync(file)) return one(async () => ({ missing: "no bench/cellforge.ts" }));
  const specifier = "./cellforge.ts"; // not a literal: the file may be absent
  let mod: { contenders?: unknown; cellforge?: Contender; default?: Contender };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (err) {
    return one(async () => {
      throw err;
    });
  }
  if (Array.isArray(mod.contenders) && mod.contenders.length > 0) {
    return (mod.contenders as Contender[]).map((c) => ({ name: c.name, load: async () => c }));
  }
  const c = mod.cellforge ?? mod.default;
  if (!c) {
    return one(async () => {
      throw new Error("bench/cellforge.ts exports neither `contenders`, `cellforge` nor a default contender");
    });
  }
  return [{ name: c.name, load: async () => c }];
}

function isExternal(c: Contender | ExternalContender): c is ExternalContender {
  return "measure" in c;
}

// ── main ─────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const { values } = parseCommandLine();
  if (values.help) return void console.log(USAGE);
  if (values.zoo) return zooMain(values);
  if (values.markdown) usage("--markdown goes with --zoo");

  const workloads = pick(WORKLOADS, values.only, (w) => w.name, "workload");
  const cells = pick(CELLS, values.cell, (c) => c, "cell");
  const entries = pick([...(await cellforgeEntries()), ...PEERS], values.contender, (e) => e.name, "contender");
  const budget = budgetOf(values, DEFAULT_BUDGET);
  const say = sayer(values);
  const status = (s: string) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${s}`);
  };

  const started = performance.now();
  const env = environment(budget);
  say(headerText(env, budget));

  // The plain-JS gemm at each workload's shapes, then numpy's sgemm at the same shapes.
  const gemm = new Map<string, GemmResult[]>();
  let sgemm: SgemmSummary | undefined;
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
    status("numpy sgemm (Python)");
    sgemm = await numpyGemm([...gemm.values()].flat(), gemmBudget, env);
    status("");
    say();
    say(formatGemm([...gemm.values()].flat(), sgemm));
  }

  // Load the contenders once; a contender that fails to load gets a row saying so.
  const contenders: { name: string; contender?: Contender | ExternalContender; missing?: string; error?: string }[] =
    [];
  for (const e of entries) {
    status(`loading ${e.name}`);
    try {
      const c = await e.load();
      contenders.push("missing" in c ? { name: e.name, missing: c.missing } : { name: e.name, contender: c });
    } catch (err) {
      // a compile error's first line ("Transform failed with 2 errors:") says little; the next one says where
      const detail = err instanceof Error ? err.message.split("\n").slice(0, 2).join(" ") : String(err);
      contenders.push({ name: e.name, error: `failed to load: ${detail}` });
    }
  }
  status("");
  const described = contenders.filter((c) => c.contender?.describe);
  const width = Math.max(10, ...contenders.map((c) => c.name.length));
  if (described.length > 0) {
    say();
    for (const c of described) say(`  ${c.name.padEnd(width)} ${c.contender!.describe}`);
  }
  const warned = new Set(sgemm?.warnings); // the numpy sgemm table may have said it already
  for (const c of contenders) {
    const x = c.contender;
    if (!x || !isExternal(x)) continue;
    for (const w of x.warnings ?? []) if (!warned.has(w)) say(`  ${c.name.padEnd(width)} WARNING: ${w}`);
    if (x.name === "pytorch" && x.info && !env.python) env.python = { info: x.info as PythonInfo };
  }
  const torchRow = contenders.find((c) => c.name === "pytorch" && c.missing);
  if (torchRow && !env.python) env.python = { missing: torchRow.missing! };

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
        block.contenders.push(
          isExternal(c.contender)
            ? await runExternal(c.contender, w, cell, inputs, budget, block.flops)
            : await runContender(c.contender, w, cell, inputs, budget, block.flops),
        );
      }
      status("");
      addSpeedups(block);
      blocks.push(block);
      say();
      say(formatBlock(block));
    }
  }

  // The exported-to-PyTorch table: with the pytorch contender, when torch is there.
  let exportPytorch: ExportResult | undefined;
  const torchEntry = contenders.find((c) => c.name === "pytorch");
  if (torchEntry && !values["no-export"]) {
    if (!torchEntry.contender) {
      say();
      say(`exported to PyTorch: skipped: ${torchEntry.missing ?? torchEntry.error}`);
    } else {
      status("exported to PyTorch");
      exportPytorch = await benchExportPytorch(workloads, say);
      status("");
      if (exportPytorch.note) {
        say();
        say(`exported to PyTorch: ${exportPytorch.note}`);
      }
    }
  }

  const seconds = (performance.now() - started) / 1000;
  say();
  say(`total ${seconds.toFixed(0)} s; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);

  if (values.json) {
    const json = JSON.stringify(
      { environment: env, seconds, gemm: [...gemm.values()].flat(), sgemm, results: blocks, exportPytorch },
      null,
      2,
    );
    if (values.out !== undefined) {
      fs.writeFileSync(values.out, json + "\n");
      say(`JSON written to ${values.out}`);
    } else {
      process.stdout.write(json + "\n");
    }
  }
}

/** The measuring budget: `base`, with --budget's seconds for the measured runs. */
function budgetOf(values: ReturnType<typeof parseCommandLine>["values"], base: Budget): Budget {
  const budget: Budget = { ...base };
  if (values.budget !== undefined) {
    const s = Number(values.budget);
    if (!(s > 0)) usage(`--budget wants a positive number of seconds, not "${values.budget}"`);
    budget.measureMs = s * 1000;
  }
  return budget;
}

/** Where the tables go: stdout, unless --json without --out gives stdout to the JSON alone (then stderr). */
function sayer(values: ReturnType<typeof parseCommandLine>["values"]): (s?: string) => void {
  if (values.out !== undefined && !values.json) usage("--out goes with --json");
  const toStdout = !(values.json && values.out === undefined);
  return (s = "") => void (toStdout ? process.stdout : process.stderr).write(s + "\n");
}

// ── the zoo ──────────────────────────────────────────────────────────────────

async function zooMain(values: ReturnType<typeof parseCommandLine>["values"]): Promise<void> {
  const zoo = await import("./zoo.ts");
  const zooWorkloads = WORKLOADS.filter((w) => zoo.ZOO_WORKLOADS.includes(w.name));
  const workloads = pick(zooWorkloads, values.only, (w) => w.name, "workload of the zoo");
  const cells = pick(zoo.zooCells(), values.cell, (c) => c, "cell");
  const contenders = pick(["cellforge", "pytorch", "jax-js"], values.contender, (c) => c, "contender of the zoo");
  if (values["no-gemm"] || values["no-export"]) usage("--no-gemm and --no-export are for the GRU/LSTM tables, not --zoo");
  const budget = budgetOf(values, { ...DEFAULT_BUDGET, minWarmups: zoo.ZOO_MIN_WARMUPS });
  const say = sayer(values);
  // long work shows progress: one line rewritten on a terminal, plain lines otherwise
  const tty = process.stderr.isTTY;
  const progress = (s: string) => process.stderr.write(tty ? `\r\x1b[2K${s}` : `zoo: ${s}\n`);
  const started = performance.now();
  const env = environment(budget);
  say(zoo.zooIntro(budget));
  say(headerText(env, budget).split("\n").slice(1, 3).join("\n")); // the machine and the JS packages
  if (env.loadAverage[0]! > 1.2) say(`  WARNING: load average ${env.loadAverage.map((l) => l.toFixed(2)).join(" ")} before starting: times will be noisy.`);
  const rows = await zoo.runZoo({
    cells,
    workloads,
    budget,
    forwardCutoffMs: FORWARD_CUTOFF_MS,
    peers: { pytorch: contenders.includes("pytorch"), jaxjs: contenders.includes("jax-js") },
    progress,
  });
  if (tty) process.stderr.write("\r\x1b[2K");
  const endLoad = os.loadavg();
  say();
  say(zoo.formatZoo(rows));
  const checks = rows.flatMap((r) => r.checks);
  const failedChecks = checks.filter((c) => !c.pass);
  const failedRows = rows.filter((r) => r.error || r.peers.some((p) => p.status === "failed"));
  if (checks.length) {
    say();
    say(`loss checks (cellforge and each peer on the same parameters, inputs and initial states):`);
    for (const l of zoo.formatChecks(rows)) say(l);
  }
  // checkpointing at T = 1,000, for the cells of its table that this run includes
  const cpCells = zoo.CHECKPOINT_CELLS.filter((c) => cells.includes(c));
  const checkpointed = contenders.includes("cellforge") && cpCells.length ? await zoo.runCheckpointed(cpCells, budget, progress) : [];
  if (tty) process.stderr.write("\r\x1b[2K");
  if (checkpointed.length) {
    say();
    for (const l of zoo.formatCheckpointed(checkpointed)) say(l);
  }
  if (values.markdown) {
    say();
    say(zoo.formatZooMarkdown(rows, { start: env.loadAverage, end: endLoad }, budget));
  }
  const seconds = (performance.now() - started) / 1000;
  say();
  say(`total ${seconds.toFixed(0)} s; load average at the start ${env.loadAverage.map((l) => l.toFixed(2)).join(" ")}, now ${endLoad.map((l) => l.toFixed(2)).join(" ")}`);
  if (failedChecks.length || failedRows.length || checkpointed.some((r) => !r.sameBits)) {
    const what = [
      ...checkpointed.filter((r) => !r.sameBits).map((r) => `${r.cell}: checkpointed gradients DIFFER from the whole backward's`),
      ...failedChecks.map((c) => `${rows.find((r) => r.checks.includes(c))!.cell} ${rows.find((r) => r.checks.includes(c))!.workload}: cellforge and ${c.peer} DISAGREE (${c.precision})`),
      ...failedRows.flatMap((r) => [...(r.error ? [`${r.cell} ${r.workload}: cellforge FAILED: ${r.error}`] : []), ...r.peers.filter((p) => p.status === "failed").map((p) => `${r.cell} ${r.workload}: ${p.name} FAILED: ${p.reason}`)]),
    ];
    process.stderr.write(`\nFAIL: ${what.length} problem${what.length === 1 ? "" : "s"}; the times above are not comparable where a check failed:\n${what.map((w) => `  ${w}`).join("\n")}\n`);
    process.exitCode = 1;
  }
  if (values.json) {
    const json = JSON.stringify({ environment: env, seconds, zoo: rows, checkpointed, loadAtEnd: endLoad }, null, 2);
    if (values.out !== undefined) {
      fs.writeFileSync(values.out, json + "\n");
      say(`JSON written to ${values.out}`);
    } else process.stdout.write(json + "\n");
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

/** A contender timed in another process: its timings become the same row as runContender's. */
async function runExternal(
  c: ExternalContender,
  w: Workload,
  cell: Cell,
  inputs: Inputs,
  budget: Budget,
  f: { forward: number; forwardBackward: number },
): Promise<ContenderResult> {
  try {
    const m = await c.measure(w, cell, inputs, budget, FORWARD_CUTOFF_MS);
    if ("skip" in m) return { name: c.name, status: "skipped", reason: m.skip };
    const result: ContenderResult = { name: c.name, status: "ok", variant: m.variant };
    result.forwardBackward = measured(m.forwardBackward, f.forwardBackward);
    if (m.forward) result.forward = measured(m.forward, f.forward);
    else result.forwardNote = m.forwardNote ?? "not provided";
    if (m.loss !== undefined) result.loss = m.loss;
    return result;
  } catch (err) {
    return { name: c.name, status: "failed", reason: message(err) };
  }
}

/**
 * numpy's sgemm at the gemm table's shapes (and the n×n×n peak), attached to the results;
 * the summary says which BLAS it called, or why it did not run.
 */
async function numpyGemm(results: GemmResult[], budget: Budget, env: Environment): Promise<SgemmSummary> {
  const { numpySgemm, describeBlas } = await import("./peers/torch.ts");
  try {
    const r = await numpySgemm(results, SGEMM_PEAK_N, budget);
    if ("missing" in r) {
      env.python = { missing: r.missing };
      return { note: `not installed: ${r.missing}` };
    }
    env.python = { info: r.info };
    attachSgemm(results, r.gemm);
    return {
      blas: describeBlas(r.info.blas.numpy),
      warnings: r.info.warnings,
      peak: r.peak && { n: SGEMM_PEAK_N, numpy: r.peak.numpy.gflops, torch: r.peak.torch?.gflops },
    };
  } catch (err) {
    return { note: `FAILED: ${message(err)}` };
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
        "no-export": { type: "boolean" },
        json: { type: "boolean" },
        out: { type: "string" },
        zoo: { type: "boolean" },
        markdown: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return usage(message(err));
  }
}

/** The items named in a comma-separated list, in their own order; "name*" matches every name it begins. */
function pick<T>(all: readonly T[], wanted: string | undefined, key: (t: T) => string, what: string): T[] {
  if (wanted === undefined) return [...all];
  const names = wanted.split(",").map((s) => s.trim().toLowerCase());
  const matches = (n: string, t: T) =>
    n.endsWith("*") ? key(t).toLowerCase().startsWith(n.slice(0, -1)) : key(t).toLowerCase() === n;
  for (const n of names) {
    if (!all.some((t) => matches(n, t))) usage(`unknown ${what} "${n}"; choose from ${all.map(key).join(", ")}`);
  }
  return all.filter((t) => names.some((n) => matches(n, t)));
}

function usage(problem: string): never {
  process.stderr.write(`bench: ${problem}\n\n${USAGE}\n`);
  process.exit(2);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

await main();

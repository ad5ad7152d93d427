// The exported-to-PyTorch table (#16, item 4): cells written by `cellforge export --target pytorch`
// (codegen/pytorch.ts) timed against the same cells written by hand in eager PyTorch and against
// nn.GRU / nn.LSTM, all in one Python subprocess (scripts/export-pytorch-bench.py), float32, one
// thread. The contenders of a cell take turns run by run, so the ratios are of the same minutes of a
// busy machine; the load average is printed with them.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { emitPytorch } from "../codegen/pytorch.ts";
import { loadCell } from "../src/load.ts";
import { PYTHON } from "./peers/torch.ts";
import { fmtMs, formatTable, type Row } from "./table.ts";
import type { Workload } from "./workloads.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = path.join(ROOT, "scripts", "export-pytorch-bench.py");

/** The cells of the table: the custom layer-norm cells and a GRU that nn.GRU also computes. */
export const EXPORT_CELLS = ["lstm-layernorm", "gru-layernorm", "gru"] as const;
/** The workloads it runs at (of the ones asked for): W2's B = 1 measures Python's per-op cost alone. */
export const EXPORT_WORKLOADS = ["W1", "W3"];
/** Losses of the same cell in float32 agree to this, relative (summed over T·B·H products). */
const LOSS_TOL = 1e-4;

export interface ExportRow { name: string; ms: number; loss: number; compared: boolean }
export interface ExportBlock { workload: string; cell: string; rows: ExportRow[]; load: number[] }
export interface ExportResult { torch?: string; runs?: number; blocks: ExportBlock[]; note?: string }

/** Exports the cells, runs the script once per workload and cell, and prints each block as it comes. */
export async function benchExportPytorch(workloads: readonly Workload[], say: (s?: string) => void, runs = 10): Promise<ExportResult> {
  const ws = workloads.filter((w) => EXPORT_WORKLOADS.includes(w.name));
  if (!ws.length) return { blocks: [], note: `none of ${EXPORT_WORKLOADS.join(", ")} asked for` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellforge-bench-export-"));
  const blocks: ExportBlock[] = [];
  let torch: string | undefined;
  try {
    const cells = [];
    for (const name of EXPORT_CELLS) {
      const cell = await loadCell(name);
      const file = path.join(dir, `${name.replace(/-/g, "_")}.py`);
      const text = emitPytorch(cell, { source: `dsl/${name}.ts`, command: `cellforge export ${name} --target pytorch` });
      fs.writeFileSync(file, text);
      cells.push({ cell: name, file, module: /^class (\w+)\(torch\.nn\.Module\)/m.exec(text)![1] });
    }
    for (const w of ws) {
      for (const c of cells) {
        const reply = await callScript({ cells: [c], workloads: [{ name: w.name, B: w.B, D: w.D, H: w.H, T: w.T }], runs, warmups: 3 });
        if (!reply.ok) return { blocks, note: reply.missing ? `not installed: ${PYTHON} has no ${reply.missing}` : `FAILED: ${reply.error}` };
        torch = reply.torch;
        const block = { ...reply.results[0]!, load: os.loadavg() };
        blocks.push(block);
        say();
        say(formatExportBlock(block, w));
      }
    }
    return { torch, runs, blocks };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatExportBlock(b: ExportBlock, w: Workload): string {
  const exported = b.rows.find((r) => r.name === "exported")!;
  const hand = b.rows.find((r) => r.name === "hand autograd")!;
  const lossCheck = (r: ExportRow) => {
    if (!r.compared) return "(another cell)";
    const rel = Math.abs(r.loss - exported.loss) / Math.max(1, Math.abs(exported.loss));
    return rel <= LOSS_TOL ? `same (${rel.toExponential(0)})` : `DISAGREE (${rel.toExponential(1)})`;
  };
  const rows: Row[] = b.rows.map((r) => [r.name, fmtMs(r.ms), (r.ms / exported.ms).toFixed(2), (hand.ms / r.ms).toFixed(2), lossCheck(r)]);
  const title = `exported to PyTorch: ${b.cell}, ${w.name} (B=${w.B} D=${w.D} H=${w.H} T=${w.T}), fwd+bwd, float32, one thread; load ${b.load.map((l) => l.toFixed(1)).join(" ")}`;
  return `${title}\n${formatTable(["", "median", "/ exported", "hand / row", "loss vs exported"], rows)}`;
}

interface Reply { ok: boolean; missing?: string; error?: string; torch?: string; results: Omit<ExportBlock, "load">[] }

function callScript(request: object): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", () => resolve({ ok: false, missing: "Python", results: [] }));
    child.stdin.on("error", () => {});
    child.on("close", (code) => {
      if (code === 0) {
        try {
          return resolve(JSON.parse(stdout.trim().split("\n").pop()!) as Reply);
        } catch {
          // below
        }
      }
      const last = stderr.trim().split("\n").filter(Boolean).pop() ?? `exited with ${code}`;
      if (/No module named 'torch'/.test(stderr)) return resolve({ ok: false, missing: "torch", results: [] });
      reject(new Error(`scripts/export-pytorch-bench.py: ${last}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

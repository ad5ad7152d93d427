// PyTorch peer and numpy sgemm: native PyTorch (Debian's python3-torch) and numpy, timed in a
// Python subprocess, scripts/bench-torch.py, one thread. PyTorch runs torch.nn.GRU / torch.nn.LSTM;
// numpy runs numpy.matmul at the gemm table's shapes. Both call Debian's libblas.so.3, so how fast
// they are depends on which BLAS that alternative points to (bench/README.md).
//
// The interpreter is /usr/bin/python3 (the one python3-torch installs into), or $CELLFORGE_PYTHON.
// When it or torch is missing, the contender loads as "not installed" and the bench goes on.
//
// The shared inputs go to the script as raw little-endian float32 files in a temporary folder;
// its request and reply are one JSON object each, on stdin and stdout. One subprocess per
// workload and cell, run when the pytorch row's turn comes, so it never overlaps another contender.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ExternalContender, ExternalMeasurement } from "../results.ts";
import type { Budget, Timing } from "../timing.ts";
import type { Cell, Inputs, Workload } from "../workloads.ts";

export const PYTHON = process.env.CELLFORGE_PYTHON || "/usr/bin/python3";
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "bench-torch.py");
const INSTALL = "apt-get install -y python3-torch libopenblas0-pthread";

/** What the script reports about itself: versions, threads and the BLAS torch and numpy call. */
export interface PythonInfo {
  python: string;
  pythonVersion: string;
  /** null when torch is not there (only the sgemm request runs without it) */
  torch: string | null;
  /** the Debian package version, e.g. "1.13.1+dfsg-4" (torch.__version__ reads "1.13.0a0") */
  torchPackage: string | null;
  numpy: string;
  numpyPackage: string | null;
  threads: number | null;
  interopThreads: number | null;
  mkldnn: boolean | null;
  blas: {
    numpy: BlasUse;
    torch: (BlasUse & { buildInfo: string | null }) | null;
    /** where Debian's libblas.so.3-x86_64-linux-gnu alternative points */
    libblasAlternative: string | null;
    libblasAlternativeKind: string | null;
    openblasPackage: string | null;
    /** openblas_get_num_threads() in the script's process, when the BLAS is OpenBLAS */
    openblasThreads: number | null;
  };
  warnings: string[];
}

export interface BlasUse {
  /** "OpenBLAS", "BLIS", "MKL", "ATLAS", "reference" (netlib), "unknown" … */
  kind: string;
  /** BLAS/LAPACK libraries mapped into the process, real paths */
  libraries: string[];
}

/** numpy.matmul (or torch.mm) of (M×K)·(K×N), float32, timed like timing.ts. */
export interface Sgemm {
  M: number;
  K: number;
  N: number;
  timing: Timing;
  gflops: number;
}

export interface Reply {
  ok: boolean;
  missing?: string;
  error?: string;
  info?: PythonInfo;
  rnn?: ExternalMeasurement;
  gemm?: Sgemm[];
  peak?: { numpy: Sgemm; torch?: Sgemm };
  /** the zoo's PyTorch peers of one cell (bench/zoo-peers.ts), by kind: "eager", "torchscript" */
  zoo?: Record<string, unknown>;
}

/** The interpreter or one of its modules is not there: the row says "not installed". */
export class NotInstalled extends Error {}

/** Versions and BLAS, or why Python cannot run the script with torch. */
export async function probe(): Promise<{ info: PythonInfo } | { missing: string }> {
  try {
    return { info: (await callPython({ needTorch: true })).info! };
  } catch (err) {
    if (err instanceof NotInstalled) return { missing: err.message };
    throw err;
  }
}

/** The pytorch contender, or why it cannot run here. */
export async function pytorch(): Promise<ExternalContender | { missing: string }> {
  const p = await probe();
  if ("missing" in p) return { missing: `not installed: ${p.missing}` };
  const { info } = p;
  return {
    name: "pytorch",
    describe:
      `torch ${info.torch}${info.torchPackage ? ` (python3-torch ${info.torchPackage})` : ""}, ` +
      `nn.GRU/nn.LSTM, ${info.threads} thread, Python ${info.pythonVersion} (${info.python}), ` +
      `BLAS: ${info.blas.torch ? describeBlas(info.blas.torch) : "?"}`,
    warnings: info.warnings,
    info,
    async measure(w, cell, inputs, budget, forwardCutoffMs) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cellforge-bench-"));
      try {
        const files = writeInputs(dir, inputs);
        const reply = await callPython({
          budget,
          forwardCutoffMs,
          rnn: { cell, B: w.B, D: w.D, H: w.H, T: w.T, inputs: files },
        });
        return reply.rnn!;
      } catch (err) {
        if (err instanceof NotInstalled) return { skip: `not installed: ${err.message}` };
        throw err;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * numpy's sgemm at the given shapes, and at a large square one (`peak`: n×n×n) in numpy and, when
 * it is there, torch: the most this machine's BLAS does on one thread. `missing` when Python or
 * numpy is not there.
 */
export async function numpySgemm(
  shapes: { M: number; K: number; N: number }[],
  peak: number,
  budget: Budget,
): Promise<{ info: PythonInfo; gemm: Sgemm[]; peak?: { numpy: Sgemm; torch?: Sgemm } } | { missing: string }> {
  const unique = [...new Map(shapes.map((s) => [`${s.M}x${s.K}x${s.N}`, { M: s.M, K: s.K, N: s.N }])).values()];
  try {
    const reply = await callPython({ budget, gemm: { shapes: unique, peak } });
    return { info: reply.info!, gemm: reply.gemm ?? [], peak: reply.peak };
  } catch (err) {
    if (err instanceof NotInstalled) return { missing: err.message };
    throw err;
  }
}

/** e.g. "OpenBLAS /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "REFERENCE netlib /usr/lib/…" */
export function describeBlas(b: BlasUse): string {
  const lib = b.libraries.find((l) => !path.basename(l).toLowerCase().includes("lapack")) ?? b.libraries[0];
  return `${b.kind === "reference" ? "REFERENCE netlib" : b.kind}${lib ? ` ${lib}` : ""}`;
}

// ── the subprocess ───────────────────────────────────────────────────────────

/** Raw little-endian float32 files, one per input; returns their paths by name. */
function writeInputs(dir: string, inputs: Inputs): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, a] of Object.entries(inputs) as [string, Float32Array][]) {
    const file = path.join(dir, `${name}.f32`);
    let bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    if (os.endianness() !== "LE") {
      bytes = Buffer.alloc(a.byteLength);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      a.forEach((v, i) => view.setFloat32(4 * i, v, true));
    }
    fs.writeFileSync(file, bytes);
    files[name] = file;
  }
  return files;
}

/** Runs the script with one request; throws NotInstalled when Python, numpy or torch is missing. */
export function callPython(request: object): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // the script sets the BLAS thread variables itself, before it imports numpy and torch
    const child = spawn(PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", (err: NodeJS.ErrnoException) => {
      const how = err.code === "ENOENT" ? "no" : `cannot run the`;
      const from = process.env.CELLFORGE_PYTHON ? " ($CELLFORGE_PYTHON)" : ` (${INSTALL})`;
      reject(new NotInstalled(`${how} Python at ${PYTHON}${from}`));
    });
    child.stdin.on("error", () => {}); // an interpreter that exits at once closes the pipe; "close" reports it
    child.on("close", (code, signal) => {
      const line = stdout.trim().split("\n").pop() ?? "";
      let reply: Reply | undefined;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        // below
      }
      if (reply && !reply.ok && reply.missing) {
        return reject(new NotInstalled(`${PYTHON} has no ${reply.missing} (${INSTALL})`));
      }
      if (code === 0 && reply?.ok) return resolve(reply);
      const last = stderr.trim().split("\n").filter(Boolean).pop();
      reject(
        new Error(
          `scripts/bench-torch.py ${signal ? `killed by ${signal}` : `exited with ${code}`}` +
            (last ? `: ${last}` : reply?.error ? `: ${reply.error}` : ""),
        ),
      );
    });
    child.stdin.end(JSON.stringify(request));
  });
}

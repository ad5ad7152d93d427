// Exports lstm-layernorm and gru to a temporary folder and times them against hand-written eager
// PyTorch (scripts/export-pytorch-bench.py says what is timed). Not a test: it prints.
//   node --conditions=cellforge-source --import tsx scripts/export-pytorch-bench.ts
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, loadCell } from "../src/load.ts";
import { emitPytorch } from "../codegen/pytorch.ts";

const PYTHON = process.env.CELLFORGE_PYTHON || "/usr/bin/python3";
const dir = mkdtempSync(join(tmpdir(), "cellforge-export-bench-"));
try {
  for (const name of ["lstm-layernorm", "gru"]) {
    const cell = await loadCell(name);
    writeFileSync(join(dir, `${name.replace(/-/g, "_")}.py`), emitPytorch(cell, { source: `dsl/${name}.ts`, command: `cellforge export ${name} --target pytorch` }));
  }
  const r = spawnSync(PYTHON, [join(ROOT, "scripts", "export-pytorch-bench.py"), dir], { stdio: "inherit" });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

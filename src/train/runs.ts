// A run's edges, as the command line meets them: the output folder, `--init` (layer 1 from a
// cellforge parameter file, JSON or safetensors), the options `--resume` must not change, and what to say when a run
// diverged. Each refusal is a RunError naming the path or option and what to do.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import type { Cell } from "../cell.ts";
import { InteropError, readCellParams } from "../interop/convert.ts";
import { isSafetensors, weightsJson } from "../interop/files.ts";
import { ModelFileError } from "../../nn/file.ts";
import { CheckpointError } from "./checkpoint.ts";
import { basename, extname, resolve } from "node:path";
import { builtinCellFiles } from "../load.ts";
import { firstLayerSizes } from "./model.ts";
import { type DivergedError, type TrainConfig, Trainer } from "./trainer.ts";

/** A run's option or file that cannot be used (exit code 1). */
export class RunError extends Error {}

/** The output folder, made; a path that is a file is refused by name. */
export function outFolder(out: string): void {
  let isDir: boolean | null = null;
  try {
    isDir = statSync(out).isDirectory();
  } catch {
    // it does not exist yet: made below, with any missing parent
  }
  if (isDir === false) throw new RunError(`--out ${out}: is a file; --out names a folder for the logs, plot and checkpoint`);
  try {
    mkdirSync(out, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunError(`--out ${out}: cannot make this folder (${code === "ENOTDIR" || code === "EEXIST" ? "a part of the path is a file" : code === "EACCES" ? "permission denied" : (e as Error).message})`);
  }
}

/**
 * The cell a resumed run continues with. A checkpoint can come from anywhere, and its header names
 * the cell it trained: a cell in dsl/ is taken by that name, but a cell file is loaded (and so run)
 * only when the user names it on the command line, never because a checkpoint says so.
 */
export function resumeCell(path: string, recorded: unknown, args: readonly string[]): string {
  if (args.length > 1) throw new RunError(`usage: cellforge train --resume <file.ckpt> [<cell file>] [--steps n]: one cell file at most, got ${args.length} arguments`);
  if (args.length === 1) return resolve(args[0]!);
  const builtin = builtinCellFiles().map((f) => basename(f, extname(f)));
  if (typeof recorded === "string" && builtin.includes(recorded)) return recorded;
  const how = `give the cell file yourself, as in\n  cellforge train --resume ${path} <cell file>`;
  if (typeof recorded !== "string") throw new RunError(`${path}: the checkpoint names no cell (its config.cell is ${recorded === null ? "null" : typeof recorded}): ${how}`);
  const shown = JSON.stringify(recorded.length > 200 ? `${recorded.slice(0, 200)}…` : recorded);
  throw new RunError(`${path}: the run trained the cell file ${shown}, not a cell of dsl/. A checkpoint may come from elsewhere, so cellforge does not load a file it names: ${how}`);
}

/** Options that fix the model and the run: with --resume they come from the checkpoint, and one given must agree with it. */
const RUN_FLAGS: readonly (readonly [string, string, (c: TrainConfig) => string | number | undefined])[] = [
  ["task", "task", (c) => c.task.name], ["T", "T", (c) => c.task.T], ["L", "L", (c) => c.task.L], ["K", "K", (c) => c.task.K],
  ["hidden", "hidden", (c) => c.hidden], ["layers", "layers", (c) => c.layers], ["B", "batch size B", (c) => c.B], ["seed", "seed", (c) => c.seed],
  ["precision", "precision", (c) => c.precision], ["optimizer", "optimizer", (c) => c.optimizer.kind], ["lr", "learning rate", (c) => c.optimizer.lr],
  ["momentum", "momentum", (c) => (c.optimizer.kind === "sgd" ? c.optimizer.momentum : undefined)], ["clip", "clip", (c) => c.clip],
  ["eval-every", "eval-every", (c) => c.evalEvery], ["eval-size", "eval-size", (c) => c.evalSize], ["threshold", "threshold", (c) => c.threshold],
  ["sizes", "sizes", (c) => (c.sizes ? Object.entries(c.sizes).map(([k, v]) => `${k}=${v}`).join(",") : undefined)], ["init", "init", (c) => c.init],
];

/** With --resume, a flag that asks for another model or run than the checkpoint's: say what differs. */
export function checkResumeFlags(path: string, tr: Trainer, flags: Readonly<Record<string, string | boolean | undefined>>): void {
  const c = tr.config;
  for (const [flag, label, get] of RUN_FLAGS) {
    const v = flags[flag];
    if (v === undefined) continue;
    const have = get(c);
    const same = typeof have === "number" ? Number(v) === have : String(v) === have || (flag === "sizes" && typeof v === "string" && have !== undefined && [...v.split(",")].sort().join(",") === have.split(",").sort().join(","));
    if (same) continue;
    const arrays = tr.model.parameters.map((p) => `${p.name} ${p.length}`);
    throw new RunError(`${path}: the checkpoint's model has ${label} ${have ?? "unset"} (cell "${tr.model.cell}", ${c.layers} layer${c.layers > 1 ? "s" : ""}${flag === "hidden" ? "" : `, hidden ${c.hidden}`}, ${arrays.length} arrays of these sizes: ${arrays.slice(0, 6).join(", ")}${arrays.length > 6 ? ", …" : ""}); this run asks ${label} ${String(v)}. --resume continues the run as it was (only --steps, --out, --checkpoint-every and --json apply): drop --${flag}, or start a new run without --resume`);
  }
}

/**
 * `--init params.json`: layer 1 of a new run starts from cellforge parameters, whose sizes must be the
 * run's: convert's `--to cellforge` JSON or .safetensors, or (as convert reads them, files.ts) layer 1
 * of a cellforge model file or checkpoint.
 */
export function initFrom(tr: Trainer, cell: Cell, path: string): void {
  if (tr.config.layers !== 1) throw new RunError(`--init ${path}: the file holds one cell's parameters, for a 1-layer model; this run asks --layers ${tr.config.layers}`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunError(`--init ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a parameter file" : (e as Error).message}`);
  }
  let cp;
  try {
    let json: unknown;
    if (isSafetensors(bytes)) json = weightsJson(cell, "cellforge", bytes, path).json;
    else
      try {
        json = JSON.parse(bytes.toString("utf8"));
      } catch (e) {
        throw new RunError(`--init ${path}: neither a safetensors file nor valid JSON: ${(e as Error).message}`);
      }
    cp = readCellParams(cell, json);
  } catch (e) {
    if (e instanceof InteropError) throw new RunError(`--init ${path}: ${e.message} (make one with cellforge convert --from pytorch|keras --to cellforge ${tr.config.cell} in.json ${path})`);
    if (e instanceof ModelFileError || e instanceof CheckpointError) throw new RunError(`--init ${e.message}`);
    throw e;
  }
  const { sizes: layer, hiddenSize, projected } = firstLayerSizes(tr.mod, { hidden: tr.config.hidden, inputSize: tr.task.inputSize, sizes: tr.config.sizes });
  const differ = Object.entries(cp.sizes).filter(([k, v]) => layer[k] !== v);
  if (differ.length) {
    const why = (k: string) => (k === hiddenSize ? "--hidden" : !projected ? `the ${tr.task.title}'s input size` : "the input projection's size, --hidden");
    throw new RunError(`--init ${path}: the parameters have ${Object.entries(cp.sizes).map(([k, v]) => `${k} = ${v}`).join(", ")}; this run's layer 1 has ${differ.map(([k]) => `${k} = ${layer[k] ?? "none"} (${why(k)})`).join(", ")}`);
  }
  tr.initLayer1(cp.params, `--init ${path}`);
}

/** What to say when a run diverged: the step and the number, what to try, and what was kept. */
export function divergedMessage(e: DivergedError, tr: Trainer, ckpt: string, label = ""): string {
  const c = tr.config;
  const tries = [`a lower --lr (this run: ${c.optimizer.lr})`, c.clip ? `a smaller --clip (this run: ${c.clip})` : "clipping the gradient's norm, --clip 1 (this run: off)"];
  let kept = "no checkpoint was saved";
  if (existsSync(ckpt)) {
    let at = "";
    try {
      at = ` (step ${Trainer.read(ckpt).header.meta.step})`;
    } catch {
      // an unreadable file is still left as it was
    }
    kept = `the last checkpoint, ${ckpt}${at}, was kept as it was`;
  }
  return `${label}${e.message}.
Try ${tries.join(", or ")}. The log and plot end at step ${tr.history.at(-1)?.step ?? 0}; ${kept}.`;
}

// `cellforge export <cell> --target pytorch [--out mycell.py]`: the cell, with its derived backward,
// as a module of another framework (codegen/pytorch.ts). Without --out the module goes to stdout.
import { writeFileSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { loadCell, ROOT } from "../src/load.ts";
import { ExportError, emitPytorch } from "../codegen/pytorch.ts";
import { UsageError } from "./main.ts";
import { shellWord } from "./sizes.ts";

export const EXPORT_USAGE = "cellforge export <cell> --target pytorch [--out mycell.py]";
/** Each target and what it writes. */
export const TARGETS: Readonly<Record<string, string>> = {
  pytorch: "a Python module: a torch.autograd.Function whose backward is the derived one, and a torch.nn.Module",
};

/** A path as a header shows it: relative (to the working directory, or to this package for a built-in cell), forward slashes. */
function shownPath(p: string): string {
  const abs = resolve(p);
  const fromCwd = relative(process.cwd(), abs), fromRoot = relative(ROOT, abs);
  const rel = !fromCwd.startsWith("..") && !isAbsolute(fromCwd) ? fromCwd : !fromRoot.startsWith("..") && !isAbsolute(fromRoot) ? fromRoot : abs.split(sep).pop()!;
  return rel.split(sep).join("/");
}

export async function exportCmd(args: string[], flags: Record<string, string | boolean | undefined>): Promise<number> {
  const targets = Object.keys(TARGETS);
  if (args.length !== 1) throw new UsageError(`usage: ${EXPORT_USAGE}`);
  const target = flags.target;
  if (typeof target !== "string") throw new UsageError(`export needs --target (${targets.join(", ")})\nusage: ${EXPORT_USAGE}`);
  if (!targets.includes(target)) throw new UsageError(`export: --target is ${targets.map((t) => `${t} (${TARGETS[t]})`).join(", ")}, not ${JSON.stringify(target)}`);
  const ref = args[0]!;
  const cell = await loadCell(ref);
  const shownRef = /[/\\]|\.(ts|json|js)$/.test(ref) ? shownPath(ref) : ref;
  const out = typeof flags.out === "string" ? flags.out : undefined;
  let text: string;
  try {
    text = emitPytorch(cell, {
      source: cell.file ? shownPath(cell.file) : shownRef,
      // a shell reads the path back as it is (codegen/pytorch.ts puts the line in a comment, escaped)
      command: `cellforge export ${shellWord(shownRef)} --target ${target}${out ? ` --out ${shellWord(shownPath(out))}` : ""}`,
    });
  } catch (e) {
    if (e instanceof ExportError) { process.stderr.write(`cellforge export: cell "${cell.name}": ${e.message}\n`); return 1; }
    throw e;
  }
  if (!out) { process.stdout.write(text); return 0; }
  writeFileSync(out, text);
  process.stdout.write(`wrote ${out}: ${cell.name} for PyTorch (an autograd.Function with the derived backward, and a torch.nn.Module)\n`);
  return 0;
}

// `cellforge convert`: a cell's weights between PyTorch's state_dict, Keras/tfjs's weights and
// cellforge's own parameters (src/interop; the JSON formats are in the README, "Which GRU is this?").
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CellError } from "../src/errors.ts";
import { LoadError, loadCell } from "../src/load.ts";
import { containerKind } from "../nn/file.ts";
import { type CellParams, FRAMEWORK_NAME, InteropError, readCellParams, readWeights, route, writeCellParams, writeWeights } from "../src/interop/convert.ts";

export const CONVERT_USAGE = "cellforge convert --from pytorch|keras|cellforge --to cellforge|pytorch|keras <cell> <in.json> <out.json>";

const FROM = ["pytorch", "keras", "cellforge"] as const;
const TO = ["cellforge", "pytorch", "keras"] as const;
type Side = (typeof FROM)[number];

/** JSON with every innermost array (a vector, or a matrix row) on one line. */
export function formatJson(v: unknown, indent = ""): string {
  const inner = indent + "  ";
  if (Array.isArray(v)) {
    if (v.every((x) => !Array.isArray(x) && (typeof x !== "object" || x === null))) return JSON.stringify(v);
    return `[\n${v.map((x) => inner + formatJson(x, inner)).join(",\n")}\n${indent}]`;
  }
  if (typeof v === "object" && v !== null) {
    const entries = Object.entries(v);
    if (entries.length === 0) return "{}";
    if (entries.every(([, x]) => typeof x !== "object" || x === null)) return JSON.stringify(v).replace(/,"/g, ', "').replace(/":/g, '": ');
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${formatJson(x, inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(v);
}

/** Why `outPath` cannot be written, found before any work: a folder, or in a folder that does not exist. */
function outPathProblem(outPath: string): string | null {
  const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return null; } };
  if (isDir(outPath)) return `${outPath}: is a folder; the output is a file, such as ${join(outPath, "weights.json")}`;
  const dir = dirname(outPath), d = isDir(dir);
  return d === null ? `${outPath}: the folder ${dir} does not exist; make it first (mkdir -p ${dir})` : d ? null : `${outPath}: ${dir} is a file, not a folder`;
}

const shapes = (t: Readonly<Record<string, { readonly shape: readonly number[] }>>) => Object.entries(t).map(([k, v]) => `${k} [${v.shape.join(", ")}]`).join(", ");

export async function convertCmd(args: string[], flags: Record<string, string | boolean | undefined>): Promise<number> {
  const out = (s: string) => process.stdout.write(s + "\n");
  const fail = (s: string, code = 1) => { process.stderr.write(s + "\n"); return code; };
  const { from, to } = flags;
  if (args.length !== 3 || typeof from !== "string" || typeof to !== "string") return fail(`usage: ${CONVERT_USAGE}`, 2);
  if (!(FROM as readonly string[]).includes(from)) return fail(`convert: --from is ${FROM.join(", ")}, not ${JSON.stringify(from)}\nusage: ${CONVERT_USAGE}`, 2);
  if (!(TO as readonly string[]).includes(to)) return fail(`convert: --to is ${TO.join(", ")}, not ${JSON.stringify(to)}\nusage: ${CONVERT_USAGE}`, 2);
  const [ref, inPath, outPath] = args as [string, string, string];
  const badOut = outPathProblem(outPath);
  if (badOut) return fail(`convert: ${badOut}`);
  try {
    const cell = await loadCell(ref);
    // the cell must be a form each framework side knows, before any file is read
    for (const side of [from, to]) if (side !== "cellforge") route(cell, side as Exclude<Side, "cellforge">);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(inPath, "utf8"));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code, ckpt = !code && containerKind(readFileSync(inPath)) !== null;
      return fail(`${inPath}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder; give the weights' JSON file" : code ? (e as Error).message : ckpt ? "a cellforge checkpoint or model file (binary), not weights in JSON; convert reads JSON (a PyTorch state_dict, Keras weights or cellforge parameters), and scripts/cellforge_model.py reads these files in Python" : `not valid JSON: ${(e as Error).message}`}`);
    }
    let cp: CellParams;
    const notes: string[] = [];
    const sizes = (s: CellParams["sizes"]) => `D = ${s.D}, H = ${s.H}`;
    try {
      if (from === "cellforge") {
        cp = readCellParams(cell, json);
        const named = (json as { cell?: unknown }).cell;
        if (named !== undefined && named !== cell.name) notes.push(`${inPath} says it holds cell ${JSON.stringify(named)}'s parameters; they were read as cell "${cell.name}"'s (the names and shapes fit)`);
        out(`read cell "${cell.name}"'s parameters from ${inPath} (${sizes(cp.sizes)})`);
      } else {
        const r = readWeights(cell, from as Exclude<Side, "cellforge">, json);
        cp = r;
        notes.push(...r.notes);
        const via = r.route.recognition.form;
        out(`read ${r.form.title} weights from ${inPath} (${sizes(r.sizes)}) as cell "${cell.name}"'s parameters${via !== r.form ? ` (the cell is ${via.title})` : ""}`);
      }
      let text: string;
      if (to === "cellforge") {
        text = formatJson(writeCellParams(cell, cp));
        out(`wrote cell "${cell.name}"'s parameters to ${outPath}: ${cell.params.map((p) => p.name).join(", ")}`);
      } else {
        const w = writeWeights(cell, to as Exclude<Side, "cellforge">, cp);
        notes.push(...w.notes.filter((n) => !notes.includes(n)));
        text = formatJson(w.json);
        out(`wrote ${w.form.title} weights (${FRAMEWORK_NAME[w.form.framework]} layout) to ${outPath}: ${shapes(w.tensors)}`);
      }
      writeFileSync(outPath, text + "\n");
      for (const n of notes) out(`note: ${n}`);
      return 0;
    } catch (e) {
      if (e instanceof InteropError) return fail(`${inPath}: ${e.message}`);
      // a value nested deeper than any weight, in a place the tensor reader's depth limit does not reach
      if (e instanceof RangeError && /call stack/.test(e.message)) return fail(`${inPath}: a value is nested too deeply to be weights (a cell's weights are vectors and matrices)`);
      throw e;
    }
  } catch (e) {
    if (e instanceof InteropError || e instanceof LoadError || e instanceof CellError) return fail(e.message);
    throw e;
  }
}

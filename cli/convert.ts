// `cellforge convert`: a cell's weights between PyTorch's state_dict, Keras/tfjs's weights and
// cellforge's own parameters (src/interop; the JSON formats are in the README, "Which GRU is this?").
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { CellError } from "../src/errors.ts";
import { LoadError, loadCell } from "../src/load.ts";
import { ModelFileError } from "../nn/file.ts";
import { CheckpointError } from "../src/train/checkpoint.ts";
import { type CellParams, FRAMEWORK_NAME, InteropError, paramShapes, readCellParams, readWeights, route, writeCellParams, writeWeights } from "../src/interop/convert.ts";
import { isSafetensors, parametersFile, weightsJson } from "../src/interop/files.ts";

export const CONVERT_USAGE = "cellforge convert --from pytorch|keras|cellforge --to cellforge|pytorch|keras <cell> <in> <out> [--layer k] [--direction forward|reverse] [--dtype f64|f32]";

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
  const { layer = "1", direction = "forward", dtype } = flags, binary = outPath.endsWith(".safetensors");
  if (typeof layer !== "string" || !/^[1-9]\d*$/.test(layer)) return fail(`convert: --layer is a model's layer, 1, 2, …, not ${JSON.stringify(layer)}\nusage: ${CONVERT_USAGE}`, 2);
  if (direction !== "forward" && direction !== "reverse") return fail(`convert: --direction is forward or reverse, not ${JSON.stringify(direction)}\nusage: ${CONVERT_USAGE}`, 2);
  if (dtype !== undefined && dtype !== "f64" && dtype !== "f32") return fail(`convert: --dtype is f64 or f32, not ${JSON.stringify(dtype)}\nusage: ${CONVERT_USAGE}`, 2);
  if (dtype !== undefined && !binary) return fail(`convert: --dtype applies to a .safetensors output; ${outPath} is JSON, whose numbers are float64's (shortest round-trip form)`, 2);
  try {
    const cell = await loadCell(ref);
    // the cell must be a form each framework side knows, before any file is read
    for (const side of [from, to]) if (side !== "cellforge") route(cell, side as Exclude<Side, "cellforge">);
    let bytes: Buffer;
    try {
      bytes = readFileSync(inPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return fail(`${inPath}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder; give the weights' file (JSON or safetensors)" : (e as Error).message}`);
    }
    // the format by the content: a safetensors file (another tool's, or cellforge's own), else JSON
    const safetensors = isSafetensors(bytes);
    if (!safetensors && (flags.layer !== undefined || flags.direction !== undefined))
      return fail(`${inPath}: JSON weights hold one layer; --layer and --direction pick a layer of a cellforge model file or checkpoint`, 2);
    let json: unknown;
    const notes: string[] = [];
    if (!safetensors)
      try {
        json = JSON.parse(bytes.toString("utf8"));
      } catch (e) {
        return fail(`${inPath}: neither a safetensors file nor valid JSON: ${(e as Error).message}`);
      }
    let cp: CellParams;
    const sizes = (s: CellParams["sizes"]) => `D = ${s.D}, H = ${s.H}`;
    try {
      if (safetensors) {
        const r = weightsJson(cell, from as Side, bytes, inPath, { layer: Number(layer), direction });
        json = r.json;
        notes.push(...r.notes);
      }
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
      // JSON, or a .safetensors file of the same tensors in their shapes (parametersFile)
      const precision = dtype === "f32" ? "float32" : "float64";
      let text: string, file: Uint8Array | undefined;
      if (to === "cellforge") {
        text = formatJson(writeCellParams(cell, cp));
        const shapes = paramShapes(cell, cp.sizes);
        if (binary) file = parametersFile({ kind: "cellforge parameters", cell: cell.name, framework: "cellforge", sizes: cp.sizes }, Object.fromEntries(cell.params.map((p) => [p.name, { shape: shapes[p.name]!, data: cp.params[p.name]! }])), dtype ?? "f64");
        out(`wrote cell "${cell.name}"'s parameters to ${outPath}${binary ? ` (safetensors, ${precision})` : ""}: ${cell.params.map((p) => p.name).join(", ")}`);
      } else {
        const w = writeWeights(cell, to as Exclude<Side, "cellforge">, cp);
        notes.push(...w.notes.filter((n) => !notes.includes(n)));
        text = formatJson(w.json);
        const config = w.json.config as Record<string, unknown> | undefined;
        if (binary) file = parametersFile({ kind: "cellforge parameters", cell: cell.name, framework: to as Side, sizes: cp.sizes, ...(config ? { config } : {}) }, w.tensors, dtype ?? "f64");
        out(`wrote ${w.form.title} weights (${FRAMEWORK_NAME[w.form.framework]} layout${binary ? `, safetensors, ${precision}` : ""}) to ${outPath}: ${shapes(w.tensors)}`);
      }
      writeFileSync(outPath, file ?? text + "\n");
      for (const n of notes) out(`note: ${n}`);
      return 0;
    } catch (e) {
      if (e instanceof InteropError) return fail(`${inPath}: ${e.message}`);
      if (e instanceof ModelFileError || e instanceof CheckpointError) return fail(e.message); // they name the file
      // a value nested deeper than any weight, in a place the tensor reader's depth limit does not reach
      if (e instanceof RangeError && /call stack/.test(e.message)) return fail(`${inPath}: a value is nested too deeply to be weights (a cell's weights are vectors and matrices)`);
      throw e;
    }
  } catch (e) {
    if (e instanceof InteropError || e instanceof LoadError || e instanceof CellError) return fail(e.message);
    throw e;
  }
}

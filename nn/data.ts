// Datasets of variable-length sequences: the arrays fit() takes, and two text formats for them.
//
// JSON:  { "inputs": [ sequence, … ], "targets": [ target, … ] }
//   a sequence is a list of steps, a step a list of its features: [[0.1, 2], [0.3, -1]] is 2 steps of 2
//   features; every step of every sequence has the same number of features, and at least one step.
//   A target, with the readout at the last step: a class index (0, 1, …) or a list of numbers (a
//   regression vector); at every step: a list with one class index per step, or one list of numbers
//   per step. The keys "inputs" and "targets" are the only ones.
// CSV:   one row per step, a header naming the columns, commas between fields (no quoting):
//   sequence  the sequence's id (any text without commas); a sequence's rows are consecutive
//   step      0, 1, 2, … in order within each sequence
//   x, x0, x1, …   the features ("x" followed by digits), in header order
//   y, y0, y1, … or label   the targets: one column is a class index (or a single number), several a vector
//   With the readout at the last step a sequence's target is on its last row; on its earlier rows
//   the target cells are empty or repeat it. At every step each row holds its step's target.
// Sizes are bounded by DATA_LIMITS; a file beyond them, or malformed, is a DataError naming the line and
// column (JSON) or the line and column name (CSV).
import type { FloatArray } from "../runtime/kernel.ts";

/** One sequence: steps×features, as a list of steps (lists or typed arrays) or one flat array (steps·features numbers, step after step). */
export type Sequence = readonly ArrayLike<number>[] | FloatArray;
/** A class index or a vector (readout at the last step), or one of those per step (at every step). */
export type Target = number | readonly number[] | readonly (readonly number[])[];
export interface Dataset {
  readonly x: readonly Sequence[];
  readonly y: readonly Target[];
}
export interface ParsedDataset extends Dataset {
  readonly x: readonly Float64Array[];
  /** Features per step. */
  readonly features: number;
  /** Numbers per target (1 for a class index or a single number). */
  readonly targetSize: number;
}

export const DATA_LIMITS = { chars: 256e6, sequences: 1e6, steps: 1e5, features: 4096, targetSize: 4096, numbers: 5e7 } as const;

/** A dataset text that is malformed or too large: the message names where. */
export class DataError extends Error {}

type At = "last" | "every";

/** A dataset from JSON or CSV text (JSON when it starts with "{"); `name` is the file's, for messages. */
export function parseDataset(text: string, o: { at?: At; format?: "json" | "csv"; name?: string } = {}): ParsedDataset {
  const name = o.name ?? "dataset", at = o.at ?? "last";
  if (text.length > DATA_LIMITS.chars) throw new DataError(`${name}: ${text.length} characters, more than the limit of ${DATA_LIMITS.chars}`);
  const format = o.format ?? (text.trimStart().startsWith("{") ? "json" : "csv");
  return format === "json" ? parseJson(text, at, name) : parseCsv(text, at, name);
}

/** Counts every number against DATA_LIMITS.numbers, and the sizes each sequence must share. */
class Shape {
  numbers = 0;
  features = -1;
  targetSize = -1;
  constructor(readonly fail: (where: number, msg: string) => never) {}
  count(n: number, where: number): void {
    if ((this.numbers += n) > DATA_LIMITS.numbers) this.fail(where, `more than ${DATA_LIMITS.numbers} numbers in all (DATA_LIMITS.numbers)`);
  }
  same(key: "features" | "targetSize", n: number, where: number, what: string): void {
    if (n < 1 || n > DATA_LIMITS[key]) this.fail(where, `${what} has ${n} ${key === "features" ? "features" : "target values"}; allowed 1 to ${DATA_LIMITS[key]}`);
    if (this[key] === -1) this[key] = n;
    else if (this[key] !== n) this.fail(where, `${what} has ${n} ${key === "features" ? "features" : "target values"}, the ones before it ${this[key]}`);
  }
}

// ---- JSON: a reader for exactly this shape, so an error can name its line and column -------------

function parseJson(s: string, at: At, name: string): ParsedDataset {
  let i = 0;
  const fail = (where: number, msg: string): never => {
    const before = s.slice(0, where).split("\n");
    throw new DataError(`${name}: line ${before.length}, column ${before.at(-1)!.length + 1}: ${msg}`);
  };
  const shape = new Shape(fail);
  const ws = () => {
    while (i < s.length && " \t\n\r".includes(s[i]!)) i++;
  };
  const found = () => (i >= s.length ? "the end of the text" : JSON.stringify(s.slice(i, i + 12)));
  const expect = (c: string, what: string) => {
    ws();
    if (s[i] !== c) fail(i, `expected ${what}, found ${found()}`);
    i++;
  };
  const NUM = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y, STR = /"(?:[^"\\\u0000-\u001f]|\\.)*"/y;
  const num = (what: string): number => {
    ws();
    NUM.lastIndex = i;
    const m = NUM.exec(s);
    if (!m) fail(i, `${what} must be a number, found ${found()}`);
    const v = Number(m![0]);
    if (!Number.isFinite(v)) fail(i, `${what} is ${m![0]}, beyond the range of a float64`);
    i += m![0].length;
    return v;
  };
  /** A JSON list, each item read by `item(index, position)`. */
  const list = <T>(what: string, max: number, item: (k: number, pos: number) => T): T[] => {
    expect("[", `${what} as a list "["`);
    const out: T[] = [];
    ws();
    if (s[i] === "]") return (i++, out);
    for (;;) {
      if (out.length >= max) fail(i, `${what} has more than ${max} items (DATA_LIMITS)`);
      ws();
      out.push(item(out.length, i));
      ws();
      if (s[i] === "]") return (i++, out);
      expect(",", `"," or "]" in ${what}`);
    }
  };
  const numbers = (what: string, key: "features" | "targetSize", pos: number): number[] => {
    const v = list(what, DATA_LIMITS[key], (k) => num(`${what}[${k}]`));
    shape.same(key, v.length, pos, what);
    shape.count(v.length, pos);
    return v;
  };
  let kind: boolean | null = null;
  /** Whether a list (not a number) comes next; every target (or step's target) must be of one kind. */
  const isList = (what: string) => {
    ws();
    const list = s[i] === "[";
    if ((kind ??= list) !== list) fail(i, `${what} is ${list ? "a list" : "a number"}, the targets before it ${list ? "numbers" : "lists"}`);
    return list;
  };
  let x: Float64Array[] | null = null, y: Target[] | null = null, xPos = 0, yPos = 0;
  const targetPos: number[] = [];
  expect("{", `an object "{"`);
  ws();
  while (s[i] !== "}") {
    ws();
    STR.lastIndex = i;
    const m = STR.exec(s), keyPos = i;
    if (!m) fail(i, `expected a key in quotes, found ${found()}`);
    i += m![0].length;
    const key = JSON.parse(m![0]) as string;
    expect(":", `":" after "${key}"`);
    ws();
    if (key === "inputs") {
      xPos = i;
      x = list("inputs", DATA_LIMITS.sequences, (n, pos) => {
        const steps = list(`inputs[${n}]`, DATA_LIMITS.steps, (t, p) => numbers(`inputs[${n}][${t}]`, "features", p));
        if (steps.length === 0) fail(pos, `inputs[${n}] has no steps; a sequence needs at least one`);
        return Float64Array.from(steps.flat());
      });
    } else if (key === "targets") {
      yPos = i;
      y = list("targets", DATA_LIMITS.sequences, (n, pos): Target => {
        targetPos.push(pos);
        const what = `targets[${n}]`;
        if (at === "last") return isList(what) ? numbers(what, "targetSize", pos) : (shape.same("targetSize", 1, pos, what), shape.count(1, pos), num(what));
        return list(what, DATA_LIMITS.steps, (t, p) => (isList(`${what}[${t}]`) ? numbers(`${what}[${t}]`, "targetSize", p) : (shape.same("targetSize", 1, p, `${what}[${t}]`), shape.count(1, p), num(`${what}[${t}]`)))) as Target;
      });
    } else fail(keyPos, `unknown key "${key}": a dataset has "inputs" and "targets"`);
    ws();
    if (s[i] === ",") i++;
    else if (s[i] !== "}") fail(i, `expected "," or "}" after "${key}", found ${found()}`);
    ws();
  }
  i++;
  ws();
  if (i < s.length) fail(i, `unexpected ${found()} after the dataset's closing "}"`);
  if (!x || !y) fail(x ? yPos : xPos, `the dataset needs both "inputs" and "targets"`);
  if (x!.length !== y!.length) fail(yPos, `"targets" has ${y!.length} items, "inputs" ${x!.length}: one target per sequence`);
  if (at === "every")
    y!.forEach((t, n) => {
      const steps = x![n]!.length / shape.features;
      if ((t as unknown[]).length !== steps) fail(targetPos[n]!, `targets[${n}] has ${(t as unknown[]).length} steps, inputs[${n}] ${steps}: one target per step`);
    });
  if (x!.length === 0) fail(xPos, `"inputs" is empty`);
  return { x: x!, y: y!, features: shape.features, targetSize: shape.targetSize };
}

// ---- CSV: one row per step --------------------------------------------------------------------

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseCsv(s: string, at: At, name: string): ParsedDataset {
  const lines = s.split("\n");
  const fail = (line: number, msg: string): never => {
    throw new DataError(`${name}: line ${line}: ${msg}`);
  };
  const shape = new Shape(fail);
  const header = lines[0]!.replace(/\r$/, "").split(",").map((h) => h.trim());
  const col = (c: string) => header.indexOf(c);
  const features: number[] = [], targets: number[] = [];
  header.forEach((h, k) => {
    if (/^x\d*$/.test(h)) features.push(k);
    else if (/^y\d*$/.test(h) || h === "label") targets.push(k);
    else if (h !== "sequence" && h !== "step") fail(1, `column ${k + 1} is "${h}": the columns are sequence, step, x… (features) and y… or label (targets)`);
  });
  for (const c of ["sequence", "step"]) if (col(c) < 0) fail(1, `the header needs a column "${c}" (it has ${header.join(",")})`);
  if (new Set(header).size !== header.length) fail(1, `a column name appears twice in the header ${header.join(",")}`);
  if (targets.includes(col("label")) && targets.length > 1) fail(1, `"label" and y… columns together: name the targets one way`);
  if (!features.length || !targets.length) fail(1, `the header needs feature columns (x, x0, x1, …) and target columns (y, y0, … or label)`);
  shape.same("features", features.length, 1, "the header");
  shape.same("targetSize", targets.length, 1, "the header");
  const x: Float64Array[] = [], y: Target[] = [];
  let id: string | null = null, steps: number[][] = [], ys: (number[] | null)[] = [], rowLines: number[] = [];
  const seen = new Set<string>();
  const flush = () => {
    if (id === null) return;
    const t = ys.at(-1);
    if (at === "last") {
      if (!t) fail(rowLines.at(-1)!, `sequence "${id}" has no target on its last row`);
      ys.forEach((r, k) => r && r.some((v, j) => v !== t![j]) && fail(rowLines[k]!, `sequence "${id}": the target differs from the one on its last row`));
      y.push(t!.length === 1 ? t![0]! : t!);
    } else y.push(ys.map((r) => (r!.length === 1 ? r![0]! : r!)) as Target);
    x.push(Float64Array.from(steps.flat()));
  };
  for (let n = 1; n < lines.length; n++) {
    const line = n + 1, text = lines[n]!.replace(/\r$/, "");
    if (text.trim() === "") continue;
    const cells = text.split(",");
    if (cells.length !== header.length) fail(line, `${cells.length} fields, the header has ${header.length}`);
    const value = (k: number) => {
      const c = cells[k]!.trim();
      if (!DECIMAL.test(c)) fail(line, `column ${header[k]} is ${c === "" ? "empty" : JSON.stringify(c)}, not a number`);
      return Number(c);
    };
    const seq = cells[col("sequence")]!.trim(), step = cells[col("step")]!.trim();
    if (seq !== id) {
      flush();
      if (seen.has(seq)) fail(line, `sequence "${seq}" appears again after other sequences; keep a sequence's rows together`);
      if (seen.size >= DATA_LIMITS.sequences) fail(line, `more than ${DATA_LIMITS.sequences} sequences (DATA_LIMITS.sequences)`);
      seen.add(seq);
      (id = seq), (steps = []), (ys = []), (rowLines = []);
    }
    if (step !== String(steps.length)) fail(line, `sequence "${seq}" has step ${JSON.stringify(step)} where step ${steps.length} comes next (steps count 0, 1, 2, … in order)`);
    if (steps.length >= DATA_LIMITS.steps) fail(line, `sequence "${seq}" has more than ${DATA_LIMITS.steps} steps (DATA_LIMITS.steps)`);
    rowLines.push(line);
    steps.push(features.map(value));
    const empty = targets.every((k) => cells[k]!.trim() === "");
    if (empty && at === "every") fail(line, `the target is empty; at every step each row needs its target`);
    ys.push(empty ? null : targets.map(value));
    shape.count(features.length + targets.length, line);
  }
  flush();
  if (!x.length) fail(2, "no rows after the header");
  return { x, y, features: shape.features, targetSize: shape.targetSize };
}

// What a training checkpoint's header holds (TrainMeta, src/train/trainer.ts), checked field by
// field on reading: a malformed header is a CheckpointError naming the file and the field, never a
// run that starts from step −1000, prints one optimizer and runs another, or a stack trace.
import { CheckpointError } from "./checkpoint.ts";
import { TASKS } from "./tasks.ts";
import type { TrainMeta } from "./trainer.ts";

type Rec = Record<string, unknown>;
const isRecord = (x: unknown): x is Rec => typeof x === "object" && x !== null && !Array.isArray(x);
const show = (x: unknown): string => (typeof x === "object" && x !== null ? (Array.isArray(x) ? "a list" : "an object") : JSON.stringify(x) ?? String(x));

/** The header's meta as a TrainMeta, or a CheckpointError naming the first field that is wrong. */
export function checkTrainMeta(path: string, meta: unknown): TrainMeta {
  const bad = (field: string, want: string, got: unknown) => new CheckpointError(`${path}: the header's meta.${field} must be ${want}, not ${show(got)}`);
  const obj = (x: unknown, field: string): Rec => {
    if (!isRecord(x)) throw bad(field, "an object", x);
    return x;
  };
  const int = (o: Rec, k: string, at: string, min: number) => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw bad(`${at}${k}`, `an integer >= ${min}`, v);
    return v;
  };
  const num = (o: Rec, k: string, at: string, ok: (x: number) => boolean = () => true, want = "a finite number") => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw bad(`${at}${k}`, want, v);
    return v;
  };
  const m = obj(meta, "");
  const c = obj(m.config, "config");
  if (typeof c.cell !== "string" || c.cell === "") throw bad("config.cell", "a cell's name or path", c.cell);
  const t = obj(c.task, "config.task");
  if (typeof t.name !== "string" || !Object.hasOwn(TASKS, t.name)) throw bad("config.task.name", Object.keys(TASKS).join(", "), t.name);
  int(t, "T", "config.task.", 2);
  if (t.name === "copy") (int(t, "L", "config.task.", 1), int(t, "K", "config.task.", 2));
  for (const k of ["hidden", "layers", "B", "steps", "evalEvery", "evalSize"]) int(c, k, "config.", 1);
  int(c, "seed", "config.", 0);
  if (c.precision !== 32 && c.precision !== 64) throw bad("config.precision", "32 or 64", c.precision);
  num(c, "clip", "config.", (x) => x >= 0, "a number >= 0");
  num(c, "threshold", "config.");
  if (c.sizes !== undefined) {
    const s = obj(c.sizes, "config.sizes");
    for (const k of Object.keys(s)) int(s, k, "config.sizes.", 1);
  }
  if (c.init !== undefined && typeof c.init !== "string") throw bad("config.init", "the path of a parameter file", c.init);
  const o = obj(c.optimizer, "config.optimizer");
  const rate = (k: string) => num(o, k, "config.optimizer.", (x) => x >= 0, "a number >= 0");
  const unit = (k: string) => num(o, k, "config.optimizer.", (x) => x >= 0 && x < 1, "a number in [0, 1)");
  if (o.kind === "sgd") (rate("lr"), rate("momentum"));
  else if (o.kind === "adam") (rate("lr"), unit("beta1"), unit("beta2"), num(o, "eps", "config.optimizer.", (x) => x > 0, "a number > 0"));
  else throw bad("config.optimizer.kind", `"adam" or "sgd"`, o.kind);
  if (typeof m.cellName !== "string") throw bad("cellName", "a string", m.cellName);
  if (!Array.isArray(m.params)) throw bad("params", "a list of [name, length]", m.params);
  m.params.forEach((p: unknown, i) => {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "string" || typeof p[1] !== "number" || !Number.isSafeInteger(p[1]) || p[1] < 0) throw bad(`params[${i}]`, "[name, length]", p);
  });
  const step = int(m, "step", "", 0);
  if (step > (c.steps as number)) throw bad("step", `at most config.steps = ${String(c.steps)}`, step);
  num(m, "seconds", "", (x) => x >= 0, "a number >= 0");
  num(m, "lossSum", "");
  int(m, "lossCount", "", 0);
  int(m, "optimizerSteps", "", 0);
  if (m.reachedAt !== null) int(m, "reachedAt", "", 0);
  if (!Array.isArray(m.history)) throw bad("history", "a list of evaluations", m.history);
  m.history.forEach((r: unknown, i) => {
    const at = `history[${i}].`, row = obj(r, `history[${i}]`);
    int(row, "step", at, 0);
    num(row, "seconds", at);
    if (row.trainLoss !== null) num(row, "trainLoss", at);
    num(row, "evalLoss", at);
    num(row, "metric", at);
  });
  return m as unknown as TrainMeta;
}

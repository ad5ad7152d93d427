// Checking one fuzz cell: compile it (a refusal must be a CellError, and is attributed to the
// hostile name that causes it), then run the reference gradient check (finite differences, fast
// mode) and every kernel path (check/kernelcheck.ts: ts f64 = reference, f32 ≈ f64, wasm = ts,
// 2 threads = 1 thread, kernel finite differences). Whatever is wrong comes back as findings,
// each with a kind that survives minimization (the failing row, or the stage and error class).
import { compileCell, type Cell } from "../../src/cell.ts";
import { CellError } from "../../src/errors.ts";
import { randomCase } from "../../src/sequence.ts";
import { checkGradients } from "../../check/gradcheck.ts";
import { checkKernels } from "../../check/kernelcheck.ts";
import { type FuzzCell, type Role, allDecls, clone, equationLines, toSpec } from "./ast.ts";
import { PLAIN_PREFIX } from "./names.ts";

export interface Finding {
  /** Stable under minimization: `row: ts f64 = reference evaluator`, `kernels: TypeError: <message, numbers blanked>`, `gradcheck: fd`, … */
  readonly kind: string;
  readonly detail: string;
}

export interface Refusal {
  readonly name: string;
  readonly role: Role;
  /** The CellError's problem (without the excerpt). */
  readonly problem: string;
  /** The problem names the refused name. */
  readonly clear: boolean;
}

export interface CellOutcome {
  /** The cell as checked: hostile names that compileCell refused are renamed to plain ones. */
  readonly fc: FuzzCell;
  readonly refusals: readonly Refusal[];
  readonly compiled: boolean;
  readonly kernelChecked: boolean;
  readonly findings: readonly Finding[];
}

export interface CheckOptions {
  /** Rename refused hostile names and carry on (the fuzz run); off, a refusal is just the outcome. */
  readonly rename?: boolean;
  /** Only what can produce this kind (the minimizer's re-checks): skips the rest. */
  readonly only?: string;
  /**
   * Typecheck the kernel's text (default true). A long run typechecks a sample of its cells: the
   * numbers are checked on every cell, and the typecheck (about a second a cell) finds what the
   * emitter writes, which a sample of the grammar covers.
   */
  readonly typecheck?: boolean;
}

const firstLine = (s: string) => s.split("\n")[0]!.slice(0, 300);
const errName = (e: unknown) => (e instanceof Error ? e.constructor.name : typeof e);
/** An error's class and message with numbers blanked: what a thrown failure's kind is made of. */
const errKind = (e: unknown) => `${errName(e)}: ${firstLine(e instanceof Error ? e.message : String(e)).replace(/\d+(\.\d+)?(e[-+]?\d+)?/g, "N").slice(0, 100)}`;
const errText = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${firstLine(e.message)}` : String(e));

/** A fresh plain name for a declaration: x7, h3, P12, … */
export function plainName(fc: FuzzCell, id: number, role: Role): string {
  const taken = new Set(allDecls(fc).map((d) => d.name));
  let name = `${PLAIN_PREFIX[role]}${id}`;
  for (let k = 1; taken.has(name); k++) name = `${PLAIN_PREFIX[role]}${id}_${k}`;
  return name;
}

export function renamed(fc: FuzzCell, id: number): FuzzCell {
  const out = clone(fc);
  const d = allDecls(out).find((x) => x.id === id)!;
  d.name = plainName(out, id, d.role);
  d.hostile = false;
  return out;
}

type Compiled = { cell: Cell } | { error: CellError } | { crash: unknown };
function compile(fc: FuzzCell): Compiled {
  try {
    return { cell: compileCell(toSpec(fc)) };
  } catch (e) {
    return e instanceof CellError ? { error: e } : { crash: e };
  }
}

export async function checkFuzzCell(input: FuzzCell, opts: CheckOptions = {}): Promise<CellOutcome> {
  let fc = input;
  const refusals: Refusal[] = [];
  const findings: Finding[] = [];
  const done = (compiled: boolean, kernelChecked: boolean): CellOutcome => ({ fc, refusals, compiled, kernelChecked, findings });

  // ---- compile; a refusal is pinned on the hostile name whose renaming changes it
  let result = compile(fc);
  while ("error" in result && opts.rename) {
    const before = result.error;
    let culprit: { id: number; next: FuzzCell; result: Compiled } | undefined;
    for (const d of allDecls(fc).filter((x) => x.hostile)) {
      const next = renamed(fc, d.id);
      const r = compile(next);
      // the same problem, up to the renaming itself, is not d's doing
      const fresh = allDecls(next).find((x) => x.id === d.id)!.name;
      const norm = (e: CellError) => `${e.problem}\n${e.hint ?? ""}`.replace(/[A-Za-z_$][\w$]*/g, (t) => (t === d.name || t === fresh ? "#" : t));
      if ("error" in r && norm(r.error) === norm(before)) continue;
      culprit = { id: d.id, next, result: r };
      break;
    }
    if (!culprit) break;
    const d = allDecls(fc).find((x) => x.id === culprit.id)!;
    const said = `${before.problem}\n${before.hint ?? ""}`;
    const clear = new RegExp(`(?<![\\w$])${d.name.replace(/\$/g, "\\$")}(?![\\w$])`).test(said);
    refusals.push({ name: d.name, role: d.role, problem: before.problem, clear });
    if (!clear) findings.push({ kind: "unclear-refusal", detail: `${d.role} "${d.name}" is refused with a message that does not name it: ${firstLine(before.message)}` });
    fc = culprit.next;
    result = culprit.result;
  }
  if ("crash" in result) {
    findings.push({ kind: `compile: ${errKind(result.crash)}`, detail: `compileCell threw ${errText(result.crash)} (not a CellError)` });
    return done(false, false);
  }
  if ("error" in result) {
    // not pinned on any hostile name: the grammar made a cell the language refuses
    findings.push({ kind: "refused", detail: `compileCell refused a cell the grammar thinks valid: ${result.error.message.split("\n").slice(0, 3).join(" / ")}` });
    return done(false, false);
  }
  const cell = result.cell;
  if (opts.only === "refused" || opts.only === "unclear-refusal" || opts.only?.startsWith("compile")) return done(true, false);
  // the fuzzer's own test: CELLFORGE_FUZZ_PLANT=max makes every cell that calls max(…) fail, found without running kernels
  const plant = process.env.CELLFORGE_FUZZ_PLANT;
  if (plant && equationLines(toSpec(fc)).some((l) => l.includes(`${plant}(`))) {
    findings.push({ kind: `planted: ${plant}`, detail: `a planted failure: the cell calls ${plant}(…)` });
    return done(true, false);
  }
  if (opts.only?.startsWith("planted")) return done(true, false);

  // ---- the reference: derived gradients against finite differences
  const c = randomCase(cell, { B: fc.B, T: fc.T, seed: fc.caseSeed });
  if (!opts.only || opts.only.startsWith("gradcheck")) {
    try {
      const r = checkGradients(cell, c, { mode: "fast" });
      const bad = r.rows.filter((x) => !x.pass), badS = r.structural.filter((x) => !x.pass);
      if (bad.length)
        findings.push({ kind: "gradcheck: fd", detail: `reference gradient vs finite differences: ${bad.map((x) => `${x.group} ${x.name} analytic ${x.analytic.toPrecision(6)} numeric ${x.numeric.toPrecision(6)}`).join("; ")}${r.blame.length ? `; blamed: ${r.blame.map((b) => b.equation).join(", ")}` : ""}` });
      if (badS.length) findings.push({ kind: "gradcheck: structural", detail: badS.map((s) => `${s.name}: ${s.detail}`).join("; ") });
    } catch (e) {
      findings.push({ kind: `gradcheck: ${errKind(e)}`, detail: `the reference threw ${errText(e)}` });
    }
  }
  if (opts.only?.startsWith("gradcheck")) return done(true, false);

  // ---- the kernels: emitted, typechecked, made a module, and run on every path
  try {
    const rows = await checkKernels(cell, c, { typecheck: opts.typecheck ?? true });
    for (const r of rows) if (!r.pass) findings.push({ kind: `row: ${r.what}`, detail: `${r.what}: ${r.detail}; error ${r.maxErr.toExponential(2)}, rule ${r.rule}` });
  } catch (e) {
    const typecheck = e instanceof Error && e.name === "KernelRefusedError" && /does not typecheck/.test(e.message);
    findings.push({ kind: typecheck ? "kernels: do not typecheck" : `kernels: ${errKind(e)}`, detail: `checkKernels threw ${errText(e)}${typecheck ? ` ${e.message.split("\n").slice(1, 4).join(" ").trim()}` : ""}` });
  }
  return done(true, true);
}

// The fuzzer's own parts, without running kernels: the grammar is deterministic, makes cells the
// language accepts (a refusal is always a CellError pinned on a hostile name), reaches every
// function of the language's table, every written form of a product and every role of a hostile
// name; the minimizer shrinks a cell while a failure holds and keeps what causes it.
import { describe, expect, it } from "vitest";
import { FUNCTIONS, MATRIX_FUNCTIONS } from "../src/lang.ts";
import { compileCell } from "../src/cell.ts";
import { type Node, topo } from "../src/ir.ts";
import { type FuzzCell, allDecls, dimKey, equationLines, toSpec } from "./fuzz/ast.ts";
import { checkFuzzCell, renamed } from "./fuzz/check.ts";
import { generateCell } from "./fuzz/grammar.ts";
import { minimize } from "./fuzz/minimize.ts";
import { distinctFailures } from "./fuzz/run.ts";
import { runParallel } from "./fuzz/tier.ts";

const SEED = 7, N = 300;
const cells = Array.from({ length: N }, (_v, i) => generateCell(SEED, i));
const texts = cells.map((fc) => equationLines(toSpec(fc)).join("\n"));
/** The cell with its hostile names made plain, for what a refused name would hide. */
const plain = (fc: FuzzCell) => allDecls(fc).filter((d) => d.hostile).reduce((c, d) => renamed(c, d.id), fc);

describe("fuzz grammar", () => {
  it("is deterministic for a seed and index", () => {
    expect(JSON.stringify(toSpec(generateCell(SEED, 17)))).toBe(JSON.stringify(toSpec(cells[17]!)));
    expect(JSON.stringify(toSpec(generateCell(SEED + 1, 17)))).not.toBe(JSON.stringify(toSpec(cells[17]!)));
  });

  // measured: 3–9 s (the time limits below are 3x that or more)
  it(`makes cells that compile, or are refused only for a hostile name, with a CellError (${N} cells)`, async () => {
    const problems: string[] = [];
    for (const fc of cells) {
      const out = await checkFuzzCell(fc, { rename: true, only: "compile" });
      if (!out.compiled || out.findings.length) problems.push(`${fc.name}: ${out.findings.map((f) => f.detail).join("; ")}`);
    }
    expect(problems).toEqual([]);
  }, 30_000);

  it("reaches every function of the language, and every written form of a product", () => {
    const all = texts.join("\n");
    const missing = [...Object.keys(FUNCTIONS), ...Object.keys(MATRIX_FUNCTIONS)].filter((f) => !new RegExp(`(?<![\\w$])${f}\\(`).test(all));
    expect(missing, "functions of src/lang.ts the grammar never calls").toEqual([]);
    const forms: Record<string, RegExp> = {
      "2*W*x": /(?<![\w.])\d+(\.\d+)?\*\w+\*\w/, "W*x*2": /\w\*\w+\*\d/, "2*(U*h)": /\d\*\(\w+\*/, "U/2*h": /\w\/\d+\*\w/,
      "(W*x)/3": /\(\w+\*\w+\)\/\d/, "-U*h": /-\w+\*\w/, "0 .* a": /0 \.\* /, "a ./ b": / \.\/ /, "a^p": /\^-?\d/,
      "concat": /concat\(/, "slice with a size start": /slice\([^()]*, [A-Za-z]/, "h'": /\w' /,
      "transpose(M)*v": /transpose\([^()]*\)\*/, "(W - W')*v": /\([^()]*\w' [-+] [^()]*\)\*|\([^()]* [-+] [^()]*\w'\)\*/,
      "(W + s*eye(n))*v": /[-+] [\w.]*\*?eye\([^()]*\)\)\*/, "a .+ s": / \.\+ /, "a .- s": / \.- /,
    };
    expect(Object.entries(forms).filter(([, re]) => !re.test(all)).map(([k]) => k)).toEqual([]);
  });

  it("reaches a transposed product in the forward, and a scalar put on every entry of a matrix", () => {
    // as compiled: W'*h is matvecT in the forward pass, W .- s an elementwise op with a matrix
    const seen = new Set<string>();
    for (let i = 0; i < N && seen.size < 2; i++) {
      if (!/'\*|transpose\(| \.[-+] /.test(texts[i]!)) continue;
      const c = compileCell(toSpec(plain(cells[i]!)));
      const nodes = topo([...c.next, ...c.outputs.map((o) => o.node)]);
      if (nodes.some((n) => n.op === "matvecT")) seen.add("W'*v");
      if (nodes.some((n) => (n.op === "add" || n.op === "sub") && n.type.shape.length === 2 && n.args.some((a) => a.type.shape.length === 0))) seen.add("W .- s");
    }
    expect([...seen].sort()).toEqual(["W .- s", "W'*v"]);
  });

  it("reaches scalar inputs, size-1 inputs broadcast beside longer vectors, and size equalities whose two sizes mix", () => {
    const seen = new Set<string>();
    for (let i = 0; i < N && seen.size < 3; i++) {
      const spec = toSpec(cells[i]!);
      let c;
      try { c = compileCell(spec); } catch { continue; } // a hostile name
      const nodes = topo([...c.next, ...c.outputs.map((o) => o.node)]);
      const isInput = (n: Node) => n.op === "input" && c.inputs.includes(n);
      // dt: [] read as sum(dt); t: 1 read as sum(t) in an elementwise op beside a longer vector
      if (c.scalarInputs.length && nodes.some((n) => n.op === "sum" && isInput(n.args[0]!) && c.scalarInputs.includes(n.args[0]!.attrs.name!))) seen.add("dt: []");
      if (nodes.some((n) => n.type.shape.length === 1 && n.type.shape[0]!.key !== "1" && n.args.some((a) => a.op === "sum" && isInput(a.args[0]!) && !c.scalarInputs.includes(a.args[0]!.attrs.name!) && a.args[0]!.type.shape[0]!.key === "1"))) seen.add("t: 1 broadcast");
      // under D = H, one declaration written with D and another with H, in one graph
      const determined = c.constraints.map((k) => k.size);
      const written = JSON.stringify([spec.inputs, spec.state, spec.outputs ?? {}, spec.params]);
      if (determined.some((d) => new RegExp(`"${d}"`).test(written)) && c.constraints.some((k) => new RegExp(`"${Object.keys(k.value.terms)[0]}"`).test(written))) seen.add("D = H");
    }
    expect([...seen].sort()).toEqual(["D = H", "dt: []", "t: 1 broadcast"]);
  });

  it("reaches matrices with heads, square and not, as R*v and R'*v, with sizes the heads divide", () => {
    const seen = new Set<string>();
    for (const fc of cells) {
      const headed = fc.params.filter((p) => p.heads);
      if (!headed.length) continue;
      // every size of the case is a multiple of the heads (grammar.ts), so each dim of a headed matrix divides
      expect(fc.sizes.filter((s) => s.value % headed[0]!.heads! !== 0).map((s) => `${fc.name}: ${s.name} = ${s.value}`)).toEqual([]);
      const c = compileCell(toSpec(plain(fc)));
      const nodes = topo([...c.next, ...c.outputs.map((o) => o.node)]);
      if (nodes.some((n) => n.op === "bdmatvec")) seen.add("R*v");
      if (nodes.some((n) => n.op === "bdmatvecT")) seen.add("R'*v");
      for (const p of headed) seen.add(`${p.heads} heads`);
      if (headed.some((p) => dimKey(p.shape[0]!) !== dimKey(p.shape[1]!))) seen.add("not square");
    }
    expect([...seen].sort()).toEqual(["2 heads", "4 heads", "R'*v", "R*v", "not square"]);
  });

  it("gives hostile names every role", () => {
    const roles = new Set(cells.flatMap((fc) => allDecls(fc).filter((d) => d.hostile).map((d) => d.role)));
    expect([...roles].sort()).toEqual(["activation", "constant", "equation", "input", "output", "param", "size", "state"]);
  });
});

describe("fuzz minimizer", () => {
  it("shrinks a cell while the failure holds, and keeps its cause", async () => {
    // a stand-in failure: the cell calls max(…) and has a hostile name
    const fails = async (fc: FuzzCell) => {
      const out = await checkFuzzCell(fc, { only: "compile" });
      return out.compiled && equationLines(toSpec(fc)).some((e) => e.includes("max(")) && allDecls(fc).some((d) => d.hostile);
    };
    let start: FuzzCell | undefined;
    for (let i = 0; i < N && !start; i++) if (cells[i]!.equations.length >= 3 && (await fails(cells[i]!))) start = cells[i];
    expect(start).toBeDefined();
    const m = await minimize(start!, fails, { budgetMs: 60_000 });
    expect(m.complete).toBe(true);
    expect(await fails(m.cell)).toBe(true);
    expect(m.cell.equations.length).toBeLessThan(start!.equations.length);
    expect(allDecls(m.cell).filter((d) => d.hostile)).toHaveLength(1);
    expect(JSON.stringify(toSpec(m.cell)).length).toBeLessThan(JSON.stringify(toSpec(start!)).length);
  }, 30_000);
});

describe("fuzz tier", () => {
  it("finds a planted failure in its child processes, minimizes it and reports the minimized cell", async () => {
    // every cell calling max(…) fails (CELLFORGE_FUZZ_PLANT, check.ts): two such cells in a row, one a process (no kernels run)
    const first = texts.findIndex((t, i) => t.includes("max(") && texts[i + 1]?.includes("max("));
    process.env.CELLFORGE_FUZZ_PLANT = "max";
    try {
      const s = await runParallel(SEED, first, 2, 55_000);
      expect(s.generated).toBe(2);
      const fs = distinctFailures(s.failures);
      expect(fs.length).toBe(2);
      for (const f of fs) {
        expect(f.kind).toBe("planted: max");
        expect(equationLines(f.minimized).some((l) => l.includes("max("))).toBe(true);
        expect(f.minimizedCell.equations.length).toBeLessThanOrEqual(2);
      }
    } finally {
      delete process.env.CELLFORGE_FUZZ_PLANT;
    }
  }, 60_000); // measured: 15–17 s, mostly two processes starting
});

// No user text becomes code. A cell's doc, its equations and their comments, and its file path reach the
// emitted kernels (.ts and .wat) only as escaped comment text: each vector that could end a comment or
// a line, or hide what the code does, is planted in each place, and the emitted code must stay the
// code a harmless cell gets. A .json cell is data: loading it, and running its kernels, runs nothing of it.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import ts from "typescript";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CellSpec, compileCell } from "../src/cell.ts";
import { deriveBackward } from "../src/backward.ts";
import { loadCell, readSpec } from "../src/load.ts";
import { buildPlan, type FullPlan } from "../codegen/plan.ts";
import { cellWasm, emitKernelModule } from "../codegen/emit.ts";
import { loadKernels } from "../check/kernelcheck.ts";
import { commentText, jsLiteral, lineCommentText } from "../codegen/escape.ts";

/** What a payload runs if it gets out of its comment. */
const CODE = "globalThis.cellforgePwned = 1;";

/** Each way out of a comment, or of the line, or of what the reader sees. */
const VECTORS: readonly (readonly [string, string])[] = [
  ["*/ (ends a block comment)", `*/ ${CODE} /*`],
  ["/* (opens a block comment)", `/* ${CODE}`],
  ["\\n", `\n${CODE}`],
  ["\\r", `\r${CODE}`],
  ["U+2028 (line separator)", `\u2028${CODE}`],
  ["U+2029 (paragraph separator)", `\u2029${CODE}`],
  ["U+0085 (next line)", `\u0085${CODE}`],
  ["NUL, other C0 controls, DEL, C1 controls", `\u0000\u0007\u0008\t\u000b\u000c\u001b[2J\u007f\u0080\u009b ${CODE}`],
  ["bidi controls", `\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c ${CODE}`],
  [";) (ends a WebAssembly block comment)", `;) ${CODE} (;`],
  ["(; (opens a WebAssembly block comment)", `(; ${CODE}`],
];

/** Characters that must never reach an emitted file as themselves (a newline only ends a line we wrote). */
const UNSAFE_IN_FILE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
const UNSAFE_IN_TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
const DELIMITERS = ["*/", "/*", ";)", "(;"];

describe("commentText", () => {
  for (const [what, v] of VECTORS)
    it(`escapes ${what}`, () => {
      const out = commentText(`a ${v} b`);
      expect(out).not.toMatch(UNSAFE_IN_TEXT);
      for (const d of DELIMITERS) expect(out).not.toContain(d);
      expect(out).toContain(CODE); // still there to read, as text
    });

  it("writes each escape visibly", () => {
    expect(commentText("a */ b /* c")).toBe("a *\\/ b /\\* c");
    expect(commentText("a ;) b (; c")).toBe("a ;\\) b (\\; c");
    expect(commentText("1\n2\r3\u20284\u20295\u00856\u00007\t8\u007f9\u202e10")).toBe("1\\u000a2\\u000d3\\u20284\\u20295\\u00856\\u00007\\u00098\\u007f9\\u202e10");
  });

  it("leaves ordinary text as it is", () => {
    for (const s of [
      "h' = tanh(Wih*x + bih + Whh*h + bhh)",
      "grad of: z = sigmoid(Wz*x + Uz*h + bz) # the update gate: σ(·), ±1/√H, T×B×size",
      "Elman RNN with tanh, as PyTorch nn.RNN / nn.RNNCell (nonlinearity='tanh'), two biases",
      "dsl/gru-cs224n.ts",
      "a * b / c; (d) // e",
    ])
      expect(commentText(s)).toBe(s);
  });

  it("opens or closes no comment, whatever the mix of delimiter characters", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("*", "/", "(", ";", ")", "\\", "\n", "\u2028", "a", " ")).map((cs) => cs.join("")), (s) => {
        const out = commentText(s);
        for (const d of DELIMITERS) expect(out).not.toContain(d);
        expect(out).not.toMatch(UNSAFE_IN_TEXT);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("lineCommentText", () => {
  for (const [what, v] of VECTORS)
    it(`keeps ${what} on one line, visibly`, () => {
      const out = lineCommentText(`a ${v} b`);
      expect(out).not.toMatch(UNSAFE_IN_TEXT);
      expect(out).toContain(CODE);
    });

  it("leaves a shell command as the shell reads it back, delimiters and all", () => {
    for (const s of ["npx cellforge generate 'my cells/*.ts' --out src/kernels", "npm run generate -- --check", "a ;) b (; c */"])
      expect(lineCommentText(s)).toBe(s);
    expect(lineCommentText("a\nb\u2028c")).toBe("a\\u000ab\\u2028c");
  });
});

describe("jsLiteral", () => {
  for (const [what, v] of VECTORS)
    it(`keeps ${what} inside the string`, () => {
      const s = `a ${v} b`;
      const lit = jsLiteral(s);
      expect(lit).not.toMatch(UNSAFE_IN_TEXT);
      expect(JSON.parse(lit)).toBe(s);
      // one token, a string literal, whose value is the text
      const sf = ts.createSourceFile("x.ts", `export const x = ${lit};`, ts.ScriptTarget.Latest, true);
      const decl = (sf.statements[0] as ts.VariableStatement).declarationList.declarations[0]!;
      expect(sf.statements.length).toBe(1);
      expect(ts.isStringLiteral(decl.initializer!) && decl.initializer.text).toBe(s);
    });

  it("is JSON.stringify for ordinary values", () => {
    for (const v of ["gru", { name: "W", shape: ["H", "D + H"], init: { uniform: 0.1 } }, [1, 2.5e-7, "T×B×H"]]) expect(jsLiteral(v)).toBe(JSON.stringify(v));
  });
});

// ------------------------------------------------------------------------------ emitted kernels

const spec = (over: Partial<Record<keyof CellSpec, unknown>> = {}) =>
  ({
    name: "hostile",
    doc: "a harmless cell",
    sizes: { D: "input size", H: "hidden size" },
    inputs: { x: "D" },
    state: { h: "H" },
    params: { W: ["H", "D"], U: ["H", "H"], b: "H" },
    equations: ["z = W*x + U*h + b # the pre-activation", "h' = tanh(z)"],
    ...over,
  }) as unknown as CellSpec;

/** A cell's kernel module and loops module, as `generate` writes them. */
async function emitted(s: CellSpec, file: string) {
  const cell = compileCell(s, { file });
  const plan = buildPlan(cell, deriveBackward(cell)) as FullPlan;
  const wasm = await cellWasm(plan, file);
  return { cell, ts: await emitKernelModule(plan, { source: file, wasm }), wat: wasm.text, binary: wasm.binary };
}

/** The code of a TypeScript module without its comments, as the compiler reads it; and its syntax errors. */
function code(text: string) {
  const sf = ts.createSourceFile("kernel.ts", text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const errors = ts.transpileModule(text, { reportDiagnostics: true, compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).diagnostics ?? [];
  return { printed: ts.createPrinter({ removeComments: true }).printFile(sf), errors: errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")) };
}

/** WebAssembly text without its line comments. */
const watCode = (text: string) => text.split("\n").map((l) => l.replace(/;;.*$/, "")).join("\n");

describe("no user text becomes code in the emitted kernels", async () => {
  const harmless = await emitted(spec(), "dsl/hostile.json");
  const harmlessCode = code(harmless.ts);

  /** The emitted files of `s` hold the same code as the harmless cell's, `shown` only as escaped text. */
  async function expectInert(s: CellSpec, file: string, shown: string) {
    const e = await emitted(s, file);
    const c = code(e.ts);
    expect(c.errors).toEqual([]);
    expect(c.printed).toBe(harmlessCode.printed);
    expect(c.printed).not.toContain("cellforgePwned");
    expect(e.ts).not.toMatch(UNSAFE_IN_FILE);
    expect(e.ts).not.toContain(shown);
    expect(e.ts).toContain(commentText(shown));
    expect(watCode(e.wat)).toBe(watCode(harmless.wat));
    expect(e.wat).not.toMatch(UNSAFE_IN_FILE);
    for (const d of ["(;", ";)"]) expect(e.wat).not.toContain(d);
    expect(e.binary).toEqual(harmless.binary);
  }

  for (const [what, v] of VECTORS) {
    it(`the doc, with ${what}`, async () => {
      const doc = `a doc ${v} b`;
      await expectInert(spec({ doc }), "dsl/hostile.json", doc);
    });

    it(`the file path, with ${what}`, async () => {
      const file = `dsl/hostile ${v} b.json`;
      await expectInert(spec(), file, file);
    });
  }

  it("a file path with a character beyond the BMP (an emoji, which binaryen's parser cannot read: it made an empty module) is written \\u{…} in the .wat, and the loops are the harmless cell's", async () => {
    const e = await emitted(spec(), "dsl/\u{1F600}/hostile.json");
    expect(e.wat.split("\n")[0]).toBe(";; Generated by cellforge from dsl/\\u{1f600}/hostile.json: the elementwise loops and whole-vector ops of the cell \"hostile\" in WebAssembly SIMD.");
    expect(e.binary).toEqual(harmless.binary);
    expect(e.ts.split("\n")[0]).toContain("dsl/\u{1F600}/hostile.json"); // TypeScript reads it as it is
  });

  // an equation's comment runs to the end of its line whatever separator it holds, and is dropped:
  // none of it reaches the emitted files
  for (const [what, lt] of [["\\r", "\r"], ["U+2028", "\u2028"], ["U+2029", "\u2029"]] as const)
    it(`an equation's comment, broken by ${what}, is dropped to the end of the line`, async () => {
      const eq = `z = W*x + U*h + b # pre${lt}${CODE} ${VECTORS.map(([, v]) => v.replace(/\n/g, " ")).join(" ")}`;
      const s = spec({ equations: [eq, "h' = tanh(z)"] });
      expect(compileCell(s).equations[0]!.text).toBe("z = W*x + U*h + b");
      const e = await emitted(s, "dsl/hostile.json");
      const c = code(e.ts);
      expect(c.errors).toEqual([]);
      expect(c.printed).toBe(harmlessCode.printed);
      for (const text of [e.ts, e.wat]) {
        expect(text).not.toContain("cellforgePwned");
        expect(text).not.toMatch(UNSAFE_IN_FILE);
      }
    });
});

describe("a .json cell is data", () => {
  it("loading it parses it and nothing else; its kernels run none of its text", async () => {
    delete (globalThis as { cellforgePwned?: unknown }).cellforgePwned;
    const root = mkdtempSync(join(tmpdir(), "cellforge-escape-"));
    try {
      // the path itself carries */ … /* (it reaches the header and a doc comment)
      const dir = join(root, "a*", ` globalThis.cellforgePwned = "path"; `, "*");
      mkdirSync(dir, { recursive: true });
      const file = join(dir, "hostile.json");
      const json = spec({
        doc: `x */ globalThis.cellforgePwned = "doc"; /*`,
        sizes: { D: `input size */ globalThis.cellforgePwned = "sizes"; /*`, H: "hidden\u2028globalThis.cellforgePwned = 'sizes';" },
        equations: [`z = W*x + U*h + b # pre\u2028globalThis.cellforgePwned = "equation";`, "h' = tanh(z)"],
      });
      writeFileSync(file, JSON.stringify(json, null, 1));
      expect(await readSpec(file)).toEqual(JSON.parse(readFileSync(file, "utf8")));
      const cell = await loadCell(file);
      expect(cell.doc).toBe(json.doc);
      expect((globalThis as { cellforgePwned?: unknown }).cellforgePwned).toBeUndefined();
      const mod = await loadKernels(cell); // emits the kernel module and imports it
      expect(mod.paramLayout({ D: 3, H: 4 }).total).toBe(4 * 3 + 4 * 4 + 4);
      expect((globalThis as { cellforgePwned?: unknown }).cellforgePwned).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// Every mistake a user can make in a cell declaration is a CellError that names the cell, shows the
// equation (or declaration) line with a caret under the spot, gives line and column, and reads well.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { compileCell, type CellSpec, type CompileOptions } from "../src/cell.ts";
import { CellError } from "../src/errors.ts";
import { activationFunctions } from "../src/activations.ts";
import gru from "../dsl/gru.ts";
import lstm from "../dsl/lstm.ts";
import rnn from "../dsl/rnn.ts";
import gruCs224n from "../dsl/gru-cs224n.ts";

/** A small valid cell; tests replace one field to make one mistake. */
const base = {
  name: "mini",
  doc: "a test cell",
  sizes: { D: "input size", H: "hidden size" },
  inputs: { x: "D" },
  state: { h: "H" },
  params: { Wz: ["H", "D"], Uz: ["H", "H"], bz: "H" },
  equations: "h' = tanh(Wz*x + Uz*h + bz)",
};
const cell = (over: Record<string, unknown>) => ({ ...base, ...over }) as unknown as CellSpec;

/** The CellError that compiling `spec` throws; fails the test on success or on any other error. */
function errorOf(spec: unknown, opts?: CompileOptions): CellError {
  try {
    compileCell(spec as CellSpec, opts);
  } catch (e) {
    if (e instanceof CellError) return e;
    throw new Error(`expected a CellError, got ${String(e)}`);
  }
  throw new Error("expected a CellError, but the cell compiled");
}

/** The message's shown line and the text its caret line underlines. */
function caret(e: CellError): { shown: string; under: string; column: number } {
  const lines = e.message.split("\n");
  const i = lines.findIndex((l) => /^\s*\^+$/.test(l));
  if (i < 1) throw new Error(`no caret line in:\n${e.message}`);
  const shown = lines[i - 1]!.slice(2), marks = lines[i]!.slice(2);
  const start = marks.indexOf("^");
  return { shown, under: shown.slice(start, start + marks.length - start), column: start + 1 };
}

/** An error in cell "mini" at `line`:`column` of its equations: the first line of the message, and the caret under `under` at that column. */
function expectAt(e: CellError, line: number, column: number, problem: string, under: string, shown?: string): void {
  expect(e.message.split("\n")[0]).toBe(`cell "mini":${line}:${column}: error in cell "mini": ${problem}`);
  expect(e.where).toMatchObject({ cell: "mini", line, column });
  const c = caret(e);
  expect(c.under).toBe(under);
  expect(c.column).toBe(column);
  if (shown !== undefined) expect(c.shown).toBe(shown);
}

describe("errors in equations", () => {
  it("unknown symbol: caret under the name, a close name suggested", () => {
    const e = errorOf(cell({ equations: "z = sigmoid(Wz*x + Uq*h + bz)\nh' = z .* h" }));
    expectAt(e, 1, 20, 'unknown symbol "Uq" (did you mean Uz?)', "Uq", "z = sigmoid(Wz*x + Uq*h + bz)");
    expect(e.hint).toMatch(/declare it as an input, state, parameter or constant/);
  });

  it("shape mismatch in a matrix product names both shapes", () => {
    const e = errorOf(cell({ equations: "z = sigmoid(Wz*h + bz)\nh' = z .* h" }));
    expectAt(e, 1, 13, "shape mismatch in Wz*h: Wz is [H,D] but h is [H]", "Wz*h", "z = sigmoid(Wz*h + bz)");
    expect(e.hint).toBe("Wz has D columns, so it multiplies a vector of D");
  });

  it("shape mismatch between two vectors names both shapes", () => {
    const e = errorOf(cell({ equations: "z = x + h\nh' = tanh(Wz*x + Uz*h + bz) .* z" }));
    expectAt(e, 1, 5, "shape mismatch in x + h: x is [D] but h is [H]", "x + h", "z = x + h");
    expect(e.hint).toBe('"+" works elementwise: its operands need the same shape (a scalar is broadcast)');
  });

  it("shape mismatch inside a function call names every operand", () => {
    const e = errorOf(cell({ equations: "h' = clip(h, 0, x)" }));
    expectAt(e, 1, 6, "shape mismatch in clip(h, 0, x): h is [H], 0 is scalar and x is [D]", "clip(h, 0, x)");
  });

  it("* between two vectors points to .*", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Uz*h) * h" }));
    expectAt(e, 1, 6, '"*" between two vectors: tanh(Uz*h) is [H] and h is [H]', "tanh(Uz*h) * h");
    expect(e.hint).toMatch(/use \.\* for an elementwise product/);
  });

  it("a matrix on the right of * is turned around in the hint", () => {
    const e = errorOf(cell({ equations: "h' = tanh(h * Uz)" }));
    expectAt(e, 1, 11, '"*" multiplies a matrix by a vector, but h is [H] and Uz is [H,H]', "h * Uz");
    expect(e.hint).toBe("the matrix goes on the left: Uz*h");
  });

  it("a product of two matrices is refused with both shapes", () => {
    const e = errorOf(cell({ equations: "h' = tanh((Wz*Uz)*x)" }));
    expectAt(e, 1, 12, "shape mismatch in Wz*Uz: Wz is [H,D] but Uz is [H,H]", "Wz*Uz");
    expect(e.hint).toMatch(/no matrix-matrix products/);
  });

  it("a scalar subtracted from a matrix is refused: it usually means W - gamma*I", () => {
    const e = errorOf(cell({ constants: { gamma: 0.5 }, equations: "h' = tanh((Uz - gamma)*h + Wz*x + bz)" }));
    expectAt(e, 1, 12, '"Uz - gamma" subtracts the scalar gamma from every entry of the matrix Uz', "Uz - gamma");
    expect(e.hint).toBe("for gamma times the identity, write (Uz - gamma*eye(H))*v; to subtract it from every entry, write Uz .- gamma");
    // on either side, a number or a scalar parameter, added or subtracted
    const f = errorOf(cell({ params: { ...base.params, s: [] }, equations: "M = 2 + Uz\nh' = tanh(M*h + Wz*x + bz + s)" }));
    expectAt(f, 1, 5, '"2 + Uz" adds the scalar 2 to every entry of the matrix Uz', "2 + Uz");
    expect(f.hint).toBe("for 2 times the identity, write (2*eye(H) + Uz)*v; to add it to every entry, write 2 .+ Uz");
    // a matrix that is not square has no identity to add: only the elementwise form is offered
    expect(errorOf(cell({ equations: "h' = tanh((Wz - 1)*x + bz)" })).hint).toBe("to subtract it from every entry, write Wz .- 1");
    expect(errorOf(cell({ params: { ...base.params, s: [] }, equations: "h' = tanh((Uz + s)*h + Wz*x + bz)" })).message).toMatch(/"Uz \+ s" adds the scalar s to every entry of the matrix Uz/);
  });

  it("a scalar with a matrix is allowed elementwise, written .- or .+; with a vector, as + and -", () => {
    const ok = cell({ constants: { gamma: 0.5 }, equations: "M = Uz .- gamma\nN = 1 .+ Uz\nh' = tanh(M*h + N*h + Wz*x + bz - gamma .+ 1)" });
    expect(() => compileCell(ok)).not.toThrow();
    expect(() => compileCell(cell({ equations: "h' = tanh(Wz*x + Uz*h + bz - 1) + 2" }))).not.toThrow();
  });

  it("parse error: the column of the missing operand", () => {
    const e = errorOf(cell({ equations: "z = sigmoid(Wz*x + )\nh' = z .* h" }));
    expectAt(e, 1, 20, "syntax error: a value is missing here (a name, a number or a parenthesis)", ")", "z = sigmoid(Wz*x + )");
  });

  it("parse error: an unclosed parenthesis is counted", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Wz*x + Uz*h + bz" }));
    expect(e.problem).toBe('syntax error: ")" expected here');
    expect(e.where.column).toBe(27); // just after the last character
    expect(e.hint).toBe('the line has 1 "(" and 0 ")"');
    expect(e.message).not.toMatch(/char \d+/); // mathjs' own offsets are not shown
  });

  it("parse error after a prime keeps the user's columns", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Uz*h)\nc = h' +* x" }));
    expectAt(e, 2, 9, "syntax error: a value is missing here (a name, a number or a parenthesis)", "*", "c = h' +* x");
  });

  it("a state that is never updated", () => {
    const e = errorOf(cell({ state: { h: "H", c: "H" } }));
    expect(e.message).toBe([
      "error in cell \"mini\": state c is never updated: add an equation c' = …",
      "  hint: to keep it unchanged, write c' = c",
    ].join("\n"));
  });

  it("a state updated twice names both lines", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Wz*x + Uz*h + bz)\n\nh' = h" }));
    expectAt(e, 3, 1, "state h is updated twice (lines 1 and 3)", "h'", "h' = h");
  });

  it("an exponent is a number or arithmetic on numbers (a^(1/4) is a^0.25); a variable or infinite one is refused", () => {
    const pow = (eqs: string) => compileCell(cell({ equations: eqs })).next[0]!;
    expect(pow("h' = (Uz*h).^(1/4)").attrs.p).toBe(0.25);
    expect(pow("h' = (Uz*h).^-(2^-1)").attrs.p).toBe(-0.5);
    expect(pow("h' = (Uz*h).^((3))").attrs.p).toBe(3);
    const hint = "write exp(b .* log(a)) for a variable power";
    const problem = "an exponent must be a finite number, or arithmetic on numbers that gives one (2, -1.5, 1/3)";
    for (const [eqs, under] of [["h' = (Uz*h).^bz", "bz"], ["h' = (Uz*h).^(1/0)", "(1/0)"]] as const) {
      const e = errorOf(cell({ equations: eqs }));
      expectAt(e, 1, 14, problem, under);
      expect(e.hint).toBe(hint);
    }
  });

  it("a cyclic definition names the cycle", () => {
    const e = errorOf(cell({ equations: "a = b .* h\nb = a + Wz*x\nh' = tanh(b + Uz*h + bz)" }));
    expectAt(e, 1, 1, "cyclic definition: a -> b -> a", "a", "a = b .* h");
    expect(e.hint).toMatch(/use the old state \(h\) or a new one \(h'\)/);
  });

  it("a state's next value may not depend on itself", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Uz*h' + Wz*x)" }));
    expectAt(e, 1, 1, "cyclic definition: h' -> h'", "h'");
  });

  it("unknown function: caret under its name, the known ones in the hint", () => {
    const e = errorOf(cell({ activations: { softsign: "x / (1 + abs(x))" }, equations: "h' = sigmod(Wz*x + Uz*h + bz)" }));
    expectAt(e, 1, 6, 'unknown function "sigmod" (did you mean sigmoid?)', "sigmod", "h' = sigmod(Wz*x + Uz*h + bz)");
    expect(e.hint).toMatch(/^the functions are sigmoid, tanh, relu, .*, softsign; define your own under `activations`$/);
  });

  it("calling a parameter suggests a product", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Uz(h))" }));
    expectAt(e, 1, 11, '"Uz" is a parameter, not a function', "Uz");
    expect(e.hint).toBe("for a product write Uz*h");
  });

  it("a function called with the wrong number of arguments", () => {
    const e = errorOf(cell({ equations: "h' = tanh(h, x)" }));
    expectAt(e, 1, 6, "tanh takes 1 argument, but 2 are given", "tanh");
    expect(e.hint).toBe("write tanh(x)");
    const s = errorOf(cell({ equations: "h' = slice(h, 0)" }));
    expect(s.problem).toBe("slice takes 3 arguments, but 2 are given");
  });

  it("a vector function given a matrix points at the argument", () => {
    const e = errorOf(cell({ equations: "h' = h + sum(Uz)" }));
    expectAt(e, 1, 14, "sum expects a vector, but Uz is [H,H]", "Uz");
  });

  it("a slice past the end of its vector", () => {
    const e = errorOf(cell({ equations: "h' = slice(concat(h, h), H, 2*H)" }));
    expectAt(e, 1, 6, "slice ends at 3*H, past the end of a vector of 2*H", "slice(concat(h, h), H, 2*H)");
  });

  it("a primed name that is neither a state nor a matrix", () => {
    const e = errorOf(cell({ equations: "h' = tanh(bz' + Uz*h)" }));
    expectAt(e, 1, 11, `"bz'": only a state has a next value, and bz is a parameter`, "bz'");
    expect(e.hint).toBe("a prime is the next value of a state (h') or the transpose of a matrix (W'*v), but bz is [H]");
    const x = errorOf(cell({ equations: "h' = tanh(Uz*h + x')" }));
    expectAt(x, 1, 18, `"x'": only a state has a next value, and x is an input`, "x'");
  });

  it("a transposed product of the wrong size names both shapes", () => {
    const e = errorOf(cell({ equations: "h' = tanh(Wz'*x + bz)" }));
    expectAt(e, 1, 11, "shape mismatch in Wz'*x: Wz' is [D,H] but x is [D]", "Wz'*x");
    expect(e.hint).toBe("Wz' has H columns, so it multiplies a vector of H");
    // W' of the right size is the transposed product, the same as transpose(W)
    expect(compileCell(cell({ inputs: { x: "D" }, equations: "a = Wz'*h\nh' = tanh(Wz*a + transpose(Uz)*h + bz)" })).next[0]!.type.shape.length).toBe(1);
  });

  it("matrices of different shapes in a sum, and an identity of the wrong size", () => {
    const e = errorOf(cell({ equations: "h' = tanh((Uz + Wz)*h + bz)" }));
    expectAt(e, 1, 12, "shape mismatch in Uz + Wz: Uz is [H,H] but Wz is [H,D]", "Uz + Wz");
    expect(e.hint).toBe('"+" between matrices works entry by entry: they need the same shape');
    const eye = errorOf(cell({ equations: "h' = tanh((Uz - Uz' + 0.5*eye(D))*h + bz)" }));
    expectAt(eye, 1, 12, "shape mismatch in Uz - Uz' + 0.5*eye(D): Uz - Uz' is [H,H] but 0.5*eye(D) is [D,D]", "Uz - Uz' + 0.5*eye(D)");
    const times = errorOf(cell({ equations: "h' = tanh(eye(D)*h + bz)" }));
    expectAt(times, 1, 11, "shape mismatch in eye(D)*h: eye(D) is [D,D] but h is [H]", "eye(D)*h");
  });

  it("a transpose or an identity outside a product", () => {
    const e = errorOf(cell({ equations: "A = Uz - Uz'\nh' = tanh(A*h + bz)" }));
    expectAt(e, 1, 5, `"Uz - Uz'" is a matrix expression with a transpose or an identity: it can only multiply a vector`, "Uz - Uz'");
    expect(e.hint).toBe("write (Uz - Uz')*v: the product is computed term by term (W'*v, eye(n)*v = v), and the matrix is never formed");
    const eye = errorOf(cell({ equations: "h' = tanh(Uz*h + eye(H))" }));
    expectAt(eye, 1, 18, `"eye(H)" is the identity: it can only multiply a vector`, "eye(H)");
    expect(eye.hint).toBe("write eye(H)*v: the product is computed term by term (W'*v, eye(n)*v = v), and the matrix is never formed");
  });

  it("an equation that has no =", () => {
    const e = errorOf(cell({ equations: "h' tanh(h)" }));
    expectAt(e, 1, 1, "an equation needs the form `name = expression`", "h' tanh(h)");
  });
});

describe("left-hand sides", () => {
  it.each([
    ["Wz = h\nh' = h", 'cannot assign to "Wz", which is a parameter', "Wz"],
    ["x = h\nh' = h", 'cannot assign to "x", which is an input', "x"],
    ["H = h\nh' = h", 'cannot assign to "H", which is a size', "H"],
    ["h = tanh(Uz*h)", '"h" is a state: its update is written h\' = …', "h"],
    ["y' = h\nh' = h", `"y'": only a state has a next value, and "y" is not declared`, "y'"],
    ["2z = h\nh' = h", 'the left-hand side "2z" is not a name (write `z = …`, or `h\' = …` for the next value of a state)', "2z"],
    ["not = h\nh' = not", 'invalid identifier "not": it is reserved, as an operator of the equation language (logical not)', "not"],
    ["z__a = h\nh' = z__a", 'invalid identifier "z__a": names are ASCII letters, digits and _, starting with a letter, without "__"', "z__a"],
    ["h' = h__next", 'invalid identifier "h__next": names are ASCII letters, digits and _, starting with a letter, without "__"', "h__next"],
  ])("%j", (equations, problem, under) => {
    const e = errorOf(cell({ equations }));
    const first = equations.split("\n")[0]!;
    expectAt(e, 1, first.indexOf(under) + 1, problem, under, first);
  });

  it("the hint for h = … says which h is which", () => {
    expect(errorOf(cell({ equations: "h = tanh(Uz*h)" })).hint).toBe("on a right-hand side, h is the old value and h' the new one");
  });
});

describe("declared shapes", () => {
  it("an update whose shape is not the state's", () => {
    const e = errorOf(cell({ params: { V: ["D", "D"] }, equations: "h' = tanh(V*x)" }));
    expectAt(e, 1, 6, "h' is [D], but state h is declared [H]", "tanh(V*x)", "h' = tanh(V*x)");
  });

  it("an output whose shape is not the declared one", () => {
    const e = errorOf(cell({ outputs: { y: "D" }, equations: "h' = tanh(Uz*h)\ny = 2 * h" }));
    expectAt(e, 2, 5, "y is [H], but output y is declared [D]", "2 * h");
  });

  it("an update that depends on no input or state", () => {
    const e = errorOf(cell({ equations: "h' = tanh(bz)" }));
    expectAt(e, 1, 6, "h' is the same for every example (it reads no input or state), but state h holds one value per example", "tanh(bz)");
  });

  it("an output that is declared but never defined", () => {
    const e = errorOf(cell({ outputs: { y: "H" } }));
    expect(e.message).toBe('error in cell "mini": output y is never defined: add an equation y = …');
  });
});

describe("errors in the declaration", () => {
  it.each([
    ["W-z", 'invalid identifier "W-z" (a parameter): names are ASCII letters, digits and _, starting with a letter, without "__"'],
    ["mod", 'invalid identifier "mod" (a parameter): it is reserved, as an operator of the equation language (modulo)'],
    ["W__z", 'invalid identifier "W__z" (a parameter): names are ASCII letters, digits and _, starting with a letter, without "__"'],
  ])("parameter named %j", (name, problem) => {
    const e = errorOf(cell({ params: { ...base.params, [name]: "H" } }));
    expect(e.message).toBe(`error in cell "mini": ${problem}`);
  });

  it("names of Object.prototype are ordinary names, not functions", () => {
    expect(compileCell(cell({ params: { ...base.params, toString: "H" }, equations: "h' = tanh(Wz*x + Uz*h + bz + toString)" })).warnings).toEqual([]);
    expect(errorOf(cell({ equations: "h' = toString(h)" })).problem).toBe('unknown function "toString"');
  });

  it("a size named like one of the generated kernels' variables is a size like any other (the kernels rename it)", () => {
    for (const name of ["B", "T", "mem", "params"]) expect(compileCell(cell({ sizes: { D: "input size", H: "hidden size", [name]: "something" } }) as CellSpec).sizes).toContain(name);
  });

  it("a name declared twice", () => {
    expect(errorOf(cell({ inputs: { x: "D", h: "H" } })).problem).toBe('"h" is declared twice: as an input and as a state');
  });

  it("a bad init rule", () => {
    const e = errorOf(cell({ params: { ...base.params, bz: { shape: "H", init: "gaussian" } } }));
    expect(e.problem).toBe('parameter bz: init must be "uniform", "zeros", "ones", "glorot", "orthogonal", { constant: c } or { uniform: a }, not "gaussian"');
    expect(errorOf(cell({ params: { ...base.params, bz: { shape: "H", init: { constant: "1" } } } })).problem).toMatch(/^parameter bz: init must be/);
  });

  it("an unknown size name in a shape", () => {
    const e = errorOf(cell({ params: { ...base.params, Wz: ["H", "d"] } }));
    expect(e.problem).toBe('parameter Wz: unknown size "d" (did you mean D?)');
    expect(e.hint).toBe("the sizes are D, H; declare new ones under sizes");
    expect(errorOf(cell({ inputs: { x: "D + K" } })).problem).toBe('input x: unknown size "K"');
  });

  it("a size that is not a sum of names and integers", () => {
    expect(errorOf(cell({ inputs: { x: "D * H" } })).problem).toBe('input x: the size "D * H" must be a sum of size names and integers (like "D + H" or "4*H")');
    expect(errorOf(cell({ inputs: { x: 0 } })).problem).toBe("input x: a size must be a positive integer, not 0");
  });

  it("missing equations, with the typo that caused it", () => {
    const { equations: _omit, ...noEquations } = base;
    const e = errorOf({ ...noEquations, equation: "h' = h" });
    expect(e.problem).toBe("\"equations\" is missing: one equation a line, like `h' = tanh(W*x + U*h + b)`");
    expect(e.hint).toBe('"equation" is not a field; did you mean "equations"?');
  });

  it("missing doc", () => {
    const { doc: _omit, ...noDoc } = base;
    expect(errorOf(noDoc).problem).toBe('"doc" is missing: one line naming the cell\'s source (paper and equations, or library and file)');
    expect(errorOf(cell({ doc: "  " })).problem).toMatch(/^"doc" must be one line naming the cell's source/);
  });

  it("an unknown field is a warning", () => {
    const c = compileCell(cell({ param: {} }));
    expect(c.warnings).toEqual(['cell "mini": unknown field "param" is ignored (did you mean "params"?)']);
  });

  // A .json cell can hold anything: every wrong type is a CellError that says what was expected.
  it.each([
    ["not an object", null, 'error in cell "(unnamed)": a cell is an object: defineCell({ name, doc, sizes, inputs, state, params, equations }), not null'],
    ["name a number", { name: 3 }, 'error in cell "(unnamed)": invalid cell name 3: letters, digits, _ and -, starting with a letter'],
    ["inputs a list", { inputs: ["x"] }, 'error in cell "mini": "inputs" must be an object of input names and shapes, like { x: "D" }, not a list'],
    ["sizes a string", { sizes: "DH" }, 'error in cell "mini": "sizes" must be an object of size names and what they are, like { D: "input size", H: "hidden size" } (or a list of names), not the string "DH"'],
    ["sizes with numbers", { sizes: { D: 3, H: 4 } }, 'error in cell "mini": size D must be described in words, like { D: "hidden size" }, not the number 3'],
    ["state a number", { state: 5 }, 'error in cell "mini": "state" must be an object of state names and shapes, like { h: "H" }, not the number 5'],
    ["a param null", { params: { Wz: null } }, 'error in cell "mini": parameter Wz: a parameter is a shape (["H", "D"]) or { shape, init }, not null'],
    ["a param without shape", { params: { Wz: { shap: ["H", "D"] } } }, 'error in cell "mini": parameter Wz: { shape, init } needs a "shape"'],
    ["a size null", { params: { Wz: ["H", null] } }, 'error in cell "mini": parameter Wz: a size is a name ("H"), a positive integer or a sum like "D + H", not null'],
    ["a shape an object", { inputs: { x: { shape: "D" } } }, 'error in cell "mini": input x: a shape is a size ("H") or a list of sizes (["H", "D"]), not an object'],
    ["a state a matrix", { state: { h: ["H", "H"] } }, 'error in cell "mini": state h must be a vector, but its shape has 2 dimensions'],
    ["equations a number", { equations: 42 }, 'error in cell "mini": "equations" must be a string (one equation a line) or a list of strings, not the number 42'],
    ["an equation not a string", { equations: ["h' = h", 3] }, 'error in cell "mini": equations[1] must be a string, not the number 3'],
    ["a constant a string", { constants: { eps: "1e-5" } }, 'error in cell "mini": constant eps must be a finite number, not the string "1e-5"'],
    ["defaults a string", { defaults: { D: "3" } }, 'error in cell "mini": defaults: D must be a positive integer, not the string "3"'],
    ["defaults of no size", { defaults: { d: 3 } }, 'error in cell "mini": defaults: "d" is not a size (did you mean D?)'],
    ["an activation a number", { activations: { act: 1 } }, 'error in cell "mini": activation act must be a mathjs expression in x, such as "x / (1 + abs(x))", not the number 1'],
    ["no state", { state: {} }, 'error in cell "mini": a recurrent cell needs at least one state (e.g. state: { h: "H" })'],
  ])("%s", (_what, over, message) => {
    const e = errorOf(over === null ? null : cell(over));
    expect(e.message.split("\n")[0]).toBe(message);
  });
});

describe("warnings", () => {
  it("an unused parameter is a warning, and the cell compiles", () => {
    const c = compileCell(cell({ params: { ...base.params, V: ["H", "H"] } }));
    expect(c.params.map((p) => p.name)).toContain("V");
    expect(c.warnings).toEqual(['cell "mini": parameter V is never used (its gradient is zero)']);
  });

  it("an unused input and an unused equation are warnings", () => {
    const c = compileCell(cell({ equations: "z = Wz*x\nh' = tanh(Uz*h + bz)" }));
    expect(c.warnings).toEqual([
      'cell "mini": parameter Wz is never used (its gradient is zero)',
      'cell "mini": input x is never used',
      'cell "mini":1:1: z is defined but never used\n  z = Wz*x\n  ^',
    ]);
  });

  it("the cells in dsl/ compile without warnings", () => {
    for (const spec of [gru, lstm, rnn, gruCs224n]) expect(compileCell(spec).warnings).toEqual([]);
  });
});

describe("user-defined activations", () => {
  const act = (expr: string, equations = "h' = softsign(Wz*x + Uz*h + bz)") => cell({ activations: { softsign: expr }, equations });

  it("an unknown symbol inside the activation", () => {
    const e = errorOf(act("x / (1 + abs(y))"));
    expect(e.problem).toBe('activation softsign: unknown symbol "y"');
    expect(e.hint).toBe("an activation is a function of x alone; put constants in the cell's constants");
    expect(caret(e)).toEqual({ shown: "x / (1 + abs(y))", under: "y", column: 14 });
  });

  it("a function activations do not support", () => {
    const e = errorOf(act("x / (1 + erf(x))"));
    expect(e.problem).toBe('activation softsign: function "erf" is not supported in activations');
    expect(e.hint).toBe(`the functions an activation may use: ${activationFunctions().join(", ")}`);
    expect(caret(e).under).toBe("erf");
  });

  it("an activation that calls a table op, or writes a dotted operator, is differentiated (mathjs alone knows neither)", () => {
    expect(() => compileCell(act("max(x, 0) + 0.1 * x"))).not.toThrow();
    expect(() => compileCell(act("x .* x ./ 2 + x .^ 3"))).not.toThrow();
  });

  it("an activation that does not parse", () => {
    const e = errorOf(act("x / (1 + "));
    expect(e.problem).toBe("activation softsign: unexpected end of expression");
    expect(e.message).not.toMatch(/char \d+/);
  });

  it("constants may be used, and other names may not", () => {
    expect(() => compileCell(cell({ constants: { k: 2 }, activations: { s: "x / (k + abs(x))" }, equations: "h' = s(Wz*x + Uz*h + bz)" }))).not.toThrow();
    expect(errorOf(cell({ constants: { k: 2 }, activations: { s: "x / (k + abs(q))" } })).problem).toBe('activation s: unknown symbol "q"');
  });

  it("an activation called with two arguments", () => {
    const e = errorOf(act("x / (1 + abs(x))", "h' = softsign(h, x)"));
    expectAt(e, 1, 6, "softsign is an activation: it takes 1 argument, but 2 are given", "softsign");
  });
});

describe("lines and columns in the file the cell came from", () => {
  // The text of cells/x.ts; the spec is what importing it would give.
  const fileLines = [
    'import { defineCell } from "cellforge";',
    "",
    "export default defineCell({",
    '  name: "mini",',
    '  doc: "a test cell",',
    '  sizes: { D: "input size", H: "hidden size" },',
    '  inputs: { x: "D" },',
    '  state: { h: "H" },',
    "  params: {",
    '    Wz: ["H", "D"], Uz: ["H", "H"],',
    '    bz: "H",',
    "  },",
    "  equations: `",
    "    z  = sigmoid(Wz*x + Uz*h + bz)   # update gate",
    "    h' = (1 - z) .* h + z .* tanh(Uz*h)",
    "  `,",
    "});",
  ];
  const source = fileLines.join("\n");
  const equations = source.slice(source.indexOf("`") + 1, source.lastIndexOf("`"));
  const spec = { ...base, params: { Wz: ["H", "D"], Uz: ["H", "H"], bz: "H" }, equations };
  const opts = { file: "cells/x.ts", source };
  const lineOf = (text: string) => fileLines.findIndex((l) => l.includes(text)) + 1;

  it("compiles as written", () => {
    expect(compileCell(cell(spec), opts).warnings).toEqual([]);
  });

  it("an error in an equation has the file's line and column", () => {
    const bad = source.replace("Uz*h + bz", "Uq*h + bz");
    const e = errorOf(cell({ ...spec, equations: equations.replace("Uz*h + bz", "Uq*h + bz") }), { file: "cells/x.ts", source: bad });
    const line = lineOf("z  = sigmoid"), column = fileLines[line - 1]!.indexOf("Uz*h + bz") + 1;
    expect([line, column]).toEqual([14, 25]);
    expect(e.message.split("\n")[0]).toBe(`cells/x.ts:14:25: error in cell "mini": unknown symbol "Uq" (did you mean Uz?)`);
    expect(e.where).toMatchObject({ file: "cells/x.ts", line: 14, column: 25 });
    expect(caret(e)).toEqual({ shown: "    z  = sigmoid(Wz*x + Uq*h + bz)   # update gate", under: "Uq", column: 25 });
  });

  it("a repeated line is found where it is, not at its first copy", () => {
    const text = "h' = h\n    h' = h";
    const src = source.replace(equations, `\n    ${text}\n  `);
    const e = errorOf(cell({ ...spec, equations: `\n    ${text}\n  ` }), { file: "cells/x.ts", source: src });
    expect(e.problem).toBe("state h is updated twice (lines 14 and 15)"); // the file's lines, as its location gives them
    expect(e.where).toMatchObject({ line: 15, column: 5 });
  });

  it("equations given as a list on one line of a .json file", () => {
    const json = `{ "name": "mini", "doc": "a test cell", "sizes": ["D", "H"], "inputs": { "x": "D" }, "state": { "h": "H" },\n  "params": { "Wz": ["H", "D"] },\n  "equations": ["z = Wz*x", "h' = z + h +"] }`;
    const e = errorOf(JSON.parse(json), { file: "cells/x.json", source: json });
    expect(e.where).toMatchObject({ line: 3, column: json.split("\n")[2]!.indexOf("h' = z + h +") + 13 });
    expect(e.message.split("\n")[0]).toMatch(/^cells\/x\.json:3:\d+: error in cell "mini": syntax error: the right-hand side ends too early/);
  });

  it("a mistake in the declaration points at its line", () => {
    const src = source.replace('Uz: ["H", "H"]', 'Uz: ["H", "K"]');
    const e = errorOf(cell({ ...spec, params: { ...spec.params, Uz: ["H", "K"] } }), { file: "cells/x.ts", source: src });
    const column = src.split("\n")[9]!.indexOf('"K"') + 2;
    expect(e.message.split("\n")[0]).toBe(`cells/x.ts:10:${column}: error in cell "mini": parameter Uz: unknown size "K"`);
    expect(caret(e).under).toBe("K");
  });

  it("a state never updated points at its declaration", () => {
    const src = source.replace('state: { h: "H" }', 'state: { h: "H", c: "H" }');
    const e = errorOf(cell({ ...spec, state: { h: "H", c: "H" } }), { file: "cells/x.ts", source: src });
    expect(e.where).toMatchObject({ line: 8, column: 20 });
    expect(caret(e).under).toBe("c");
  });

  it("an activation error points into the file", () => {
    const src = source.replace("  equations: `", '  activations: { soft: "x / (1 + abs(y))" },\n  equations: `');
    const e = errorOf(cell({ ...spec, activations: { soft: "x / (1 + abs(y))" } }), { file: "cells/x.ts", source: src });
    expect(e.where).toMatchObject({ line: 13, column: src.split("\n")[12]!.indexOf("abs(y)") + 5 });
    expect(caret(e).under).toBe("y");
  });

  it("an unused parameter's warning points at its declaration", () => {
    const src = source.replace('bz: "H",', 'bz: "H", V: "H",');
    const c = compileCell(cell({ ...spec, params: { ...spec.params, V: "H" } }), { file: "cells/x.ts", source: src });
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]!.split("\n")[0]).toBe('cells/x.ts:11:14: cell "mini": parameter V is never used (its gradient is zero)');
  });

  it("without the file's text, lines count in the equations", () => {
    const e = errorOf(cell({ ...spec, equations: equations.replace("Uz*h + bz", "Uq*h + bz") }), { file: "cells/x.ts" });
    expect(e.message.split("\n")[0]).toBe(`cells/x.ts, equations line 2:25: error in cell "mini": unknown symbol "Uq" (did you mean Uz?)`);
  });

  it("a caret after a tab lines up", () => {
    const e = errorOf(cell({ equations: "\tz = sigmoid(Wz*x + Uq*h)\n\th' = z" }));
    expect(e.where.column).toBe(21);
    expect(caret(e).under).toBe("Uq");
    expect(e.message.split("\n")[2]).toBe("  \t                   ^^");
  });
});

describe("no user mistake escapes as another kind of error", () => {
  const names = ["x", "h", "h'", "z", "Wz", "Uz", "Uz'", "Wz'", "x'", "bz", "H", "D", "q", "pi", "1", "0.5", "2", "toString"];
  const calls = ["sigmoid", "tanh", "max", "clip", "sum", "mean", "var", "concat", "slice", "soft", "sigmod", "Wz", "toString", "transpose", "eye"];
  // well-formed expressions, so that mistakes past the parser are reached…
  const { expr } = fc.letrec((tie) => ({
    expr: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constantFrom(...names),
      fc.tuple(tie("expr"), fc.constantFrom("+", "-", "*", "/", ".*", "./", ".+", ".-", "^"), tie("expr")).map(([a, op, b]) => `${a} ${op} ${b}`),
      fc.tuple(fc.constantFrom(...calls), fc.array(tie("expr"), { maxLength: 3 })).map(([f, args]) => `${f}(${(args as string[]).join(", ")})`),
      tie("expr").map((a) => `(${a})`),
      tie("expr").map((a) => `(${a})'`),
      tie("expr").map((a) => `-${a}`),
    ),
  }));
  // …and token soup, for the parser's own mistakes
  const tokens = [...names, "+", "-", "*", "/", ".*", "./", "^", "(", ")", ",", "'", "tanh(", "=", " ", ";", "[", "]", ":", "#", "\"", "==", "h__next"];
  const soup = fc.array(fc.constantFrom(...tokens), { maxLength: 12 }).map((t) => t.join(""));
  const equation = fc.oneof(
    fc.tuple(fc.constantFrom("z", "h'", "y", "a", "Wz", "h"), expr as fc.Arbitrary<string>).map(([lhs, rhs]) => `${lhs} = ${rhs}`),
    soup,
  );

  it("random equations compile or throw a CellError", () => {
    fc.assert(
      fc.property(fc.array(equation, { maxLength: 4 }), (lines) => {
        const spec = cell({ activations: { soft: "x / (1 + abs(x))" }, outputs: { y: "H" }, equations: lines.join("\n") });
        try {
          compileCell(spec);
        } catch (e) {
          if (!(e instanceof CellError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("random values in every field compile or throw a CellError", () => {
    const field = fc.constantFrom("name", "doc", "sizes", "defaults", "inputs", "state", "outputs", "params", "constants", "activations", "equations");
    fc.assert(
      fc.property(field, fc.anything(), (f, v) => {
        try {
          compileCell(cell({ [f]: v }));
        } catch (e) {
          if (!(e instanceof CellError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

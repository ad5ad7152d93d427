// Index expressions: the integers a kernel plan computes with. Where a value lives
// (`slot * B * (3 * H) + H`), how far apart its rows are (`3 * H`), how many rows a stage walks
// (`T * B`), how big a buffer is (`seg * B * H`).
//
// An expression is a tree of numbers, the kernel's integer variables (B, T, t, slot, s0, a
// parameter's offset o_W, a state's offset hPrevAt, …), sizes from the IR (a `Dim`: H, 3*H, D + H,
// H/4), products and sums. It prints as the TypeScript the kernel computes it with (`String(ix)`,
// and so in a template), and it has a normal form, a polynomial over those variables, which decides
// when two expressions are the same whatever their text, and sums a kernel's buffers in closed form.
import type { Dim, Poly } from "../src/dims.ts";
import { denominator, polyAdd, polyOfDim, polyProduct } from "../src/dims.ts";
import { sizeIdent } from "./names.ts";

type Node =
  | { readonly kind: "num"; readonly value: number }
  | { readonly kind: "var"; readonly name: string }
  | { readonly kind: "dim"; readonly dim: Dim }
  | { readonly kind: "mul" | "add"; readonly args: readonly Ix[] };

export type { Poly };

export class Ix {
  #text?: string;
  #poly?: Poly;
  private constructor(readonly node: Node) {}

  static num(value: number): Ix {
    if (!Number.isInteger(value)) throw new Error(`internal: an index expression's number must be an integer, got ${value}`);
    return new Ix({ kind: "num", value });
  }
  /** A variable of the kernel (B, T, t, slot, o_W, hPrevAt, …): the emitter's names authority made it. */
  static var(name: string): Ix {
    if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new Error(`internal: ${JSON.stringify(name)} is not a variable`);
    return new Ix({ kind: "var", name });
  }
  static dim(dim: Dim): Ix {
    return new Ix({ kind: "dim", dim });
  }
  /** The product, leaving out factors of 1. */
  static mul(...xs: readonly Ix[]): Ix {
    const f = xs.filter((x) => !x.isOne);
    return f.length === 0 ? ONE : f.length === 1 ? f[0]! : new Ix({ kind: "mul", args: f });
  }
  /** The sum, leaving out terms of 0. */
  static add(...xs: readonly Ix[]): Ix {
    const f = xs.filter((x) => !x.isZero);
    return f.length === 0 ? ZERO : f.length === 1 ? f[0]! : new Ix({ kind: "add", args: f });
  }

  /** Written as 0 (not only equal to it: `H - H` is not folded here). */
  get isZero(): boolean {
    return this.literal === 0;
  }
  get isOne(): boolean {
    return this.literal === 1;
  }
  /** The number this is written as, if it is one (a number, or a size expression that is a constant). */
  get literal(): number | undefined {
    const n = this.node;
    if (n.kind === "num") return n.value;
    if (n.kind === "dim" && Object.keys(n.dim.terms).length === 0) return n.dim.c;
    return undefined;
  }
  /** The variable this is, if it is one. */
  get variable(): string | undefined {
    return this.node.kind === "var" ? this.node.name : undefined;
  }

  /** The kernel variables in it, in the order they are written. */
  get variables(): string[] {
    const n = this.node;
    return n.kind === "var" ? [n.name] : n.kind === "mul" || n.kind === "add" ? [...new Set(n.args.flatMap((a) => a.variables))] : [];
  }
  /** Whether a kernel variable (t, slot, B, o_W, …) occurs in it: if not, it is a number or sizes alone. */
  get hasVariable(): boolean {
    const n = this.node;
    return n.kind === "var" || ((n.kind === "mul" || n.kind === "add") && n.args.some((a) => a.hasVariable));
  }

  /**
   * The terms with a kernel variable, and the rest: `slot * B * (3 * H) + 2 * H` is the row part
   * `slot * B * (3 * H)` and the column offset `2 * H`, which places in the same rows differ by.
   */
  split(): { readonly rows: Ix; readonly column: Ix } {
    const terms = this.node.kind === "add" ? this.node.args : [this];
    return { rows: Ix.add(...terms.filter((x) => x.hasVariable)), column: Ix.add(...terms.filter((x) => !x.hasVariable)) };
  }

  /** As TypeScript: a product's factors and a sum's terms joined, a sum inside a product in parentheses. */
  toString(): string {
    return (this.#text ??= print(this.node));
  }

  /** The normal form: equal polynomials are the same integer for every value of the variables. */
  get poly(): Poly {
    return (this.#poly ??= polyOf(this.node));
  }
  equals(other: Ix): boolean {
    return polyKey(this.poly) === polyKey(other.poly);
  }
}

export const ZERO = Ix.num(0);
export const ONE = Ix.num(1);

/** A size as a TypeScript expression: `H`, `(3 * H)`, `(D + H)` (parenthesised unless an atom), a head's share `(H / 4)`. */
export function dimText(d: Dim): string {
  // a head's share of a size (H/4) as an exact integer quotient, never a float coefficient
  const term = (k: string, v: number) => {
    const den = Number.isInteger(v) ? 1 : denominator(v);
    if (den === undefined || den === 1) return v === 1 ? sizeIdent(k) : `${v} * ${sizeIdent(k)}`;
    const num = Math.round(v * den);
    return `${num === 1 ? "" : `${num} * `}${sizeIdent(k)} / ${den}`;
  };
  const parts = Object.entries(d.terms).map(([k, v]) => term(k, v));
  if (d.c !== 0 || parts.length === 0) parts.push(String(d.c));
  const e = parts.join(" + ");
  return /^[\w$]+$/.test(e) ? e : `(${e})`;
}

function print(n: Node): string {
  switch (n.kind) {
    case "num": return n.value < 0 ? `(${n.value})` : String(n.value);
    case "var": return n.name;
    case "dim": return dimText(n.dim);
    case "mul": return n.args.map((a) => (a.node.kind === "add" ? `(${a})` : String(a))).join(" * ");
    case "add": return n.args.map(String).join(" + ");
  }
}

// ------------------------------------------------------------------------------ the normal form

function polyOf(n: Node): Poly {
  switch (n.kind) {
    case "num": return new Map([["", n.value]]);
    case "var": return new Map([[n.name, 1]]);
    case "dim": return polyOfDim(n.dim, sizeIdent);
    case "add": return n.args.reduce((s, a) => polyAdd(s, a.poly), new Map() as Poly);
    case "mul": return n.args.reduce((s, a) => polyProduct(s, a.poly), new Map([["", 1]]) as Poly);
  }
}

const polyTerms = (p: Poly) => [...p].filter(([, c]) => Math.abs(c) > 1e-12);
const polyKey = (p: Poly) => polyTerms(p).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([m, c]) => `${c}:${m}`).join(" ");

/**
 * A polynomial as TypeScript, its terms by degree then name: `T * B * (2 * D + 3 * H) + 9 * B * H`
 * is written `2 * B * D * T + 3 * B * H * T + 9 * B * H`. A fractional coefficient (a head's share)
 * divides last, where the product is whole: `3 * B * H / 4`.
 */
export function polyText(p: Poly): string {
  const terms = polyTerms(p).sort(([a], [b]) => b.split("*").length - a.split("*").length || (a < b ? -1 : a > b ? 1 : 0));
  if (terms.length === 0) return "0";
  return terms.map(([m, c], k) => {
    const den = Number.isInteger(c) ? 1 : denominator(c);
    if (den === undefined) throw new Error(`internal: a polynomial coefficient ${c} is not a small fraction`);
    const num = Math.round(c * den);
    const sign = k === 0 ? (num < 0 ? "-" : "") : num < 0 ? " - " : " + ";
    const vars = m === "" ? [] : m.split("*");
    const factors = [...(Math.abs(num) !== 1 || vars.length === 0 ? [String(Math.abs(num))] : []), ...vars].join(" * ");
    return `${sign}${factors}${den === 1 ? "" : ` / ${den}`}`;
  }).join("");
}

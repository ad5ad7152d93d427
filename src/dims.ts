// Symbolic sizes. A dimension is a linear form over the cell's size names:
// `H`, `D + H` (a concatenation), `4*H` (stacked gates) or a plain number.

export interface Dim {
  readonly terms: Readonly<Record<string, number>>;
  readonly c: number;
  /** Canonical text, also the hash-consing key: `D + H`, `4*H`, `3`. */
  readonly key: string;
}

/** A table keyed by size names: no prototype, so a size named `constructor` or `toString` is just a key. */
const table = (): Record<string, number> => Object.create(null) as Record<string, number>;

function make(terms: Record<string, number>, c: number): Dim {
  const names = Object.keys(terms).filter((k) => terms[k] !== 0).sort();
  const clean = table();
  for (const k of names) clean[k] = terms[k]!;
  const parts = names.map((k) => coefText(clean[k]!, k));
  if (c !== 0 || parts.length === 0) parts.push(String(c));
  return Object.freeze({ terms: Object.freeze(clean), c, key: parts.join(" + ").replace(/\+ -/g, "- ") });
}

/** A term as written: `H`, `4*H`, and a head's share of a size over its denominator, `H/4`, `3*H/4`. */
function coefText(v: number, k: string): string {
  const d = Number.isInteger(v) ? 1 : denominator(v);
  if (d === 1 || d === undefined) return v === 1 ? k : `${v}*${k}`;
  const num = Math.round(v * d);
  return `${num === 1 ? "" : num === -1 ? "-" : `${num}*`}${k}/${d}`;
}
/** The denominator of a coefficient that is a fraction with a small one (1/4, 2/3), else undefined. */
export function denominator(v: number): number | undefined {
  for (let d = 1; d <= 4096; d++) if (Math.abs(v * d - Math.round(v * d)) < 1e-9) return d;
  return undefined;
}

export const dimConst = (c: number): Dim => make({}, c);
export const dimSize = (name: string): Dim => make(Object.assign(table(), { [name]: 1 }), 0);

export function dimAdd(a: Dim, b: Dim, sign = 1): Dim {
  const t = Object.assign(table(), a.terms);
  for (const [k, v] of Object.entries(b.terms)) t[k] = (t[k] ?? 0) + sign * v;
  return make(t, a.c + sign * b.c);
}

export function dimScale(a: Dim, s: number): Dim {
  const t = table();
  for (const [k, v] of Object.entries(a.terms)) t[k] = v * s;
  return make(t, a.c * s);
}

/** `a` with each size named in `by` replaced by its value there: D + H with D = H is 2*H. */
export function dimSubst(a: Dim, by: ReadonlyMap<string, Dim>): Dim {
  let r = make(table(), a.c);
  for (const [k, v] of Object.entries(a.terms)) {
    const d = by.get(k);
    r = dimAdd(r, d ? dimScale(d, v) : make(Object.assign(table(), { [k]: v }), 0));
  }
  return r;
}

export const dimEq = (a: Dim, b: Dim): boolean => a.key === b.key;
export const isConstDim = (a: Dim): boolean => Object.keys(a.terms).length === 0;

export function dimValue(a: Dim, sizes: Readonly<Record<string, number>>): number {
  let v = a.c;
  for (const [k, s] of Object.entries(a.terms)) {
    const n = Object.hasOwn(sizes, k) ? sizes[k] : undefined;
    if (n === undefined) throw new Error(`size ${k} has no value (sizes given: ${Object.keys(sizes).join(", ") || "none"})`);
    v += s * n;
  }
  // a fractional coefficient (H/3) is held as a float: a whole value comes back whole
  return Math.abs(v - Math.round(v)) < 1e-9 ? Math.round(v) : v;
}

/**
 * A polynomial over the sizes (or, in codegen/ix.ts, a kernel's integer variables): monomial (its
 * variables, sorted, joined by `*`; "" for the constant) to coefficient. `3*D*H + 3*H^2` is
 * {"D*H": 3, "H*H": 3}.
 */
export type Poly = ReadonlyMap<string, number>;

const monomial = (vars: readonly string[]): string => vars.filter((v) => v !== "").sort().join("*");

export function polyAdd(a: Poly, b: Poly): Poly {
  const r = new Map(a);
  for (const [m, c] of b) r.set(m, (r.get(m) ?? 0) + c);
  return r;
}

export function polyProduct(a: Poly, b: Poly): Poly {
  const r = new Map<string, number>();
  for (const [ma, ca] of a) for (const [mb, cb] of b) {
    const m = monomial([...ma.split("*"), ...mb.split("*")]);
    r.set(m, (r.get(m) ?? 0) + ca * cb);
  }
  return r;
}

/** A dim as a polynomial, each size named by `name` (the size itself, or codegen's identifier for it). */
export function polyOfDim(d: Dim, name: (size: string) => string = (k) => k): Poly {
  const p = new Map<string, number>();
  for (const [k, v] of Object.entries(d.terms)) p.set(name(k), v);
  if (d.c !== 0) p.set("", d.c);
  return p;
}

/** A product of dims as a polynomial, for parameter counts: `3*D*H + 3*H^2`. */
export const polyOfShape = (shape: readonly Dim[]): Poly => shape.reduce((p, d) => polyProduct(p, polyOfDim(d)), new Map([["", 1]]) as Poly);

export function polyStr(p: Poly): string {
  const pretty = (m: string) => {
    const counts = new Map<string, number>();
    for (const f of m.split("*")) if (f) counts.set(f, (counts.get(f) ?? 0) + 1);
    return [...counts].map(([f, n]) => (n === 1 ? f : `${f}^${n}`)).join("*");
  };
  const terms = [...p]
    .filter(([, c]) => c !== 0)
    .sort(([a], [b]) => b.split("*").length - a.split("*").length || (a < b ? -1 : a > b ? 1 : 0))
    .map(([m, c]) => (m === "" ? String(c) : coefText(c, pretty(m))));
  return terms.length ? terms.join(" + ") : "0";
}

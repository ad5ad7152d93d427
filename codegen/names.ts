// The one place emitted identifiers come from. A user's name (`z`, `h'`, `dWz`, `dc'_total`) becomes
// a JavaScript identifier only after it is validated here; nothing else is ever emitted as a name.

const JS_RESERVED = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends false finally for function if " +
    "import in instanceof new null return super switch this throw true try typeof var void while with yield let static " +
    "implements interface package private protected public await arguments eval undefined NaN Infinity Math Object Array " +
    "Float32Array Float64Array Number Error RangeError").split(" "),
);
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `h'` -> `h_next`, `dc'_total` -> `dc_next_total`. Throws on anything that is not then an identifier. */
export function jsName(name: string): string {
  const id = name.replace(/'/g, "_next");
  if (!IDENT.test(id)) throw new Error(`internal: "${name}" cannot be an identifier`);
  return id;
}

/** Hands out unique identifiers, never a reserved word, never one already taken. */
export class Namer {
  private readonly taken = new Set<string>(JS_RESERVED);
  reserve(...names: string[]): void {
    for (const n of names) this.taken.add(n);
  }
  fresh(want: string): string {
    const base = jsName(want);
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }
}

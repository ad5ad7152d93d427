// `cellforge export --target pytorch`: one self-contained Python module for a cell. Its
// torch.autograd.Function runs the cell's equations over T steps, saves the saved set of
// src/backward.ts, and runs the derived, simplified backward equations as torch ops (the same
// derivation `show` prints and `check` proves, not autograd of the forward); its torch.nn.Module
// holds the parameters under the names `cellforge convert` gives them.
//
// Values are tensors: a batched vector [B, n], a batched scalar [B, 1], a shared vector [n], a
// shared scalar [] and a matrix [m, n], so torch's broadcasting is the IR's. Every name in the file
// comes from one naming authority (PyNames); every text of the user's (doc, equations) reaches the
// file through `commentText` in a comment, never as code.
import { parse, type MathNode } from "mathjs";
import type { Cell } from "../src/cell.ts";
import { initBoundSize, stepRoots } from "../src/cell.ts";
import { type BackwardStep, deriveBackward } from "../src/backward.ts";
import { type Dim, dimAdd, dimEq } from "../src/dims.ts";
import { type Node, type Type, topo } from "../src/ir.ts";
import { type OpName, OPS } from "../src/ops.ts";
import { commentText, lineCommentText } from "./escape.ts";
import { route } from "../src/interop/convert.ts";
import { formCell } from "../src/interop/match.ts";

// ---------------------------------------------------------------- names

const PY_KEYWORDS = [
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
  "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
  "while", "with", "yield", "match", "case", "type", "_",
];
/** Names the generated code itself uses, and Python builtins it calls: a user's name never takes one. */
const PY_RESERVED = [
  "torch", "math", "Tensor", "List", "Tuple", "Optional", "ctx", "self", "t", "T", "B", "range", "float", "int", "len", "super",
  "print", "isinstance", "tuple", "list", "sizes", "state", "grads", "outs", "saved", "object", "bool", "str", "dict", "min", "max",
  "abs", "sum", "pow", "round", "staticmethod", "annotations", "Function", "Module", "Parameter", "script_loops",
  "factory", "states", "seqs", "out", "final", "idx", "grad_outputs", "device", "dtype",
  "array", "hashlib", "json", "re", "struct", "sys", "warnings", "Dict", "CellforgeFileError", "values", "other", "shapes", "path", "layer",
];
/** Attributes an nn.Module has: a parameter of that name would hide them. */
const MODULE_ATTRS = [
  "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "cpu", "cuda", "double", "dump_patches",
  "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu",
  "load_state_dict", "modules", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
  "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
  "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_module", "register_parameter",
  "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "share_memory", "state_dict", "to", "to_empty", "train",
  "training", "type", "xpu", "zero_grad", "batch_first", "reset_parameters", "cell_parameters", "sizes", "mtia", "compile",
  "load_cellforge", "save_cellforge",
];

/** A valid Python identifier from a cellforge name: `h'` -> `h_next`, other characters -> `_`. */
export function pyIdent(s: string): string {
  let r = s.replace(/'/g, "_next").replace(/[^A-Za-z0-9_]/g, "_");
  if (!/^[A-Za-z]/.test(r)) r = `v${r}`;
  return r;
}

/** The one naming authority of a generated module: every identifier is handed out here, once. */
export class PyNames {
  private readonly used = new Set<string>();
  constructor(private readonly reserved: readonly string[] = [...PY_KEYWORDS, ...PY_RESERVED]) {}
  take(want: string): string {
    let base = pyIdent(want);
    if (this.reserved.includes(base) || base.startsWith("__")) base = `${base}_`;
    let name = base;
    for (let k = 2; this.used.has(name) || this.reserved.includes(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }
}

/** A class name: `gru-keras` -> `GruKeras`. */
function className(cell: string, suffix: string): string {
  const words = cell.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1));
  const s = words.join("") || "Cell";
  return `${/^[A-Za-z]/.test(s) ? s : `Cell${s}`}${suffix}`;
}

/** A number as a Python float literal that reads back exactly. */
function pyFloat(v: number): string {
  if (Number.isNaN(v)) return `float("nan")`;
  if (!Number.isFinite(v)) return v > 0 ? `float("inf")` : `-float("inf")`;
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

// ---------------------------------------------------------------- expressions

/** Precedence of printed Python: 0 + -, 1 * /, 2 unary -, 3 **, 4 names, calls, subscripts. */
interface Ex { readonly s: string; readonly p: number }
const wrap = (e: Ex, min: number) => (e.p >= min ? e.s : `(${e.s})`);

/** Python helpers a module uses, each emitted once when some expression calls it. */
const HELPERS: Readonly<Record<string, string>> = {
  _step: `def _step(x: Tensor) -> Tensor:\n    # 1 where x > 0, else 0 (the derivative of relu, abs, max)\n    return (x > 0).to(x.dtype)`,
  _softplus: `def _softplus(x: Tensor) -> Tensor:\n    # log(1 + e^x), without overflow (torch's softplus switches to x above 20, which is not exact)\n    return torch.clamp(x, min=0.0) + torch.log1p(torch.exp(-torch.abs(x)))`,
  _softsign: `def _softsign(x: Tensor) -> Tensor:\n    return x / (1.0 + torch.abs(x))`,
  _orthogonal_: `def _orthogonal_(w: Tensor) -> None:\n    # cellforge's orthogonal rule (runtime/checks.ts): rows k times the columns (a stacked [k*H, H], or a matrix with\n    # heads) make k square orthogonal blocks, top to bottom; any other matrix is torch.nn.init.orthogonal_'s\n    rows, cols = w.shape[0], w.shape[1]\n    if rows % cols == 0:\n        for b in range(rows // cols):\n            torch.nn.init.orthogonal_(w[b * cols:(b + 1) * cols])\n    else:\n        torch.nn.init.orthogonal_(w)`,
  _bdmatvec: `def _bdmatvec(W: Tensor, x: Tensor, heads: int) -> Tensor:\n    # W*x with W block-diagonal in heads: W stores its blocks stacked, [R, C/heads]\n    R = W.shape[0]\n    Cb = W.shape[1]\n    y = torch.einsum("krj,nkj->nkr", W.reshape(heads, R // heads, Cb), x.reshape(-1, heads, Cb))\n    return y.reshape(list(x.shape[:-1]) + [R])`,
  _bdmatvecT: `def _bdmatvecT(W: Tensor, y: Tensor, heads: int) -> Tensor:\n    # W'*y with W block-diagonal in heads\n    R = W.shape[0]\n    Cb = W.shape[1]\n    x = torch.einsum("krj,nkr->nkj", W.reshape(heads, R // heads, Cb), y.reshape(-1, heads, R // heads))\n    return x.reshape(list(y.shape[:-1]) + [heads * Cb])`,
  _bdouter: `def _bdouter(u: Tensor, v: Tensor, heads: int) -> Tensor:\n    # per head k, the sum over the batch of u_k*v_k' (a block-diagonal weight's gradient, its blocks stacked)\n    R = u.shape[-1]\n    Cb = v.shape[-1] // heads\n    w = torch.einsum("nkr,nkj->krj", u.reshape(-1, heads, R // heads), v.reshape(-1, heads, Cb))\n    return w.reshape(R, Cb)`,
};

/**
 * The module's reader and writer of cellforge's weight files (item "weights both ways" of #16), stdlib only:
 * a training checkpoint (the format of src/train/checkpoint.ts, its sha256 checked) or the parameter JSON of
 * src/interop/convert.ts (readCellParams / writeCellParams), into and out of the module's parameters.
 */
const WEIGHTS_PY = `class CellforgeFileError(ValueError):
    # a cellforge file (a training checkpoint or a parameter file) that cannot be read into this module
    pass


_PREFIX = b'{"__metadata__":{"sha256":"'  # a cellforge checkpoint's header begins so, after its 8-byte length


def _checkpoint_arrays(path: str, data: bytes) -> Tuple[dict, Dict[str, Tensor]]:
    # A training checkpoint (src/train/checkpoint.ts), a safetensors file: N (uint64 LE), N bytes of JSON
    # {"__metadata__": {"sha256", "format", "version": "3", "meta": JSON text}, name: {"dtype", "shape", "data_offsets"}},
    # then the tensors, one after another; the sha256 is of the file with its 64 hex digits (bytes 35-98) as "0"s.
    # Returns the metadata's meta and every model array by its name.
    if data[:8] in (b"CFCKPT01", b"CFCKPT02"):
        raise CellforgeFileError(f"{path}: a checkpoint of the format before safetensors ({data[:8].decode()}), written by an earlier cellforge; it is not read: train again with this cellforge")
    (n,) = struct.unpack_from("<Q", data, 0) if len(data) >= 8 else (0,)
    if data[8:35] != _PREFIX or n < 93 or 8 + n > len(data):
        raise CellforgeFileError(f"{path}: not a cellforge checkpoint (no safetensors header beginning {_PREFIX.decode()}) and not cellforge parameters (JSON)")
    if hashlib.sha256(data[:35] + b"0" * 64 + data[99:]).hexdigest().encode() != data[35:99]:
        raise CellforgeFileError(f"{path}: the file does not match its sha256 (a truncated, damaged or edited checkpoint)")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    start = 8 + n
    md = header.get("__metadata__") if isinstance(header, dict) else None
    meta = json.loads(md["meta"]) if isinstance(md, dict) and md.get("version") == "3" and isinstance(md.get("meta"), str) else None
    sections = header if isinstance(header, dict) else {}
    if not isinstance(meta, dict) or not isinstance(meta.get("params"), list) or not isinstance(sections.get("params"), dict):
        raise CellforgeFileError(f"{path}: a cellforge checkpoint, but not of a training run (no model parameters in it)")
    s = sections["params"]
    if s.get("dtype") not in ("F32", "F64"):
        raise CellforgeFileError(f"{path}: the params tensor's dtype is {s.get('dtype')!r}, not F32 or F64")
    width = 4 if s["dtype"] == "F32" else 8
    begin, end = s["data_offsets"]
    if not 0 <= begin <= end <= len(data) - start or (end - begin) % width:
        raise CellforgeFileError(f"{path}: the params tensor's data_offsets [{begin}, {end}] do not fit the file")
    raw = array.array("f" if width == 4 else "d")
    raw.frombytes(data[start + begin:start + end])
    if sys.byteorder == "big":
        raw.byteswap()
    flat = torch.tensor(raw.tolist(), dtype=torch.float32 if width == 4 else torch.float64)
    arrays: Dict[str, Tensor] = {}
    at = 0
    for name, length in meta["params"]:
        arrays[name] = flat[at:at + length]
        at += length
    if at != flat.numel():
        raise CellforgeFileError(f"{path}: the header lists {at} parameters, the params section holds {flat.numel()}")
    return meta, arrays


def _read_cellforge(path: str, cell: str, shapes: Dict[str, List[int]], layer: int) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    # The cell's parameters from a training checkpoint (layer \`layer\` of the model) or from cellforge parameters
    # (\`cellforge convert --to cellforge\`: {"cell", "sizes", "params": {name: nested lists}}), each shaped as
    # \`shapes\` says; and, from a checkpoint, the model's arrays that are not a layer's (readout, input projection).
    with open(path, "rb") as f:
        data = f.read()
    other: Dict[str, Tensor] = {}
    flat = data[:6] == b"CFCKPT" or data[8:35] == _PREFIX
    if flat:
        meta, arrays = _checkpoint_arrays(path, data)
        # layer k's arrays are "l{k-1}.<name>" (its input projection "l{k-1}.proj.W", "l{k-1}.proj.b"), or
        # "layer{k}.<name>" in checkpoints of earlier cellforge versions; the readout is "readout.W", "readout.b"
        old = any(k.startswith("layer1.") for k in arrays)
        prefix = f"layer{layer}." if old else f"l{layer - 1}."
        layers = len({k.split(".")[0] for k in arrays if re.match(r"(layer\\d+|l\\d+)\\.", k)})
        if layer < 1 or not any(k.startswith(prefix) for k in arrays):
            raise CellforgeFileError(f"{path}: the model has {layers} layer{'s' if layers != 1 else ''}, no layer {layer}")
        if meta.get("cellName") != cell:
            warnings.warn(f"{path} is a checkpoint of cell {meta.get('cellName')!r}; its layer {layer} is read as cell {cell!r}'s (the names fit)")
        found = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix) and not k.startswith(prefix + "proj.")}
        for k, v in arrays.items():
            if k.startswith(prefix + "proj.") or not re.match(r"(layer\\d+|l\\d+(_reverse)?)\\.", k):
                other[k] = v
        # a linear map's W is [outputs, inputs], as nn.Linear's weight (src/train/model.ts, nn/recurrent.ts)
        for k in list(other):
            if k.endswith(".W") and k[:-1] + "b" in other:
                other[k] = other[k].reshape(other[k[:-1] + "b"].numel(), -1)
        where = f"layer {layer} of {path}"
    else:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CellforgeFileError(f"{path}: not a cellforge checkpoint and not valid JSON: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict):
            raise CellforgeFileError(f'{path}: cellforge parameters are {{"cell": "{cell}", "sizes": {{...}}, "params": {{{", ".join(shapes)}}}}}')
        if doc.get("cell", cell) != cell:
            warnings.warn(f"{path} holds cell {doc.get('cell')!r}'s parameters; they are read as cell {cell!r}'s (the names fit)")
        try:
            found = {k: torch.tensor(v, dtype=torch.float64) for k, v in doc["params"].items()}
        except (TypeError, ValueError) as e:
            raise CellforgeFileError(f"{path}: a parameter is not an array of numbers: {e}") from None
        where = path
    extra = sorted(set(found) - set(shapes))
    if extra:
        raise CellforgeFileError(f"{where}: cell {cell!r} has no parameter {', '.join(extra)} (it has {', '.join(shapes)})")
    values: Dict[str, Tensor] = {}
    for name, shape in shapes.items():
        if name not in found:
            raise CellforgeFileError(f"{where}: parameter {name} is missing")
        v = found[name]
        numel = 1
        for d in shape:
            numel *= d
        if flat and v.numel() == numel:
            v = v.reshape(shape)
        if list(v.shape) != shape:
            got = f"{v.numel()} numbers" if flat else f"shape {list(v.shape)}"
            raise CellforgeFileError(f"{where}: parameter {name} has {got}; this module's is {shape}, {numel} numbers (the sizes differ)")
        if not bool(torch.isfinite(v).all()):
            raise CellforgeFileError(f"{where}: parameter {name} is not finite")
        values[name] = v
    return values, other


def _write_cellforge(path: str, cell: str, sizes: Dict[str, int], values: Dict[str, Tensor]) -> None:
    # cellforge parameters, as \`cellforge convert --to cellforge\` writes them: what \`cellforge train --init\` reads.
    # Every number is a float64 written by repr, which reads back exactly (a float32 value is exact in float64).
    params = {}
    for name, v in values.items():
        if not bool(torch.isfinite(v).all()):
            raise CellforgeFileError(f"{path}: not written: parameter {name} is not finite")
        params[name] = v.detach().to(device="cpu", dtype=torch.float64).tolist()
    with open(path, "w") as f:
        json.dump({"cell": cell, "sizes": sizes, "params": params}, f)
        f.write("\\n")`;

/** mathjs functions of a user's activation that are not ops of the table, as torch calls. */
const MATHJS_TORCH: Readonly<Record<string, (a: string) => string>> = {
  sinh: (a) => `torch.sinh(${a})`, cosh: (a) => `torch.cosh(${a})`, sin: (a) => `torch.sin(${a})`, cos: (a) => `torch.cos(${a})`,
  tan: (a) => `torch.tan(${a})`, atan: (a) => `torch.atan(${a})`, cot: (a) => `(1.0 / torch.tan(${a}))`, csc: (a) => `(1.0 / torch.sin(${a}))`,
  sec: (a) => `(1.0 / torch.cos(${a}))`, sech: (a) => `(1.0 / torch.cosh(${a}))`, csch: (a) => `(1.0 / torch.sinh(${a}))`, coth: (a) => `(1.0 / torch.tanh(${a}))`,
};

export class ExportError extends Error {}

/** Everything an expression needs from where it is printed. */
interface Scope {
  /** A node already held in a variable (a leaf, a saved value, a line printed before). */
  readonly ref: (n: Node) => string | undefined;
  readonly dim: (d: Dim) => string;
  /** A tensor whose dtype and device new tensors take. */
  readonly like: string;
  readonly helpers: Set<string>;
  readonly activation: (name: string, expr: string) => string;
  /** Leading dimensions besides the batch: 1 where values are whole sequences, [T, B, n]. */
  readonly lead?: number;
  /** A number's variable, a 0-dim tensor made once per call, for an operand of + - * / beside a tensor. */
  readonly konst?: (number: string) => string;
}

/** A type's shape as a Python list: [B, n] for a batched vector, [B, 1] for a batched scalar. */
function shapeList(t: Type, sc: Scope): string {
  const dims = t.shape.map(sc.dim);
  return `[${(t.batched ? ["B", ...(dims.length ? dims : ["1"])] : dims).join(", ")}]`;
}

/** Whether a node's value is a number, the same for every example and step (constants and sizes only). */
function constTree(n: Node): boolean {
  return topo([n]).every((m) => m.op === "const" || m.op === "size" || (OPS[m.op].kind === "elementwise" && m.args.length > 0));
}

/** A node's value as a tensor of its type, where a Python number would not do. */
function tensorOf(n: Node, sc: Scope): Ex {
  const e = ex(n, sc);
  if (!constTree(n)) return e;
  return { s: `torch.full(${shapeList(n.type, sc)}, ${e.s}, dtype=${sc.like}.dtype, device=${sc.like}.device)`, p: 4 };
}

const call = (f: string, args: readonly string[]): Ex => ({ s: `${f}(${args.join(", ")})`, p: 4 });

/** An elementwise op of the table as torch, over its operands' expressions (and their nodes, for constants). */
function elementwise(op: OpName, a: readonly Ex[], nodes: readonly Node[], sc: Scope, attrs: Node["attrs"]): Ex {
  const isConst = (i: number) => nodes[i] !== undefined && constTree(nodes[i]!);
  const T = (i: number) => (isConst(i) ? tensorOf(nodes[i]!, sc).s : a[i]!.s);
  const help = (h: string, i = 0) => { sc.helpers.add(h); return call(h, [T(i)]); };
  // torch 1.13 wraps a Python number in a tensor and casts it at every op (four more dispatches than
  // tensor op tensor): a number beside a tensor is a 0-dim tensor of the same dtype, made once per call
  const K = (i: number): Ex => (sc.konst && isConst(i) && !isConst(1 - i) ? { s: sc.konst(a[i]!.s), p: 4 } : a[i]!);
  switch (op) {
    case "add": return { s: `${wrap(K(0), 0)} + ${wrap(K(1), 1)}`, p: 0 };
    case "sub": return { s: `${wrap(K(0), 0)} - ${wrap(K(1), 1)}`, p: 0 };
    case "mul": return { s: `${wrap(K(0), 1)} * ${wrap(K(1), 2)}`, p: 1 };
    case "div": return { s: `${wrap(K(0), 1)} / ${wrap(K(1), 2)}`, p: 1 };
    case "neg": return { s: `-${wrap(a[0]!, 3)}`, p: 2 };
    case "pow": { const p = attrs.p!; return { s: `${wrap(a[0]!, 4)} ** ${p < 0 ? `(${pyFloat(p)})` : pyFloat(p)}`, p: 3 }; }
    case "sigmoid": return call("torch.sigmoid", [T(0)]);
    case "tanh": return call("torch.tanh", [T(0)]);
    case "relu": return call("torch.relu", [T(0)]);
    case "exp": return call("torch.exp", [T(0)]);
    case "log": return call("torch.log", [T(0)]);
    case "abs": return call("torch.abs", [T(0)]);
    case "sqrt": return call("torch.sqrt", [T(0)]);
    // x * x is one op; torch.square is four (square, pow, result_type, to), with the same product
    case "square": return /^[A-Za-z_][A-Za-z0-9_]*$/.test(a[0]!.s) && !isConst(0) ? { s: `${a[0]!.s} * ${a[0]!.s}`, p: 1 } : call("torch.square", [T(0)]);
    case "sign": return call("torch.sign", [T(0)]);
    case "softplus": return help("_softplus");
    case "softsign": return help("_softsign");
    case "step": return help("_step");
    case "hardSigmoid": return call("torch.clamp", [`0.2 * ${wrap(a[0]!, 2)} + 0.5`, "0.0", "1.0"]);
    case "hardSigmoidKeras": return call("torch.clamp", [`${wrap(a[0]!, 2)} / 6.0 + 0.5`, "0.0", "1.0"]);
    case "max": case "min": {
      const [c0, c1] = [isConst(0), isConst(1)];
      const bound = op === "max" ? "min" : "max";
      if (c1 && !c0) return call("torch.clamp", [a[0]!.s, `${bound}=${a[1]!.s}`]);
      if (c0 && !c1) return call("torch.clamp", [a[1]!.s, `${bound}=${a[0]!.s}`]);
      return call(op === "max" ? "torch.maximum" : "torch.minimum", [T(0), T(1)]);
    }
    case "act": return call(sc.activation(attrs.fn!.name, attrs.fn!.expr), [T(0)]);
    default: throw new ExportError(`the PyTorch target has no form for the elementwise op ${op}`);
  }
}

/** A node as a Python expression: its variable when it has one, else its op over its operands. */
function ex(n: Node, sc: Scope): Ex {
  const r = sc.ref(n);
  if (r !== undefined) return { s: r, p: 4 };
  const def = OPS[n.op];
  if (n.op === "const") { const v = n.attrs.value!; return { s: pyFloat(v), p: v < 0 || Object.is(v, -0) ? 2 : 4 }; }
  if (n.op === "input") throw new ExportError(`no value for ${n.attrs.role} ${n.attrs.name}`);
  if (n.op === "size") return call("float", [sc.dim(n.attrs.dim!)]);
  if (n.op === "add") { const c = padsAsCat(n, sc); if (c) return c; }
  const a = n.args.map((m) => ex(m, sc));
  if (def.kind === "elementwise") return elementwise(n.op, a, n.args, sc, n.attrs);
  const A = (i: number) => wrap(tensorOf(n.args[i]!, sc), 4);
  const [t0, t1] = [n.args[0]?.type, n.args[1]?.type];
  switch (n.op) {
    case "matvec": return call("torch.matmul", [A(1), `${A(0)}.t()`]); // W*x = x W' on rows
    case "matvecT": return call("torch.matmul", [A(1), A(0)]); // W'*y = y W
    case "outer": {
      // Σ_b u v'
      if (t0!.batched && t1!.batched) return call("torch.matmul", [`${A(0)}.t()`, A(1)]);
      return call("torch.outer", [t0!.batched ? `${A(0)}.sum(0)` : A(0), t1!.batched ? `${A(1)}.sum(0)` : A(1)]);
    }
    case "bdmatvec": sc.helpers.add("_bdmatvec"); return call("_bdmatvec", [A(0), A(1), String(n.attrs.heads!)]);
    case "bdmatvecT": sc.helpers.add("_bdmatvecT"); return call("_bdmatvecT", [A(0), A(1), String(n.attrs.heads!)]);
    case "bdouter": {
      sc.helpers.add("_bdouter");
      const batched = (i: number, t: Type) => (!t.batched && (t0!.batched || t1!.batched) ? `${A(i)}.unsqueeze(0).expand(B, -1)` : A(i));
      return call("_bdouter", [batched(0, t0!), batched(1, t1!), String(n.attrs.heads!)]);
    }
    case "sum": return { s: t0!.batched ? `${A(0)}.sum(-1, keepdim=True)` : `${A(0)}.sum()`, p: 4 };
    case "sumb": return { s: t0!.shape.length ? `${A(0)}.sum(0)` : `${A(0)}.sum()`, p: 4 };
    case "bcast": return { s: t0!.batched ? `${A(0)}.expand(${"-1, ".repeat(1 + (sc.lead ?? 0))}${sc.dim(n.attrs.dim!)})` : `${A(0)}.expand(${sc.dim(n.attrs.dim!)})`, p: 4 };
    case "expandb": return { s: t0!.shape.length ? `${A(0)}.unsqueeze(0).expand(B, -1)` : `${A(0)}.reshape([1, 1]).expand(B, 1)`, p: 4 };
    case "concat": {
      const parts = n.args.map((m, i) => (n.type.batched && !m.type.batched ? `${A(i)}.unsqueeze(0).expand(B, -1)` : A(i)));
      return call("torch.cat", [`[${parts.join(", ")}]`, "-1"]);
    }
    case "slice": return { s: `${A(0)}.narrow(-1, ${sc.dim(n.attrs.start!)}, ${sc.dim(n.attrs.len!)})`, p: 4 };
    case "pad": {
      const after = dimAdd(n.attrs.dim!, dimAdd(n.attrs.start!, t0!.shape[0]!), -1);
      return call("torch.nn.functional.pad", [A(0), `[${sc.dim(n.attrs.start!)}, ${sc.dim(after)}]`]);
    }
    default: throw new ExportError(`the PyTorch target has no form for the op ${n.op}`);
  }
}

/**
 * pad(a, 0, N) + pad(b, len a, N) + … whose pieces tile the N elements end to end (the gradient of
 * a vector sliced into gates) is those pieces joined: one torch.cat instead of a pad and an add each.
 */
function padsAsCat(n: Node, sc: Scope): Ex | undefined {
  const terms: Node[] = [];
  const walk = (m: Node) => { if (m.op === "add" && (m === n || sc.ref(m) === undefined)) m.args.forEach(walk); else terms.push(m); };
  walk(n);
  if (terms.length < 2 || !terms.every((t) => t.op === "pad" && sc.ref(t) === undefined && t.type.batched === n.type.batched && dimEq(t.attrs.dim!, n.type.shape[0]!))) return undefined;
  // order by start at large sizes, then check exactly that each piece starts where the last one ended
  const at = (d: Dim) => d.c + Object.values(d.terms).reduce((acc, v) => acc + v * 1e6, 0);
  const sorted = [...terms].sort((p, q) => at(p.attrs.start!) - at(q.attrs.start!));
  let end: Dim = { terms: {}, c: 0, key: "0" };
  for (const t of sorted) {
    if (!dimEq(t.attrs.start!, end)) return undefined;
    end = dimAdd(end, t.args[0]!.type.shape[0]!);
  }
  if (!dimEq(end, n.type.shape[0]!)) return undefined;
  return call("torch.cat", [`[${sorted.map((t) => wrap(tensorOf(t.args[0]!, sc), 4)).join(", ")}]`, "-1"]);
}

/** A user's activation (a mathjs expression in x) as a torch expression in `x`. */
function activationPy(expr: string, sc: Scope): string {
  const go = (m: MathNode): string => {
    const node = m as MathNode & { type: string; value?: unknown; name?: string; op?: string; args?: MathNode[]; content?: MathNode; fn?: { name?: string } };
    switch (node.type) {
      case "ConstantNode": return `(${pyFloat(node.value as number)})`;
      case "SymbolNode": return node.name === "x" ? "x" : node.name === "e" ? pyFloat(Math.E) : node.name === "pi" ? pyFloat(Math.PI) : (() => { throw new ExportError(`activation "${expr}": unknown symbol`); })();
      case "ParenthesisNode": return go(node.content!);
      case "OperatorNode": {
        const args = node.args!.map(go);
        if (args.length === 1) return node.op === "-" ? `(-${args[0]})` : args[0]!;
        const op = { "+": "+", "-": "-", "*": "*", ".*": "*", "/": "/", "./": "/", "^": "**", ".^": "**" }[node.op!];
        if (!op) throw new ExportError(`activation "${expr}": operator ${node.op}`);
        return `(${args[0]} ${op} ${args[1]})`;
      }
      case "FunctionNode": {
        const name = node.fn?.name ?? "";
        const args = node.args!.map(go);
        if (Object.hasOwn(MATHJS_TORCH, name)) return MATHJS_TORCH[name]!(args[0]!);
        if (Object.hasOwn(OPS, name) && OPS[name as OpName].kind === "elementwise") {
          const e = elementwise(name as OpName, args.map((s) => ({ s, p: 4 })), [], { ...sc, ref: () => undefined }, {});
          return `(${e.s})`;
        }
        throw new ExportError(`activation "${expr}": function ${name} has no PyTorch form`);
      }
      default: throw new ExportError(`activation "${expr}": ${node.type}`);
    }
  };
  // operands of table ops inside an activation are tensors already (x is one): no constant wrapping needed
  return go(parse(expr));
}

// ---------------------------------------------------------------- the step's lines

interface Line { readonly lhs: string; readonly rhs: string; readonly comment?: string }

/**
 * The lines that compute `roots` from the values `sc.ref` knows: a line for each named node (`names`),
 * each node used more than once and each node in `force`, the rest inlined. Nodes `pre` says are
 * the same at every step go to `before` (computed once), the rest to `body`.
 */
function lines(roots: readonly Node[], sc: Scope, held: Map<Node, string>, want: (n: Node) => string | undefined, names: PyNames,
  opts: { fixed?: (n: Node) => string | undefined; force?: ReadonlySet<Node>; invariant?: (n: Node) => boolean; comment?: (n: Node) => string | undefined; temp?: string } = {}): { before: Line[]; body: Line[] } {
  const known = (n: Node) => sc.ref(n) !== undefined;
  const order = topo(roots, known).filter((n) => !known(n) && n.op !== "const" && n.op !== "input" && !constTree(n));
  const uses = new Map<Node, number>();
  const users = new Map<Node, Node[]>();
  for (const n of order) for (const a of n.args) { uses.set(a, (uses.get(a) ?? 0) + 1); users.set(a, [...(users.get(a) ?? []), n]); }
  const inv = opts.invariant ?? (() => false);
  const before: Line[] = [], body: Line[] = [];
  let k = 0;
  for (const n of order) {
    const isInv = inv(n);
    const nm = want(n);
    const line = nm !== undefined || (uses.get(n) ?? 0) > 1 || opts.force?.has(n) || roots.includes(n) || (isInv && (users.get(n) ?? []).some((u) => !inv(u)));
    if (!line) continue;
    const rhs = ex(n, sc).s;
    const lhs = opts.fixed?.(n) ?? names.take(nm ?? `${opts.temp ?? "t"}${++k}`);
    held.set(n, lhs);
    const c = opts.comment?.(n);
    (isInv ? before : body).push({ lhs, rhs, ...(c ? { comment: c } : {}) });
  }
  return { before, body };
}

const fmt = (ls: readonly Line[], indent: string) => ls.map((l) => `${indent}${l.lhs} = ${l.rhs}${l.comment ? `  # ${l.comment}` : ""}`);

// ---------------------------------------------------------------- parameters of the module

/** Where a cell parameter lives in the module: its own tensor, or a sum of row blocks of stored tensors. */
interface ParamPlace {
  readonly expr: string;
  readonly init: { readonly tensor: string; readonly rows?: readonly [string, string] };
  /** The stored blocks whose sum the parameter is (one, unless the framework splits it, as a bias b_i + b_h). */
  readonly blocks: readonly string[];
}

function frameworkLayout(cell: Cell, attrs: PyNames, dimPy: (d: Dim) => string): { stored: { attr: string; shape: string; what: string }[]; place: Map<string, ParamPlace>; title: string } | undefined {
  let r;
  try { r = route(cell, "pytorch"); } catch { return undefined; }
  if (!cell.sizes.includes("D") || !cell.sizes.includes("H")) return undefined;
  const form = r.form;
  const fc = formCell(form);
  const formShape = new Map(fc.params.map((p) => [p.name, p.node.type.shape]));
  // each PyTorch form parameter: its tensor and row block
  const where = new Map<string, { tensor: string; i: number }>();
  const stored: { attr: string; shape: string; what: string }[] = [];
  const attrOf = new Map<string, string>();
  for (const [t, layout] of Object.entries(form.layout)) {
    if (layout.kind !== "rows") return undefined;
    const attr = attrs.take(`${t}_l0`);
    if (attr !== `${t}_l0`) return undefined;
    attrOf.set(t, attr);
    const part = formShape.get(layout.parts[0]!)!;
    const k = layout.parts.length;
    const shape = [`${k} * ${dimPy(part[0]!)}`, ...part.slice(1).map(dimPy)];
    stored.push({ attr, shape: `[${shape.join(", ")}]`, what: layout.parts.join(" | ") });
    layout.parts.forEach((p, i) => where.set(p, { tensor: attr, i }));
  }
  const block = (p: string) => {
    const w = where.get(p)!;
    const R = dimPy(formShape.get(p)![0]!);
    const times = (k: number) => (k === 0 ? "0" : k === 1 ? R : `${k} * ${R}`);
    const rows: [string, string] = [times(w.i), times(w.i + 1)];
    return { tensor: `self.${w.tensor}`, rows, expr: `self.${w.tensor}[${rows[0]}:${rows[1]}]` };
  };
  const place = new Map<string, ParamPlace>();
  for (const [formParam, cellParam] of r.recognition.rename) {
    let parts: string[];
    if (!r.bridge) parts = [formParam];
    else {
      if (r.bridge.cellIsA) return undefined;
      const from = r.bridge.bridge.aToB[formParam];
      if (from === null || from === undefined) return undefined;
      parts = typeof from === "string" ? [from] : [...from];
    }
    const bs = parts.map(block);
    place.set(cellParam, { expr: bs.map((b) => b.expr).join(" + "), init: { tensor: bs[0]!.tensor, rows: bs[0]!.rows }, blocks: bs.map((b) => b.expr) });
  }
  return { stored, place, title: form.title };
}

// ---------------------------------------------------------------- the module

export interface ExportOptions {
  /** The cell's file as the header names it (relative, never absolute). */
  readonly source: string;
  /** The command that makes the file again. */
  readonly command: string;
}

export function emitPytorch(cell: Cell, opts: ExportOptions): string {
  const bw: BackwardStep = deriveBackward(cell);
  const names = new PyNames();
  const roots = stepRoots(cell);
  const rootNames = [...cell.states.map((s) => s.attrs.name!), ...cell.outputs.map((o) => o.name)];
  const fnBase = pyIdent(cell.name.replace(/[^A-Za-z0-9]+/g, "_")).toLowerCase();
  const fwdFn = names.take(`${fnBase}_forward`), bwdFn = names.take(`${fnBase}_backward`);
  const FnClass = names.take(className(cell.name, "Function")), ModClass = names.take(className(cell.name, ""));

  // sizes: one int each; the ones a constraint determines follow from the free ones
  const sizeVar = new Map(cell.sizes.map((s) => [s, names.take(s)]));
  const dimPy = (d: Dim): string => dimPyWith(d, (k) => sizeVar.get(k)!);

  const inputVar = new Map(cell.inputs.map((x) => [x, names.take(x.attrs.name!)]));
  const stateVar = new Map(cell.states.map((s) => [s, names.take(s.attrs.name!)]));
  const paramVar = new Map(cell.params.map((p) => [p.node, names.take(p.name)]));
  const inSeq = cell.inputs.map((x) => names.take(`${x.attrs.name}_seq`));
  const init0 = cell.states.map((s) => names.take(`${s.attrs.name}0`));
  const rootSeq = rootNames.map((n) => names.take(`${n}_seq`));
  const like = inSeq[0] ?? init0[0]!;
  const helpers = new Set<string>();
  const actFns = new Map<string, { name: string; expr: string }>();
  const activation = (name: string, expr: string) => {
    let a = actFns.get(expr);
    if (!a) { a = { name: names.take(`act_${name.replace(/'/g, "_prime")}`), expr }; actFns.set(expr, a); }
    return a.name;
  };
  const fwdNodes = new Set(topo(roots));
  const paramOnly = (n: Node) => topo([n]).every((m) => m.op !== "input" || m.attrs.role === "param");
  const eqOf = new Map<Node, string>();
  for (const eq of cell.equations) eqOf.set(eq.node, commentText(eq.text.trim()));

  // ---- forward
  const held = new Map<Node, string>();
  // numbers as 0-dim tensors (Scope.konst), one set for each of the two functions, made at its top
  const konsts = () => {
    const m = new Map<string, string>();
    return {
      get: (v: string) => { if (!m.has(v)) m.set(v, names.take("k")); return m.get(v)!; },
      // scalar_tensor, not torch.tensor: under torch.jit.script torch.tensor(0.1, dtype=float64) rounds through float32
      lines: () => [...m].map(([v, k]) => `    ${k} = torch.scalar_tensor(${v}, dtype=${like}.dtype, device=${like}.device)`),
    };
  };
  const fK = konsts(), bK = konsts();
  const mkScope = (h: Map<Node, string>, extra: (n: Node) => string | undefined, k = fK): Scope => ({
    ref: (n) => extra(n) ?? h.get(n), dim: dimPy, like, helpers, activation, konst: k.get,
  });
  const leafRef = (n: Node): string | undefined =>
    n.op !== "input" ? undefined : n.attrs.role === "input" ? inputVar.get(n) : n.attrs.role === "state" ? stateVar.get(n) : n.attrs.role === "param" ? paramVar.get(n) : undefined;
  // Values of the inputs (and parameters) alone, W*x and what follows from it before a state enters, are
  // computed for every step at once, before the loop: torch's ops broadcast over the leading [T, B].
  const SEQUENCE_OPS: ReadonlySet<OpName> = new Set(["matvec", "sum", "slice", "pad"]);
  const inputOnly = (n: Node) => n.op !== "input" && !paramOnly(n) && !constTree(n) && topo([n]).every((m) =>
    m.op === "input" ? m.attrs.role === "input" || m.attrs.role === "param" : m.op === "const" || m.op === "size" || OPS[m.op].kind === "elementwise" || SEQUENCE_OPS.has(m.op));
  const early = new Set([...fwdNodes].filter(inputOnly));
  const frontier = [...fwdNodes].filter((n) => early.has(n) && (bw.saved.includes(n) || roots.includes(n) || [...fwdNodes].some((u) => !early.has(u) && u.args.includes(n))));
  const hsc = mkScope(held, (n) => (n.op === "input" && n.attrs.role === "input" ? inSeq[cell.inputs.indexOf(n)] : leafRef(n)));
  const earlyName = (n: Node): string | undefined => {
    const nm = cell.names.get(n);
    if (nm !== undefined) return `${nm}_all`;
    if (n.op === "matvec" && n.args.every((a) => a.op === "input")) return `${n.args[0]!.attrs.name}_${n.args[1]!.attrs.name}`;
    return undefined;
  };
  const hl = lines(frontier, hsc, held, (n) => (early.has(n) ? earlyName(n) : cell.names.get(n)), names, {
    force: new Set(frontier), invariant: paramOnly, comment: (n) => eqOf.get(n) ?? (n.op === "matvec" ? `${commentText(n.args[0]!.attrs.name ?? "")}*${commentText(n.args[1]!.attrs.name ?? "")}` : undefined), temp: "p",
  });
  const hoistVar = new Map(frontier.map((n) => [n, held.get(n)!]));
  // a value made before the loop is read at step t from a list of its steps (one unbind, not an index per step)
  const hoistAt = new Map<string, string>();
  const atOf = (v: string) => { if (!hoistAt.has(v)) hoistAt.set(v, names.take(`${v}_at`)); return hoistAt.get(v)!; };
  const fsc = mkScope(held, (n) => leafRef(n) ?? (hoistVar.has(n) ? `${atOf(hoistVar.get(n)!)}[t]` : undefined));
  // saved for the backward: per step, except values of the parameters alone (recomputed once) and the states and outputs themselves (their sequences)
  const savedPerStep = bw.saved.filter((n) => !paramOnly(n) && !roots.includes(n) && !hoistVar.has(n));
  const cellName = (n: Node) => cell.names.get(n);
  const fl = lines([...roots, ...savedPerStep], fsc, held, cellName, names, {
    force: new Set(savedPerStep), invariant: paramOnly, comment: (n) => eqOf.get(n), temp: "u",
  });
  const savedSeq = new Map(savedPerStep.map((n) => [n, names.take(`${held.get(n)}_seq`)]));
  const usedInputs = (ls: readonly Line[]) => cell.inputs.filter((x) => ls.some((l) => new RegExp(`\\b${inputVar.get(x)}\\b`).test(l.rhs)));

  const B = "B", T = "T";
  const empty = (shape: string) => `torch.empty(${shape}, dtype=${like}.dtype, device=${like}.device)`;
  const zeros = (shape: string) => `torch.zeros(${shape}, dtype=${like}.dtype, device=${like}.device)`;
  const seqShape = (n: Node) => `[${T}, ${shapeList(n.type, fsc).slice(1)}`;
  // a cell with no inputs has no sequence to take T from: T comes with the sizes
  const noInputs = cell.inputs.length === 0;
  const sizeArgs = [...cell.sizes.map((s) => `${sizeVar.get(s)}: int`), ...(noInputs ? [`${T}: int`] : [])];
  const stepsLines = noInputs ? [`    ${B} = ${like}.shape[0]`] : [`    ${T} = ${like}.shape[0]`, `    ${B} = ${like}.shape[1]`];
  const tensorArgs = (xs: readonly string[]) => xs.map((x) => `${x}: Tensor`);
  const paramArgs = cell.params.map((p) => paramVar.get(p.node)!);
  const savedList = savedPerStep.map((n) => savedSeq.get(n)!);
  const hoistedSaved = bw.saved.filter((n) => hoistVar.has(n));
  const tupleOf = (n: number) => `Tuple[${Array(n).fill("Tensor").join(", ")}]`;

  const F: string[] = [];
  const fwdOuts = [...rootSeq, ...savedList, ...hoistedSaved.map((n) => hoistVar.get(n)!)];
  F.push(`def ${fwdFn}(${[...tensorArgs([...inSeq, ...init0, ...paramArgs]), ...sizeArgs].join(", ")}) -> ${tupleOf(fwdOuts.length)}:`);
  F.push(`    # the cell's equations over T steps; returns every state and output at every step, then what the backward reads`);
  F.push(...stepsLines);
  const fKonstAt = F.length;
  if (hl.before.length + fl.before.length) F.push(`    # values of the parameters alone, once`, ...fmt([...hl.before, ...fl.before], "    "));
  if (hl.body.length) F.push(`    # values of the inputs alone (products W*x first), for every step at once`, ...fmt(hl.body, "    "));
  // Each step's values go into Python lists, stacked into [T, B, n] once after the loop: a store into
  // seq[t] is one torch op per value and step, an append is none.
  const stepsOf = (seq: string) => names.take(`${seq.replace(/_seq$/, "")}_steps`);
  const rootSteps = rootSeq.map(stepsOf), savedSteps = new Map(savedPerStep.map((n) => [n, stepsOf(savedSeq.get(n)!)]));
  rootSteps.forEach((l) => F.push(`    ${l}: List[Tensor] = []`));
  for (const n of savedPerStep) F.push(`    ${savedSteps.get(n)}: List[Tensor] = []  # saved for the backward`);
  cell.states.forEach((s, i) => F.push(`    ${stateVar.get(s)} = ${init0[i]}`));
  const fLoopAt = F.length;
  F.push(`    for t in range(${T}):`);
  const rootText = roots.map((r) => (constTree(r) ? tensorOf(r, fsc).s : ex(r, fsc).s));
  for (const x of usedInputs([...fl.body, ...rootText.map((rhs) => ({ lhs: "", rhs }))])) F.push(`        ${inputVar.get(x)} = ${inSeq[cell.inputs.indexOf(x)]}[t]`);
  F.push(...fmt(fl.body, "        "));
  for (const n of savedPerStep) F.push(`        ${savedSteps.get(n)}.append(${held.get(n)})`);
  roots.forEach((_r, i) => F.push(`        ${rootSteps[i]}.append(${rootText[i]})`));
  if (cell.states.length) F.push(`        ${cell.states.map((s) => stateVar.get(s)).join(", ")} = ${cell.states.map((_s, i) => `${rootSteps[i]}[-1]`).join(", ")}`);
  rootSeq.forEach((q, i) => F.push(`    ${q} = torch.stack(${rootSteps[i]})`));
  for (const n of savedPerStep) F.push(`    ${savedSeq.get(n)} = torch.stack(${savedSteps.get(n)})`);
  F.push(`    return ${pyTuple(fwdOuts)}`);
  F.splice(fLoopAt, 0, ...[...hoistAt].map(([v, l]) => `    ${l} = ${v}.unbind(0)`));
  F.splice(fKonstAt, 0, ...fK.lines());

  // ---- backward
  const bheld = new Map<Node, string>();
  const seedVar = new Map(bw.seeds.map((s) => [s, names.take(s.attrs.name!)]));
  const gradSeq = rootNames.map((n) => names.take(`grad_${n}_seq`));
  const carry = cell.states.map((s) => names.take(`d${s.attrs.name}_carry`));
  const savedVarB = new Map<Node, string>();
  for (const n of bw.saved) if (!paramOnly(n)) savedVarB.set(n, (!early.has(n) ? held.get(n) : undefined) ?? names.take(cell.names.get(n) ?? "s"));
  // values of the forward the backward reads at step t
  const bLeaf = (n: Node): string | undefined => {
    if (seedVar.has(n)) return seedVar.get(n);
    if (savedVarB.has(n)) return savedVarB.get(n);
    return leafRef(n);
  };
  const bsc = mkScope(bheld, bLeaf, bK);
  // dW = Σ_t outer(u, v) with v an input or a state: u kept per step, one matmul after the loop; db = Σ_t sumb(u) likewise
  const nIn = cell.inputs.length, nSt = cell.states.length;
  // A weight gradient Σ_t (outer(u, v) + …) with one side of each outer an input or a state: the other
  // side is kept per step and each outer is one matmul after the loop; a bias's Σ_t sumb(u) is one sum.
  const leafSeq = (n: Node) => n.op === "input" && (n.attrs.role === "input" || n.attrs.role === "state");
  const usable = (u: Node) => u.type.batched && !constTree(u);
  type Term = { kind: "outer"; kept: Node; leaf: Node; leafFirst: boolean } | { kind: "sum"; kept: Node };
  const termOf = (t: Node): Term | undefined => {
    if (t.op === "outer" && leafSeq(t.args[1]!) && usable(t.args[0]!)) return { kind: "outer", kept: t.args[0]!, leaf: t.args[1]!, leafFirst: false };
    if (t.op === "outer" && leafSeq(t.args[0]!) && usable(t.args[1]!)) return { kind: "outer", kept: t.args[1]!, leaf: t.args[0]!, leafFirst: true };
    if (t.op === "sumb" && t.args[0]!.type.shape.length <= 1 && usable(t.args[0]!)) return { kind: "sum", kept: t.args[0]! };
    return undefined;
  };
  const termsOf = (g: Node): Term[] | undefined => {
    if (g.op !== "add") { const t = termOf(g); return t ? [t] : undefined; }
    const [a, b] = [termsOf(g.args[0]!), termsOf(g.args[1]!)];
    return a && b ? [...a, ...b] : undefined;
  };
  const gradTerms = bw.dParams.map(termsOf);
  // kept per step for an outer's matmul after the loop; a value only a bias sums is summed over the batch
  // step by step instead (a [B, n] store per step costs more memory traffic than its sum)
  const kept = [...new Set(gradTerms.flatMap((ts) => (ts ?? []).flatMap((t) => (t.kind === "outer" ? [t.kept] : []))))];
  const summed = [...new Set(gradTerms.flatMap((ts) => (ts ?? []).flatMap((t) => (t.kind === "sum" && !kept.includes(t.kept) ? [t.kept] : []))))];
  const perStepParams = [...new Set(bw.dParams.filter((g, i) => !gradTerms[i] && !constTree(g)))];
  const origin = (n: Node) => { const o = bw.origin.get(n); return o && o.length ? `grad of: ${o.map((e) => commentText(e.text.trim())).join("; ")}` : undefined; };
  const want = (n: Node) => bw.names.get(n) ?? (fwdNodes.has(n) ? cell.names.get(n) : undefined);
  const prevSeq = new Map(cell.states.map((s) => [s, names.take(`${s.attrs.name}_prev_seq`)] as const));
  // After the loop, for every step at once: the backward's values that no carry needs (an input's gradient
  // dx = da*K and the layer norm before it, the terms of the weight gradients) run on [T, B, n] sequences,
  // as the forward's values of the inputs alone run before its loop: fewer ops per step. A value of the
  // loop they read is kept per step; the forward's values they read are its sequences.
  const knownB = (n: Node) => bsc.ref(n) !== undefined;
  const carryNodes = new Set(topo(bw.dStates.filter((n) => !constTree(n)), knownB));
  const allB = topo([...bw.dInputs, ...bw.dStates, ...kept, ...summed, ...perStepParams].filter((n) => !constTree(n)), knownB);
  const wholeSeqOp = (n: Node) => OPS[n.op].kind === "elementwise" ||
    ((n.op === "matvec" || n.op === "matvecT") && paramOnly(n.args[0]!) && n.args[1]!.type.batched && !constTree(n.args[1]!)) ||
    (["sum", "bcast", "slice", "pad", "concat"].includes(n.op) && n.args.every((a) => a.type.batched && !constTree(a)));
  const late = new Set(allB.filter((n) => !knownB(n) && n.op !== "input" && !carryNodes.has(n) && n.type.batched && !paramOnly(n) && !constTree(n) &&
    wholeSeqOp(n) && n.args.every((a) => constTree(a) || paramOnly(a) || a.type.batched)));
  // a late value's users are late too (or it is an input's gradient or a weight gradient's term, read after the loop)
  const usersB = new Map<Node, Node[]>();
  for (const n of allB) for (const a of n.args) usersB.set(a, [...(usersB.get(a) ?? []), n]);
  const inLoop = new Set<Node>([...bw.dStates, ...perStepParams]);
  for (let changed = true; changed;) {
    changed = false;
    for (const n of late) if (inLoop.has(n) || (usersB.get(n) ?? []).some((u) => !late.has(u))) { late.delete(n); changed = true; }
  }
  const needPrevLate = new Set<Node>();
  const seqOfLeaf = (n: Node): string | undefined => {
    if (n.op === "input" && n.attrs.role === "input") return inSeq[cell.inputs.indexOf(n)];
    if (n.op === "input" && n.attrs.role === "state") { needPrevLate.add(n); return prevSeq.get(n); }
    if (savedVarB.has(n)) return roots.includes(n) ? rootSeq[roots.indexOf(n)] : hoistVar.has(n) ? hoistVar.get(n) : savedSeq.get(n);
    return undefined;
  };
  const loopKept = [...new Set([...late].flatMap((n) => n.args.filter((a) => !late.has(a) && !constTree(a) && !paramOnly(a) && seqOfLeaf(a) === undefined)))];
  const bRoots = [...bw.dInputs, ...bw.dStates, ...kept, ...summed, ...perStepParams, ...loopKept.filter((b) => !seedVar.has(b))].filter((n) => !late.has(n));
  const bl = lines(bRoots.filter((n) => !constTree(n)), bsc, bheld, want, names, {
    force: new Set([...kept, ...summed, ...loopKept].filter((n) => !late.has(n))), invariant: paramOnly, comment: origin, temp: "g",
    fixed: (n) => (fwdNodes.has(n) && !early.has(n) ? held.get(n) : undefined),
  });
  const loopAll = new Map(loopKept.map((b) => [b, names.take(`${seedVar.get(b) ?? bheld.get(b) ?? "g"}_all`)]));
  const lheld = new Map<Node, string>();
  const lsc: Scope = { ...mkScope(lheld, (n) => loopAll.get(n) ?? seqOfLeaf(n) ?? (paramOnly(n) ? bheld.get(n) ?? leafRef(n) : undefined), bK), lead: 1 };
  const lateRoots = [...bw.dInputs, ...kept, ...summed].filter((n) => late.has(n));
  const ll = lines([...new Set(lateRoots)], lsc, lheld, want, names, { force: new Set(lateRoots), comment: origin, temp: "g" });
  const keptAll = new Map(kept.map((u) => [u, late.has(u) ? lheld.get(u)! : loopAll.get(u) ?? names.take(`${bheld.get(u) ?? "g"}_all`)]));
  const sumVar = new Map(summed.map((u) => [u, names.take(`${bheld.get(u) ?? lheld.get(u) ?? "g"}_sum`)]));
  const accum = new Map(perStepParams.map((g) => [g, names.take(`${bheld.get(g) ?? "dp"}_sum`)]));
  const dInSeq = cell.inputs.map((x) => names.take(`d${x.attrs.name}_seq`));

  const Bk: string[] = [];
  const bOuts: string[] = [];
  const bArgs = [...gradSeq, ...inSeq, ...init0, ...rootSeq, ...savedList, ...hoistedSaved.map((n) => hoistVar.get(n)!), ...paramArgs];
  Bk.push(`def ${bwdFn}(${[...tensorArgs(bArgs), ...sizeArgs].join(", ")}) -> ${tupleOf(nIn + nSt + cell.params.length)}:`);
  Bk.push(`    # the derived, simplified backward equations (cellforge show ${commentText(cell.name)}), from step T-1 down to 0;`);
  Bk.push(`    # returns the gradient of every input sequence, initial state and parameter`);
  Bk.push(...stepsLines);
  const bKonstAt = Bk.length;
  if (bl.before.length) Bk.push(`    # values of the parameters alone, once`, ...fmt(bl.before, "    "));
  // Values read at step t come from lists made once by unbind (one op per sequence, not one per step);
  // values made at step t go into lists, reversed and stacked once after the loop.
  const unbound = new Map<string, string>();
  const stepOf = (seq: string) => { if (!unbound.has(seq)) unbound.set(seq, names.take(`${seq.replace(/_seq$|_all$/, "")}_at`)); return unbound.get(seq)!; };
  const zeroGrad = (g: Node) => constTree(g) && g.op === "const" && g.attrs.value === 0;
  const dInLists = cell.inputs.map((_x, i) => (zeroGrad(bw.dInputs[i]!) || late.has(bw.dInputs[i]!) ? undefined : names.take(`${dInSeq[i]!.replace(/_seq$/, "")}_steps`)));
  const keptLists = new Map(kept.filter((u) => !late.has(u) && !loopKept.includes(u)).map((u) => [u, names.take(`${keptAll.get(u)!.replace(/_all$/, "")}_steps`)]));
  const sumLists = new Map(summed.filter((u) => !late.has(u) && !loopKept.includes(u)).map((u) => [u, names.take(`${sumVar.get(u)!.replace(/_sum$/, "")}_steps`)]));
  const loopLists = new Map(loopKept.map((b) => [b, names.take(`${loopAll.get(b)!.replace(/_all$/, "")}_steps`)]));
  cell.inputs.forEach((x, i) => { if (!dInLists[i] && !late.has(bw.dInputs[i]!)) Bk.push(`    ${dInSeq[i]} = ${zeros(seqShape(x))}`); });
  cell.states.forEach((s, i) => Bk.push(`    ${carry[i]} = ${zeros(shapeList(s.type, bsc))}`));
  dInLists.forEach((l) => { if (l) Bk.push(`    ${l}: List[Tensor] = []`); });
  for (const [u, l] of keptLists) Bk.push(`    ${l}: List[Tensor] = []  # ${bheld.get(u)} at every step, for the weight gradients after the loop`);
  for (const [u, l] of sumLists) Bk.push(`    ${l}: List[Tensor] = []  # ${bheld.get(u)} at every step, summed over the batch and the steps after the loop`);
  for (const [b, l] of loopLists) Bk.push(`    ${l}: List[Tensor] = []  # ${seedVar.get(b) ?? bheld.get(b)} at every step, for the values computed after the loop`);
  for (const g of perStepParams) Bk.push(`    ${accum.get(g)} = ${zeros(shapeList(g.type, bsc))}`);
  const bText = [...bl.body.map((l) => l.rhs), ...bRoots.map((n) => bheld.get(n) ?? "")].join("\n");
  const reads = (v: string) => new RegExp(`\\b${v}\\b`).test(bText) || bRoots.some((r) => constTree(r) ? false : ex(r, bsc).s.includes(v));
  const L: string[] = [];
  for (const x of cell.inputs) if (reads(inputVar.get(x)!)) L.push(`        ${inputVar.get(x)} = ${stepOf(inSeq[cell.inputs.indexOf(x)]!)}[t]`);
  cell.states.forEach((s, i) => { if (reads(stateVar.get(s)!)) L.push(`        ${stateVar.get(s)} = ${stepOf(rootSeq[i]!)}[t - 1] if t > 0 else ${init0[i]}`); });
  for (const n of bw.saved) {
    if (paramOnly(n) || !reads(savedVarB.get(n)!)) continue;
    const src = roots.includes(n) ? rootSeq[roots.indexOf(n)]! : hoistVar.has(n) ? hoistVar.get(n)! : savedSeq.get(n)!;
    L.push(`        ${savedVarB.get(n)} = ${stepOf(src)}[t]`);
  }
  bw.seeds.forEach((s, i) => L.push(`        ${seedVar.get(s)} = ${stepOf(gradSeq[i]!)}[t]${i < nSt ? ` + ${carry[i]}` : ""}`));
  for (const [seq, l] of unbound) Bk.push(`    ${l} = ${seq}.unbind(0)`);
  Bk.push(`    for t in range(${T} - 1, -1, -1):`, ...L);
  Bk.push(...fmt(bl.body, "        "));
  const gText = (g: Node) => (constTree(g) ? tensorOf(g, bsc).s : ex(g, bsc).s);
  bw.dInputs.forEach((g, i) => { if (dInLists[i]) Bk.push(`        ${dInLists[i]}.append(${gText(g)})`); });
  for (const [u, l] of keptLists) Bk.push(`        ${l}.append(${ex(u, bsc).s})`);
  for (const [u, l] of sumLists) Bk.push(`        ${l}.append(${ex(u, bsc).s})`);
  for (const [b, l] of loopLists) Bk.push(`        ${l}.append(${ex(b, bsc).s})`);
  for (const g of perStepParams) Bk.push(`        ${accum.get(g)} = ${accum.get(g)} + ${ex(g, bsc).s}`);
  if (nSt) Bk.push(`        ${carry.join(", ")} = ${bw.dStates.map(gText).join(", ")}`);
  // after the loop: the lists in step order, as [T, B, n]; the inputs' late gradients; the weight gradients in one matmul each
  for (const l of [...dInLists, ...keptLists.values(), ...sumLists.values(), ...loopLists.values()]) if (l) Bk.push(`    ${l}.reverse()`);
  dInLists.forEach((l, i) => { if (l) Bk.push(`    ${dInSeq[i]} = torch.stack(${l})`); });
  for (const [u, l] of keptLists) Bk.push(`    ${keptAll.get(u)} = torch.stack(${l})`);
  for (const [b, l] of loopLists) Bk.push(`    ${loopAll.get(b)} = torch.stack(${l})`);
  const needPrev = new Set(gradTerms.flatMap((ts) => (ts ?? []).flatMap((t) => (t.kind === "outer" && t.leaf.attrs.role === "state" ? [t.leaf] : []))));
  for (const s of cell.states) if (needPrev.has(s) || needPrevLate.has(s)) { const i = cell.states.indexOf(s); Bk.push(`    ${prevSeq.get(s)} = torch.cat([${init0[i]}.unsqueeze(0), ${rootSeq[i]}[:-1]], 0)  # ${commentText(s.attrs.name!)} before each step`); }
  if (ll.body.length) Bk.push(`    # what no carry needs, for every step at once`, ...fmt(ll.body, "    "));
  bw.dInputs.forEach((g, i) => { if (late.has(g)) Bk.push(`    ${dInSeq[i]} = ${lheld.get(g)}`); });
  for (const u of summed) {
    const src = sumLists.has(u) ? `torch.stack(${sumLists.get(u)})` : loopAll.get(u) ?? lheld.get(u)!;
    Bk.push(`    ${sumVar.get(u)} = ${src}.sum(${u.type.shape.length ? "[0, 1]" : ""})  # ${bheld.get(u) ?? lheld.get(u)} summed over the batch and the steps`);
  }
  const TB = `${T} * ${B}`;
  const rows = (seq: string, n: Node) => `${seq}.reshape(${TB}, ${dimPy(n.type.shape[0]!)})`;
  const termText = (t: Term): string => {
    if (t.kind === "sum" && sumVar.has(t.kept)) return sumVar.get(t.kept)!;
    const U = keptAll.get(t.kept)!;
    if (t.kind === "sum") return t.kept.type.shape.length ? `${U}.sum([0, 1])` : `${U}.sum()`;
    const L = t.leaf.attrs.role === "input" ? inSeq[cell.inputs.indexOf(t.leaf)]! : prevSeq.get(t.leaf)!;
    return t.leafFirst ? `torch.matmul(${rows(L, t.leaf)}.t(), ${rows(U, t.kept)})` : `torch.matmul(${rows(U, t.kept)}.t(), ${rows(L, t.leaf)})`;
  };
  const done = new Map<Node, string>();
  cell.params.forEach((p, i) => {
    const g = bw.dParams[i]!;
    if (done.has(g)) { bOuts.push(done.get(g)!); return; }
    const ts = gradTerms[i];
    const v = !ts && !constTree(g) ? accum.get(g)! : names.take(`d${p.name}`);
    done.set(g, v);
    bOuts.push(v);
    const com = bw.names.get(g) ? `  # ${commentText(printName(bw, g))}` : "";
    if (ts) Bk.push(`    ${v} = ${ts.map(termText).join(" + ")}${com}`);
    else if (constTree(g)) Bk.push(`    ${v} = ${tensorOf(g, bsc).s}`);
  });
  Bk.push(`    return ${pyTuple([...dInSeq, ...carry, ...bOuts])}`);
  Bk.splice(bKonstAt, 0, ...bK.lines());

  // ---- the autograd.Function
  const A: string[] = [];
  const nRoots = roots.length;
  const g = "grad_outputs", outs = "outs";
  A.push(`class ${FnClass}(torch.autograd.Function):`);
  A.push(`    # The whole sequence as one autograd node: forward runs the equations, backward the derived equations.`);
  A.push(`    # apply(sizes, ${[...inSeq, ...init0, ...paramArgs].join(", ")}) with sizes = (${[...cell.sizes.map((s) => sizeVar.get(s)), ...(noInputs ? ["T"] : [])].join(", ")});`);
  A.push(`    # inputs are time-major [T, B, n], initial states [B, n]; returns ${rootSeq.join(", ")}, each [T, B, n].`);
  A.push(`    @staticmethod`);
  A.push(`    def forward(ctx, sizes, ${[...inSeq, ...init0, ...paramArgs].join(", ")}):`);
  A.push(`        ${outs} = ${fwdFn}(${[...inSeq, ...init0, ...paramArgs].join(", ")}, *sizes)`);
  A.push(`        ctx.sizes = tuple(sizes)`);
  A.push(`        # the inputs, initial states, parameters, every state and output, and the saved set: ${savedPerStep.length + hoistedSaved.length} tensor(s) of [T, B, n]`);
  A.push(`        ctx.save_for_backward(${[...inSeq, ...init0, ...paramArgs].join(", ")}, *${outs})`);
  A.push(`        return ${nRoots === 1 ? `${outs}[0]` : `tuple(${outs}[:${nRoots}])`}`);
  A.push(``);
  A.push(`    @staticmethod`);
  A.push(`    def backward(ctx, *${g}):`);
  const nArgs = inSeq.length + init0.length + paramArgs.length;
  A.push(`        saved = ctx.saved_tensors`);
  A.push(`        ${[...inSeq, ...init0, ...paramArgs].join(", ")}${nArgs === 1 ? "," : ""} = saved[:${nArgs}]`);
  A.push(`        grads = ${bwdFn}(${[`*${g}`, ...inSeq, ...init0, `*saved[${nArgs}:]`, ...paramArgs, "*ctx.sizes"].join(", ")})`);
  A.push(`        return (None,) + tuple(grads)`);

  // ---- the nn.Module
  const attrs = new PyNames([...PY_KEYWORDS, ...PY_RESERVED.filter((r) => r !== "T" && r !== "B"), ...MODULE_ATTRS]);
  const freeSizes = cell.sizes.filter((s) => !cell.constraints.some((c) => c.size === s));
  const sizeAttr = new Map(cell.sizes.map((s) => [s, attrs.take(s)]));
  const selfDim = (d: Dim) => dimPyWith(d, (s) => `self.${sizeAttr.get(s)}`);
  const fw = frameworkLayout(cell, attrs, (d) => selfDim(d));
  const own = fw ? undefined : new Map(cell.params.map((p) => [p.name, attrs.take(p.name)]));
  const kBound = selfDim(initBoundSize(cell));
  const M: string[] = [];
  M.push(`class ${ModClass}(torch.nn.Module):`);
  M.push(`    # ${commentText(cell.name)} as a layer, like nn.GRU/nn.LSTM with one layer: forward(${cell.inputs.map((x) => inputVar.get(x)).join(", ")}, state=None)`);
  M.push(`    # takes inputs [T, B, n] ([B, T, n] with batch_first; a scalar input may be [T, B]) and an optional initial state`);
  M.push(`    # (${cell.states.length === 1 ? "a tensor" : `a tuple (${cell.states.map((s) => stateVar.get(s)).join(", ")})`} of [1, B, n] or [B, n]; zeros when omitted),`);
  M.push(`    # and returns (output, state): output is ${cell.outputs.length ? `the output${cell.outputs.length > 1 ? "s" : ""} ${cell.outputs.map((o) => commentText(o.name)).join(", ")}` : `the state ${commentText(cell.states[0]!.attrs.name!)}`} at every step, state the final state, each [1, B, n].`);
  if (fw) M.push(`    # Parameters as \`cellforge convert --to pytorch\` names them (${commentText(fw.title)}): its state_dict loads here.`);
  else M.push(`    # Parameters under the cell's own names${cell.params.some((p) => own!.get(p.name) !== p.name) ? " (renamed where Python or nn.Module has the name)" : ""}.`);
  M.push(`    def __init__(self, ${freeSizes.map((s) => `${sizeAttr.get(s)}: int`).join(", ")}, batch_first: bool = False, device=None, dtype=None):`);
  M.push(`        super().__init__()`);
  for (const s of freeSizes) M.push(`        self.${sizeAttr.get(s)} = ${sizeAttr.get(s)}`);
  for (const c of cell.constraints) M.push(`        self.${sizeAttr.get(c.size)} = ${selfDim(c.value)}  # ${commentText(c.text)}`);
  M.push(`        self.batch_first = batch_first`);
  M.push(`        factory = {"device": device, "dtype": dtype}`);
  if (fw) for (const s of fw.stored) M.push(`        self.${s.attr} = torch.nn.Parameter(torch.empty(${s.shape}, **factory))  # ${commentText(s.what)}`);
  else for (const p of cell.params) M.push(`        self.${own!.get(p.name)} = torch.nn.Parameter(torch.empty([${p.node.type.shape.map(selfDim).join(", ")}], **factory))${p.heads ? `  # ${p.heads.count} heads: the diagonal blocks, stacked` : ""}`);
  M.push(`        self.reset_parameters()`);
  M.push(``);
  M.push(`    def reset_parameters(self) -> None:`);
  M.push(`        # the cell's init rules`);
  M.push(`        k = 1.0 / math.sqrt(${kBound})`);
  M.push(`        with torch.no_grad():`);
  if (!cell.params.length) M.push(`            pass  # the cell has no parameters`);
  if (fw) for (const s of fw.stored) M.push(`            self.${s.attr}.zero_()`);
  for (const p of cell.params) {
    const target = fw ? `${fw.place.get(p.name)!.init.tensor}[${fw.place.get(p.name)!.init.rows![0]}:${fw.place.get(p.name)!.init.rows![1]}]` : `self.${own!.get(p.name)}`;
    const i = p.init;
    if (i === "glorot") { M.push(`            torch.nn.init.xavier_uniform_(${target})  # ${commentText(p.name)}: glorot`); continue; }
    if (i === "orthogonal") { helpers.add("_orthogonal_"); M.push(`            _orthogonal_(${target})  # ${commentText(p.name)}: orthogonal`); continue; }
    const rule = i === "uniform" ? "uniform_(-k, k)" : i === "zeros" ? "zero_()" : i === "ones" ? "fill_(1.0)" : "constant" in i ? `fill_(${pyFloat(i.constant)})` : `uniform_(${pyFloat(-i.uniform)}, ${pyFloat(i.uniform)})`;
    M.push(`            ${target}.${rule}  # ${commentText(p.name)}`);
  }
  M.push(``);
  M.push(`    def cell_parameters(self) -> List[Tensor]:`);
  M.push(`        # the cell's parameters in its order (${cell.params.map((p) => commentText(p.name)).join(", ")})${fw ? ", as views of the stored tensors" : ""}`);
  M.push(`        return [${cell.params.map((p) => (fw ? fw.place.get(p.name)!.expr : `self.${own!.get(p.name)}`)).join(", ")}]`);
  M.push(``);
  // weights both ways: cellforge's checkpoint or parameter file in, the parameter file `train --init` reads out
  const cellStr = pyStr(cell.name);
  const paramNames = `[${cell.params.map((p) => pyStr(p.name)).join(", ")}]`;
  M.push(`    def load_cellforge(self, path: str, layer: int = 1) -> Dict[str, Tensor]:`);
  M.push(`        # The cell's parameters, exactly, from a cellforge training checkpoint (\`cellforge train\` writes checkpoint.ckpt;`);
  M.push(`        # its sha256 is checked) or from cellforge parameters (\`cellforge convert --to cellforge\`). A checkpoint holds a`);
  M.push(`        # model: its layer \`layer\` (1 unless given) is the cell, loaded here. The model's other layers are not loaded`);
  M.push(`        # (load each into a module of its own, layer=k), nor its readout and input projection, which are not the`);
  M.push(`        # cell's: they are returned by name, each W as nn.Linear's weight [outputs, inputs] ({"readout.W", "readout.b"}).`);
  M.push(`        shapes = {${cell.params.map((p) => `${pyStr(p.name)}: [${p.node.type.shape.map(selfDim).join(", ")}]`).join(", ")}}`);
  M.push(`        values, other = _read_cellforge(path, ${cellStr}, shapes, layer)`);
  M.push(`        with torch.no_grad():`);
  if (!cell.params.length) M.push(`            pass  # the cell has no parameters`);
  for (const p of cell.params) {
    if (!fw) { M.push(`            self.${own!.get(p.name)}.copy_(values[${pyStr(p.name)}])`); continue; }
    const [first, ...rest] = fw.place.get(p.name)!.blocks;
    M.push(`            ${first}.copy_(values[${pyStr(p.name)}])${rest.length ? `  # ${commentText(p.name)} is the sum of ${rest.length + 1} stored blocks: all of it in the first` : ""}`);
    for (const b of rest) M.push(`            ${b}.zero_()`);
  }
  M.push(`        return other`);
  M.push(``);
  M.push(`    def save_cellforge(self, path: str) -> None:`);
  M.push(`        # The cell's parameters as \`cellforge convert --to cellforge\` writes them, the file \`cellforge train <cell> --init\``);
  M.push(`        # starts layer 1 from (exactly: a float32 module's numbers are float32 in a float32 run).`);
  M.push(`        sizes = {${cell.sizes.map((s) => `${pyStr(s)}: self.${sizeAttr.get(s)}`).join(", ")}}`);
  M.push(`        _write_cellforge(path, ${cellStr}, sizes, dict(zip(${paramNames}, self.cell_parameters())))`);
  M.push(``);
  const xs = cell.inputs.map((x) => inputVar.get(x)!);
  // with no inputs, the state (required) gives the batch and `steps` the number of steps
  M.push(noInputs ? `    def forward(self, state, steps: int):` : `    def forward(self, ${xs.join(", ")}, state=None):`);
  for (const x of xs) M.push(`        if self.batch_first:`, `            ${x} = ${x}.transpose(0, 1)`, `        if ${x}.dim() == 2:`, `            ${x} = ${x}.unsqueeze(-1)`);
  const likeM = noInputs ? "ref" : xs[0]!;
  if (noInputs) M.push(`        ref = state if ${cell.states.length === 1 ? "True" : "isinstance(state, Tensor)"} else state[0]`, `        ${B} = ref.shape[-2]`);
  else M.push(`        ${B} = ${xs[0]}.shape[1]`);
  if (cell.states.length === 1) M.push(`        states = [state] if state is not None else [None]`);
  else M.push(`        states = list(state) if state is not None else [None] * ${cell.states.length}`);
  const init: string[] = [];
  cell.states.forEach((s, i) => {
    const v = init0[i]!;
    init.push(v);
    M.push(`        ${v} = states[${i}]`);
    M.push(`        if ${v} is None:`, `            ${v} = torch.zeros([${B}, ${selfDim(s.type.shape[0]!)}], dtype=${likeM}.dtype, device=${likeM}.device)`);
    M.push(`        elif ${v}.dim() == 3:`, `            ${v} = ${v}.squeeze(0)`);
  });
  const applySizes = [...cell.sizes.map((s) => `self.${sizeAttr.get(s)}`), ...(noInputs ? ["steps"] : [])];
  M.push(`        seqs = ${FnClass}.apply((${applySizes.join(", ")}${applySizes.length === 1 ? "," : ""}), ${[...xs, ...init].join(", ")}, *self.cell_parameters())`);
  M.push(`        if not isinstance(seqs, tuple):`, `            seqs = (seqs,)`);
  const outIdx = cell.outputs.length ? cell.outputs.map((_o, i) => nSt + i) : [0];
  M.push(`        out = [seqs[idx].transpose(0, 1) if self.batch_first else seqs[idx] for idx in ${JSON.stringify(outIdx)}]`);
  M.push(`        final = [seqs[idx][-1].unsqueeze(0) for idx in range(${nSt})]`);
  M.push(`        return (out[0] if len(out) == 1 else tuple(out)), (final[0] if len(final) == 1 else tuple(final))`);

  // ---- the file
  const H: string[] = [];
  H.push(`# Generated by cellforge from ${commentText(opts.source)}: a PyTorch module for the cell "${commentText(cell.name)}".`);
  H.push(`# Do not edit: regenerate with \`${lineCommentText(opts.command)}\`.`);
  H.push(`#`);
  H.push(`# ${commentText(cell.doc)}`);
  H.push(`#`);
  H.push(`# forward, one step:`);
  for (const eq of cell.equations) H.push(`#   ${commentText(eq.text.trim())}`);
  H.push(`#`);
  H.push(`# ${fwdFn} and ${bwdFn} are the two loops; ${FnClass} (a torch.autograd.Function) runs them, and its`);
  H.push(`# backward is the backward cellforge derived and checked against finite differences, not autograd of the forward.`);
  H.push(`# ${ModClass} is the layer. Nothing here names a device or a dtype: tensors follow their inputs (CPU or CUDA, float32 or float64).`);
  H.push(`# torch.jit.script: the two loops compile with it (call script_loops() to use the compiled ones; whether that is faster`);
  H.push(`# depends on the cell); the Function and the Module do not, because TorchScript cannot call a custom torch.autograd.Function.`);
  const out: string[] = [...H, "import array", "import hashlib", "import json", "import math", "import re", "import struct", "import sys", "import warnings",
    "from typing import Dict, List, Tuple", "", "import torch", "from torch import Tensor", ""];
  for (const h of Object.keys(HELPERS).filter((h) => helpers.has(h))) out.push("", HELPERS[h]!, "");
  for (const a of actFns.values()) {
    out.push("", `def ${a.name}(x: Tensor) -> Tensor:`, `    # ${commentText(a.expr)}`, `    return ${activationPy(a.expr, fsc)}`, "");
  }
  out.push("", ...F, "", "", ...Bk, "", "", `def script_loops() -> None:`, `    # compile the two loops with torch.jit.script; ${FnClass} calls the compiled ones from then on`,
    `    global ${fwdFn}, ${bwdFn}`, `    ${fwdFn} = torch.jit.script(${fwdFn})`, `    ${bwdFn} = torch.jit.script(${bwdFn})`, "", "", ...A, "", "",
    WEIGHTS_PY, "", "", ...M, "");
  return out.join("\n");
}

/** A Python string literal of any text: printable ASCII as itself, everything else escaped by code point. */
function pyStr(s: string): string {
  let r = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\" || ch === '"') r += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) r += ch;
    else r += c > 0xffff ? `\\U${c.toString(16).padStart(8, "0")}` : `\\u${c.toString(16).padStart(4, "0")}`;
  }
  return `"${r}"`;
}

/** A Python tuple: `(a,)` for one element. */
const pyTuple = (xs: readonly string[]) => (xs.length === 1 ? `(${xs[0]},)` : xs.join(", "));

function dimPyWith(d: Dim, size: (s: string) => string): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(d.terms)) {
    if (Number.isInteger(v)) parts.push(v === 1 ? size(k) : `${v} * ${size(k)}`);
    else { const den = [2, 3, 4, 5, 6, 8, 16, 32, 64].find((q) => Math.abs(v * q - Math.round(v * q)) < 1e-9) ?? 1; const num = Math.round(v * den); parts.push(`${num === 1 ? "" : `${num} * `}${size(k)} // ${den}`); }
  }
  if (d.c !== 0 || !parts.length) parts.push(String(d.c));
  return parts.join(" + ").replace(/\+ -/g, "- ");
}

function printName(bw: BackwardStep, g: Node): string {
  const o = bw.origin.get(g);
  return `${bw.names.get(g)}${o && o.length ? `, grad of: ${o.map((e) => e.text.trim()).join("; ")}` : ""}`;
}

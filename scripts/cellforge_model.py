#!/usr/bin/env python3
"""Read a cellforge model file (nn/file.ts saveModel) or training checkpoint without cellforge.

The files are safetensors files (https://github.com/huggingface/safetensors), so safetensors reads
them too (safetensors.numpy.load_file); this reader needs nothing but the standard library and checks
what safetensors does not, the sha256 (nn/file.ts):
  bytes 0-7   N, the header's length, uint64 little-endian
  bytes 8-    N bytes of UTF-8 JSON, padded with spaces to a multiple of 8:
                {"__metadata__": {"sha256": "<64 hex>", "format": "cellforge checkpoint", "version": "3",
                                  "meta": "<JSON text>"},
                 "<name>": {"dtype": "F32" | "F64", "shape": [...], "data_offsets": [begin, end]}, ...}
  then        the data: each tensor's little-endian values at [begin, end) from the data's start, the
              tensors one after another, covering the data exactly
The sha256 is of the whole file with its 64 hex digits (bytes 35-98) written as 64 "0"s.

Python's standard library only (struct, json, hashlib); numpy arrays when numpy is installed and
asked for. A model file's tensors have the parameters' shapes; a checkpoint's are flat.

    from cellforge_model import read_model
    m = read_model("model.cfm")               # {"meta": ..., "arrays": {"l0.Wir": [[...], ...], ...}}
    m = read_model("model.cfm", numpy=True)   # numpy arrays of those shapes

    python3 scripts/cellforge_model.py model.cfm     # a summary
"""
import hashlib
import json
import struct
import sys

PREFIX = b'{"__metadata__":{"sha256":"'
HASH_AT = 8 + len(PREFIX)


class ModelFileError(ValueError):
    """The file is not a valid cellforge file; the message names the file and what is wrong."""


def _nest(flat, shape):
    """A flat list as nested lists of `shape` (row-major)."""
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def read_model(path, numpy=False):
    """{"meta": the metadata's meta, "arrays": {tensor name: values}} of a file, after checking its sha256."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] in (b"CFCKPT01", b"CFCKPT02"):
        raise ModelFileError(f"{path}: a cellforge file of the format before safetensors ({data[:8].decode()}), written by an earlier cellforge; "
                             "it is not read: train again or save the model again with this cellforge")
    if len(data) < HASH_AT + 64 or data[8:HASH_AT] != PREFIX:
        raise ModelFileError(f"{path}: not a cellforge checkpoint or model file (no safetensors header beginning {PREFIX.decode()})")
    (n,) = struct.unpack_from("<Q", data, 0)
    if 8 + n > len(data) or n < len(PREFIX) + 66:
        raise ModelFileError(f"{path}: the header's length N = {n} does not fit the file ({len(data)} bytes)")
    stored = data[HASH_AT:HASH_AT + 64]
    if hashlib.sha256(data[:HASH_AT] + b"0" * 64 + data[HASH_AT + 64:]).hexdigest().encode() != stored:
        raise ModelFileError(f"{path}: the file does not match its sha256 (a truncated, damaged or edited file)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        md = header["__metadata__"]
        meta = json.loads(md["meta"])
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: the header is not a cellforge header: {e}") from None
    if md.get("format") != "cellforge checkpoint" or md.get("version") != "3":
        raise ModelFileError(f"{path}: the header is not a version-3 cellforge header")
    payload = data[8 + n:]
    tensors = sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0])
    np = None
    if numpy:
        import numpy as np  # noqa: F811 (optional: only when asked for)
    arrays = {}
    at = 0
    for name, t in tensors:
        if t.get("dtype") not in ("F32", "F64"):
            raise ModelFileError(f"{path}: tensor {name}'s dtype is {t.get('dtype')!r}, not F32 or F64")
        code, width = {"F32": ("f", 4), "F64": ("d", 8)}[t["dtype"]]
        shape = [int(d) for d in t["shape"]]
        begin, end = (int(x) for x in t["data_offsets"])
        count = 1
        for d in shape:
            count *= d
        if begin != at or end - begin != count * width:
            raise ModelFileError(f"{path}: tensor {name} (shape {shape}, data_offsets [{begin}, {end}]) does not follow the one before it (at byte {at}) or does not fit its shape")
        at = end
        if np is not None:
            arrays[name] = np.frombuffer(payload, dtype="<" + code, count=count, offset=begin).reshape(shape).copy()
        else:
            arrays[name] = _nest(list(struct.unpack_from(f"<{count}{code}", payload, begin)), shape)
    if at != len(payload):
        raise ModelFileError(f"{path}: the tensors cover {at} of the data's {len(payload)} bytes")
    return {"meta": meta, "arrays": arrays}


def summary(path):
    """A few lines: the cell and its options (or "checkpoint"), then each array's name and shape."""
    m = read_model(path)
    meta = m["meta"]
    if isinstance(meta, dict) and meta.get("kind") == "cellforge model":
        lines = [f"{path}: a cellforge model of cell {meta['cell']!r}", "options: " + json.dumps(meta.get("options"), sort_keys=True)]
    elif isinstance(meta, dict) and meta.get("kind") == "cellforge parameters":
        # what `cellforge convert` writes to a .safetensors file
        lines = [f"{path}: parameters of cell {json.dumps(meta.get('cell'))} in the {meta.get('framework')} layout (written by cellforge convert)"]
    else:
        lines = [f"{path}: a cellforge checkpoint"]
    total = 0
    for name, a in m["arrays"].items():
        shape = []
        while isinstance(a, list):
            shape.append(len(a))
            a = a[0] if a else None
        count = 1
        for d in shape:
            count *= d
        total += count
        lines.append(f"  {name:<24} {' x '.join(map(str, shape))}")
    lines.append(f"{total} numbers in {len(m['arrays'])} arrays; sha256 verified")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python3 scripts/cellforge_model.py <file>", file=sys.stderr)
        sys.exit(2)
    try:
        print(summary(sys.argv[1]))
    except (OSError, ModelFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)

#!/usr/bin/env python3
"""Read a cellforge model file (nn/file.ts saveModel) or training checkpoint without cellforge.

The container (nn/file.ts):
  bytes 0-7     b"CFCKPT02"
  bytes 8-11    n, the JSON header's length, uint32 little-endian
  bytes 12-     n bytes of UTF-8 JSON {format, version, sections: [{name, dtype, length, offset}], meta},
                zero bytes up to a multiple of 8
  then          the data: each section's `length` "f32"/"f64" little-endian values at `offset` bytes
  last 32 bytes the sha256 of every byte before them

Python's standard library only (struct, json, hashlib); numpy arrays when numpy is installed and
asked for. In a model file, meta.parameters gives each section's shape; a checkpoint's are flat.

    from cellforge_model import read_model
    m = read_model("model.cfm")               # {"meta": ..., "arrays": {"l0.Wir": [[...], ...], ...}}
    m = read_model("model.cfm", numpy=True)   # numpy arrays of those shapes

    python3 scripts/cellforge_model.py model.cfm     # a summary
"""
import hashlib
import json
import struct
import sys

MAGIC = b"CFCKPT02"


class ModelFileError(ValueError):
    """The file is not a valid cellforge container; the message names the file and what is wrong."""


def _nest(flat, shape):
    """A flat list as nested lists of `shape` (row-major)."""
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def read_model(path, numpy=False):
    """{"meta": the header's meta, "arrays": {section name: values}} of a file, after checking its sha256."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12 or data[:8] != MAGIC:
        raise ModelFileError(f"{path}: not a cellforge checkpoint or model file (no CFCKPT02 magic)")
    if len(data) < 12 + 32:
        raise ModelFileError(f"{path}: truncated ({len(data)} bytes)")
    body, stored = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != stored:
        raise ModelFileError(f"{path}: the file does not match its sha256 (a truncated, damaged or edited file)")
    (n,) = struct.unpack_from("<I", body, 8)
    if 12 + n > len(body):
        raise ModelFileError(f"{path}: the header's length n = {n} runs past the end of the file")
    header = json.loads(body[12:12 + n].decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != "cellforge checkpoint" or header.get("version") != 2:
        raise ModelFileError(f"{path}: the header is not a version-2 cellforge container header")
    start = 12 + n + (-(12 + n)) % 8
    payload = body[start:]
    meta = header.get("meta")
    shapes = {}
    if isinstance(meta, dict) and meta.get("kind") == "cellforge model":
        shapes = {p["name"]: list(p["shape"]) for p in meta.get("parameters", [])}
    np = None
    if numpy:
        import numpy as np  # noqa: F811 (optional: only when asked for)
    arrays = {}
    for s in header["sections"]:
        code, width = {"f32": ("f", 4), "f64": ("d", 8)}[s["dtype"]]
        length, offset = int(s["length"]), int(s["offset"])
        if offset < 0 or offset % 8 or offset + length * width > len(payload):
            raise ModelFileError(f"{path}: section {s['name']} ({length} x {s['dtype']} at offset {offset}) runs past the data ({len(payload)} bytes)")
        shape = shapes.get(s["name"], [length])
        count = 1
        for d in shape:
            count *= d
        if count != length:
            raise ModelFileError(f"{path}: section {s['name']} has {length} values, its shape {shape} holds {count}")
        if np is not None:
            arrays[s["name"]] = np.frombuffer(payload, dtype="<" + code, count=length, offset=offset).reshape(shape).copy()
        else:
            arrays[s["name"]] = _nest(list(struct.unpack_from(f"<{length}{code}", payload, offset)), shape)
    return {"meta": meta, "arrays": arrays}


def summary(path):
    """A few lines: the cell and its options (or "checkpoint"), then each array's name and shape."""
    m = read_model(path)
    meta = m["meta"]
    if isinstance(meta, dict) and meta.get("kind") == "cellforge model":
        lines = [f"{path}: a cellforge model of cell {meta['cell']!r}", "options: " + json.dumps(meta.get("options"), sort_keys=True)]
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

#!/usr/bin/python3
"""The exported-to-PyTorch table of `npm run bench` (bench/export-pytorch.ts runs this; it is not a test).

Reads one JSON request on stdin, writes one JSON reply on stdout:
  {"cells": [{"cell": "lstm-layernorm", "file": the module `cellforge export` wrote, "module": its nn.Module}, ...],
   "workloads": [{"name", "B", "D", "H", "T"}, ...], "runs": 10, "warmups": 3}

float32, CPU, one thread (set before torch loads its BLAS). Each contender is one forward and backward of
loss = (output * dy).sum() from a zero initial state into the input and every parameter. The contenders of a
cell take turns run by run (round-robin), so a machine that gets busier slows each alike; the median of `runs`.
  exported        the exported nn.Module: its autograd.Function, the loops in Python, the derived backward
  exported+jit    the same after script_loops() (both loops compiled with torch.jit.script)
  hand autograd   the same equations written by hand as eager torch ops, differentiated by autograd: what a
                  researcher writes without cellforge (the input product x @ K' for every step at once, split
                  with unbind: indexing it per step costs a [T, B, G*H] of zeros per step in autograd's backward)
  nn.GRU/nn.LSTM  torch's own fused layer: for gru the same cell (its parameters loaded by name); for the
                  layer-norm cells a different, plainer cell of the same size, a floor for speed only
Each contender's loss is reported with the exported module's, to show they compute the same thing (nn.LSTM /
nn.GRU beside a layer-norm cell compute another cell: their loss is not compared).
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "GOTO_NUM_THREADS"):
    os.environ[var] = "1"

import importlib.util
import json
import statistics
import sys
import time

import torch

torch.set_num_threads(1)


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def layer_norm(v, eps=1e-5):
    m = v.mean(-1, keepdim=True)
    var = ((v - m) ** 2).mean(-1, keepdim=True)
    return (v - m) / torch.sqrt(var + eps)


def hand_lstm_layernorm(x, K, R, gx, gr, bi, bg, bf, bo, gamma_h, beta_h):
    # dsl/lstm-layernorm.ts written by hand
    T, B, H = x.shape[0], x.shape[1], R.shape[1]
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    hs = []
    for na in (gx * layer_norm(x @ K.t())).unbind(0):
        v = gr * layer_norm(h @ R.t()) + na
        i = torch.sigmoid(v[:, :H] + bi)
        g = torch.tanh(v[:, H:2 * H] + bg)
        f = torch.sigmoid(v[:, 2 * H:3 * H] + bf)
        o = torch.sigmoid(v[:, 3 * H:] + bo)
        c = f * c + i * g
        h = o * torch.tanh(gamma_h * layer_norm(c) + beta_h)
        hs.append(h)
    return torch.stack(hs)


def hand_gru_layernorm(x, K, R, b, rb, gx, gr):
    # dsl/gru-layernorm.ts written by hand
    T, B, H = x.shape[0], x.shape[1], R.shape[1]
    h = x.new_zeros(B, H)
    hs = []
    for wx in (gx * layer_norm(x @ K.t()) + b).unbind(0):
        rh = gr * layer_norm(h @ R.t()) + rb
        z = torch.sigmoid(wx[:, :H] + rh[:, :H])
        r = torch.sigmoid(wx[:, H:2 * H] + rh[:, H:2 * H])
        g = torch.tanh(wx[:, 2 * H:] + r * rh[:, 2 * H:])
        h = z * h + (1 - z) * g
        hs.append(h)
    return torch.stack(hs)


def hand_gru(x, w_ih, w_hh, b_ih, b_hh):
    # dsl/gru.ts (nn.GRU's equations) written by hand
    B, H = x.shape[1], w_hh.shape[1]
    h = x.new_zeros(B, H)
    hs = []
    for gi in (x @ w_ih.t() + b_ih).unbind(0):
        gh = h @ w_hh.t() + b_hh
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs.append(h)
    return torch.stack(hs)


HAND = {"lstm-layernorm": hand_lstm_layernorm, "gru-layernorm": hand_gru_layernorm, "gru": hand_gru}
# torch's own layer: the same cell, or a plainer one of the same size (a floor for speed only)
NATIVE = {"lstm-layernorm": (torch.nn.LSTM, False), "gru-layernorm": (torch.nn.GRU, False), "gru": (torch.nn.GRU, True)}


def timed(contenders, x, dy, runs, warmups):
    """Median ms and loss of each contender (fn, params); the runs go round-robin."""
    def once(fn, params):
        for p in params:
            p.grad = None
        x.grad = None
        t0 = time.perf_counter()
        loss = (fn() * dy).sum()
        loss.backward()
        return (time.perf_counter() - t0) * 1e3, float(loss)
    for fn, params in contenders:
        for _ in range(warmups):
            once(fn, params)
    samples = [[] for _ in contenders]
    losses = [None] * len(contenders)
    for _ in range(runs):
        for k, (fn, params) in enumerate(contenders):
            ms, losses[k] = once(fn, params)
            samples[k].append(ms)
    return [(statistics.median(s), loss) for s, loss in zip(samples, losses)]


def bench(c, w, runs, warmups):
    B, D, H, T = w["B"], w["D"], w["H"], w["T"]
    torch.manual_seed(0)
    x = torch.randn(T, B, D, requires_grad=True)
    dy = torch.randn(T, B, H)
    plain = load(c["file"], "exported_" + c["module"])
    jit = load(c["file"], "exported_jit_" + c["module"])
    jit.script_loops()
    m = getattr(plain, c["module"])(D, H)
    mj = getattr(jit, c["module"])(D, H)
    mj.load_state_dict(m.state_dict())
    ps, psj = list(m.parameters()), list(mj.parameters())
    # the hand-written cell takes the cell's parameters in its order (for gru these are nn.GRU's tensors, whole)
    hand_params = ps if c["cell"] == "gru" else m.cell_parameters()
    Native, same = NATIVE[c["cell"]]
    native = Native(D, H)
    if same:
        native.load_state_dict(m.state_dict())  # the exported gru's parameters are nn.GRU's, by name
    nps = list(native.parameters())
    rows = [
        ("exported", lambda: m(x)[0], ps, True),
        ("exported+jit", lambda: mj(x)[0], psj, True),
        ("hand autograd", lambda: HAND[c["cell"]](x, *hand_params), ps, True),
        (f"nn.{Native.__name__}" + ("" if same else " (another cell)"), lambda: native(x)[0], nps, same),
    ]
    out = timed([(fn, params) for _, fn, params, _ in rows], x, dy, runs, warmups)
    return [{"name": name, "ms": ms, "loss": loss, "compared": compared} for (name, _, _, compared), (ms, loss) in zip(rows, out)]


def main():
    req = json.loads(sys.stdin.read())
    runs, warmups = int(req.get("runs", 10)), int(req.get("warmups", 3))
    results = []
    for w in req["workloads"]:
        for c in req["cells"]:
            t0 = time.perf_counter()
            rows = bench(c, w, runs, warmups)
            print(f"export-pytorch-bench.py: {w['name']} {c['cell']} {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            results.append({"workload": w["name"], "cell": c["cell"], "rows": rows})
    print(json.dumps({"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": runs, "warmups": warmups, "results": results}))


if __name__ == "__main__":
    main()

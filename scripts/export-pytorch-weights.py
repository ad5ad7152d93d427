#!/usr/bin/python3
"""Weights both ways between cellforge and a module written by `cellforge export --target pytorch` (#16).

Run by test/export-weights.test.ts (not by hand): one JSON request on stdin, one JSON reply on stdout.

  {"file": the exported module, "module": its nn.Module class, "sizes": [free sizes, in the constructor's order],
   "checkpoint": a `cellforge train` checkpoint, "x": [T, B, D] as nested lists (float64), "out": where
   save_cellforge writes, "steps": SGD steps, "lr": their learning rate, "damaged": a damaged copy of the
   checkpoint, "otherCell": cellforge parameters of another cell, "earlier": a checkpoint of an earlier cellforge's format}

What it does, each step reported for the test to check against cellforge's own reading:
  1. a float64 module loads the checkpoint (load_cellforge): its cell parameters, and the forward on x from a zero state;
  2. a float32 module loads it too and continues training in PyTorch: the cell with the checkpoint's readout
     (returned by load_cellforge, used as nn.Linear's weight and bias) on a random regression, plain SGD;
  3. save_cellforge writes the trained cell parameters for `cellforge train --init`; they are reported;
  4. the refusals: a damaged checkpoint, another cell's parameters, a layer the model does not have, a
     checkpoint of an earlier cellforge's format (CFCKPT02).
"""
import os

os.environ["OMP_NUM_THREADS"] = "1"

import importlib.util
import json
import sys

import torch

torch.set_num_threads(1)


def flat(t):
    return t.detach().reshape(-1).to(torch.float64).tolist()


def refusal(fn, error):
    try:
        fn()
    except error as e:
        return str(e)
    return None


def main():
    req = json.loads(sys.stdin.read())
    spec = importlib.util.spec_from_file_location("exported", req["file"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    Module = getattr(mod, req["module"])

    m64 = Module(*req["sizes"], dtype=torch.float64)
    other = m64.load_cellforge(req["checkpoint"])
    loaded = [flat(p) for p in m64.cell_parameters()]
    x = torch.tensor(req["x"], dtype=torch.float64)
    with torch.no_grad():
        out, _ = m64(x)

    m32 = Module(*req["sizes"])
    head = m32.load_cellforge(req["checkpoint"])
    readout = torch.nn.Linear(head["readout.W"].shape[1], head["readout.W"].shape[0])
    with torch.no_grad():
        readout.weight.copy_(head["readout.W"])
        readout.bias.copy_(head["readout.b"])
    before = [p.detach().clone() for p in m32.cell_parameters()]
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(x.shape[0], 16, x.shape[2], generator=gen)
    ys = torch.rand(16, readout.weight.shape[0], generator=gen)
    opt = torch.optim.SGD(list(m32.parameters()) + list(readout.parameters()), lr=req["lr"])
    losses = []
    for _ in range(req["steps"]):
        opt.zero_grad()
        seq, _ = m32(xs)
        loss = ((readout(seq[-1]) - ys) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    m32.save_cellforge(req["out"])
    trained = [flat(p) for p in m32.cell_parameters()]
    moved = max(float((p.detach() - b).abs().max()) for p, b in zip(m32.cell_parameters(), before))

    refusals = {
        "damaged": refusal(lambda: Module(*req["sizes"]).load_cellforge(req["damaged"]), mod.CellforgeFileError),
        "otherCell": refusal(lambda: Module(*req["sizes"]).load_cellforge(req["otherCell"]), mod.CellforgeFileError),
        "layer": refusal(lambda: Module(*req["sizes"]).load_cellforge(req["checkpoint"], layer=2), mod.CellforgeFileError),
        "earlier": refusal(lambda: Module(*req["sizes"]).load_cellforge(req["earlier"]), mod.CellforgeFileError),
    }
    print(json.dumps({
        "loaded": loaded, "other": {k: list(v.shape) for k, v in other.items()}, "output": flat(out),
        "trained": trained, "moved": moved, "losses": losses, "refusals": refusals,
    }))


main()

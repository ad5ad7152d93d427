#!/usr/bin/python3
"""Trains an exported module (`cellforge export --target pytorch`) with DistributedDataParallel, for
test/export-pytorch.test.ts: two processes (gloo backend, CPU, float64) each take half of every batch;
one process takes the whole batches. Both run the same SGD steps from the same weights; the reply
is the largest difference between their parameters afterwards, and between their losses.

    /usr/bin/python3 scripts/export-pytorch-ddp.py <module.py> <ModuleClass> <size> [<size> …]

The sizes are the module's constructor arguments (its free sizes, D and H for most cells). One JSON
object goes to stdout: {"ok": true, "params": [...names], "maxParamDiff": x, "maxLossDiff": x, "steps": n}.
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import importlib.util
import json
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

B, T, STEPS, LR = 8, 5, 3, 0.1


def load(path):
    spec = importlib.util.spec_from_file_location("exported", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def data(layer_input_size):
    g = torch.Generator().manual_seed(7)
    xs = [torch.randn(T, B, layer_input_size, generator=g, dtype=torch.float64) for _ in range(STEPS)]
    return xs


def make(path, cls, sizes):
    torch.manual_seed(0)
    layer = getattr(load(path), cls)(*sizes, dtype=torch.float64)
    return layer


def loss_of(layer, x):
    out, _ = layer(x)
    # a per-example loss, averaged over the batch: DDP averages the ranks' gradients, so each rank's
    # mean over its half is half the full batch's mean
    return (out.tanh() ** 2).sum(dim=(0, 2)).mean()


def train(layer, xs, rank=None, world=1):
    opt = torch.optim.SGD(layer.parameters(), lr=LR)
    losses = []
    for x in xs:
        if rank is not None:
            x = x[:, rank * (B // world):(rank + 1) * (B // world)]
        opt.zero_grad()
        loss = loss_of(layer, x)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def worker(rank, world, path, cls, sizes, init, out):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    layer = make(path, cls, sizes)
    ddp = torch.nn.parallel.DistributedDataParallel(layer)
    xs = data(input_size(layer))
    losses = train(ddp, xs, rank, world)
    # the mean of the ranks' losses is the full batch's loss
    t = torch.tensor(losses, dtype=torch.float64)
    dist.all_reduce(t)
    if rank == 0:
        torch.save({"state": layer.state_dict(), "losses": (t / world).tolist()}, out)
    dist.destroy_process_group()


def input_size(layer):
    # the cells this trains have one input, of size D
    return layer.D


def main():
    path, cls, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
    single = make(path, cls, sizes)
    losses = train(single, data(input_size(single)))
    with tempfile.TemporaryDirectory() as d:
        init, out = "file://" + os.path.join(d, "rendezvous"), os.path.join(d, "rank0.pt")
        mp.spawn(worker, args=(2, path, cls, sizes, init, out), nprocs=2, join=True)
        got = torch.load(out)
    names = list(single.state_dict().keys())
    diff = max(float((single.state_dict()[k] - got["state"][k]).abs().max()) for k in names)
    moved = max(float((single.state_dict()[k] - make(path, cls, sizes).state_dict()[k]).abs().max()) for k in names)
    print(json.dumps({"ok": True, "params": names, "maxParamDiff": diff, "moved": moved,
                      "maxLossDiff": max(abs(a - b) for a, b in zip(losses, got["losses"])), "steps": STEPS}))


if __name__ == "__main__":
    main()

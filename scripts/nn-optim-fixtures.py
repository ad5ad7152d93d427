#!/usr/bin/env python3
"""Fixtures for test/nn-optim.test.ts: PyTorch's optimizers, schedulers and clip_grad_norm_ in float64.

Each case starts from one parameter vector and feeds a fixed sequence of gradients (set as .grad,
no loss), stepping the scheduler after every optimizer step as PyTorch's docs do; it records the
learning rate each step ran at and the parameters after each step. The TypeScript optimizers
(nn/optim.ts, nn/schedule.ts) must reproduce them to 1e-12.

Regenerate (Debian python3-torch): python3 scripts/nn-optim-fixtures.py
Writes test/fixtures/nn-optim/optim.json and clip.json; the output is deterministic.
"""
import json
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "nn-optim")
N, STEPS = 7, 5

gen = torch.Generator().manual_seed(17)
P0 = (torch.rand(N, generator=gen) * 2 - 1).tolist()
# gradients of mixed scale, one step with a zero entry, so each term of every formula matters
GRADS = [((torch.rand(N, generator=gen) * 2 - 1) * (0.5 + k)).tolist() for k in range(STEPS)]
GRADS[2][3] = 0.0

# (name, torch optimizer, its config in nn/optim.ts terms, scheduler, its nn/schedule.ts terms)
CASES = [
    ("sgd-nesterov-wd-steplr",
     lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weightDecay": 0.01},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
     {"kind": "stepLR", "lr": 0.1, "stepSize": 2, "gamma": 0.5}),
    ("sgd-momentum-dampening",
     lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.8, dampening=0.3),
     {"kind": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.3},
     None, {"kind": "constant", "lr": 0.05}),
    ("sgd-plain-wd",
     lambda p: torch.optim.SGD([p], lr=0.2, weight_decay=0.1),
     {"kind": "sgd", "lr": 0.2, "momentum": 0, "weightDecay": 0.1},
     None, {"kind": "constant", "lr": 0.2}),
    ("adam-wd-cosine",
     lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05),
     {"kind": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weightDecay": 0.05},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=1e-4),
     {"kind": "cosine", "lr": 0.01, "steps": 5, "min": 1e-4}),
    ("adam-steplr",
     lambda p: torch.optim.Adam([p], lr=0.03),
     {"kind": "adam", "lr": 0.03, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3),
     {"kind": "stepLR", "lr": 0.03, "stepSize": 3, "gamma": 0.3}),
    ("adamw-cosine",
     lambda p: torch.optim.AdamW([p], lr=0.02, weight_decay=0.1),
     {"kind": "adamw", "lr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weightDecay": 0.1},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8),
     {"kind": "cosine", "lr": 0.02, "steps": 8}),
]


def run(make_opt, make_sched):
    p = torch.nn.Parameter(torch.tensor(P0))
    opt = make_opt(p)
    sched = make_sched(opt) if make_sched else None
    lrs, params = [], []
    for g in GRADS:
        p.grad = torch.tensor(g)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched:
            sched.step()
        params.append(p.detach().tolist())
    return lrs, params


def main():
    cases = []
    for name, make_opt, config, make_sched, schedule in CASES:
        lrs, params = run(make_opt, make_sched)
        cases.append({"name": name, "optimizer": config, "schedule": schedule, "lrs": lrs, "params": params})
    optim = {"torch": torch.__version__, "p0": P0, "grads": GRADS, "cases": cases}

    clips = []
    for max_norm in (0.5, 3.0, 100.0):
        gs = [torch.tensor(g) for g in GRADS[:2]]  # two tensors: the norm is over both, as over one flat buffer
        ps = [torch.nn.Parameter(torch.zeros(N)) for _ in gs]
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        clips.append({"maxNorm": max_norm, "grad": GRADS[0] + GRADS[1], "norm": norm.item(),
                      "clipped": ps[0].grad.tolist() + ps[1].grad.tolist()})
    clip = {"torch": torch.__version__, "cases": clips}

    os.makedirs(OUT, exist_ok=True)
    for fname, data in (("optim.json", optim), ("clip.json", clip)):
        with open(os.path.join(OUT, fname), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()

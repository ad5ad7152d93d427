#!/usr/bin/python3
"""PyTorch reference fixtures for cellforge's layers (nn/recurrent.ts): stacked, bidirectional,
batch-first, over padded batches, and AdamW steps.

Writes test/fixtures/nn-torch/{gru,lstm}.json. Each holds, in float64, for torch.nn.GRU / nn.LSTM with
num_layers=2, bidirectional=True, batch_first=True:
  "full":   every sequence T steps long;
  "packed": mixed lengths through pack_padded_sequence(enforce_sorted=False) and pad_packed_sequence
            (outputs zero past each length, h_n at each sequence's own last step);
  "adamw":  the packed case's loss minimised for a few torch.optim.AdamW steps, with the parameters
            after each step.
The loss of every case is <dy, y> + <dh_n, h_n> (+ <dc_n, c_n> for the LSTM), with y batch-first
[B][T][2H] and h_n, c_n [layers*2][B][H] in PyTorch's order (l0, l0_reverse, l1, l1_reverse).
test/nn-torch.test.ts loads them; the test suite needs no Python.

    /usr/bin/python3 scripts/nn-torch-fixtures.py     # from the repository root; needs python3-torch

Deterministic for a given torch build (seeded; no timestamps, no paths).
"""
import json
import os
import sys

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

D, H, B, T, LAYERS = 3, 4, 4, 5, 2
LENGTHS = [5, 2, 4, 1]
INIT_SCALE = 1.5  # weights U(-a, a), a = INIT_SCALE / sqrt(H): gates leave their linear region
ADAMW = {"lr": 0.05, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1}
ADAMW_STEPS = 4

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "nn-torch")


def nested(t):
    return t.detach().cpu().numpy().tolist()


def make(kind, seed):
    gen = torch.Generator().manual_seed(seed)
    cls = torch.nn.GRU if kind == "gru" else torch.nn.LSTM
    m = cls(D, H, num_layers=LAYERS, bidirectional=True, batch_first=True).double()
    a = INIT_SCALE / H ** 0.5
    with torch.no_grad():
        for p in m.parameters():
            p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * a)
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)
    data = {
        "x": randn(B, T, D),
        "h0": randn(LAYERS * 2, B, H),
        "dy": randn(B, T, 2 * H),
        "dh_n": randn(LAYERS * 2, B, H),
    }
    if kind == "lstm":
        data["c0"] = randn(LAYERS * 2, B, H)
        data["dc_n"] = randn(LAYERS * 2, B, H)
    return m, data


def run(kind, m, data, lengths):
    """The loss and its pieces; `lengths` None runs the full batch unpacked."""
    x, h0 = data["x"], data["h0"]
    state = (h0, data["c0"]) if kind == "lstm" else h0
    if lengths is None:
        y, fin = m(x, state)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
        yp, fin = m(packed, state)
        y, _ = pad_packed_sequence(yp, batch_first=True, total_length=T)
    h_n, c_n = fin if kind == "lstm" else (fin, None)
    loss = (data["dy"] * y).sum() + (data["dh_n"] * h_n).sum()
    if kind == "lstm":
        loss = loss + (data["dc_n"] * c_n).sum()
    return loss, y, h_n, c_n


def case(kind, m, data, lengths):
    leaves = {k: v.clone().requires_grad_() for k, v in data.items() if k in ("x", "h0", "c0")}
    d = {**data, **leaves}
    loss, y, h_n, c_n = run(kind, m, d, lengths)
    names = [n for n, _ in m.named_parameters()]
    wrt = [p for _, p in m.named_parameters()] + list(leaves.values())
    grads = dict(zip(names + list(leaves.keys()), torch.autograd.grad(loss, wrt)))
    return {
        "lengths": lengths,
        "outputs": {"y": nested(y), "h_n": nested(h_n), **({"c_n": nested(c_n)} if c_n is not None else {})},
        "grads": {k: nested(v) for k, v in grads.items()},
        "loss": loss.item(),
    }


def adamw(kind, m, data):
    opt = torch.optim.AdamW(m.parameters(), lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"])
    steps = []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad()
        loss, *_ = run(kind, m, data, LENGTHS)
        loss.backward()
        opt.step()
        steps.append({"loss": loss.item(), "state_dict": {k: nested(v) for k, v in m.state_dict().items()}})
    return {"lengths": LENGTHS, "config": ADAMW, "steps": steps}


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    for i, kind in enumerate(["gru", "lstm"]):
        m, data = make(kind, seed=7000 + i)
        module = f"torch.nn.{kind.upper()}({D}, {H}, num_layers={LAYERS}, bidirectional=True, batch_first=True)"
        doc = {
            "generator": "scripts/nn-torch-fixtures.py (run: /usr/bin/python3 scripts/nn-torch-fixtures.py)",
            "torch": torch.__version__,
            "module": module,
            "dtype": "float64",
            "sizes": {"D": D, "H": H, "B": B, "T": T, "layers": LAYERS},
            "init": f"every parameter U(-a, a), a = {INIT_SCALE}/sqrt(H); x, initial states and upstream N(0, 1)",
            "loss": "<dy, y> + <dh_n, h_n>" + (" + <dc_n, c_n>" if kind == "lstm" else ""),
            "state_dict": {k: nested(v) for k, v in m.state_dict().items()},
            "inputs": {k: nested(v) for k, v in data.items()},
            "full": case(kind, m, data, None),
            "packed": case(kind, m, data, LENGTHS),
            "adamw": adamw(kind, m, data),
        }
        lines = [f" {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in doc.items()]
        text = "{\n" + ",\n".join(lines) + "\n}\n"
        json.loads(text)
        path = os.path.join(OUT, f"{kind}.json")
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(path)}: {len(text) / 1024:.1f} KB (torch {torch.__version__})")


if __name__ == "__main__":
    sys.exit(main())
